-- Wash sales (tax-rules.md §3): the booking now runs a wash-sale pass after lot matching.
-- Derived data, like lots and disposals: emptied here so the next command books again.

DELETE FROM book_state;
DELETE FROM lots;
DELETE FROM disposals;
DELETE FROM book_problems;

-- The lot a slice came from (lots.seq); null for a shortfall slice (basis unknown).
ALTER TABLE disposals ADD COLUMN lot_seq BIGINT;
-- The acquisition date after the sold shares' holding period was tacked on (§3.4); it decides
-- the term. = acquired for shares no wash sale touched.
ALTER TABLE disposals ADD COLUMN adjusted_acquired DATE;
-- The part of cost_basis that is a loss deferred by an earlier wash sale (0 if none).
ALTER TABLE disposals ADD COLUMN wash_basis DECIMAL(38,18) NOT NULL DEFAULT 0;

-- What remains open of adjusted_basis (open_basis plus the deferred losses on open shares).
ALTER TABLE lots ADD COLUMN open_adjusted_basis DECIMAL(38,18);

-- One row per (loss slice, replacement shares) match.
CREATE TABLE washes (
    household            VARCHAR NOT NULL,   -- owners filing together (taxlens.toml [wash_sales])
    wash_group           VARCHAR NOT NULL,   -- the symbol, or the substantially-identical group
    account              VARCHAR NOT NULL,   -- the loss sale's
    symbol               VARCHAR NOT NULL,
    sell_trade_id        VARCHAR NOT NULL,
    disposed             DATE NOT NULL,
    lot_id               VARCHAR,            -- the lot sold at a loss
    quantity             DECIMAL(38,18) NOT NULL,  -- shares of the loss matched to replacements
    disallowed           DECIMAL(38,18) NOT NULL,  -- loss disallowed on them (> 0)
    replacement_account  VARCHAR NOT NULL,
    replacement_symbol   VARCHAR NOT NULL,
    replacement_lot_id   VARCHAR NOT NULL,
    replacement_acquired DATE NOT NULL,
    replacement_seq      BIGINT NOT NULL,    -- lots.seq of the replacement
    tacked_days          INTEGER NOT NULL,   -- holding period carried to the replacement shares
    status               VARCHAR NOT NULL,   -- deferred | permanent (tax-advantaged buyer) | info (crypto)
    broker_reported      BOOLEAN NOT NULL,   -- same account and symbol: the broker's 1099-B can show it
    seq                  BIGINT NOT NULL,    -- the sale's event
    source               VARCHAR NOT NULL    -- path:line of the sale
);
