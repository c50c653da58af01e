/*
 * The cluster's processes: daemons started in their own session (they outlive `mesh up`),
 * short commands run to completion with a bounded wait, and stopping by PID. A PID is only
 * signalled while /proc says it still runs the expected executable, so a recycled PID in a stale
 * pidfile never gets a signal meant for a process long gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#define RUN_MAX_OUTPUT (16u << 20)

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

/* Reads the child's stdout into out until EOF or the deadline; false on timeout. */
static bool read_until_eof(int fd, struct buf *out, int64_t deadline)
{
    char chunk[4096];

    for (;;) {
        int64_t left = deadline - cluster_now_ms();
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
        if (out->len < RUN_MAX_OUTPUT)
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
        if (cluster_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -ETIMEDOUT;
        }
        cluster_sleep_ms(10);
    }
}

int cluster_run(const struct cluster_node *n, char *const argv[], struct buf *out, unsigned flags,
                int timeout_ms, struct err *e)
{
    posix_spawn_file_actions_t fa;
    char **av = node_argv(n, argv);
    int64_t deadline = cluster_now_ms() + timeout_ms;
    int fds[2] = {-1, -1};
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (flags & CLUSTER_RUN_QUIET)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (out) {
        if (pipe2(fds, O_CLOEXEC) != 0) {
            rc = err_set(e, "pipe: %s", strerror(errno));
            goto out;
        }
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    }
    rc = posix_spawnp(&pid, av[0], &fa, NULL, av, environ);
    if (rc != 0) {
        err_set(e, "run %s: %s", av[0], strerror(rc));
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
        err_set(e, "%s %s did not finish within %d ms", av[0], av[1] ? av[1] : "", timeout_ms);
    else if (rc < 0)
        err_set(e, "wait for %s: %s", av[0], strerror(-rc));
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    posix_spawn_file_actions_destroy(&fa);
    free(av);
    return rc;
}

bool cluster_pid_alive(pid_t pid, const char *exe)
{
    char path[64], buf[512];
    char target[PATH_MAX];
    FILE *f;
    char *p;
    bool alive = false;

    if (pid <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return false;
    /* "pid (comm) S ...": the state follows the last ')', since comm may hold one. */
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
        alive = p[2] != 'Z' && p[2] != 'X';
    fclose(f);
    if (!alive || !exe)
        return alive;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    /* A binary rebuilt while the cluster runs (make up, edit, make) reads "PATH (deleted)". */
    size_t len = strlen(exe);
    return strncmp(target, exe, len) == 0 &&
           (target[len] == '\0' || strcmp(target + len, " (deleted)") == 0);
}

pid_t cluster_pidfile_read(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (!f)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > 4194304)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

int cluster_pidfile_write(const char *path, pid_t pid, struct err *e)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return err_set(e, "write %s: %s", path, strerror(errno));
    fprintf(f, "%d\n", (int)pid);
    if (fclose(f) != 0)
        return err_set(e, "write %s: %s", path, strerror(errno));
    return 0;
}

static bool wait_gone(pid_t pid, const char *exe, int timeout_ms)
{
    int64_t deadline = cluster_now_ms() + timeout_ms;

    while (cluster_pid_alive(pid, exe)) {
        if (cluster_now_ms() >= deadline)
            return false;
        /* Reap it if it is our child (a daemon this very command started). */
        waitpid(pid, NULL, WNOHANG);
        cluster_sleep_ms(20);
    }
    return true;
}

bool cluster_stop_pid(pid_t pid, const char *exe, int sig, int timeout_ms)
{
    if (!cluster_pid_alive(pid, exe))
        return false;
    if (kill(pid, sig) != 0)
        return false;
    if (!wait_gone(pid, exe, timeout_ms) && kill(pid, SIGKILL) == 0)
        wait_gone(pid, exe, 2000);
    return true;
}
