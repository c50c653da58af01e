/*
 * A virtual user: its life (created with the script's variables, a payload row and what the
 * before flow left; ended completed or failed) and the walk of its scenario's flow: loops,
 * ifTrue, think, log, function steps and parallel steps. A request step is an exchange
 * (exchange.c), which calls back when it is over; the counts go through record.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/uuid.h"
#include "load/engine_internal.h"
#include "load/filtrex.h"
#include "load/template.h"

static void vu_next(struct load_vu *vu);
static void vu_end(struct load_vu *vu, bool failed);

/* A request step or a hook's call is over: the flow goes on, or the user fails. */
static void step_done(struct load_vu *vu, bool failed)
{
    if (failed)
        vu_end(vu, true);
    else
        vu_next(vu);
}

/* A processor call made by the flow answered; false when its error ended the user. */
static bool flow_reply(struct load_vu *vu, const json_t *reply)
{
    if (load_hook_reply(vu, reply))
        return true;
    vu_end(vu, true);
    return false;
}

/* The VU's timer, when no request is in flight: a think time over, a parallel step's branch to
 * start, or (pool mode) the flow to start over. */
static void on_timer(uv_timer_t *t)
{
    struct load_vu *vu = CONTAINER_OF(t, struct load_vu, timer);

    /* the next request's response time starts now, not at the last answer */
    vu->ready_ns = uv_hrtime();
    vu_next(vu);
}

/* ---- processor functions ------------------------------------------------------------------ */

static void on_function_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (flow_reply(vu, reply))
        vu_next(vu);
}

/* A function step; false when it had nothing to call (the processor lacks it). */
static bool run_function(struct load_vu *vu, const struct load_step *st)
{
    char err[300];

    if (st->fn_missing) { /* Artillery counts it and goes on */
        snprintf(err, sizeof(err), "Undefined function \"%s\"", st->fn);
        load_record_error(vu, err);
        return false;
    }
    vu->call = load_proc_call(vu->w->proc, load_hook_msg(vu, "function", json_pack("[s]", st->fn)),
                              on_function_reply, vu);
    return true;
}

/* ---- flow -------------------------------------------------------------------------------- */

static void run_log(struct load_vu *vu, const char *tmpl)
{
    struct buf b = BUF_INIT;

    load_tmpl_render(&b, tmpl, vu->vars, &vu->w->rng);
    fprintf(stdout, "%s\n", b.data ? b.data : "");
    buf_free(&b);
}

static void frame_pop(struct load_vu *vu)
{
    struct load_frame *f = &vu->stack[--vu->depth];

    json_decref(f->over);
    f->over = NULL;
}

static void frames_clear(struct load_vu *vu)
{
    while (vu->depth > 0)
        frame_pop(vu);
}

static void frame_push_flow(struct load_vu *vu)
{
    frames_clear(vu);
    vu->stack[0] = (struct load_frame){.steps = vu->sc->steps, .n = vu->sc->n_steps, .count = 1};
    vu->depth = 1;
}

/* A loop's variables for pass f->iter: $loopCount and $loopElement (or their new names). */
static void loop_vars(struct load_vu *vu, const struct load_frame *f)
{
    const struct load_step *st = f->loop;

    json_object_set_new(vu->vars, st->loop_value, json_integer(f->iter));
    if (!f->over)
        json_object_set_new(vu->vars, st->loop_element, json_integer(f->iter));
    else if ((size_t)f->iter < json_array_size(f->over)) /* over: [a, "{{ b }}"] renders b */
        json_object_set_new(
            vu->vars, st->loop_element,
            load_tmpl_json(json_array_get(f->over, (size_t)f->iter), vu->vars, &vu->w->rng));
    else
        json_object_del(vu->vars, st->loop_element);
}

/* Whether loop f makes pass f->iter (whileTrue asks after each pass, not here). */
static bool loop_test(const struct load_frame *f)
{
    if (f->loop->while_fn)
        return true;
    if (f->loop->over || f->loop->over_var)
        return f->over && (size_t)f->iter < json_array_size(f->over);
    return f->count < 0 || f->iter < f->count;
}

