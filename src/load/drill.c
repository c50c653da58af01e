/*
 * `mesh drill failover|scale|node-loss`: runs `mesh load run` against the load balancer of the
 * cluster `mesh up` started (as `mesh status -json` names it) and, on a timeline scaled to
 * -duration, the operator commands of the original's scenarios, each as a `mesh` process, one
 * at a time. The events go into the report (meshkit.events, with the time each command
 * started), the per-phase summary is printed, and -report / -output write the page and JSON.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/alloc.h"
#include "lib/config.h"
#include "lib/flags.h"
#include "lib/json.h"
#include "lib/subproc.h"
#include "load/drill.h"
#include "load/report_html.h"
#include "load/script.h"

#define DRILL_USAGE                                                                                \
    "mesh drill failover|scale|node-loss [options]\n\n"                                            \
    "  Runs load against the local cluster's load balancer (the one 'mesh up' started)\n"          \
    "  while performing the original's scenario on a timeline, then prints per phase:\n"           \
    "  requests, failures by kind, p99, time to detect and time to recover.\n"                     \
    "    failover   stop-service web1, stop-service web2, start-service web1, start-service\n"     \
    "               web2 at 1/5, 2/5, 3/5 and 4/5 of the duration\n"                               \
    "    scale      scale-up web1, scale-up web2, scale-down web1, scale-down web2\n"              \
    "    node-loss  kill-node web2 at 1/4, revive-node web2 at 3/5\n"                              \
    "  (web1 and web2 stand for the cluster's first and second web nodes.)\n"                      \
    "  With -script, the load is the user's Artillery script (its phases set the duration,\n"      \
    "  its target is the cluster's lb) and the answers its expect checks accept, such as\n"        \
    "  503, are shown as accepted, not as failures."

#define DRILL_MIN_S             10
#define DRILL_MAX_S             86400
#define DRILL_MAX_STEPS         4
#define DRILL_STATUS_TIMEOUT_MS 60000

struct drill_step {
    double at;       /* fraction of the duration */
    const char *cmd; /* operator command */
    int node;        /* index among the web nodes */
};

static const struct drill_kind {
    const char *name;
    struct drill_step steps[DRILL_MAX_STEPS];
    size_t n;
} drill_kinds[] = {
    {"failover",
     {{0.2, "stop-service", 0},
      {0.4, "stop-service", 1},
      {0.6, "start-service", 0},
      {0.8, "start-service", 1}},
     4},
    {"scale",
     {{0.2, "scale-up", 0}, {0.4, "scale-up", 1}, {0.6, "scale-down", 0}, {0.8, "scale-down", 1}},
     4},
    {"node-loss", {{0.25, "kill-node", 1}, {0.6, "revive-node", 1}}, 2},
};

struct drill {
    uv_loop_t loop;
    uv_process_t load, op;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    char exe[PATH_MAX];
    const char *run_dir;
    const struct drill_kind *kind;
    char web[2][64];
    int duration_s;
    uint64_t start_ns;
    size_t next;     /* the next step to run */
    bool op_running; /* one operator command at a time */
    bool load_running;
    int64_t load_status;
    int op_failures;
    json_t *events;   /* [{"epoch_ms", "name"}], turned into t_ms once the run's start is known */
    json_t *accepted; /* status codes the user's script accepts (-script), or NULL */
};

static int64_t drill_epoch_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void drill_closed(uv_handle_t *h)
{
}

static void drill_close_waits(struct drill *d)
{
    uv_close((uv_handle_t *)&d->timer, drill_closed);
    uv_close((uv_handle_t *)&d->sigint, drill_closed);
    uv_close((uv_handle_t *)&d->sigterm, drill_closed);
}

static void drill_schedule(struct drill *d);

