-- Deferred wash-sale losses that left with shares for where taxlens does not follow them:
-- "still deferred" no longer counts them. Derived data: emptied here so the next command
-- books again (and fills the new table).

DELETE FROM book_state;
DELETE FROM lots;
DELETE FROM disposals;
DELETE FROM washes;
DELETE FROM book_problems;

-- One row per transfer out and lot (lots/frames.py CARRIED_SCHEMA).
CREATE TABLE carried_out (
    account  VARCHAR NOT NULL,          -- the account the shares left
    symbol   VARCHAR NOT NULL,
    lot_id   VARCHAR NOT NULL,          -- the lot they were part of
    date     DATE NOT NULL,             -- the transfer's tax date
    quantity DECIMAL(38,18) NOT NULL,   -- shares that carried wash-sale adjustments
    amount   DECIMAL(38,18) NOT NULL,   -- the loss deferred in them, gone with them
    seq      BIGINT NOT NULL,           -- the transfer's event
    source   VARCHAR NOT NULL           -- path:line of the transfer out
);
