/* The supervisor's pure parts: restart policy, /proc parsing, rotation names, formats, specs,
 * ecosystem files and the ls table. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_limit.h"
#include "sleeper.h"
#include "scratch.h"

#include "lib/alloc.h"
#include "lib/procfs.h"
#include "pm/daemon.h"
#include "pm/policy.h"
#include "pm/spec.h"
#include "pm/table.h"

static int setup(void **state)
{
    return scratch_make("test_pm");
}

static int teardown(void **state)
{
    return scratch_remove();
}

static void test_backoff_grows_caps_and_resets(void **state)
{
    struct pm_policy p = {.exp_backoff_ms = 100, .min_uptime_ms = 1000, .max_restarts = 16};
    struct pm_backoff b = {0};
    int64_t delay = 0;
    int64_t want[] = {100, 150, 225, 337, 505, 757, 1135, 1702, 2553, 3829, 5743, 8614, 12921};

    for (size_t k = 0; k < ARRAY_LEN(want); k++) {
        assert_true(pm_backoff_next(&b, &p, 5000, &delay));
        assert_int_equal(delay, want[k]);
    }
    assert_true(pm_backoff_next(&b, &p, 5000, &delay));
    assert_int_equal(delay, PM_BACKOFF_CAP_MS);
    assert_true(pm_backoff_next(&b, &p, 5000, &delay));
    assert_int_equal(delay, PM_BACKOFF_CAP_MS);
    /* 30 s up is not more than 30 s; one more millisecond is: back to the first delay. */
    assert_true(pm_backoff_next(&b, &p, PM_BACKOFF_RESET_MS, &delay));
    assert_int_equal(delay, PM_BACKOFF_CAP_MS);
    assert_true(pm_backoff_next(&b, &p, PM_BACKOFF_RESET_MS + 1, &delay));
    assert_int_equal(delay, 100);
    assert_int_equal(b.unstable, 0);
    /* A first delay past the cap is kept; only the growth is capped. */
    p.exp_backoff_ms = 20000;
    b = (struct pm_backoff){0};
    assert_true(pm_backoff_next(&b, &p, 5000, &delay));
    assert_int_equal(delay, 20000);
    assert_true(pm_backoff_next(&b, &p, 5000, &delay));
    assert_int_equal(delay, PM_BACKOFF_CAP_MS);
}

static void test_fixed_delay_and_precedence(void **state)
{
    struct pm_policy fixed = {.restart_delay_ms = 250, .min_uptime_ms = 1000, .max_restarts = 16};
    struct pm_policy both = fixed;
    struct pm_policy neither = {.min_uptime_ms = 1000, .max_restarts = 16};
    struct pm_backoff b = {0};
    int64_t delay = -1;

    for (int k = 0; k < 5; k++) {
        assert_true(pm_backoff_next(&b, &fixed, 5000, &delay));
        assert_int_equal(delay, 250);
    }
    /* Both set: the backoff wins, as in PM2 (its delay is computed last). */
    both.exp_backoff_ms = 100;
    b = (struct pm_backoff){0};
    assert_true(pm_backoff_next(&b, &both, 5000, &delay));
    assert_int_equal(delay, 100);
    assert_true(pm_backoff_next(&b, &both, 5000, &delay));
    assert_int_equal(delay, 150);
    /* Neither: at once, every time. */
    b = (struct pm_backoff){0};
    for (int k = 0; k < 3; k++) {
        assert_true(pm_backoff_next(&b, &neither, 5000, &delay));
        assert_int_equal(delay, 0);
    }
}

