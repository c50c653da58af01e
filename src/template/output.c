/*
 * A template's output: the atomic write (on the thread pool, so the loop never waits on the
 * disk) and the command after a write that changed the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/log.h"
#include "template/runner_internal.h"

#define OUTPUT_MAX_EXISTING (256u << 20) /* a larger file on disk is taken as different */

/* What a write did, filled on the pool thread. */
struct write_result {
    bool changed;
    int err;        /* 0 or a negative errno */
    struct err why; /* "rename DST: ..." when err */
};

static struct write_result *result_of(struct tmpl_job *j)
{
    return (struct write_result *)j->work.data;
}

/* True when path holds exactly content. */
static bool same_content(const char *path, const char *content, size_t len, mode_t *mode)
{
    struct stat st;
    bool same = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    if (fstat(fd, &st) == 0) {
        *mode = st.st_mode & 07777;
        if ((size_t)st.st_size == len && len <= OUTPUT_MAX_EXISTING) {
            char *old = xmalloc(len + 1);
            size_t got = 0;
            ssize_t n;
            while (got < len && (n = read(fd, old + got, len - got)) > 0)
                got += (size_t)n;
            same = got == len && memcmp(old, content, len) == 0;
            free(old);
        }
    }
    close(fd);
    return same;
}

static void write_work(uv_work_t *req)
{
    struct tmpl_job *j = CONTAINER_OF(req, struct tmpl_job, work);
    struct write_result *res = result_of(j);
    size_t len = strlen(j->write_content);
    mode_t mode = 0644;

    for (size_t i = 0; i < j->nwrite_files; i++)
        if ((res->err = tmpl_file_write_apply(&j->write_files[i], &res->why)) < 0)
            return;
    if (same_content(j->spec->dst, j->write_content, len, &mode))
        return;
    res->err = file_replace(j->spec->dst, j->write_content, len, mode, FILE_SYNC, &res->why);
    /* consul-template makes the directories above the destination (create_dest_dirs) */
    if (res->err == -ENOENT && file_mkdir_parents(j->spec->dst, 0755) == 0)
        res->err = file_replace(j->spec->dst, j->write_content, len, mode, FILE_SYNC, &res->why);
    res->changed = res->err == 0;
}

static void run_command(struct tmpl_job *j);

static void after_write(uv_work_t *req, int status)
{
    struct tmpl_job *j = CONTAINER_OF(req, struct tmpl_job, work);
    struct write_result *res = result_of(j);
    bool changed = res->changed, ok = res->err == 0;

    if (!ok)
        log_error("template %s: %s", j->spec->src, res->why.msg);
    else if (changed)
        log_info("template %s: rendered %s", j->spec->src, j->spec->dst);
    FREE_NULL(j->write_content);
    tmpl_file_writes_free(j->write_files, j->nwrite_files);
    j->write_files = NULL;
    j->nwrite_files = 0;
    FREE_NULL(j->work.data);
    j->writing = false;
    if (j->r->stopping)
        return;
    if (j->next_content) {
        char *next = j->next_content;
        struct tmpl_file_write *files = j->next_files;
        size_t nfiles = j->nnext_files;
        j->next_content = NULL;
        j->next_files = NULL;
        j->nnext_files = 0;
        if (changed && j->spec->cmd)
            j->cmd_again = true; /* run it after the newer content is on disk */
        tmpl_job_output(j, next, files, nfiles);
        return;
    }
    if ((changed || j->cmd_again) && j->spec->cmd && ok) {
        j->cmd_again = false;
        run_command(j);
        return;
    }
    if (tmpl_job_idle(j))
        tmpl_runner_job_done(j->r, j, ok);
}

/* -dry: writeToFile's files are printed too, each time a render would write them. */
static void print_dry(struct tmpl_job *j, char *content, struct tmpl_file_write *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(stdout, "> %s\n", files[i].path);
        fwrite(files[i].content, 1, files[i].len, stdout);
    }
    tmpl_file_writes_free(files, n);
    if (!j->printed || strcmp(j->printed, content) != 0) {
        fprintf(stdout, "> %s\n%s", j->spec->dst, content);
        fflush(stdout);
    }
    free(j->printed);
    j->printed = content;
    tmpl_runner_job_done(j->r, j, true);
}

