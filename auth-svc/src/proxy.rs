//! Proxy resolution (R1): a verified person who books for someone else names that person
//! (name and resident registration number); auth-svc, the only service that may see the RRN,
//! turns it into a short-lived signed proxy grant ([`platform::proxy_grant::ProxyGrant`]): the
//! person key and birth date of the person booked for, their masked name and the booker's
//! person key. booking-svc verifies the grant against auth-svc's published keys and applies the
//! campaign's proxy policy; the RRN goes no further than this module and is never logged.
//!
//! Naming a person by name and RRN is what an attacker testing leaked RRNs would do, so the
//! resolutions are abuse-limited like verification starts ([`crate::limits`]): per booker and
//! per client address, `429 rate-limited` with `Retry-After` past either limit, each refusal a
//! security event.

use std::sync::Arc;

use platform::auth::{AccessClaims, Role, TokenVerifier};
use platform::clock::{SharedClock, to_timestamp};
use platform::grants::GrantIssuer;
use platform::problem::{Problem, ProblemKind};
use platform::proxy_grant::{PROXY_GRANT_TTL, ProxyGrant};
use proto::auth::v1 as pb;
use proto::auth::v1::proxy_service_server::{ProxyService, ProxyServiceServer};
use tonic::{Request, Response, Status};

use crate::domain::{Name, PersonKey, Rrn, derive_person_key};
use crate::error::AuthError;
use crate::limits::{AbuseLimits, ClientAddress};

/// Issues proxy grants for verified citizens.
pub struct ProxyResolver {
    issuer: GrantIssuer,
    clock: SharedClock,
    person_key_secret: Vec<u8>,
    limits: Arc<AbuseLimits>,
}

/// A resolved proxy: the grant to hand to booking-svc and the masked name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedProxy {
    pub grant: platform::grants::IssuedGrant,
    pub masked_name: String,
}

impl ProxyResolver {
    pub fn new(
        issuer: GrantIssuer,
        clock: SharedClock,
        person_key_secret: Vec<u8>,
        limits: Arc<AbuseLimits>,
    ) -> Self {
        Self {
            issuer,
            clock,
            person_key_secret,
            limits,
        }
    }

    /// The grant for `booker` (a verified citizen's token claims) to book for the person of
    /// `name` and `rrn`, asked from `client`. Malformed identity data is `invalid-identity`;
    /// booking for oneself is an invalid request (no grant is needed for that); neither counts
    /// against the limits, which are checked before anything is signed.
    pub async fn resolve(
        &self,
        booker: &AccessClaims,
        name: &str,
        rrn: &str,
        client: Option<ClientAddress>,
    ) -> Result<ResolvedProxy, Problem> {
        if booker.role != Role::Citizen {
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "only a verified person may book for someone else here",
            ));
        }
        let name = Name::parse(name).map_err(Problem::from)?;
        let rrn = Rrn::parse(rrn).map_err(Problem::from)?;
        let person_key = derive_person_key(&self.person_key_secret, &rrn);
        if person_key.as_str() == booker.sub {
            return Err(Problem::invalid(
                "`for` names the verified person themselves; book without `for`",
            ));
        }
        if let Err(refused) = self.count(&booker.sub, client).await {
            if matches!(refused, AuthError::TooManyProxies { .. }) {
                crate::limits::security_event("rate-limited", "resolve-proxy", "");
            }
            return Err(Problem::from(refused));
        }
        let masked_name = name.masked();
        let claims = ProxyGrant {
            sub: booker.sub.clone(),
            for_key: person_key.to_string(),
            for_bd: platform::ids::format_iso_date(rrn.birth_date()),
            for_name: masked_name.clone(),
        };
        let grant = self
            .issuer
            .issue(&claims, self.clock.now(), PROXY_GRANT_TTL)
            .map_err(|error| {
                tracing::error!(error = %error, "signing a proxy grant failed");
                Problem::internal()
            })?;
        metrics::counter!("auth_proxy_grants_issued_total").increment(1);
        Ok(ResolvedProxy { grant, masked_name })
    }

    /// One resolution for the booker and for the client address, refused past either limit.
    async fn count(&self, booker: &str, client: Option<ClientAddress>) -> Result<(), AuthError> {
        let booker = PersonKey::parse(booker).map_err(|_| {
            AuthError::InvalidRequest("the access token names no valid person".to_owned())
        })?;
        self.limits
            .count_proxy(&AbuseLimits::person(&booker))
            .await?;
        if let Some(client) = &client {
            self.limits.count_proxy(&self.limits.client(client)).await?;
        }
        Ok(())
    }
}