static void test_exit_codes(void **state)
{
    struct pm_exit_codes c = {{0}};

    assert_int_equal(pm_parse_exit_codes("0,3", &c), 0);
    assert_int_equal(pm_parse_exit_codes("255", &c), 0);
    assert_true(pm_exit_codes_has(&c, 0));
    assert_true(pm_exit_codes_has(&c, 3));
    assert_true(pm_exit_codes_has(&c, 255));
    assert_false(pm_exit_codes_has(&c, 1));
    assert_false(pm_exit_codes_has(&c, 64));
    assert_false(pm_exit_codes_has(&c, -1)); /* an adopted process's unknown code */
    assert_false(pm_exit_codes_has(&c, 256));
    const char *bad[] = {"", ",", "0,", ",0", "256", "1000", "-1", "3 ", "x", "0;1", "0,,1"};
    for (size_t k = 0; k < ARRAY_LEN(bad); k++) {
        struct pm_exit_codes d = {{0}};
        if (pm_parse_exit_codes(bad[k], &d) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[k]);
    }
}

static void test_backoff_unstable_errors(void **state)
{
    struct pm_policy p = {.exp_backoff_ms = 100, .min_uptime_ms = 1000, .max_restarts = 3};
    struct pm_backoff b = {0};
    int64_t delay = 0;

    /* As PM2: the third unstable exit in a row of max_restarts 3 is final (2 restarts). */
    for (int k = 0; k < 2; k++)
        assert_true(pm_backoff_next(&b, &p, 10, &delay));
    assert_false(pm_backoff_next(&b, &p, 10, &delay));
    assert_int_equal(b.unstable, 3);
    /* A stable run (min_uptime exactly is one) starts the count over. */
    b = (struct pm_backoff){0};
    for (int k = 0; k < 2; k++)
        assert_true(pm_backoff_next(&b, &p, 10, &delay));
    assert_true(pm_backoff_next(&b, &p, 1000, &delay));
    assert_int_equal(b.unstable, 0);
    for (int k = 0; k < 2; k++)
        assert_true(pm_backoff_next(&b, &p, 10, &delay));
    assert_false(pm_backoff_next(&b, &p, 10, &delay));
    /* max_restarts 0: no exit is restarted, a stable one neither (PM2: 0 unstable >= 0). */
    struct pm_policy none = {.exp_backoff_ms = 100, .min_uptime_ms = 1000, .max_restarts = 0};
    b = (struct pm_backoff){0};
    assert_false(pm_backoff_next(&b, &none, 5000, &delay));
    b = (struct pm_backoff){0};
    assert_false(pm_backoff_next(&b, &none, 10, &delay));
}

static void test_memory_sizes(void **state)
{
    struct {
        const char *text;
        int64_t want; /* -1: refused */
    } cases[] = {
        {"100", 100},
        {"0", 0},
        {"512K", 512 * 1024},
        {"100M", 100 * 1024 * 1024},
        {"2G", INT64_C(2) * 1024 * 1024 * 1024},
        {"1048576G", INT64_C(1) << 50}, /* PM_MEMORY_MAX */
        {"1048577G", -1},
        {"", -1},
        {"M", -1},
        {"100MB", -1},
        {"100m", -1}, /* PM2's pattern takes capitals only */
        {"1.5G", -1},
        {"-5", -1},
        {" 5", -1},
        {"99999999999999999999999", -1},
    };

    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        int64_t got = -1;
        int rc = pm_parse_memory(cases[k].text, &got);
        if (cases[k].want < 0 ? rc != -EINVAL : rc != 0 || got != cases[k].want)
            fail_msg("\"%s\": rc %d, got %lld", cases[k].text, rc, (long long)got);
    }
}

