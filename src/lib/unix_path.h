/*
 * Unix socket addresses for paths of any length.
 *
 * sockaddr_un holds 107 bytes of path, and a run or home directory a few levels deep (a CI
 * workspace, a test's temporary directory) exceeds it. A longer path is reached through a
 * descriptor of its directory: "/proc/self/fd/N/NAME" is short, and bind() and connect()
 * resolve it to the same file as the path itself.
 */
#ifndef MESH_LIB_UNIX_PATH_H
#define MESH_LIB_UNIX_PATH_H

#include <sys/un.h>

#include "lib/err.h"

struct unix_path {
    struct sockaddr_un sa; /* what to bind or connect to */
    int dirfd;             /* the directory's descriptor when the path is long, else -1 */
};

/* Fills u for path. 0, or -errno with e set (the directory cannot be opened, or the socket's
 * own name is too long). Call unix_path_close once bind or connect is done. */
int unix_path_open(struct unix_path *u, const char *path, struct err *e);

void unix_path_close(struct unix_path *u);

#endif
