//! The PostgreSQL transactions that move a booking's place: cancelling (the place goes back to
//! its slot) and changing (the place moves to another slot of the campaign). Both follow the
//! store's lock order, slot rows before the booking row; a change locks its two slot rows
//! smaller uuid first.
//!
//! The slot to lock is read from the booking before the lock is taken, so a concurrent change
//! of the same booking may move it in between. Each transaction therefore re-reads the booking
//! under the lock and, when it is no longer where it was, rolls back and starts over (a few
//! times, then "busy"): it never gives back a place in a slot the booking has left.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Object, Transaction};
use uuid::Uuid;

use super::{BOOKING_SELECT, booking_from_row};
use crate::domain::{Booking, BookingStatus, ReleasedShare, cancellable_until, storage_precision};
use crate::store::BookingStoreError;

/// How often a cancel or change starts over because the booking moved meanwhile.
const MOVED_BOOKING_ATTEMPTS: usize = 3;

/// One try of a transaction that may find the booking moved under it.
enum Attempt {
    Done(Box<Booking>),
    BookingMoved,
}

fn moved_too_often() -> BookingStoreError {
    BookingStoreError::MovedTooOften
}

/// Where a booking is, read before any lock is taken.
struct Whereabouts {
    slot_id: Uuid,
    status: BookingStatus,
    campaign_id: String,
}

async fn whereabouts(
    transaction: &Transaction<'_>,
    id: Uuid,
    person_key: &str,
) -> Result<Whereabouts, BookingStoreError> {
    let statement = transaction
        .prepare_cached(
            "SELECT slot_id, status, campaign_id FROM bookings WHERE id = $1 AND person_key = $2",
        )
        .await?;
    let row = transaction
        .query_opt(&statement, &[&id, &person_key])
        .await?
        .ok_or(BookingStoreError::NotFound("booking"))?;
    let status: String = row.try_get(1)?;
    Ok(Whereabouts {
        slot_id: row.try_get(0)?,
        status: BookingStatus::parse(&status).ok_or(BookingStoreError::UnknownStatus(status))?,
        campaign_id: row.try_get(2)?,
    })
}

