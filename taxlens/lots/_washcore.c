/* The wash-sale pass of taxlens/lots/wash.py (_Pass.go, _Group.match and the helpers they
 * call: _carried, _cut, _by_term, _pieces, _part) on 128-bit integers. wash.py's pure-Python
 * pass is the reference: this file mirrors it step for step, and wash.py runs that pass
 * instead whenever this one reports that it cannot be exact.
 *
 * Exactness. Amounts are integer units of 1e-18 (DECIMAL(38,18)'s physical values, |v| < 1e38)
 * held as __int128. Quantities are too, but every quantity of the run is first divided by 10^k,
 * the largest power of ten dividing them all (k = 12 for stocks with 6 decimals), and 10^(18-k)
 * replaces 10^18 where a split divides an amount by a quantity: total·10^18/whole and
 * unit·end/10^18 are then the same rationals, so their half-even roundings are the same
 * integers (quantities only ever add, subtract and compare otherwise, which scaling keeps).
 * Every product, sum and difference that could overflow is checked; on an overflow, a value
 * outside DECIMAL(38,18) or Int32 on output, a date whose anniversary Python's datetime could
 * not compute, or any input the pass does not expect, the run stops and returns the reason
 * as a string, and wash.py runs its own pass, which gives the result (or raises) as it did.
 *
 * Inputs are flat buffers (numpy arrays; DECIMAL columns as Arrow Decimal128 data, 16 bytes
 * little-endian two's complement = __int128 on x86-64 and aarch64); outputs are buffers owned
 * by small Python objects, which wash.py turns into Arrow and polars columns without a copy.
 * No __int128 ever passes through a Python int.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_halfeven.h"

typedef __int128 i128;

#define E_FALLBACK 1 /* not exact here: let the Python pass do it */
#define E_NOMEM 2

/* ---- the pass's state --------------------------------------------------------------------- */

typedef struct {
    i128 s, e, adj; /* shares [s, e) (scaled), the loss added to their basis */
    int64_t tack;   /* days tacked on */
} Seg;

/* One lot (a row of wash.py's ``lt``): wash.py's per-lot lists side by side, so that a lot's
 * state is one or two cache lines rather than one per list. Lots are numbered here in axis
 * order (the acquisition at axis position i is lot i, the other lots after them), so that the
 * scan of a window reads lots one after another; indexes go back to lt's on output. */
typedef struct {
    i128 qty, sold, free_; /* scaled: [0, sold) sold, replacements handed out from max(sold, free) */
    Seg *v;                /* the adjusted ranges in share order (in the arena); n == 0: None */
    int64_t n, cap, p;     /* v[:p] end before the shares sold so far */
    int taxable;
} Lot;

typedef struct {
    i128 q, adj;
    int64_t tack;
} Piece;

/* Segment vectors come from an arena: allocated by bumping a pointer, never freed one by one. */
typedef struct Chunk {
    struct Chunk *prev;
    size_t used, size, pad; /* 32 bytes: the data after it stays 16-byte aligned */
} Chunk;

/* Output columns, one record group each; all columns of a group grow together. */
typedef struct {
    const char *name;
    int size; /* bytes per record */
    int group;
} Col;

enum { G_ROWS, G_SPLIT, G_MATCHES, G_RANGES, N_GROUPS };

enum {
    R_J, R_DIS, R_ADJ, R_TACK,                                             /* slices kept whole */
    S_J, S_Q, S_PP, S_PPV, S_B, S_BV, S_DIS, S_GAIN, S_GAINV, S_ACQ, S_ADJ, /* slices cut by term */
    W_J, W_K, W_START, W_M, W_AMT, W_HELD,                                 /* matches */
    A_K, A_S, A_E, A_ADJ, A_TACK,                                          /* adjusted ranges */
    N_OUT
};

static const Col COLS[N_OUT] = {
    {"rows_j", 4, G_ROWS}, {"rows_disallowed", 16, G_ROWS}, {"rows_adj_in", 16, G_ROWS}, {"rows_tack", 4, G_ROWS},
    {"split_j", 4, G_SPLIT}, {"split_q", 16, G_SPLIT}, {"split_proceeds", 16, G_SPLIT},
    {"split_proceeds_valid", 1, G_SPLIT}, {"split_basis", 16, G_SPLIT}, {"split_basis_valid", 1, G_SPLIT},
    {"split_disallowed", 16, G_SPLIT}, {"split_gain", 16, G_SPLIT}, {"split_gain_valid", 1, G_SPLIT},
    {"split_adjusted_acquired", 4, G_SPLIT}, {"split_adj_in", 16, G_SPLIT},
    {"w_j", 4, G_MATCHES}, {"w_k", 4, G_MATCHES}, {"w_start", 16, G_MATCHES}, {"w_m", 16, G_MATCHES},
    {"w_amount", 16, G_MATCHES}, {"w_held", 4, G_MATCHES},
    {"ranges_k", 4, G_RANGES}, {"ranges_s", 16, G_RANGES}, {"ranges_e", 16, G_RANGES}, {"ranges_adj", 16, G_RANGES},
    {"ranges_tack", 4, G_RANGES},
};

