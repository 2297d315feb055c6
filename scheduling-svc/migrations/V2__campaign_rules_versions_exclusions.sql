-- Campaign rules as data (R5): bands and windows in a jsonb column, a version bumped by every
-- change with every version kept in campaign_versions; exclusion lists (R7) per campaign as
-- versioned lists of person keys, switched in one transaction.
--
-- Rows written before this migration have no rules: the service reads them as one open window
-- over booking_opens_at .. booking_closes_at on every channel, releasing all supply, exactly as
-- they were answered before. They start at version 1, recorded in the history below.

ALTER TABLE campaigns
    ADD COLUMN version              bigint  NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN proxy_max_per_booker integer NOT NULL DEFAULT 0 CHECK (proxy_max_per_booker >= 0),
    ADD COLUMN rules                jsonb   NULL;

CREATE TABLE campaign_versions (
    campaign_id text        COLLATE "C" NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version     bigint      NOT NULL,
    -- The whole row as it was stored under this version.
    document    jsonb       NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, version)
);

INSERT INTO campaign_versions (campaign_id, version, document)
SELECT c.id, c.version, to_jsonb(c) FROM campaigns c;

-- One row per list version ever loaded; the entries of superseded versions are deleted when
-- the next one is switched in.
CREATE TABLE exclusion_lists (
    campaign_id text        COLLATE "C" NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version     bigint      NOT NULL CHECK (version >= 1),
    entries     bigint      NOT NULL CHECK (entries >= 0),
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, version)
);

CREATE TABLE exclusion_entries (
    campaign_id text   COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    person_key  text   COLLATE "C" NOT NULL CHECK (char_length(person_key) BETWEEN 1 AND 128),
    PRIMARY KEY (campaign_id, version, person_key),
    FOREIGN KEY (campaign_id, version) REFERENCES exclusion_lists (campaign_id, version)
        ON DELETE CASCADE
);

-- The list in force for each campaign.
CREATE TABLE exclusion_current (
    campaign_id text   COLLATE "C" PRIMARY KEY,
    version     bigint NOT NULL,
    FOREIGN KEY (campaign_id, version) REFERENCES exclusion_lists (campaign_id, version)
);
