-- Allocations by source. Store::apply checks that a payment or credit note a
-- change set touches is not allocated beyond its amount; these keep that a
-- lookup of its own allocations rather than a scan of every allocation.
CREATE INDEX allocations_payment_idx ON allocations (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX allocations_credit_note_idx ON allocations (credit_note_id) WHERE credit_note_id IS NOT NULL;