static void test_rotation_names_and_formats(void **state)
{
    char out[64];
    char tiny[8];

    assert_int_equal(pm_rotate_name("/l/web-0-out.log", 1, out, sizeof(out)), 0);
    assert_string_equal(out, "/l/web-0-out.log.1");
    assert_int_equal(pm_rotate_name("/l/web-0-out.log", PM_LOG_KEEP, out, sizeof(out)), 0);
    assert_string_equal(out, "/l/web-0-out.log.5");
    assert_int_equal(pm_rotate_name("/l/web-0-out.log", 1, tiny, sizeof(tiny)), -ENAMETOOLONG);

    pm_format_uptime(999, out, sizeof(out));
    assert_string_equal(out, "0s");
    pm_format_uptime(45000, out, sizeof(out));
    assert_string_equal(out, "45s");
    pm_format_uptime(12 * 60000 + 5, out, sizeof(out));
    assert_string_equal(out, "12m");
    pm_format_uptime(5 * 3600000LL, out, sizeof(out));
    assert_string_equal(out, "5h");
    pm_format_uptime(3 * 86400000LL, out, sizeof(out));
    assert_string_equal(out, "3D");

    enum pm_status s;
    assert_true(pm_status_parse("waiting restart", &s));
    assert_int_equal(s, PM_WAITING);
    assert_string_equal(pm_status_name(PM_ERRORED), "errored");
    assert_false(pm_status_parse("sleeping", &s));

    assert_true(pm_name_valid("web-1.a_b"));
    assert_false(pm_name_valid("all"));
    assert_false(pm_name_valid("-x"));
    assert_false(pm_name_valid("a/b"));
    assert_false(pm_name_valid(""));
}

static void test_spec_json_round_trip(void **state)
{
    struct pm_spec s;
    struct pm_spec back;
    struct err e = {{0}};
    json_t *j;

    pm_spec_init(&s);
    s.name = xstrdup("web");
    pm_spec_add_arg(&s, "/bin/webapp");
    pm_spec_add_arg(&s, "-no-register");
    pm_spec_set_env(&s, "A=1");
    pm_spec_set_env(&s, "A=2");
    s.instances = 3;
    s.port_base = 3000;
    s.restart_delay_ms = 500;
    s.exp_backoff_ms = 200;
    s.max_memory_bytes = 300 << 20;
    pm_exit_codes_add(&s.stop_exit_codes, 0);
    pm_exit_codes_add(&s.stop_exit_codes, 200);
    assert_int_equal(pm_spec_check(&s, &e), 0);
    j = pm_spec_to_json(&s);
    pm_spec_init(&back);
    assert_int_equal(pm_spec_from_json(j, &back, NULL, "app", &e), 0);
    assert_string_equal(back.name, "web");
    assert_int_equal(back.argc, 2);
    assert_string_equal(back.argv[0], "/bin/webapp");
    assert_string_equal(back.argv[1], "-no-register");
    assert_null(back.argv[2]);
    assert_int_equal(back.nenv, 1);
    assert_string_equal(back.env[0], "A=2");
    assert_int_equal(back.instances, 3);
    assert_int_equal(back.port_base, 3000);
    assert_int_equal(back.kill_timeout_ms, PM_DEFAULT_KILL_MS);
    assert_int_equal(back.listen_timeout_ms, PM_DEFAULT_LISTEN_MS);
    assert_int_equal(back.restart_delay_ms, 500);
    assert_int_equal(back.exp_backoff_ms, 200);
    assert_int_equal(back.max_memory_bytes, 300 << 20);
    assert_memory_equal(&back.stop_exit_codes, &s.stop_exit_codes, sizeof(s.stop_exit_codes));
    json_decref(j);
    pm_spec_free(&back);

    /* Too many ports: the check names the key. */
    s.port_base = 65535;
    assert_int_equal(pm_spec_check(&s, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "port_base"));
    /* -port-base is any int on the command line: the sum must not overflow into a pass. */
    s.port_base = INT_MAX;
    s.instances = 2;
    assert_int_equal(pm_spec_check(&s, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "port_base"));
    pm_spec_free(&s);
}

/* A bad value leaves the spec's field as it was, not set from an unread integer. */
static void test_spec_bad_int_keeps_field(void **state)
{
    static const char *const keys[] = {"instances", "port_base", "max_restarts"};
    struct pm_spec s;
    struct err e = {{0}};

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_t *j =
            json_pack("{s:s, s:s, s:s}", "name", "web", "script", "/bin/true", keys[k], "many");

        pm_spec_init(&s);
        s.instances = 7;
        s.port_base = 7;
        s.max_restarts = 7;
        assert_int_equal(pm_spec_from_json(j, &s, NULL, "app", &e), -EINVAL);
        assert_non_null(strstr(e.msg, keys[k]));
        assert_int_equal(s.instances, 7);
        assert_int_equal(s.port_base, 7);
        assert_int_equal(s.max_restarts, 7);
        pm_spec_free(&s);
        json_decref(j);
    }
}