/* Enters loop st as Artillery's createLoopWithCount does; false when it makes no pass. */
static bool loop_enter(struct load_vu *vu, const struct load_step *st)
{
    struct load_frame *f;

    if (vu->depth >= LOAD_MAX_LOOP_NEST || st->n_steps == 0)
        return false;
    f = &vu->stack[vu->depth++];
    *f = (struct load_frame){.loop = st,
                             .steps = st->steps,
                             .n = st->n_steps,
                             .iter = st->count_from,
                             .count = st->count};
    if (st->count_tmpl) { /* a count that does not read as one makes no pass, as in Artillery */
        struct buf b = BUF_INIT;

        load_tmpl_render(&b, st->count_tmpl, vu->vars, &vu->w->rng);
        if (load_loop_count(b.data ? b.data : "", &f->iter, &f->count) < 0)
            f->iter = f->count = 0;
        buf_free(&b);
    }
    if (st->over) {
        f->over = json_incref(st->over);
    } else if (st->over_var) {
        json_t *v = (json_t *)load_vars_get(vu->vars, st->over_var);

        f->over = json_is_array(v) ? json_incref(v) : NULL;
    }
    loop_vars(vu, f);
    if (loop_test(f))
        return true;
    frame_pop(vu);
    return false;
}

static void on_while_reply(void *data, const json_t *reply);

/*
 * A loop's pass ended: the next one, or the end of the loop (popped). False when whileTrue was
 * asked: its reply goes on.
 */
static bool loop_next(struct load_vu *vu, struct load_frame *f)
{
    f->iter++;
    loop_vars(vu, f);
    if (f->loop->while_fn) {
        vu->call = load_proc_call(vu->w->proc,
                                  load_hook_msg(vu, "while", json_pack("[s]", f->loop->while_fn)),
                                  on_while_reply, vu);
        return false;
    }
    f->idx = 0;
    if (!loop_test(f))
        frame_pop(vu);
    return true;
}

static void on_while_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (!flow_reply(vu, reply))
        return;
    if (json_is_true(json_object_get(reply, "result")))
        vu->stack[vu->depth - 1].idx = 0;
    else
        frame_pop(vu);
    vu_next(vu);
}

/* The next step to run, advancing through loops; NULL at the end of the flow or when a
 * whileTrue function was asked (vu->call). */
static const struct load_step *next_step(struct load_vu *vu)
{
    while (vu->depth > 0) {
        struct load_frame *f = &vu->stack[vu->depth - 1];

        if (f->idx < f->n)
            return &f->steps[f->idx++];
        if (!f->loop) {
            frame_pop(vu);
        } else if (!loop_next(vu, f)) {
            return NULL;
        }
    }
    return NULL;
}

/* A request step's ifTrue: false when the request is skipped, or when a function was asked. */
static const json_t *lookup_var(void *data, const char *name)
{
    return json_object_get(data, name);
}

static void on_if_reply(void *data, const json_t *reply);

static bool if_true(struct load_vu *vu, const struct load_request *r, bool *asked)
{
    struct err e;
    bool t = true;
    double n;

    *asked = false;
    if (r->if_true_fn) {
        vu->req = r;
        vu->call = load_proc_call(vu->w->proc,
                                  load_hook_msg(vu, "condition", json_pack("[s]", r->if_true)),
                                  on_if_reply, vu);
        *asked = true;
        return false;
    }
    /* an expression that fails at run time lets the request go, as in Artillery */
    if (load_fx_eval(r->if_true, lookup_var, vu->vars, &t, &n, &e) < 0)
        return true;
    return t;
}

static void on_if_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;
    const struct load_request *r = vu->req;

    vu->req = NULL;
    if (!flow_reply(vu, reply))
        return;
    if (json_is_true(json_object_get(reply, "result")))
        load_exchange_start(vu, r, step_done);
    else
        vu_next(vu);
}

/*
 * A think step: its time, rendered from the user's variables when it is a template. One that
 * does not read as a duration fails the user, as Artillery's think throws: with the ms
 * package's words for nothing at all (an unset variable), else naming what it read.
 */
static void think(struct load_vu *vu, const struct load_step *st)
{
    struct buf text = BUF_INIT, code = BUF_INIT;
    int64_t ms = st->think_ms;

    if (st->think_tmpl) {
        load_tmpl_render(&text, st->think_tmpl, vu->vars, &vu->w->rng);
        if (text.len == 0)
            buf_append_cstr(&code, "val is not a non-empty string or a valid number. "
                                   "val=undefined");
        else if (load_duration_ms(text.data, &ms) < 0)
            buf_printf(&code, "Invalid think time: %s", text.data);
    }
    if (code.len) {
        load_record_error(vu, code.data);
        vu_end(vu, true);
    } else {
        const struct load_script *script = vu->w->eng->script;
        /* drawn only with a jitter set, so a script without one sees the random values it
         * saw before jitter existed */
        if (script->think_jitter >= 0)
            ms = load_think_jitter(script, ms,
                                   (double)(load_rand(&vu->w->rng) >> 11) / 9007199254740992.0);
        uv_timer_start(&vu->timer, on_timer, (uint64_t)ms, 0);
    }
    buf_free(&text);
    buf_free(&code);
}

/* ---- parallel ---------------------------------------------------------------------------- */

