/*
 * Go-style durations, as Consul's API and config files write them: "10s", "1m30s", "500ms",
 * "1.5h", "0". Units: ns, us (or µs), ms, s, m, h. Values are nanoseconds in int64.
 */
#ifndef MESH_LIB_DURATION_H
#define MESH_LIB_DURATION_H

#include <stdint.h>

#include "lib/str.h"

#define DURATION_MS  INT64_C(1000000)
#define DURATION_SEC INT64_C(1000000000)

/*
 * Parses a Go duration string (time.ParseDuration): one or more "<decimal>[.<fraction>]<unit>"
 * groups, an optional leading '+'. A number without a unit is accepted only when it is "0" (as
 * Go does). Negative durations are rejected (-EINVAL), except a zero ("-0s"). Returns 0, or
 * -EINVAL (malformed) / -ERANGE (beyond INT64_MAX ns); *ns is set only on success.
 */
int duration_parse(struct str s, int64_t *ns);

/*
 * Formats like Go's time.Duration.String(): "0s", "1.5s", "10s", "1m30s", "2h0m0s", "500ms",
 * "1.5µs" (U+00B5, as Go). Writes a NUL-terminated string to out; 32 bytes always suffice, a
 * shorter out truncates. Negative values print with a leading '-'.
 */
void duration_format(int64_t ns, char *out, unsigned long outlen);

#endif
