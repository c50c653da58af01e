/* Short commands run to completion (see subproc.h). */
#include "lib/subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Reads the child's stdout into out until EOF or the deadline; false on timeout. */
static bool read_until_eof(int fd, struct buf *out, int64_t deadline)
{
    char chunk[4096];

    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return false;
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return true;
        if (out->len < SUBPROC_MAX_OUTPUT)
            buf_append(out, chunk, (size_t)got);
    }
}

/* waitpid with a deadline: the exit status, or -ETIMEDOUT after SIGKILLing the child. */
static int wait_child(pid_t pid, int64_t deadline)
{
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -ETIMEDOUT;
        }
        sleep_ms(10);
    }
}

int subproc_run(char *const argv[], struct buf *out, unsigned flags, int timeout_ms, struct err *e)
{
    posix_spawn_file_actions_t fa;
    int64_t deadline = now_ms() + timeout_ms;
    int fds[2] = {-1, -1};
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (flags & SUBPROC_QUIET)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (out) {
        if (pipe2(fds, O_CLOEXEC) != 0) {
            rc = err_set(e, "pipe: %s", strerror(errno));
            goto out;
        }
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    }
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    if (rc != 0) {
        err_set(e, "run %s: %s", argv[0], strerror(rc));
        rc = -rc;
        goto out;
    }
    if (out) {
        close(fds[1]);
        fds[1] = -1;
        read_until_eof(fds[0], out, deadline);
    }
    rc = wait_child(pid, deadline);
    if (rc == -ETIMEDOUT)
        err_set(e, "%s %s did not finish within %d ms", argv[0], argv[1] ? argv[1] : "",
                timeout_ms);
    else if (rc < 0)
        err_set(e, "wait for %s: %s", argv[0], strerror(-rc));
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}