void tmpl_job_output(struct tmpl_job *j, char *content, struct tmpl_file_write *files, size_t n)
{
    if (j->r->cfg->dry) {
        print_dry(j, content, files, n);
        return;
    }
    if (j->writing) {
        /* the newer render supersedes the one waiting, writeToFile's files included */
        free(j->next_content);
        tmpl_file_writes_free(j->next_files, j->nnext_files);
        j->next_content = content;
        j->next_files = files;
        j->nnext_files = n;
        return;
    }
    j->writing = true;
    j->write_content = content;
    j->write_files = files;
    j->nwrite_files = n;
    j->work.data = xcalloc(1, sizeof(struct write_result));
    uv_queue_work(&j->r->loop, &j->work, write_work, after_write);
}

bool tmpl_job_idle(const struct tmpl_job *j)
{
    return !j->writing && !j->cmd_running && !j->next_content;
}

/* ---- the command ------------------------------------------------------------------------- */

static void on_proc_closed(uv_handle_t *h)
{
    struct tmpl_job *j = h->data;

    j->cmd_running = false;
    if (j->r->stopping)
        return;
    if (j->cmd_again && !j->writing) {
        j->cmd_again = false;
        run_command(j);
    } else if (tmpl_job_idle(j)) {
        tmpl_runner_job_done(j->r, j, j->r->status == 0);
    }
}

static void on_cmd_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct tmpl_job *j = p->data;

    uv_timer_stop(&j->cmd_timer);
    if (j->cmd_timed_out)
        log_error("template %s: command \"%s\" timed out: killed", j->spec->src, j->spec->cmd);
    else if (term_signal)
        log_error("template %s: command \"%s\" failed: killed by signal %d", j->spec->src,
                  j->spec->cmd, term_signal);
    else if (exit_status)
        log_error("template %s: command \"%s\" failed: exit status %lld", j->spec->src,
                  j->spec->cmd, (long long)exit_status);
    else
        log_info("template %s: command \"%s\" done", j->spec->src, j->spec->cmd);
    if ((j->cmd_timed_out || term_signal || exit_status) && j->r->cfg->once)
        j->r->status = 1;
    uv_close((uv_handle_t *)p, on_proc_closed);
}

static void on_cmd_timeout(uv_timer_t *t)
{
    struct tmpl_job *j = t->data;

    j->cmd_timed_out = true;
    /* the command's group (see run_command): what sh started dies with it */
    if (kill(-j->proc.pid, SIGKILL) != 0)
        uv_process_kill(&j->proc, SIGKILL);
}

static void run_command(struct tmpl_job *j)
{
    char *args[] = {"sh", "-c", j->spec->cmd, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t opt = {
        .file = "/bin/sh",
        .args = args,
        .exit_cb = on_cmd_exit,
        .stdio_count = 3,
        .stdio = stdio,
        /* its own process group, so that a timeout kills what the command started too */
        .flags = UV_PROCESS_DETACHED,
    };

    if (j->cmd_running) {
        j->cmd_again = true;
        return;
    }
    j->proc.data = j;
    j->cmd_timed_out = false;
    int rc = uv_spawn(&j->r->loop, &j->proc, &opt);
    if (rc < 0) {
        log_error("template %s: command \"%s\": %s", j->spec->src, j->spec->cmd, uv_strerror(rc));
        if (j->r->cfg->once)
            j->r->status = 1;
        /* a failed spawn still holds an initialised handle */
        j->cmd_running = true;
        uv_close((uv_handle_t *)&j->proc, on_proc_closed);
        return;
    }
    j->cmd_running = true;
    log_info("template %s: running \"%s\"", j->spec->src, j->spec->cmd);
    uint64_t ms = (uint64_t)(j->r->cfg->cmd_timeout_ns / 1000000);
    uv_timer_start(&j->cmd_timer, on_cmd_timeout, ms ? ms : 1, 0);
}
