/* The booking loop of taxlens/lots/_loopfast.py (FastLoop) for the common positions: those whose
 * events are only acquisitions and sales, every sale by fifo, lifo, hifo or taxmin. FastLoop is
 * the reference: this file mirrors its steps (the lazy per-method heaps, TaxMin's per-sale order,
 * the pro-rata basis and proceeds, shortfall slices), and _loopfast.py books a position with
 * FastLoop instead whenever this core reports it cannot be exact there.
 *
 * Exactness. Quantities and amounts are integer units of 1e-18 (DECIMAL(38,18)'s physical
 * values, |v| < 1e38) held as __int128. Each position's quantities are first divided by 10^k,
 * the largest power of ten (k <= 18) dividing them all, and 10^(18-k) replaces 10^18 in the
 * half-even multiply and divide of taxlens.money:
 *
 *     div(a, q)  = round(a * 10^18 / q)      = round(a * 10^(18-k) / q')       (q = q' 10^k)
 *     mul(u, c)  = round(u * c / 10^18)      = round(u * c' / 10^(18-k))       (c = c' 10^k)
 *
 * are the same rationals, so the same integers: the unit basis u = div(B, Q), F(c) = mul(u, c),
 * the sale's unit proceeds div(P, q) (also TaxMin's comparison) and G(x) = mul(unit, x) come out
 * as FastLoop computes them, and every quantity FastLoop derives (used, remaining, shares, the
 * slice ends, what was booked, the shortfall) is a sum or difference of multiples of 10^k.
 * Every product, and every sum or difference of amounts, is overflow-checked (the quantities'
 * sums and differences stay within the position's own quantities). On any overflow, an input
 * outside DECIMAL(38,18) or a non-positive quantity, or an output outside DECIMAL(38,18), the
 * position is dropped (none of its rows come out) and reported as failed: _loopfast.py books it
 * with FastLoop, which gives the result (or raises) as it always did. Positions are
 * independent, so the others stand.
 *
 * Inputs are flat buffers in event (seq) order: DECIMAL columns as Arrow Decimal128 data, 16
 * bytes little-endian two's complement = __int128 on x86-64 and aarch64. Outputs are bytes
 * objects _loopfast.py turns back into Arrow and polars columns, rows in FastLoop's order (lots
 * by opening event, slices by sale and then in consumption order). No __int128 ever passes
 * through a Python int.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_halfeven.h"

typedef __int128 i128;

enum { ACQ = 0, DIS = 1 };
enum { FIFO = 0, LIFO = 1, HIFO = 2, TAXMIN = 3 };
/* Why a position was left to FastLoop (the codes _loopfast.py names). */
enum { OK = 0, F_INPUT = 1, F_OVERFLOW = 2, F_RANGE = 3 };

static const i128 DEC_LIMIT = (i128)10000000000000000000ULL * (i128)10000000000000000000ULL; /* 10^38 = (10^19)^2 */

typedef struct {
    i128 q, b, u;     /* Q (scaled), B, u = div(B, Q) (b and u only when has_b) */
    i128 used, fused; /* c (scaled) and F(c) */
    int64_t seq;
    int32_t acq, ann, ev; /* acquired (days), its anniversary, the opening event */
    uint8_t has_b, closed;
} Lot;

typedef struct {
    i128 qty, proceeds, basis, gain; /* qty in units (not scaled) */
    int32_t ev, lot_ev;              /* the sale; the lot's opening event, -1 for a shortfall */
    int8_t term;                     /* 1 long, 0 short, -1 none */
    uint8_t flags;                   /* 1 proceeds, 2 basis, 4 gain known */
} Slice;

typedef struct { /* TaxMin's order of a lot for one sale: (rank, -unit, acquired, seq), then key order */
    i128 nu;
    int64_t seq;
    int32_t rank, acq, lot;
} TKey;

typedef struct { /* FastLoop._Position: the open lots (in key order) and the lazy heaps, lot numbers */
    int32_t *heap[3], *open;
    int64_t hn[3], hcap[3], n_open, cap_open;
    uint8_t created[3];
    int k;     /* 10^k divides every quantity of the position */
    i128 most; /* its largest |amount| */
} Pos;