typedef struct {
    int err;
    const char *why;
    int month_end_rule;
    i128 unit;  /* 10^(18-k): one share in scaled quantity units */
    i128 scale; /* 10^k */
    /* lots */
    int64_t n_lots;
    Lot *lot;          /* by the numbering above */
    int64_t *id, *old; /* a row of lt -> its number here, and back */
    const uint8_t *taxable;
    Chunk *arena;
    /* acquisitions on the axis, with the union-find "next live one" pointers */
    int64_t n_cand;
    const int64_t *lots;
    int64_t *nxt;
    /* slices */
    int64_t n;
    const int64_t *slice_lot, *first, *stop;
    int64_t *slot; /* each slice's lot, numbered here (-1: none) */
    const uint8_t *loss, *applies, *cost_valid, *proceeds_valid, *basis_valid, *sale_start;
    const char *q_raw, *cost_raw, *proceeds_raw, *basis_raw; /* i128 each, maybe unaligned */
    i128 *q;                                                  /* scaled */
    const int32_t *acquired, *disposed;
    i128 *c0;
    Piece *pieces;
    int64_t n_pieces, cap_pieces;
    /* output */
    char *out[N_OUT];
    int64_t count[N_GROUPS], cap[N_GROUPS];
} St;

static void fail(St *st, const char *why) {
    if (!st->err) {
        st->err = E_FALLBACK;
        st->why = why;
    }
}

static void nomem(St *st) {
    st->err = E_NOMEM;
    st->why = "out of memory";
}

static inline i128 ld(const char *raw, int64_t i) {
    i128 v;
    memcpy(&v, raw + 16 * i, 16);
    return v;
}

static void *arena_alloc(St *st, size_t size) {
    size = (size + 15) & ~(size_t)15;
    Chunk *c = st->arena;
    if (!c || c->used + size > c->size) {
        size_t want = size > ((size_t)1 << 24) ? size : ((size_t)1 << 24);
        c = malloc(sizeof(Chunk) + want);
        if (!c) {
            nomem(st);
            return NULL;
        }
        c->prev = st->arena;
        c->used = 0;
        c->size = want;
        st->arena = c;
    }
    void *p = (char *)(c + 1) + c->used;
    c->used += size;
    return p;
}

/* ---- checked arithmetic (Python ints never overflow; here an overflow means fall back) ---- */

static inline i128 add(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_add_overflow(a, b, &r)) fail(st, "128-bit overflow");
    return r;
}
static inline i128 sub(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_sub_overflow(a, b, &r)) fail(st, "128-bit overflow");
    return r;
}
static inline i128 mul(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_mul_overflow(a, b, &r)) fail(st, "128-bit overflow");
    return r;
}
static inline int64_t add64(St *st, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) fail(st, "64-bit overflow");
    return r;
}
static inline int64_t sub64(St *st, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) fail(st, "64-bit overflow");
    return r;
}

/* half_even_div (_halfeven.h), with a non-positive divisor reported. */
static inline i128 hediv(St *st, i128 num, i128 den) {
    if (den <= 0) {
        fail(st, "division by a non-positive quantity");
        return 0;
    }
    return half_even_div(num, den);
}

/* _part: F(end) − F(start) for ``total`` spread over ``whole`` (scaled quantities). */
static i128 part(St *st, i128 total, i128 whole, i128 start, i128 end) {
    if (start == 0 && end == whole) return total;
    i128 unit = hediv(st, mul(st, total, st->unit), whole);
    i128 hi = end == whole ? total : hediv(st, mul(st, unit, end), st->unit);
    if (start == 0) return hi;
    i128 lo = hediv(st, mul(st, unit, start), st->unit);
    return sub(st, hi, lo);
}

/* ---- anniversaries (taxlens.lots.holding.anniversary on days since 1970-01-01) ------------ */

