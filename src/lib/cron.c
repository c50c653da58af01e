/* Cron expressions: parsing into bit sets, and the next matching time (see cron.h). */
#include <errno.h>
#include <string.h>

#include "lib/cron.h"

#define CRON_MAX_FIELDS 6
/* Steps of cron_next: one per month, day, hour, minute or second skipped, and per second of a
 * local time gone backwards (a DST fold); CRON_SEARCH_YEARS of days is about 18,000. */
#define CRON_MAX_STEPS (1 << 17)

struct cron_field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[k] is value lo + k, k < nnames; NULL: numbers only */
    int nnames;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* In the order of a six-field expression; a five-field one has no seconds. */
static const struct cron_field fields[CRON_MAX_FIELDS] = {
    {"seconds", 0, 59, NULL, 0},
    {"minutes", 0, 59, NULL, 0},
    {"hours", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},
    {"month", 1, 12, month_names, 12},
    {"day of week", 0, 7, weekday_names, 7}, /* 7 is Sunday again */
};

/* One field's text: [s, end). */
struct cron_text {
    const char *s;
    const char *end;
};

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Whether [s, end) starts with name (three lower-case letters) as a whole word, in any case. */
static bool starts_with_name(const char *s, const char *end, const char *name)
{
    if (end - s < 3 || lower(s[0]) != name[0] || lower(s[1]) != name[1] || lower(s[2]) != name[2])
        return false;
    return end - s == 3 || lower(s[3]) < 'a' || lower(s[3]) > 'z';
}

/*
 * A value of f at t->s (digits, or a name where f has them), consumed. Returns 0, or -EINVAL
 * with e set when there is none or it is out of f's range.
 */
static int take_value(const struct cron_field *f, struct cron_text *t, int *v, struct err *e)
{
    const char *s = t->s;
    int n = 0;

    if (s < t->end && *s >= '0' && *s <= '9') {
        for (; s < t->end && *s >= '0' && *s <= '9'; s++)
            n = n < 10000 ? n * 10 + (*s - '0') : n; /* past 9999 is out of range all the same */
        if (n < f->lo || n > f->hi)
            return err_set(e, "%s: %.*s out of range %d..%d", f->name, (int)(s - t->s), t->s, f->lo,
                           f->hi);
        *v = n;
        t->s = s;
        return 0;
    }
    for (int k = 0; k < f->nnames; k++) {
        if (starts_with_name(s, t->end, f->names[k])) {
            *v = f->lo + k;
            t->s = s + 3;
            return 0;
        }
    }
    return err_set(e, "%s: expected a number%s at \"%.*s\"", f->name, f->names ? " or a name" : "",
                   (int)(t->end - s), s);
}

/* One element of a list: "*", "a" or "a-b", then maybe "/n". Adds its values to *bits. */
static int take_item(const struct cron_field *f, struct cron_text *t, uint64_t *bits, struct err *e)
{
    int lo = f->lo, hi = f->hi, step = 1;
    int rc;

    if (t->s < t->end && *t->s == '*') {
        t->s++;
    } else {
        if ((rc = take_value(f, t, &lo, e)) != 0)
            return rc;
        hi = lo;
        if (t->s < t->end && *t->s == '-') {
            t->s++;
            if ((rc = take_value(f, t, &hi, e)) != 0)
                return rc;
            if (hi < lo)
                return err_set(e, "%s: range %d-%d goes backwards", f->name, lo, hi);
        } else if (t->s < t->end && *t->s == '/') {
            hi = f->hi; /* "a/n": from a to the end, as croner reads it */
        }
    }
    if (t->s < t->end && *t->s == '/') {
        const char *at = ++t->s;
        step = 0;
        for (; t->s < t->end && *t->s >= '0' && *t->s <= '9'; t->s++)
            step = step < 10000 ? step * 10 + (*t->s - '0') : step;
        if (t->s == at || step < 1 || step > f->hi - f->lo + 1)
            return err_set(e, "%s: step \"%.*s\" is not a number in 1..%d", f->name,
                           (int)(t->s - at), at, f->hi - f->lo + 1);
    }
    if (t->s < t->end && *t->s != ',')
        return err_set(e, "%s: unexpected \"%.*s\"", f->name, (int)(t->end - t->s), t->s);
    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << v;
    return 0;
}

/* A whole field: a comma-separated list of items. */
static int parse_field(const struct cron_field *f, struct cron_text t, uint64_t *bits,
                       struct err *e)
{
    int rc;

