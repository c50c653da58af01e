#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_setf(struct err *e, const char *fmt, ...)
{
    va_list ap;

    if (e) {
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
}

void err_prefix(struct err *e, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(e->msg)];
    va_list ap;

    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    /* Truncation is acceptable here: the message is for humans. */
    size_t n = strlen(prefix);
    if (n > sizeof(e->msg) - 3)
        n = sizeof(e->msg) - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t m = strnlen(old, sizeof(old) - 1);
    if (m > sizeof(e->msg) - n - 3)
        m = sizeof(e->msg) - n - 3;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
}
