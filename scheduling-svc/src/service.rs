//! The scheduling service logic, independent of gRPC: eligibility and campaign reads answer from
//! the cache, upserts go to the store and then into the cache, and a background task keeps the
//! cache in step with the store. The tonic adapter (`grpc.rs`) and tests both call this.

use std::sync::Arc;
use std::time::Duration;

use platform::clock::SharedClock;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::CampaignCache;
use crate::domain::Campaign;
use crate::eligibility::{Applicant, EligibilityDecision, choose_and_evaluate, evaluate};
use crate::error::SchedulingError;
use crate::store::CampaignStore;

pub struct Scheduling {
    store: Arc<dyn CampaignStore>,
    cache: CampaignCache,
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
    /// them. Answers from the cache.
    pub fn check_eligibility(
        &self,
        campaign_id: Option<&str>,
        applicant: &Applicant,
    ) -> Result<EligibilityDecision, SchedulingError> {
        let now = self.clock.now();
        let campaigns = self.cache.snapshot();
        let decision = match campaign_id {
            Some(id) => {
                let campaign = campaigns.get(id).ok_or(SchedulingError::CampaignNotFound)?;
                evaluate(campaign, applicant, now)
            }
            None => choose_and_evaluate(campaigns.values(), applicant, now),
        };
        let reason = decision.ineligible.map_or("none", |reason| reason.as_str());
        metrics::counter!(
            "scheduling_eligibility_checks_total",
            "eligible" => if decision.is_eligible() { "true" } else { "false" },
            "reason" => reason
        )
        .increment(1);
        Ok(decision)
    }

    pub fn get_campaign(&self, id: &str) -> Result<Campaign, SchedulingError> {
        self.cache.get(id).ok_or(SchedulingError::CampaignNotFound)
    }

    /// Every campaign, in id order.
    pub fn list_campaigns(&self) -> Vec<Campaign> {
        self.cache.snapshot().values().cloned().collect()
    }

    /// Stores `campaign` (creating or replacing it) and makes it visible at once.
    pub async fn upsert_campaign(&self, campaign: Campaign) -> Result<Campaign, SchedulingError> {
        let _one_at_a_time = self.upserts.lock().await;
        self.store.upsert(&campaign).await?;
        self.cache.put(campaign.clone());
        metrics::gauge!("scheduling_cached_campaigns").set(self.cache.len() as f64);
        tracing::info!(campaign_id = %campaign.id, "campaign upserted");
        Ok(campaign)
    }
}
