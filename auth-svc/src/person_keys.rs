//! `vaxbook.auth.v1.PersonKeyService`: turns resident registration numbers into person keys for
//! operators, so lists of people (R7's priority targets) can be held by other services without
//! an RRN ever leaving auth-svc. Only auth-svc holds the key of the keyed hash. The stream is
//! answered batch by batch, in order; a malformed RRN yields an empty entry and is counted,
//! never echoed or logged. It takes the operator key (`x-admin-key`) for now.

use std::pin::Pin;

use platform::config::Secret;
use proto::auth::v1 as pb;
use proto::auth::v1::person_key_service_server::PersonKeyService;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::domain::{Rrn, derive_person_key};

/// Most RRNs in one request message.
pub const MAX_BATCH: usize = 10_000;

/// The operators' RRN-to-person-key service.
#[derive(Clone)]
pub struct PersonKeys {
    secret: Secret,
    admin_key: Secret,
}

impl PersonKeys {
    /// `secret` is the person-key secret (`AUTH_PERSON_KEY_SECRET`); `admin_key` the operator key.
    pub fn new(secret: Secret, admin_key: Secret) -> Self {
        Self { secret, admin_key }
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
}

/// The gRPC service for `config`'s person-key secret and operator key.
pub fn server(
    config: &crate::Config,
) -> proto::auth::v1::person_key_service_server::PersonKeyServiceServer<PersonKeys> {
    proto::auth::v1::person_key_service_server::PersonKeyServiceServer::new(PersonKeys::new(
        config.person_key_secret.clone(),
        config.common.admin_key.clone(),
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
        platform::grpc::require_admin(request.metadata(), self.admin_key.expose())?;
        let service = self.clone();
        let answers = request.into_inner().map(move |batch| {
            let batch = batch?;
            if batch.rrns.len() > MAX_BATCH {
                return Err(platform::problem::Problem::invalid(format!(
                    "rrns holds more than {MAX_BATCH} entries"
                ))
                .to_status());
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

    use super::*;

    #[test]
    fn keys_match_the_sign_in_derivation_and_bad_entries_are_counted() {
        let service = PersonKeys::new(Secret::new("a-test-secret"), Secret::new("op"));
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
