-- A warehouse may ship an order more than once: once per allocation round. The order's
-- reservation round is packed and shipped first; a backordered line allocated later to a
-- warehouse that packed the order already is packed again under a packing id of its own,
-- naming its round (packing.packed.v1 backorder_round), and ships as a shipment of its own.
-- Still one shipment per packing: shipments UNIQUE (packing_id), id = UUID v5 of it.

-- The round the packing's units were allocated in; NULL for the order's reservation round
-- (and for every shipment recorded before rounds existed).
ALTER TABLE shipments ADD COLUMN backorder_round text;

-- One shipment per order, warehouse and round (the reservation round's NULL counts as one
-- round): a different packing of a round that has a shipment is refused, and dead-lettered
-- for a human, as a second packing per warehouse was before. Its index also serves the
-- lookups by order the dropped constraint's index served.
ALTER TABLE shipments DROP CONSTRAINT shipments_order_id_warehouse_id_key;
ALTER TABLE shipments ADD CONSTRAINT shipments_one_per_round
    UNIQUE NULLS NOT DISTINCT (order_id, warehouse_id, backorder_round);
