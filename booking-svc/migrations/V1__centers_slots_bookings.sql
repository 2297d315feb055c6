-- booking-svc schema: vaccination centers, their slots, and the bookings that hold places.
-- The database itself enforces R10 (never overbook, one active booking per person and
-- campaign), so no code path and no concurrency can break it.

CREATE TABLE centers (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    region text NOT NULL,
    address text NOT NULL DEFAULT ''
);

CREATE INDEX centers_region_name ON centers (region, name);

CREATE TABLE slots (
    id uuid PRIMARY KEY,
    campaign_id text NOT NULL,
    center_id uuid NOT NULL REFERENCES centers (id),
    date date NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    vaccine text NOT NULL,
    capacity integer NOT NULL,
    booked integer NOT NULL DEFAULT 0,
    CONSTRAINT slots_booked_within_capacity CHECK (booked >= 0 AND booked <= capacity),
    CONSTRAINT slots_starts_before_ends CHECK (starts_at < ends_at)
);

CREATE INDEX slots_center_starts_at ON slots (center_id, starts_at);

CREATE TABLE bookings (
    id uuid PRIMARY KEY,
    person_key text NOT NULL,
    campaign_id text NOT NULL,
    slot_id uuid NOT NULL REFERENCES slots (id),
    status text NOT NULL CONSTRAINT bookings_status_known CHECK (status IN ('confirmed', 'cancelled')),
    idempotency_key text NULL,
    created_at timestamptz NOT NULL,
    cancelled_at timestamptz NULL,
    cancellable_until date NOT NULL,
    CONSTRAINT bookings_cancelled_at_iff_cancelled CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);

-- One active booking per person per campaign (R10).
CREATE UNIQUE INDEX bookings_one_confirmed_per_person_campaign
    ON bookings (person_key, campaign_id) WHERE status = 'confirmed';

-- A person's idempotency key names one booking.
CREATE UNIQUE INDEX bookings_person_idempotency_key
    ON bookings (person_key, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX bookings_person_created_at ON bookings (person_key, created_at);

CREATE INDEX bookings_slot ON bookings (slot_id);
