//! Mobile-phone verification: a six-digit one-time code sent by SMS to the person's phone,
//! after the carriers' identity-verification agency has confirmed that the phone is registered
//! at the named carrier to this name, birth date and sex digit (a mismatch sends nothing).
//! Before the agency is asked, the phone's start limit and wrong-code lockout are checked
//! ([`crate::limits`]). The code itself is never stored: the challenge keeps a keyed hash bound
//! to the verification id, compared in constant time; a challenge allows a bounded number of
//! wrong answers before it is thrown away, and every wrong code also counts against the person
//! and the phone across verifications.

use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use rand::Rng as _;

use super::digest::BoundDigester;
use super::{
    ChallengeAnswer, IdentityProvider, StartRequest, StartedChallenge, count_wrong_answer,
    refuse_if_exhausted, use_up,
};
use crate::carrier::{CarrierCheck, SubscriberQuery, SubscriberVerdict};
use crate::domain::{ProviderId, ProviderKind, VerificationId};
use crate::error::AuthError;
use crate::limits::{AbuseLimits, Subject};
use crate::sms::SmsSender;
use crate::store::{Challenge, ChallengeSecret, ChallengeStore};

/// How long a code lives and how many wrong answers it tolerates.
#[derive(Clone, Copy, Debug)]
pub struct PhoneProviderSettings {
    pub otp_ttl: Duration,
    pub max_attempts: u32,
}

/// The phone provider.
pub struct PhoneProvider {
    store: Arc<dyn ChallengeStore>,
    sms: Arc<dyn SmsSender>,
    clock: SharedClock,
    digester: BoundDigester,
    settings: PhoneProviderSettings,
    guards: PhoneGuards,
}

/// What stands between a start and an SMS: the agency and the abuse limits.
#[derive(Clone)]
pub struct PhoneGuards {
    pub carrier: Arc<dyn CarrierCheck>,
    pub limits: Arc<AbuseLimits>,
}

impl PhoneProvider {
    pub fn new(
        store: Arc<dyn ChallengeStore>,
        sms: Arc<dyn SmsSender>,
        clock: SharedClock,
        digester: BoundDigester,
        settings: PhoneProviderSettings,
        guards: PhoneGuards,
    ) -> Self {
        Self {
            store,
            sms,
            clock,
            digester,
            settings,
            guards,
        }
    }

    /// The provider as `config` sets it up: its agency and limits, codes keyed with the
    /// person-key secret.
    pub fn from_config(
        config: &crate::Config,
        store: Arc<dyn ChallengeStore>,
        sms: Arc<dyn SmsSender>,
        limits: Arc<AbuseLimits>,
    ) -> anyhow::Result<Self> {
        Ok(Self::new(
            store,
            sms,
            config.clock.clone(),
            BoundDigester::for_codes(config.person_key_secret.expose().as_bytes()),
            PhoneProviderSettings {
                otp_ttl: config.otp_ttl,
                max_attempts: config.otp_max_attempts,
            },
            PhoneGuards {
                carrier: config.guards.carrier_check()?,
                limits,
            },
        ))
    }

    fn sms_body(&self, otp: &str) -> String {
        let minutes = self.settings.otp_ttl.as_secs().div_ceil(60).max(1);
        format!("[vaxbook] 인증번호 {otp} ({minutes}분 이내 입력)")
    }
}

/// A uniformly random code from the operating system's generator.
fn generate_otp() -> String {
    let code: u32 = rand::rngs::OsRng.gen_range(0..1_000_000);
    format!("{code:06}")
}

#[async_trait::async_trait]
impl IdentityProvider for PhoneProvider {
    fn id(&self) -> ProviderId {
        ProviderKind::Phone.id()
    }

    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError> {
        let phone = request.phone.ok_or(AuthError::InvalidPhone)?;
        let carrier = request.carrier.ok_or_else(|| {
            AuthError::InvalidRequest(
                "carrier must be one of skt, kt, lgu, mvno for the phone provider".to_owned(),
            )
        })?;
        let limits = &self.guards.limits;
        let phone_subject = limits.phone(&phone);
        limits.refuse_if_locked_out(&[&phone_subject]).await?;
        limits.count_start(&phone_subject).await?;
        // The same single question whichever field is wrong, so the answer and its timing say
        // nothing about which one it was.
        let verdict = self
            .guards
            .carrier
            .check(&SubscriberQuery {
                name: &request.name,
                birth_date: request.birth_date,
                sex_digit: request.sex_digit,
                phone: &phone,
                carrier,
            })
            .await?;
        if verdict == SubscriberVerdict::Mismatch {
            return Err(AuthError::IdentityMismatch);
        }
        let otp = generate_otp();
        let expires_at = self.clock.now()
            + chrono::Duration::from_std(self.settings.otp_ttl)
                .unwrap_or(chrono::Duration::minutes(3));
        let challenge = Challenge {
            provider: ProviderKind::Phone.id(),
            person_key: request.person_key,
            birth_date: request.birth_date,
            masked_name: request.name.masked(),
            device_id: request.device_id,
            secret: ChallengeSecret::OtpDigest {
                digest: self.digester.digest(&request.verification_id, &otp),
                phone_subject: Some(phone_subject.as_str().to_owned()),
            },
            expires_at,
            attempts: 0,
        };
        self.store
            .put(&request.verification_id, &challenge, self.settings.otp_ttl)
            .await?;
        if let Err(error) = self.sms.send(&phone, &self.sms_body(&otp), &otp).await {
            // A code nobody received must not stay answerable.
            if let Err(cleanup) = self.store.delete(&request.verification_id).await {
                tracing::warn!(error = %cleanup, "cannot remove the challenge of an unsent code");
            }
            return Err(error.into());
        }
        Ok(StartedChallenge {
            expires_at,
            masked_phone: phone.masked(),
            nonce: String::new(),
        })
    }

    async fn complete(
        &self,
        verification_id: &VerificationId,
        challenge: &Challenge,
        answer: &ChallengeAnswer,
    ) -> Result<(), AuthError> {
        let ChallengeAnswer::Otp(otp) = answer else {
            return Err(AuthError::InvalidRequest(
                "otp is required for the phone provider".to_owned(),
            ));
        };
        let ChallengeSecret::OtpDigest {
            digest,
            phone_subject,
        } = &challenge.secret
        else {
            tracing::warn!(%verification_id, "a phone challenge holds no code digest");
            return Err(AuthError::VerificationExpired);
        };
        // Counted across verifications: a new one does not reset them.
        let person = AbuseLimits::person(&challenge.person_key);
        let phone = phone_subject.as_deref().and_then(Subject::from_stored);
        let subjects: Vec<&Subject> = std::iter::once(&person).chain(phone.as_ref()).collect();
        self.guards.limits.refuse_if_locked_out(&subjects).await?;
        refuse_if_exhausted(
            self.store.as_ref(),
            verification_id,
            challenge,
            self.settings.max_attempts,
        )
        .await?;
        if self.digester.matches(verification_id, otp.as_str(), digest) {
            return use_up(self.store.as_ref(), verification_id).await;
        }
        self.guards.limits.count_wrong_code(&subjects).await?;
        let attempts_left = count_wrong_answer(
            self.store.as_ref(),
            verification_id,
            self.settings.max_attempts,
        )
        .await?;
        Err(AuthError::WrongAnswer { attempts_left })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::Otp;

    #[test]
    fn generated_codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| generate_otp()).collect();
        assert!(codes.iter().all(|code| Otp::parse(code).is_ok()));
        // 200 draws from a million values: collisions are possible, a constant is not.
        assert!(codes.len() > 150, "{}", codes.len());
    }
}