static void drill_op_exit(uv_process_t *p, int64_t status, int signo)
{
    struct drill *d = p->data;

    d->op_running = false;
    if (status != 0 || signo != 0) {
        d->op_failures++;
        fprintf(stderr, "mesh drill: the step exited with status %lld%s\n", (long long)status,
                signo ? " (signal)" : "");
    }
    uv_close((uv_handle_t *)p, drill_closed);
    if (!d->load_running) {
        drill_close_waits(d);
        return;
    }
    drill_schedule(d);
}

/* The child inherits stdout and stderr: the user sees what each command says. */
static int drill_spawn(struct drill *d, uv_process_t *p, char **argv, uv_exit_cb cb)
{
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .exit_cb = cb, .file = d->exe, .args = argv, .stdio = stdio, .stdio_count = 3};

    p->data = d;
    return uv_spawn(&d->loop, p, &o);
}

static void drill_run_step(struct drill *d)
{
    const struct drill_step *s = &d->kind->steps[d->next++];
    char name[128];
    char *argv[] = {d->exe, (char *)s->cmd, d->web[s->node], "-run-dir", (char *)d->run_dir, NULL};
    int rc;

    snprintf(name, sizeof(name), "%s %s", s->cmd, d->web[s->node]);
    printf("[%6.1fs] mesh %s\n", (double)(uv_hrtime() - d->start_ns) / 1e9, name);
    fflush(stdout);
    json_array_append_new(
        d->events, json_pack("{s:I, s:s}", "epoch_ms", (json_int_t)drill_epoch_ms(), "name", name));
    rc = drill_spawn(d, &d->op, argv, drill_op_exit);
    if (rc < 0) {
        /* The handle must still be closed, so it cannot take another step: stop the steps. */
        fprintf(stderr, "mesh drill: cannot run mesh %s: %s\n", name, uv_strerror(rc));
        d->op_failures++;
        d->next = d->kind->n;
        uv_close((uv_handle_t *)&d->op, drill_closed);
        return;
    }
    d->op_running = true;
}

static void drill_timer(uv_timer_t *t)
{
    drill_run_step(t->data);
}

/* Arms the timer for the next step; a step that is late (its predecessor ran long) runs now. */
static void drill_schedule(struct drill *d)
{
    uint64_t elapsed_ms = (uv_hrtime() - d->start_ns) / 1000000, at_ms;

    if (d->next >= d->kind->n || !d->load_running)
        return;
    at_ms = (uint64_t)(d->kind->steps[d->next].at * d->duration_s * 1000);
    uv_timer_start(&d->timer, drill_timer, at_ms > elapsed_ms ? at_ms - elapsed_ms : 0, 0);
}

static void drill_load_exit(uv_process_t *p, int64_t status, int signo)
{
    struct drill *d = p->data;

    d->load_running = false;
    d->load_status = signo ? 128 + signo : status;
    uv_timer_stop(&d->timer);
    if (d->next < d->kind->n)
        fprintf(stderr, "mesh drill: the load ended before %zu step(s) could run\n",
                d->kind->n - d->next);
    uv_close((uv_handle_t *)p, drill_closed);
    if (!d->op_running)
        drill_close_waits(d);
}

/*
 * Ctrl-C stops the load early; it still writes its report, and the drill prints what it has.
 * SIGTERM too: dying at once would leave the load running on, orphaned, against the cluster.
 */
static void drill_sigint(uv_signal_t *s, int signo)
{
    struct drill *d = s->data;

    (void)signo;
    if (d->load_running)
        uv_process_kill(&d->load, SIGINT);
}

/*
 * The load balancer's URL and the web nodes' names, from `mesh status -json` (the cluster's
 * state belongs to the CLI; its JSON output is the interface).
 */
