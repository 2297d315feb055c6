//! Keyed digests of challenge secrets (a one-time code, a started name), bound to their
//! verification id: the challenge store keeps only the digest, so a dump of it reveals neither
//! the secret nor lets anyone try the few possible codes offline. Each use has its own key,
//! derived from the service secret, separate from the person-key hash that shares it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::VerificationId;

type HmacSha256 = Hmac<Sha256>;

/// Digests one kind of challenge secret.
#[derive(Clone)]
pub struct BoundDigester {
    key: Vec<u8>,
}

impl BoundDigester {
    /// For one-time codes.
    pub fn for_codes(service_secret: &[u8]) -> Self {
        Self::new(service_secret, b"vaxbook auth-svc otp digest key v1")
    }

    /// For the name a simple-certificate verification started with.
    pub fn for_names(service_secret: &[u8]) -> Self {
        Self::new(service_secret, b"vaxbook auth-svc name digest key v1")
    }

    fn new(service_secret: &[u8], purpose: &[u8]) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(service_secret).expect("HMAC accepts keys of any length");
        mac.update(purpose);
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, verification_id: &VerificationId, secret: &str) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(verification_id.to_string().as_bytes());
        mac.update(b":");
        mac.update(secret.as_bytes());
        mac
    }

    pub fn digest(&self, verification_id: &VerificationId, secret: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(verification_id, secret).finalize().into_bytes())
    }

    /// Constant-time comparison of `secret` against the stored digest.
    pub fn matches(&self, verification_id: &VerificationId, secret: &str, digest: &str) -> bool {
        let Ok(expected) = URL_SAFE_NO_PAD.decode(digest) else {
            return false;
        };
        self.mac(verification_id, secret)
            .verify_slice(&expected)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_keyed_and_bound_to_the_verification() {
        let digester = BoundDigester::for_codes(b"secret");
        let id = VerificationId::new_random();
        let digest = digester.digest(&id, "123456");
        assert!(!digest.contains("123456"));
        assert!(digester.matches(&id, "123456", &digest));
        assert!(!digester.matches(&id, "123457", &digest));
        assert!(!digester.matches(&VerificationId::new_random(), "123456", &digest));
        assert!(!BoundDigester::for_codes(b"other").matches(&id, "123456", &digest));
        assert!(!digester.matches(&id, "123456", "not base64!"));
    }

    #[test]
    fn each_use_has_its_own_key() {
        let id = VerificationId::new_random();
        let code = BoundDigester::for_codes(b"secret").digest(&id, "value");
        let name = BoundDigester::for_names(b"secret").digest(&id, "value");
        assert_ne!(code, name);
    }
}
