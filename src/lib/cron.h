/*
 * Cron expressions, as PM2's cron_restart takes them (its library is croner 4): five fields
 * "minute hour day-of-month month day-of-week", or six with a leading seconds field. Each field
 * is "*", a number, a range "a-b", any of those three followed by a step "/n" (every n-th value
 * from the first; "a/n" runs from a to the field's end), or a comma-separated list of those. Months
 * and weekdays also take their English three-letter names (jan..dec, sun..sat, in any case);
 * weekday 0 and 7 are both Sunday; the day of month may be "L", the month's last day. As in croner
 * 4, and unlike Vixie cron, a time matches only when both the day of month and the day of week
 * match. Times are local time.
 */
#ifndef MESH_LIB_CRON_H
#define MESH_LIB_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/err.h"

/* Bit v of each set stands for value v of its field. */
struct cron {
    uint64_t seconds; /* 0..59 */
    uint64_t minutes; /* 0..59 */
    uint32_t hours;   /* 0..23 */
    uint32_t days;    /* 1..31 */
    uint16_t months;  /* 1..12 */
    uint8_t weekdays; /* 0..6, Sunday first */
    bool last_day;    /* "L": the last day of the month, whatever its number */
};

/*
 * Parses expr into *c. Returns 0, or -EINVAL with e = the field and the reason, as
 * "hours: 25 out of range 0..23"; an expression no calendar date matches ("0 0 30 2 *") is refused
 * too, so that cron_next finds a time for every expression this accepts.
 */
int cron_parse(const char *expr, struct cron *c, struct err *e);

/*
 * The first time strictly after `after` (whole seconds) that c matches, in local time. Returns 0
 * with *next, or -ERANGE when nothing matches within CRON_SEARCH_YEARS (past the year 9999, or
 * in a time zone gone wrong).
 */
#define CRON_SEARCH_YEARS 50 /* a 29 February on a given weekday: 28 years, 40 around 2100 */
int cron_next(const struct cron *c, time_t after, time_t *next);

#endif