static int drill_read_cluster(struct drill *d, char *target, size_t tn, struct err *e)
{
    char *argv[] = {d->exe, "status", "-json", "-run-dir", (char *)d->run_dir, NULL};
    struct buf out = BUF_INIT;
    json_t *st = NULL, *webs;
    const char *lb_url;
    int rc = subproc_run(argv, &out, 0, DRILL_STATUS_TIMEOUT_MS, e);

    if (rc > 0)
        rc =
            err_set(e, "mesh status -run-dir %s failed (is the cluster up? 'mesh up')", d->run_dir);
    if (rc == 0 && !(st = json_loadb(out.data ? out.data : "", out.len, 0, NULL)))
        rc = err_set(e, "mesh status -json printed no JSON");
    webs = json_object_get(st, "web_nodes");
    lb_url = json_string_value(json_object_get(st, "lb_url"));
    if (rc == 0 && (!lb_url || json_array_size(webs) < 2))
        rc = err_set(e, "a drill needs the cluster's load balancer and two web nodes");
    for (size_t i = 0; rc == 0 && i < 2; i++)
        snprintf(d->web[i], sizeof(d->web[0]), "%s",
                 json_string_value(json_array_get(webs, i)) ?: "");
    if (rc == 0)
        snprintf(target, tn, "%s", lb_url);
    json_decref(st);
    buf_free(&out);
    return rc;
}

static int drill_write_script(const char *path, const char *target, int duration_s, int rate)
{
    FILE *f = fopen(path, "w");
    int rc;

    if (!f)
        return -errno;
    /* 503 is an answer too: with every instance stopped it is the load balancer's page. */
    fprintf(f,
            "config:\n  target: \"%s\"\n  phases:\n    - duration: %d\n      arrivalRate: %d\n"
            "      name: \"drill\"\n  http:\n    timeout: 5\nscenarios:\n  - name: \"drill\"\n"
            "    flow:\n      - get:\n          url: \"/\"\n",
            target, duration_s, rate);
    rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Runs the load and the steps on the loop until both are done. */
static int drill_run(struct drill *d, const char *script, const char *target, const char *env,
                     const char *json_out)
{
    char *argv[] = {d->exe,           "load", "run",          "--quiet",      "--output",
                    (char *)json_out, "-t",   (char *)target, (char *)script, env ? "-e" : NULL,
                    (char *)env,      NULL};
    int rc;

    uv_loop_init(&d->loop);
    uv_timer_init(&d->loop, &d->timer);
    d->timer.data = d;
    uv_signal_init(&d->loop, &d->sigint);
    d->sigint.data = d;
    uv_signal_start(&d->sigint, drill_sigint, SIGINT);
    uv_signal_init(&d->loop, &d->sigterm);
    d->sigterm.data = d;
    uv_signal_start(&d->sigterm, drill_sigint, SIGTERM);
    d->start_ns = uv_hrtime();
    rc = drill_spawn(d, &d->load, argv, drill_load_exit);
    if (rc < 0) {
        fprintf(stderr, "mesh drill: cannot run mesh load: %s\n", uv_strerror(rc));
        uv_close((uv_handle_t *)&d->load, drill_closed);
        drill_close_waits(d);
    } else {
        d->load_running = true;
        drill_schedule(d);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    return rc;
}

/* Events with t_ms from the run's start (the report's first counter), into meshkit.events. */
static void drill_mark_events(json_t *report, const json_t *events)
{
    json_t *mk = json_object_get(report, "meshkit"), *out = json_array(), *e;
    double start =
        json_number_value(json_object_get(json_object_get(report, "aggregate"), "firstCounterAt"));
    size_t i;

    json_array_foreach(events, i, e)
    {
        double t = json_number_value(json_object_get(e, "epoch_ms")) - start;
        json_array_append_new(out, json_pack("{s:I, s:O}", "t_ms", (json_int_t)(t > 0 ? t : 0),
                                             "name", json_object_get(e, "name")));
    }
    if (!json_is_object(mk)) {
        mk = json_object();
        json_object_set_new(report, "meshkit", mk);
    }
    json_object_set_new(mk, "events", out);
}

/* Reads the run's report, marks the events, prints the phases and writes -output / -report. */
static int drill_finish(struct drill *d, const char *json_path, const char *output,
                        const char *report_path)
{
    struct config_doc doc = {0};
    struct err e = {{0}};
    json_t *phases;
    int rc = config_doc_load(json_path, &doc, &e);

    if (rc < 0) {
        fprintf(stderr, "mesh drill: the load wrote no report: %s\n", e.msg);
        return rc;
    }
    drill_mark_events(doc.root, d->events);
    if (d->accepted) /* the user's script: what its checks accept is no failure */
        json_object_set(json_object_get(doc.root, "meshkit"), "accepted_codes", d->accepted);
    else /* the script was a temporary file: name what ran instead */
        json_object_set_new(json_object_get(doc.root, "meshkit"), "scenario_file",
                            json_sprintf("mesh drill %s", d->kind->name));
    phases = load_drill_phases(doc.root);
    json_object_set_new(json_object_get(doc.root, "meshkit"), "drill",
                        json_pack("{s:s, s:O}", "kind", d->kind->name, "phases", phases));
    printf("\nDrill %s, %d s:\n", d->kind->name, d->duration_s);
    load_drill_print(stdout, phases);
    if (output &&
        json_dump_file(doc.root, output, JSON_INDENT(2) | JSON_MESH_REAL_PRECISION) != 0) {
        fprintf(stderr, "mesh drill: %s: cannot write the report\n", output);
        rc = -EIO;
    }
    if (report_path && load_report_html_write(doc.root, report_path, &e) < 0) {
        fprintf(stderr, "mesh drill: %s\n", e.msg);
        rc = -EIO;
    } else if (report_path) {
        printf("Report written to %s\n", report_path);
    }
    json_decref(phases);
    config_doc_free(&doc);
    return rc;
}

/*
 * -script: reads the user's script for its duration and the codes its checks accept (only
 * with the expect plugin, as only then do they apply). Returns 0 or -1 (problems printed).
 */
static int drill_read_script(struct drill *d, const char *file, const char *env, const char *target)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;
    struct err e = {{0}};
    struct load_script_opts o = {.env = env, .target = target};

    if (load_script_load(file, &o, &s, &msgs, &e) < 0) {
        fputs(msgs.data ? msgs.data : e.msg, stderr);
        buf_free(&msgs);
        return -1;
    }
    d->duration_s = (int)((load_script_duration_ms(&s) + 999) / 1000);
    d->accepted = s.expect_plugin ? load_script_accepted_codes(&s) : json_array();
    load_script_free(&s);
    buf_free(&msgs);
    return 0;
}

static const struct drill_kind *drill_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(drill_kinds); i++) {
        if (strcmp(drill_kinds[i].name, name) == 0)
            return &drill_kinds[i];
    }
    return NULL;
}

