-- Booked lots and disposals: derived from trades and settings, recomputed when either changes
-- (book_state.key is a hash of the imported files and the booking settings).

CREATE TABLE book_state (
    key        VARCHAR NOT NULL,
    booked_at  TIMESTAMPTZ NOT NULL,
    lots       INTEGER NOT NULL,
    disposals  INTEGER NOT NULL
);

CREATE TABLE lots (
    scope             VARCHAR NOT NULL,   -- lot pool: the account, or universal:<owner> for pooled crypto
    account           VARCHAR NOT NULL,
    symbol            VARCHAR NOT NULL,
    lot_id            VARCHAR NOT NULL,   -- the acquiring trade's id (the source's own where it has one)
    acquired          DATE NOT NULL,
    adjusted_acquired DATE NOT NULL,      -- moved back by wash sales (later); = acquired until then
    quantity          DECIMAL(38,18) NOT NULL,
    cost_basis        DECIMAL(38,18),     -- NULL: basis unknown (never assumed zero)
    adjusted_basis    DECIMAL(38,18),
    open_quantity     DECIMAL(38,18) NOT NULL,
    open_basis        DECIMAL(38,18),
    currency          VARCHAR NOT NULL,
    seq               BIGINT NOT NULL,
    source            VARCHAR NOT NULL    -- path:line of the acquiring trade
);

CREATE TABLE disposals (
    scope           VARCHAR NOT NULL,
    account         VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    quantity        DECIMAL(38,18) NOT NULL,
    acquired        DATE,                 -- NULL for a shortfall slice (basis unknown)
    disposed        DATE NOT NULL,
    proceeds        DECIMAL(38,18) NOT NULL,
    cost_basis      DECIMAL(38,18),
    adjustment_code VARCHAR,
    adjustment      DECIMAL(38,18) NOT NULL,
    gain            DECIMAL(38,18),
    term            VARCHAR,              -- short | long
    method          VARCHAR NOT NULL,
    sell_trade_id   VARCHAR NOT NULL,
    lot_id          VARCHAR,
    currency        VARCHAR NOT NULL,
    seq             BIGINT NOT NULL,
    source          VARCHAR NOT NULL      -- path:line of the sale
);

CREATE TABLE book_problems (
    kind    VARCHAR NOT NULL,             -- problem: booked but flagged | error: results unreliable
    path    VARCHAR NOT NULL,
    line    INTEGER NOT NULL,
    message VARCHAR NOT NULL
);
