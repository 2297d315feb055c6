//! The demo data of the dev run: the 2021 18–49 round (born 1972-01-01 … 2003-12-31, booking
//! open 9 Aug 2021 20:00 → 18 Sep 2021 18:00 KST, vaccination 26 Aug → 2 Oct 2021) and the 60+
//! round that ran beside it, with vaccination centers and slots over the vaccination period.
//! Loaded through the services' admin gRPC APIs, like an operator would.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use platform::grpc::admin_request;
use proto::booking::v1::booking_admin_service_client::BookingAdminServiceClient;
use proto::booking::v1::{Center, Slot, UpsertCenterRequest, UpsertSlotRequest};
use proto::scheduling::v1::scheduling_admin_service_client::SchedulingAdminServiceClient;
use proto::scheduling::v1::{Campaign, UpsertCampaignRequest};

pub const CAMPAIGN_18_49: &str = "covid19-2021-18-49";
pub const CAMPAIGN_60_PLUS: &str = "covid19-2021-60-plus";

/// The instant the dev clock starts at: inside the 18–49 booking period.
pub fn dev_clock_start() -> DateTime<Utc> {
    kst(2021, 8, 13, 20, 30)
}

fn kst(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Seoul
        .with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .map(|instant| instant.with_timezone(&Utc))
        .unwrap_or_default()
}

fn campaigns() -> Vec<Campaign> {
    let ts = platform::clock::to_timestamp;
    vec![
        Campaign {
            id: CAMPAIGN_18_49.to_owned(),
            name: "COVID-19 vaccination, ages 18–49 (2021)".to_owned(),
            born_from: "1972-01-01".to_owned(),
            born_to: "2003-12-31".to_owned(),
            booking_opens_at: Some(ts(kst(2021, 8, 9, 20, 0))),
            booking_closes_at: Some(ts(kst(2021, 9, 18, 18, 0))),
            vaccination_from: "2021-08-26".to_owned(),
            vaccination_to: "2021-10-02".to_owned(),
            proxy_allowed: false,
            proxy_deadline: None,
            // Changes open once the general booking period is over.
            modification_allowed_from: Some(ts(kst(2021, 9, 19, 0, 0))),
            cancellation_closes_days_before: 2,
            ..Default::default()
        },
        Campaign {
            id: CAMPAIGN_60_PLUS.to_owned(),
            name: "COVID-19 vaccination, ages 60 and over (2021)".to_owned(),
            born_from: "1900-01-01".to_owned(),
            born_to: "1961-12-31".to_owned(),
            booking_opens_at: Some(ts(kst(2021, 7, 19, 20, 0))),
            booking_closes_at: Some(ts(kst(2021, 8, 9, 18, 0))),
            vaccination_from: "2021-07-26".to_owned(),
            vaccination_to: "2021-08-31".to_owned(),
            proxy_allowed: true,
            proxy_deadline: Some(ts(kst(2021, 8, 9, 18, 0))),
            modification_allowed_from: None,
            cancellation_closes_days_before: 2,
            ..Default::default()
        },
    ]
}

/// The walk-through person (README, the banner): name, RRN, phone and carrier, registered with
/// the dev run's stand-in carriers' agency so the phone provider verifies them.
pub const WALKTHROUGH_PERSON: (&str, &str, &str, &str) =
    ("홍길동", "900101-1234567", "010-1234-5678", "skt");

/// Registers the walk-through person's phone in the dev subscriber directory.
pub fn seed_carriers(directory: &platform::carrier::CarrierDirectory) -> anyhow::Result<()> {
    let (name, rrn, phone, carrier) = WALKTHROUGH_PERSON;
    directory.register(&platform::carrier::Subscriber {
        name: name.to_owned(),
        rrn: rrn.to_owned(),
        phone: phone.to_owned(),
        carrier: carrier.to_owned(),
    })?;
    Ok(())
}

