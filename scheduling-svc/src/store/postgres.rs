//! The PostgreSQL campaign store and the schema migrations it needs. The migrations are the SQL
//! files in `scheduling-svc/migrations`, embedded in the binary and recorded in their own history
//! table (`scheduling_schema_history`) because booking-svc shares the database with its own.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use super::{CampaignStore, StoreError};
use crate::domain::{
    BookingWindow, Campaign, CampaignId, CampaignName, CancellationLead, DateRange,
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
     modification_allowed_from, cancellation_closes_days_before FROM campaigns";

const UPSERT_CAMPAIGN: &str = "INSERT INTO campaigns (id, name, born_from, born_to, \
     booking_opens_at, booking_closes_at, vaccination_from, vaccination_to, proxy_allowed, \
     proxy_deadline, modification_allowed_from, cancellation_closes_days_before, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now()) \
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, born_from = EXCLUDED.born_from, \
     born_to = EXCLUDED.born_to, booking_opens_at = EXCLUDED.booking_opens_at, \
     booking_closes_at = EXCLUDED.booking_closes_at, \
     vaccination_from = EXCLUDED.vaccination_from, vaccination_to = EXCLUDED.vaccination_to, \
     proxy_allowed = EXCLUDED.proxy_allowed, proxy_deadline = EXCLUDED.proxy_deadline, \
     modification_allowed_from = EXCLUDED.modification_allowed_from, \
     cancellation_closes_days_before = EXCLUDED.cancellation_closes_days_before, \
     updated_at = now()";

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

    let validated = || -> Result<Campaign, SchedulingError> {
        Ok(Campaign {
            id: CampaignId::parse(&id).map_err(|err| err.for_field("id"))?,
            name: CampaignName::parse(&name)?,
            born: DateRange::new("born", born_from, born_to)?,
            booking: BookingWindow::new(opens_at, closes_at)?,
            vaccination: DateRange::new("vaccination", vaccination_from, vaccination_to)?,
            proxy_allowed,
            proxy_deadline,
            modification_allowed_from,
            cancellation_closes_days_before: CancellationLead::days(i64::from(cancellation_days))?,
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
    async fn upsert(&self, campaign: &Campaign) -> Result<(), SchedulingError> {
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
        client
            .execute(
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
                ],
            )
            .await
            .map_err(|source| query_failed("upserting a campaign", source))?;
        Ok(())
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
}
