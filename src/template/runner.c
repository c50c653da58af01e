/*
 * The runner's loop: render, start the watches the render asked for, re-render on new data
 * after quiescence, hand complete renders to output.c; signals and SIGHUP reloads.
 */
#include "template/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "template/runner_internal.h"

#define TEMPLATE_MAX_SIZE (16u << 20)

int tmpl_spec_parse(const char *s, struct tmpl_spec *out, struct err *e)
{
    const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    size_t dst_len = c1 ? (c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)) : 0;

    *out = (struct tmpl_spec){NULL, NULL, NULL};
    if (!c1 || c1 == s || dst_len == 0)
        return err_set(e, "invalid template \"%s\": expected SOURCE:DESTINATION[:COMMAND]", s);
    out->src = xstrndup(s, (size_t)(c1 - s));
    out->dst = xstrndup(c1 + 1, dst_len);
    if (c2 && c2[1])
        out->cmd = xstrdup(c2 + 1);
    return 0;
}

void tmpl_spec_clear(struct tmpl_spec *s)
{
    FREE_NULL(s->src);
    FREE_NULL(s->dst);
    FREE_NULL(s->cmd);
}

/* Reads a whole template file (bounded). 0 or -errno with e set. */
static int read_source(const char *path, struct buf *out, struct err *e)
{
    char chunk[8192];
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    if (!f) {
        rc = -errno;
        err_set(e, "%s: %s", path, strerror(-rc));
        return rc;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && out->len <= TEMPLATE_MAX_SIZE)
        buf_append(out, chunk, n);
    if (ferror(f))
        rc = err_set(e, "%s: read error", path);
    else if (out->len > TEMPLATE_MAX_SIZE)
        rc = err_set(e, "%s: larger than %u bytes", path, TEMPLATE_MAX_SIZE);
    fclose(f);
    return rc;
}

static int parse_text(const struct tmpl_spec *spec, const struct buf *text, struct tmpl **out,
                      struct err *e)
{
    return tmpl_parse(spec->src, text->data ? text->data : "", text->len, out, e);
}

/* ---- watches ----------------------------------------------------------------------------- */

static void job_changed(struct tmpl_job *j);

static bool job_uses(const struct tmpl_job *j, const char *id)
{
    for (size_t i = 0; i < j->used.n; i++)
        if (strcmp(j->used.deps[i].id, id) == 0)
            return true;
    return false;
}

static void runner_stop(struct tmpl_runner *r);

static void on_data(void *data, const struct tmpl_dep *dep, json_t *value, const char *error)
{
    struct tmpl_runner *r = data;

    if (error) {
        /* a file that cannot be read: consul-template stops with the error, and so do we */
        log_error("%s", error);
        r->status = 1;
        runner_stop(r);
        return;
    }
    json_decref(smap_put(&r->store, dep->id, json_incref(value)));
    log_debug("new data for %s", dep->id);
    for (size_t i = 0; i < r->njobs; i++)
        if (job_uses(&r->jobs[i], dep->id))
            job_changed(&r->jobs[i]);
}

/* Starts the watches renders asked for; stops (and forgets the data of) the unused ones. */
static void sync_watches(struct tmpl_runner *r)
{
    for (size_t i = 0; i < r->njobs; i++) {
        const struct tmpl_used *u = &r->jobs[i].used;
        for (size_t k = 0; k < u->n; k++)
            if (!smap_get(&r->watches, u->deps[k].id))
                smap_put(&r->watches, u->deps[k].id,
                         tmpl_watch_start(&r->loop, r->client, &r->cfg->registry, &u->deps[k],
                                          on_data, r));
    }
    for (size_t w = 0; w < r->watches.n;) {
        const char *id = r->watches.v[w].key;
        bool used = false;
        for (size_t i = 0; i < r->njobs && !used; i++)
            used = job_uses(&r->jobs[i], id);
        if (used) {
            w++;
            continue;
        }
        json_decref(smap_del(&r->store, id));
        tmpl_watch_free(smap_del_at(&r->watches, w));
    }
}

/* ---- rendering --------------------------------------------------------------------------- */