static void civil(int64_t z, int64_t *y, int *m, int *d) { /* H. Hinnant's civil_from_days */
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t from_civil(int64_t y, int m, int d) { /* days_from_civil */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_days(int64_t y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

#define DAY_MIN (-719162) /* 0001-01-01 */
#define DAY_MAX 2932531   /* 9998-12-31: the last day whose anniversary datetime can hold */

/* *ok = 0 outside datetime's range (the caller falls back), else the anniversary. */
static int64_t anniv(int64_t day, int month_end_rule, int *ok) {
    if (day < DAY_MIN || day > DAY_MAX) {
        *ok = 0;
        return 0;
    }
    int64_t y;
    int m, d;
    civil(day, &y, &m, &d);
    int last = month_days(y + 1, m);
    int nd = (month_end_rule && d == month_days(y, m)) ? last : (d < last ? d : last);
    *ok = 1;
    return from_civil(y + 1, m, nd);
}

static inline int64_t ann(St *st, int64_t day) {
    int ok;
    int64_t a = anniv(day, st->month_end_rule, &ok);
    if (!ok) fail(st, "a date outside datetime's range");
    return a;
}

/* ---- output ------------------------------------------------------------------------------- */

static const i128 DEC_LIMIT = (i128)10000000000000000000ULL * (i128)10000000000000000000ULL; /* 10^38 = (10^19)^2 */

/* The index of a new record of ``group`` (-1 on failure), its columns grown as needed. */
static int64_t record(St *st, int group) {
    int64_t at = st->count[group];
    if (at == st->cap[group]) {
        int64_t cap = st->cap[group] ? 2 * st->cap[group] : 1024;
        for (int c = 0; c < N_OUT; c++) {
            if (COLS[c].group != group) continue;
            char *p = realloc(st->out[c], (size_t)cap * (size_t)COLS[c].size);
            if (!p) {
                nomem(st);
                return -1;
            }
            st->out[c] = p;
        }
        st->cap[group] = cap;
    }
    st->count[group] = at + 1;
    return at;
}

static inline void put_dec(St *st, int col, int64_t at, i128 v) { /* a DECIMAL(38,18) value */
    if (v >= DEC_LIMIT || v <= -DEC_LIMIT) fail(st, "a value outside DECIMAL(38,18)");
    memcpy(st->out[col] + 16 * at, &v, 16);
}
static inline void put_qty(St *st, int col, int64_t at, i128 v) { /* a scaled quantity, scaled back */
    put_dec(st, col, at, mul(st, v, st->scale));
}
static inline void put_i32(St *st, int col, int64_t at, int64_t v) {
    if (v < INT32_MIN || v > INT32_MAX) fail(st, "a day count outside Int32");
    int32_t x = (int32_t)v;
    memcpy(st->out[col] + 4 * at, &x, 4);
}
static inline void put_u32(St *st, int col, int64_t at, int64_t v) {
    uint32_t x = (uint32_t)v; /* indexes: n < 2^32 is checked up front */
    memcpy(st->out[col] + 4 * at, &x, 4);
}
static inline void put_u8(St *st, int col, int64_t at, int v) { ((uint8_t *)st->out[col])[at] = (uint8_t)v; }

static void push_seg(St *st, int64_t k, i128 s, i128 e, i128 adj, int64_t tack) {
    Lot *l = &st->lot[k];
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 2;
        Seg *v = arena_alloc(st, (size_t)cap * sizeof(Seg));
        if (!v) return;
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof(Seg));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (Seg){s, e, adj, tack};
}

/* ---- the pass ----------------------------------------------------------------------------- */

/* _Group.match */
static i128 match(St *st, int64_t j, int64_t sold_lot, i128 q, i128 loss, int64_t first, int64_t stop, int applies,
                  int64_t held) {
    int64_t *nxt = st->nxt;
    int64_t i = first;
    i128 need = q, matched = 0, total = 0, unit = 0, lo = 0;
    while (need > 0 && !st->err) {
        if (nxt[i] != i) { /* skip exhausted lots, compressing the path */
            int64_t root = nxt[i];
            while (nxt[root] != root) root = nxt[root];
            while (nxt[i] != root) {
                int64_t t = nxt[i];
                nxt[i] = root;
                i = t;
            }
            i = root;
        }
        if (i >= stop) break;
        int64_t k = i; /* the lot at axis position i */
        Lot *l = &st->lot[k];
        i128 start = l->free_, qk = l->qty;
        if (l->sold > start) start = l->sold;
        if (start >= qk) { /* used up or sold: never a replacement again */
            nxt[i] = i + 1;
            i += 1;
            continue;
        }
        if (k == sold_lot) {
            i += 1;
            continue;
        }
        i128 m = qk - start, amount;
        if (need < m) m = need;
        i128 end = add(st, matched, m);
        if (end == q) {
            amount = matched ? sub(st, loss, lo) : loss;
        } else {
            if (!matched) unit = hediv(st, mul(st, loss, st->unit), q); /* div_units(loss, q) */
            i128 hi = hediv(st, mul(st, unit, end), st->unit);          /* mul_units(unit, end) */
            amount = sub(st, hi, lo);
            lo = hi;
        }
        matched = end;
        need -= m;
        end = l->free_ = add(st, start, m);
        if (applies) {
            total = add(st, total, amount);
            if (l->taxable) push_seg(st, k, start, end, amount, held);
        }
        int64_t at = record(st, G_MATCHES);
        if (at < 0) break;
        put_u32(st, W_J, at, j);
        put_u32(st, W_K, at, st->old[k]);
        put_qty(st, W_START, at, start);
        put_qty(st, W_M, at, m);
        put_dec(st, W_AMT, at, amount);
        put_i32(st, W_HELD, at, held);
        if (end >= qk) nxt[i] = i + 1;
        i += 1;
    }
    return total;
}

/* _Pass._carried: 1 and (*adj_out, *tack_out) when shares [c0, c1) are all of one term. */
static int carried(St *st, const Lot *l, int64_t k, i128 c0, i128 c1, int64_t acquired, int64_t disposed, i128 *adj_out,
                   int64_t *tack_out) {
    const int64_t END = (int64_t)1 << 62;
    i128 adj_sum = 0, at = c0;
    int64_t fewest = END, most = -END, n = l->n;
    while (at < c1 && !st->err) {
        if (k == n || c1 <= l->v[k].s) { /* the rest is past the ranges: nothing deferred */
            if (fewest > 0) fewest = 0;
            if (most < 0) most = 0;
            break;
        }
        Seg sg = l->v[k];
        if (at < sg.s) { /* a gap before the range: nothing deferred */
            if (fewest > 0) fewest = 0;
            if (most < 0) most = 0;
            at = sg.s;
        }
        i128 stop = c1 < sg.e ? c1 : sg.e;
        adj_sum = add(st, adj_sum, (at == sg.s && stop == sg.e) ? sg.adj : part(st, sg.adj, sg.e - sg.s, at - sg.s, stop - sg.s));
        if (sg.tack < fewest) fewest = sg.tack;
        if (sg.tack > most) most = sg.tack;
        at = stop;
        k += 1;
    }
    if (fewest == END) fail(st, "no shares to merge");
    int64_t latest = ann(st, sub64(st, acquired, fewest)), earliest = ann(st, sub64(st, acquired, most));
    if (st->err) return 0;
    if ((disposed > latest) != (disposed > earliest)) return 0;
    *adj_out = adj_sum;
    *tack_out = fewest;
    return 1;
}

static void add_piece(St *st, i128 q, i128 adj, int64_t tack) {
    if (st->n_pieces == st->cap_pieces) {
        int64_t cap = st->cap_pieces ? st->cap_pieces * 2 : 16;
        Piece *v = realloc(st->pieces, (size_t)cap * sizeof(Piece));
        if (!v) {
            nomem(st);
            return;
        }
        st->pieces = v;
        st->cap_pieces = cap;
    }
    st->pieces[st->n_pieces++] = (Piece){q, adj, tack};
}

/* _cut: shares [c0, c1) of a lot as pieces (quantity, deferred loss, tacked days) in st->pieces. */
static void cut(St *st, const Lot *l, int64_t k, i128 c0, i128 c1) {
    st->n_pieces = 0;
    i128 at = c0;
    int64_t n = l->n;
    while (at < c1 && !st->err) {
        if (k == n) {
            add_piece(st, c1 - at, 0, 0);
            break;
        }
        Seg sg = l->v[k];
        if (at < sg.s) {
            i128 stop = c1 < sg.s ? c1 : sg.s;
            add_piece(st, stop - at, 0, 0);
            at = stop;
            continue;
        }
        i128 stop = c1 < sg.e ? c1 : sg.e;
        add_piece(st, stop - at,
                  (at == sg.s && stop == sg.e) ? sg.adj : part(st, sg.adj, sg.e - sg.s, at - sg.s, stop - sg.s), sg.tack);
        at = stop;
        k += 1;
    }
}

/* _Pass._by_term: st->pieces merged by term, in the order the terms first appear (at most two). */
static int by_term(St *st, int64_t acquired, int64_t disposed, Piece *merged) {
    int n = 0, key[2];
    for (int64_t x = 0; x < st->n_pieces && !st->err; x++) {
        Piece pc = st->pieces[x];
        int long_ = disposed > ann(st, sub64(st, acquired, pc.tack));
        int at = -1;
        for (int y = 0; y < n; y++)
            if (key[y] == long_) at = y;
        if (at < 0) {
            key[n] = long_;
            merged[n++] = pc;
        } else {
            merged[at].q = add(st, merged[at].q, pc.q);
            merged[at].adj = add(st, merged[at].adj, pc.adj);
            if (pc.tack < merged[at].tack) merged[at].tack = pc.tack;
        }
    }
    return n;
}

/* _Pass._pieces: wash what is a loss among the pieces of slice j and record their rows. */
static void pieces(St *st, int64_t j, int64_t lot, const Piece *merged, int n_merged) {
    i128 q = st->q[j];
    int64_t acquired = st->acquired[j], disposed = st->disposed[j], first = st->first[j], stop = st->stop[j];
    int has_p = st->proceeds_valid[j], has_b = st->basis_valid[j], has_gain = has_p && has_b;
    i128 proceeds = has_p ? ld(st->proceeds_raw, j) : 0, basis = has_b ? ld(st->basis_raw, j) : 0;
    i128 cum = 0;
    for (int x = 0; x < n_merged && !st->err; x++) {
        i128 pq = merged[x].q, adj_in = merged[x].adj;
        i128 end = add(st, cum, pq);
        i128 pp = has_p ? part(st, proceeds, q, cum, end) : 0;
        i128 pb = has_b ? part(st, basis, q, cum, end) : 0;
        cum = end;
        i128 b = has_b ? add(st, pb, adj_in) : 0;
        i128 gain = has_gain ? sub(st, pp, b) : 0;
        int64_t adj_acq = sub64(st, acquired, merged[x].tack);
        i128 disallowed = 0;
        if (has_gain && gain < 0 && first >= 0 && !st->err)
            disallowed = match(st, j, lot, pq, sub(st, 0, gain), first, stop, st->applies[j], sub64(st, disposed, adj_acq));
        int64_t at = record(st, G_SPLIT);
        if (at < 0) return;
        put_u32(st, S_J, at, j);
        put_qty(st, S_Q, at, pq);
        put_dec(st, S_PP, at, pp);
        put_u8(st, S_PPV, at, has_p);
        put_dec(st, S_B, at, b);
        put_u8(st, S_BV, at, has_b);
        put_dec(st, S_DIS, at, disallowed);
        put_dec(st, S_GAIN, at, has_gain ? add(st, gain, disallowed) : 0);
        put_u8(st, S_GAINV, at, has_gain);
        put_i32(st, S_ACQ, at, adj_acq);
        put_dec(st, S_ADJ, at, adj_in);
    }
}

/* _Pass.go: every slice in order of sale, cut by the deferred losses its shares carry, its loss
 * washed against the replacements in its window; then the adjusted ranges in (lot, share) order. */
static void go(St *st) {
    int64_t n = st->n, k = 0;
    while (k < n && !st->err) {
        int64_t end = k + 1;
        while (end < n && !st->sale_start[end]) end++;
        for (int64_t j = k; j < end; j++) { /* every slice of the sale takes its shares first */
            int64_t lot = st->slot[j];
            if (lot >= 0) {
                Lot *l = &st->lot[lot];
                st->c0[j] = l->sold;
                l->sold = add(st, l->sold, st->q[j]);
            }
        }
        for (int64_t j = k; j < end && !st->err; j++) {
            int64_t lot = st->slot[j];
            if (lot < 0) continue; /* a shortfall: no shares to carry or to wash */
            Lot *l = &st->lot[lot];
            i128 q = st->q[j], adj_in;
            int64_t tack;
            if (l->n) {
                i128 c0 = st->c0[j], c1 = add(st, c0, q);
                int64_t p = l->p, last = l->n;
                while (p < last && l->v[p].e <= c0) p++;
                l->p = p;
                if (p < last && (l->v[p].s < c1 || l->v[p].s <= c0)) {
                    Seg sg = l->v[p];
                    if (sg.s <= c0 && c1 <= sg.e) { /* inside one range (the common case): one piece */
                        adj_in = (sg.s == c0 && sg.e == c1) ? sg.adj : part(st, sg.adj, sg.e - sg.s, c0 - sg.s, c1 - sg.s);
                        tack = sg.tack;
                    } else if (!carried(st, l, p, c0, c1, st->acquired[j], st->disposed[j], &adj_in, &tack)) {
                        if (st->err) break;
                        Piece merged[2]; /* shares of both terms: a piece each */
                        cut(st, l, p, c0, c1);
                        int n_merged = by_term(st, st->acquired[j], st->disposed[j], merged);
                        pieces(st, j, lot, merged, n_merged);
                        continue;
                    }
                } else if (st->loss[j]) {
                    adj_in = 0;
                    tack = 0;
                } else {
                    continue; /* unchanged: no deferred loss in it and no loss to wash */
                }
            } else if (st->loss[j]) {
                adj_in = 0;
                tack = 0;
            } else {
                continue;
            }
            /* the slice as one piece: its own proceeds, and its basis plus the loss it carries */
            i128 disallowed = 0;
            if (st->cost_valid[j]) {
                i128 loss = add(st, ld(st->cost_raw, j), adj_in);
                if (loss > 0 && st->first[j] >= 0 && !st->err)
                    disallowed = match(st, j, lot, q, loss, st->first[j], st->stop[j], st->applies[j],
                                       add64(st, sub64(st, st->disposed[j], st->acquired[j]), tack));
            }
            if (disallowed || adj_in) {
                int64_t at = record(st, G_ROWS);
                if (at < 0) break;
                put_u32(st, R_J, at, j);
                put_dec(st, R_DIS, at, disallowed);
                put_dec(st, R_ADJ, at, adj_in);
                put_i32(st, R_TACK, at, tack);
            }
        }
        k = end;
    }
    for (int64_t lot = 0; lot < st->n_lots && !st->err; lot++) { /* lot: a row of lt */
        const Lot *l = &st->lot[st->id[lot]];
        for (int64_t x = 0; x < l->n && !st->err; x++) {
            int64_t at = record(st, G_RANGES);
            if (at < 0) break;
            put_u32(st, A_K, at, lot);
            put_qty(st, A_S, at, l->v[x].s);
            put_qty(st, A_E, at, l->v[x].e);
            put_dec(st, A_ADJ, at, l->v[x].adj);
            put_i32(st, A_TACK, at, l->v[x].tack);
        }
    }
}

/* Scale the quantities, check what the pass assumes, and run it. */
static void run(St *st, const char *lot_qty_raw) {
    if (st->n_lots >= ((int64_t)1 << 32) || st->n >= ((int64_t)1 << 32)) {
        fail(st, "too many rows for UInt32 indexes");
        return;
    }
    if (st->n_cand > st->n_lots) {
        fail(st, "more acquisitions than lots");
        return;
    }
    for (int64_t i = 0; i <= st->n_cand; i++) st->nxt[i] = i; /* the last one: past every lot, always live */
    /* Number the lots: the acquisition at axis position i is lot i, the others follow. */
    for (int64_t i = 0; i < st->n_lots; i++) st->id[i] = -1;
    for (int64_t i = 0; i < st->n_cand; i++) {
        int64_t row = st->lots[i];
        if (row < 0 || row >= st->n_lots || st->id[row] >= 0) {
            fail(st, "an acquisition's lot index is out of range or repeated");
            return;
        }
        st->id[row] = i;
        st->old[i] = row;
    }
    for (int64_t row = 0, next = st->n_cand; row < st->n_lots; row++)
        if (st->id[row] < 0) {
            st->id[row] = next;
            st->old[next++] = row;
        }
    for (int64_t i = 0; i < st->n_lots; i++) {
        Lot *l = &st->lot[i];
        l->qty = ld(lot_qty_raw, st->old[i]);
        l->taxable = st->taxable[st->old[i]] != 0;
        if (l->qty < 0 || l->qty >= DEC_LIMIT) {
            fail(st, "a lot quantity outside [0, 10^38)");
            return;
        }
    }
    /* k: the largest power of ten (<= 18) dividing every quantity the pass uses, the lots' and
     * those of the slices that have a lot (a shortfall slice is skipped). Zero divides by anything. */
    i128 pow10[19];
    pow10[0] = 1;
    for (int x = 1; x < 19; x++) pow10[x] = pow10[x - 1] * 10;
    int k = 18;
    for (int64_t i = 0; i < st->n_lots; i++)
        while (k > 0 && st->lot[i].qty % pow10[k]) k--;
    for (int64_t j = 0; j < st->n; j++) {
        i128 q = st->q[j] = ld(st->q_raw, j);
        int64_t lot = st->slice_lot[j];
        if (lot < -1 || lot >= st->n_lots) {
            fail(st, "a slice's lot index is out of range");
            return;
        }
        st->slot[j] = lot >= 0 ? st->id[lot] : -1;
        if (st->first[j] > st->n_cand || st->first[j] < -1 || st->stop[j] > st->n_cand || st->stop[j] < 0) {
            fail(st, "a window out of range");
            return;
        }
        if (lot >= 0) {
            if (q < 0 || q >= DEC_LIMIT) {
                fail(st, "a slice quantity outside [0, 10^38)");
                return;
            }
            while (k > 0 && q % pow10[k]) k--;
        }
    }
    st->scale = pow10[k];
    st->unit = pow10[18 - k];
    for (int64_t i = 0; i < st->n_lots; i++) st->lot[i].qty /= st->scale;
    for (int64_t j = 0; j < st->n; j++) st->q[j] /= st->scale; /* exact for every slice with a lot */
    /* Up front: an amount times 10^(18-k) must fit with room to spare, or the splits would
     * overflow anyway (the checked arithmetic would find out later; this saves the work). */
    i128 most = 0;
    const char *raws[3] = {st->cost_raw, st->proceeds_raw, st->basis_raw};
    const uint8_t *valid[3] = {st->cost_valid, st->proceeds_valid, st->basis_valid};
    for (int c = 0; c < 3; c++)
        for (int64_t j = 0; j < st->n; j++)
            if (valid[c][j]) {
                i128 v = ld(raws[c], j);
                if (v >= DEC_LIMIT || v <= -DEC_LIMIT) {
                    fail(st, "an amount outside DECIMAL(38,18)");
                    return;
                }
                if (v < -most || v > most) most = v < 0 ? -v : v;
            }
    i128 room;
    if (__builtin_mul_overflow(most, st->unit * 8, &room)) {
        fail(st, "amounts too large for 128-bit splits at this quantity scale");
        return;
    }
    go(st);
}

/* ---- Python glue -------------------------------------------------------------------------- */

/* An output column: a malloc'd buffer handed to Python without a copy (buffer protocol,
 * read-only); freed with the object, which every view of it keeps alive. */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
} Column;

static int column_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Column *c = (Column *)self;
    return PyBuffer_FillInfo(view, self, c->data ? c->data : (char *)"", c->len, 1, flags);
}

