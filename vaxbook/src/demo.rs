//! The demo data of the dev run: the 2021 rounds of the shipped campaign file
//! (deploy/campaigns/2021.yaml) — 18–49 with its 10-part rotation 9–18 Aug, catch-up days and
//! open window, vaccination 26 Aug → 2 Oct; 60+ open throughout, proxies until 9 Aug 18:00,
//! call centers allowed — with vaccination centers and slots of each round over its
//! vaccination period. Loaded through the services' admin gRPC APIs, like an operator would.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Seoul;
use platform::operator::OperatorCredential;
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

/// The shipped campaign file of the 2021 rounds.
pub const CAMPAIGN_FILE_2021: &str = include_str!("../../deploy/campaigns/2021.yaml");

fn campaigns() -> anyhow::Result<Vec<Campaign>> {
    Ok(scheduling_svc::campaign_file::parse(CAMPAIGN_FILE_2021)?)
}

/// The walk-through person (README, the banner): name, RRN, phone and carrier, registered with
/// the dev run's stand-in carriers' agency so the phone provider verifies them. Born on the
/// 13th, so their rotation window (13 Aug 20:00 → 14 Aug 18:00) is open when the dev clock
/// starts.
pub const WALKTHROUGH_PERSON: (&str, &str, &str, &str) =
    ("홍길동", "900113-1234567", "010-1234-5678", "skt");

/// The walk-through's second person: born on the 15th, not yet in their window at the dev
/// clock's start (it opens 15 Aug 20:00).
pub const WAITING_PERSON: (&str, &str, &str, &str) =
    ("김영희", "950115-2234567", "010-2345-6789", "kt");

/// The call-center walk-through's caller: the parent of the walk-through's refused proxy
/// booking (born 1950, in the 60+ round, which takes call-center bookings), who phones the call
/// center instead. Registered with the stand-in carriers' agency, which the agent's caller check
/// asks.
pub const CALL_CENTER_CALLER: (&str, &str, &str, &str) =
    ("김순자", "500303-2234567", "010-3456-7890", "lgu");

/// Registers the walk-through people's phones in the dev subscriber directory.
pub fn seed_carriers(directory: &platform::carrier::CarrierDirectory) -> anyhow::Result<()> {
    for (name, rrn, phone, carrier) in [WALKTHROUGH_PERSON, WAITING_PERSON, CALL_CENTER_CALLER] {
        directory.register(&platform::carrier::Subscriber {
            name: name.to_owned(),
            rrn: rrn.to_owned(),
            phone: phone.to_owned(),
            carrier: carrier.to_owned(),
        })?;
    }
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

/// The slots each round gets at every center: its vaccination days (month, day), the time
/// bands of a day (KST hours), and the digit that keeps its slot ids apart.
struct RoundSlots {
    campaign_id: &'static str,
    first: (u32, u32),
    last: (u32, u32),
    bands: &'static [(u32, u32)],
    id_digit: char,
}

const ROUNDS: &[RoundSlots] = &[
    RoundSlots {
        campaign_id: CAMPAIGN_18_49,
        first: (8, 26),
        last: (10, 2),
        bands: &[(9, 13), (14, 18)],
        id_digit: '9',
    },
    // The 60+ round's own slots, from the Monday after the dev clock's start.
    RoundSlots {
        campaign_id: CAMPAIGN_60_PLUS,
        first: (8, 16),
        last: (9, 30),
        bands: &[(10, 12)],
        id_digit: 'a',
    },
];

/// `hour`:00 KST on `date`.
fn kst_on(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    Seoul
        .from_local_datetime(&date.and_hms_opt(hour, 0, 0).unwrap_or_default())
        .single()
        .map(|instant| instant.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Places per slot in the demo.
const SLOT_CAPACITY: i32 = 40;

/// Loads the demo with `credential` (the dev run's own key in `vaxbook dev`, an operator token
/// for `vaxbook seed-demo` against a deployment); returns a one-line summary.
pub async fn seed(
    scheduling_url: &str,
    booking_url: &str,
    credential: &OperatorCredential,
) -> anyhow::Result<String> {
    let timeout = std::time::Duration::from_secs(10);
    let mut scheduling =
        SchedulingAdminServiceClient::new(platform::grpc::channel(scheduling_url, timeout)?);
    let mut booking =
        BookingAdminServiceClient::new(platform::grpc::channel(booking_url, timeout)?);

    let campaigns = campaigns()?;
    for campaign in &campaigns {
        scheduling
            .upsert_campaign(credential.request(UpsertCampaignRequest {
                campaign: Some(campaign.clone()),
            })?)
            .await
            .map_err(|status| {
                crate::operator::refused(&format!("campaign {}", campaign.id), credential, &status)
            })?;
    }

    let mut slot_count = 0usize;
    let day = |month, day| NaiveDate::from_ymd_opt(2021, month, day).unwrap_or_default();
    for (index, (name, region, address)) in CENTERS.iter().enumerate() {
        // Stable ids, so seeding twice replaces instead of duplicating.
        let center_id = format!("00000000-0000-4000-8000-{:012}", index + 1);
        let center = booking
            .upsert_center(credential.request(UpsertCenterRequest {
                center: Some(Center {
                    id: center_id,
                    name: (*name).to_owned(),
                    region: (*region).to_owned(),
                    address: (*address).to_owned(),
                }),
            })?)
            .await
            .map_err(|status| crate::operator::refused("center", credential, &status))?
            .into_inner();
        for round in ROUNDS {
            let days = day(round.first.0, round.first.1)
                .iter_days()
                .take_while(|date| *date <= day(round.last.0, round.last.1));
            for (day_index, date) in days.enumerate() {
                for (band_index, (from_hour, to_hour)) in round.bands.iter().enumerate() {
                    let slot_id = format!(
                        "00000000-0000-4000-{}{:03}-{:012}",
                        round.id_digit,
                        index + 1,
                        day_index * 10 + band_index
                    );
                    let slot = Slot {
                        id: slot_id,
                        campaign_id: round.campaign_id.to_owned(),
                        center_id: center.id.clone(),
                        date: platform::ids::format_iso_date(date),
                        starts_at: Some(platform::clock::to_timestamp(kst_on(date, *from_hour))),
                        ends_at: Some(platform::clock::to_timestamp(kst_on(date, *to_hour))),
                        vaccine: if day_index % 2 == 0 {
                            "Pfizer"
                        } else {
                            "Moderna"
                        }
                        .to_owned(),
                        capacity: SLOT_CAPACITY,
                        remaining: 0,
                        released: 0,
                    };
                    booking
                        .upsert_slot(credential.request(UpsertSlotRequest { slot: Some(slot) })?)
                        .await
                        .map_err(|status| crate::operator::refused("slot", credential, &status))?;
                    slot_count += 1;
                }
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
