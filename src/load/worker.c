/*
 * Engine and worker threads. Arrivals are dealt round robin: worker w fires the arrivals whose
 * index is w modulo the worker count, each at its scheduled instant on its own loop's timer.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/alloc.h"
#include "lib/url.h"
#include "load/engine_internal.h"
#include "load/template.h"

/* Arrivals due within this much of now fire together, so timer granularity adds no lag. */
#define EARLY_MS 1.0

static const struct load_scenario *pick_scenario(struct load_worker *w)
{
    const struct load_script *s = w->eng->script;
    double x = (double)(load_rand(&w->rng) >> 11) / 9007199254740992.0 * s->total_weight;

    for (size_t i = 0; i < s->n_scenarios; i++) {
        if (x < s->scenarios[i].weight)
            return &s->scenarios[i];
        x -= s->scenarios[i].weight;
    }
    return &s->scenarios[s->n_scenarios - 1];
}

/* Advances to this worker's next arrival (every n-th of the whole schedule). */
static void next_arrival(struct load_worker *w)
{
    while ((w->have_next = load_schedule_next(&w->sched, &w->next_t_ms, &w->next_phase))) {
        if ((w->sched.index - 1) % w->eng->n_workers == w->id)
            return;
    }
    w->sched_done = true;
}

static bool over_max_vusers(struct load_worker *w, size_t phase)
{
    int64_t max = w->eng->script->phases[phase].max_vusers;
    int64_t share;

    if (max < 0)
        return false;
    /* each worker keeps its share of the cap, rounded up */
    share = (max + (int64_t)w->eng->n_workers - 1) / (int64_t)w->eng->n_workers;
    return (int64_t)w->active >= share;
}

static void on_arrivals(uv_timer_t *t)
{
    struct load_worker *w = CONTAINER_OF(t, struct load_worker, arrivals);
    uint64_t now = uv_hrtime();
    double now_ms = (double)(now - w->eng->start_ns) / 1e6;

    while (w->have_next && !w->stopping && w->next_t_ms <= now_ms + EARLY_MS) {
        uint64_t sched = w->eng->start_ns + (uint64_t)(w->next_t_ms * 1e6);

        if (over_max_vusers(w, w->next_phase)) {
            struct load_stats *st = &w->stats;

            uv_mutex_lock(&st->lock);
            struct load_sec *sec = load_stats_at(st, load_sec_index(w->eng, now));

            sec->skipped++;
            load_sec_touch(sec, now);
            uv_mutex_unlock(&st->lock);
        } else {
            load_vu_start(w, pick_scenario(w), sched, false);
        }
        next_arrival(w);
    }
    if (w->have_next && !w->stopping) {
        double wait = w->next_t_ms - now_ms - EARLY_MS;

        uv_timer_start(&w->arrivals, on_arrivals, wait > 0 ? (uint64_t)ceil(wait) : 0, 0);
        return;
    }
}

/* The loop ends by itself once no VU, connection or pending arrival is left. */
void load_worker_vu_ended(struct load_worker *w)
{
    w->active--;
}

static void on_wake(uv_async_t *a)
{
    struct load_worker *w = CONTAINER_OF(a, struct load_worker, wake);

    if (!atomic_load(&w->eng->stop) || w->stopping)
        return;
    w->stopping = true;
    uv_timer_stop(&w->arrivals);
    struct load_vu *vu;
    LIST_FOR_EACH(vu, &w->vus, link) /* each abort unlinks its VU only */
        load_vu_abort(vu);
}

