//! The PostgreSQL campaign store (campaigns with their rules, versions and history; exclusion
//! lists) and the schema migrations it needs. The migrations are the SQL
//! files in `scheduling-svc/migrations`, embedded in the binary and recorded in their own history
//! table (`scheduling_schema_history`) because booking-svc shares the database with its own.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::rules_json::StoredRules;
use super::{CampaignStore, StoreError, StoredExclusions};
use crate::domain::{
    BookingWindow, Campaign, CampaignId, CampaignName, CampaignParts, CancellationLead, DateRange,
};
use crate::error::SchedulingError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The refinery history table of this service.
pub const MIGRATION_TABLE: &str = "scheduling_schema_history";

/// Creates the database when missing, then applies the pending migrations.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    platform::pg::migrate(
        database_url,
        embedded::migrations::runner(),
        MIGRATION_TABLE,
    )
    .await
}

/// The embedded migrations of `migrations/`.
pub fn migrations_runner() -> refinery::Runner {
    embedded::migrations::runner()
}

/// Campaigns in the `campaigns` table.
#[derive(Clone)]
pub struct PgCampaignStore {
    pool: Pool,
}

impl PgCampaignStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, SchedulingError> {
        self.pool
            .get()
            .await
            .map_err(|err| SchedulingError::Store(StoreError::Pool(err)))
    }
}

const SELECT_CAMPAIGN: &str = "SELECT id, name, born_from, born_to, booking_opens_at, \
     booking_closes_at, vaccination_from, vaccination_to, proxy_allowed, proxy_deadline, \
     modification_allowed_from, cancellation_closes_days_before, version, \
     proxy_max_per_booker, rules FROM campaigns";

/// Inserts or replaces the row, bumps its version and records the new version in the history,
/// in one statement.
const UPSERT_CAMPAIGN: &str = "WITH stored AS (INSERT INTO campaigns (id, name, born_from, \
     born_to, booking_opens_at, booking_closes_at, vaccination_from, vaccination_to, \
     proxy_allowed, proxy_deadline, modification_allowed_from, cancellation_closes_days_before, \
     proxy_max_per_booker, rules, version, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, now()) \
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, born_from = EXCLUDED.born_from, \
     born_to = EXCLUDED.born_to, booking_opens_at = EXCLUDED.booking_opens_at, \
     booking_closes_at = EXCLUDED.booking_closes_at, \
     vaccination_from = EXCLUDED.vaccination_from, vaccination_to = EXCLUDED.vaccination_to, \
     proxy_allowed = EXCLUDED.proxy_allowed, proxy_deadline = EXCLUDED.proxy_deadline, \
     modification_allowed_from = EXCLUDED.modification_allowed_from, \
     cancellation_closes_days_before = EXCLUDED.cancellation_closes_days_before, \
     proxy_max_per_booker = EXCLUDED.proxy_max_per_booker, rules = EXCLUDED.rules, \
     version = campaigns.version + 1, updated_at = now() RETURNING *) \
     INSERT INTO campaign_versions (campaign_id, version, document) \
     SELECT stored.id, stored.version, to_jsonb(stored) FROM stored RETURNING version";

/// Rebuilds a campaign from a row through the same validation as the wire, so a row edited by
/// hand into something contradictory is reported instead of served.
fn campaign_from_row(row: &Row) -> Result<Campaign, SchedulingError> {
    let id: String = row
        .try_get("id")
        .map_err(|source| query_failed("reading a campaign row", source))?;
    let column = |source: tokio_postgres::Error| {
        SchedulingError::Store(StoreError::Column {
            id: id.clone(),
            source,
        })
    };
    let name: String = row.try_get("name").map_err(column)?;
    let born_from: NaiveDate = row.try_get("born_from").map_err(column)?;
    let born_to: NaiveDate = row.try_get("born_to").map_err(column)?;
    let opens_at: DateTime<Utc> = row.try_get("booking_opens_at").map_err(column)?;
    let closes_at: DateTime<Utc> = row.try_get("booking_closes_at").map_err(column)?;
    let vaccination_from: NaiveDate = row.try_get("vaccination_from").map_err(column)?;
    let vaccination_to: NaiveDate = row.try_get("vaccination_to").map_err(column)?;
    let proxy_allowed: bool = row.try_get("proxy_allowed").map_err(column)?;
    let proxy_deadline: Option<DateTime<Utc>> = row.try_get("proxy_deadline").map_err(column)?;
    let modification_allowed_from: Option<DateTime<Utc>> =
        row.try_get("modification_allowed_from").map_err(column)?;
    let cancellation_days: i32 = row
        .try_get("cancellation_closes_days_before")
        .map_err(column)?;
    let version: i64 = row.try_get("version").map_err(column)?;
    let proxy_max_per_booker: i32 = row.try_get("proxy_max_per_booker").map_err(column)?;
    let rules: Option<serde_json::Value> = row.try_get("rules").map_err(column)?;

    let validated = || -> Result<Campaign, SchedulingError> {
        let (bands, windows) = match rules {
            None => (Vec::new(), Vec::new()),
            Some(rules) => serde_json::from_value::<StoredRules>(rules)
                .map_err(|_| SchedulingError::invalid("rules is not readable"))?
                .into_parts()?,
        };
        Campaign::assemble(CampaignParts {
            id: CampaignId::parse(&id).map_err(|err| err.for_field("id"))?,
            name: CampaignName::parse(&name)?,
            born: DateRange::new("born", born_from, born_to)?,
            vaccination: DateRange::new("vaccination", vaccination_from, vaccination_to)?,
            proxy_allowed,
            proxy_deadline,
            proxy_max_per_booker: u32::try_from(proxy_max_per_booker)
                .map_err(|_| SchedulingError::invalid("proxy_max_per_booker is negative"))?,
            modification_allowed_from,
            cancellation_closes_days_before: CancellationLead::days(i64::from(cancellation_days))?,
            bands,
            windows,
            booking: Some(BookingWindow::new(opens_at, closes_at)?),
            version,
        })
    };
    validated().map_err(|invalid| {
        SchedulingError::Store(StoreError::Invalid {
            id: id.clone(),
            source: Box::new(invalid),
        })
    })
}

