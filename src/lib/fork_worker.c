#include "lib/fork_worker.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The descriptor the child's work gets: the first one after stdin, stdout and stderr. */
#define FORK_WORKER_FD 3

pid_t fork_worker(int keep_fd, fork_worker_fn fn, void *arg)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    int fd = -1;

    if (pid != 0)
        return pid < 0 ? -errno : pid;
    /* A parent that died before the prctl took effect would leave the child orphaned. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(1);
    if (keep_fd >= 0) {
        fd = FORK_WORKER_FD;
        if (keep_fd != fd && dup2(keep_fd, fd) < 0)
            _exit(1);
    }
    close_range(fd >= 0 ? FORK_WORKER_FD + 1 : FORK_WORKER_FD, ~0u, 0);
    _exit(fn(fd, arg) == 0 ? 0 : 1);
}
