/*
 * A child process that only waits, for tests that need a live pid: its own session (a group
 * signal reaches it alone), and an alarm so that it cannot outlive a test that fails before
 * killing it. Header-only, static: include it in the test file that needs it.
 */
#ifndef MESH_TESTS_UNIT_SLEEPER_H
#define MESH_TESTS_UNIT_SLEEPER_H

#include <unistd.h>

/* The child's pid, or -1 when fork failed; the caller kills and reaps it. */
static pid_t sleeper(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        setsid();
        alarm(120);
        pause();
        _exit(0);
    }
    return pid;
}

#endif
