//! The in-process campaign store, for `vaxbook dev` and unit tests.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::CampaignStore;
use super::StoreError;
use crate::domain::{Campaign, CampaignId};
use crate::error::SchedulingError;

/// Campaigns in a map ordered by id, so `list` comes out in id order like the database's.
#[derive(Debug, Default)]
pub struct MemoryCampaignStore {
    campaigns: RwLock<BTreeMap<CampaignId, Campaign>>,
}

impl MemoryCampaignStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> SchedulingError {
    SchedulingError::Store(StoreError::Unavailable(
        "the in-process campaign store lock is poisoned",
    ))
}

#[async_trait::async_trait]
impl CampaignStore for MemoryCampaignStore {
    async fn upsert(&self, campaign: &Campaign) -> Result<(), SchedulingError> {
        let mut campaigns = self.campaigns.write().map_err(|_| poisoned())?;
        campaigns.insert(campaign.id.clone(), campaign.clone());
        Ok(())
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError> {
        let campaigns = self.campaigns.read().map_err(|_| poisoned())?;
        Ok(campaigns.get(id).cloned())
    }

    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError> {
        let campaigns = self.campaigns.read().map_err(|_| poisoned())?;
        Ok(campaigns.values().cloned().collect())
    }

    async fn ping(&self) -> Result<(), SchedulingError> {
        Ok(())
    }
}