    *bits = 0;
    for (;;) {
        if ((rc = take_item(f, &t, bits, e)) != 0)
            return rc;
        if (t.s == t.end)
            return 0;
        t.s++; /* the ',' */
        if (t.s == t.end)
            return err_set(e, "%s: a list ends with ','", f->name);
    }
}

/* The fields of expr, split at blanks: at most max, *n of them (max + 1 when there are more). */
static void split_fields(const char *expr, struct cron_text *out, int max, int *n)
{
    const char *s = expr;

    *n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return;
        if (*n == max) {
            (*n)++;
            return;
        }
        out[*n].s = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        out[(*n)++].end = s;
    }
}

/* Whether some month of c has some day of c (29 February counts; L is every month's). */
static bool some_date(const struct cron *c)
{
    static const int month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    for (int m = 1; m <= 12; m++) {
        if ((c->months >> m & 1) &&
            (c->last_day || (c->days & ((UINT64_C(2) << month_days[m]) - 1))))
            return true;
    }
    return false;
}

int cron_parse(const char *expr, struct cron *c, struct err *e)
{
    struct cron_text text[CRON_MAX_FIELDS];
    uint64_t bits[CRON_MAX_FIELDS];
    int n;
    int first;
    int rc;

    split_fields(expr, text, CRON_MAX_FIELDS, &n);
    if (n != 5 && n != 6)
        return err_set(e,
                       "expected 5 fields (minute hour day month weekday) or 6 (seconds first), "
                       "got %s%d",
                       n > CRON_MAX_FIELDS ? "more than " : "", n > CRON_MAX_FIELDS ? 6 : n);
    first = CRON_MAX_FIELDS - n; /* without seconds, fields[0] is not in the text */
    bits[0] = UINT64_C(1);       /* second 0 */
    memset(c, 0, sizeof(*c));
    for (int k = 0; k < n; k++) {
        const struct cron_field *f = &fields[first + k];
        if (first + k == 3 && text[k].end - text[k].s == 1 && lower(*text[k].s) == 'l') {
            c->last_day = true;
            bits[3] = 0;
            continue;
        }
        if ((rc = parse_field(f, text[k], &bits[first + k], e)) != 0)
            return rc;
    }
    c->seconds = bits[0];
    c->minutes = bits[1];
    c->hours = (uint32_t)bits[2];
    c->days = (uint32_t)bits[3];
    c->months = (uint16_t)bits[4];
    c->weekdays = (uint8_t)((bits[5] | bits[5] >> 7) & 0x7f); /* 7 is Sunday, 0 */
    if (!some_date(c))
        return err_set(e, "no month has such a day: \"%s\" never matches", expr);
    return 0;
}

static bool leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = month_days[tm->tm_mon] + (tm->tm_mon == 1 && leap_year(tm->tm_year + 1900));
    bool mday = c->last_day ? tm->tm_mday == last : (c->days >> tm->tm_mday & 1);

    return mday && (c->weekdays >> tm->tm_wday & 1);
}

int cron_next(const struct cron *c, time_t after, time_t *next)
{
    time_t t = after + 1;
    struct tm tm;
    int last_year;

    if (!localtime_r(&t, &tm))
        return -ERANGE;
    last_year = tm.tm_year + CRON_SEARCH_YEARS;
    /* From the largest field down: a field that does not match moves to its next value and
     * resets the smaller ones; mktime carries the overflow (31 January + 1 day) and the DST. */
    for (int steps = 0; steps < CRON_MAX_STEPS && tm.tm_year <= last_year; steps++) {
        time_t was = t;
        if (!(c->months >> (tm.tm_mon + 1) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!(c->hours >> tm.tm_hour & 1)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
        } else if (!(c->minutes >> tm.tm_min & 1)) {
            tm.tm_min++;
            tm.tm_sec = 0;
        } else if (!(c->seconds >> tm.tm_sec & 1)) {
            tm.tm_sec++;
        } else {
            *next = t;
            return 0;
        }
        tm.tm_isdst = -1;
        t = mktime(&tm);
        /* A local time that does not exist (a DST gap) may normalise backwards: go on from the
         * second after the last one tried instead. */
        if (t <= was) {
            t = was + 1;
            if (!localtime_r(&t, &tm))
                return -ERANGE;
        }
    }
    return -ERANGE;
}
