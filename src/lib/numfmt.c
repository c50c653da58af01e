#include "lib/numfmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/bug.h"

/* s, "-d.ddde+XX" as printf's %e writes it: its digits as one integer, and the power of ten of
 * the last one. */
static void split_e(const char *s, bool *negative, uint64_t *m, int *low)
{
    int n = 0;

    *negative = *s == '-';
    s += *negative;
    for (*m = 0; *s != 'e'; s++) {
        if (*s != '.') {
            *m = *m * 10 + (uint64_t)(*s - '0');
            n++;
        }
    }
    *low = atoi(s + 1) - (n - 1);
}

static bool reads_back(bool negative, uint64_t m, int low, double d)
{
    char s[48];

    snprintf(s, sizeof(s), "%s%" PRIu64 "e%d", negative ? "-" : "", m, low);
    return strtod(s, NULL) == d;
}

void numfmt_shortest(double d, struct numfmt_digits *out)
{
    char s[40];
    bool negative;
    uint64_t m;
    int low;

    if (MESH_BUG_ON(!isfinite(d))) /* the callers print NaN and infinities themselves */
        d = 0;
    /* 17 significant digits always read back (DBL_DECIMAL_DIG); most doubles need fewer */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof(s), "%.*e", prec - 1, d);
        split_e(s, &negative, &m, &low);
        if (prec == 17 || reads_back(negative, m, low, d))
            break;
        /* The decimal of prec digits nearest d may lie outside the interval of what reads back
         * as d where its neighbour lies inside: at a power of two the interval below d is half
         * the one above (2^-24 reads back from 5.960464477539063e-08, whose nearest 16 digits
         * end in 2). At most one neighbour can. */
        if (reads_back(negative, m + 1, low, d)) {
            m++;
            break;
        }
        if (m > 1 && reads_back(negative, m - 1, low, d)) {
            m--;
            break;
        }
    }
    for (; m % 10 == 0 && m >= 10; m /= 10) /* a neighbour may end in zeros: 0.99 + 0.01 */
        low++;
    out->negative = negative;
    out->n = snprintf(out->digits, sizeof(out->digits), "%" PRIu64, m);
    out->point = low + out->n;
}

/* NaN or an infinity in the words given; false for a finite d, which it leaves to the caller. */
static bool put_special(struct buf *out, double d, const char *inf)
{
    if (isnan(d))
        buf_append_cstr(out, "NaN");
    else if (isinf(d))
        buf_printf(out, "%s%s", d < 0 ? "-" : inf[0] == '+' ? "+" : "", inf + (inf[0] == '+'));
    else
        return false;
    return true;
}

/* The digits without an exponent: 1500, 1.5, 0.015. */
static void put_plain(struct buf *out, const struct numfmt_digits *g, bool sign)
{
    int n = g->n, point = g->point;

    if (sign && g->negative)
        buf_append_cstr(out, "-");
    if (point <= 0) {
        buf_append_cstr(out, "0.");
        for (int i = point; i < 0; i++)
            buf_append_cstr(out, "0");
        buf_append(out, g->digits, (size_t)n);
    } else if (point >= n) {
        buf_append(out, g->digits, (size_t)n);
        for (int i = n; i < point; i++)
            buf_append_cstr(out, "0");
    } else {
        buf_append(out, g->digits, (size_t)point);
        buf_append_cstr(out, ".");
        buf_append(out, g->digits + point, (size_t)(n - point));
    }
}

/* d.ddde+XX, the exponent signed and of at least min_exp digits. */
static void put_exponent(struct buf *out, const struct numfmt_digits *g, int min_exp)
{
    int exp = g->point - 1;

    if (g->negative)
        buf_append_cstr(out, "-");
    buf_append(out, g->digits, 1);
    if (g->n > 1) {
        buf_append_cstr(out, ".");
        buf_append(out, g->digits + 1, (size_t)(g->n - 1));
    }
    buf_printf(out, "e%c%0*d", exp < 0 ? '-' : '+', min_exp, abs(exp));
}

void numfmt_go_g(struct buf *out, double d)
{
    struct numfmt_digits g;

    if (put_special(out, d, "+Inf"))
        return;
    numfmt_shortest(d, &g);
    /* strconv: %e when the exponent is below -4 or at least the precision, 6 for shortest */
    int exp = g.point - 1;
    if (exp < -4 || exp >= 6)
        put_exponent(out, &g, 2);
    else
        put_plain(out, &g, true);
}

void numfmt_go_f(struct buf *out, double d)
{
    struct numfmt_digits g;

    if (put_special(out, d, "+Inf"))
        return;
    numfmt_shortest(d, &g);
    put_plain(out, &g, true);
}

/*
 * The layout encoding/json and JavaScript share: no exponent from 1e-6 to 1e21, else one of a
 * digit at least (encoding/json cleans "e-07" up to "e-7"; JavaScript never pads). They differ
 * in the words for infinities and in -0, which JavaScript writes "0".
 */
static void put_json_like(struct buf *out, double d, const char *inf, bool signed_zero)
{
    struct numfmt_digits g;
    double a = fabs(d);

    if (put_special(out, d, inf))
        return;
    numfmt_shortest(d, &g);
    if (a != 0 && (a < 1e-6 || a >= 1e21))
        put_exponent(out, &g, 1);
    else
        put_plain(out, &g, signed_zero || d != 0);
}

void numfmt_json(struct buf *out, double d)
{
    put_json_like(out, d, "+Inf", true);
}

void numfmt_js(struct buf *out, double d)
{
    put_json_like(out, d, "Infinity", false);
}
