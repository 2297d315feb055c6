-- Call-center bookings (R9): a booking records the channel it came through and, for the
-- call-center channel, the account id of the agent who made it (never the agent's or the
-- caller's name). Existing bookings came through the web.

ALTER TABLE bookings ADD COLUMN channel text NOT NULL DEFAULT 'web';
ALTER TABLE bookings ADD COLUMN agent text NULL;

ALTER TABLE bookings ADD CONSTRAINT bookings_known_channel
    CHECK (channel IN ('web', 'call_center'));
ALTER TABLE bookings ADD CONSTRAINT bookings_agent_exactly_for_call_center
    CHECK ((channel = 'call_center') = (agent IS NOT NULL));

-- An agent's bookings, for the audit and the supervisors.
CREATE INDEX bookings_agent ON bookings (agent, created_at) WHERE agent IS NOT NULL;
