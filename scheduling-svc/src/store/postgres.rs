//! The PostgreSQL campaign store and the schema migrations it needs. The migrations are the SQL
//! files in `scheduling-svc/migrations`, embedded in the binary and recorded in their own history
//! table (`scheduling_schema_history`) because booking-svc shares the database with its own.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use super::CampaignStore;
use crate::campaign::{
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
            .map_err(|err| SchedulingError::store("getting a database connection", err))
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
        .map_err(|err| SchedulingError::store("reading a campaign row", err))?;
    let corrupt = |err: &dyn std::fmt::Display| {
        SchedulingError::Store(format!("campaign {id} in the database is invalid: {err}"))
    };
    let column_error = |err: tokio_postgres::Error| corrupt(&err);
    let name: String = row.try_get("name").map_err(column_error)?;
    let born_from: NaiveDate = row.try_get("born_from").map_err(column_error)?;
    let born_to: NaiveDate = row.try_get("born_to").map_err(column_error)?;
    let opens_at: DateTime<Utc> = row.try_get("booking_opens_at").map_err(column_error)?;
    let closes_at: DateTime<Utc> = row.try_get("booking_closes_at").map_err(column_error)?;
    let vaccination_from: NaiveDate = row.try_get("vaccination_from").map_err(column_error)?;
    let vaccination_to: NaiveDate = row.try_get("vaccination_to").map_err(column_error)?;
    let proxy_allowed: bool = row.try_get("proxy_allowed").map_err(column_error)?;
    let proxy_deadline: Option<DateTime<Utc>> =
        row.try_get("proxy_deadline").map_err(column_error)?;
    let modification_allowed_from: Option<DateTime<Utc>> = row
        .try_get("modification_allowed_from")
        .map_err(column_error)?;
    let cancellation_days: i32 = row
        .try_get("cancellation_closes_days_before")
        .map_err(column_error)?;

    let invalid = |problem: platform::problem::Problem| corrupt(&problem.detail);
    Ok(Campaign {
        id: CampaignId::parse(&id).map_err(invalid)?,
        name: CampaignName::parse(&name).map_err(invalid)?,
        born: DateRange::new("born", born_from, born_to).map_err(invalid)?,
        booking: BookingWindow::new(opens_at, closes_at).map_err(invalid)?,
        vaccination: DateRange::new("vaccination", vaccination_from, vaccination_to)
            .map_err(invalid)?,
        proxy_allowed,
        proxy_deadline,
        modification_allowed_from,
        cancellation_closes_days_before: CancellationLead::days(i64::from(cancellation_days))
            .map_err(invalid)?,
    })
}

#[async_trait::async_trait]
impl CampaignStore for PgCampaignStore {
    async fn upsert(&self, campaign: &Campaign) -> Result<(), SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(UPSERT_CAMPAIGN)
            .await
            .map_err(|err| SchedulingError::store("preparing the campaign upsert", err))?;
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
            .map_err(|err| SchedulingError::store("upserting a campaign", err))?;
        Ok(())
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{SELECT_CAMPAIGN} WHERE id = $1"))
            .await
            .map_err(|err| SchedulingError::store("preparing the campaign lookup", err))?;
        let row = client
            .query_opt(&statement, &[&id.as_str()])
            .await
            .map_err(|err| SchedulingError::store("reading a campaign", err))?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    async fn list(&self) -> Result<Vec<Campaign>, SchedulingError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{SELECT_CAMPAIGN} ORDER BY id"))
            .await
            .map_err(|err| SchedulingError::store("preparing the campaign listing", err))?;
        let rows = client
            .query(&statement, &[])
            .await
            .map_err(|err| SchedulingError::store("listing campaigns", err))?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn ping(&self) -> Result<(), SchedulingError> {
        platform::pg::ping(&self.pool)
            .await
            .map_err(|err| SchedulingError::store("pinging PostgreSQL", err))
    }
}
