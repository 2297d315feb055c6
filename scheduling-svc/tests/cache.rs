//! The eligibility cache: answers without the store, follows the store through the background
//! refresh (what other replicas wrote), and never lets a refresh hide a fresh local upsert.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use platform::clock::{SettableClock, SharedClock};
use scheduling_svc::cache::CampaignCache;
use scheduling_svc::domain::{Campaign, CampaignId};
use scheduling_svc::eligibility::{Applicant, Approach};
use scheduling_svc::store::{StoreError, StoredExclusions};
use scheduling_svc::{CampaignStore, MemoryCampaignStore, Scheduling, SchedulingError};
use tokio_util::sync::CancellationToken;

/// A store that counts calls and can be taken down.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryCampaignStore,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl FlakyStore {
    fn check(&self) -> Result<(), SchedulingError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(SchedulingError::Store(StoreError::Unavailable(
                "test store is down",
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl CampaignStore for FlakyStore {
    async fn upsert(&self, campaign: &Campaign) -> Result<Campaign, SchedulingError> {
        self.check()?;
        self.inner.upsert(campaign).await
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError> {
        self.check()?;
        self.inner.get(id).await
    }

    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError> {
        self.check()?;
        self.inner.list().await
    }

    async fn ping(&self) -> Result<(), SchedulingError> {
        self.check()
    }

    async fn replace_exclusions(
        &self,
        campaign_id: &CampaignId,
        person_keys: &[String],
    ) -> Result<i64, SchedulingError> {
        self.check()?;
        self.inner
            .replace_exclusions(campaign_id, person_keys)
            .await
    }

    async fn exclusion_versions(&self) -> Result<Vec<(CampaignId, i64)>, SchedulingError> {
        self.check()?;
        self.inner.exclusion_versions().await
    }

    async fn exclusions(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<StoredExclusions>, SchedulingError> {
        self.check()?;
        self.inner.exclusions(campaign_id).await
    }
}

fn clock() -> SharedClock {
    Arc::new(SettableClock::starting_at(at("2021-08-13T20:30:00+09:00")))
}

fn applicant() -> Applicant {
    Applicant {
        birth_date: date("1990-05-05"),
        person_key: platform::ids::PersonKey::parse("pk-test").unwrap(),
    }
}

#[tokio::test]
async fn eligibility_and_reads_do_not_touch_the_store() {
    let store = Arc::new(FlakyStore::default());
    store.inner.upsert(&round_18_49()).await.unwrap();
    let scheduling = Scheduling::load(store.clone(), clock()).await.unwrap();
    store.down.store(true, Ordering::SeqCst);
    let calls_before = store.calls.load(Ordering::SeqCst);

    for _ in 0..100 {
        assert!(
            scheduling
                .check_eligibility(None, &applicant(), Approach::default())
                .unwrap()
                .is_eligible()
        );
    }
    assert_eq!(
        scheduling.get_campaign("covid19-18-49").unwrap(),
        round_18_49().with_version(1)
    );
    assert_eq!(
        scheduling.list_campaigns(),
        vec![round_18_49().with_version(1)]
    );
    assert_eq!(store.calls.load(Ordering::SeqCst), calls_before);

    // A failed refresh keeps the last copy.
    assert!(scheduling.refresh().await.is_err());
    assert!(
        scheduling
            .check_eligibility(None, &applicant(), Approach::default())
            .unwrap()
            .is_eligible()
    );
}

#[tokio::test]
async fn a_failed_upsert_changes_nothing() {
    let store = Arc::new(FlakyStore::default());
    let scheduling = Scheduling::load(store.clone(), clock()).await.unwrap();
    store.down.store(true, Ordering::SeqCst);
    assert!(scheduling.upsert_campaign(round_18_49()).await.is_err());
    assert!(scheduling.list_campaigns().is_empty());
}

#[tokio::test]
async fn the_background_refresh_brings_in_what_other_replicas_wrote() {
    let store = Arc::new(MemoryCampaignStore::new());
    let scheduling = Arc::new(Scheduling::load(store.clone(), clock()).await.unwrap());
    let mut refreshes = scheduling.cache_refreshes();
    let stop = CancellationToken::new();
    let task = scheduling.spawn_cache_refresh(Duration::from_millis(10), stop.clone());

    assert_eq!(
        scheduling
            .check_eligibility(None, &applicant(), Approach::default())
            .unwrap()
            .ineligible
            .map(|r| r.as_str()),
        Some("no-campaign")
    );
    // Written straight to the store, as another replica would.
    store.upsert(&round_18_49()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while scheduling.get_campaign("covid19-18-49").is_err() {
            refreshes.changed().await.unwrap();
        }
    })
    .await
    .expect("the refresh did not pick up the stored campaign");
    assert!(
        scheduling
            .check_eligibility(None, &applicant(), Approach::default())
            .unwrap()
            .is_eligible()
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the refresh task did not stop")
        .unwrap();
}

#[tokio::test]
async fn a_refresh_that_raced_with_an_upsert_does_not_hide_it() {
    let cache = CampaignCache::new();
    let read_at = cache.generation();
    // The refresh read the store (empty) before this upsert reached the cache.
    cache.put(round_18_49());
    assert!(!cache.replace_if_unchanged(read_at, Vec::new()));
    assert_eq!(cache.get("covid19-18-49"), Some(round_18_49()));

    // A refresh that started after the upsert installs what it read.
    let read_at = cache.generation();
    assert!(cache.replace_if_unchanged(read_at, vec![round_60_plus()]));
    assert_eq!(cache.get("covid19-18-49"), None);
    assert_eq!(cache.get("covid19-60-plus"), Some(round_60_plus()));
}

#[tokio::test]
async fn exclusion_lists_written_by_another_replica_arrive_with_the_refresh() {
    let store = Arc::new(MemoryCampaignStore::new());
    let scheduling = Scheduling::load(store.clone(), clock()).await.unwrap();
    scheduling.upsert_campaign(round_18_49()).await.unwrap();
    let round = CampaignId::parse("covid19-18-49").unwrap();
    // Written straight to the store, as another replica's import would.
    store
        .replace_exclusions(&round, &["pk-test".to_owned()])
        .await
        .unwrap();
    assert!(!scheduling.is_excluded("covid19-18-49", "pk-test"));
    scheduling.refresh().await.unwrap();
    assert!(scheduling.is_excluded("covid19-18-49", "pk-test"));
    assert_eq!(
        scheduling
            .check_eligibility(None, &applicant(), Approach::default())
            .unwrap()
            .ineligible
            .map(|reason| reason.as_str()),
        Some("excluded-priority-target")
    );
    // The next version replaces it; an unchanged version is not reloaded.
    store.replace_exclusions(&round, &[]).await.unwrap();
    scheduling.refresh().await.unwrap();
    assert!(!scheduling.is_excluded("covid19-18-49", "pk-test"));
}
