//! The edge between the gRPC messages of `vaxbook.booking.v1` and the domain: every inbound
//! message becomes a domain type through `TryFrom` here (a malformed field is
//! [`BookingError::Invalid`] naming the field), and every domain value is rendered back into its
//! message here. The tonic adapter (`grpc.rs`) only calls these.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Asia::Seoul;
use platform::clock::{from_timestamp, to_timestamp};
use platform::ids::{CampaignId, IdempotencyKey, format_iso_date, parse_iso_date};
use proto::booking::v1 as pb;
use uuid::Uuid;

use super::{
    Booking, BookingChange, BookingRequest, BookingStatus, Center, MAX_ADDRESS_LEN,
    MAX_CENTER_NAME_LEN, MAX_REGION_LEN, MAX_SLOT_CAPACITY, MAX_VACCINE_LEN, Slot, SlotDraft,
    SlotQuery, storage_precision,
};
use crate::error::BookingError;

/// A required uuid field.
pub fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, BookingError> {
    if raw.is_empty() {
        return Err(BookingError::invalid(format!("{field} is required")));
    }
    Uuid::parse_str(raw).map_err(|_| BookingError::invalid(format!("{field} must be a uuid")))
}

/// A uuid field where empty means "make a new one".
fn parse_uuid_or_new(field: &str, raw: &str) -> Result<Uuid, BookingError> {
    if raw.is_empty() {
        Ok(Uuid::new_v4())
    } else {
        parse_uuid(field, raw)
    }
}

fn parse_optional_date(field: &'static str, raw: &str) -> Result<Option<NaiveDate>, BookingError> {
    if raw.is_empty() {
        Ok(None)
    } else {
        Ok(Some(parse_iso_date(field, raw)?))
    }
}

