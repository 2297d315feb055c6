//! The scheduling service logic, independent of gRPC: eligibility, window and campaign reads
//! answer from memory (the campaign cache and the exclusion index), upserts and exclusion list
//! replacements go to the store and then into memory, and a background task keeps memory in
//! step with the store (what other replicas wrote shows up within one refresh period). The
//! tonic adapter (`grpc.rs`) and tests both call this.

use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, NaiveDate, Utc};
use platform::ids::PersonKey;

use crate::cache::CampaignCache;
use crate::domain::{Campaign, CampaignId, Channel, Window};
use crate::eligibility::{
    Applicant, Approach, Eligibility, EligibilityDecision, choose_and_evaluate, evaluate,
    windows_for,
};
use crate::error::SchedulingError;
use crate::exclusions::{ExclusionIndex, ExclusionSet};
use crate::store::CampaignStore;

/// One window of one campaign as it applies to a person (`ListWindows`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonWindow {
    pub campaign: Arc<Campaign>,
    pub window: Window,
    pub open_now: bool,
}

pub struct Scheduling {
    store: Arc<dyn CampaignStore>,
    cache: CampaignCache,
    exclusions: ExclusionIndex,
    /// One exclusion replacement at a time per replica.
    exclusion_writes: tokio::sync::Mutex<()>,
    clock: SharedClock,
    /// One upsert at a time per replica, so the store and the cache see them in one order.
    upserts: tokio::sync::Mutex<()>,
}

impl Scheduling {
    /// A service with an empty cache; call [`Scheduling::refresh`] (or use
    /// [`Scheduling::load`]) before answering.
    pub fn new(store: Arc<dyn CampaignStore>, clock: SharedClock) -> Self {
        Self {
            store,
            cache: CampaignCache::new(),
            exclusions: ExclusionIndex::new(),
            exclusion_writes: tokio::sync::Mutex::new(()),
            clock,
            upserts: tokio::sync::Mutex::new(()),
        }
    }

    /// A service whose cache holds every stored campaign.
    pub async fn load(
        store: Arc<dyn CampaignStore>,
        clock: SharedClock,
    ) -> Result<Self, SchedulingError> {
        let service = Self::new(store, clock);
        service.refresh().await?;
        Ok(service)
    }

    pub fn store(&self) -> &Arc<dyn CampaignStore> {
        &self.store
    }

    /// Reloads the cache from the store; returns whether the copy read was installed (it is
    /// dropped when a local upsert raced with the read; the next refresh installs it).
    pub async fn refresh(&self) -> Result<bool, SchedulingError> {
        let generation = self.cache.generation();
        let campaigns = self.store.list().await?;
        // Exclusion lists are loaded only when their version moved: the versions are cheap to
        // read, a list of a million keys is not.
        let held = self.exclusions.versions();
        for (campaign_id, version) in self.store.exclusion_versions().await? {
            if held.get(campaign_id.as_str()) == Some(&version) {
                continue;
            }
            if let Some(stored) = self.store.exclusions(&campaign_id).await? {
                let list = ExclusionSet::new(
                    stored.version,
                    stored.person_keys.iter().map(String::as_str),
                );
                metrics::gauge!("scheduling_exclusion_entries", "campaign" => campaign_id.as_str().to_owned())
                    .set(list.len() as f64);
                self.exclusions
                    .install(campaign_id.as_str(), Arc::new(list));
            }
        }
        let installed = self.cache.replace_if_unchanged(generation, campaigns);
        metrics::gauge!("scheduling_cached_campaigns").set(self.cache.len() as f64);
        Ok(installed)
    }

    /// Watches the number of completed cache refreshes.
    pub fn cache_refreshes(&self) -> watch::Receiver<u64> {
        self.cache.refreshes()
    }