/* How many of a parallel step's branches run at once: async's parallelLimit as Artillery calls
 * it (its schema leaves no room for the step's own `limit`). */
#define PARALLEL_LIMIT 100

static void vu_unlink_close(struct load_vu *vu);

/* Starts the parallel step's next step as a branch of vu, on the next loop turn (so a branch
 * that ends at once does not end inside the loop that starts them). */
static void branch_start(struct load_vu *vu)
{
    struct load_vu *b = xcalloc(1, sizeof(*b));
    const struct load_step *st = &vu->par->steps[vu->par_next++];

    b->w = vu->w;
    b->sc = vu->sc;
    b->parent = vu;
    b->uid = vu->uid; /* the processor's context is the user's */
    b->vars = json_incref(vu->vars);
    b->jar = vu->jar;
    b->agent = vu->agent;
    load_agent_init(&b->own, 0);
    list_init(&b->branches);
    b->start_ns = b->ready_ns = vu->ready_ns;
    b->stack[0] = (struct load_frame){.steps = st, .n = 1, .count = 1};
    b->depth = 1;
    uv_timer_init(&vu->w->loop, &b->timer);
    list_insert_tail(&vu->branches, &b->branch_link);
    uv_timer_start(&b->timer, on_timer, 0, 0);
}

/* Runs parallel step st; false when it has no steps. */
static bool parallel_start(struct load_vu *vu, const struct load_step *st)
{
    if (st->n_steps == 0)
        return false;
    vu->par = st;
    vu->par_next = 0;
    while (vu->par_next < st->n_steps && vu->par_next < PARALLEL_LIMIT)
        branch_start(vu);
    return true;
}

/* Ends vu's branches (vu failed or stops): what they have in flight is abandoned. */
static void branches_abort(struct load_vu *vu)
{
    struct load_vu *b;

    /* none may take a connection another gives back on its way out */
    LIST_FOR_EACH(b, &vu->branches, branch_link)
        load_agent_unqueue(b);
    while (!list_empty(&vu->branches)) {
        b = LIST_ENTRY(list_first(&vu->branches), struct load_vu, branch_link);
        uv_timer_stop(&b->timer);
        vu_unlink_close(b);
    }
    vu->par = NULL;
}

/*
 * Branch b's step ended. As async's parallel, the first failure fails the step, and so the
 * user; when every branch has ended, the user goes on with the step after the parallel one.
 */
static void branch_end(struct load_vu *b, bool failed)
{
    struct load_vu *vu = b->parent;

    if (failed) { /* ends b with its siblings */
        vu_end(vu, true);
        return;
    }
    vu_unlink_close(b);
    if (vu->par_next < vu->par->n_steps) {
        branch_start(vu);
    } else if (list_empty(&vu->branches)) {
        vu->par = NULL;
        vu->ready_ns = uv_hrtime();
        vu_next(vu);
    }
}

/* ---- the flow's walk --------------------------------------------------------------------- */

static void vu_next(struct load_vu *vu)
{
    const struct load_step *st;
    bool after_failure = vu->depth == 0; /* pool mode: vu_end emptied the stack */
    bool asked;

    while (!vu->w->stopping && (st = next_step(vu)) != NULL) {
        switch (st->kind) {
        case LOAD_STEP_REQUEST:
            if (vu->pool && uv_hrtime() >= vu->w->eng->pool_deadline_ns)
                goto done;
            if (st->req.if_true && !if_true(vu, &st->req, &asked)) {
                if (asked)
                    return;
                break;
            }
            load_exchange_start(vu, &st->req, step_done);
            return;
        case LOAD_STEP_FUNCTION:
            if (run_function(vu, st))
                return;
            break;
        case LOAD_STEP_THINK:
            think(vu, st);
            return;
        case LOAD_STEP_LOG:
            run_log(vu, st->log);
            break;
        case LOAD_STEP_LOOP:
            loop_enter(vu, st);
            break;
        case LOAD_STEP_PARALLEL:
            if (parallel_start(vu, st))
                return;
            break;
        }
    }
    if (vu->call) /* whileTrue was asked */
        return;
    /* pool mode: a connection runs the flow again and again until the deadline */
    if (vu->pool && !vu->w->stopping && uv_hrtime() < vu->w->eng->pool_deadline_ns &&
        vu->sc->n_steps > 0) {
        if (!after_failure)
            vu->failed = false; /* the flow ran to its end */
        frame_push_flow(vu);
        vu->ready_ns = uv_hrtime();
        vu_next(vu);
        return;
    }
done:
    /* a pool connection whose last flow failed ends failed, even when the deadline came
     * between the failure and the flow's restart */
    vu_end(vu, vu->pool && vu->failed);
}

