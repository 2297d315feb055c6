//! The in-memory copy of every campaign that eligibility answers from, so the hot path never
//! waits on PostgreSQL. It is replaced wholesale by a periodic refresh from the store (which
//! also brings in upserts made through other replicas) and patched at once by this replica's
//! own upserts.
//!
//! A refresh reads the store without holding any lock, so an upsert can land while it is in
//! flight; the generation counter lets the refresh notice and drop its now-stale copy instead
//! of hiding the fresh campaign until the next tick.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use crate::domain::Campaign;

/// Campaigns by id (the id's text, so a lookup by any string needs no parsing), shared by
/// readers without copying.
pub type CampaignSnapshot = Arc<BTreeMap<String, Arc<Campaign>>>;

#[derive(Debug)]
struct Versioned {
    campaigns: CampaignSnapshot,
    /// Bumped by every local upsert.
    generation: u64,
}

#[derive(Debug)]
pub struct CampaignCache {
    current: RwLock<Versioned>,
    /// Counts completed refreshes, so tests and the dev run can wait for one without sleeping.
    refreshes: watch::Sender<u64>,
}

impl Default for CampaignCache {
    fn default() -> Self {
        Self::new()
    }
}

impl CampaignCache {
    pub fn new() -> Self {
        let (refreshes, _) = watch::channel(0);
        Self {
            current: RwLock::new(Versioned {
                campaigns: Arc::new(BTreeMap::new()),
                generation: 0,
            }),
            refreshes,
        }
    }

    /// Every campaign as of now (cheap: clones a pointer).
    pub fn snapshot(&self) -> CampaignSnapshot {
        // A panic while holding the lock cannot leave the map half-written (it is swapped
        // whole), so a poisoned lock still guards consistent data.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .campaigns
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Campaign> {
        self.snapshot()
            .get(id)
            .map(|campaign| Campaign::clone(campaign))
    }

    /// The generation a refresh must see unchanged to install what it read.
    pub fn generation(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Inserts or replaces one campaign (after it was written to the store).
    pub fn put(&self, campaign: Campaign) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut campaigns = BTreeMap::clone(&current.campaigns);
        campaigns.insert(campaign.id.as_str().to_owned(), Arc::new(campaign));
        current.campaigns = Arc::new(campaigns);
        current.generation += 1;
    }

    /// Installs `campaigns` read from the store, unless a local upsert happened since
    /// `read_at_generation`; returns whether it was installed.
    pub fn replace_if_unchanged(&self, read_at_generation: u64, campaigns: Vec<Campaign>) -> bool {
        let installed = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            if current.generation == read_at_generation {
                current.campaigns = Arc::new(
                    campaigns
                        .into_iter()
                        .map(|campaign| (campaign.id.as_str().to_owned(), Arc::new(campaign)))
                        .collect(),
                );
                true
            } else {
                false
            }
        };
        self.refreshes.send_modify(|count| *count += 1);
        installed
    }

    /// Watches the number of completed refresh attempts.
    pub fn refreshes(&self) -> watch::Receiver<u64> {
        self.refreshes.subscribe()
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }
}