static void column_dealloc(PyObject *self) {
    free(((Column *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs column_as_buffer = {.bf_getbuffer = column_getbuffer};

static PyTypeObject ColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "taxlens.lots._washcore.Column",
    .tp_basicsize = sizeof(Column),
    .tp_dealloc = column_dealloc,
    .tp_as_buffer = &column_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An output column of the compiled wash-sale pass (read-only bytes, buffer protocol).",
};

typedef struct {
    const char *name;
    Py_ssize_t size; /* bytes per element */
    char group;      /* 'L' per lot, 'A' per acquisition on the axis, 'N' per slice */
} Arg;

static const Arg ARGS[] = {
    {"lot_qty", 16, 'L'},       {"lot_taxable", 1, 'L'}, {"axis_lots", 8, 'A'},   {"slice_lot", 8, 'N'},
    {"first", 8, 'N'},          {"stop", 8, 'N'},        {"loss", 1, 'N'},        {"applies", 1, 'N'},
    {"q", 16, 'N'},             {"cost", 16, 'N'},       {"cost_valid", 1, 'N'},  {"proceeds", 16, 'N'},
    {"proceeds_valid", 1, 'N'}, {"basis", 16, 'N'},      {"basis_valid", 1, 'N'}, {"acquired", 4, 'N'},
    {"disposed", 4, 'N'},       {"sale_start", 1, 'N'},
};
#define N_ARGS ((int)(sizeof(ARGS) / sizeof(ARGS[0])))

PyDoc_STRVAR(run_doc,
             "run(lot_qty, lot_taxable, axis_lots, slice_lot, first, stop, loss, applies, q, cost, cost_valid,\n"
             "    proceeds, proceeds_valid, basis, basis_valid, acquired, disposed, sale_start, month_end_rule)\n"
             "--\n\n"
             "The wash-sale pass on flat buffers (see taxlens/lots/wash.py, _Pass.compiled). Returns a dict\n"
             "of the output columns (buffers) and 'scale' (the power of ten the quantities were divided\n"
             "by), or a str: why the pass cannot be exact here, so the caller runs the Python pass.");

static PyObject *py_run(PyObject *self, PyObject *args) {
    PyObject *objs[N_ARGS];
    int month_end_rule;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOOOp:run", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &objs[6], &objs[7], &objs[8], &objs[9], &objs[10], &objs[11], &objs[12], &objs[13], &objs[14],
                          &objs[15], &objs[16], &objs[17], &month_end_rule))
        return NULL;
    Py_buffer views[N_ARGS];
    int got = 0;
    PyObject *result = NULL;
    St st;
    memset(&st, 0, sizeof st);
    for (; got < N_ARGS; got++)
        if (PyObject_GetBuffer(objs[got], &views[got], PyBUF_C_CONTIGUOUS) < 0) goto done;
    Py_ssize_t counts[3] = {-1, -1, -1};
    for (int a = 0; a < N_ARGS; a++) {
        int g = ARGS[a].group == 'L' ? 0 : ARGS[a].group == 'A' ? 1 : 2;
        Py_ssize_t len = views[a].len;
        if (len % ARGS[a].size || (counts[g] >= 0 && counts[g] != len / ARGS[a].size)) {
            PyErr_Format(PyExc_ValueError, "run: %s has %zd bytes, not a whole number of rows matching the others", ARGS[a].name,
                         len);
            goto done;
        }
        counts[g] = len / ARGS[a].size;
    }
    st.month_end_rule = month_end_rule;
    st.n_lots = counts[0];
    st.n_cand = counts[1];
    st.n = counts[2];
    st.taxable = views[1].buf;
    st.lots = views[2].buf;
    st.slice_lot = views[3].buf;
    st.first = views[4].buf;
    st.stop = views[5].buf;
    st.loss = views[6].buf;
    st.applies = views[7].buf;
    st.q_raw = views[8].buf;
    st.cost_raw = views[9].buf;
    st.cost_valid = views[10].buf;
    st.proceeds_raw = views[11].buf;
    st.proceeds_valid = views[12].buf;
    st.basis_raw = views[13].buf;
    st.basis_valid = views[14].buf;
    st.acquired = views[15].buf;
    st.disposed = views[16].buf;
    st.sale_start = views[17].buf;
    size_t nl = (size_t)(st.n_lots ? st.n_lots : 1), nn = (size_t)(st.n ? st.n : 1);
    st.lot = calloc(nl, sizeof(Lot));
    st.id = malloc(nl * sizeof(int64_t));
    st.old = malloc(nl * sizeof(int64_t));
    st.nxt = malloc((size_t)(st.n_cand + 1) * sizeof(int64_t));
    st.slot = malloc(nn * sizeof(int64_t));
    st.q = malloc(nn * sizeof(i128));
    st.c0 = calloc(nn, sizeof(i128));
    if (!st.lot || !st.id || !st.old || !st.nxt || !st.slot || !st.q || !st.c0) {
        PyErr_NoMemory();
        goto done;
    }

    Py_BEGIN_ALLOW_THREADS run(&st, views[0].buf);
    Py_END_ALLOW_THREADS

    if (st.err == E_NOMEM) {
        PyErr_NoMemory();
        goto done;
    }
    if (st.err) {
        result = PyUnicode_FromString(st.why);
        goto done;
    }
    result = PyDict_New();
    if (!result) goto done;
    for (int c = 0; c < N_OUT; c++) {
        Column *col = PyObject_New(Column, &ColumnType);
        if (!col) {
            Py_CLEAR(result);
            goto done;
        }
        col->len = (Py_ssize_t)(st.count[COLS[c].group] * COLS[c].size);
        col->data = st.out[c]; /* the column owns it now */
        st.out[c] = NULL;
        int bad = PyDict_SetItemString(result, COLS[c].name, (PyObject *)col) < 0;
        Py_DECREF(col);
        if (bad) {
            Py_CLEAR(result);
            goto done;
        }
    }
    int k = 0;
    for (i128 s = st.scale; s > 1; s /= 10) k++;
    PyObject *scale = PyLong_FromLong(k);
    if (!scale || PyDict_SetItemString(result, "scale", scale) < 0) {
        Py_XDECREF(scale);
        Py_CLEAR(result);
        goto done;
    }
    Py_DECREF(scale);
done:
    for (int a = 0; a < got; a++) PyBuffer_Release(&views[a]);
    while (st.arena) {
        Chunk *prev = st.arena->prev;
        free(st.arena);
        st.arena = prev;
    }
    free(st.lot);
    free(st.id);
    free(st.old);
    free(st.slot);
    free(st.nxt);
    free(st.q);
    free(st.c0);
    free(st.pieces);
    for (int c = 0; c < N_OUT; c++) free(st.out[c]);
    return result;
}

PyDoc_STRVAR(anniversary_doc, "anniversary(day, month_end_rule)\n--\n\n"
                              "taxlens.lots.holding.anniversary on days since 1970-01-01, as the pass computes it;\n"
                              "None outside the dates datetime can hold (the pass falls back there).");

static PyObject *py_anniversary(PyObject *self, PyObject *args) {
    long long day;
    int month_end_rule, ok;
    if (!PyArg_ParseTuple(args, "Lp:anniversary", &day, &month_end_rule)) return NULL;
    int64_t a = anniv(day, month_end_rule, &ok);
    if (!ok) Py_RETURN_NONE;
    return PyLong_FromLongLong(a);
}

static PyMethodDef methods[] = {
    {"run", py_run, METH_VARARGS, run_doc},
    {"anniversary", py_anniversary, METH_VARARGS, anniversary_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_washcore", "The wash-sale pass, compiled (see taxlens/lots/wash.py).", -1, methods, NULL, NULL, NULL,
    NULL};

PyMODINIT_FUNC PyInit__washcore(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL;
    return PyModule_Create(&module);
}
