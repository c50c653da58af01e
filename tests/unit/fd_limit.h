/*
 * Runs out of file descriptors on purpose: lowers this process's RLIMIT_NOFILE so that only
 * `spare` more descriptors can be opened, and puts the limit back. Header-only, static: include
 * it in the test file that needs it.
 */
#ifndef MESH_TESTS_UNIT_FD_LIMIT_H
#define MESH_TESTS_UNIT_FD_LIMIT_H

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Lowers the soft limit so the next `spare` opens succeed (descriptors are handed out lowest
 * first) and the one after fails with EMFILE. *saved gets the limit to restore. 0 or -1. */
static int fd_limit_spare(int spare, struct rlimit *saved)
{
    struct rlimit lim;
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (lowest < 0 || getrlimit(RLIMIT_NOFILE, saved) != 0)
        return -1;
    close(lowest);
    lim = *saved;
    lim.rlim_cur = (rlim_t)lowest + (rlim_t)spare;
    return setrlimit(RLIMIT_NOFILE, &lim);
}

__attribute__((unused)) static int fd_limit_restore(const struct rlimit *saved)
{
    return setrlimit(RLIMIT_NOFILE, saved);
}

#endif
