/* /proc reads and pidfiles that survive PID reuse (see procfs.h). */
#include "lib/procfs.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/file.h"

/* Reads one unsigned decimal field at *p (after spaces); advances past it. */
static bool next_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    while (s < end && *s == ' ')
        s++;
    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (s < end && *s != ' ' && *s != '\n')
        return false;
    *p = s;
    *out = v;
    return true;
}

/* Skips one field of any content (fields 4..13 may be negative). */
static bool skip_field(const char **p, const char *end)
{
    const char *s = *p;

    while (s < end && *s == ' ')
        s++;
    if (s == end)
        return false;
    while (s < end && *s != ' ' && *s != '\n')
        s++;
    *p = s;
    return true;
}

int procfs_parse_stat(const char *text, size_t len, struct procfs_stat *out)
{
    const char *end = text + len;
    const char *p = NULL;
    uint64_t v;

    for (const char *s = text; s < end; s++) {
        if (*s == ')')
            p = s;
    }
    if (!p || p + 3 > end || p[1] != ' ')
        return -EINVAL;
    out->state = p[2];
    p += 3;
    /* Fields 4..13, then utime (14), stime (15), then 16..21, then starttime (22). */
    for (int f = 4; f <= 22; f++) {
        if (f == 14 || f == 15 || f == 22) {
            if (!next_u64(&p, end, &v))
                return -EINVAL;
            if (f == 14)
                out->utime = v;
            else if (f == 15)
                out->stime = v;
            else
                out->start_time = v;
        } else if (!skip_field(&p, end)) {
            return -EINVAL;
        }
    }
    return 0;
}

int procfs_parse_statm(const char *text, size_t len, uint64_t *resident_pages)
{
    const char *p = text;
    const char *end = text + len;
    uint64_t size;

    if (!next_u64(&p, end, &size) || !next_u64(&p, end, resident_pages))
        return -EINVAL;
    return 0;
}

int procfs_read_stat(pid_t pid, struct procfs_stat *out)
{
    char path[64], text[1024];
    ssize_t n;
    int fd;

    if (pid <= 0)
        return -ESRCH;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    /* Only a missing entry means no process: out of descriptors (EMFILE) tells nothing. */
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n <= 0)
        return -ESRCH; /* it went between the open and the read */
    return procfs_parse_stat(text, (size_t)n, out);
}

uint64_t procfs_start_time(pid_t pid)
{
    struct procfs_stat st;

    if (procfs_read_stat(pid, &st) != 0 || st.state == 'Z' || st.state == 'X')
        return 0;
    return st.start_time;
}

bool procfs_is(pid_t pid, uint64_t start)
{
    return start != 0 && procfs_start_time(pid) == start;
}

int procfs_pidfile_line(pid_t pid, char *out, size_t len)
{
    struct procfs_stat st;
    int n;

    /* A zombie keeps its start time: a child that died at once is recorded, and found gone. */
    if (procfs_read_stat(pid, &st) != 0)
        return -ESRCH;
    n = snprintf(out, len, "%d %llu\n", (int)pid, (unsigned long long)st.start_time);
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int procfs_pidfile_write(const char *path, pid_t pid, struct err *e)
{
    char line[64];
    int n = procfs_pidfile_line(pid, line, sizeof(line));

    if (n < 0) {
        err_set(e, "write %s: process %d is not running", path, (int)pid);
        return n;
    }
    return file_replace(path, line, (size_t)n, 0644, 0, e);
}

int procfs_pidfile_parse(const char *text, size_t len, pid_t *pid, uint64_t *start)
{
    const char *p = text, *end = text + len;
    uint64_t v;

    if (!next_u64(&p, end, &v) || v == 0 || v > INT32_MAX)
        return -EINVAL;
    *pid = (pid_t)v;
    *start = 0;
    if (p < end && *p == ' ' && !next_u64(&p, end, start))
        return -EINVAL;
    while (p < end && (*p == '\n' || *p == ' '))
        p++;
    return p == end ? 0 : -EINVAL;
}

int procfs_pidfile_check(const char *path, pid_t *pid_out, uint64_t *start_out)
{
    struct procfs_stat st;
    char text[128];
    uint64_t start;
    pid_t pid;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    n = read(fd, text, sizeof(text));
    rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return rc;
    if (n == 0 || procfs_pidfile_parse(text, (size_t)n, &pid, &start) != 0 || start == 0)
        return 0;
    rc = procfs_read_stat(pid, &st);
    if (rc == -ESRCH)
        return 0;
    if (rc < 0)
        return rc;
    if (st.state == 'Z' || st.state == 'X' || st.start_time != start)
        return 0;
    *pid_out = pid;
    if (start_out)
        *start_out = start;
    return 1;
}

pid_t procfs_pidfile_live(const char *path, uint64_t *start)
{
    pid_t pid = 0;

    return procfs_pidfile_check(path, &pid, start) > 0 ? pid : 0;
}

int procfs_parse_net_line(const char *line, int *port, int *state, uint64_t *inode)
{
    unsigned local_port, st;
    unsigned long long ino;
    char local[128];

    /* "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode" */
    if (sscanf(line, " %*u: %127s %*s %x %*s %*s %*s %*u %*u %llu", local, &st, &ino) != 3)
        return -EINVAL;
    const char *colon = strrchr(local, ':');
    if (!colon || sscanf(colon + 1, "%x", &local_port) != 1 || local_port > 65535)
        return -EINVAL;
    *port = (int)local_port;
    *state = (int)st;
    *inode = ino;
    return 0;
}

/* The inode of the socket bound to port in one /proc/net table, or 0. */
static uint64_t port_inode(const char *table, int port, int want_state)
{
    char line[512];
    FILE *f = fopen(table, "r");
    uint64_t found = 0;
    uint64_t inode;
    int p, st;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        if (procfs_parse_net_line(line, &p, &st, &inode) == 0 && p == port && st == want_state &&
            inode)
            found = inode;
    }
    fclose(f);
    return found;
}

