//! Validated domain types for the session service. Wire messages are turned into these at the
//! edge (`TryFrom`), so the rules and the stores never see an unchecked string: a malformed
//! field becomes `InvalidArgument` and nothing is changed. The identifiers themselves
//! (`PersonKey`, `DeviceId`, `SessionId`) are the shared ones of `platform::ids`, so the limits
//! here are the limits every other service applies.

pub use platform::ids::{DeviceId, PersonKey, SessionId};
use proto::session::v1 as pb;

use crate::error::SessionError;

/// A device asking for the person's lock, with auth-svc's device proof (empty when none was
/// sent: [`crate::callers`] refuses it).
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimDevice {
    pub person_key: PersonKey,
    pub device_id: DeviceId,
    pub device_proof: String,
}

impl std::fmt::Debug for ClaimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The proof is a credential: never printed.
        f.debug_struct("ClaimDevice")
            .field("person_key", &self.person_key)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl TryFrom<pb::ClaimDeviceRequest> for ClaimDevice {
    type Error = SessionError;

    fn try_from(request: pb::ClaimDeviceRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            device_id: DeviceId::parse(&request.device_id)?,
            device_proof: request.device_proof,
        })
    }
}

/// auth-svc asking whether a claim by this device would be refused, with its device-check grant
/// (empty when none was sent: [`crate::callers`] refuses it).
#[derive(Clone, PartialEq, Eq)]
pub struct CheckDevice {
    pub person_key: PersonKey,
    pub device_id: DeviceId,
    pub device_check: String,
}

impl std::fmt::Debug for CheckDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The grant is a credential: never printed.
        f.debug_struct("CheckDevice")
            .field("person_key", &self.person_key)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl TryFrom<pb::CheckDeviceRequest> for CheckDevice {
    type Error = SessionError;

    fn try_from(request: pb::CheckDeviceRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            device_id: DeviceId::parse(&request.device_id)?,
            device_check: request.device_check,
        })
    }
}

/// A question whether a session still holds the person's lock on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateSession {
    pub person_key: PersonKey,
    pub session_id: SessionId,
    pub device_id: DeviceId,
    /// The fencing number the caller's token carries, when it carries one.
    pub fence: Option<u64>,
}

impl TryFrom<pb::ValidateSessionRequest> for ValidateSession {
    type Error = SessionError;

    fn try_from(request: pb::ValidateSessionRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            session_id: SessionId::parse(&request.session_id)?,
            device_id: DeviceId::parse(&request.device_id)?,
            fence: (request.fence > 0).then_some(request.fence),
        })
    }
}

/// A session ending itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSession {
    pub person_key: PersonKey,
    pub session_id: SessionId,
}

impl TryFrom<pb::ReleaseSessionRequest> for ReleaseSession {
    type Error = SessionError;

    fn try_from(request: pb::ReleaseSessionRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            session_id: SessionId::parse(&request.session_id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_keys_follow_the_alphabet_and_length() {
        assert!(PersonKey::parse("pk_AbC-019").is_ok());
        assert!(PersonKey::parse(&"a".repeat(PersonKey::MAX_LEN)).is_ok());
        assert!(PersonKey::parse("").is_err());
        assert!(PersonKey::parse(&"a".repeat(PersonKey::MAX_LEN + 1)).is_err());
        assert!(PersonKey::parse("pk:1").is_err());
        assert!(PersonKey::parse("pk 1").is_err());
        assert!(PersonKey::parse("pk*").is_err());
        assert!(PersonKey::parse("한국").is_err());
    }

    #[test]
    fn device_ids_follow_the_alphabet_and_length() {
        assert!(DeviceId::parse("iPhone-15.abc:01_x").is_ok());
        assert!(DeviceId::parse(&"d".repeat(DeviceId::MAX_LEN)).is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse(&"d".repeat(DeviceId::MAX_LEN + 1)).is_err());
        assert!(DeviceId::parse("dev/1").is_err());
        assert!(DeviceId::parse("dev 1").is_err());
        assert!(DeviceId::parse("dev{1}").is_err());
    }

    #[test]
    fn session_ids_are_bounded() {
        let generated = SessionId::generate();
        assert!(SessionId::parse(generated.as_str()).is_ok());
        assert_ne!(generated, SessionId::generate());
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse(&"s".repeat(SessionId::MAX_LEN)).is_ok());
        assert!(SessionId::parse(&"s".repeat(SessionId::MAX_LEN + 1)).is_err());
        assert!(SessionId::parse("s\n1").is_err());
    }

    #[test]
    fn requests_convert_field_by_field() {
        let claim = ClaimDevice::try_from(pb::ClaimDeviceRequest {
            person_key: "pk1".into(),
            device_id: "pc-1".into(),
            device_proof: "signed-proof".into(),
        })
        .expect("a well-formed claim converts");
        assert_eq!(claim.person_key.as_str(), "pk1");
        assert_eq!(claim.device_id.as_str(), "pc-1");
        assert!(!format!("{claim:?}").contains("signed-proof"));

        let bad_device = ClaimDevice::try_from(pb::ClaimDeviceRequest {
            person_key: "pk1".into(),
            device_id: String::new(),
            device_proof: String::new(),
        });
        assert!(
            matches!(bad_device, Err(SessionError::InvalidArgument(message)) if message.contains("device_id"))
        );

        let bad_session = ValidateSession::try_from(pb::ValidateSessionRequest {
            person_key: "pk1".into(),
            session_id: String::new(),
            device_id: "pc-1".into(),
            fence: 0,
        });
        assert!(
            matches!(bad_session, Err(SessionError::InvalidArgument(message)) if message.contains("session_id"))
        );

        let bad_person = ReleaseSession::try_from(pb::ReleaseSessionRequest {
            person_key: "pk/1".into(),
            session_id: "s".into(),
        });
        assert!(
            matches!(bad_person, Err(SessionError::InvalidArgument(message)) if message.contains("person_key"))
        );
    }
}
