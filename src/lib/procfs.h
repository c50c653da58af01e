/*
 * What this project reads from /proc about a process, and pidfiles that name one process for
 * good. A PID alone is not an identity: once the process is gone the kernel hands the number to
 * the next one, and a stale pidfile would then point a signal at a stranger. So a pidfile here
 * holds "PID START\n", START being the process's start time in clock ticks after boot (field 22
 * of /proc/PID/stat), and a reader only believes it while /proc shows that same start time.
 * Linux only; every read is a small read of an in-memory file.
 */
#ifndef MESH_LIB_PROCFS_H
#define MESH_LIB_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* The fields of /proc/PID/stat this project uses. */
struct procfs_stat {
    char state;          /* R, S, D, Z (zombie), X (dead), ... */
    uint64_t utime;      /* clock ticks */
    uint64_t stime;      /* clock ticks */
    uint64_t start_time; /* clock ticks after boot: identifies the process across pid reuse */
};

/*
 * Parses the text of /proc/PID/stat (len bytes, need not be terminated). The command name may
 * hold spaces and parentheses: fields are counted after the last ')'. Returns 0 or -EINVAL.
 */
int procfs_parse_stat(const char *text, size_t len, struct procfs_stat *out);
/* Resident pages from the text of /proc/PID/statm (second field). Returns 0 or -EINVAL. */
int procfs_parse_statm(const char *text, size_t len, uint64_t *resident_pages);

/* Reads /proc/PID/stat. Returns 0, -ESRCH when there is no such process, -EINVAL, or another
 * -errno when it could not be opened (-EMFILE). */
int procfs_read_stat(pid_t pid, struct procfs_stat *out);
/* The start time of pid while it runs (not a zombie), else 0. */
uint64_t procfs_start_time(pid_t pid);
/* True while pid runs and started at start (start 0 never matches). */
bool procfs_is(pid_t pid, uint64_t start);

/* The pidfile line of pid ("PID START\n") into out. Returns its length, or -ESRCH when there
 * is no process pid (a zombie, a child that exited but is not reaped yet, still has one). */
int procfs_pidfile_line(pid_t pid, char *out, size_t len);
/*
 * Writes path atomically (temporary file and rename, mode 0644) with the pidfile line of pid.
 * Returns 0, or -errno with e set (-ESRCH: no process pid).
 */
int procfs_pidfile_write(const char *path, pid_t pid, struct err *e);
/*
 * Parses a pidfile's text: "PID START" (a bare PID, written by something else, yields start 0,
 * which procfs_is never matches). Returns 0 or -EINVAL.
 */
int procfs_pidfile_parse(const char *text, size_t len, pid_t *pid, uint64_t *start);
/* The PID in path while that very process runs, else 0 (no file, bad content, process gone,
 * PID reused). *start (when not NULL) gets its start time. */
pid_t procfs_pidfile_live(const char *path, uint64_t *start);
/*
 * procfs_pidfile_live that tells a process gone from one it could not check: 1 with *pid (and
 * *start when not NULL) set while the process path names runs; 0 when it does not (no file, bad
 * content, process gone, PID reused); -errno when the file or /proc could not be read (-EMFILE:
 * out of descriptors), so that a caller never forgets a live process for want of a descriptor.
 */
int procfs_pidfile_check(const char *path, pid_t *pid, uint64_t *start);

/* ---- who holds a port ------------------------------------------------------------------- */

/*
 * Parses one line of /proc/net/{tcp,tcp6,udp,udp6}: the local port, the socket state (hex
 * field "st": 0x0A is a TCP listener, 0x07 an unconnected UDP socket) and the inode. The header
 * line and anything else malformed give -EINVAL.
 */
int procfs_parse_net_line(const char *line, int *port, int *state, uint64_t *inode);
/*
 * Names the process holding local port `port` (TCP listener, or bound UDP socket with udp):
 * true with *pid set and name filled ("comm: first arguments", at most len bytes) when found.
 * Only processes whose /proc/PID/fd this process may read can be named (same user, or root).
 */
bool procfs_port_owner(int port, bool udp, pid_t *pid, char *name, size_t len);
/*
 * Whether pid itself holds a TCP listener on local port `port`. Several processes may listen on
 * one port (SO_REUSEPORT, as an old and a new instance of an app during a reload): every
 * listener of the port is looked at, not only the first.
 */
bool procfs_pid_listens(pid_t pid, int port);

#endif
