//! `vaxbook.auth.v1.PersonKeyService`: turns resident registration numbers into person keys for
//! operators, so lists of people (R7's priority targets) can be held by other services without
//! an RRN ever leaving auth-svc. Only auth-svc holds the key of the keyed hash. The stream is
//! answered batch by batch, in order; a malformed RRN yields an empty entry and is counted,
//! never echoed or logged.
//!
//! Only an operator may call it (`platform::operator::OperatorGuard`: an operator token from
//! `StaffAuthService.Login` in `authorization: Bearer`, or the dev run's key in the dev run).
//! Every call, accepted or refused, is one entry `admin.derive-person-keys` in auth-svc's audit
//! trail, under the operator's account (`unknown` when no staff token verified); the entry
//! names no person key, since a call derives many.

use std::pin::Pin;
use std::sync::Arc;

use platform::audit::{AuditLog, AuditRecord};
use platform::clock::SharedClock;
use platform::config::Secret;
use platform::grants::GrantVerifier;
use platform::operator::OperatorGuard;
use platform::problem::Problem;
use proto::auth::v1 as pb;
use proto::auth::v1::person_key_service_server::PersonKeyService;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::domain::{Rrn, derive_person_key};

/// Most RRNs in one request message.
pub const MAX_BATCH: usize = 10_000;
/// The audit action of a `DerivePersonKeys` call.
pub const ACTION: &str = "admin.derive-person-keys";

/// The operators' RRN-to-person-key service.
#[derive(Clone)]
pub struct PersonKeys {
    secret: Secret,
    operators: Arc<OperatorGuard>,
    audit: Arc<dyn AuditLog>,
    clock: SharedClock,
}

impl PersonKeys {
    /// `secret` is the person-key secret (`AUTH_PERSON_KEY_SECRET`); `operators` decides who
    /// may call; `audit` is auth-svc's audit trail.
    pub fn new(
        secret: Secret,
        operators: Arc<OperatorGuard>,
        audit: Arc<dyn AuditLog>,
        clock: SharedClock,
    ) -> Self {
        Self {
            secret,
            operators,
            audit,
            clock,
        }
    }

    /// The answer to one batch.
    pub fn derive(&self, rrns: &[String]) -> pb::DerivePersonKeysResponse {
        let mut rejected = 0;
        let person_keys = rrns
            .iter()
            .map(|raw| match Rrn::parse(raw) {
                Ok(rrn) => derive_person_key(self.secret.expose().as_bytes(), &rrn).into_string(),
                Err(_) => {
                    rejected += 1;
                    String::new()
                }
            })
            .collect();
        pb::DerivePersonKeysResponse {
            person_keys,
            rejected,
        }
    }

    /// Writes one audit entry; no entry, no answer.
    async fn audit(&self, record: AuditRecord) -> Result<(), Status> {
        platform::audit::append_or_unavailable(&*self.audit, self.clock.now(), record)
            .await
            .map(|_| ())
            .map_err(|problem| problem.to_status())
    }
}

/// The gRPC service for `config`'s person-key secret and dev-run operator key, with operator
/// tokens verified by `grants` (auth-svc's own keys) and every call written to `audit`.
pub fn server(
    config: &crate::Config,
    grants: Arc<GrantVerifier>,
    audit: Arc<dyn AuditLog>,
) -> proto::auth::v1::person_key_service_server::PersonKeyServiceServer<PersonKeys> {
    let operators = Arc::new(OperatorGuard::new(
        grants,
        config.common.dev_operator_key.clone(),
    ));
    proto::auth::v1::person_key_service_server::PersonKeyServiceServer::new(PersonKeys::new(
        config.person_key_secret.clone(),
        operators,
        audit,
        config.clock.clone(),
    ))
}

type Answers = Pin<Box<dyn Stream<Item = Result<pb::DerivePersonKeysResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PersonKeyService for PersonKeys {
    type DerivePersonKeysStream = Answers;

    async fn derive_person_keys(
        &self,
        request: Request<Streaming<pb::DerivePersonKeysRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let operator = match self.operators.authorize(request.metadata()).await {
            Ok(operator) => operator,
            Err(refused) => {
                self.audit(refused.record(ACTION)).await?;
                metrics::counter!("auth_person_key_calls_total", "outcome" => "refused")
                    .increment(1);
                return Err(refused.problem.to_status());
            }
        };
        // Audited before the first key is derived: an entry that cannot be written stops it.
        self.audit(operator.record(ACTION, None, "ok")).await?;
        metrics::counter!("auth_person_key_calls_total", "outcome" => "ok").increment(1);
        tracing::info!(operator = %operator.account, "person keys derived for an operator");
        let service = self.clone();
        let answers = request.into_inner().map(move |batch| {
            let batch = batch?;
            if batch.rrns.len() > MAX_BATCH {
                return Err(
                    Problem::invalid(format!("rrns holds more than {MAX_BATCH} entries"))
                        .to_status(),
                );
            }
            metrics::counter!("auth_person_keys_derived_total").increment(batch.rrns.len() as u64);
            Ok(service.derive(&batch.rrns))
        });
        Ok(Response::new(Box::pin(answers)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use platform::audit::MemoryAuditLog;
    use platform::clock::SettableClock;
    use platform::grants::{SigningKeys, StaticKeysSource};

    use super::*;

    #[test]
    fn keys_match_the_sign_in_derivation_and_bad_entries_are_counted() {
        let clock: SharedClock = Arc::new(SettableClock::new());
        let keys = SigningKeys::generate().unwrap();
        let grants = Arc::new(GrantVerifier::new(
            Arc::new(StaticKeysSource(keys.jwks())),
            clock.clone(),
        ));
        let service = PersonKeys::new(
            Secret::new("a-test-secret"),
            Arc::new(OperatorGuard::new(grants, None)),
            Arc::new(MemoryAuditLog::new()),
            clock,
        );
        let answer = service.derive(&[
            "900513-1234567".to_owned(),
            "not an rrn".to_owned(),
            "9005131234567".to_owned(),
        ]);
        assert_eq!(answer.rejected, 1);
        assert_eq!(answer.person_keys.len(), 3);
        assert!(answer.person_keys[1].is_empty());
        // With or without the dash: the same person.
        assert_eq!(answer.person_keys[0], answer.person_keys[2]);
        let expected = derive_person_key(b"a-test-secret", &Rrn::parse("900513-1234567").unwrap());
        assert_eq!(answer.person_keys[0], expected.as_str());
    }
}