typedef struct {
    int err, nomem;
    i128 U, S; /* 10^(18-k), 10^k for the position being booked */
    /* inputs */
    int64_t n, n_pos;
    const int32_t *pos, *date, *ann;
    const uint8_t *kind, *method, *amt_valid;
    const char *qty_raw, *amt_raw;
    const int64_t *seq;
    /* state */
    Pos *ps, *p;
    Lot *lots; /* in opening (event) order */
    int64_t n_lots;
    Slice *sl; /* in event order, each sale's in consumption order */
    int64_t n_sl;
    TKey *keys;
    int64_t cap_keys;
    uint8_t *failed;
} St;

static inline i128 ld(const char *raw, int64_t i) {
    i128 v;
    memcpy(&v, raw + 16 * i, 16);
    return v;
}

static inline void fail(St *st, int code) {
    if (!st->err) st->err = code;
}

static int grow(St *st, void **v, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *w = realloc(*v, (size_t)c * size);
    if (!w) {
        st->nomem = 1;
        fail(st, F_OVERFLOW);
        return -1;
    }
    *v = w;
    *cap = c;
    return 0;
}

/* ---- checked arithmetic (Python ints never overflow; here an overflow means fall back) ---- */

static inline i128 add(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_add_overflow(a, b, &r)) fail(st, F_OVERFLOW);
    return r;
}
static inline i128 sub(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_sub_overflow(a, b, &r)) fail(st, F_OVERFLOW);
    return r;
}
static inline i128 mul(St *st, i128 a, i128 b) {
    i128 r;
    if (__builtin_mul_overflow(a, b, &r)) fail(st, F_OVERFLOW);
    return r;
}

/* half_even_div (_halfeven.h), with a non-positive divisor reported. */
static inline i128 hediv(St *st, i128 num, i128 den) {
    if (den <= 0) {
        fail(st, F_INPUT);
        return 0;
    }
    return half_even_div(num, den);
}

static inline void in_range(St *st, i128 v) {
    if (v >= DEC_LIMIT || v <= -DEC_LIMIT) fail(st, F_RANGE);
}

/* ---- the per-method heaps (FastLoop._order, ties by key: the opening order) --------------- */

static inline int before(const St *st, int m, int32_t x, int32_t y) {
    const Lot *a = &st->lots[x], *b = &st->lots[y];
    switch (m) {
    case FIFO: /* (acquired, seq) */
        if (a->acq != b->acq) return a->acq < b->acq;
        if (a->seq != b->seq) return a->seq < b->seq;
        break;
    case LIFO: /* (-acquired, -seq) */
        if (a->acq != b->acq) return a->acq > b->acq;
        if (a->seq != b->seq) return a->seq > b->seq;
        break;
    default: { /* HIFO: (0 if basis known else 1, -(u or 0), acquired, seq) */
        if (a->has_b != b->has_b) return a->has_b > b->has_b;
        i128 ua = a->has_b ? a->u : 0, ub = b->has_b ? b->u : 0;
        if (ua != ub) return ua > ub;
        if (a->acq != b->acq) return a->acq < b->acq;
        if (a->seq != b->seq) return a->seq < b->seq;
    }
    }
    return x < y;
}

