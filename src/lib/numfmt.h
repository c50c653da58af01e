/*
 * Doubles as text: one generator of the shortest digits that read back as the same double,
 * and the layouts the programs meshkit stands in for print them in (Go's strconv and
 * encoding/json, JavaScript's Number#toString).
 */
#ifndef MESH_LIB_NUMFMT_H
#define MESH_LIB_NUMFMT_H

#include <stdbool.h>

#include "lib/buf.h"

/* The fewest significant digits that read back as a finite double d: |d| = 0.DIGITS x 10^point. */
struct numfmt_digits {
    char digits[18]; /* NUL-terminated, no leading zero and no trailing one; "0" for zero */
    int n;           /* digits in digits[], 1 to 17 */
    int point;       /* 1 for 1.5, 0 for 0.5, -1 for 0.05, 3 for 100; 1 for zero */
    bool negative;   /* -0 too */
};

/* d's shortest digits (d finite): 0.1, not 0.10000000000000001. */
void numfmt_shortest(double d, struct numfmt_digits *out);

/*
 * Go's strconv.FormatFloat(d, 'g', -1, 64), which fmt's %v prints for a float64: an exponent
 * below -4 or from 6 up, of two digits at least (8080, 1.5, 1.234567e+06, 1e-05, 1e+20);
 * NaN, +Inf, -Inf.
 */
void numfmt_go_g(struct buf *out, double d);

/* strconv.FormatFloat(d, 'f', -1, 64): never an exponent (1e21 is 1000000000000000000000,
 * 1e-7 is 0.0000001); NaN, +Inf, -Inf. */
void numfmt_go_f(struct buf *out, double d);

/*
 * As Go's encoding/json writes a float64: no exponent from 1e-6 to 1e21, else one without its
 * leading zero (1e-7, 1.5e+21); NaN, +Inf, -Inf (which encoding/json refuses to write).
 */
void numfmt_json(struct buf *out, double d);

/* JavaScript's Number.prototype.toString(): no exponent from 1e-6 to 1e21 (100, 0.000001, 1.5),
 * else 1e+21, 1.5e-7; NaN, Infinity, -Infinity; -0 is "0". */
void numfmt_js(struct buf *out, double d);

#endif