struct drill_opts {
    int duration_s, rate;
    char *report, *output, *run_dir, *target, *script, *env;
};

/* Flags after KIND. Returns 0, 1 for help (usage printed) or -1 (message and usage printed). */
static int drill_parse(int argc, char **argv, struct drill_opts *o, const struct drill_kind **k)
{
    struct flag flags[] = {
        {"duration", FLAG_INT, &o->duration_s, "Seconds of load; the steps are spread over it.",
         false},
        {"rate", FLAG_INT, &o->rate, "New users a second, each sending GET / once.", false},
        {"report", FLAG_STRING, &o->report, "Write the HTML report, events marked, here.", false},
        {"output", FLAG_STRING, &o->output, "Write the report JSON (with the phases) here.", false},
        {"run-dir", FLAG_STRING, &o->run_dir,
         "Run directory of the cluster (also MESH_RUN_DIR). Default ./run", false},
        {"target", FLAG_STRING, &o->target, "Load this URL instead of the cluster's lb.", false},
        {"script", FLAG_STRING, &o->script,
         "Run this Artillery script as the load (its phases set the duration).", false},
        {"e", FLAG_STRING, &o->env, "With -script: its environment to use.", false},
    };
    struct err e = {{0}};
    int first = 0, rc = argc < 2 ? FLAGS_HELP : 0;

    if (rc == 0 && argv[1][0] == '-')
        rc = flags_parse(flags, ARRAY_LEN(flags), argc - 1, argv + 1, &first, &e);
    if (rc == 0 && !(*k = drill_find(argv[1]))) {
        rc =
            err_set(&e, "mesh drill: unknown drill \"%s\" (failover, scale or node-loss)", argv[1]);
    }
    if (rc == 0)
        rc = flags_parse(flags, ARRAY_LEN(flags), argc - 2, argv + 2, &first, &e);
    if (rc == 0 && first < argc - 2)
        rc = err_set(&e, "mesh drill: unexpected argument \"%s\"", argv[2 + first]);
    if (rc == 0 && (o->duration_s < DRILL_MIN_S || o->duration_s > DRILL_MAX_S))
        rc = err_set(&e, "mesh drill: -duration wants %d..%d seconds", DRILL_MIN_S, DRILL_MAX_S);
    if (rc == 0 && (o->rate < 1 || o->rate > 100000))
        rc = err_set(&e, "mesh drill: -rate wants 1..100000 users a second");
    if (rc == 0)
        return 0;
    if (rc != FLAGS_HELP)
        fprintf(stderr, "%s\n", e.msg);
    flags_usage(rc == FLAGS_HELP ? stdout : stderr, DRILL_USAGE, flags, ARRAY_LEN(flags));
    return rc == FLAGS_HELP ? 1 : -1;
}

