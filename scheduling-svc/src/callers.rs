//! Who may ask scheduling-svc about a person (docs/security.md). `CheckEligibility` answers
//! either for the person of a presented citizen access token — the person key and birth date
//! are the token's; request fields, when given, must match them — or for a caller holding the
//! internal service credential in `x-service-key` (booking-svc, which has authenticated the
//! person itself, including proxy and call-center bookings where the person is not the token's
//! subject). That credential is `VAXBOOK_SERVICE_KEY`, compared in constant time; it is no
//! operator credential and opens no admin RPC (those take operator tokens, `admin.rs`).
//! Everything else is refused, counted and logged once as a security event.

use std::sync::Arc;

use platform::auth::{JwksSource, Role, TokenVerifier};
use platform::clock::SharedClock;
use platform::config::{SERVICE_KEY_HEADER, Secret};
use platform::problem::{Problem, ProblemKind};
use platform::trust::refused_call;
use proto::scheduling::v1 as pb;
use tonic::metadata::MetadataMap;

const SERVICE: &str = "scheduling-svc";
const RPC: &str = "CheckEligibility";

/// On whose authority a question is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asker {
    /// A citizen asking about themselves: the token's person key and birth date.
    Person {
        person_key: String,
        birth_date: String,
    },
    /// An internal service that authenticated the person itself (booking-svc).
    Service,
}

/// The credentials scheduling-svc accepts for questions about a person.
pub struct Callers {
    tokens: TokenVerifier,
    service_key: Secret,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers").finish_non_exhaustive()
    }
}

impl Callers {
    /// Tokens verify against auth-svc's keys from `auth_keys`; `service_key` is the internal
    /// service credential (`Config::service_key`).
    pub fn new(auth_keys: Arc<dyn JwksSource>, service_key: Secret, clock: SharedClock) -> Self {
        Self {
            tokens: TokenVerifier::new(auth_keys, clock),
            service_key,
        }
    }

    /// Who is asking, from the request's metadata: a bearer token first, else the service key.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Asker, Problem> {
        if metadata.get("authorization").is_some() {
            let token = platform::auth::bearer(metadata)
                .inspect_err(|_| refused_call(SERVICE, RPC, "invalid-token"))?;
            let claims = match self.tokens.verify(token).await {
                Ok(claims) => claims,
                Err(problem) if problem.kind == ProblemKind::Unavailable => return Err(problem),
                Err(problem) => {
                    refused_call(SERVICE, RPC, "invalid-token");
                    return Err(problem);
                }
            };
            if claims.role != Role::Citizen {
                refused_call(SERVICE, RPC, "agent-token");
                return Err(Problem::new(
                    ProblemKind::Forbidden,
                    "agents ask through booking-svc's call-center calls",
                ));
            }
            return Ok(Asker::Person {
                person_key: claims.sub,
                birth_date: claims.bd,
            });
        }
        match metadata.get(SERVICE_KEY_HEADER).map(|value| value.to_str()) {
            Some(Ok(key))
                if platform::auth::constant_time_eq(
                    key.as_bytes(),
                    self.service_key.expose().as_bytes(),
                ) =>
            {
                Ok(Asker::Service)
            }
            Some(_) => {
                refused_call(SERVICE, RPC, "wrong-service-key");
                Err(Problem::new(
                    ProblemKind::Unauthenticated,
                    "the service credential is wrong",
                ))
            }
            None => {
                refused_call(SERVICE, RPC, "no-credential");
                Err(Problem::new(
                    ProblemKind::Unauthenticated,
                    "a citizen's access token or a service credential is required",
                ))
            }
        }
    }
}

impl Asker {
    /// Makes `request` about the asker's own person: empty person fields are filled from the
    /// token, differing ones are refused. A service's question is taken as it is.
    pub fn scope(&self, request: &mut pb::CheckEligibilityRequest) -> Result<(), Problem> {
        let Self::Person {
            person_key,
            birth_date,
        } = self
        else {
            return Ok(());
        };
        let differs = |asked: &str, own: &str| !asked.is_empty() && asked != own;
        if differs(&request.person_key, person_key) || differs(&request.birth_date, birth_date) {
            refused_call(SERVICE, RPC, "another-person");
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "a citizen may ask only about themselves",
            ));
        }
        if request.proxy {
            // A proxy booking's question is about someone else: booking-svc asks it.
            refused_call(SERVICE, RPC, "another-person");
            return Err(Problem::new(
                ProblemKind::Forbidden,
                "proxy questions are asked by booking-svc",
            ));
        }
        person_key.clone_into(&mut request.person_key);
        birth_date.clone_into(&mut request.birth_date);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn alice() -> Asker {
        Asker::Person {
            person_key: "pk-alice".to_owned(),
            birth_date: "1990-05-05".to_owned(),
        }
    }

    #[test]
    fn a_citizen_is_answered_about_themselves_only() {
        let mut empty = pb::CheckEligibilityRequest::default();
        alice().scope(&mut empty).unwrap();
        assert_eq!(empty.person_key, "pk-alice");
        assert_eq!(empty.birth_date, "1990-05-05");

        let mut same = empty.clone();
        alice().scope(&mut same).unwrap();

        let mut other = pb::CheckEligibilityRequest {
            person_key: "pk-bob".to_owned(),
            ..Default::default()
        };
        let refused = alice().scope(&mut other).unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Forbidden);
        let mut older = pb::CheckEligibilityRequest {
            birth_date: "1950-01-01".to_owned(),
            ..Default::default()
        };
        assert!(alice().scope(&mut older).is_err());
        let mut proxy = pb::CheckEligibilityRequest {
            proxy: true,
            ..Default::default()
        };
        assert!(alice().scope(&mut proxy).is_err());
    }

    #[test]
    fn a_service_question_is_taken_as_asked() {
        let mut request = pb::CheckEligibilityRequest {
            person_key: "pk-bob".to_owned(),
            birth_date: "1950-01-01".to_owned(),
            proxy: true,
            ..Default::default()
        };
        Asker::Service.scope(&mut request).unwrap();
        assert_eq!(request.person_key, "pk-bob");
    }
}
