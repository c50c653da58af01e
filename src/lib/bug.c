#include "lib/bug.h"

#include <stdio.h>
#include <stdlib.h>

#include "lib/log.h"

void mesh_bug(const char *file, int line, const char *cond, bool fatal, bool *reported)
{
    if (fatal) {
        /* stderr directly: the logger may be what broke. */
        fprintf(stderr, "BUG: %s:%d: %s\n", file, line, cond);
        abort();
    }
    /* A racing second report from another thread is harmless: the flag only saves log lines. */
    if (!__atomic_exchange_n(reported, true, __ATOMIC_RELAXED))
        log_error("BUG: %s:%d: %s (reported once; carrying on)", file, line, cond);
}
