#include "lib/unix_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/alloc.h"

int unix_path_open(struct unix_path *u, const char *path, struct err *e)
{
    size_t cap = sizeof(u->sa.sun_path);
    const char *slash = strrchr(path, '/');

    memset(u, 0, sizeof(*u));
    u->sa.sun_family = AF_UNIX;
    u->dirfd = -1;
    if (strlen(path) < cap) {
        memcpy(u->sa.sun_path, path, strlen(path) + 1);
        return 0;
    }
    if (!slash || strlen(slash) + sizeof("/proc/self/fd/2147483647") > cap) {
        err_set(e, "%s: socket name too long (max %zu bytes)", path, cap - 1);
        return -ENAMETOOLONG;
    }
    char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    u->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc = u->dirfd < 0 ? -errno : 0;
    if (rc < 0)
        err_set(e, "%s: %s", dir, strerror(-rc));
    else
        snprintf(u->sa.sun_path, cap, "/proc/self/fd/%d%s", u->dirfd, slash);
    free(dir);
    return rc;
}

void unix_path_close(struct unix_path *u)
{
    if (u->dirfd >= 0)
        close(u->dirfd);
    u->dirfd = -1;
}