/* True when one of pid's descriptors is the socket "socket:[inode]". */
static bool pid_has_socket(const char *pid, const char *want)
{
    char dir[300], path[600], target[64];
    struct dirent *d;
    DIR *fds;
    bool found = false;

    snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
    if (!(fds = opendir(dir)))
        return false;
    while (!found && (d = readdir(fds)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strcmp(target, want) == 0;
        }
    }
    closedir(fds);
    return found;
}

/* "comm: arg0 arg1 ..." of pid, cut to len. */
static void describe_pid(pid_t pid, char *out, size_t len)
{
    char path[64], comm[64] = "?", cmd[256];
    ssize_t n = 0;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, comm, sizeof(comm) - 1);
        close(fd);
        comm[n > 0 ? n : 0] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
    }
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    n = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
    }
    for (ssize_t i = 0; i < n; i++)
        cmd[i] = cmd[i] ? cmd[i] : ' ';
    while (n > 0 && cmd[n - 1] == ' ')
        n--;
    cmd[n > 0 ? n : 0] = '\0';
    snprintf(out, len, "%s%s%.200s", comm, cmd[0] ? ": " : "", cmd);
}

bool procfs_port_owner(int port, bool udp, pid_t *pid, char *name, size_t len)
{
    static const char *const tables[2][2] = {{"/proc/net/tcp", "/proc/net/tcp6"},
                                             {"/proc/net/udp", "/proc/net/udp6"}};
    char want[64];
    struct dirent *d;
    uint64_t inode = 0;
    DIR *proc;
    bool found = false;

    for (size_t i = 0; i < 2 && !inode; i++)
        inode = port_inode(tables[udp][i], port, udp ? 0x07 : 0x0A);
    if (!inode || !(proc = opendir("/proc")))
        return false;
    snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
    while (!found && (d = readdir(proc)) != NULL) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9' || !pid_has_socket(d->d_name, want))
            continue;
        *pid = (pid_t)atoi(d->d_name);
        describe_pid(*pid, name, len);
        found = true;
    }
    closedir(proc);
    return found;
}

bool procfs_pid_listens(pid_t pid, int port)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    char line[512], pid_s[24], want[64];
    bool found = false;

    snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
    for (size_t t = 0; t < 2 && !found; t++) {
        FILE *f = fopen(tables[t], "re");
        uint64_t inode;
        int p, st;
        if (!f)
            continue;
        while (!found && fgets(line, sizeof(line), f)) {
            if (procfs_parse_net_line(line, &p, &st, &inode) != 0 || p != port || st != 0x0A ||
                !inode)
                continue;
            snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
            found = pid_has_socket(pid_s, want);
        }
        fclose(f);
    }
    return found;
}