    /// Refreshes the cache every `every` until `stop` is cancelled.
    pub fn spawn_cache_refresh(
        self: &Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once; the cache was just loaded.
            ticks.tick().await;
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                match service.refresh().await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("campaign cache refresh recovered");
                        }
                        failing = false;
                    }
                    Err(err) => {
                        metrics::counter!("scheduling_cache_refresh_failures_total").increment(1);
                        // Log the start of an outage once, not every tick.
                        if !failing {
                            tracing::warn!(error = %err, "campaign cache refresh failed, serving the last copy");
                        }
                        failing = true;
                    }
                }
            }
        })
    }

    /// Whether `applicant` may book now, in `campaign_id` or in the campaign that matters to
    /// them, the way `approach` says. Answers from memory.
    pub fn check_eligibility(
        &self,
        campaign_id: Option<&str>,
        applicant: &Applicant,
        approach: Approach,
    ) -> Result<Eligibility, SchedulingError> {
        self.check_eligibility_with(campaign_id, applicant, approach, |decision| Eligibility {
            campaign: decision.campaign.map(|campaign| Arc::new(campaign.clone())),
            window: decision.window.cloned(),
            ineligible: decision.ineligible,
        })
    }

    /// Like [`Scheduling::check_eligibility`], handing the borrowed decision to `render` (the
    /// gRPC adapter writes its answer from it without copying the campaign first).
    pub fn check_eligibility_with<R>(
        &self,
        campaign_id: Option<&str>,
        applicant: &Applicant,
        approach: Approach,
        render: impl FnOnce(&EligibilityDecision<'_>) -> R,
    ) -> Result<R, SchedulingError> {
        let now = self.clock.now();
        let campaigns = self.cache.snapshot();
        let person_key = applicant.person_key.as_str();
        let decision = match campaign_id {
            Some(id) => {
                let campaign = campaigns.get(id).ok_or(SchedulingError::CampaignNotFound)?;
                let excluded = self.exclusions.is_excluded(id, person_key);
                evaluate(campaign, applicant, approach, excluded, now)
            }
            None => choose_and_evaluate(
                campaigns.values().map(|campaign| &**campaign),
                applicant,
                approach,
                |campaign| {
                    self.exclusions
                        .is_excluded(campaign.id.as_str(), person_key)
                },
                now,
            ),
        };
        let reason = decision.ineligible.map_or("none", |reason| reason.as_str());
        metrics::counter!(
            "scheduling_eligibility_checks_total",
            "eligible" => if decision.is_eligible() { "true" } else { "false" },
            "reason" => reason
        )
        .increment(1);
        Ok(render(&decision))
    }

    /// The windows of a person born on `birth_date` that have not closed at `now`, in every
    /// campaign of their age that has not excluded them, earliest opening first (then by
    /// campaign id); only windows on `channel` when one is given.
    pub fn list_windows(
        &self,
        birth_date: NaiveDate,
        person_key: &PersonKey,
        channel: Option<Channel>,
    ) -> Vec<PersonWindow> {
        let now = self.clock.now();
        let mut windows = Vec::new();
        for campaign in self.cache.snapshot().values() {
            if !campaign.covers_birth_date(birth_date)
                || self
                    .exclusions
                    .is_excluded(campaign.id.as_str(), person_key.as_str())
            {
                continue;
            }
            for window in windows_for(campaign, birth_date) {
                let on_channel = channel.is_none_or(|channel| window.channels.allows(channel));
                if on_channel && !window.period.has_closed(now) {
                    windows.push(PersonWindow {
                        campaign: Arc::clone(campaign),
                        window: window.clone(),
                        open_now: window.period.is_open(now),
                    });
                }
            }
        }
        windows.sort_by(|a, b| {
            (a.window.opens_at(), a.campaign.id.as_str())
                .cmp(&(b.window.opens_at(), b.campaign.id.as_str()))
        });
        windows
    }

    /// Replaces `campaign_id`'s exclusion list with `person_keys` (R7): stored as a new list
    /// version in one switch, then installed here at once. Returns (version, distinct entries).
    pub async fn replace_exclusions(
        &self,
        campaign_id: &CampaignId,
        person_keys: Vec<String>,
    ) -> Result<(i64, usize), SchedulingError> {
        let _one_at_a_time = self.exclusion_writes.lock().await;
        let mut person_keys = person_keys;
        person_keys.sort_unstable();
        person_keys.dedup();
        let version = self
            .store
            .replace_exclusions(campaign_id, &person_keys)
            .await?;
        let list = ExclusionSet::new(version, person_keys.iter().map(String::as_str));
        let entries = list.len();
        self.exclusions
            .install(campaign_id.as_str(), Arc::new(list));
        metrics::gauge!("scheduling_exclusion_entries", "campaign" => campaign_id.as_str().to_owned())
            .set(entries as f64);
        tracing::info!(campaign_id = %campaign_id, version, entries, "exclusion list replaced");
        Ok((version, entries))
    }

    /// Whether `person_key` is on `campaign_id`'s exclusion list as held in memory.
    pub fn is_excluded(&self, campaign_id: &str, person_key: &str) -> bool {
        self.exclusions.is_excluded(campaign_id, person_key)
    }

    /// The instant the service answers for.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn get_campaign(&self, id: &str) -> Result<Campaign, SchedulingError> {
        self.cache.get(id).ok_or(SchedulingError::CampaignNotFound)
    }

    /// Every campaign, in id order.
    pub fn list_campaigns(&self) -> Vec<Campaign> {
        self.cache
            .snapshot()
            .values()
            .map(|campaign| Campaign::clone(campaign))
            .collect()
    }

    /// Stores `campaign` (creating or replacing it) and makes it visible at once.
    pub async fn upsert_campaign(&self, campaign: Campaign) -> Result<Campaign, SchedulingError> {
        let _one_at_a_time = self.upserts.lock().await;
        let stored = self.store.upsert(&campaign).await?;
        self.cache.put(stored.clone());
        metrics::gauge!("scheduling_cached_campaigns").set(self.cache.len() as f64);
        tracing::info!(campaign_id = %stored.id, version = stored.version, "campaign upserted");
        Ok(stored)
    }
}