/// `vaxbook.auth.v1.ProxyService` over gRPC: the booker's access token, verified locally
/// against auth-svc's own keys, then [`ProxyResolver::resolve`].
pub struct ProxyGrpc {
    resolver: Arc<ProxyResolver>,
    verifier: Arc<TokenVerifier>,
}

impl ProxyGrpc {
    pub fn new(resolver: Arc<ProxyResolver>, verifier: Arc<TokenVerifier>) -> Self {
        Self { resolver, verifier }
    }

    pub fn into_service(self) -> ProxyServiceServer<Self> {
        ProxyServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl ProxyService for ProxyGrpc {
    async fn resolve_proxy(
        &self,
        request: Request<pb::ResolveProxyRequest>,
    ) -> Result<Response<pb::ResolveProxyResponse>, Status> {
        let token = platform::auth::bearer(request.metadata())?;
        let claims = self.verifier.verify(token).await?;
        let body = request.into_inner();
        let client = ClientAddress::parse_optional(&body.client_address).map_err(Problem::from)?;
        let resolved = self
            .resolver
            .resolve(&claims, &body.name, &body.rrn, client)
            .await?;
        Ok(Response::new(pb::ResolveProxyResponse {
            grant: resolved.grant.token,
            expires_at: Some(to_timestamp(resolved.grant.expires_at)),
            masked_name: resolved.masked_name,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{DateTime, Utc};
    use platform::clock::SettableClock;
    use platform::grants::{GrantVerifier, SigningKeys, StaticKeysSource};

    use super::*;
    use crate::limits::LimitSettings;
    use crate::store::MemoryChallengeStore;

    fn limits(clock: SharedClock) -> Arc<AbuseLimits> {
        Arc::new(AbuseLimits::new(
            Arc::new(MemoryChallengeStore::new(clock)),
            LimitSettings {
                phone_starts: 5,
                client_starts: 100,
                proxy_per_booker: 3,
                proxy_per_client: 4,
                start_window: std::time::Duration::from_secs(600),
                wrong_codes: 10,
                lockout: std::time::Duration::from_secs(1800),
            },
            b"test-secret",
        ))
    }

    fn resolver_at(clock: Arc<SettableClock>) -> ProxyResolver {
        ProxyResolver::new(
            GrantIssuer::new(Arc::new(SigningKeys::generate().unwrap())),
            clock.clone(),
            b"test-secret".to_vec(),
            limits(clock),
        )
    }

    fn address(raw: &str) -> Option<ClientAddress> {
        ClientAddress::parse_optional(raw).unwrap()
    }

    #[tokio::test]
    async fn resolutions_are_limited_per_booker_and_per_client_address() {
        let now = DateTime::parse_from_rfc3339("2021-08-09T10:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Arc::new(SettableClock::starting_at(now));
        let resolver = resolver_at(clock.clone());
        let alice = claims("booker-a", Role::Citizen);
        let rrns = ["500501-1234567", "510601-1234567", "520701-2234567"];
        // Malformed identities do not count.
        for _ in 0..5 {
            let bad = resolver
                .resolve(&alice, "홍길동", "5005011234", address("203.0.113.9"))
                .await
                .unwrap_err();
            assert_eq!(bad.kind, ProblemKind::InvalidIdentity);
        }
        for rrn in rrns {
            resolver
                .resolve(&alice, "홍길동", rrn, address("203.0.113.9"))
                .await
                .unwrap();
        }
        // The fourth by the same booker, even from another address, is refused.
        let refused = resolver
            .resolve(&alice, "홍길동", "530801-1234567", address("198.51.100.7"))
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ProblemKind::RateLimited);
        // (the settable clock runs on from where it was set)
        let wait = refused.retry_after.unwrap();
        assert!(
            wait > std::time::Duration::from_secs(598)
                && wait <= std::time::Duration::from_secs(600),
            "{wait:?}"
        );
        assert!(refused.detail.contains("booker"), "{}", refused.detail);
        assert!(!refused.detail.contains("530801"), "{}", refused.detail);

        // Another booker behind the same address: the address has two resolutions left.
        let bob = claims("booker-b", Role::Citizen);
        resolver
            .resolve(&bob, "홍길동", rrns[0], address("203.0.113.9"))
            .await
            .unwrap();
        let refused = resolver
            .resolve(&bob, "홍길동", rrns[1], address("203.0.113.9"))
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ProblemKind::RateLimited);
        assert!(
            refused.detail.contains("client address"),
            "{}",
            refused.detail
        );
        assert!(refused.retry_after.is_some());

        // The window ends: both may resolve again.
        clock.set(now + chrono::Duration::seconds(601));
        resolver
            .resolve(&alice, "홍길동", rrns[0], address("203.0.113.9"))
            .await
            .unwrap();
        resolver
            .resolve(&bob, "홍길동", rrns[1], None)
            .await
            .unwrap();
    }

    fn claims(sub: &str, role: Role) -> AccessClaims {
        AccessClaims {
            iss: platform::auth::ISSUER.to_owned(),
            aud: platform::auth::AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            sid: "s".to_owned(),
            dev: "d".to_owned(),
            bd: "1990-01-01".to_owned(),
            role,
            iat: 0,
            exp: i64::MAX,
            jti: "j".to_owned(),
            fence: None,
        }
    }

    #[tokio::test]
    async fn a_grant_names_the_person_booked_for_without_their_rrn() {
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let now = DateTime::parse_from_rfc3339("2021-08-09T10:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock: SharedClock = Arc::new(SettableClock::starting_at(now));
        let resolver = ProxyResolver::new(
            GrantIssuer::new(keys.clone()),
            clock.clone(),
            b"test-secret".to_vec(),
            limits(clock.clone()),
        );
        let resolved = resolver
            .resolve(
                &claims("booker", Role::Citizen),
                "홍길동",
                "500501-1234567",
                None,
            )
            .await
            .unwrap();
        assert_eq!(resolved.masked_name, "홍*동");
        assert!(!resolved.grant.token.contains("500501"));
        let verifier = GrantVerifier::new(Arc::new(StaticKeysSource(keys.jwks())), clock);
        let grant = verifier
            .verify::<ProxyGrant>(&resolved.grant.token)
            .await
            .unwrap()
            .claims;
        assert_eq!(grant.sub, "booker");
        assert_eq!(grant.for_bd, "1950-05-01");
        let rrn = Rrn::parse("500501-1234567").unwrap();
        assert_eq!(
            grant.for_key,
            derive_person_key(b"test-secret", &rrn).to_string()
        );

        let bad = resolver
            .resolve(
                &claims("booker", Role::Citizen),
                "홍길동",
                "5005011234",
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(bad.kind, ProblemKind::InvalidIdentity);
        assert!(!bad.detail.contains("500501"), "{}", bad.detail);
        let myself = resolver
            .resolve(
                &claims(&grant.for_key, Role::Citizen),
                "홍길동",
                "500501-1234567",
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(myself.kind, ProblemKind::InvalidRequest);
        let agent = resolver
            .resolve(
                &claims("agent", Role::Agent),
                "홍길동",
                "500501-1234567",
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(agent.kind, ProblemKind::Forbidden);
    }
}