fn parse_instant(
    field: &str,
    raw: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, BookingError> {
    let timestamp = raw.ok_or_else(|| BookingError::invalid(format!("{field} is required")))?;
    from_timestamp(timestamp)
        .map(storage_precision)
        .ok_or_else(|| BookingError::invalid(format!("{field} is not a valid timestamp")))
}

/// A trimmed text field of `min..=max` characters.
fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, BookingError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length < min {
        return Err(BookingError::invalid(format!("{field} is required")));
    }
    if length > max {
        return Err(BookingError::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Longest proxy grant accepted (a compact JWT of a few hundred bytes).
pub const MAX_PROXY_GRANT_LEN: usize = 4096;

/// The optional proxy grant: empty means none; a bounded printable token otherwise.
fn proxy_grant(raw: &str) -> Result<Option<String>, BookingError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_PROXY_GRANT_LEN || !raw.chars().all(|c| c.is_ascii_graphic()) {
        return Err(BookingError::invalid(
            "proxy_grant must be the compact grant auth-svc issued",
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// The region filter of ListCenters: empty means every region.
pub fn region_filter(request: &pb::ListCentersRequest) -> Option<String> {
    let region = request.region.trim();
    (!region.is_empty()).then(|| region.to_owned())
}

impl TryFrom<pb::ListSlotsRequest> for SlotQuery {
    type Error = BookingError;

    fn try_from(request: pb::ListSlotsRequest) -> Result<Self, BookingError> {
        let query = Self {
            center_id: parse_uuid("center_id", &request.center_id)?,
            from: parse_optional_date("from", &request.from)?,
            to: parse_optional_date("to", &request.to)?,
        };
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(BookingError::invalid("from must not be after to"));
        }
        Ok(query)
    }
}

impl TryFrom<pb::CreateBookingRequest> for BookingRequest {
    type Error = BookingError;

    fn try_from(request: pb::CreateBookingRequest) -> Result<Self, BookingError> {
        Ok(Self {
            slot_id: parse_uuid("slot_id", &request.slot_id)?,
            idempotency_key: IdempotencyKey::parse_optional(&request.idempotency_key)?,
            proxy: request.proxy,
            proxy_grant: proxy_grant(&request.proxy_grant)?,
        })
    }
}

impl TryFrom<pb::ChangeBookingRequest> for BookingChange {
    type Error = BookingError;

    fn try_from(request: pb::ChangeBookingRequest) -> Result<Self, BookingError> {
        Ok(Self {
            id: parse_uuid("id", &request.id)?,
            slot_id: parse_uuid("slot_id", &request.slot_id)?,
        })
    }
}

impl TryFrom<pb::UpsertCenterRequest> for Center {
    type Error = BookingError;

    fn try_from(request: pb::UpsertCenterRequest) -> Result<Self, BookingError> {
        let center = request
            .center
            .ok_or_else(|| BookingError::invalid("center is required"))?;
        Ok(Self {
            id: parse_uuid_or_new("center.id", &center.id)?,
            name: text("center.name", &center.name, 1, MAX_CENTER_NAME_LEN)?,
            region: text("center.region", &center.region, 1, MAX_REGION_LEN)?,
            address: text("center.address", &center.address, 0, MAX_ADDRESS_LEN)?,
        })
    }
}

impl TryFrom<pb::UpsertSlotRequest> for SlotDraft {
    type Error = BookingError;

    fn try_from(request: pb::UpsertSlotRequest) -> Result<Self, BookingError> {
        let slot = request
            .slot
            .ok_or_else(|| BookingError::invalid("slot is required"))?;
        let draft = Self {
            id: parse_uuid_or_new("slot.id", &slot.id)?,
            campaign_id: CampaignId::parse(slot.campaign_id.trim())
                .map_err(|err| err.for_field("slot.campaign_id"))?
                .into_string(),
            center_id: parse_uuid("slot.center_id", &slot.center_id)?,
            date: parse_iso_date("slot.date", &slot.date)?,
            starts_at: parse_instant("slot.starts_at", slot.starts_at.as_ref())?,
            ends_at: parse_instant("slot.ends_at", slot.ends_at.as_ref())?,
            vaccine: text("slot.vaccine", &slot.vaccine, 1, MAX_VACCINE_LEN)?,
            capacity: slot.capacity,
        };
        if draft.starts_at >= draft.ends_at {
            return Err(BookingError::invalid(
                "slot.starts_at must be before slot.ends_at",
            ));
        }
        // The date is what people see and what cancellation counts from: it must be the day
        // the slot starts on in Korea.
        if draft.starts_at.with_timezone(&Seoul).date_naive() != draft.date {
            return Err(BookingError::invalid(
                "slot.starts_at must fall on slot.date (KST)",
            ));
        }
        if !(0..=MAX_SLOT_CAPACITY).contains(&draft.capacity) {
            return Err(BookingError::invalid(format!(
                "slot.capacity must be between 0 and {MAX_SLOT_CAPACITY}"
            )));
        }
        Ok(draft)
    }
}

impl From<Center> for pb::Center {
    fn from(center: Center) -> Self {
        Self {
            id: center.id.to_string(),
            name: center.name,
            region: center.region,
            address: center.address,
        }
    }
}

impl From<Slot> for pb::Slot {
    fn from(slot: Slot) -> Self {
        let remaining = slot.remaining();
        Self {
            id: slot.id.to_string(),
            campaign_id: slot.campaign_id,
            center_id: slot.center_id.to_string(),
            date: format_iso_date(slot.date),
            starts_at: Some(to_timestamp(slot.starts_at)),
            ends_at: Some(to_timestamp(slot.ends_at)),
            vaccine: slot.vaccine,
            capacity: slot.capacity,
            remaining,
            released: slot.released.min(slot.capacity),
        }
    }
}

impl From<BookingStatus> for pb::BookingStatus {
    fn from(status: BookingStatus) -> Self {
        match status {
            BookingStatus::Confirmed => Self::Confirmed,
            BookingStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<Booking> for pb::Booking {
    fn from(booking: Booking) -> Self {
        Self {
            id: booking.id.to_string(),
            campaign_id: booking.campaign_id,
            slot: Some(booking.slot.into()),
            status: pb::BookingStatus::from(booking.status).into(),
            created_at: Some(to_timestamp(booking.created_at)),
            cancelled_at: booking.cancelled_at.map(to_timestamp),
            cancellable_until: format_iso_date(booking.cancellable_until),
            made_by_proxy: booking.booked_by.is_some(),
            booked_for_masked_name: booking.beneficiary_masked_name.unwrap_or_default(),
            channel: if booking.agent.is_some() {
                "call_center"
            } else {
                "web"
            }
            .to_owned(),
            agent: booking.agent.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use platform::problem::ProblemKind;

    fn slot_request(mutate: impl FnOnce(&mut pb::Slot)) -> pb::UpsertSlotRequest {
        // 2021-09-01 09:00 and 12:00 KST.
        let mut slot = pb::Slot {
            id: String::new(),
            campaign_id: "r18-49".into(),
            center_id: Uuid::new_v4().to_string(),
            date: "2021-09-01".into(),
            starts_at: Some(prost_types::Timestamp {
                seconds: 1_630_454_400,
                nanos: 0,
            }),
            ends_at: Some(prost_types::Timestamp {
                seconds: 1_630_465_200,
                nanos: 0,
            }),
            vaccine: "mRNA".into(),
            capacity: 10,
            remaining: 0,
            released: 0,
        };
        mutate(&mut slot);
        pb::UpsertSlotRequest { slot: Some(slot) }
    }

    fn rejects(request: pb::UpsertSlotRequest, field: &str) {
        let problem = platform::problem::Problem::from(SlotDraft::try_from(request).unwrap_err());
        assert_eq!(problem.kind, ProblemKind::InvalidRequest);
        assert!(problem.detail.contains(field), "{}", problem.detail);
    }

    #[test]
    fn a_well_formed_slot_is_accepted_and_gets_a_new_id() {
        let draft = SlotDraft::try_from(slot_request(|_| {})).unwrap();
        assert_eq!(draft.date, NaiveDate::from_ymd_opt(2021, 9, 1).unwrap());
        assert_eq!(draft.capacity, 10);
        assert!(!draft.id.is_nil());
    }

    #[test]
    fn malformed_slot_fields_are_named() {
        rejects(slot_request(|s| s.center_id = "x".into()), "center_id");
        rejects(slot_request(|s| s.campaign_id = " ".into()), "campaign_id");
        rejects(slot_request(|s| s.date = "2021/09/01".into()), "date");
        rejects(slot_request(|s| s.date = "2021-09-02".into()), "slot.date");
        rejects(slot_request(|s| s.ends_at = s.starts_at), "ends_at");
        rejects(slot_request(|s| s.starts_at = None), "starts_at");
        rejects(slot_request(|s| s.capacity = -1), "capacity");
        rejects(slot_request(|s| s.capacity = 100_001), "capacity");
        rejects(slot_request(|s| s.vaccine.clear()), "vaccine");
    }

    #[test]
    fn center_limits_are_enforced() {
        let request = |name: &str, region: &str| pb::UpsertCenterRequest {
            center: Some(pb::Center {
                id: String::new(),
                name: name.into(),
                region: region.into(),
                address: String::new(),
            }),
        };
        assert!(Center::try_from(request("서울 중구 예방접종센터", "서울")).is_ok());
        assert!(Center::try_from(request("", "서울")).is_err());
        assert!(Center::try_from(request("센", &"가".repeat(101))).is_err());
        assert!(Center::try_from(request(&"가".repeat(200), "서울")).is_ok());
        assert!(Center::try_from(pb::UpsertCenterRequest { center: None }).is_err());
    }

    #[test]
    fn change_requests_need_two_uuids() {
        let booking_id = Uuid::new_v4();
        let slot_id = Uuid::new_v4();
        let request = |id: &str, slot: &str| pb::ChangeBookingRequest {
            id: id.into(),
            slot_id: slot.into(),
        };
        let change =
            BookingChange::try_from(request(&booking_id.to_string(), &slot_id.to_string()))
                .unwrap();
        assert_eq!((change.id, change.slot_id), (booking_id, slot_id));
        let refused = |request| {
            platform::problem::Problem::from(BookingChange::try_from(request).unwrap_err())
        };
        let bad_id = refused(request("b-1", &slot_id.to_string()));
        assert_eq!(bad_id.detail, "id must be a uuid");
        let no_slot = refused(request(&booking_id.to_string(), ""));
        assert_eq!(no_slot.detail, "slot_id is required");
        let bad_slot = refused(request(&booking_id.to_string(), "s-1"));
        assert_eq!(bad_slot.kind, ProblemKind::InvalidRequest);
        assert_eq!(bad_slot.detail, "slot_id must be a uuid");
    }

    #[test]
    fn slot_queries_need_a_center_and_an_ordered_range() {
        let center_id = Uuid::new_v4().to_string();
        let query = |from: &str, to: &str| pb::ListSlotsRequest {
            center_id: center_id.clone(),
            from: from.into(),
            to: to.into(),
        };
        assert!(SlotQuery::try_from(query("", "")).is_ok());
        assert!(SlotQuery::try_from(query("2021-09-01", "2021-09-01")).is_ok());
        assert!(SlotQuery::try_from(query("2021-09-02", "2021-09-01")).is_err());
        assert!(
            SlotQuery::try_from(pb::ListSlotsRequest {
                center_id: "nope".into(),
                ..query("", "")
            })
            .is_err()
        );
    }
}