/* A process whose start ticks could not be read is not sampled: its PID may have been reused. */
static void test_sample_without_start_ticks(void **state)
{
    struct pm_inst i = {0};

    i.pid = INT_MAX; /* above any pid_max: /proc has no such entry */
    i.start_ticks = 0;
    pm_inst_sample(&i);
    assert_int_equal(i.cpu_sample_ns, 0);
    assert_int_equal(i.cpu_ticks, 0);
}

/* A child in its own session that waits to be killed (gone anyway after 120 s). */
/* A daemon's table loaded from state_path (in a loop of its own, with the pids and logs
 * directories given) with `spare` file descriptors to spare. */
static void load_short_of_fds(struct pm_daemon *d, uv_loop_t *loop, char *pids, char *logs,
                              char *state_path, int spare)
{
    struct rlimit saved;

    uv_loop_init(loop);
    d->loop = loop;
    d->home = scratch_dir;
    d->pids_dir = pids;
    d->logs_dir = logs;
    d->state_path = state_path;
    assert_int_equal(fd_limit_spare(spare, &saved), 0);
    pm_state_load(d);
    assert_int_equal(fd_limit_restore(&saved), 0);
}

/*
 * A daemon that cannot check or watch the process a reload was replacing when the last daemon
 * died (out of descriptors, at start) keeps its .retired.pid file, the only record of a live
 * process that nobody supervises, and stops it on a later pass that can (pm_retired_retry).
 * With one descriptor to spare the pids directory opens and the pidfile in it does not; with
 * none, the directory does not either.
 */
