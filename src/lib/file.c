#include "lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"

int file_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends what fd gives to out: from offset 0 (pread) when positional, else from where fd's
 * offset stands until its end (read: a pipe). */
static int read_to_end(int fd, struct buf *out, bool positional)
{
    off_t off = 0;

    for (;;) {
        buf_reserve(out, 64 * 1024);
        size_t room = out->cap - out->len - 1;
        ssize_t r = positional ? pread(fd, out->data + out->len, room, off)
                               : read(fd, out->data + out->len, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;
        off += r;
        out->len += (size_t)r;
        out->data[out->len] = '\0';
    }
}

int file_read_all(int fd, struct buf *out)
{
    return read_to_end(fd, out, true);
}

int file_read_stream(int fd, struct buf *out)
{
    return read_to_end(fd, out, false);
}

/* mkdir of one directory: 0 also when one is there, -ENOTDIR when something else is. */
static int mkdir_one(const char *dir, mode_t mode)
{
    struct stat st;

    if (mkdir(dir, mode) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    /* EEXIST says nothing of what exists: a file there would only fail its first use */
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* mkdir_one, with e (may be NULL) set on failure. */
static int mkdir_one_err(const char *dir, mode_t mode, struct err *e)
{
    int rc = mkdir_one(dir, mode);

    if (rc == -ENOTDIR && e)
        err_set(e, "%s: exists and is not a directory", dir);
    else if (rc < 0 && e)
        err_set(e, "mkdir %s: %s", dir, strerror(-rc));
    return rc;
}

/* mkdir -p of p, which it writes to and restores; "" needs nothing. e may be NULL. */
static int mkdir_all(char *p, mode_t mode, struct err *e)
{
    int rc = 0;

    if (!*p)
        return 0;
    /* each prefix ending before a slash, then the whole directory */
    for (char *s = p + 1; rc == 0 && *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        rc = mkdir_one_err(p, mode, e);
        *s = '/';
    }
    return rc == 0 ? mkdir_one_err(p, mode, e) : rc;
}

int file_mkdir_all(const char *dir, mode_t mode)
{
    return file_mkdir_all_err(dir, mode, NULL);
}

int file_mkdir_all_err(const char *dir, mode_t mode, struct err *e)
{
    char *p = xstrdup(dir);
    int rc = mkdir_all(p, mode, e);

    free(p);
    return rc;
}

int file_mkdir_parents(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    char *last = strrchr(p, '/');
    int rc = 0;

    if (last) { /* "name" alone has no directory to make; "/name" has "" */
        *last = '\0';
        rc = mkdir_all(p, mode, NULL);
    }
    free(p);
    return rc;
}

int file_replace(const char *path, const void *data, size_t len, mode_t mode, unsigned flags,
                 struct err *e)
{
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    const char *step = "create";
    int rc = 0;

    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    step = "write";
    if ((rc = file_write_all(fd, data, len)) < 0)
        goto err_after_create;
    if (fchmod(fd, mode) < 0 || ((flags & FILE_SYNC) && fsync(fd) < 0)) {
        rc = -errno;
        goto err_after_create;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto err_after_create;
    }
    fd = -1;
    step = "rename";
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto err_after_create;
    }
    goto out;
err_after_create:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    if (rc < 0)
        err_set(e, "%s %s: %s", step, path, strerror(-rc));
    free(tmp);
    return rc;
}

int file_write_pid(const char *path, struct err *e)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    int rc = file_replace(path, text, (size_t)n, 0644, 0, NULL);

    if (rc < 0)
        err_set(e, "pid file %s: %s", path, strerror(-rc));
    return rc;
}