/// Locks one slot row; the slot's campaign, or `None` when there is no such slot.
async fn lock_slot(
    transaction: &Transaction<'_>,
    slot_id: Uuid,
) -> Result<Option<String>, BookingStoreError> {
    let statement = transaction
        .prepare_cached("SELECT campaign_id FROM slots WHERE id = $1 FOR UPDATE")
        .await?;
    let row = transaction.query_opt(&statement, &[&slot_id]).await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

async fn read_booking(
    transaction: &Transaction<'_>,
    id: Uuid,
) -> Result<Booking, BookingStoreError> {
    let select = transaction
        .prepare_cached(&format!("{BOOKING_SELECT} WHERE b.id = $1"))
        .await?;
    let row = transaction.query_one(&select, &[&id]).await?;
    booking_from_row(&row)
}

async fn give_place_back(
    transaction: &Transaction<'_>,
    slot_id: Uuid,
) -> Result<(), BookingStoreError> {
    let release = transaction
        .prepare_cached("UPDATE slots SET booked = booked - 1 WHERE id = $1")
        .await?;
    transaction.execute(&release, &[&slot_id]).await?;
    Ok(())
}

/// Cancels the person's confirmed booking and frees its place in one transaction.
pub(super) async fn cancel(
    client: &mut Object,
    id: Uuid,
    person_key: &str,
    now: DateTime<Utc>,
) -> Result<Booking, BookingStoreError> {
    for _ in 0..MOVED_BOOKING_ATTEMPTS {
        if let Attempt::Done(booking) = try_cancel(client, id, person_key, now).await? {
            return Ok(*booking);
        }
    }
    Err(moved_too_often())
}

async fn try_cancel(
    client: &mut Object,
    id: Uuid,
    person_key: &str,
    now: DateTime<Utc>,
) -> Result<Attempt, BookingStoreError> {
    let transaction = client.transaction().await?;
    let seen = whereabouts(&transaction, id, person_key).await?;
    // Slot row first (see the module comment).
    lock_slot(&transaction, seen.slot_id).await?;
    let cancel = transaction
        .prepare_cached(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = $3 \
             WHERE id = $1 AND person_key = $2 AND status = 'confirmed' RETURNING slot_id",
        )
        .await?;
    let cancelled = transaction
        .query_opt(&cancel, &[&id, &person_key, &storage_precision(now)])
        .await?;
    let Some(cancelled) = cancelled else {
        return Err(BookingStoreError::AlreadyCancelled);
    };
    let held_slot: Uuid = cancelled.try_get(0)?;
    if held_slot != seen.slot_id {
        // Dropping the transaction rolls the cancel back.
        return Ok(Attempt::BookingMoved);
    }
    give_place_back(&transaction, held_slot).await?;
    let booking = read_booking(&transaction, id).await?;
    transaction.commit().await?;
    Ok(Attempt::Done(Box::new(booking)))
}

/// Moves the person's confirmed booking to `new_slot_id` in one transaction.
pub(super) async fn change(
    client: &mut Object,
    id: Uuid,
    person_key: &str,
    new_slot_id: Uuid,
    cancellation_closes_days_before: u32,
    released_share: ReleasedShare,
) -> Result<Booking, BookingStoreError> {
    for _ in 0..MOVED_BOOKING_ATTEMPTS {
        let attempt = try_change(
            client,
            id,
            person_key,
            new_slot_id,
            cancellation_closes_days_before,
            released_share,
        )
        .await?;
        if let Attempt::Done(booking) = attempt {
            return Ok(*booking);
        }
    }
    Err(moved_too_often())
}

async fn try_change(
    client: &mut Object,
    id: Uuid,
    person_key: &str,
    new_slot_id: Uuid,
    cancellation_closes_days_before: u32,
    released_share: ReleasedShare,
) -> Result<Attempt, BookingStoreError> {
    let transaction = client.transaction().await?;
    let seen = whereabouts(&transaction, id, person_key).await?;
    if seen.status == BookingStatus::Cancelled {
        return Err(BookingStoreError::AlreadyCancelled);
    }
    let old_slot_id = seen.slot_id;
    if old_slot_id == new_slot_id {
        return Ok(Attempt::Done(Box::new(
            read_booking(&transaction, id).await?,
        )));
    }
    // Both slot rows, smaller uuid first, before the booking row (see the module comment).
    let (first, second) = if old_slot_id < new_slot_id {
        (old_slot_id, new_slot_id)
    } else {
        (new_slot_id, old_slot_id)
    };
    let first_campaign = lock_slot(&transaction, first).await?;
    let second_campaign = lock_slot(&transaction, second).await?;
    let new_slot_campaign = if first == new_slot_id {
        first_campaign
    } else {
        second_campaign
    };
    // Under the lock the new slot cannot change campaign (an upsert locks the row too).
    if new_slot_campaign.as_deref() != Some(seen.campaign_id.as_str()) {
        return Err(BookingStoreError::NotFound("slot"));
    }
    let recheck = transaction
        .prepare_cached("SELECT slot_id, status FROM bookings WHERE id = $1 FOR UPDATE")
        .await?;
    let now_row = transaction.query_one(&recheck, &[&id]).await?;
    let held_slot: Uuid = now_row.try_get(0)?;
    let status: String = now_row.try_get(1)?;
    if status != BookingStatus::Confirmed.as_str() {
        return Err(BookingStoreError::AlreadyCancelled);
    }
    if held_slot != old_slot_id {
        return Ok(Attempt::BookingMoved);
    }
    let take = transaction
        .prepare_cached(
            "UPDATE slots SET booked = booked + 1 \
             WHERE id = $1 AND booked < capacity \
             AND booked < (capacity::bigint * $2::bigint) / 10000 RETURNING date",
        )
        .await?;
    let share = i64::from(released_share.basis_points());
    let Some(taken) = transaction
        .query_opt(&take, &[&new_slot_id, &share])
        .await?
    else {
        // Dropping the transaction rolls back: nothing changed.
        return Err(BookingStoreError::SlotFull);
    };
    let new_date: NaiveDate = taken.try_get(0)?;
    give_place_back(&transaction, old_slot_id).await?;
    let until = cancellable_until(new_date, cancellation_closes_days_before);
    let relocate = transaction
        .prepare_cached("UPDATE bookings SET slot_id = $2, cancellable_until = $3 WHERE id = $1")
        .await?;
    transaction
        .execute(&relocate, &[&id, &new_slot_id, &until])
        .await?;
    let booking = read_booking(&transaction, id).await?;
    transaction.commit().await?;
    Ok(Attempt::Done(Box::new(booking)))
}
