/*
 * Size-based log rotation. Children hold their log files open with O_APPEND, so the daemon
 * rotates by copy-truncate: file.4 -> file.5, ..., file -> file.1 (copied), then file is
 * truncated and the writers carry on at offset 0. Bytes written between the copy and the
 * truncate are lost, as with logrotate's copytruncate. When the copy fails (a full disk) the
 * file is truncated anyway: a log must not keep the disk full. The file work runs on libuv's
 * threadpool.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/log.h"
#include "pm/daemon.h"

struct rotate_file {
    char *path;
    int64_t max;
};

struct rotate_job {
    uv_work_t work;
    struct pm_daemon *d;
    struct rotate_file *files;
    size_t n;
};

static int copy_file(const char *from, const char *to)
{
    char chunk[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = in < 0 || out < 0 ? -errno : 0;
    ssize_t n;

    while (rc == 0 && (n = read(in, chunk, sizeof(chunk))) != 0) {
        if (n < 0)
            rc = -errno;
        /* A short write (the disk filled up) sets no errno: ask again for the reason. */
        for (ssize_t done = 0, w; rc == 0 && done < n; done += w) {
            w = write(out, chunk + done, (size_t)(n - done));
            if (w <= 0)
                rc = w < 0 ? -errno : -EIO;
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

static void rotate_one(const struct rotate_file *f)
{
    char older[PATH_MAX];
    char newer[PATH_MAX];
    char copy[PATH_MAX];
    struct stat st;
    int n = snprintf(copy, sizeof(copy), "%s.tmp", f->path);
    int rc;

    if (n < 0 || (size_t)n >= sizeof(copy) || stat(f->path, &st) != 0 || st.st_size <= f->max)
        return;
    if (pm_rotate_name(f->path, PM_LOG_KEEP, older, sizeof(older)) != 0)
        return;
    /* Copy before shifting: when the copy fails (a full disk), the older rotations must stay
     * where they are. The log itself is truncated then: it is what filled the disk, and copying
     * it needs the very space it holds, so keeping it would keep the disk full for good. */
    rc = copy_file(f->path, copy);
    if (rc != 0) {
        unlink(copy);
        log_error("rotate %s: cannot copy it (%s): truncated it to free the disk, its %lld bytes "
                  "are lost",
                  f->path, strerror(-rc), (long long)st.st_size);
        if (truncate(f->path, 0) != 0)
            log_error("rotate %s: truncate: %s", f->path, strerror(errno));
        return;
    }
    unlink(older);
    for (int k = PM_LOG_KEEP - 1; k >= 1; k--) {
        if (pm_rotate_name(f->path, k, newer, sizeof(newer)) != 0)
            return;
        rename(newer, older);
        memcpy(older, newer, sizeof(older));
    }
    if (rename(copy, older) != 0 || truncate(f->path, 0) != 0)
        log_warn("rotate %s: %s", f->path, strerror(errno));
}

static void rotate_work(uv_work_t *w)
{
    struct rotate_job *j = CONTAINER_OF(w, struct rotate_job, work);

    for (size_t k = 0; k < j->n; k++)
        rotate_one(&j->files[k]);
}

static void rotate_done(uv_work_t *w, int status)
{
    struct rotate_job *j = CONTAINER_OF(w, struct rotate_job, work);

    j->d->rotating = false;
    for (size_t k = 0; k < j->n; k++)
        free(j->files[k].path);
    free(j->files);
    free(j);
}

static void job_add(struct rotate_job *j, char *path, int64_t max)
{
    j->files = xrealloc(j->files, (j->n + 1) * sizeof(*j->files));
    j->files[j->n++] = (struct rotate_file){path, max};
}

void pm_rotate_start(struct pm_daemon *d)
{
    struct rotate_job *j;

    if (d->rotating || d->quitting)
        return;
    j = xcalloc(1, sizeof(*j));
    j->d = d;
    for (size_t k = 0; k < d->napps; k++) {
        struct pm_app *a = d->apps[k];
        if (a->spec.max_log_size <= 0)
            continue;
        for (size_t i = 0; i < a->ninsts; i++) {
            job_add(j, pm_inst_log_path(a->insts[i], "out"), a->spec.max_log_size);
            job_add(j, pm_inst_log_path(a->insts[i], "err"), a->spec.max_log_size);
        }
    }
    if (j->n == 0 || uv_queue_work(d->loop, &j->work, rotate_work, rotate_done) != 0) {
        rotate_done(&j->work, 0);
        return;
    }
    d->rotating = true;
}
