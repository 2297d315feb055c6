//! The two factors of a staff login: the password, hashed with argon2id (in a blocking task, it
//! is slow on purpose), and the TOTP code of RFC 6238 (SHA-1, 6 digits, 30 s steps, one step of
//! clock skew either way), with the secret shown once at account creation as base32 text and as
//! an `otpauth://` URI.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use totp_rs::{Secret as TotpSecretBytes, TOTP};

/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "vaxbook";
/// Shortest password accepted at account creation.
pub const MIN_PASSWORD_CHARS: usize = 12;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing the password: {err}"))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await?)
}

/// A fresh TOTP secret, base32 without padding.
pub fn new_totp_secret() -> String {
    TotpSecretBytes::generate_secret().to_encoded().to_string()
}

fn totp(secret_base32: &str, username: &str) -> anyhow::Result<TOTP> {
    let bytes = TotpSecretBytes::Encoded(secret_base32.to_owned())
        .to_bytes()
        .map_err(|err| anyhow::anyhow!("the TOTP secret is not base32: {err:?}"))?;
    TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some(TOTP_ISSUER.to_owned()),
        username.to_owned(),
    )
    .map_err(|err| anyhow::anyhow!("building the TOTP: {err}"))
}

/// Whether `code` is the account's TOTP code at `unix_secs` (± one step).
pub fn check_totp(secret_base32: &str, username: &str, code: &str, unix_secs: u64) -> bool {
    totp(secret_base32, username)
        .map(|totp| totp.check(code.trim(), unix_secs))
        .unwrap_or(false)
}

/// The code at `unix_secs` (tests, the dev run's `vaxbook callcenter login --dev-totp`).
pub fn totp_code(secret_base32: &str, username: &str, unix_secs: u64) -> anyhow::Result<String> {
    Ok(totp(secret_base32, username)?.generate(unix_secs))
}

/// The `otpauth://totp/...` URI authenticator apps scan.
pub fn otpauth_uri(secret_base32: &str, username: &str) -> anyhow::Result<String> {
    Ok(totp(secret_base32, username)?.get_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery".into(), hash.clone())
                .await
                .expect("verify")
        );
        assert!(
            !verify_password("wrong horse battery".into(), hash)
                .await
                .expect("verify")
        );
        assert!(
            !verify_password("x".into(), "not a hash".into())
                .await
                .expect("verify")
        );
    }

    #[test]
    fn totp_codes_match_within_one_step() {
        let secret = new_totp_secret();
        let now = 1_700_000_000;
        let code = totp_code(&secret, "agent.kim", now).expect("code");
        assert!(check_totp(&secret, "agent.kim", &code, now));
        assert!(check_totp(&secret, "agent.kim", &code, now + 30));
        assert!(!check_totp(&secret, "agent.kim", &code, now + 120));
        assert!(!check_totp(&secret, "agent.kim", "000000x", now));
        let uri = otpauth_uri(&secret, "agent.kim").expect("uri");
        assert!(uri.starts_with("otpauth://totp/"));
        assert!(uri.contains(&secret));
    }
}