static void job_render(struct tmpl_job *j)
{
    struct tmpl_runner *r = j->r;
    struct buf out = BUF_INIT;
    struct tmpl_used used;
    struct err e;

    j->deadline_ms = 0;
    int rc = tmpl_render(j->t, &r->store, &out, &used, &e);
    tmpl_used_free(&j->used);
    j->used = used;
    sync_watches(r);
    if (rc < 0 && used.missing) {
        /* the error may come from a placeholder (parseInt of a key not fetched yet) */
        log_debug("template %s: %s (waiting for %zu dependencies)", j->spec->src, e.msg,
                  used.missing);
        buf_free(&out);
        return;
    }
    if (rc < 0) {
        log_error("%s", e.msg);
        buf_free(&out);
        if (r->cfg->once)
            tmpl_runner_job_done(r, j, false);
        return;
    }
    if (used.missing) {
        log_debug("template %s: waiting for %zu dependenc%s", j->spec->src, used.missing,
                  used.missing == 1 ? "y" : "ies");
        buf_free(&out);
        return;
    }
    j->rendered = true;
    /* writeToFile's files: only a complete render's, taken from what it recorded */
    struct tmpl_file_write *files = j->used.writes;
    size_t nfiles = j->used.nwrites;
    j->used.writes = NULL;
    j->used.nwrites = 0;
    tmpl_job_output(j, out.data ? buf_steal(&out) : xstrdup(""), files, nfiles);
}

static void on_wait_timer(uv_timer_t *t)
{
    job_render(t->data);
}

