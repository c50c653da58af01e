/*
 * A forked worker: a child process that works from this process's memory as it stood at the
 * fork (copy-on-write) while the parent goes on changing it, as Redis's BGSAVE writes its
 * snapshots. For work over the whole of a large state (serialising it) that would stall a loop
 * thread, and where a copy made on the loop would cost as much as the work itself.
 *
 * The child of a threaded process (libuv's threadpool, the replication engine's) holds only the
 * thread that forked: the work must not wait on anything another thread may have held at the
 * fork. glibc's malloc is safe there (it resets its locks in the child); the log and stdio are
 * not promised. The child dies with its parent (PR_SET_PDEATHSIG) and holds none of the
 * parent's descriptors but the one it is given, so no listening socket outlives the parent in
 * it.
 */
#ifndef MESH_LIB_FORK_WORKER_H
#define MESH_LIB_FORK_WORKER_H

#include <sys/types.h>

/* The work: fd is the child's copy of keep_fd (-1 when none was given). 0 or -errno. */
typedef int (*fork_worker_fn)(int fd, void *arg);

/*
 * Forks a child that runs fn(fd, arg) and exits 0 when it returns 0, else 1. Returns the child's
 * PID in the parent, who reaps it (waitpid), or -errno when none could be forked. keep_fd stays
 * open in the parent (close the parent's copy of a pipe's write end, or the reader never sees
 * its end).
 */
pid_t fork_worker(int keep_fd, fork_worker_fn fn, void *arg);

#endif
