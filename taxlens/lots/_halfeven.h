/* The half-even division both C cores round with (taxlens.money's half-even step on Python's
 * floor division): q, r = divmod(num, den); q += 1 if 2r > den or (2r == den and q odd).
 * Assumes den > 0; each core checks that first and reports it its own way. */
#ifndef TAXLENS_HALFEVEN_H
#define TAXLENS_HALFEVEN_H

static inline __int128 half_even_div(__int128 num, __int128 den) {
    __int128 q = num / den;
    __int128 r = num - q * den; /* |q·den| <= |num|: no overflow */
    if (r < 0) {
        r += den;
        q -= 1;
    }
    __int128 h = den - r; /* 0 <= r < den: 2r > den <=> r > den - r */
    if (r > h || (r == h && (q & 1))) q += 1;
    return q;
}

#endif
