/*
 * `mesh load run`: reads the script, runs the engine on worker threads while the main loop
 * prints a live line and waits for Ctrl-C, then merges the measurements, prints Artillery's
 * summary, writes the report JSON and applies the ensure checks.
 */
#include "load/load.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/file.h"
#include "lib/flags.h"
#include "lib/json.h"
#include "lib/rlimit.h"
#include "lib/uuid.h"
#include "load/engine.h"
#include "load/ensure.h"
#include "load/marks.h"
#include "load/report.h"
#include "load/report_html.h"
#include "load/script.h"

#define LIVE_EVERY_S 5
#define EXIT_ENSURE  1
#define EXIT_HOOK    1 /* the before or after flow failed: Artillery stops with 1 */
#define EXIT_USAGE   2
#define EXIT_EXPECT  21 /* a check of the expect plugin failed: Artillery's code */

static const char run_usage[] =
    "mesh load run [flags] FILE.yml\n\n"
    "Runs an Artillery 2 test script (config.target, phases, variables, environments,\n"
    "http.timeout, tls, ensure, processor; scenarios with get/post/put/patch/delete/head,\n"
    "think, loop, log, function; {{ }} templates, captures, expect, and processor hooks run\n"
    "by Node.js).\n"
    "Exit status: 0 done, 1 an ensure check failed, 2 bad flags or script, 21 an expect\n"
    "check failed (config.plugins.expect).";

struct run_opts {
    char *target, *env, *output, *report, *variables, *dotenv, *config, *overrides;
    int workers, pool;
    bool progress, quiet, insecure, solo;
    char test_id[128]; /* $testId */
};

/* A random character of nanoid's alphabet as Artillery's generateId uses it (no look-alikes). */
static char id_char(void)
{
    static const char alphabet[] = "3456789abcdefghjkmnpqrtwxyz";
    const unsigned n = sizeof(alphabet) - 1;
    unsigned char b;

    do /* below the largest multiple of n, so every character is as likely */
        uuid_random_bytes(&b, 1);
    while (b >= 256 / n * n);
    return alphabet[b % n];
}

/* Artillery's test run id: ARTILLERY_TEST_RUN_ID when set, else one as its generateId('t')
 * makes it, "t" then 4, 29 and 4 random characters joined by "_". */
static void make_test_id(char *out, size_t size)
{
    static const int parts[] = {4, 29, 4};
    const char *set = getenv("ARTILLERY_TEST_RUN_ID");
    size_t k = 0;

    MESH_BUG_ON(size < 41);
    if (set && *set) {
        snprintf(out, size, "%s", set);
        return;
    }
    out[k++] = 't';
    for (size_t p = 0; p < 3; p++) {
        for (int i = 0; i < parts[p]; i++)
            out[k++] = id_char();
        if (p < 2)
            out[k++] = '_';
    }
    out[k] = '\0';
}

struct run_ctx {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sig_int, sig_term, sig_usr1;
    struct load_engine *eng;
    struct run_opts *o;
    bool live;
    bool interrupted;
    size_t last_live; /* the last live line's slot (seconds / LIVE_EVERY_S) */
    size_t phase;     /* phases announced so far */
    size_t periods;   /* "Metrics for period" blocks printed so far */
    char *hide;       /* what the console leaves out (metrics-by-endpoint's), or NULL */
    const struct load_script *script;
    struct load_result res; /* the seconds that have passed, out of the workers */
    char *marks;            /* the marks file (`mesh load mark`), removed at the end */
    size_t marks_off;       /* what was read of it */
    json_t *events;         /* the markers: [{"t_ms", "name"}] */
};

/* "Phase started: warm up (index: 0, duration: 60s) 12:00:00(+0000)", as Artillery prints. */
static void announce_phases(struct run_ctx *ctx, int64_t now_ms)
{
    const struct load_script *s = ctx->script;
    int64_t start = 0;

    for (size_t i = 0; i < s->n_phases; start += s->phases[i++].duration_ms) {
        const struct load_phase *p = &s->phases[i];
        char when[32];

        if (i < ctx->phase || start > now_ms)
            continue;
        load_clock_text(time(NULL), when, sizeof(when));
        if (i > 0)
            printf("Phase completed: %s (index: %zu, duration: %.0fs) %s\n",
                   s->phases[i - 1].name ? s->phases[i - 1].name : "unnamed", i - 1,
                   (double)s->phases[i - 1].duration_ms / 1000, when);
        printf("Phase started: %s (index: %zu, duration: %.0fs) %s\n",
               p->name ? p->name : "unnamed", i, (double)p->duration_ms / 1000, when);
        ctx->phase = i + 1;
    }
    fflush(stdout);
}

