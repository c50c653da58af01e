/* Control-socket requests and daemon start-up, for the CLI (see client.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/procfs.h"
#include "lib/unix_path.h"
#include "pm/client.h"
#include "pm/daemon.h"

#define PM_REPLY_MAX       (64 * 1024 * 1024)
#define PM_START_WAIT_MS   10000
#define PM_CONNECT_RETRIES 3

/* 0 and *fd_out a connected socket (the caller's to close), or -errno and *fd_out -1. */
static int connect_socket(const char *home, int *fd_out, struct err *e)
{
    char *path = xasprintf("%s/pm.sock", home);
    struct unix_path addr;
    int rc, fd = -1;

    *fd_out = -1;
    if ((rc = unix_path_open(&addr, path, e)) < 0)
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        err_set(e, "socket: %s", strerror(errno));
    } else if (connect(fd, (struct sockaddr *)&addr.sa, sizeof(addr.sa)) != 0) {
        rc = -errno;
        err_set(e, "connect %s: %s", path, strerror(errno));
        close(fd);
    } else {
        *fd_out = fd;
    }
    unix_path_close(&addr);
out:
    free(path);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One exchange on a connected socket. */
static int exchange(int fd, const json_t *req, json_t **reply, struct err *e)
{
    struct buf b = BUF_INIT;
    json_error_t je;
    char chunk[65536];
    ssize_t n;
    int rc;

    json_append(&b, req, false);
    buf_append_cstr(&b, "\n");
    /* The daemon would cut it off with a bare "request too large": say which limit. */
    if (b.len > PM_REQUEST_MAX) {
        rc = -EMSGSIZE;
        err_set(e,
                "the request is %zu bytes, over the control socket's limit of %d MiB (an "
                "ecosystem file that large: split it, or move big env values into files)",
                b.len, PM_REQUEST_MAX >> 20);
        goto out;
    }
    rc = write_all(fd, b.data, b.len);
    buf_reset(&b);
    if (rc != 0) {
        err_set(e, "send to the pm daemon: %s", strerror(-rc));
        goto out;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || b.len + (size_t)n > PM_REPLY_MAX) {
            rc = n < 0 ? -errno : -EFBIG;
            err_set(e, "read from the pm daemon: %s", strerror(-rc));
            goto out;
        }
        buf_append(&b, chunk, (size_t)n);
    }
    *reply = json_loadb(b.data ? b.data : "", b.len, 0, &je);
    if (!json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        rc = -EPROTO;
        err_set(e, "the pm daemon closed the connection without a reply");
    }
out:
    buf_free(&b);
    return rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/*
 * Runs in the forked child: detaches and execs the daemon, having written the daemon's pidfile
 * line to announce (close-on-exec, so the parent reads it or, if no daemon was forked, EOF).
 */
static void exec_daemon(const char *self, const char *home, int nul, int logfd, int announce)
{
    char line[64];
    int n;

    /* Twice forked and in its own session, so the daemon is nobody's child here. Never keep
     * the caller's stdio: whoever reads our output to EOF would wait forever. */
    if (dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
        _exit(1);
    if (setsid() < 0 || fork() != 0 || chdir("/") != 0)
        _exit(0);
    n = procfs_pidfile_line(getpid(), line, sizeof(line));
    if (n > 0 && write(announce, line, (size_t)n) != n)
        _exit(1);
    execl(self, self, "pm", "-home", home, "daemon", "-foreground", (char *)NULL);
    dprintf(2, "mesh pm: exec %s: %s\n", self, strerror(errno));
    _exit(127);
}

/* The daemon exec_daemon announced on fd: *pid and *start, or *pid 0 when none was. */
static void read_announce(int fd, pid_t *pid, uint64_t *start)
{
    char line[64];
    ssize_t n;

    *pid = 0;
    while ((n = read(fd, line, sizeof(line))) < 0 && errno == EINTR)
        ;
    /* One write of a few bytes to a pipe: it arrives whole or not at all. */
    if (n <= 0 || procfs_pidfile_parse(line, (size_t)n, pid, start) != 0)
        *pid = 0;
}

/*
 * The daemon exited before it answered: its own message is at the end of what it wrote to its log
 * (from offset from on), so that end goes into e, as much as fits after the log's name.
 */
static void report_exit(const char *log, off_t from, struct err *e)
{
    char head[sizeof(e->msg)];
    char tail[sizeof(e->msg)];
    int h = snprintf(head, sizeof(head), "the pm daemon exited at start; the end of %s:\n", log);
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    struct stat st;
    ssize_t n = 0;
    size_t room;
    off_t at;

    if (h < 0 || (size_t)h >= sizeof(head) / 2)
        h = snprintf(head, sizeof(head), "the pm daemon exited at start:\n");
    room = sizeof(e->msg) - 1 - (size_t)h;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > from) {
        at = st.st_size - from > (off_t)room ? st.st_size - (off_t)room : from;
        n = pread(fd, tail, room, at);
    }
    if (fd >= 0)
        close(fd);
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    if (n <= 0)
        err_set(e, "the pm daemon exited at start without a word in %s", log);
    else
        err_set(e, "%s%.*s", head, (int)n, tail);
}