/* New data for the job: render at once, or after quiescence once it has rendered. */
static void job_changed(struct tmpl_job *j)
{
    const struct tmpl_runner_config *cfg = j->r->cfg;
    uint64_t now = uv_now(&j->r->loop), min = (uint64_t)(cfg->wait_min_ns / 1000000);
    uint64_t max = (uint64_t)(cfg->wait_max_ns / 1000000), delay = 0;

    if (j->done || j->r->stopping)
        return;
    if (j->rendered && min && !cfg->once) {
        if (!j->deadline_ms)
            j->deadline_ms = now + (max > min ? max : min);
        delay = j->deadline_ms - now < min ? j->deadline_ms - now : min;
    }
    uv_timer_start(&j->wait_timer, on_wait_timer, delay, 0);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void runner_stop(struct tmpl_runner *r)
{
    if (r->stopping)
        return;
    r->stopping = true;
    smap_foreach(&r->watches, ent) tmpl_watch_free(ent->val);
    smap_free(&r->watches);
    http_client_free(r->client);
    r->client = NULL;
    for (size_t i = 0; i < r->njobs; i++) {
        struct tmpl_job *j = &r->jobs[i];
        uv_close((uv_handle_t *)&j->wait_timer, NULL);
        uv_close((uv_handle_t *)&j->cmd_timer, NULL);
        if (j->cmd_running && !uv_is_closing((uv_handle_t *)&j->proc))
            uv_close((uv_handle_t *)&j->proc, NULL);
    }
    uv_close((uv_handle_t *)&r->sig_int, NULL);
    uv_close((uv_handle_t *)&r->sig_term, NULL);
    uv_close((uv_handle_t *)&r->sig_hup, NULL);
}

void tmpl_runner_job_done(struct tmpl_runner *r, struct tmpl_job *j, bool ok)
{
    if (!r->cfg->once)
        return;
    if (!ok)
        r->status = 1;
    j->done = true;
    for (size_t i = 0; i < r->njobs; i++)
        if (!r->jobs[i].done || !tmpl_job_idle(&r->jobs[i]))
            return;
    runner_stop(r);
}

/* SIGHUP: the sources are read on the pool, parsed on the loop, swapped in only if all parse. */
struct reload {
    struct buf *texts;
    int *rcs;
    struct err *errs;
};

static void reload_work(uv_work_t *req)
{
    struct tmpl_runner *r = CONTAINER_OF(req, struct tmpl_runner, reload_work);
    struct reload *rl = req->data;

    for (size_t i = 0; i < r->njobs; i++)
        rl->rcs[i] = read_source(r->jobs[i].spec->src, &rl->texts[i], &rl->errs[i]);
}

static void after_reload(uv_work_t *req, int status)
{
    struct tmpl_runner *r = CONTAINER_OF(req, struct tmpl_runner, reload_work);
    struct reload *rl = req->data;
    struct tmpl **parsed = xcalloc(r->njobs, sizeof(*parsed));
    bool ok = true;

    for (size_t i = 0; i < r->njobs && ok; i++) {
        ok = rl->rcs[i] == 0 &&
             parse_text(r->jobs[i].spec, &rl->texts[i], &parsed[i], &rl->errs[i]) == 0;
        if (!ok)
            log_error("reload: %s; keeping the templates in use", rl->errs[i].msg);
    }
    for (size_t i = 0; i < r->njobs; i++) {
        if (ok && !r->stopping) {
            tmpl_free(r->jobs[i].t);
            r->jobs[i].t = parsed[i];
            r->jobs[i].rendered = false;
            job_changed(&r->jobs[i]);
        } else {
            tmpl_free(parsed[i]);
        }
        buf_free(&rl->texts[i]);
    }
    if (ok)
        log_info("reload: %zu template%s re-read", r->njobs, r->njobs == 1 ? "" : "s");
    free(parsed);
    free(rl->texts);
    free(rl->rcs);
    free(rl->errs);
    free(rl);
    r->reloading = false;
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct tmpl_runner *r = s->data;

    if (signum == SIGHUP) {
        if (r->reloading || r->stopping)
            return;
        struct reload *rl = xcalloc(1, sizeof(*rl));
        rl->texts = xcalloc(r->njobs, sizeof(*rl->texts));
        rl->rcs = xcalloc(r->njobs, sizeof(*rl->rcs));
        rl->errs = xcalloc(r->njobs, sizeof(*rl->errs));
        r->reload_work.data = rl;
        r->reloading = true;
        uv_queue_work(&r->loop, &r->reload_work, reload_work, after_reload);
        return;
    }
    log_info("caught %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    runner_stop(r);
}

/* Reads and parses every template before anything starts. */
static int load_all(struct tmpl_runner *r, struct err *e)
{
    for (size_t i = 0; i < r->njobs; i++) {
        struct buf text = BUF_INIT;
        int rc = read_source(r->jobs[i].spec->src, &text, e);
        if (rc == 0)
            rc = parse_text(r->jobs[i].spec, &text, &r->jobs[i].t, e);
        buf_free(&text);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void runner_free(struct tmpl_runner *r)
{
    smap_foreach(&r->store, ent) json_decref(ent->val);
    smap_free(&r->store);
    for (size_t i = 0; i < r->njobs; i++) {
        struct tmpl_job *j = &r->jobs[i];
        tmpl_free(j->t);
        tmpl_used_free(&j->used);
        free(j->next_content);
        tmpl_file_writes_free(j->next_files, j->nnext_files);
        free(j->printed);
    }
    free(r->jobs);
}

int tmpl_runner_run(const struct tmpl_runner_config *cfg, struct err *e)
{
    struct tmpl_runner *r = xcalloc(1, sizeof(*r));
    int rc;

    r->cfg = cfg;
    r->njobs = cfg->nspecs;
    r->jobs = xcalloc(r->njobs, sizeof(*r->jobs));
    for (size_t i = 0; i < r->njobs; i++) {
        r->jobs[i].r = r;
        r->jobs[i].spec = &cfg->specs[i];
    }
    if ((rc = load_all(r, e)) < 0)
        goto err_after_alloc;
    uv_loop_init(&r->loop);
    r->client = http_client_new(&r->loop);
    uv_signal_t *sigs[] = {&r->sig_int, &r->sig_term, &r->sig_hup};
    int signums[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++) {
        uv_signal_init(&r->loop, sigs[i]);
        sigs[i]->data = r;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    for (size_t i = 0; i < r->njobs; i++) {
        struct tmpl_job *j = &r->jobs[i];
        uv_timer_init(&r->loop, &j->wait_timer);
        uv_timer_init(&r->loop, &j->cmd_timer);
        j->wait_timer.data = j->cmd_timer.data = j;
        job_changed(j);
    }
    log_info("rendering %zu template%s from %s%s", r->njobs, r->njobs == 1 ? "" : "s",
             cfg->registry.addr, cfg->once ? " (once)" : "");
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    rc = r->status;
    runner_free(r);
    free(r);
    return rc;
err_after_alloc:
    runner_free(r);
    free(r);
    return rc;
}