static void retired_kept(int spare)
{
    struct pm_daemon d = {0};
    char pids[600], path[700], state_path[600];
    uv_loop_t loop;
    struct err e;
    int status = 0;
    pid_t child = sleeper();

    assert_true(child > 0);
    snprintf(pids, sizeof(pids), "%s/retired-pids-%d", scratch_dir, spare);
    snprintf(state_path, sizeof(state_path), "%s/retired-state.json", scratch_dir);
    assert_int_equal(mkdir(pids, 0755), 0);
    snprintf(path, sizeof(path), "%s/web-0.%d.retired.pid", pids, (int)child);
    assert_int_equal(procfs_pidfile_write(path, child, &e), 0);
    load_short_of_fds(&d, &loop, pids, scratch_dir, state_path, spare);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(waitpid(child, &status, WNOHANG), 0);

    /* With descriptors again, the next pass stops it (SIGTERM) and removes the file. */
    pm_retired_retry(&d);
    for (int k = 0; k < 100 && access(path, F_OK) == 0; k++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    pm_retired_retry(&d); /* nothing left: a no-op */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    pm_retired_free(&d);
}

static void test_retired_pidfile_kept_when_it_cannot_be_watched(void **state)
{
    retired_kept(1);
}

static void test_retired_pidfile_kept_when_its_directory_cannot_be_read(void **state)
{
    retired_kept(0);
}

/*
 * A daemon that cannot watch the live processes of its saved table (out of descriptors at
 * start) never starts a second copy of them, nor forgets them: each instance keeps its process
 * ("launching") and is adopted once descriptors are back; a stop asked meanwhile signals it once
 * it is watched. Two instances, one descriptor to
 * spare: the first revived takes it with its pidfd, so neither can be checked and watched.
 */
static void test_revive_retries_adoption_when_out_of_descriptors(void **state)
{
    struct pm_daemon d = {0};
    char pids[600], logs[600], state_path[600];
    pid_t child[2] = {sleeper(), sleeper()};
    struct pm_inst *web0, *web1;
    struct pm_spec s;
    uv_loop_t loop;
    json_t *insts = json_array();
    json_t *root;
    int status = 0;

    assert_true(child[0] > 0 && child[1] > 0);
    snprintf(pids, sizeof(pids), "%s/adopt-pids", scratch_dir);
    snprintf(logs, sizeof(logs), "%s/adopt-logs", scratch_dir);
    snprintf(state_path, sizeof(state_path), "%s/adopt-state.json", scratch_dir);
    assert_int_equal(mkdir(pids, 0755), 0);
    assert_int_equal(mkdir(logs, 0755), 0);
    pm_spec_init(&s);
    s.name = xstrdup("web");
    pm_spec_add_arg(&s, "/bin/true"); /* what a second copy would run: gone at once */
    s.instances = 2;
    for (int k = 0; k < 2; k++) {
        uint64_t start = procfs_start_time(child[k]);
        assert_true(start > 0);
        json_array_append_new(insts, json_pack("{s:i,s:i,s:i,s:I,s:s}", "instance", k, "pm_id", k,
                                               "pid", (int)child[k], "start_ticks",
                                               (json_int_t)start, "status", "online"));
    }
    root = json_pack("{s:i,s:i,s:[{s:o,s:b,s:o}]}", "version", 1, "next_id", 2, "apps", "spec",
                     pm_spec_to_json(&s), "deleting", 0, "instances", insts);
    assert_int_equal(json_dump_file(root, state_path, 0), 0);
    json_decref(root);
    pm_spec_free(&s);
    load_short_of_fds(&d, &loop, pids, logs, state_path, 1);
    assert_int_equal(d.napps, 1);
    assert_int_equal(d.apps[0]->ninsts, 2);
    for (int k = 0; k < 2; k++) {
        struct pm_inst *i = d.apps[0]->insts[k];
        assert_int_equal(i->pid, child[k]);
        assert_int_equal(i->status, PM_LAUNCHING);
        assert_null(i->child);
    }

    /* A stop asked meanwhile waits for the process to be watched before it signals it. */
    web1 = d.apps[0]->insts[1];
    pm_inst_stop(web1, PM_AFTER_NONE);
    assert_int_equal(web1->status, PM_STOPPING);
    assert_int_equal(waitpid(child[1], &status, WNOHANG), 0);

    /* With descriptors again, the retry (every second) adopts the very same processes. */
    web0 = d.apps[0]->insts[0];
    for (int k = 0; k < 100 && !(web0->child && web1->status == PM_STOPPED); k++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_non_null(web0->child);
    assert_int_equal(web0->pid, child[0]);
    assert_int_equal(web0->status, PM_ONLINE);
    assert_int_equal(waitpid(child[0], &status, WNOHANG), 0);
    assert_int_equal(web1->status, PM_STOPPED);
    assert_int_equal(waitpid(child[1], &status, 0), child[1]);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

    /* As at daemon exit: let go of them, then stop what runs here. */
    for (size_t j = 0; j < d.apps[0]->ninsts; j++)
        pm_inst_release(d.apps[0]->insts[j]);
    d.apps[0]->ninsts = 0;
    pm_app_remove(&d, d.apps[0]);
    kill(child[0], SIGKILL);
    assert_int_equal(waitpid(child[0], &status, 0), child[0]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(d.apps);
}

/* What watch mode ignores: PM2's default (dot paths, node_modules) or the app's globs. */
static void test_watch_ignored(void **state)
{
    char *globs[] = {"*.log", "client/img", "\\.cache", "build/*.o"};

    /* No patterns: PM2's default, at any depth. */
    assert_false(pm_watch_ignored("lib/a.js", NULL, 0));
    assert_false(pm_watch_ignored("", NULL, 0));
    assert_true(pm_watch_ignored(".git", NULL, 0));
    assert_true(pm_watch_ignored(".git/HEAD", NULL, 0));
    assert_true(pm_watch_ignored("lib/.a.js.swp", NULL, 0));
    assert_true(pm_watch_ignored("node_modules/x/index.js", NULL, 0));
    assert_true(pm_watch_ignored("a/node_modules", NULL, 0));
    assert_false(pm_watch_ignored("my_node_modules/x", NULL, 0));
    assert_false(pm_watch_ignored("a.b/c", NULL, 0));

    /* Patterns replace the default (as ignore_watch does in PM2). */
    assert_false(pm_watch_ignored(".git/HEAD", globs, 4));
    assert_false(pm_watch_ignored("node_modules/x", globs, 4));
    /* No '/': any component; "\\." is a literal dot. */
    assert_true(pm_watch_ignored("out.log", globs, 4));
    assert_true(pm_watch_ignored("logs/today.log", globs, 4));
    assert_false(pm_watch_ignored("logs/today.log.txt", globs, 4));
    assert_true(pm_watch_ignored("a/.cache/b", globs, 4));
    /* A '/': the path or one of its leading directories, * not crossing a '/'. */
    assert_true(pm_watch_ignored("client/img", globs, 4));
    assert_true(pm_watch_ignored("client/img/logo.png", globs, 4));
    assert_false(pm_watch_ignored("client/imgs/logo.png", globs, 4));
    assert_false(pm_watch_ignored("other/client/img", globs, 4));
    assert_true(pm_watch_ignored("build/main.o", globs, 4));
    assert_false(pm_watch_ignored("build/sub/main.o", globs, 4));
    assert_false(pm_watch_ignored("src/main.c", globs, 4));
}

/* watch, ignore_watch and watch_delay as PM2's ecosystem files write them, and back. */
static void test_watch_keys(void **state)
{
    struct {
        const char *text;
        bool watch;
        size_t npaths;
        const char *err;
    } cases[] = {
        {"{\"watch\": true}", true, 0, NULL},
        {"{\"watch\": false}", false, 0, NULL},
        {"{\"watch\": \"src\"}", true, 1, NULL},
        {"{\"watch\": [\"server\", \"client\"], \"ignore_watch\": [\"*.log\", \"x\"], "
         "\"watch_delay\": 1000}",
         true, 2, NULL},
        {"{\"watch\": [], \"ignore_watch\": \"tmp\", \"watch_delay\": \"2s\"}", true, 0, NULL},
        {"{\"watch\": 1}", false, 0, "app.watch: expected a string or an array"},
        {"{\"watch\": [\"a\", 2]}", false, 0, "app.watch: element 1 is not a string"},
        {"{\"ignore_watch\": {}}", false, 0, "app.ignore_watch: expected a string or an array"},
        {"{\"watch_delay\": -1}", false, 0, "app.watch_delay: -1 out of range"},
        {"{\"watch\": [\"\"]}", false, 0, "watch: path 0 is empty"},
    };

    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        struct pm_spec s, back;
        struct err e = {{0}};
        json_t *j = json_loads(cases[k].text, 0, NULL);
        json_object_set_new(j, "name", json_string("w"));
        json_object_set_new(j, "script", json_string("sleep"));
        pm_spec_init(&s);
        int rc = pm_spec_from_json(j, &s, NULL, "app", &e);
        json_decref(j);
        if (cases[k].err) {
            assert_int_equal(rc, -EINVAL);
            if (!strstr(e.msg, cases[k].err))
                fail_msg("case %zu: %s", k, e.msg);
            pm_spec_free(&s);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(s.watch, cases[k].watch);
        assert_int_equal(s.nwatch_paths, cases[k].npaths);
        j = pm_spec_to_json(&s);
        pm_spec_init(&back);
        assert_int_equal(pm_spec_from_json(j, &back, NULL, "app", &e), 0);
        assert_int_equal(back.watch, s.watch);
        assert_int_equal(back.nwatch_paths, s.nwatch_paths);
        assert_int_equal(back.nignore_watch, s.nignore_watch);
        assert_int_equal(back.watch_delay_ms, s.watch_delay_ms);
        for (size_t i = 0; i < s.nwatch_paths; i++)
            assert_string_equal(back.watch_paths[i], s.watch_paths[i]);
        for (size_t i = 0; i < s.nignore_watch; i++)
            assert_string_equal(back.ignore_watch[i], s.ignore_watch[i]);
        json_decref(j);
        pm_spec_free(&back);
        pm_spec_free(&s);
    }
}

static void test_ecosystem(void **state)
{
    struct pm_spec *specs = NULL;
    size_t n = 0;
    struct err e = {{0}};
    const char *good = scratch_write(
        "eco.json", "{\"apps\": [\n"
                    "  {\"name\": \"web\", \"script\": \"./webapp\", \"args\": \"-a  -b\",\n"
                    "   \"instances\": 2, \"port_base\": 3000, \"kill_timeout\": \"3s\",\n"
                    "   \"env\": {\"NODE_ENV\": \"production\", \"N\": 5},\n"
                    "   \"exp_backoff_restart_delay\": 250, \"cwd\": \"sub\",\n"
                    "   \"restart_delay\": \"2s\", \"stop_exit_codes\": [0, 3],\n"
                    "   \"listen_timeout\": \"10s\", \"max_memory_restart\": \"300M\"},\n"
                    "  {\"name\": \"worker\", \"script\": \"sleep\", \"args\": [\"60\"]}\n"
                    "]}\n");
    char *sub = xasprintf("%s/sub", scratch_dir);

    assert_int_equal(mkdir(sub, 0755), 0); /* a cwd must exist */
    free(sub);
    assert_int_equal(pm_ecosystem_load(good, &specs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(specs[0].name, "web");
    assert_int_equal(specs[0].argc, 3);
    assert_string_equal(specs[0].argv[0], "./webapp");
    assert_string_equal(specs[0].argv[2], "-b");
    assert_int_equal(specs[0].kill_timeout_ms, 3000);
    assert_int_equal(specs[0].exp_backoff_ms, 250);
    assert_int_equal(specs[0].restart_delay_ms, 2000);
    assert_true(pm_exit_codes_has(&specs[0].stop_exit_codes, 0));
    assert_true(pm_exit_codes_has(&specs[0].stop_exit_codes, 3));
    assert_false(pm_exit_codes_has(&specs[0].stop_exit_codes, 1));
    assert_false(pm_exit_codes_has(&specs[1].stop_exit_codes, 0));
    assert_int_equal(specs[1].restart_delay_ms, 0);
    assert_int_equal(specs[1].exp_backoff_ms, 0);
    assert_int_equal(specs[0].listen_timeout_ms, 10000);
    assert_int_equal(specs[1].listen_timeout_ms, PM_DEFAULT_LISTEN_MS);
    assert_int_equal(specs[0].max_memory_bytes, 300 * 1024 * 1024);
    assert_int_equal(specs[1].max_memory_bytes, 0);
    assert_int_equal(specs[0].nenv, 2);
    assert_string_equal(specs[0].env[1], "N=5");
    assert_non_null(strstr(specs[0].cwd, "/sub"));
    assert_int_equal(specs[0].cwd[0], '/');
    assert_string_equal(specs[1].argv[1], "60");
    /* No cwd: the file's own directory. */
    char *dir = realpath(scratch_dir, NULL);
    assert_string_equal(specs[1].cwd, dir);
    free(dir);
    for (size_t k = 0; k < n; k++)
        pm_spec_free(&specs[k]);
    free(specs);

    struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{\"apps\": [\n {\"name\": \"a\",\n  \"instances\": \"two\", \"script\": \"x\"}]}",
         ":3: apps[0].instances: expected an integer"},
        {"{\"apps\": [\n {\"name\": \"a\"}\n]}", ":2: apps[0].script: missing"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\"},\n {\"name\": \"a\", \"script\": "
         "\"y\"}]}",
         ":2: apps[1].name: \"a\" appears twice"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n \"colour\": 1}]}",
         ":2: apps[0].colour: unknown key"},
        {"{\"apps\": [{\"name\": \"all\", \"script\": \"x\"}]}", ":1: apps[0].name: invalid app"},
        {"{\"apps\": []}", ":1: apps: expected a non-empty array"},
        {"{\"apps\": [{\"name\": \"a\",\n\"script\": \"x\", \"min_uptime\": \"soon\"}]}",
         ":2: apps[0].min_uptime: invalid duration"},
        {"{\"apps\": [{\"name\": \"a\",\n\"script\": \"x\",\n \"listen_timeout\": -5}]}",
         ":3: apps[0].listen_timeout: "},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n\n \"max_memory_restart\": \"1GB\"}]}",
         ":3: apps[0].max_memory_restart: invalid size \"1GB\""},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n \"max_memory_restart\": -1}]}",
         ":2: apps[0].max_memory_restart: -1 out of range"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n \"stop_exit_codes\": [0, 256]}]}",
         ":2: apps[0].stop_exit_codes: element 1 is not an exit code (0..255)"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n \"stop_exit_codes\": \"0\"}]}",
         ":2: apps[0].stop_exit_codes: expected an array"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"x\",\n \"restart_delay\": -1}]}",
         ":2: apps[0].restart_delay: -1 out of range"},
        {"{\"apps\": [ {\"name\": \"a\" ", ":1: "},
    };
    for (size_t k = 0; k < ARRAY_LEN(bad); k++) {
        const char *path = scratch_write("bad.json", bad[k].text);
        e.msg[0] = '\0';
        assert_int_not_equal(pm_ecosystem_load(path, &specs, &n, &e), 0);
        assert_null(specs);
        if (!strstr(e.msg, bad[k].want) || strncmp(e.msg, path, strlen(path)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\" after the path", k, e.msg, bad[k].want);
    }
}

static void test_ls_table(void **state)
{
    json_t *rows = json_loads(
        "[{\"name\": \"web\", \"pm_id\": 0, \"instance\": 0, \"pid\": 4242, \"status\": \"online\","
        "  \"restarts\": 2, \"uptime_ms\": 125000, \"cpu\": 3.4, \"memory\": 10485760,"
        "  \"spec\": {\"name\": \"web\", \"exp_backoff_restart_delay\": 100}},"
        " {\"name\": \"worker-long\", \"pm_id\": 11, \"instance\": 1, \"pid\": null,"
        "  \"status\": \"waiting restart\", \"restarts\": 0, \"uptime_ms\": 0, \"cpu\": 0,"
        "  \"memory\": 0}]",
        0, NULL);
    struct buf b = BUF_INIT;

    pm_format_ls(rows, &b);
    assert_string_equal(
        b.data, "name         id  instance  pid   status           restarts  uptime  cpu  memory\n"
                "web          0   0         4242  online           2         2m      3%   10.5 MB\n"
                "worker-long  11  1         -     waiting restart  0         0       0%   0 B\n");
    buf_reset(&b);
    pm_format_describe(rows, &b);
    assert_non_null(strstr(b.data, "status                     online\n"));
    assert_non_null(strstr(b.data, "exp_backoff_restart_delay  100\n"));
    assert_non_null(strstr(b.data, "\n\nname       worker-long\n"));
    assert_non_null(strstr(b.data, "pid        -\n"));
    buf_free(&b);
    json_decref(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_grows_caps_and_resets),
        cmocka_unit_test(test_backoff_unstable_errors),
        cmocka_unit_test(test_memory_sizes),
        cmocka_unit_test(test_fixed_delay_and_precedence),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_rotation_names_and_formats),
        cmocka_unit_test(test_spec_json_round_trip),
        cmocka_unit_test(test_spec_bad_int_keeps_field),
        cmocka_unit_test(test_sample_without_start_ticks),
        cmocka_unit_test(test_retired_pidfile_kept_when_it_cannot_be_watched),
        cmocka_unit_test(test_retired_pidfile_kept_when_its_directory_cannot_be_read),
        cmocka_unit_test(test_revive_retries_adoption_when_out_of_descriptors),
        cmocka_unit_test(test_watch_ignored),
        cmocka_unit_test(test_watch_keys),
        cmocka_unit_test(test_ecosystem),
        cmocka_unit_test(test_ls_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