int pm_client_spawn_daemon(const char *home, struct err *e)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    json_t *req = json_pack("{s:s}", "cmd", "ping");
    json_t *reply = NULL;
    char *log = xasprintf("%s/pm.log", home);
    /* Opened here, so that a log the daemon could not write is reported at once. */
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int announce[2] = {-1, -1};
    off_t log_from = logfd < 0 ? 0 : lseek(logfd, 0, SEEK_END);
    uint64_t dstart = 0;
    pid_t pid = -1, dpid;
    int rc = -ETIMEDOUT;

    if (logfd < 0 || nul < 0) {
        rc = -errno;
        err_set(e, "open %s: %s", logfd < 0 ? log : "/dev/null", strerror(errno));
        goto out;
    }
    if (n <= 0) {
        rc = -errno;
        err_set(e, "readlink /proc/self/exe: %s", strerror(errno));
        goto out;
    }
    self[n] = '\0';
    if (pipe2(announce, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
        rc = -errno;
        err_set(e, "%s: %s", announce[0] < 0 ? "pipe" : "fork", strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_daemon(self, home, nul, logfd, announce[1]);
    waitpid(pid, NULL, 0);
    close(announce[1]);
    announce[1] = -1;
    read_announce(announce[0], &dpid, &dstart);
    for (int waited = 0; waited < PM_START_WAIT_MS; waited += 50) {
        /* Looked at before the socket, so that a daemon that answers, even another one that
         * won the race for home's lock, is never reported as gone. */
        bool gone = dpid > 0 && !procfs_is(dpid, dstart);
        int fd;
        if (connect_socket(home, &fd, NULL) == 0) {
            rc = exchange(fd, req, &reply, NULL);
            close(fd);
            if (rc == 0)
                goto out;
        }
        if (gone) {
            rc = -ESRCH;
            report_exit(log, log_from, e);
            goto out;
        }
        sleep_ms(50);
    }
    err_set(e, "the pm daemon did not answer on %s/pm.sock within %d s (see %s/pm.log)", home,
            PM_START_WAIT_MS / 1000, home);
out:
    for (int k = 0; k < 2; k++) {
        if (announce[k] >= 0)
            close(announce[k]);
    }
    if (logfd >= 0)
        close(logfd);
    if (nul >= 0)
        close(nul);
    free(log);
    json_decref(reply);
    json_decref(req);
    return rc;
}

int pm_client_request(const char *home, const json_t *req, bool autostart, json_t **reply,
                      struct err *e)
{
    const char *msg;
    int fd = -1;
    int rc = connect_socket(home, &fd, e);

    *reply = NULL;
    for (int k = 0; rc != 0 && autostart && k < PM_CONNECT_RETRIES; k++) {
        if (rc != -ENOENT && rc != -ECONNREFUSED)
            return rc;
        rc = pm_client_spawn_daemon(home, e);
        if (rc == 0)
            rc = connect_socket(home, &fd, e);
    }
    if (rc != 0)
        return rc;
    rc = exchange(fd, req, reply, e);
    close(fd);
    if (rc == 0 && (msg = json_string_value(json_object_get(*reply, "error"))) != NULL) {
        rc = err_set(e, "%s", msg);
        json_decref(*reply);
        *reply = NULL;
    }
    return rc;
}
