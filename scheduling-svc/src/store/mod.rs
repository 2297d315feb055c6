//! Where campaigns live. [`CampaignStore`] is the one storage trait of the campaign aggregate,
//! with a PostgreSQL implementation for production and an in-process one for `vaxbook dev` and
//! unit tests; the shared conformance suite (tests/store_conformance.rs) keeps them in step.
//! The store is not on the eligibility hot path: the service answers from its cache.

mod memory;
mod postgres;

pub use memory::MemoryCampaignStore;
pub use postgres::{MIGRATION_TABLE, PgCampaignStore, migrate, migrations_runner};

use crate::campaign::{Campaign, CampaignId};
use crate::error::SchedulingError;

#[async_trait::async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates the campaign, or replaces the one with the same id.
    async fn upsert(&self, campaign: &Campaign) -> Result<(), SchedulingError>;

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError>;

    /// Every campaign, in id order.
    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError>;

    /// One round trip to the backing store (readiness).
    async fn ping(&self) -> Result<(), SchedulingError>;
}
