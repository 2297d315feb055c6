//! Validated domain types for the session service. Wire messages are turned into these at the
//! edge (`TryFrom`), so the rules and the stores never see an unchecked string: a malformed
//! field becomes `InvalidArgument` and nothing is changed.

use proto::session::v1 as pb;

use crate::error::SessionError;

/// Longest accepted person key (keyed-hash output, hex or base64url, with room to spare).
pub const MAX_PERSON_KEY_LEN: usize = 128;
/// Longest accepted device id.
pub const MAX_DEVICE_ID_LEN: usize = 128;
/// Longest accepted session id (ours are 36-character UUIDs).
pub const MAX_SESSION_ID_LEN: usize = 64;

/// The pseudonymous person key issued by auth-svc: `[A-Za-z0-9_-]{1,128}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn parse(raw: &str) -> Result<Self, SessionError> {
        if raw.is_empty() {
            return Err(SessionError::invalid("person_key is required"));
        }
        if raw.len() > MAX_PERSON_KEY_LEN {
            return Err(SessionError::invalid(format!(
                "person_key must be at most {MAX_PERSON_KEY_LEN} characters"
            )));
        }
        let well_formed = raw
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if !well_formed {
            return Err(SessionError::invalid(
                "person_key may contain only letters, digits, '_' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The device a person uses, as named by the client: `[A-Za-z0-9._:-]{1,128}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(raw: &str) -> Result<Self, SessionError> {
        if raw.is_empty() {
            return Err(SessionError::invalid("device_id is required"));
        }
        if raw.len() > MAX_DEVICE_ID_LEN {
            return Err(SessionError::invalid(format!(
                "device_id must be at most {MAX_DEVICE_ID_LEN} characters"
            )));
        }
        let well_formed = raw
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'));
        if !well_formed {
            return Err(SessionError::invalid(
                "device_id may contain only letters, digits, '.', '_', ':' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session id: opaque to callers, at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(raw: &str) -> Result<Self, SessionError> {
        if raw.is_empty() {
            return Err(SessionError::invalid("session_id is required"));
        }
        if raw.len() > MAX_SESSION_ID_LEN {
            return Err(SessionError::invalid(format!(
                "session_id must be at most {MAX_SESSION_ID_LEN} characters"
            )));
        }
        // Session ids end up inside Redis values and log fields: keep them printable.
        if raw.chars().any(char::is_control) {
            return Err(SessionError::invalid(
                "session_id must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh random session id (UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device asking for the person's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimDevice {
    pub person_key: PersonKey,
    pub device_id: DeviceId,
}

impl TryFrom<pb::ClaimDeviceRequest> for ClaimDevice {
    type Error = SessionError;

    fn try_from(request: pb::ClaimDeviceRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            device_id: DeviceId::parse(&request.device_id)?,
        })
    }
}

/// A question whether a session still holds the person's lock on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateSession {
    pub person_key: PersonKey,
    pub session_id: SessionId,
    pub device_id: DeviceId,
}

impl TryFrom<pb::ValidateSessionRequest> for ValidateSession {
    type Error = SessionError;

    fn try_from(request: pb::ValidateSessionRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            person_key: PersonKey::parse(&request.person_key)?,
            session_id: SessionId::parse(&request.session_id)?,
            device_id: DeviceId::parse(&request.device_id)?,
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
        assert!(PersonKey::parse(&"a".repeat(MAX_PERSON_KEY_LEN)).is_ok());
        assert!(PersonKey::parse("").is_err());
        assert!(PersonKey::parse(&"a".repeat(MAX_PERSON_KEY_LEN + 1)).is_err());
        assert!(PersonKey::parse("pk:1").is_err());
        assert!(PersonKey::parse("pk 1").is_err());
        assert!(PersonKey::parse("pk*").is_err());
        assert!(PersonKey::parse("한국").is_err());
    }

    #[test]
    fn device_ids_follow_the_alphabet_and_length() {
        assert!(DeviceId::parse("iPhone-15.abc:01_x").is_ok());
        assert!(DeviceId::parse(&"d".repeat(MAX_DEVICE_ID_LEN)).is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse(&"d".repeat(MAX_DEVICE_ID_LEN + 1)).is_err());
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
        assert!(SessionId::parse(&"s".repeat(MAX_SESSION_ID_LEN)).is_ok());
        assert!(SessionId::parse(&"s".repeat(MAX_SESSION_ID_LEN + 1)).is_err());
        assert!(SessionId::parse("s\n1").is_err());
    }

    #[test]
    fn requests_convert_field_by_field() {
        let claim = ClaimDevice::try_from(pb::ClaimDeviceRequest {
            person_key: "pk1".into(),
            device_id: "pc-1".into(),
        })
        .expect("a well-formed claim converts");
        assert_eq!(claim.person_key.as_str(), "pk1");
        assert_eq!(claim.device_id.as_str(), "pc-1");

        let bad_device = ClaimDevice::try_from(pb::ClaimDeviceRequest {
            person_key: "pk1".into(),
            device_id: String::new(),
        });
        assert!(
            matches!(bad_device, Err(SessionError::InvalidArgument(message)) if message.contains("device_id"))
        );

        let bad_session = ValidateSession::try_from(pb::ValidateSessionRequest {
            person_key: "pk1".into(),
            session_id: String::new(),
            device_id: "pc-1".into(),
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
