//! The PostgreSQL booking store. Capacity is reserved with one guarded
//! `UPDATE … WHERE booked < capacity` and the booking inserted in the same transaction; the
//! CHECK on `slots` and the unique indexes on `bookings` (see `migrations/`) make the database
//! itself refuse an overbooked slot or a second confirmed booking in a campaign.
//!
//! Lock order is always "slot row first": booking, cancelling and changing lock the slot rows
//! before they touch `bookings`, so a person cancelling and rebooking the same slot at once
//! cannot deadlock. A change locks two slot rows, always the smaller uuid first, so changes
//! crossing between the same two slots (and cancels, which lock one) cannot deadlock either.
//! Cancelling and changing live in `moves.rs`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Object, Pool, PoolError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::{BookingStore, BookingStoreError};
use crate::domain::{
    Booking, BookingStatus, Center, IdempotencyKey, NewBooking, ProxyBooking, ReleasedShare, Slot,
    SlotDraft, cancellable_until, storage_precision,
};

mod moves;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Name of booking-svc's refinery history table: scheduling-svc shares the database and keeps
/// its own history table.
pub const MIGRATION_TABLE: &str = "booking_schema_history";

const ONE_CONFIRMED_PER_CAMPAIGN: &str = "bookings_one_confirmed_per_person_campaign";
const PERSON_IDEMPOTENCY_KEY: &str = "bookings_person_idempotency_key";

const SLOT_COLUMNS: &str =
    "id, campaign_id, center_id, date, starts_at, ends_at, vaccine, capacity, booked";

const BOOKING_SELECT: &str = "SELECT b.id, b.person_key, b.campaign_id, b.status, \
     b.idempotency_key, b.created_at, b.cancelled_at, b.cancellable_until, \
     s.id, s.campaign_id, s.center_id, s.date, s.starts_at, s.ends_at, s.vaccine, s.capacity, \
     s.booked, b.booked_by, b.beneficiary_masked_name, b.agent \
     FROM bookings b JOIN slots s ON s.id = b.slot_id";

/// Column of the slot in a [`BOOKING_SELECT`] row.
const BOOKING_SLOT_AT: usize = 8;
/// Column of `booked_by` in a [`BOOKING_SELECT`] row (after the slot's nine).
const BOOKING_PROXY_AT: usize = BOOKING_SLOT_AT + 9;

/// Creates the database when missing and applies the pending migrations of `migrations/`.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    platform::pg::migrate(
        database_url,
        embedded::migrations::runner(),
        MIGRATION_TABLE,
    )
    .await
}

impl From<tokio_postgres::Error> for BookingStoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.code() {
            // Both mean "try again": the transaction was rolled back as a whole.
            Some(code)
                if *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                Self::Conflict(err)
            }
            _ => Self::Database(err),
        }
    }
}

impl From<PoolError> for BookingStoreError {
    fn from(err: PoolError) -> Self {
        Self::PoolBusy(err)
    }
}

fn slot_from_row(row: &Row, at: usize) -> Result<Slot, BookingStoreError> {
    Ok(Slot {
        id: row.try_get(at)?,
        campaign_id: row.try_get(at + 1)?,
        center_id: row.try_get(at + 2)?,
        date: row.try_get(at + 3)?,
        starts_at: row.try_get(at + 4)?,
        ends_at: row.try_get(at + 5)?,
        vaccine: row.try_get(at + 6)?,
        capacity: row.try_get(at + 7)?,
        booked: row.try_get(at + 8)?,
        released: row.try_get(at + 7)?,
    })
}

fn center_from_row(row: &Row) -> Result<Center, BookingStoreError> {
    Ok(Center {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        region: row.try_get(2)?,
        address: row.try_get(3)?,
    })
}

fn booking_from_row(row: &Row) -> Result<Booking, BookingStoreError> {
    let status: String = row.try_get(3)?;
    let status = BookingStatus::parse(&status).ok_or(BookingStoreError::UnknownStatus(status))?;
    Ok(Booking {
        id: row.try_get(0)?,
        person_key: row.try_get(1)?,
        campaign_id: row.try_get(2)?,
        status,
        idempotency_key: row.try_get(4)?,
        created_at: row.try_get(5)?,
        cancelled_at: row.try_get(6)?,
        cancellable_until: row.try_get(7)?,
        slot: slot_from_row(row, BOOKING_SLOT_AT)?,
        booked_by: row.try_get(BOOKING_PROXY_AT)?,
        beneficiary_masked_name: row.try_get(BOOKING_PROXY_AT + 1)?,
        agent: row.try_get(BOOKING_PROXY_AT + 2)?,
    })
}

