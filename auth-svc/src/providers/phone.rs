//! Mobile-phone verification: a six-digit one-time code sent by SMS to the person's phone.
//! The code itself is never stored: the challenge keeps a keyed hash bound to the
//! verification id, compared in constant time, and a challenge allows a bounded number of
//! wrong answers before it is thrown away.

use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use rand::Rng as _;

use super::digest::BoundDigester;
use super::{
    ChallengeAnswer, IdentityProvider, StartRequest, StartedChallenge, count_wrong_answer,
    refuse_if_exhausted, use_up,
};
use crate::domain::{ProviderKind, VerificationId};
use crate::error::AuthError;
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
}

impl PhoneProvider {
    pub fn new(
        store: Arc<dyn ChallengeStore>,
        sms: Arc<dyn SmsSender>,
        clock: SharedClock,
        digester: BoundDigester,
        settings: PhoneProviderSettings,
    ) -> Self {
        Self {
            store,
            sms,
            clock,
            digester,
            settings,
        }
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
    fn kind(&self) -> ProviderKind {
        ProviderKind::Phone
    }

    async fn start(&self, request: StartRequest) -> Result<StartedChallenge, AuthError> {
        let phone = request.phone.ok_or(AuthError::InvalidPhone)?;
        let otp = generate_otp();
        let expires_at = self.clock.now()
            + chrono::Duration::from_std(self.settings.otp_ttl)
                .unwrap_or(chrono::Duration::minutes(3));
        let challenge = Challenge {
            provider: ProviderKind::Phone,
            person_key: request.person_key,
            birth_date: request.birth_date,
            masked_name: request.name.masked(),
            device_id: request.device_id,
            secret: ChallengeSecret::OtpDigest {
                digest: self.digester.digest(&request.verification_id, &otp),
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
        let ChallengeSecret::OtpDigest { digest } = &challenge.secret else {
            tracing::warn!(%verification_id, "a phone challenge holds no code digest");
            return Err(AuthError::VerificationExpired);
        };
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
