//! The in-process campaign store, for `vaxbook dev` and unit tests: campaigns with their
//! versions and history, and exclusion lists, behind one lock so every change is atomic.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{CampaignStore, StoreError, StoredExclusions};
use crate::domain::{Campaign, CampaignId};
use crate::error::SchedulingError;

/// Campaigns in a map ordered by id, so `list` comes out in id order like the database's.
#[derive(Debug, Default)]
pub struct MemoryCampaignStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    campaigns: BTreeMap<CampaignId, Campaign>,
    /// Every stored version of every campaign, oldest first.
    history: BTreeMap<CampaignId, Vec<Campaign>>,
    exclusions: BTreeMap<CampaignId, StoredExclusions>,
    /// The last exclusion list version handed out per campaign (versions never repeat).
    exclusion_versions: BTreeMap<CampaignId, i64>,
}

impl MemoryCampaignStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored version of `id`, oldest first.
    pub fn history(&self, id: &CampaignId) -> Vec<Campaign> {
        self.state
            .read()
            .map(|state| state.history.get(id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

fn poisoned() -> SchedulingError {
    SchedulingError::Store(StoreError::Unavailable(
        "the in-process campaign store lock is poisoned",
    ))
}

#[async_trait::async_trait]
impl CampaignStore for MemoryCampaignStore {
    async fn upsert(&self, campaign: &Campaign) -> Result<Campaign, SchedulingError> {
        let mut state = self.state.write().map_err(|_| poisoned())?;
        let version = state
            .campaigns
            .get(&campaign.id)
            .map_or(1, |stored| stored.version + 1);
        let stored = campaign.clone().with_version(version);
        state.campaigns.insert(campaign.id.clone(), stored.clone());
        state
            .history
            .entry(campaign.id.clone())
            .or_default()
            .push(stored.clone());
        Ok(stored)
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state.campaigns.get(id).cloned())
    }

    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state.campaigns.values().cloned().collect())
    }

    async fn ping(&self) -> Result<(), SchedulingError> {
        Ok(())
    }

    async fn replace_exclusions(
        &self,
        campaign_id: &CampaignId,
        person_keys: &[String],
    ) -> Result<i64, SchedulingError> {
        let mut state = self.state.write().map_err(|_| poisoned())?;
        if !state.campaigns.contains_key(campaign_id) {
            return Err(SchedulingError::CampaignNotFound);
        }
        let version = state
            .exclusion_versions
            .get(campaign_id)
            .map_or(1, |last| last + 1);
        let mut person_keys = person_keys.to_vec();
        person_keys.sort_unstable();
        person_keys.dedup();
        state
            .exclusion_versions
            .insert(campaign_id.clone(), version);
        state.exclusions.insert(
            campaign_id.clone(),
            StoredExclusions {
                version,
                person_keys,
            },
        );
        Ok(version)
    }

    async fn exclusion_versions(&self) -> Result<Vec<(CampaignId, i64)>, SchedulingError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state
            .exclusions
            .iter()
            .map(|(id, list)| (id.clone(), list.version))
            .collect())
    }

    async fn exclusions(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<StoredExclusions>, SchedulingError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        Ok(state.exclusions.get(campaign_id).cloned())
    }
}
