-- Campaigns (R6 age groups, booking windows, proxy/change/cancellation policy).
-- The CHECK constraints repeat the service's validation so no writer can store a campaign the
-- service would refuse to load.
CREATE TABLE campaigns (
    -- Byte order (COLLATE "C"), so listing by id matches the in-process store everywhere.
    id                              text        COLLATE "C" PRIMARY KEY
                                                CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name                            text        NOT NULL
                                                CHECK (char_length(name) BETWEEN 1 AND 200),
    born_from                       date        NOT NULL,
    born_to                         date        NOT NULL,
    booking_opens_at                timestamptz NOT NULL,
    booking_closes_at               timestamptz NOT NULL,
    vaccination_from                date        NOT NULL,
    vaccination_to                  date        NOT NULL,
    proxy_allowed                   boolean     NOT NULL DEFAULT false,
    proxy_deadline                  timestamptz NULL,
    modification_allowed_from       timestamptz NULL,
    cancellation_closes_days_before integer     NOT NULL
                                                CHECK (cancellation_closes_days_before BETWEEN 0 AND 30),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_born_range CHECK (born_from <= born_to),
    CONSTRAINT campaigns_booking_window CHECK (booking_opens_at < booking_closes_at),
    CONSTRAINT campaigns_vaccination_range CHECK (vaccination_from <= vaccination_to)
);
