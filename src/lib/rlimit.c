/* Raising the soft limit on open files to the hard one (see rlimit.h). */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "lib/log.h"
#include "lib/rlimit.h"

int rlimit_nofile_raise(void)
{
    struct rlimit lim;
    unsigned long long was;

    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        int rc = -errno;
        log_debug("open files limit: %s", strerror(-rc));
        return rc;
    }
    if (lim.rlim_cur == lim.rlim_max) {
        log_debug("open files limit: %llu, the hard limit already",
                  (unsigned long long)lim.rlim_max);
        return 0;
    }
    was = (unsigned long long)lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        int rc = -errno;
        log_debug("open files limit: %llu, not raised to %llu: %s", was,
                  (unsigned long long)lim.rlim_max, strerror(-rc));
        return rc;
    }
    log_debug("open files limit raised from %llu to %llu", was, (unsigned long long)lim.rlim_max);
    return 0;
}
