/*
 * Go's time.ParseDuration and time.Duration.String(), byte for byte, so that durations read
 * from Consul clients and written back in API answers look the same as Consul's.
 */
#include "lib/duration.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#define DUR_MAX_MAG (UINT64_C(1) << 63) /* magnitude of INT64_MIN */

struct duration_unit {
    const char *name;
    size_t len;
    uint64_t ns;
};

/* Go's unitMap: both micro signs (U+00B5 and U+03BC) are accepted for microseconds. */
static const struct duration_unit duration_units[] = {
    {"ns", 2, 1},
    {"us", 2, 1000},
    {"\xc2\xb5s", 3, 1000},
    {"\xce\xbcs", 3, 1000},
    {"ms", 2, 1000000},
    {"s", 1, 1000000000},
    {"m", 1, UINT64_C(60) * 1000000000},
    {"h", 1, UINT64_C(3600) * 1000000000},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Go's leadingInt: [0-9]*, erroring once the value exceeds 1<<63. */
static int leading_int(struct str *s, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;

    for (; i < s->n && is_digit(s->p[i]); i++) {
        if (x > DUR_MAX_MAG / 10)
            return -ERANGE;
        x = x * 10 + (uint64_t)(s->p[i] - '0');
        if (x > DUR_MAX_MAG)
            return -ERANGE;
    }
    *out = x;
    *s = str_skip(*s, i);
    return 0;
}

/* Go's leadingFraction: digits past what fits in int64 are dropped, not an error. */
static void leading_fraction(struct str *s, uint64_t *out, double *scale)
{
    uint64_t x = 0;
    bool overflow = false;
    size_t i = 0;

    *scale = 1;
    for (; i < s->n && is_digit(s->p[i]); i++) {
        if (overflow)
            continue;
        if (x > (DUR_MAX_MAG - 1) / 10) {
            overflow = true;
            continue;
        }
        uint64_t y = x * 10 + (uint64_t)(s->p[i] - '0');
        if (y > DUR_MAX_MAG) {
            overflow = true;
            continue;
        }
        x = y;
        *scale *= 10;
    }
    *out = x;
    *s = str_skip(*s, i);
}

static const struct duration_unit *find_unit(struct str u)
{
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        if (u.n == duration_units[i].len && memcmp(u.p, duration_units[i].name, u.n) == 0)
            return &duration_units[i];
    }
    return NULL;
}

/* One "<number>[.<fraction>]<unit>" group; adds its nanoseconds to *v. */
static int parse_group(struct str *s, uint64_t *v)
{
    uint64_t whole, frac = 0;
    double scale = 1;
    size_t before;
    bool pre, post = false;
    int rc;

    if (!(s->p[0] == '.' || is_digit(s->p[0])))
        return -EINVAL;
    before = s->n;
    rc = leading_int(s, &whole);
    if (rc < 0)
        return rc;
    pre = s->n != before;
    if (s->n && s->p[0] == '.') {
        *s = str_skip(*s, 1);
        before = s->n;
        leading_fraction(s, &frac, &scale);
        post = s->n != before;
    }
    if (!pre && !post)
        return -EINVAL;

    size_t i = 0;
    while (i < s->n && s->p[i] != '.' && !is_digit(s->p[i]))
        i++;
    const struct duration_unit *unit = find_unit((struct str){s->p, i});
    if (!unit)
        return -EINVAL; /* missing or unknown unit */
    *s = str_skip(*s, i);

    if (whole > DUR_MAX_MAG / unit->ns)
        return -ERANGE;
    whole *= unit->ns;
    if (frac > 0) {
        /* float64 as in Go: exact to the nanosecond for fractions of an hour. */
        whole += (uint64_t)((double)frac * ((double)unit->ns / scale));
        if (whole > DUR_MAX_MAG)
            return -ERANGE;
    }
    *v = whole;
    return 0;
}

int duration_parse(struct str s, int64_t *ns)
{
    uint64_t d = 0;
    bool neg = false;

    if (s.n && (s.p[0] == '-' || s.p[0] == '+')) {
        neg = s.p[0] == '-';
        s = str_skip(s, 1);
    }
    if (s.n == 1 && s.p[0] == '0') {
        *ns = 0;
        return 0;
    }
    if (s.n == 0)
        return -EINVAL;
    while (s.n) {
        uint64_t v;
        int rc = parse_group(&s, &v);
        if (rc < 0)
            return rc;
        d += v;
        if (d > DUR_MAX_MAG)
            return -ERANGE;
    }
    /* Go accepts negative durations; nothing in Consul's inputs means one, so refuse them. A
     * negative zero ("-0s") is still zero. */
    if (neg && d != 0)
        return -EINVAL;
    if (d > (uint64_t)INT64_MAX)
        return -ERANGE;
    *ns = (int64_t)d;
    return 0;
}

/* Go's fmtFrac: writes the fraction of v (prec digits) backwards, omitting trailing zeros. */
static size_t fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
    bool print = false;

    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(*v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        *v /= 10;
    }
    if (print)
        buf[--w] = '.';
    return w;
}

/* Go's fmtInt: writes v in decimal backwards. */
static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
    if (v == 0) {
        buf[--w] = '0';
        return w;
    }
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

void duration_format(int64_t ns, char *out, unsigned long outlen)
{
    char buf[32];
    size_t w = sizeof(buf);
    uint64_t u = (uint64_t)ns;
    bool neg = ns < 0;

    if (neg)
        u = -u; /* unsigned negation: INT64_MIN works too */
    if (u < (uint64_t)DURATION_SEC) {
        int prec;
        buf[--w] = 's';
        if (u == 0) {
            buf[--w] = '0';
            goto done;
        } else if (u < 1000) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < (uint64_t)DURATION_MS) {
            prec = 3;
            buf[--w] = '\xb5'; /* U+00B5 micro sign, as Go prints it */
            buf[--w] = '\xc2';
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        w = fmt_frac(buf, w, &u, prec);
        w = fmt_int(buf, w, u);
    } else {
        buf[--w] = 's';
        w = fmt_frac(buf, w, &u, 9);
        w = fmt_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = fmt_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = fmt_int(buf, w, u);
            }
        }
    }
done:
    if (neg)
        buf[--w] = '-';
    if (outlen == 0)
        return;
    /* Truncation only loses the tail of a value the caller sized too small for. */
    snprintf(out, outlen, "%.*s", (int)(sizeof(buf) - w), buf + w);
}