static void sift_down(const St *st, int m, int32_t *h, int64_t n, int64_t i) {
    int32_t v = h[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(st, m, h[c + 1], h[c])) c++;
        if (!before(st, m, h[c], v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static void heap_push(St *st, int m, int32_t lot) {
    Pos *p = st->p;
    if (grow(st, (void **)&p->heap[m], &p->hcap[m], p->hn[m] + 1, sizeof(int32_t))) return;
    int32_t *h = p->heap[m];
    int64_t i = p->hn[m]++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (!before(st, m, lot, h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = lot;
}

static void heap_pop(St *st, int m) {
    Pos *p = st->p;
    int64_t n = --p->hn[m];
    if (n > 0) {
        p->heap[m][0] = p->heap[m][n];
        sift_down(st, m, p->heap[m], n, 0);
    }
}

/* TaxMin: a before b in (rank, -unit, acquired, seq), then key order (sorted() is stable). */
static inline int tbefore(const TKey *a, const TKey *b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    if (a->nu != b->nu) return a->nu < b->nu;
    if (a->acq != b->acq) return a->acq < b->acq;
    if (a->seq != b->seq) return a->seq < b->seq;
    return a->lot < b->lot;
}

static void tsift_down(TKey *h, int64_t n, int64_t i) {
    TKey v = h[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && tbefore(&h[c + 1], &h[c])) c++;
        if (!tbefore(&h[c], &v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* ---- one sale ----------------------------------------------------------------------------- */

typedef struct {
    int32_t ev, disposed;
    int has_p;
    i128 qs, P, unit; /* quantity (scaled), proceeds, div(P, quantity) */
    i128 start, g_start, booked;
} Sale;

/* Take ``shares`` of lot ``li`` (Lot.take, _sync and _close_empty) and book its slice
 * (FastLoop.dispose's loop body). */
static void take(St *st, Sale *s, int32_t li, i128 shares) {
    Lot *L = &st->lots[li];
    i128 before_ = L->fused, basis = 0;
    L->used += shares; /* <= q */
    if (L->has_b) {
        i128 after = L->used == L->q ? L->b : hediv(st, mul(st, L->u, L->used), st->U);
        L->fused = after;
        basis = sub(st, after, before_);
    }
    if (L->used == L->q) L->closed = 1;
    s->booked += shares;
    i128 end = s->start + shares;
    Slice *x = &st->sl[st->n_sl++]; /* at most one slice per lot or sale: room for n */
    x->qty = mul(st, shares, st->S);
    x->ev = s->ev;
    x->lot_ev = L->ev;
    x->term = s->disposed > L->ann;
    x->flags = 0;
    x->proceeds = x->basis = x->gain = 0;
    if (s->has_p) {
        i128 g_end = end == s->qs ? s->P : hediv(st, mul(st, s->unit, end), st->U);
        x->proceeds = sub(st, g_end, s->g_start);
        s->g_start = g_end;
        x->flags |= 1;
        in_range(st, x->proceeds);
    }
    if (L->has_b) {
        x->basis = basis;
        x->flags |= 2;
        in_range(st, basis);
    }
    if (s->has_p && L->has_b) {
        x->gain = sub(st, x->proceeds, basis);
        x->flags |= 4;
        in_range(st, x->gain);
    }
    s->start = end;
}

static void dispose(St *st, int64_t i) {
    Pos *p = st->p;
    Sale s;
    s.ev = (int32_t)i;
    s.qs = ld(st->qty_raw, i) / st->S;
    s.has_p = st->amt_valid[i];
    s.P = s.has_p ? ld(st->amt_raw, i) : 0;
    s.unit = s.has_p ? hediv(st, mul(st, s.P, st->U), s.qs) : 0;
    s.disposed = st->date[i];
    s.start = s.g_start = s.booked = 0;
    i128 need = s.qs;
    int m = st->method[i];
    if (m == TAXMIN) {
        i128 up = s.unit; /* unit proceeds (0 when unknown) */
        if (grow(st, (void **)&st->keys, &st->cap_keys, p->n_open, sizeof(TKey))) return;
        int64_t n = 0, w = 0;
        for (int64_t r = 0; r < p->n_open; r++) { /* the open lots, in key order */
            int32_t li = p->open[r];
            const Lot *L = &st->lots[li];
            if (L->closed) continue;
            p->open[w++] = li;
            TKey *t = &st->keys[n++];
            t->lot = li;
            t->acq = L->acq;
            t->seq = L->seq;
            if (!L->has_b) {
                t->rank = 4;
                t->nu = 0;
            } else {
                int loss = up < L->u, long_term = s.disposed > L->ann;
                t->rank = loss ? (long_term ? 1 : 0) : (long_term ? 2 : 3);
                t->nu = -L->u;
            }
        }
        p->n_open = w;
        for (int64_t r = n / 2; r-- > 0;) tsift_down(st->keys, n, r);
        while (n > 0 && need > 0 && !st->err) {
            int32_t li = st->keys[0].lot;
            st->keys[0] = st->keys[--n];
            if (n > 0) tsift_down(st->keys, n, 0);
            const Lot *L = &st->lots[li];
            i128 remaining = L->q - L->used, shares = need < remaining ? need : remaining;
            take(st, &s, li, shares);
            need -= shares;
        }
    } else {
        if (!p->created[m]) { /* the heap of the open lots, built at the method's first sale */
            if (grow(st, (void **)&p->heap[m], &p->hcap[m], p->n_open, sizeof(int32_t))) return;
            p->hn[m] = 0;
            for (int64_t r = 0; r < p->n_open; r++)
                if (!st->lots[p->open[r]].closed) p->heap[m][p->hn[m]++] = p->open[r];
            for (int64_t r = p->hn[m] / 2; r-- > 0;) sift_down(st, m, p->heap[m], p->hn[m], r);
            p->created[m] = 1;
        }
        while (p->hn[m] > 0 && !st->err) {
            int32_t li = p->heap[m][0];
            const Lot *L = &st->lots[li];
            if (L->closed) {
                heap_pop(st, m);
                continue;
            }
            if (need == 0) break;
            i128 remaining = L->q - L->used, shares = need < remaining ? need : remaining;
            take(st, &s, li, shares);
            need -= shares;
            if (L->q - L->used > 0) break;
        }
    }
    if (s.booked < s.qs && !st->err) { /* the excess: basis unknown */
        Slice *x = &st->sl[st->n_sl++];
        x->qty = mul(st, s.qs - s.booked, st->S);
        x->ev = s.ev;
        x->lot_ev = -1;
        x->term = -1;
        x->flags = 0;
        x->proceeds = x->basis = x->gain = 0;
        if (s.has_p) {
            x->proceeds = sub(st, s.P, s.g_start);
            x->flags |= 1;
            in_range(st, x->proceeds);
        }
    }
}

static void acquire(St *st, int64_t i) {
    Pos *p = st->p;
    if (grow(st, (void **)&p->open, &p->cap_open, p->n_open + 1, sizeof(int32_t))) return;
    int32_t li = (int32_t)st->n_lots++;
    Lot *L = &st->lots[li];
    L->q = ld(st->qty_raw, i) / st->S; /* exact: 10^k divides it */
    L->has_b = st->amt_valid[i];
    L->b = L->has_b ? ld(st->amt_raw, i) : 0;
    L->u = L->has_b ? hediv(st, mul(st, L->b, st->U), L->q) : 0;
    L->used = L->fused = 0;
    L->seq = st->seq[i];
    L->acq = st->date[i];
    L->ann = st->ann[i];
    L->ev = (int32_t)i;
    L->closed = 0;
    p->open[p->n_open++] = li;
    for (int m = 0; m < 3; m++)
        if (p->created[m]) heap_push(st, m, li);
}

static void drop(Pos *p) { /* a position left to FastLoop: its state is no longer needed */
    for (int m = 0; m < 3; m++) free(p->heap[m]), p->heap[m] = NULL, p->hn[m] = p->hcap[m] = 0;
    free(p->open);
    p->open = NULL;
    p->n_open = p->cap_open = 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Every event in seq order, each position's state on its own, as FastLoop.run. A position that
 * fails is dropped from then on; what it wrote is left out of the output. */
static void run(St *st) {
    static i128 P10[19];
    P10[0] = 1;
    for (int x = 1; x < 19; x++) P10[x] = P10[x - 1] * 10;
    int64_t n = st->n;
    /* Up front, per position: k, the inputs' range and the largest amount. */
    for (int64_t p = 0; p < st->n_pos; p++) st->ps[p].k = 18;
    for (int64_t i = 0; i < n; i++) {
        int32_t p = st->pos[i];
        Pos *ps = &st->ps[p];
        if (st->failed[p]) continue;
        i128 q = ld(st->qty_raw, i);
        if (q <= 0 || q >= DEC_LIMIT) {
            st->failed[p] = F_INPUT;
            continue;
        }
        while (ps->k > 0 && q % P10[ps->k]) ps->k--;
        if (st->amt_valid[i]) {
            i128 a = ld(st->amt_raw, i);
            if (a >= DEC_LIMIT || a <= -DEC_LIMIT) {
                st->failed[p] = F_INPUT;
                continue;
            }
            if (a < 0) a = -a;
            if (a > ps->most) ps->most = a;
        }
    }
    for (int64_t p = 0; p < st->n_pos; p++) {
        i128 room; /* every amount is multiplied by 10^(18-k) (div): saves the work when one can't be */
        if (!st->failed[p] && __builtin_mul_overflow(st->ps[p].most, P10[18 - st->ps[p].k], &room)) st->failed[p] = F_OVERFLOW;
    }
    for (int64_t i = 0; i < n && !st->nomem; i++) {
        int32_t p = st->pos[i];
        if (st->failed[p]) continue;
        st->p = &st->ps[p];
        st->S = P10[st->p->k];
        st->U = P10[18 - st->p->k];
        st->err = OK;
        if (st->kind[i] == ACQ)
            acquire(st, i);
        else
            dispose(st, i);
        if (st->err) {
            st->failed[p] = (uint8_t)st->err;
            drop(st->p);
        }
    }
    for (int64_t li = 0; li < st->n_lots; li++) { /* open bases in range */
        const Lot *L = &st->lots[li];
        int32_t p = st->pos[L->ev];
        if (!st->failed[p] && L->has_b) {
            st->err = OK;
            in_range(st, sub(st, L->b, L->fused));
            if (st->err) st->failed[p] = (uint8_t)st->err;
        }
    }
    for (int64_t li = 0; li < st->n_lots; li++) /* open quantities, back in units */
        st->lots[li].used = (st->lots[li].q - st->lots[li].used) * P10[st->ps[st->pos[st->lots[li].ev]].k];
}

/* ---- Python glue -------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    Py_ssize_t size; /* bytes per event */
} Arg;

static const Arg ARGS[] = {
    {"pos", 4}, {"kind", 1}, {"method", 1}, {"qty", 16}, {"amount", 16}, {"amount_valid", 1},
    {"date", 4}, {"ann", 4}, {"seq", 8},
};
#define N_ARGS ((int)(sizeof(ARGS) / sizeof(ARGS[0])))

enum { O_LOT_EV, O_LOT_OPEN_Q, O_LOT_OPEN_B, O_LOT_OPEN_B_VALID, O_EV, O_QTY, O_LOT, O_PROC, O_PROC_VALID, O_BASIS,
       O_BASIS_VALID, O_GAIN, O_GAIN_VALID, O_TERM, N_OUT };
static const char *OUT_NAMES[N_OUT] = {
    "lot_ev", "lot_open_q", "lot_open_b", "lot_open_b_valid", "ev", "qty", "lot", "proceeds", "proceeds_valid",
    "basis", "basis_valid", "gain", "gain_valid", "term",
};
static const Py_ssize_t OUT_SIZE[N_OUT] = {4, 16, 16, 1, 4, 16, 4, 16, 1, 16, 1, 16, 1, 1};
static const int OUT_PER_LOT[N_OUT] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

PyDoc_STRVAR(run_doc,
             "run(pos, kind, method, qty, amount, amount_valid, date, ann, seq, n_positions)\n"
             "--\n\n"
             "Book acquisitions and sales (see taxlens/lots/_loopfast.py, book_events) on flat buffers in\n"
             "event order. Returns a dict of bytes: the lots and slices of the positions booked, and\n"
             "'failed', one byte per position (0, or why FastLoop must book it instead).");

static PyObject *py_run(PyObject *self, PyObject *args) {
    PyObject *objs[N_ARGS];
    Py_ssize_t n_pos;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOn:run", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &objs[6],
                          &objs[7], &objs[8], &n_pos))
        return NULL;
    Py_buffer views[N_ARGS];
    int got = 0;
    PyObject *result = NULL;
    St st;
    memset(&st, 0, sizeof st);
    for (; got < N_ARGS; got++)
        if (PyObject_GetBuffer(objs[got], &views[got], PyBUF_C_CONTIGUOUS) < 0) goto done;
    Py_ssize_t n = -1;
    for (int a = 0; a < N_ARGS; a++) {
        Py_ssize_t len = views[a].len;
        if (len % ARGS[a].size || (n >= 0 && n != len / ARGS[a].size)) {
            PyErr_Format(PyExc_ValueError, "run: %s has %zd bytes, not a whole number of rows matching the others", ARGS[a].name,
                         len);
            goto done;
        }
        n = len / ARGS[a].size;
    }
    if (n >= INT32_MAX || n_pos < 0 || n_pos >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "run: too many events or positions for 32-bit indexes");
        goto done;
    }
    st.n = n;
    st.n_pos = n_pos;
    st.pos = views[0].buf;
    st.kind = views[1].buf;
    st.method = views[2].buf;
    st.qty_raw = views[3].buf;
    st.amt_raw = views[4].buf;
    st.amt_valid = views[5].buf;
    st.date = views[6].buf;
    st.ann = views[7].buf;
    st.seq = views[8].buf;
    int64_t n_acq = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (st.pos[i] < 0 || st.pos[i] >= n_pos) {
            PyErr_Format(PyExc_ValueError, "run: event %zd has position %d, outside [0, %zd)", i, st.pos[i], n_pos);
            goto done;
        }
        if (st.kind[i] > DIS || (st.kind[i] == DIS && st.method[i] > TAXMIN)) {
            PyErr_Format(PyExc_ValueError, "run: event %zd has an unknown kind or method", i);
            goto done;
        }
        n_acq += st.kind[i] == ACQ;
    }
    st.ps = calloc((size_t)(n_pos ? n_pos : 1), sizeof(Pos));
    st.failed = calloc((size_t)(n_pos ? n_pos : 1), 1);
    st.lots = malloc((size_t)(n_acq ? n_acq : 1) * sizeof(Lot));
    st.sl = malloc((size_t)(n ? n : 1) * sizeof(Slice)); /* each slice closes a lot or ends a sale */
    if (!st.ps || !st.failed || !st.lots || !st.sl) {
        PyErr_NoMemory();
        goto done;
    }

    Py_BEGIN_ALLOW_THREADS run(&st);
    Py_END_ALLOW_THREADS

    if (st.nomem) {
        PyErr_NoMemory();
        goto done;
    }
    /* The output, rows in event order, leaving out the failed positions. */
    int64_t n_lots = 0, n_sl = 0;
    for (int64_t li = 0; li < st.n_lots; li++) n_lots += !st.failed[st.pos[st.lots[li].ev]];
    for (int64_t x = 0; x < st.n_sl; x++) n_sl += !st.failed[st.pos[st.sl[x].ev]];
    result = PyDict_New();
    if (!result) goto done;
    char *out[N_OUT];
    for (int c = 0; c < N_OUT; c++) {
        PyObject *b = PyBytes_FromStringAndSize(NULL, (OUT_PER_LOT[c] ? n_lots : n_sl) * OUT_SIZE[c]);
        if (!b || PyDict_SetItemString(result, OUT_NAMES[c], b) < 0) {
            Py_XDECREF(b);
            Py_CLEAR(result);
            goto done;
        }
        out[c] = PyBytes_AS_STRING(b);
        Py_DECREF(b); /* the dict holds it */
    }
    int64_t l = 0, d = 0;
    for (int64_t li = 0; li < st.n_lots; li++) {
        const Lot *L = &st.lots[li];
        if (st.failed[st.pos[L->ev]]) continue;
        i128 open_b = L->has_b ? L->b - L->fused : 0;
        memcpy(out[O_LOT_EV] + 4 * l, &L->ev, 4);
        memcpy(out[O_LOT_OPEN_Q] + 16 * l, &L->used, 16); /* the open quantity by now (run) */
        memcpy(out[O_LOT_OPEN_B] + 16 * l, &open_b, 16);
        out[O_LOT_OPEN_B_VALID][l] = (char)L->has_b;
        l++;
    }
    for (int64_t x = 0; x < st.n_sl; x++) {
        const Slice *s = &st.sl[x];
        if (st.failed[st.pos[s->ev]]) continue;
        memcpy(out[O_EV] + 4 * d, &s->ev, 4);
        memcpy(out[O_QTY] + 16 * d, &s->qty, 16);
        memcpy(out[O_LOT] + 4 * d, &s->lot_ev, 4);
        memcpy(out[O_PROC] + 16 * d, &s->proceeds, 16);
        out[O_PROC_VALID][d] = (char)(s->flags & 1);
        memcpy(out[O_BASIS] + 16 * d, &s->basis, 16);
        out[O_BASIS_VALID][d] = (char)((s->flags >> 1) & 1);
        memcpy(out[O_GAIN] + 16 * d, &s->gain, 16);
        out[O_GAIN_VALID][d] = (char)((s->flags >> 2) & 1);
        out[O_TERM][d] = (char)s->term;
        d++;
    }
    {
        PyObject *f = PyBytes_FromStringAndSize((const char *)st.failed, n_pos);
        if (!f || PyDict_SetItemString(result, "failed", f) < 0) {
            Py_XDECREF(f);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(f);
    }
done:
    for (int a = 0; a < got; a++) PyBuffer_Release(&views[a]);
    if (st.ps)
        for (int64_t p = 0; p < st.n_pos; p++) drop(&st.ps[p]);
    free(st.ps);
    free(st.failed);
    free(st.lots);
    free(st.sl);
    free(st.keys);
    return result;
}

static PyMethodDef methods[] = {
    {"run", py_run, METH_VARARGS, run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bookcore", "The booking loop, compiled (see _loopfast.py).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bookcore(void) { return PyModule_Create(&module); }