static void worker_run(void *arg)
{
    struct load_worker *w = arg;
    struct load_engine *eng = w->eng;

    if (eng->pool > 0) {
        /* this worker's share of the pool connections, all created at once */
        int n = eng->pool / (int)eng->n_workers + ((int)w->id < eng->pool % (int)eng->n_workers);

        w->sched_done = true;
        for (int i = 0; i < n && !w->stopping; i++)
            load_vu_start(w, &eng->script->scenarios[0], eng->start_ns, true);
    } else {
        next_arrival(w);
        on_arrivals(&w->arrivals);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    load_proc_free(w->proc);
    w->proc = NULL;
    if (atomic_fetch_sub(&eng->running, 1) == 1)
        uv_async_send(&eng->done_async);
}

static void on_done_async(uv_async_t *a)
{
    struct load_engine *eng = CONTAINER_OF(a, struct load_engine, done_async);

    uv_close((uv_handle_t *)a, NULL);
    eng->on_done(eng->data);
}

static int resolve_target(struct load_engine *eng, struct err *e)
{
    struct load_dest *d = &eng->target.dest;
    struct url_parts u;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    int rc;

    if (url_split(eng->script->target, &u) < 0)
        return err_set(e, "target %s: not an http(s):// URL", eng->script->target);
    d->https = u.https;
    snprintf(d->host, sizeof(d->host), "%s", u.host);
    eng->target.port = u.port;
    snprintf(d->host_header, sizeof(d->host_header),
             u.port == (u.https ? 443 : 80) ? "%s" : (strchr(u.host, ':') ? "[%s]:%d" : "%s:%d"),
             u.host, u.port);
    snprintf(port, sizeof(port), "%d", u.port);
    url_parts_free(&u);
    rc = getaddrinfo(d->host, port, &hints, &res);
    if (rc != 0)
        return err_set(e, "target %s: %s", eng->script->target, gai_strerror(rc));
    memcpy(&d->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* One client context for every https connection: the system's CAs unless insecure. */
static int make_tls(struct load_engine *eng, bool insecure, struct err *e)
{
    struct tls_ctx_config cfg = {.server = false, .verify_peer = !insecure};

    return tls_ctx_new(&cfg, &eng->tls, e);
}

/* Function steps naming what the processor lacks are marked; true when some are. */
static bool mark_missing(struct load_step *steps, size_t n, const struct load_proc *p)
{
    bool any = false;

    for (size_t i = 0; i < n; i++) {
        any |= mark_missing(steps[i].steps, steps[i].n_steps, p); /* a loop's or parallel's */
        if (steps[i].kind == LOAD_STEP_REQUEST && steps[i].req.if_true)
            steps[i].req.if_true_fn = load_proc_has(p, steps[i].req.if_true);
        if (steps[i].kind == LOAD_STEP_FUNCTION && !load_proc_has(p, steps[i].fn)) {
            steps[i].fn_missing = true;
            any = true;
        }
    }
    return any;
}

/* A whileTrue naming what the processor lacks: the first, or NULL (Artillery would loop
 * forever). */
static const struct load_step *missing_while(const struct load_step *steps, size_t n,
                                             const struct load_proc *p)
{
    const struct load_step *bad = NULL;

    for (size_t i = 0; i < n && !bad; i++) {
        if (steps[i].while_fn && !load_proc_has(p, steps[i].while_fn))
            return &steps[i];
        bad = missing_while(steps[i].steps, steps[i].n_steps, p);
    }
    return bad;
}

static void warn_missing_hooks(const struct load_step *steps, size_t n, const struct load_proc *p)
{
    for (size_t i = 0; i < n; i++) {
        const struct load_request *r = &steps[i].req;

        warn_missing_hooks(steps[i].steps, steps[i].n_steps, p); /* a loop's or parallel's */
        for (size_t k = 0; steps[i].kind == LOAD_STEP_REQUEST && k < r->before.n + r->after.n;
             k++) {
            const char *fn = k < r->before.n ? r->before.names[k] : r->after.names[k - r->before.n];

            if (!load_proc_has(p, fn))
                fprintf(stderr, "WARNING: custom function %s could not be found\n", fn);
        }
    }
}

/* One helper per worker loop, each loaded before the run starts. */
static int start_processors(struct load_engine *eng, struct err *e)
{
    struct load_script *s = eng->script;
    struct load_scenario *sc;

    for (size_t i = 0; i < eng->n_workers; i++) {
        struct load_worker *w = &eng->workers[i];
        struct load_proc_opts o = {s->processor, load_hook_metrics, w};
        int rc = load_proc_start(&w->loop, &o, &w->proc, e);

        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; (sc = load_script_flow_at(s, i)) != NULL; i++) {
        const struct load_step *bad = missing_while(sc->steps, sc->n_steps, eng->workers[0].proc);

        if (bad)
            return err_set(e, "%s:%d: loop.whileTrue: %s does not export %s", s->path, bad->line,
                           s->processor, bad->while_fn);
        if (mark_missing(sc->steps, sc->n_steps, eng->workers[0].proc))
            fprintf(stderr,
                    "WARNING: scenario \"%s\" calls a function %s does not export "
                    "(counted as errors.Undefined function)\n",
                    sc->name, s->processor);
        warn_missing_hooks(sc->steps, sc->n_steps, eng->workers[0].proc);
    }
    return 0;
}

static void worker_init(struct load_engine *eng, struct load_worker *w, size_t id)
{
    w->eng = eng;
    w->id = id;
    list_init(&w->vus);
    w->rng =
        0x853c49e6748fea9bull ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull) ^ (uint64_t)time(NULL);
    uv_loop_init(&w->loop);
    uv_timer_init(&w->loop, &w->arrivals);
    uv_async_init(&w->loop, &w->wake, on_wake);
    uv_unref((uv_handle_t *)&w->wake);
    load_stats_init(&w->stats);
    /* config.http.pool: one agent of that many connections for the worker's users (pool mode
     * makes its own connections, one per user) */
    load_agent_init(&w->agent, eng->pool > 0 || eng->script->http_pool < 0 ? 0
                               : eng->script->http_pool > 0                ? eng->script->http_pool
                                                                           : INT_MAX);
    load_schedule_init(&w->sched, eng->script->phases, eng->script->n_phases);
}

static void worker_destroy(struct load_worker *w)
{
    load_proc_free(w->proc);
    w->proc = NULL;
    load_agent_close_idle(&w->agent);
    uv_close((uv_handle_t *)&w->arrivals, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    uv_loop_close(&w->loop);
    load_stats_destroy(&w->stats);
    json_decref(w->hook_vars);
    w->hook_vars = NULL;
    FREE_NULL(w->hook_error);
}

static void workers_free(struct load_engine *eng)
{
    for (size_t i = 0; i < eng->n_workers; i++)
        worker_destroy(&eng->workers[i]);
    free(eng->workers);
}

struct load_engine *load_engine_new(struct load_script *script, const struct load_engine_opts *opts,
                                    struct err *e)
{
    struct load_engine *eng = xcalloc(1, sizeof(*eng));

    eng->script = script;
    eng->n_workers = opts->workers > 0 ? (size_t)opts->workers : 1;
    eng->pool = opts->pool;
    eng->on_done = opts->on_done;
    eng->data = opts->data;
    if (resolve_target(eng, e) < 0 ||
        make_tls(eng, opts->insecure || script->tls_insecure, e) < 0) {
        free(eng);
        return NULL;
    }
    load_vu_prepare_static(script, &eng->target);
    eng->workers = xcalloc(eng->n_workers, sizeof(*eng->workers));
    for (size_t i = 0; i < eng->n_workers; i++)
        worker_init(eng, &eng->workers[i], i);
    if (script->processor && start_processors(eng, e) < 0) {
        workers_free(eng);
        tls_ctx_free(eng->tls);
        free(eng);
        return NULL;
    }
    eng->main_loop = opts->main_loop;
    return eng;
}

/* The run's clock starts now (the before flow has one of its own, reset by the run's). */
static void clock_start(struct load_engine *eng)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    eng->start_epoch_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    eng->start_subsec_ns = (uint64_t)(tv.tv_usec / 1000) * 1000000u;
    eng->start_ns = uv_hrtime();
}

/*
 * Runs sc once, by one user on a loop of its own on this thread, as Artillery runs a script's
 * before and after flows: its measurements are dropped with the loop. Returns 0 with *vars (when
 * not NULL) the user's variables at its end, or -EIO with e naming what failed the user.
 */
static int run_hook(struct load_engine *eng, const struct load_scenario *sc, json_t **vars,
                    struct err *e)
{
    struct load_worker w = {0};
    int rc = 0;

    worker_init(eng, &w, 0);
    w.hook = true;
    if (eng->script->processor) {
        struct load_proc_opts o = {eng->script->processor, load_hook_metrics, &w};

        if ((rc = load_proc_start(&w.loop, &o, &w.proc, e)) < 0)
            goto out;
    }
    load_vu_start(&w, sc, uv_hrtime(), false);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    if (w.hook_failed) {
        err_setf(e, "%s: errors.%s", sc->name, w.hook_error ? w.hook_error : "unknown");
        rc = -EIO;
    } else if (vars) {
        *vars = json_incref(w.hook_vars);
    }
out:
    worker_destroy(&w);
    return rc;
}

int load_engine_before(struct load_engine *eng, struct err *e)
{
    if (!eng->script->before)
        return 0;
    clock_start(eng);
    return run_hook(eng, eng->script->before, &eng->context_vars, e);
}

int load_engine_after(struct load_engine *eng, struct err *e)
{
    return eng->script->after ? run_hook(eng, eng->script->after, NULL, e) : 0;
}

void load_engine_start(struct load_engine *eng)
{
    clock_start(eng);
    eng->pool_deadline_ns =
        eng->start_ns + (uint64_t)load_script_duration_ms(eng->script) * 1000000u;
    uv_async_init(eng->main_loop, &eng->done_async, on_done_async);
    atomic_store(&eng->running, eng->n_workers);
    for (size_t i = 0; i < eng->n_workers; i++)
        if (uv_thread_create(&eng->workers[i].thread, worker_run, &eng->workers[i]) != 0)
            abort();
}

void load_engine_stop(struct load_engine *eng)
{
    atomic_store(&eng->stop, true);
    for (size_t i = 0; i < eng->n_workers; i++)
        uv_async_send(&eng->workers[i].wake);
}

void load_engine_join(struct load_engine *eng)
{
    for (size_t i = 0; i < eng->n_workers; i++)
        uv_thread_join(&eng->workers[i].thread);
}

void load_engine_free(struct load_engine *eng)
{
    if (!eng)
        return;
    workers_free(eng);
    tls_ctx_free(eng->tls);
    json_decref(eng->context_vars);
    free(eng);
}

uint64_t load_engine_start_ns(const struct load_engine *eng)
{
    return eng->start_ns;
}

int64_t load_engine_start_epoch_ms(const struct load_engine *eng)
{
    return eng->start_epoch_ms;
}

size_t load_engine_workers(const struct load_engine *eng)
{
    return eng->n_workers;
}

struct load_stats *load_engine_stats(struct load_engine *eng, size_t i)
{
    return &eng->workers[i].stats;
}
