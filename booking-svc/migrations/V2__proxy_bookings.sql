-- Proxy bookings (R1): a booking records who made it when that is not the person booked for.
-- `booked_by` is the booker's person key (NULL: the person booked for themselves) and
-- `beneficiary_masked_name` the masked name (홍*동) the booker sees in their list of bookings
-- made for others; neither the RRN nor the full name ever reaches this database.

ALTER TABLE bookings ADD COLUMN booked_by text NULL;
ALTER TABLE bookings ADD COLUMN beneficiary_masked_name text NULL;

ALTER TABLE bookings ADD CONSTRAINT bookings_proxy_names_someone_else
    CHECK (booked_by IS NULL OR booked_by <> person_key);
ALTER TABLE bookings ADD CONSTRAINT bookings_masked_name_only_for_proxies
    CHECK (booked_by IS NOT NULL OR beneficiary_masked_name IS NULL);

-- The booker's list, and the count of their confirmed proxy bookings per campaign.
CREATE INDEX bookings_booked_by ON bookings (booked_by, campaign_id, created_at)
    WHERE booked_by IS NOT NULL;