/* The blocks of the periods drained whole (all: and the last, partial one). */
static void print_periods(struct run_ctx *ctx, bool all)
{
    if (ctx->o->quiet)
        return;
    while (ctx->periods < ctx->res.n_periods) {
        size_t from, to;

        load_period_span(&ctx->res, ctx->periods, &from, &to);
        /* whole once the seconds up to its 10 s boundary have been drained */
        if (!all && (ctx->periods + 1) * LOAD_PERIOD_S > ctx->res.n_secs + ctx->res.shift)
            break;
        if (from < to)
            load_print_period(stdout, &ctx->res, ctx->periods, ctx->hide);
        ctx->periods++;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct run_ctx *ctx = CONTAINER_OF(t, struct run_ctx, tick);
    uint64_t start = load_engine_start_ns(ctx->eng);
    uint64_t now_ns = uv_hrtime() - start;
    size_t now_s = (size_t)(now_ns / 1000000000u), slot = now_s / LIVE_EVERY_S, keep;
    struct load_sec *sum;

    if (!ctx->o->quiet && !ctx->o->pool)
        announce_phases(ctx, (int64_t)(now_ns / 1000000u));
    if (ctx->live && slot > 0 && slot > ctx->last_live) {
        ctx->last_live = slot;
        sum = load_result_peek(ctx->eng, slot * LIVE_EVERY_S - LIVE_EVERY_S, slot * LIVE_EVERY_S);
        load_print_live(stdout, sum, LIVE_EVERY_S, (double)(slot * LIVE_EVERY_S));
        load_sec_free(sum);
    }
    /* Seconds that have passed leave the workers, so a long run's memory stays flat: all but
     * the last two (a worker may still record into the one that just ended) and what the next
     * live line will read. */
    keep = now_s > 2 ? now_s - 2 : 0;
    if (ctx->live && keep > ctx->last_live * LIVE_EVERY_S)
        keep = ctx->last_live * LIVE_EVERY_S;
    load_result_drain(ctx->eng, keep, &ctx->res);
    print_periods(ctx, false);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct run_ctx *ctx = s->data;

    (void)signum;
    if (ctx->interrupted)
        return;
    ctx->interrupted = true;
    fprintf(stderr, "mesh load: stopping (interrupted)\n");
    load_engine_stop(ctx->eng);
}

/* `mesh load mark TEXT` (or SIGUSR1): a step marker on the timeline. */
static void on_mark(uv_signal_t *s, int signum)
{
    struct run_ctx *ctx = s->data;
    int64_t t_ms = (int64_t)((uv_hrtime() - load_engine_start_ns(ctx->eng)) / 1000000u);

    (void)signum;
    load_marks_take(ctx->marks, &ctx->marks_off, t_ms, ctx->events, stdout);
}

static void on_engine_done(void *data)
{
    struct run_ctx *ctx = data;

    /* A loaded machine can run the last tick late or not at all: catch up, so a run that
     * crossed a live-line boundary always prints its line. */
    on_tick(&ctx->tick);
    uv_close((uv_handle_t *)&ctx->tick, NULL);
    uv_close((uv_handle_t *)&ctx->sig_int, NULL);
    uv_close((uv_handle_t *)&ctx->sig_term, NULL);
    uv_close((uv_handle_t *)&ctx->sig_usr1, NULL);
}

static int parse_args(int argc, char **argv, struct run_opts *o, const char **file)
{
    struct flag flags[] = {
        {"t", FLAG_STRING, &o->target, "target URL (overrides config.target)", false},
        {"target", FLAG_STRING, &o->target, "same as -t", false},
        {"e", FLAG_STRING, &o->env, "environment from config.environments", false},
        {"environment", FLAG_STRING, &o->env, "same as -e", false},
        {"output", FLAG_STRING, &o->output, "write the report JSON (Artillery's shape) here",
         false},
        {"o", FLAG_STRING, &o->output, "same as --output", false},
        {"report", FLAG_STRING, &o->report, "write the HTML report (charts) here", false},
        {"workers", FLAG_INT, &o->workers, "worker threads", false},
        {"pool", FLAG_INT, &o->pool,
         "N persistent connections sending the first scenario's flow back to back\nfor the "
         "phases' total duration (raw throughput, like wrk)",
         false},
        {"progress", FLAG_BOOL, &o->progress, "print the live line even when not on a terminal",
         false},
        {"quiet", FLAG_BOOL, &o->quiet, "no live line and no summary", false},
        {"k", FLAG_BOOL, &o->insecure, "https: accept any certificate (Artillery's -k)", false},
        {"insecure", FLAG_BOOL, &o->insecure, "same as -k", false},
        {"variables", FLAG_STRING, &o->variables,
         "a JSON object of variables set over config.variables, which config templates see\ntoo "
         "(Artillery's --variables)",
         false},
        {"v", FLAG_STRING, &o->variables, "same as --variables", false},
        {"config", FLAG_STRING, &o->config,
         "a YAML file laid over the script (Artillery's --config: mappings merged key by\nkey, "
         "lists element by element)",
         false},
        {"c", FLAG_STRING, &o->config, "same as --config", false},
        {"overrides", FLAG_STRING, &o->overrides,
         "a JSON object laid over the script and its environment (Artillery's --overrides:\n"
         "a list replaces a list)",
         false},
        {"dotenv", FLAG_STRING, &o->dotenv,
         "a file of KEY=VALUE lines set in the environment before the script is read", false},
        {"s", FLAG_BOOL, &o->solo, "one virtual user, whatever the phases say (Artillery's --solo)",
         false},
        {"solo", FLAG_BOOL, &o->solo, "same as -s", false},
    };
    int first = 0, rc;
    struct err e = {""};

    *file = NULL;
    /* flags may come before and after the file, as Artillery allows */
    while (argc > 0) {
        rc = flags_parse(flags, ARRAY_LEN(flags), argc, argv, &first, &e);
        if (rc == FLAGS_HELP) {
            flags_usage(stdout, run_usage, flags, ARRAY_LEN(flags));
            return 0;
        }
        if (rc < 0) {
            fprintf(stderr, "%s\n", e.msg);
            flags_usage(stderr, run_usage, flags, ARRAY_LEN(flags));
            return -EINVAL;
        }
        if (first >= argc)
            break;
        if (*file) {
            fprintf(stderr, "mesh load run: one script file only (got %s and %s)\n", *file,
                    argv[first]);
            return -EINVAL;
        }
        *file = argv[first];
        argc -= first + 1;
        argv += first + 1;
    }
    if (!*file) {
        fprintf(stderr, "mesh load run: missing the script file\n");
        flags_usage(stderr, run_usage, flags, ARRAY_LEN(flags));
        return -EINVAL;
    }
    if (o->workers < 1 || o->workers > 64 || o->pool < 0 || o->pool > 100000) {
        fprintf(stderr, "mesh load run: -workers wants 1..64 and -pool 0..100000\n");
        return -EINVAL;
    }
    return 1;
}

/*
 * --dotenv FILE: its KEY=VALUE lines into the environment before the script is read, as
 * Artillery's dotenv reads them: `export ` and spaces around `=` allowed, `#` starts a comment
 * (outside quotes), a value in single, double or back quotes is taken as it is ("\n" in
 * double quotes is a line break); a variable already set keeps its value. Returns 0, or -errno
 * with e saying why.
 */
static int read_dotenv(const char *path, struct err *e)
{
    struct buf text = BUF_INIT;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    rc = fd < 0 ? -errno : file_read_all(fd, &text);
    if (rc < 0) {
        err_set(e, "%s: %s", path, strerror(-rc));
        goto out;
    }
    for (char *line = text.data, *next; line && *line; line = next) {
        char *eq, *key = line, *val, *end;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        key += strspn(key, " \t");
        if (strncmp(key, "export ", 7) == 0)
            key += 7 + strspn(key + 7, " \t");
        if (*key == '#' || !(eq = strchr(key, '=')))
            continue;
        for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        *end = '\0';
        val = eq + 1 + strspn(eq + 1, " \t");
        end = val + strlen(val);
        if ((*val == '"' || *val == '\'' || *val == '`') && strchr(val + 1, *val)) {
            end = strrchr(val + 1, *val);
            if (*val == '"') /* "\n" and "\r" in double quotes are line breaks */
                for (char *p = val + 1; p + 1 < end; p++)
                    if (*p == '\\' && (p[1] == 'n' || p[1] == 'r')) {
                        *p = p[1] == 'n' ? '\n' : '\r';
                        memmove(p + 1, p + 2, strlen(p + 2) + 1);
                        end--;
                    }
            val++;
        } else if (strchr(val, '#')) {
            end = strchr(val, '#');
        }
        while (end > val && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        *end = '\0';
        if (*key && setenv(key, val, 0) < 0) {
            rc = -errno;
            err_set(e, "%s: %s: %s", path, key, strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&text);
    return rc;
}

static bool has_request(const struct load_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (steps[i].kind == LOAD_STEP_REQUEST ||
            (steps[i].kind == LOAD_STEP_LOOP && steps[i].count != 0 &&
             has_request(steps[i].steps, steps[i].n_steps)) ||
            (steps[i].kind == LOAD_STEP_PARALLEL && has_request(steps[i].steps, steps[i].n_steps)))
            return true;
    return false;
}

static int write_output(const char *path, const json_t *report)
{
    char *text = json_dumps(report, JSON_INDENT(2) | JSON_MESH_REAL_PRECISION);
    struct err e;
    int rc = file_replace(path, text, strlen(text), 0644, 0, &e);

    if (rc < 0)
        fprintf(stderr, "mesh load run: cannot write the report: %s\n", e.msg);
    free(text);
    return rc;
}

/* Merges the run, prints and writes the report, applies ensure: the exit code. */
static int finish(struct run_ctx *ctx, struct load_script *s, const struct run_opts *o)
{
    struct load_engine *eng = ctx->eng;
    double elapsed = (double)(uv_hrtime() - load_engine_start_ns(eng)) / 1e9;
    size_t n = (size_t)ceil(elapsed);
    struct load_result *r = &ctx->res;
    json_t *report;
    struct err e = {""};
    int rc = 0;

    for (size_t w = 0; w < load_engine_workers(eng); w++) {
        struct load_stats *st = load_engine_stats(eng, w);

        for (size_t i = n; i < st->n; i++)
            if (st->secs[i])
                n = i + 1;
    }
    load_result_drain(eng, n, r);
    r->elapsed_s = elapsed;
    report = load_report_json(r, s, o->pool);
    json_object_set(json_object_get(report, "meshkit"), "events", ctx->events);
    if (!o->quiet && !o->pool && ctx->phase > 0) {
        const struct load_phase *p = &s->phases[ctx->phase - 1];
        char when[32];

        printf("Phase completed: %s (index: %zu, duration: %.0fs) %s\n",
               p->name ? p->name : "unnamed", ctx->phase - 1, (double)p->duration_ms / 1000,
               load_clock_text(time(NULL), when, sizeof(when)));
    }
    print_periods(ctx, true);
    if (!o->quiet) {
        printf("%s Total time: %.1f seconds\n\n",
               ctx->interrupted ? "Run interrupted." : "All VUs finished.", elapsed);
        load_print_summary(stdout, report);
    }
    if (o->output && write_output(o->output, report) < 0)
        rc = EXIT_USAGE;
    if (o->report && load_report_html_write(report, o->report, &e) < 0) {
        fprintf(stderr, "mesh load run: %s\n", e.msg);
        rc = EXIT_USAGE;
    }
    if (load_ensure_check(s, json_object_get(report, "aggregate"), stdout) > 0 && rc == 0)
        rc = EXIT_ENSURE;
    if (rc == 0 && json_integer_value(json_object_get(
                       json_object_get(json_object_get(report, "aggregate"), "counters"),
                       "plugins.expect.failed")) > 0)
        rc = EXIT_EXPECT;
    fflush(stdout);
    json_decref(report);
    return rc;
}

static int run(struct load_script *s, struct run_opts *o)
{
    struct run_ctx ctx = {.o = o, .script = s};
    struct load_engine_opts eo = {s,         o->workers,     o->pool, o->insecure,
                                  &ctx.loop, on_engine_done, &ctx};
    struct err e = {""};
    int rc;

    /* a server that closes while we write must give EPIPE, not end the process */
    signal(SIGPIPE, SIG_IGN);
    /* a descriptor per virtual user's connection: node raises it for Artillery */
    rlimit_nofile_raise();
    ctx.hide = s->endpoint_print ? NULL : xasprintf("%s.", s->endpoint_prefix);
    uv_loop_init(&ctx.loop);
    ctx.eng = load_engine_new(s, &eo, &e);
    if (!ctx.eng) {
        fprintf(stderr, "mesh load run: %s\n", e.msg);
        rc = EXIT_USAGE;
        goto out_loop;
    }
    if (!o->quiet)
        printf("Test run id: %s\nTest run: %s against %s%s\n", o->test_id, s->path, s->target,
               o->pool ? " (pool mode)" : "");
    fflush(stdout);
    if (load_engine_before(ctx.eng, &e) < 0) {
        fprintf(stderr, "mesh load run: %s (the run does not start)\n", e.msg);
        rc = EXIT_HOOK;
        goto out_engine;
    }
    ctx.live = !o->quiet && (o->progress || isatty(STDOUT_FILENO));
    uv_timer_init(&ctx.loop, &ctx.tick);
    uv_signal_init(&ctx.loop, &ctx.sig_int);
    uv_signal_init(&ctx.loop, &ctx.sig_term);
    uv_signal_init(&ctx.loop, &ctx.sig_usr1);
    ctx.sig_int.data = ctx.sig_term.data = ctx.sig_usr1.data = &ctx;
    uv_signal_start(&ctx.sig_usr1, on_mark, SIGUSR1);
    ctx.marks = load_marks_path(getpid());
    ctx.events = json_array();
    /* created empty, for `mesh load mark` to find; only this user may mark the run */
    close(open(ctx.marks, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    uv_signal_start(&ctx.sig_int, on_signal, SIGINT);
    uv_signal_start(&ctx.sig_term, on_signal, SIGTERM);
    load_engine_start(ctx.eng);
    load_result_init(&ctx.res, ctx.eng);
    if (!o->quiet && !o->pool)
        announce_phases(&ctx, 0);
    /* ticks just after each whole second of the run, so each sees that second complete */
    uv_update_time(&ctx.loop);
    uv_timer_start(&ctx.tick, on_tick, 1020, 1000);
    uv_run(&ctx.loop, UV_RUN_DEFAULT);
    load_engine_join(ctx.eng);
    rc = finish(&ctx, s, o);
    load_result_free(&ctx.res);
    if (load_engine_after(ctx.eng, &e) < 0) {
        fprintf(stderr, "mesh load run: %s\n", e.msg);
        rc = rc ? rc : EXIT_HOOK;
    }
out_engine:
    load_engine_free(ctx.eng);
out_loop:
    uv_run(&ctx.loop, UV_RUN_DEFAULT);
    uv_loop_close(&ctx.loop);
    free(ctx.hide);
    if (ctx.marks)
        unlink(ctx.marks);
    free(ctx.marks);
    json_decref(ctx.events);
    return rc;
}

int load_run_main(int argc, char **argv)
{
    struct run_opts o = {.workers = 1};
    struct load_script s;
    struct buf msgs = BUF_INIT;
    struct err e = {""};
    const char *file;
    int rc;

    rc = parse_args(argc - 1, argv + 1, &o, &file);
    if (rc <= 0) {
        rc = rc == 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    if (o.dotenv && read_dotenv(o.dotenv, &e) < 0) {
        fprintf(stderr, "mesh load run: --dotenv %s\n", e.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    make_test_id(o.test_id, sizeof(o.test_id));
    if (load_script_load(file,
                         &(struct load_script_opts){o.env, o.target, o.config, o.overrides,
                                                    o.variables, o.test_id},
                         &s, &msgs, &e) < 0) {
        fputs(msgs.data ? msgs.data : e.msg, stderr);
        rc = EXIT_USAGE;
        goto out;
    }
    if (o.solo)
        load_script_solo(&s);
    if (o.variables && load_script_add_variables(&s, o.variables, &e) < 0) {
        fprintf(stderr, "mesh load run: --variables: %s\n", e.msg);
        rc = EXIT_USAGE;
        goto free_script;
    }
    if (o.pool > 0 && (!has_request(s.scenarios[0].steps, s.scenarios[0].n_steps) ||
                       load_script_duration_ms(&s) <= 0)) {
        fprintf(stderr, "mesh load run: -pool needs a first scenario with a request and "
                        "phases that last\n");
        rc = EXIT_USAGE;
    } else {
        rc = run(&s, &o);
    }
free_script:
    load_script_free(&s);
out:
    buf_free(&msgs);
    free(o.target);
    free(o.env);
    free(o.output);
    free(o.report);
    free(o.variables);
    free(o.dotenv);
    free(o.config);
    free(o.overrides);
    return rc;
}

int load_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return load_run_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "mark") == 0)
        return load_mark_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return load_report_main(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
                      strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        printf("Usage: mesh load <command> [flags]\n\nCommands:\n"
               "    run      Run an Artillery test script\n"
               "    mark     Drop a step marker into a running test's timeline\n"
               "    report   Write the HTML page of a report JSON\n\n"
               "Run 'mesh load <command> -help' for a command's flags.\n");
        return 0;
    }
    fprintf(stderr, "Usage: mesh load run [flags] FILE.yml\n"
                    "       mesh load report REPORT.json [-o REPORT.html]\n");
    return EXIT_USAGE;
}