int load_drill_main(int argc, char **argv)
{
    struct drill_opts o = {.duration_s = 150, .rate = 20};
    struct drill d = {.events = json_array()};
    char target[300], tmpdir[] = "/tmp/mesh-drill.XXXXXX", *script = NULL, *json_out = NULL;
    size_t exe_len = sizeof(d.exe);
    struct err e = {{0}};
    int rc = drill_parse(argc, argv, &o, &d.kind), exit_code = 1;

    if (rc != 0) {
        exit_code = rc > 0 ? 0 : 2;
        goto out;
    }
    d.run_dir = o.run_dir ? o.run_dir : getenv("MESH_RUN_DIR") ? getenv("MESH_RUN_DIR") : "run";
    d.duration_s = o.duration_s;
    if (uv_exepath(d.exe, &exe_len) != 0) {
        fprintf(stderr, "mesh drill: cannot find its own binary\n");
        goto out;
    }
    if (drill_read_cluster(&d, target, sizeof(target), &e) < 0) {
        fprintf(stderr, "mesh drill: %s\n", e.msg);
        goto out;
    }
    if (o.target)
        snprintf(target, sizeof(target), "%s", o.target);
    if (o.script && drill_read_script(&d, o.script, o.env, target) < 0) {
        exit_code = 2;
        goto out;
    }
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mesh drill: cannot set up: %s\n", strerror(errno));
        goto out;
    }
    script = xasprintf("%s/drill.yml", tmpdir);
    json_out = xasprintf("%s/drill.json", tmpdir);
    if (!o.script && (rc = drill_write_script(script, target, o.duration_s, o.rate)) < 0) {
        fprintf(stderr, "mesh drill: %s: %s\n", script, strerror(-rc));
        goto out_tmp;
    }
    if (o.script)
        printf("Drill %s: %s against %s for %d s\n", d.kind->name, o.script, target, d.duration_s);
    else
        printf("Drill %s: %d users/s against %s for %d s\n", d.kind->name, o.rate, target,
               o.duration_s);
    fflush(stdout);
    if (drill_run(&d, o.script ? o.script : script, target, o.script ? o.env : NULL, json_out) ==
            0 &&
        drill_finish(&d, json_out, o.output, o.report) == 0 && d.load_status == 0 &&
        d.op_failures == 0)
        exit_code = 0;
out_tmp:
    unlink(json_out);
    if (!o.script)
        unlink(script);
    rmdir(tmpdir);
out:
    free(script);
    free(json_out);
    free(o.report);
    free(o.output);
    free(o.run_dir);
    free(o.target);
    free(o.script);
    free(o.env);
    json_decref(d.events);
    json_decref(d.accepted);
    return exit_code;
}