/// Maps a failed booking insert: the unique indexes carry the business meaning.
fn insert_failure(err: tokio_postgres::Error) -> BookingStoreError {
    let constraint = err
        .as_db_error()
        .filter(|db| *db.code() == SqlState::UNIQUE_VIOLATION)
        .and_then(|db| db.constraint());
    match constraint {
        Some(ONE_CONFIRMED_PER_CAMPAIGN) => BookingStoreError::AlreadyBooked,
        Some(PERSON_IDEMPOTENCY_KEY) => BookingStoreError::IdempotencyConflict,
        _ => err.into(),
    }
}

/// Refuses a proxy booking past the campaign's limit per booker. A transaction-scoped advisory
/// lock on the booker serialises their concurrent proxy bookings, so the count cannot be raced.
async fn proxy_quota(
    transaction: &deadpool_postgres::Transaction<'_>,
    proxy: &ProxyBooking,
    campaign_id: &str,
) -> Result<(), BookingStoreError> {
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('booking-proxy:' || $1, 0))",
            &[&proxy.booked_by],
        )
        .await?;
    let count = transaction
        .prepare_cached(
            "SELECT count(*) FROM bookings WHERE booked_by = $1 AND campaign_id = $2 \
             AND status = 'confirmed'",
        )
        .await?;
    let made: i64 = transaction
        .query_one(&count, &[&proxy.booked_by, &campaign_id])
        .await?
        .try_get(0)?;
    if made >= i64::from(proxy.max_per_booker) {
        return Err(BookingStoreError::ProxyLimitReached {
            max: proxy.max_per_booker,
        });
    }
    Ok(())
}

/// [`BookingStore`] on PostgreSQL.
#[derive(Clone)]
pub struct PgBookingStore {
    pool: Pool,
}

impl PgBookingStore {
    /// A store over an existing pool (the schema must be migrated).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Waits (bounded by `wait_limit`) for the server, migrates, and opens a pool of
    /// `max_connections` to `database_url`.
    pub async fn connect(
        database_url: &str,
        max_connections: usize,
        wait_limit: Duration,
    ) -> anyhow::Result<Self> {
        let pool = platform::pg::open_migrated(
            database_url,
            max_connections,
            wait_limit,
            embedded::migrations::runner(),
            MIGRATION_TABLE,
        )
        .await?;
        Ok(Self::new(pool))
    }

    async fn client(&self) -> Result<Object, BookingStoreError> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait]
