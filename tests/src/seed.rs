//! Seeding a running system through the operators' gRPC APIs: a campaign whose booking window
//! is open now (real clock), one center and a few slots.

use chrono::{Duration, Utc};
use platform::operator::OperatorCredential;
use proto::booking::v1::booking_admin_service_client::BookingAdminServiceClient;
use proto::booking::v1::{Center, Slot, UpsertCenterRequest, UpsertSlotRequest};
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::{Campaign, UpsertCampaignRequest};

pub const CAMPAIGN_ID: &str = "e2e-18-49";

/// What [`open_campaign`] created.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub campaign_id: String,
    pub center_id: String,
    /// Slots on D+5 and D+6 (KST), capacity 5 each.
    pub slot_ids: Vec<String>,
    /// A slot on D+1: cancellation is already closed for it.
    pub tomorrow_slot_id: String,
}

/// Seeds an 18–49 campaign open now, one center, slots on D+5 and D+6 (capacity 5) and one
/// on D+1.
pub async fn open_campaign(
    scheduling_url: &str,
    booking_url: &str,
    operator: &OperatorCredential,
) -> anyhow::Result<Seeded> {
    open_campaign_with(scheduling_url, booking_url, operator, 2, 5).await
}

/// Seeds an 18–49 campaign open now, one center, `slots` slots of `capacity` on D+5, D+6, …
/// and one slot on D+1.
pub async fn open_campaign_with(
    scheduling_url: &str,
    booking_url: &str,
    operator: &OperatorCredential,
    slots: i64,
    capacity: i32,
) -> anyhow::Result<Seeded> {
    let timeout = std::time::Duration::from_secs(10);
    let mut scheduling =
        SchedulingAdminServiceClient::new(platform::grpc::channel(scheduling_url, timeout)?);
    let mut booking =
        BookingAdminServiceClient::new(platform::grpc::channel(booking_url, timeout)?);
    let now = Utc::now();
    let today = now.with_timezone(&chrono_tz::Asia::Seoul).date_naive();
    let date = |days: i64| platform::ids::format_iso_date(today + Duration::days(days));
    scheduling
        .upsert_campaign(operator.request(UpsertCampaignRequest {
            campaign: Some(Campaign {
                id: CAMPAIGN_ID.to_owned(),
                name: "End-to-end 18–49".to_owned(),
                born_from: "1972-01-01".to_owned(),
                born_to: "2003-12-31".to_owned(),
                booking_opens_at: Some(platform::clock::to_timestamp(now - Duration::hours(1))),
                booking_closes_at: Some(platform::clock::to_timestamp(now + Duration::days(2))),
                vaccination_from: date(1),
                vaccination_to: date(5 + slots),
                proxy_allowed: false,
                proxy_deadline: None,
                modification_allowed_from: None,
                cancellation_closes_days_before: 2,
                ..Default::default()
            }),
        })?)
        .await?;
    let center = center(&mut booking, operator).await?;
    let mut slot_ids = Vec::new();
    let mut tomorrow_slot_id = String::new();
    for days in (5..5 + slots).chain([1]) {
        let starts_at = now + Duration::days(days);
        let slot = booking
            .upsert_slot(operator.request(UpsertSlotRequest {
                slot: Some(Slot {
                    id: String::new(),
                    campaign_id: CAMPAIGN_ID.to_owned(),
                    center_id: center.id.clone(),
                    date: date(days),
                    starts_at: Some(platform::clock::to_timestamp(starts_at)),
                    ends_at: Some(platform::clock::to_timestamp(
                        starts_at + Duration::hours(4),
                    )),
                    vaccine: "Pfizer".to_owned(),
                    capacity,
                    remaining: 0,
                    released: 0,
                }),
            })?)
            .await?
            .into_inner();
        if days == 1 {
            tomorrow_slot_id = slot.id;
        } else {
            slot_ids.push(slot.id);
        }
    }
    Ok(Seeded {
        campaign_id: CAMPAIGN_ID.to_owned(),
        center_id: center.id,
        slot_ids,
        tomorrow_slot_id,
    })
}

/// Creates the one center the end-to-end tests book at (a new id each call).
pub async fn center(
    booking: &mut BookingAdminServiceClient<platform::grpc::GrpcChannel>,
    operator: &OperatorCredential,
) -> anyhow::Result<Center> {
    Ok(booking
        .upsert_center(operator.request(UpsertCenterRequest {
            center: Some(Center {
                id: String::new(),
                name: "서울 중구 예방접종센터".to_owned(),
                region: "서울".to_owned(),
                address: "서울특별시 중구 을지로 1".to_owned(),
            }),
        })?)
        .await?
        .into_inner())
}
