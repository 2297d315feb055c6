//! The keys a simple-certificate provider signs its assertions with, as auth-svc is configured
//! to trust them: one JWKS per provider, Ed25519 keys only, each named by its `kid`. The keys
//! are checked when auth-svc starts, so a malformed key file stops the start instead of
//! failing every verification later.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use platform::auth::{Jwk, Jwks};
use serde::Deserialize;

/// A provider's verification keys by `kid`.
#[derive(Clone)]
pub struct TrustedKeys {
    keys: HashMap<String, DecodingKey>,
}

impl TrustedKeys {
    /// Accepts only OKP/Ed25519 keys meant for EdDSA signatures, each with a distinct `kid`
    /// and a public key that is a valid Ed25519 point. An empty set is refused: a provider
    /// without keys is simply not enabled.
    pub fn from_jwks(jwks: &Jwks) -> anyhow::Result<Self> {
        if jwks.keys.is_empty() {
            anyhow::bail!("the key set holds no keys");
        }
        let mut keys = HashMap::new();
        for (index, jwk) in jwks.keys.iter().enumerate() {
            let key = decoding_key(jwk).with_context(|| format!("key {index}"))?;
            if keys.insert(jwk.kid.clone(), key).is_some() {
                anyhow::bail!("key {index}: kid {:?} appears twice", jwk.kid);
            }
        }
        Ok(Self { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }
}

fn decoding_key(jwk: &Jwk) -> anyhow::Result<DecodingKey> {
    if jwk.kid.trim().is_empty() {
        anyhow::bail!("kid is required");
    }
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
        anyhow::bail!("only OKP keys on Ed25519 are accepted");
    }
    if jwk.alg != "EdDSA" || jwk.use_ != "sig" {
        anyhow::bail!("the key must be for EdDSA signatures (alg EdDSA, use sig)");
    }
    let public = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .map_err(|_| anyhow::anyhow!("x must be base64url without padding"))?;
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| anyhow::anyhow!("x must be a 32-byte Ed25519 public key"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| anyhow::anyhow!("x is not a valid Ed25519 public key"))?;
    DecodingKey::from_ed_components(&jwk.x)
        .map_err(|_| anyhow::anyhow!("x is not a usable Ed25519 public key"))
}

/// A JWKS document as providers publish it: `alg` and `use` may be left out (EdDSA and sig
/// are then implied, the only values accepted anyway).
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<JwkDocument>,
}

#[derive(Deserialize)]
struct JwkDocument {
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    x: String,
    #[serde(default)]
    kid: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

/// Parses and checks a JWKS JSON document.
pub fn parse_jwks_document(text: &str) -> anyhow::Result<Jwks> {
    let document: JwksDocument =
        serde_json::from_str(text).context("not a JWKS JSON document ({\"keys\": [...]})")?;
    let jwks = Jwks {
        keys: document
            .keys
            .into_iter()
            .map(|key| Jwk {
                kty: key.kty,
                crv: key.crv,
                x: key.x,
                kid: key.kid,
                alg: key.alg.unwrap_or_else(|| "EdDSA".to_owned()),
                use_: key.use_.unwrap_or_else(|| "sig".to_owned()),
            })
            .collect(),
    };
    TrustedKeys::from_jwks(&jwks)?;
    Ok(jwks)
}

/// Reads the JWKS file named by the environment variable `variable`; every failure names the
/// variable, so the operator knows which setting to fix.
pub fn read_jwks_file(variable: &str, path: &Path) -> anyhow::Result<Jwks> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{variable}: cannot read {}", path.display()))?;
    parse_jwks_document(&text).with_context(|| format!("{variable}: {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use platform::dev::DevIdentityProviders;

    use super::*;

    fn dev_jwk() -> Jwk {
        DevIdentityProviders::generate().jwks("kakao").unwrap().keys[0].clone()
    }

    #[test]
    fn a_published_key_set_is_accepted_with_alg_and_use_implied() {
        let jwk = dev_jwk();
        let document = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{}","kid":"k1"}}]}}"#,
            jwk.x
        );
        let jwks = parse_jwks_document(&document).unwrap();
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.keys[0].alg, "EdDSA");
        assert_eq!(jwks.keys[0].use_, "sig");
        let trusted = TrustedKeys::from_jwks(&jwks).unwrap();
        assert!(trusted.get("k1").is_some());
        assert!(trusted.get(&jwk.kid).is_none());
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = dev_jwk();
        let with = |change: &dyn Fn(&mut Jwk)| {
            let mut jwk = good.clone();
            change(&mut jwk);
            Jwks { keys: vec![jwk] }
        };
        let bad = [
            Jwks::default(),
            with(&|jwk| jwk.kid = String::new()),
            with(&|jwk| jwk.kty = "RSA".to_owned()),
            with(&|jwk| jwk.crv = "P-256".to_owned()),
            with(&|jwk| jwk.alg = "RS256".to_owned()),
            with(&|jwk| jwk.use_ = "enc".to_owned()),
            with(&|jwk| jwk.x = "not base64!".to_owned()),
            with(&|jwk| jwk.x = URL_SAFE_NO_PAD.encode([7u8; 31])),
            Jwks {
                keys: vec![good.clone(), good.clone()],
            },
        ];
        for jwks in bad {
            assert!(TrustedKeys::from_jwks(&jwks).is_err(), "{jwks:?}");
        }
        assert!(TrustedKeys::from_jwks(&with(&|_| ())).is_ok());
    }

    #[test]
    fn file_errors_name_the_variable() {
        let missing = std::env::temp_dir().join(format!("no-such-{}.json", uuid::Uuid::new_v4()));
        let error = read_jwks_file("AUTH_IDP_PASS_JWKS_FILE", &missing).unwrap_err();
        assert!(
            format!("{error:#}").contains("AUTH_IDP_PASS_JWKS_FILE"),
            "{error:#}"
        );
        for text in ["not json", r#"{"keys":[]}"#, r#"{"keys":[{"kty":"OKP"}]}"#] {
            assert!(parse_jwks_document(text).is_err(), "{text}");
        }
    }
}
