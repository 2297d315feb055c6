//! Where campaigns and their exclusion lists live. [`CampaignStore`] is the one storage trait
//! of the campaign aggregate, with a PostgreSQL implementation for production and an in-process
//! one for `vaxbook dev` and unit tests; the shared conformance suite
//! (tests/store_conformance.rs) keeps them in step. The store is not on the eligibility hot
//! path: the service answers from its cache.

mod memory;
mod postgres;
mod rules_json;

pub use memory::MemoryCampaignStore;
pub use postgres::{MIGRATION_TABLE, PgCampaignStore, migrate, migrations_runner};

use crate::domain::{Campaign, CampaignId};
use crate::error::SchedulingError;

/// Why the campaign store could not answer. The messages name what was being done, never a
/// connection string; the cause is kept as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be taken from the pool in time.
    #[error("getting a database connection")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// A statement failed; `doing` says which.
    #[error("{doing}")]
    Query {
        doing: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored column could not be read as the expected type.
    #[error("campaign {id} in the database has an unreadable column")]
    Column {
        id: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored campaign no longer passes validation (edited by hand, say).
    #[error("campaign {id} in the database is invalid")]
    Invalid {
        id: String,
        #[source]
        source: Box<SchedulingError>,
    },
    /// The store cannot answer at all (a poisoned lock, a test double switched off).
    #[error("the campaign store is unavailable: {0}")]
    Unavailable(&'static str),
}

/// One campaign's exclusion list as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredExclusions {
    pub version: i64,
    /// Distinct person keys, in no particular order.
    pub person_keys: Vec<String>,
}

#[async_trait::async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates the campaign, or replaces the one with the same id; returns it as stored, with
    /// its new version (1 for a new campaign, one more than before otherwise). Every version is
    /// kept in the campaign's history.
    async fn upsert(&self, campaign: &Campaign) -> Result<Campaign, SchedulingError>;

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError>;

    /// Every campaign, in id order.
    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError>;

    /// One round trip to the backing store (readiness).
    async fn ping(&self) -> Result<(), SchedulingError>;

    /// Replaces the exclusion list of `campaign_id` with `person_keys` (distinct) as one atomic
    /// switch to a new list version, which is returned. `CampaignNotFound` when there is no
    /// such campaign.
    async fn replace_exclusions(
        &self,
        campaign_id: &CampaignId,
        person_keys: &[String],
    ) -> Result<i64, SchedulingError>;

    /// The version of the list in force for every campaign that has one (cheap: no keys).
    async fn exclusion_versions(&self) -> Result<Vec<(CampaignId, i64)>, SchedulingError>;

    /// The list in force for `campaign_id`, if any.
    async fn exclusions(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<StoredExclusions>, SchedulingError>;
}
