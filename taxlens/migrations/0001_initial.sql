-- taxlens schema, version 1.
-- Every quantity, price and amount is DECIMAL(38,18): exact, never DOUBLE, never bare DECIMAL
-- (which DuckDB reads as DECIMAL(18,3) and silently rounds).

CREATE TABLE files (
    sha256      VARCHAR PRIMARY KEY,      -- of the file's bytes: the same export is imported once
    path        VARCHAR NOT NULL,         -- as given on the command line at first import
    adapter     VARCHAR NOT NULL,         -- the format that read it
    rows_read   INTEGER NOT NULL,         -- data rows in the file (headers and footers excluded)
    trades      INTEGER NOT NULL,         -- events extracted from it
    inserted    INTEGER NOT NULL,         -- of those, new to the store (others were already there)
    ignored     INTEGER NOT NULL,         -- rows of actions ignored on purpose (see `taxlens formats`)
    bad_rows    INTEGER NOT NULL,         -- rows skipped with --skip-bad-rows
    imported_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE accounts (
    account      VARCHAR PRIMARY KEY,
    type         VARCHAR NOT NULL,        -- taxable | traditional_ira | roth_ira | 401k | hsa
    owner        VARCHAR NOT NULL,        -- household member
    configured   BOOLEAN NOT NULL,        -- false: not in taxlens.toml, so taxable by default
    first_adapter VARCHAR NOT NULL
);

CREATE TABLE trades (
    trade_id        UHUGEINT NOT NULL,    -- content hash (md5): adapter, account, fields, occurrence
    file_sha256     VARCHAR NOT NULL,     -- source file (files.sha256) ...
    line            INTEGER NOT NULL,     -- ... and its line
    adapter         VARCHAR NOT NULL,
    account         VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    asset_class     VARCHAR NOT NULL,     -- equity | etf | fund | crypto | option | bond | cash | other
    action          VARCHAR NOT NULL,     -- buy | sell | reinvest | split_in | ... (README)
    ts              TIMESTAMPTZ,          -- the instant, when the source gives a time
    trade_date      DATE NOT NULL,        -- tax date in the taxpayer's time zone
    quantity        DECIMAL(38,18) NOT NULL,  -- always >= 0; the action gives the direction
    price           DECIMAL(38,18),
    fee             DECIMAL(38,18) NOT NULL,
    fee_currency    VARCHAR NOT NULL,
    currency        VARCHAR NOT NULL,
    amount          DECIMAL(38,18),       -- net cash where the source gives it; negative = out
    broker_trade_id VARCHAR,              -- the source's own id (kept in every output)
    order_id        VARCHAR,
    lot_id          VARCHAR,              -- specific-ID: the lot a sale names
    note            VARCHAR
);

-- The trades with their file, account type and a source reference, for direct queries.
CREATE VIEW trade_list AS
SELECT
    coalesce(t.broker_trade_id, printf('%032x', t.trade_id)) AS id,
    t.trade_date, t.ts, t.account, a.type AS account_type, a.owner,
    t.symbol, t.asset_class, t.action, t.quantity, t.price, t.fee, t.fee_currency, t.currency,
    t.amount, t.order_id, t.lot_id, t.note,
    f.path || ':' || t.line AS source, t.adapter, printf('%032x', t.trade_id) AS trade_id
FROM trades t
JOIN files f ON f.sha256 = t.file_sha256
LEFT JOIN accounts a ON a.account = t.account;

-- Net quantity held per account and symbol from the stored events (before any lot booking).
CREATE VIEW positions AS
SELECT account, symbol, asset_class,
    sum(CASE WHEN action IN ('buy', 'buy_to_cover', 'reinvest', 'split_in', 'transfer_in', 'income')
             THEN quantity
             WHEN action IN ('sell', 'sell_short', 'split_out', 'transfer_out')
             THEN -quantity
             WHEN action = 'fee' AND fee_currency = symbol THEN -fee
             ELSE 0 END) AS quantity,
    count(*) AS events,
    min(trade_date) AS first_date,
    max(trade_date) AS last_date
FROM trades
WHERE action NOT IN ('dividend', 'interest', 'withholding', 'deposit', 'withdrawal', 'cash_in_lieu')
GROUP BY ALL;
