//! What only the dev run (`vaxbook dev`) has: the settable clock every service reads, the
//! SMS sink the gateway shows on `/dev/sms` and the stand-in carrier agency's subscribers.
//! Production wiring never constructs these.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::auth::{Jwk, Jwks};
use crate::carrier::CarrierDirectory;
use crate::clock::SettableClock;
use crate::idp::{ASSERTION_AUDIENCE, SIMPLE_CERT_PROVIDERS, SimpleCertAssertion};

/// One message the dev SMS sink "sent".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentSms {
    pub to: String,
    pub body: String,
    pub otp: String,
    pub sent_at: String,
}

/// Keeps the messages the dev run "sent", newest last, bounded.
#[derive(Debug, Default)]
pub struct SmsOutbox {
    messages: Mutex<Vec<SentSms>>,
}

impl SmsOutbox {
    const LIMIT: usize = 10_000;

    pub fn push(&self, message: SentSms) {
        if let Ok(mut messages) = self.messages.lock() {
            if messages.len() >= Self::LIMIT {
                messages.remove(0);
            }
            messages.push(message);
        }
    }

    /// Messages sent to `to` (digits compared, so 010-1234-5678 = 01012345678), newest first.
    pub fn sent_to(&self, to: &str) -> Vec<SentSms> {
        let wanted = digits(to);
        self.messages
            .lock()
            .map(|messages| {
                messages
                    .iter()
                    .rev()
                    .filter(|message| digits(&message.to) == wanted)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// Stand-ins for the Kakao, Naver and PASS apps: each has its own Ed25519 key, signs
/// assertions for whoever asks (that is the dev part), and publishes its key as a JWKS that the
/// dev run's auth-svc trusts.
pub struct DevIdentityProviders {
    keys: HashMap<&'static str, (String, EncodingKey, Jwk)>,
}

impl std::fmt::Debug for DevIdentityProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdentityProviders")
            .finish_non_exhaustive()
    }
}

/// Why the dev provider could not sign.
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("unknown provider {0}")]
    UnknownProvider(String),
    #[error("signing the assertion failed")]
    Signing,
}

impl DevIdentityProviders {
    pub fn generate() -> Self {
        let mut keys = HashMap::new();
        for provider in SIMPLE_CERT_PROVIDERS {
            let signing = SigningKey::generate(&mut rand::rngs::OsRng);
            let kid = format!("dev-{provider}");
            let Ok(der) = signing.to_pkcs8_der() else {
                continue;
            };
            let jwk = Jwk {
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x: URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
                kid: kid.clone(),
                alg: "EdDSA".to_owned(),
                use_: "sig".to_owned(),
            };
            keys.insert(
                *provider,
                (kid, EncodingKey::from_ed_der(der.as_bytes()), jwk),
            );
        }
        Self { keys }
    }

    /// The public keys of `provider`, as auth-svc is configured to trust them.
    pub fn jwks(&self, provider: &str) -> Option<Jwks> {
        self.keys.get(provider).map(|(_, _, jwk)| Jwks {
            keys: vec![jwk.clone()],
        })
    }

    /// Signs an assertion, valid for five minutes from `now`, that the person confirmed in the
    /// provider's app.
    pub fn issue(
        &self,
        provider: &str,
        name: &str,
        rrn: &str,
        phone: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<String, DevIdpError> {
        let (kid, key, _) = self
            .keys
            .get(provider)
            .ok_or_else(|| DevIdpError::UnknownProvider(provider.to_owned()))?;
        let claims = SimpleCertAssertion {
            iss: provider.to_owned(),
            aud: ASSERTION_AUDIENCE.to_owned(),
            nonce: nonce.to_owned(),
            name: name.to_owned(),
            rrn: rrn.to_owned(),
            phone: phone.to_owned(),
            iat: now.timestamp(),
            exp: (now + Duration::minutes(5)).timestamp(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, key).map_err(|_| DevIdpError::Signing)
    }
}

/// The handles the dev run shares between its services and the gateway's `/dev` endpoints.
#[derive(Clone, Debug)]
pub struct DevHooks {
    pub clock: Arc<SettableClock>,
    pub sms: Arc<SmsOutbox>,
    pub idp: Arc<DevIdentityProviders>,
    /// The stand-in identity-verification agency's subscribers (phone provider).
    pub carriers: Arc<CarrierDirectory>,
    /// The stand-in financial-certificate authority.
    pub financial_ca: Arc<crate::dev_ca::DevFinancialCa>,
}

impl DevHooks {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            clock: Arc::new(SettableClock::starting_at(start)),
            sms: Arc::new(SmsOutbox::default()),
            idp: Arc::new(DevIdentityProviders::generate()),
            carriers: Arc::new(CarrierDirectory::new()),
            financial_ca: Arc::new(crate::dev_ca::DevFinancialCa::new()),
        }
    }
}