impl BookingStore for PgBookingStore {
    async fn upsert_center(&self, center: Center) -> Result<Center, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO centers (id, name, region, address) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
                 region = EXCLUDED.region, address = EXCLUDED.address \
                 RETURNING id, name, region, address",
            )
            .await?;
        let row = client
            .query_one(
                &statement,
                &[&center.id, &center.name, &center.region, &center.address],
            )
            .await?;
        center_from_row(&row)
    }

    async fn list_centers(&self, region: Option<&str>) -> Result<Vec<Center>, BookingStoreError> {
        let client = self.client().await?;
        // Byte order ("C" collation) sorts Hangul syllables in dictionary order and matches
        // the in-process store.
        let statement = client
            .prepare_cached(
                "SELECT id, name, region, address FROM centers \
                 WHERE $1::text IS NULL OR region = $1 \
                 ORDER BY region COLLATE \"C\", name COLLATE \"C\", id",
            )
            .await?;
        let rows = client.query(&statement, &[&region]).await?;
        rows.iter().map(center_from_row).collect()
    }

    async fn get_center(&self, id: Uuid) -> Result<Option<Center>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT id, name, region, address FROM centers WHERE id = $1")
            .await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        row.as_ref().map(center_from_row).transpose()
    }

    async fn upsert_slot(&self, draft: SlotDraft) -> Result<Slot, BookingStoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let existing = transaction
            .query_opt(
                "SELECT campaign_id, date, booked FROM slots WHERE id = $1 FOR UPDATE",
                &[&draft.id],
            )
            .await?;
        if let Some(existing) = existing {
            let campaign_id: String = existing.try_get(0)?;
            let date: NaiveDate = existing.try_get(1)?;
            let booked: i32 = existing.try_get(2)?;
            if booked > 0 && (campaign_id != draft.campaign_id || date != draft.date) {
                return Err(BookingStoreError::SlotHasBookings);
            }
            if draft.capacity < booked {
                return Err(BookingStoreError::CapacityBelowBooked {
                    capacity: draft.capacity,
                    booked,
                });
            }
        }
        let upsert = format!(
            "INSERT INTO slots ({SLOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) \
             ON CONFLICT (id) DO UPDATE SET campaign_id = EXCLUDED.campaign_id, \
             center_id = EXCLUDED.center_id, date = EXCLUDED.date, \
             starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, \
             vaccine = EXCLUDED.vaccine, capacity = EXCLUDED.capacity \
             RETURNING {SLOT_COLUMNS}"
        );
        let row = transaction
            .query_one(
                &upsert,
                &[
                    &draft.id,
                    &draft.campaign_id,
                    &draft.center_id,
                    &draft.date,
                    &draft.starts_at,
                    &draft.ends_at,
                    &draft.vaccine,
                    &draft.capacity,
                ],
            )
            .await
            .map_err(|err| match err.code() {
                Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => {
                    BookingStoreError::NotFound("center")
                }
                _ => err.into(),
            })?;
        let slot = slot_from_row(&row, 0)?;
        transaction.commit().await?;
        Ok(slot)
    }

    async fn get_slot(&self, id: Uuid) -> Result<Option<Slot>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {SLOT_COLUMNS} FROM slots WHERE id = $1"))
            .await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        row.map(|row| slot_from_row(&row, 0)).transpose()
    }

    async fn list_slots(
        &self,
        center_id: Uuid,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<Slot>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {SLOT_COLUMNS} FROM slots WHERE center_id = $1 \
                 AND ($2::date IS NULL OR date >= $2) AND ($3::date IS NULL OR date <= $3) \
                 ORDER BY starts_at, id"
            ))
            .await?;
        let rows = client.query(&statement, &[&center_id, &from, &to]).await?;
        rows.iter().map(|row| slot_from_row(row, 0)).collect()
    }

    async fn find_by_idempotency_key(
        &self,
        person_key: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Booking>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "{BOOKING_SELECT} WHERE b.person_key = $1 AND b.idempotency_key = $2"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&person_key, &key.as_str()])
            .await?;
        row.as_ref().map(booking_from_row).transpose()
    }

    async fn create_booking(&self, booking: NewBooking) -> Result<Booking, BookingStoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        if let Some(proxy) = &booking.proxy {
            // Before any slot row: only proxy bookings take this lock, so no cycle with the
            // slot-first order of the others.
            proxy_quota(&transaction, proxy, &booking.campaign_id).await?;
        }
        // Only released places are booked: `floor(capacity × share)` with the share in basis
        // points, compared in the same guarded update that takes the place.
        let reserve = transaction
            .prepare_cached(&format!(
                "UPDATE slots SET booked = booked + 1 \
                 WHERE id = $1 AND campaign_id = $2 AND booked < capacity \
                 AND booked < (capacity::bigint * $3::bigint) / 10000 \
                 RETURNING {SLOT_COLUMNS}"
            ))
            .await?;
        let share = i64::from(booking.released_share.basis_points());
        let reserved = transaction
            .query_opt(&reserve, &[&booking.slot_id, &booking.campaign_id, &share])
            .await?;
        let Some(reserved) = reserved else {
            let exists = transaction
                .query_opt(
                    "SELECT 1 FROM slots WHERE id = $1 AND campaign_id = $2",
                    &[&booking.slot_id, &booking.campaign_id],
                )
                .await?;
            return Err(match exists {
                Some(_) => BookingStoreError::SlotFull,
                None => BookingStoreError::NotFound("slot"),
            });
        };
        let slot = slot_from_row(&reserved, 0)?;
        let until = cancellable_until(slot.date, booking.cancellation_closes_days_before);
        let created_at = storage_precision(booking.created_at);
        let idempotency_key = booking.idempotency_key.as_ref().map(IdempotencyKey::as_str);
        let booked_by = booking.proxy.as_ref().map(|proxy| proxy.booked_by.as_str());
        let masked_name = booking
            .proxy
            .as_ref()
            .map(|proxy| proxy.beneficiary_masked_name.as_str());
        let channel = if booking.agent.is_some() {
            "call_center"
        } else {
            "web"
        };
        let insert = transaction
            .prepare_cached(
                "INSERT INTO bookings (id, person_key, campaign_id, slot_id, status, \
                 idempotency_key, created_at, cancellable_until, booked_by, \
                 beneficiary_masked_name, channel, agent) \
                 VALUES ($1, $2, $3, $4, 'confirmed', $5, $6, $7, $8, $9, $10, $11)",
            )
            .await?;
        // On a unique violation the transaction is dropped, which rolls the reservation back.
        transaction
            .execute(
                &insert,
                &[
                    &booking.id,
                    &booking.person_key,
                    &booking.campaign_id,
                    &booking.slot_id,
                    &idempotency_key,
                    &created_at,
                    &until,
                    &booked_by,
                    &masked_name,
                    &channel,
                    &booking.agent,
                ],
            )
            .await
            .map_err(insert_failure)?;
        transaction.commit().await?;
        let (booked_by, beneficiary_masked_name) = booking
            .proxy
            .map(|proxy| (proxy.booked_by, proxy.beneficiary_masked_name))
            .unzip();
        Ok(Booking {
            id: booking.id,
            person_key: booking.person_key,
            campaign_id: booking.campaign_id,
            slot,
            status: BookingStatus::Confirmed,
            idempotency_key: idempotency_key.map(str::to_owned),
            created_at,
            cancelled_at: None,
            cancellable_until: until,
            booked_by,
            beneficiary_masked_name,
            agent: booking.agent,
        })
    }

    async fn list_bookings_made_for_others(
        &self,
        booked_by: &str,
    ) -> Result<Vec<Booking>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "{BOOKING_SELECT} WHERE b.booked_by = $1 ORDER BY b.created_at DESC, b.id DESC"
            ))
            .await?;
        let rows = client.query(&statement, &[&booked_by]).await?;
        rows.iter().map(booking_from_row).collect()
    }

    async fn list_bookings(&self, person_key: &str) -> Result<Vec<Booking>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "{BOOKING_SELECT} WHERE b.person_key = $1 ORDER BY b.created_at DESC, b.id DESC"
            ))
            .await?;
        let rows = client.query(&statement, &[&person_key]).await?;
        rows.iter().map(booking_from_row).collect()
    }

    async fn get_booking(&self, id: Uuid) -> Result<Option<Booking>, BookingStoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{BOOKING_SELECT} WHERE b.id = $1"))
            .await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        row.as_ref().map(booking_from_row).transpose()
    }

    async fn cancel_booking(
        &self,
        id: Uuid,
        person_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Booking, BookingStoreError> {
        let mut client = self.client().await?;
        moves::cancel(&mut client, id, person_key, now).await
    }

    async fn change_booking(
        &self,
        id: Uuid,
        person_key: &str,
        new_slot_id: Uuid,
        cancellation_closes_days_before: u32,
        released_share: ReleasedShare,
    ) -> Result<Booking, BookingStoreError> {
        let mut client = self.client().await?;
        moves::change(
            &mut client,
            id,
            person_key,
            new_slot_id,
            cancellation_closes_days_before,
            released_share,
        )
        .await
    }

    async fn ping(&self) -> Result<(), BookingStoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A migrated store over a fresh database of its own.
    pub(crate) async fn fresh_store(label: &str) -> PgBookingStore {
        let url = platform::pg::create_test_database(label)
            .await
            .expect("tests need PostgreSQL at 127.0.0.1:5432");
        migrate(&url).await.expect("migrating the test database");
        PgBookingStore::new(platform::pg::pool(&url, 16).expect("building the pool"))
    }

    #[tokio::test]
    async fn migrating_twice_is_harmless_and_uses_its_own_history_table() {
        let url = platform::pg::create_test_database("booking_migrate")
            .await
            .expect("tests need PostgreSQL");
        migrate(&url).await.expect("first migration");
        migrate(&url).await.expect("second migration");
        let pool = platform::pg::pool(&url, 1).expect("pool");
        let client = pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT count(*) FROM booking_schema_history WHERE version IN (1, 2)",
                &[],
            )
            .await
            .expect("reading the history table");
        let applied: i64 = row.get(0);
        assert_eq!(applied, 2);
        let other = client
            .query_opt(
                "SELECT 1 FROM information_schema.tables WHERE table_name = 'refinery_schema_history'",
                &[],
            )
            .await
            .expect("reading the catalog");
        assert!(
            other.is_none(),
            "the default history table must not be used"
        );
    }
}