fn query_failed(doing: &'static str, source: tokio_postgres::Error) -> SchedulingError {
    SchedulingError::Store(StoreError::Query { doing, source })
}

#[async_trait::async_trait]
impl CampaignStore for PgCampaignStore {
    async fn upsert(&self, campaign: &Campaign) -> Result<Campaign, SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(UPSERT_CAMPAIGN)
            .await
            .map_err(|source| query_failed("preparing the campaign upsert", source))?;
        let born_from = campaign.born.first();
        let born_to = campaign.born.last();
        let opens_at = campaign.booking.opens_at();
        let closes_at = campaign.booking.closes_at();
        let vaccination_from = campaign.vaccination.first();
        let vaccination_to = campaign.vaccination.last();
        let cancellation_days = i32::from(campaign.cancellation_closes_days_before.as_days());
        let proxy_max = i32::try_from(campaign.proxy_max_per_booker)
            .map_err(|_| SchedulingError::invalid("proxy_max_per_booker is too large"))?;
        let rules = serde_json::to_value(StoredRules::of(&campaign.bands, &campaign.windows))
            .map_err(|_| SchedulingError::invalid("rules could not be encoded"))?;
        let row = client
            .query_one(
                &statement,
                &[
                    &campaign.id.as_str(),
                    &campaign.name.as_str(),
                    &born_from,
                    &born_to,
                    &opens_at,
                    &closes_at,
                    &vaccination_from,
                    &vaccination_to,
                    &campaign.proxy_allowed,
                    &campaign.proxy_deadline,
                    &campaign.modification_allowed_from,
                    &cancellation_days,
                    &proxy_max,
                    &rules,
                ],
            )
            .await
            .map_err(|source| query_failed("upserting a campaign", source))?;
        let version: i64 = row
            .try_get("version")
            .map_err(|source| query_failed("reading the stored version", source))?;
        Ok(campaign.clone().with_version(version))
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{SELECT_CAMPAIGN} WHERE id = $1"))
            .await
            .map_err(|source| query_failed("preparing the campaign lookup", source))?;
        let row = client
            .query_opt(&statement, &[&id.as_str()])
            .await
            .map_err(|source| query_failed("reading a campaign", source))?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{SELECT_CAMPAIGN} ORDER BY id"))
            .await
            .map_err(|source| query_failed("preparing the campaign listing", source))?;
        let rows = client
            .query(&statement, &[])
            .await
            .map_err(|source| query_failed("listing campaigns", source))?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn ping(&self) -> Result<(), SchedulingError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|source| query_failed("pinging PostgreSQL", source))?;
        Ok(())
    }

    async fn replace_exclusions(
        &self,
        campaign_id: &CampaignId,
        person_keys: &[String],
    ) -> Result<i64, SchedulingError> {
        let mut client = self.client().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(|source| query_failed("starting the exclusion switch", source))?;
        // Locks the campaign, so two replacements of one list take turns.
        let campaign = transaction
            .query_opt(
                "SELECT id FROM campaigns WHERE id = $1 FOR UPDATE",
                &[&campaign_id.as_str()],
            )
            .await
            .map_err(|source| query_failed("locking the campaign", source))?;
        if campaign.is_none() {
            return Err(SchedulingError::CampaignNotFound);
        }
        let row = transaction
            .query_one(
                "SELECT coalesce(max(version), 0) + 1 AS version FROM exclusion_lists \
                 WHERE campaign_id = $1",
                &[&campaign_id.as_str()],
            )
            .await
            .map_err(|source| query_failed("numbering the exclusion list", source))?;
        let version: i64 = row
            .try_get("version")
            .map_err(|source| query_failed("numbering the exclusion list", source))?;
        transaction
            .execute(
                "INSERT INTO exclusion_lists (campaign_id, version, entries) VALUES ($1, $2, 0)",
                &[&campaign_id.as_str(), &version],
            )
            .await
            .map_err(|source| query_failed("creating the exclusion list", source))?;
        // The keys go in a staging table first: COPY cannot skip duplicates, the insert can.
        transaction
            .batch_execute(
                "CREATE TEMPORARY TABLE exclusion_staging (person_key text NOT NULL) \
                 ON COMMIT DROP",
            )
            .await
            .map_err(|source| query_failed("staging the exclusion list", source))?;
        let sink = transaction
            .copy_in("COPY exclusion_staging (person_key) FROM STDIN BINARY")
            .await
            .map_err(|source| query_failed("copying the exclusion list", source))?;
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &[Type::TEXT]));
        for key in person_keys {
            writer
                .as_mut()
                .write(&[key])
                .await
                .map_err(|source| query_failed("copying the exclusion list", source))?;
        }
        writer
            .finish()
            .await
            .map_err(|source| query_failed("copying the exclusion list", source))?;
        let entries = transaction
            .execute(
                "INSERT INTO exclusion_entries (campaign_id, version, person_key) \
                 SELECT DISTINCT $1::text, $2::bigint, person_key FROM exclusion_staging",
                &[&campaign_id.as_str(), &version],
            )
            .await
            .map_err(|source| query_failed("storing the exclusion list", source))?;
        let entries = i64::try_from(entries).unwrap_or(i64::MAX);
        transaction
            .execute(
                "UPDATE exclusion_lists SET entries = $3 WHERE campaign_id = $1 AND version = $2",
                &[&campaign_id.as_str(), &version, &entries],
            )
            .await
            .map_err(|source| query_failed("counting the exclusion list", source))?;
        transaction
            .execute(
                "INSERT INTO exclusion_current (campaign_id, version) VALUES ($1, $2) \
                 ON CONFLICT (campaign_id) DO UPDATE SET version = EXCLUDED.version",
                &[&campaign_id.as_str(), &version],
            )
            .await
            .map_err(|source| query_failed("switching to the new exclusion list", source))?;
        transaction
            .execute(
                "DELETE FROM exclusion_entries WHERE campaign_id = $1 AND version < $2",
                &[&campaign_id.as_str(), &version],
            )
            .await
            .map_err(|source| query_failed("dropping the old exclusion list", source))?;
        transaction
            .commit()
            .await
            .map_err(|source| query_failed("committing the exclusion switch", source))?;
        Ok(version)
    }

    async fn exclusion_versions(&self) -> Result<Vec<(CampaignId, i64)>, SchedulingError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT campaign_id, version FROM exclusion_current ORDER BY campaign_id",
                &[],
            )
            .await
            .map_err(|source| query_failed("listing exclusion list versions", source))?;
        rows.iter()
            .map(|row| {
                let id: String = row
                    .try_get("campaign_id")
                    .map_err(|source| query_failed("reading an exclusion list version", source))?;
                let version: i64 = row
                    .try_get("version")
                    .map_err(|source| query_failed("reading an exclusion list version", source))?;
                let id = CampaignId::parse(&id).map_err(|err| err.for_field("campaign_id"))?;
                Ok((id, version))
            })
            .collect()
    }

    async fn exclusions(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<StoredExclusions>, SchedulingError> {
        let client = self.client().await?;
        // One statement, so the version and its keys come from one snapshot.
        let rows = client
            .query(
                "SELECT c.version, e.person_key FROM exclusion_current c \
                 LEFT JOIN exclusion_entries e \
                 ON e.campaign_id = c.campaign_id AND e.version = c.version \
                 WHERE c.campaign_id = $1",
                &[&campaign_id.as_str()],
            )
            .await
            .map_err(|source| query_failed("reading the exclusion list", source))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let version: i64 = first
            .try_get(0)
            .map_err(|source| query_failed("reading the exclusion list version", source))?;
        let mut person_keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: Option<String> = row
                .try_get(1)
                .map_err(|source| query_failed("reading the exclusion list", source))?;
            person_keys.extend(key);
        }
        Ok(Some(StoredExclusions {
            version,
            person_keys,
        }))
    }
}