const CENTERS: &[(&str, &str, &str)] = &[
    ("서울 중구 예방접종센터", "서울", "서울특별시 중구 을지로 1"),
    (
        "서울 강남구 예방접종센터",
        "서울",
        "서울특별시 강남구 테헤란로 1",
    ),
    (
        "부산 해운대구 예방접종센터",
        "부산",
        "부산광역시 해운대구 중동 1",
    ),
    (
        "대구 수성구 예방접종센터",
        "대구",
        "대구광역시 수성구 범어동 1",
    ),
    ("광주 북구 예방접종센터", "광주", "광주광역시 북구 용봉동 1"),
    (
        "제주 제주시 예방접종센터",
        "제주",
        "제주특별자치도 제주시 연동 1",
    ),
];

/// Time bands of a vaccination day (KST hours).
const BANDS: &[(u32, u32)] = &[(9, 13), (14, 18)];

/// Places per slot in the demo.
const SLOT_CAPACITY: i32 = 40;

/// Loads the demo; returns a one-line summary.
pub async fn seed(
    scheduling_url: &str,
    booking_url: &str,
    admin_key: &str,
) -> anyhow::Result<String> {
    let timeout = std::time::Duration::from_secs(10);
    let mut scheduling =
        SchedulingAdminServiceClient::new(platform::grpc::channel(scheduling_url, timeout)?);
    let mut booking =
        BookingAdminServiceClient::new(platform::grpc::channel(booking_url, timeout)?);

    let campaigns = campaigns();
    for campaign in &campaigns {
        scheduling
            .upsert_campaign(admin_request(
                UpsertCampaignRequest {
                    campaign: Some(campaign.clone()),
                },
                admin_key,
            )?)
            .await?;
    }

    let mut slot_count = 0usize;
    let first_day = NaiveDate::from_ymd_opt(2021, 8, 26).unwrap_or_default();
    let last_day = NaiveDate::from_ymd_opt(2021, 10, 2).unwrap_or_default();
    for (index, (name, region, address)) in CENTERS.iter().enumerate() {
        // Stable ids, so seeding twice replaces instead of duplicating.
        let center_id = format!("00000000-0000-4000-8000-{:012}", index + 1);
        let center = booking
            .upsert_center(admin_request(
                UpsertCenterRequest {
                    center: Some(Center {
                        id: center_id,
                        name: (*name).to_owned(),
                        region: (*region).to_owned(),
                        address: (*address).to_owned(),
                    }),
                },
                admin_key,
            )?)
            .await?
            .into_inner();
        let days = first_day.iter_days().take_while(|day| *day <= last_day);
        for (day_index, day) in days.enumerate() {
            for (band_index, (from_hour, to_hour)) in BANDS.iter().enumerate() {
                let starts_at = Seoul
                    .from_local_datetime(&day.and_hms_opt(*from_hour, 0, 0).unwrap_or_default())
                    .single()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default();
                let ends_at = Seoul
                    .from_local_datetime(&day.and_hms_opt(*to_hour, 0, 0).unwrap_or_default())
                    .single()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default();
                let slot_id = format!(
                    "00000000-0000-4000-9{:03}-{:012}",
                    index + 1,
                    day_index * 10 + band_index
                );
                booking
                    .upsert_slot(admin_request(
                        UpsertSlotRequest {
                            slot: Some(Slot {
                                id: slot_id,
                                campaign_id: CAMPAIGN_18_49.to_owned(),
                                center_id: center.id.clone(),
                                date: day.format("%Y-%m-%d").to_string(),
                                starts_at: Some(platform::clock::to_timestamp(starts_at)),
                                ends_at: Some(platform::clock::to_timestamp(ends_at)),
                                vaccine: if day_index % 2 == 0 {
                                    "Pfizer"
                                } else {
                                    "Moderna"
                                }
                                .to_owned(),
                                capacity: SLOT_CAPACITY,
                                remaining: 0,
                            }),
                        },
                        admin_key,
                    )?)
                    .await?;
                slot_count += 1;
            }
        }
    }
    Ok(format!(
        "seeded {} campaigns, {} centers, {} slots",
        campaigns.len(),
        CENTERS.len(),
        slot_count
    ))
}
