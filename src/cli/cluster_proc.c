/*
 * The cluster's processes: daemons started in their own session (they outlive `mesh up`),
 * short commands run to completion with a bounded wait, and stopping by PID. A PID comes only
 * from a pidfile the cluster (or its supervisor) wrote, holding the process's start time
 * (lib/procfs.h), and is believed only while /proc shows that start time: a recycled PID in a
 * stale pidfile never gets a signal meant for a process long gone, and nothing is ever found by
 * matching command lines, which would reach another cluster's processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/procfs.h"
#include "lib/subproc.h"

extern char **environ;

int64_t cluster_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* argv, prefixed with `ip netns exec NS` for a node in a namespace; free the array only. */
static char **node_argv(const struct cluster_node *n, char *const argv[])
{
    size_t argc = 0, k = 0;
    char **out;

    while (argv[argc])
        argc++;
    out = xcalloc(argc + 5, sizeof(*out));
    if (n && n->netns[0]) {
        out[k++] = "ip";
        out[k++] = "netns";
        out[k++] = "exec";
        out[k++] = (char *)n->netns;
    }
    for (size_t i = 0; i < argc; i++)
        out[k++] = argv[i];
    return out;
}

int cluster_spawn(const struct cluster_node *n, char *const argv[], const char *log_path,
                  pid_t *pid, struct err *e)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char **av = node_argv(n, argv);
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawnp(pid, av[0], &fa, &attr, av, environ);
    if (rc != 0)
        err_set(e, "start %s: %s", av[0], strerror(rc));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(av);
    return -rc;
}

int cluster_run(const struct cluster_node *n, char *const argv[], struct buf *out, unsigned flags,
                int timeout_ms, struct err *e)
{
    char **av = node_argv(n, argv);
    int rc = subproc_run(av, out, flags & CLUSTER_RUN_QUIET ? SUBPROC_QUIET : 0, timeout_ms, e);

    free(av);
    return rc;
}

bool cluster_pidfile_live(const struct cluster_state *s, const struct cluster_node *n,
                          const char *file, struct cluster_pid *p)
{
    char path[PATH_MAX + 64];
    struct cluster_pid found = {0};

    cluster_path(s, n, file, path, sizeof(path));
    found.pid = procfs_pidfile_live(path, &found.start);
    if (p)
        *p = found;
    return found.pid > 0;
}

int cluster_pidfile_write(const char *path, pid_t pid, struct err *e)
{
    return procfs_pidfile_write(path, pid, e);
}

static bool wait_gone(const struct cluster_pid *p, int timeout_ms)
{
    int64_t deadline = cluster_now_ms() + timeout_ms;

    while (procfs_is(p->pid, p->start)) {
        if (cluster_now_ms() >= deadline)
            return false;
        /* Reap it if it is our child (a daemon this very command started). */
        waitpid(p->pid, NULL, WNOHANG);
        cluster_sleep_ms(20);
    }
    return true;
}

bool cluster_stop_pid(const struct cluster_pid *p, int sig, int timeout_ms)
{
    if (!procfs_is(p->pid, p->start) || kill(p->pid, sig) != 0)
        return false;
    if (!wait_gone(p, timeout_ms) && procfs_is(p->pid, p->start) && kill(p->pid, SIGKILL) == 0)
        wait_gone(p, 2000);
    return true;
}
