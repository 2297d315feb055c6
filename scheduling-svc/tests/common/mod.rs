//! Fixtures shared by the integration tests: campaigns modelled on the 2021 rounds, instants in
//! KST, and a migrated PostgreSQL store in a database of its own.

#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, Utc};
use proto::scheduling::v1 as pb;
use scheduling_svc::domain::Campaign;
use scheduling_svc::store::PgCampaignStore;

/// An instant written in RFC 3339 (with its offset).
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn date(iso: &str) -> NaiveDate {
    platform::ids::parse_iso_date("date", iso).unwrap()
}

pub fn timestamp(rfc3339: &str) -> Option<prost_types::Timestamp> {
    Some(platform::clock::to_timestamp(at(rfc3339)))
}

/// The 2021 round for ages 18–49 (before the rotation rule existed in this service).
pub fn round_18_49_message() -> pb::Campaign {
    pb::Campaign {
        id: "covid19-18-49".to_owned(),
        name: "COVID-19 18-49".to_owned(),
        born_from: "1972-01-01".to_owned(),
        born_to: "2003-12-31".to_owned(),
        booking_opens_at: timestamp("2021-08-09T20:00:00+09:00"),
        booking_closes_at: timestamp("2021-09-18T18:00:00+09:00"),
        vaccination_from: "2021-08-26".to_owned(),
        vaccination_to: "2021-10-02".to_owned(),
        proxy_allowed: false,
        proxy_deadline: None,
        modification_allowed_from: None,
        cancellation_closes_days_before: 2,
        ..Default::default()
    }
}

pub fn round_18_49() -> Campaign {
    Campaign::try_from(round_18_49_message()).unwrap()
}

/// The 60+ round, still open while the 18–49 round ran; proxies allowed until 9 Aug 18:00.
pub fn round_60_plus_message() -> pb::Campaign {
    pb::Campaign {
        id: "covid19-60-plus".to_owned(),
        name: "COVID-19 60+".to_owned(),
        born_from: "1900-01-01".to_owned(),
        born_to: "1961-12-31".to_owned(),
        booking_opens_at: timestamp("2021-05-06T00:00:00+09:00"),
        booking_closes_at: timestamp("2021-09-18T18:00:00+09:00"),
        vaccination_from: "2021-05-27".to_owned(),
        vaccination_to: "2021-10-02".to_owned(),
        proxy_allowed: true,
        proxy_deadline: timestamp("2021-08-09T18:00:00+09:00"),
        modification_allowed_from: timestamp("2021-09-30T00:00:00+09:00"),
        cancellation_closes_days_before: 2,
        ..Default::default()
    }
}

pub fn round_60_plus() -> Campaign {
    Campaign::try_from(round_60_plus_message()).unwrap()
}

/// A later catch-up round for the same age group as 18–49.
pub fn catch_up_18_49() -> Campaign {
    let mut message = round_18_49_message();
    message.id = "covid19-18-49-catch-up".to_owned();
    message.name = "COVID-19 18-49 catch-up".to_owned();
    message.booking_opens_at = timestamp("2021-10-01T20:00:00+09:00");
    message.booking_closes_at = timestamp("2021-10-15T18:00:00+09:00");
    message.vaccination_from = "2021-10-18".to_owned();
    message.vaccination_to = "2021-10-30".to_owned();
    Campaign::try_from(message).unwrap()
}

/// A campaign with id `id` and otherwise the 18–49 round's rules.
pub fn campaign_with_id(id: &str) -> Campaign {
    let mut message = round_18_49_message();
    message.id = id.to_owned();
    message.name = format!("campaign {id}");
    Campaign::try_from(message).unwrap()
}

/// A fresh database of its own, migrated.
pub async fn migrated_database(label: &str) -> String {
    let url = platform::pg::create_test_database(label).await.unwrap();
    scheduling_svc::migrate(&url).await.unwrap();
    url
}

pub async fn pg_store(label: &str) -> PgCampaignStore {
    let url = migrated_database(label).await;
    pg_store_at(&url).await
}

/// A store on an already migrated database.
pub async fn pg_store_at(url: &str) -> PgCampaignStore {
    PgCampaignStore::new(platform::pg::pool(url, 4).unwrap())
}

/// The shipped campaign file of the 2021 rounds.
pub const FIXTURE_2021: &str = include_str!("../../../deploy/campaigns/2021.yaml");
pub const ROUND_2021: &str = "covid19-2021-18-49";
pub const SENIORS_2021: &str = "covid19-2021-60-plus";

/// The 2021 rounds as shipped (18–49 first, then 60+).
pub fn fixture_2021() -> Vec<Campaign> {
    scheduling_svc::campaign_file::parse_campaigns(FIXTURE_2021).unwrap()
}

/// A clock that stands still at whatever it was set to (boundaries to the millisecond).
#[derive(Debug, Default)]
pub struct FrozenClock(std::sync::RwLock<DateTime<Utc>>);

impl FrozenClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(std::sync::RwLock::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.write().unwrap() = now;
    }
}

impl platform::clock::Clock for FrozenClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.read().unwrap()
    }
}

/// The service with the shipped 2021 rounds loaded, on a frozen clock.
pub async fn scheduling_2021(
    now: &str,
) -> (
    std::sync::Arc<FrozenClock>,
    std::sync::Arc<scheduling_svc::Scheduling>,
) {
    let clock = std::sync::Arc::new(FrozenClock::at(at(now)));
    let scheduling = scheduling_svc::Scheduling::load(
        std::sync::Arc::new(scheduling_svc::MemoryCampaignStore::new()),
        clock.clone(),
    )
    .await
    .unwrap();
    for campaign in fixture_2021() {
        scheduling.upsert_campaign(campaign).await.unwrap();
    }
    (clock, std::sync::Arc::new(scheduling))
}

/// A staff token of `role` as auth-svc's `StaffAuthService.Login` issues it (an agent token
/// grant), signed with `keys` — the stand-in's to be believed, any other to be a forgery.
pub fn staff_token(
    keys: &std::sync::Arc<platform::grants::SigningKeys>,
    role: platform::staff::StaffRole,
    account: &str,
    now: DateTime<Utc>,
) -> String {
    let claims = platform::staff::AgentToken {
        sub: account.to_owned(),
        username: format!("{}.kim", role.as_str()),
        org: "national-call-center".to_owned(),
        role,
    };
    platform::grants::GrantIssuer::new(keys.clone())
        .issue(&claims, now, platform::staff::AGENT_TOKEN_TTL)
        .unwrap()
        .token
}

/// `message` carrying the internal service credential booking-svc presents (`x-service-key`).
pub fn as_service<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert(platform::config::SERVICE_KEY_HEADER, key.parse().unwrap());
    request
}

/// `message` as an admin request with the dev run's operator key.
pub fn as_dev_operator<T>(message: T) -> tonic::Request<T> {
    platform::operator::OperatorCredential::dev()
        .request(message)
        .unwrap()
}

/// Waits until `channel`'s server reports `service` SERVING over `grpc.health.v1` (bounded).
pub async fn wait_serving(channel: platform::grpc::GrpcChannel, service: &str) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(update) = updates.message().await.unwrap() {
            if update.status == ServingStatus::Serving as i32 {
                return;
            }
        }
        panic!("health stream ended before SERVING");
    })
    .await
    .expect("not SERVING in time");
}
