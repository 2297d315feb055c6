//! Services trust no caller: the grant kinds one vaxbook service hands another
//! ([`crate::grants`] carries them), and the one way a service counts and logs a call it
//! refused for want of a credential, so an SRE sees an attack on the internal network as it
//! happens. docs/security.md says who may call what.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grants::GrantKind;

/// auth-svc's proof that the person `sub` has just completed an identity verification on the
/// device `dev`: the only thing session-svc accepts as the reason to give a device the
/// person's lock (`ClaimDevice`). Short-lived and single use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProof {
    /// The person key.
    pub sub: String,
    /// The device id.
    pub dev: String,
}

impl GrantKind for DeviceProof {
    const KIND: &'static str = "device-proof";
    const ISSUER: &'static str = crate::auth::ISSUER;
    const AUDIENCE: &'static str = "vaxbook-session";
}

/// How long a device proof is valid: the claim follows the verification at once, so this only
/// covers the call to session-svc and some clock skew between replicas.
pub const DEVICE_PROOF_TTL: Duration = Duration::from_secs(30);

/// Counts a refused internal call (`refused_internal_calls_total{service, rpc, reason}`) and
/// logs it once as a security event. `reason` is a short fixed label (`no-credential`,
/// `invalid-proof`, `replayed-proof`, `wrong-person`, …), never a value from the request: no
/// person key, device id or token reaches the log.
pub fn refused_call(service: &'static str, rpc: &'static str, reason: &'static str) {
    metrics::counter!(
        "refused_internal_calls_total",
        "service" => service,
        "rpc" => rpc,
        "reason" => reason,
    )
    .increment(1);
    tracing::warn!(
        security_event = "refused-internal-call",
        service,
        rpc,
        reason,
        "refused a call without a valid credential"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, SettableClock};
    use crate::grants::{GrantIssuer, GrantVerifier, SigningKeys, StaticKeysSource};

    #[tokio::test]
    async fn a_device_proof_is_never_an_access_token() {
        let keys = Arc::new(SigningKeys::generate().unwrap());
        let clock = Arc::new(SettableClock::new());
        let proof = GrantIssuer::new(keys.clone())
            .issue(
                &DeviceProof {
                    sub: "pk-1".to_owned(),
                    dev: "pc-1".to_owned(),
                },
                clock.now(),
                DEVICE_PROOF_TTL,
            )
            .unwrap();
        let source = Arc::new(StaticKeysSource(keys.jwks()));
        let grants = GrantVerifier::new(source.clone(), clock.clone());
        let verified = grants.verify::<DeviceProof>(&proof.token).await.unwrap();
        assert_eq!(verified.claims.sub, "pk-1");
        let tokens = crate::auth::TokenVerifier::new(source, clock);
        assert!(tokens.verify(&proof.token).await.is_err());
    }
}