static void vu_close_cb(uv_handle_t *h)
{
    struct load_vu *vu = CONTAINER_OF((uv_timer_t *)h, struct load_vu, timer);
    struct load_worker *w = vu->w;

    frames_clear(vu);
    load_exchange_free(vu);
    load_jar_free(&vu->own_jar);
    json_decref(vu->vars);
    if (!vu->parent) /* a branch is not a user */
        load_worker_vu_ended(w);
    free(vu);
}

static void vu_unlink_close(struct load_vu *vu)
{
    struct load_worker *w = vu->w;

    branches_abort(vu); /* first: they hold connections of vu's agent */
    load_exchange_drop(vu);
    load_agent_unqueue(vu);
    load_agent_close_idle(&vu->own);
    if (vu->call)
        load_proc_cancel(w->proc, vu->call);
    vu->call = 0;
    if (vu->parent) {
        list_remove(&vu->branch_link);
    } else {
        if (w->proc)
            load_proc_end_vu(w->proc, vu->uid);
        list_remove(&vu->link);
    }
    uv_close((uv_handle_t *)&vu->timer, vu_close_cb);
}

static void vu_end(struct load_vu *vu, bool failed)
{
    uint64_t now = uv_hrtime();

    if (vu->parent) {
        branch_end(vu, failed);
        return;
    }
    /* Pool mode: as wrk reconnects after an error, a failure costs the request (counted as an
     * error or a failed expect), not the connection. The flow starts over on the next loop turn,
     * so a failure that comes back at once cannot recurse. */
    if (failed && vu->pool && !vu->w->stopping && now < vu->w->eng->pool_deadline_ns) {
        vu->failed = true;
        branches_abort(vu);
        frames_clear(vu);
        uv_timer_start(&vu->timer, on_timer, 0, 0);
        return;
    }
    if (vu->w->hook) {
        json_decref(vu->w->hook_vars);
        vu->w->hook_vars = json_incref(vu->vars);
        vu->w->hook_failed = failed;
    }
    load_record_user_ended(vu->w, failed, now, (now - vu->start_ns) / 1000);
    vu_unlink_close(vu);
}

void load_vu_abort(struct load_vu *vu)
{
    uv_timer_stop(&vu->timer);
    vu_unlink_close(vu);
}

/*
 * What Artillery's createContext gives each user: target, $environment, $dirname and
 * $scenarioFile under everything else, and $uuid, the user's own id, over it. The id comes from
 * the worker's generator, not the kernel's: it names a user, it guards nothing.
 */
static void set_builtin_vars(struct load_vu *vu)
{
    const json_t *builtin = vu->w->eng->script->builtin_vars;
    uint64_t bits[2] = {load_rand(&vu->w->rng), load_rand(&vu->w->rng)};
    char uuid[UUID_STR_LEN + 1];

    if (builtin) {
        json_t *copy = json_deep_copy(builtin); /* the script's is shared by the workers */

        json_object_update_missing(vu->vars, copy);
        json_decref(copy);
    }
    uuid_format_v4((const unsigned char *)bits, uuid);
    json_object_set_new(vu->vars, "$uuid", json_string(uuid));
}

void load_vu_start(struct load_worker *w, const struct load_scenario *sc, uint64_t sched_ns,
                   bool pool)
{
    struct load_vu *vu = xcalloc(1, sizeof(*vu));
    uint64_t now = uv_hrtime();

    vu->w = w;
    vu->sc = sc;
    vu->pool = pool;
    vu->jar = &vu->own_jar;
    list_init(&vu->branches);
    load_agent_init(&vu->own, 1);
    vu->agent = w->agent.max ? &w->agent : &vu->own;
    vu->uid = ++w->next_uid;
    vu->vars = load_vars_new(w->eng->script->variables, &w->rng);
    if (w->eng->script->n_payloads) { /* config.variables win over a row, as in Artillery */
        json_t *row = json_object();

        load_payload_vars(w->eng->script->payloads, w->eng->script->n_payloads, row, &w->rng);
        json_object_update_missing(vu->vars, row);
        json_decref(row);
    }
    if (w->eng->context_vars) { /* under both, as Artillery lays them over before's */
        json_t *ctx = json_deep_copy(w->eng->context_vars);

        json_object_update_missing(vu->vars, ctx);
        json_decref(ctx);
    }
    set_builtin_vars(vu);
    vu->start_ns = vu->ready_ns = sched_ns < now ? sched_ns : now;
    frame_push_flow(vu);
    uv_timer_init(&w->loop, &vu->timer);
    list_insert_head(&w->vus, &vu->link);
    w->active++;
    load_record_user_created(w, sc, now);
    vu_next(vu);
}
