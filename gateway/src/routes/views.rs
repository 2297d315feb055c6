//! The JSON shapes of the API, converted from the services' prost messages at the edge.
//! A required field missing from a service's answer is a fault of that service: it is logged
//! (by field name only) and answered as `internal`.

use platform::clock::{from_timestamp, rfc3339_kst};
use platform::problem::Problem;
use proto::booking::v1 as booking;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::HttpProblem;

/// An incomplete answer from `service`: log the field, answer an opaque internal error.
pub fn incomplete(service: &'static str, field: &'static str) -> HttpProblem {
    tracing::error!(service, field, "a service answer lacks a required field");
    Problem::internal().into()
}

/// An optional protobuf time as RFC 3339 in KST.
pub fn optional_time(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.and_then(from_timestamp).map(rfc3339_kst)
}

/// A required protobuf time as RFC 3339 in KST.
pub fn required_time(
    service: &'static str,
    field: &'static str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<String, HttpProblem> {
    optional_time(ts).ok_or_else(|| incomplete(service, field))
}

/// Empty protobuf strings mean "not set".
pub fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Center)]
pub struct CenterView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub region: String,
    pub address: String,
}

impl From<booking::Center> for CenterView {
    fn from(center: booking::Center) -> Self {
        Self {
            id: center.id,
            name: center.name,
            region: center.region,
            address: center.address,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Slot)]
pub struct SlotView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: String,
    #[schema(format = Uuid)]
    pub center_id: String,
    /// Vaccination date, YYYY-MM-DD (KST).
    #[schema(format = Date)]
    pub date: String,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub starts_at: String,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub ends_at: String,
    pub vaccine: String,
    pub capacity: i32,
    /// Released places still free (what may be booked now).
    pub remaining: i32,
    /// Places bookable now: the share of the capacity the campaign's windows opened so far
    /// have released (R5), floored.
    pub released: i32,
}

impl TryFrom<booking::Slot> for SlotView {
    type Error = HttpProblem;

    fn try_from(slot: booking::Slot) -> Result<Self, Self::Error> {
        Ok(Self {
            starts_at: required_time("booking-svc", "slot.starts_at", slot.starts_at.as_ref())?,
            ends_at: required_time("booking-svc", "slot.ends_at", slot.ends_at.as_ref())?,
            id: slot.id,
            campaign_id: slot.campaign_id,
            center_id: slot.center_id,
            date: slot.date,
            vaccine: slot.vaccine,
            capacity: slot.capacity,
            remaining: slot.remaining,
            released: slot.released,
        })
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Booking)]
pub struct BookingView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
    pub campaign_id: String,
    /// `confirmed` or `cancelled`.
    #[schema(value_type = BookingStatus)]
    pub status: &'static str,
    pub slot: SlotView,
    /// RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub created_at: String,
    /// Only for cancelled bookings; RFC 3339 with the KST offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, example = "2021-08-09T20:00:00+09:00")]
    pub cancelled_at: Option<String>,
    /// Last day the booking may be cancelled, YYYY-MM-DD (KST).
    #[schema(format = Date)]
    pub cancellable_until: String,
    /// Someone else booked this for the person (a proxy booking, where the campaign allows it).
    pub made_by_proxy: bool,
    /// For a proxy booking: the masked name (홍*동) of the person booked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "홍*동")]
    pub booked_for: Option<String>,
}

/// The state of a booking.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl TryFrom<booking::Booking> for BookingView {
    type Error = HttpProblem;

    fn try_from(value: booking::Booking) -> Result<Self, Self::Error> {
        let status = match booking::BookingStatus::try_from(value.status) {
            Ok(booking::BookingStatus::Confirmed) => "confirmed",
            Ok(booking::BookingStatus::Cancelled) => "cancelled",
            _ => return Err(incomplete("booking-svc", "booking.status")),
        };
        let slot = value
            .slot
            .ok_or_else(|| incomplete("booking-svc", "booking.slot"))?;
        Ok(Self {
            status,
            slot: SlotView::try_from(slot)?,
            created_at: required_time(
                "booking-svc",
                "booking.created_at",
                value.created_at.as_ref(),
            )?,
            cancelled_at: optional_time(value.cancelled_at.as_ref()),
            id: value.id,
            campaign_id: value.campaign_id,
            cancellable_until: value.cancellable_until,
            made_by_proxy: value.made_by_proxy,
            booked_for: (!value.booked_for_masked_name.is_empty())
                .then_some(value.booked_for_masked_name),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn slot() -> booking::Slot {
        booking::Slot {
            id: "slot-1".into(),
            campaign_id: "c".into(),
            center_id: "center".into(),
            date: "2021-08-26".into(),
            starts_at: Some(prost_types::Timestamp {
                seconds: 1_629_932_400,
                nanos: 0,
            }),
            ends_at: Some(prost_types::Timestamp {
                seconds: 1_629_936_000,
                nanos: 0,
            }),
            vaccine: "mRNA".into(),
            capacity: 10,
            remaining: 3,
            released: 10,
        }
    }

    #[test]
    fn a_cancelled_booking_carries_its_cancellation_time_in_kst() {
        let view = BookingView::try_from(booking::Booking {
            id: "b".into(),
            campaign_id: "c".into(),
            slot: Some(slot()),
            status: booking::BookingStatus::Cancelled as i32,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_628_506_800,
                nanos: 0,
            }),
            cancelled_at: Some(prost_types::Timestamp {
                seconds: 1_628_510_400,
                nanos: 0,
            }),
            cancellable_until: "2021-08-24".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(view.status, "cancelled");
        assert_eq!(view.created_at, "2021-08-09T20:00:00+09:00");
        assert_eq!(
            view.cancelled_at.as_deref(),
            Some("2021-08-09T21:00:00+09:00")
        );
        assert_eq!(view.slot.starts_at, "2021-08-26T08:00:00+09:00");
    }

    #[test]
    fn a_booking_without_status_is_an_internal_error() {
        let result = BookingView::try_from(booking::Booking {
            slot: Some(slot()),
            created_at: Some(prost_types::Timestamp::default()),
            ..Default::default()
        });
        assert_eq!(
            result.unwrap_err().problem.kind,
            platform::problem::ProblemKind::Internal
        );
    }
}
