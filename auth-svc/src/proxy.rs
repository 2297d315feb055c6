//! Proxy resolution (R1): a verified person who books for someone else names that person
//! (name and resident registration number); auth-svc, the only service that may see the RRN,
//! turns it into a short-lived signed proxy grant ([`platform::proxy_grant::ProxyGrant`]): the
//! person key and birth date of the person booked for, their masked name and the booker's
//! person key. booking-svc verifies the grant against auth-svc's published keys and applies the
//! campaign's proxy policy; the RRN goes no further than this module and is never logged.

use std::sync::Arc;

use platform::auth::{AccessClaims, Role, TokenVerifier};
use platform::clock::{SharedClock, to_timestamp};
use platform::grants::GrantIssuer;
use platform::problem::{Problem, ProblemKind};
use platform::proxy_grant::{PROXY_GRANT_TTL, ProxyGrant};
use proto::auth::v1 as pb;
use proto::auth::v1::proxy_service_server::{ProxyService, ProxyServiceServer};
use tonic::{Request, Response, Status};

use crate::domain::{Name, Rrn, derive_person_key};

/// Issues proxy grants for verified citizens.
pub struct ProxyResolver {
    issuer: GrantIssuer,
    clock: SharedClock,
    person_key_secret: Vec<u8>,
}

/// A resolved proxy: the grant to hand to booking-svc and the masked name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedProxy {
    pub grant: platform::grants::IssuedGrant,
    pub masked_name: String,
}

impl ProxyResolver {
    pub fn new(issuer: GrantIssuer, clock: SharedClock, person_key_secret: Vec<u8>) -> Self {
        Self {
            issuer,
            clock,
            person_key_secret,
        }
    }

    /// The grant for `booker` (a verified citizen's token claims) to book for the person of
    /// `name` and `rrn`. Malformed identity data is `invalid-identity`; booking for oneself is
    /// an invalid request (no grant is needed for that).
    pub fn resolve(
        &self,
        booker: &AccessClaims,
        name: &str,
        rrn: &str,
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
        let resolved = self.resolver.resolve(&claims, &body.name, &body.rrn)?;
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
        );
        let resolved = resolver
            .resolve(&claims("booker", Role::Citizen), "홍길동", "500501-1234567")
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
            .resolve(&claims("booker", Role::Citizen), "홍길동", "5005011234")
            .unwrap_err();
        assert_eq!(bad.kind, ProblemKind::InvalidIdentity);
        assert!(!bad.detail.contains("500501"), "{}", bad.detail);
        let myself = resolver
            .resolve(
                &claims(&grant.for_key, Role::Citizen),
                "홍길동",
                "500501-1234567",
            )
            .unwrap_err();
        assert_eq!(myself.kind, ProblemKind::InvalidRequest);
        let agent = resolver
            .resolve(&claims("agent", Role::Agent), "홍길동", "500501-1234567")
            .unwrap_err();
        assert_eq!(agent.kind, ProblemKind::Forbidden);
    }
}
