/*
 * `mesh pm`: the supervisor's command line. Each command is one request to the daemon of the
 * -home directory (started on demand, as PM2 does), except `daemon -foreground`, which is the
 * daemon, and `logs`, which reads the log files itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/file.h"
#include "lib/flags.h"
#include "lib/json.h"
#include "lib/procfs.h"
#include "pm/client.h"
#include "pm/daemon.h"
#include "pm/pm.h"
#include "pm/spec.h"
#include "pm/table.h"

#define PM_KILL_WAIT_MS 30000

static const char usage_text[] =
    "Usage: mesh pm [-home DIR] COMMAND [args]\n"
    "\n"
    "Process supervisor (PM2's job). DIR defaults to $MESH_PM_HOME, else $HOME/.mesh/pm.\n"
    "\n"
    "Commands:\n"
    "    start NAME [flags] -- CMD ARGS...   start N instances of a command\n"
    "    start FILE.json                     start the apps of an ecosystem file\n"
    "    stop|restart|delete NAME|all        stop gracefully / restart / stop and forget\n"
    "    reload NAME|all                     restart one instance at a time, each new process\n"
    "                                        started and listening before the old one stops\n"
    "    scale NAME N|+N|-N                  set, add or remove instances\n"
    "    ls [-json]                          list processes\n"
    "    describe NAME [-json]               details of an app's instances\n"
    "    logs NAME [-lines N] [-f] [-err|-out]  show (and follow) log files\n"
    "    daemon [-foreground]                start the daemon\n"
    "    ping [-json]                        exit 0 if the daemon answers (-json: its pid)\n"
    "    kill                                stop every app, then the daemon\n"
    "\n"
    "Run 'mesh pm COMMAND -help' for a command's flags; start's include PM2's restart policy\n"
    "(-no-autorestart, -max-restarts, -min-uptime, -restart-delay, -exp-backoff-restart-delay,\n"
    "-stop-exit-codes, -max-memory-restart), -cron-restart (-c) and watch mode (-watch,\n"
    "-ignore-watch, -watch-delay).\n"
    "\n"
    "Environment of the daemon (that of the command that starts it):\n"
    "    PM2_WORKER_INTERVAL   milliseconds between max_memory_restart checks (default 30000)\n";

static int fail(const char *msg)
{
    fprintf(stderr, "mesh pm: %s\n", msg);
    return 1;
}

/* -home, else $MESH_PM_HOME, else $HOME/.mesh/pm; made absolute. Heap string or NULL. */
static char *resolve_home(const char *flag)
{
    const char *env = getenv("MESH_PM_HOME");
    const char *home = getenv("HOME");
    char *dir;
    char *abs;

    if (flag && flag[0])
        dir = xstrdup(flag);
    else if (env && env[0])
        dir = xstrdup(env);
    else
        dir = xasprintf("%s/.mesh/pm", home && home[0] ? home : "/tmp");
    struct err e = {{0}};
    if (file_mkdir_all_err(dir, 0700, &e) < 0) {
        fprintf(stderr, "mesh pm: %s\n", e.msg);
        free(dir);
        return NULL;
    }
    /* An absolute path stays as given: `mesh up` finds the daemon by its -home argument. */
    if (dir[0] == '/')
        return dir;
    abs = realpath(dir, NULL);
    free(dir);
    return abs;
}

/*
 * Parses a command's flags (argv[0] is the command), which may come before, between or after
 * its positional arguments; those go to pos[] (at most maxpos, more is an error). Prints usage
 * on -help. Returns 0, 2 for help shown, or 1 with the error printed.
 */
static int parse_args(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                      char **pos, int maxpos, int *npos)
{
    struct err e = {{0}};
    int at = 1;
    int rc = 0;

    *npos = 0;
    while (rc == 0 && at < argc) {
        int first = 0;
        rc = flags_parse(flags, n, argc - at, argv + at, &first, &e);
        at += first;
        if (rc == 0 && at < argc) {
            if (*npos == maxpos)
                rc = err_set(&e, "unexpected argument \"%s\"", argv[at]);
            else
                pos[(*npos)++] = argv[at++];
        }
    }
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, usage, flags, n);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "mesh pm: %s\n", e.msg);
        flags_usage(stderr, usage, flags, n);
        return 1;
    }
    return 0;
}

/* Sends a request; prints the error. Returns 0 with *reply, or 1. */
static int request(const char *home, json_t *req, json_t **reply)
{
    struct err e = {{0}};
    int rc = pm_client_request(home, req, true, reply, &e);

    json_decref(req);
    if (rc != 0)
        return fail(e.msg);
    return 0;
}

static int print_table(const json_t *rows)
{
    struct buf b = BUF_INIT;

    pm_format_ls(rows, &b);
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
    return 0;
}

static int print_ls(const char *home)
{
    json_t *reply;
    int rc = request(home, json_pack("{s:s}", "cmd", "ls"), &reply);

    if (rc == 0)
        print_table(json_object_get(reply, "processes"));
    json_decref(reply);
    return rc;
}

/* ---- start ------------------------------------------------------------------------------ */

struct start_opts {
    int instances;
    int port_base;
    struct flag_list env;
    char *cwd;
    int64_t kill_timeout;
    int64_t listen_timeout;
    int max_restarts;
    bool no_autorestart;
    int64_t min_uptime;
    int64_t restart_delay;
    int64_t exp_backoff;
    struct flag_list stop_exit_codes;
    int max_log_size;
    char *max_memory; /* PM2's "100M" */
    char *cron;       /* -cron-restart or -c */
    bool watch;
    struct flag_list ignore_watch;
    int64_t watch_delay;
};

static const char start_usage[] =
    "mesh pm start NAME [flags] -- CMD ARGS...\n"
    "       mesh pm start FILE.json\n"
    "\n"
    "Starts N instances of CMD, each with INSTANCE_ID, NODE_APP_INSTANCE, PM_ID and (with\n"
    "-port-base) PORT=P+i in its environment. Returns once they are spawned.";

/* Builds the spec from flags and the command after "--". */
static int spec_from_flags(const struct start_opts *o, const char *name, int argc, char **argv,
                           struct pm_spec *s, struct err *e)
{
    char cwd[4096];

    s->name = xstrdup(name);
    for (int k = 0; k < argc; k++)
        pm_spec_add_arg(s, argv[k]);
    for (size_t k = 0; k < o->env.n; k++)
        pm_spec_set_env(s, o->env.items[k]);
    if (o->cwd)
        s->cwd = realpath(o->cwd, NULL);
    else if (getcwd(cwd, sizeof(cwd)))
        s->cwd = xstrdup(cwd);
    if (o->cwd && !s->cwd)
        return err_set(e, "-cwd %s: %s", o->cwd, strerror(errno));
    s->instances = o->instances;
    s->port_base = o->port_base;
    s->kill_timeout_ms = o->kill_timeout / DURATION_MS;
    s->listen_timeout_ms = o->listen_timeout / DURATION_MS;
    s->max_restarts = o->max_restarts;
    s->autorestart = !o->no_autorestart;
    s->min_uptime_ms = o->min_uptime / DURATION_MS;
    s->restart_delay_ms = o->restart_delay / DURATION_MS;
    s->exp_backoff_ms = o->exp_backoff / DURATION_MS;
    for (size_t k = 0; k < o->stop_exit_codes.n; k++) {
        if (pm_parse_exit_codes(o->stop_exit_codes.items[k], &s->stop_exit_codes) != 0)
            return err_set(e, "-stop-exit-codes %s: expected exit codes 0..255, as 0,3",
                           o->stop_exit_codes.items[k]);
    }
    s->max_log_size = o->max_log_size;
    if (o->max_memory && pm_parse_memory(o->max_memory, &s->max_memory_bytes) != 0)
        return err_set(e,
                       "-max-memory-restart %s: invalid size (bytes, or a number with K, M or G)",
                       o->max_memory);
    pm_spec_set_cron(s, o->cron);
    s->watch = o->watch;
    for (size_t k = 0; k < o->ignore_watch.n; k++)
        pm_spec_add_str(&s->ignore_watch, &s->nignore_watch, o->ignore_watch.items[k]);
    s->watch_delay_ms = o->watch_delay / DURATION_MS;
    return pm_spec_check(s, e);
}

/* The specs to send: from an ecosystem file or from the flags. */
static int start_specs(const struct start_opts *o, const char *name, int argc, char **argv,
                       json_t *apps)
{
    struct pm_spec *specs = NULL;
    struct pm_spec one;
    size_t n = 0;
    struct err e = {{0}};
    size_t len = strlen(name);
    int rc;

    if (argc == 0 && len > 5 && strcmp(name + len - 5, ".json") == 0) {
        rc = pm_ecosystem_load(name, &specs, &n, &e);
        if (rc != 0)
            return fail(e.msg);
        for (size_t k = 0; k < n; k++) {
            json_array_append_new(apps, pm_spec_to_json(&specs[k]));
            pm_spec_free(&specs[k]);
        }
        free(specs);
        return 0;
    }
    if (argc == 0)
        return fail("start: no command: use mesh pm start NAME [flags] -- CMD ARGS...");
    pm_spec_init(&one);
    rc = spec_from_flags(o, name, argc, argv, &one, &e);
    if (rc == 0)
        json_array_append_new(apps, pm_spec_to_json(&one));
    pm_spec_free(&one);
    return rc != 0 ? fail(e.msg) : 0;
}

static int cmd_start(const char *home, int argc, char **argv)
{
    struct start_opts o = {.instances = 1,
                           .kill_timeout = PM_DEFAULT_KILL_MS * DURATION_MS,
                           .listen_timeout = PM_DEFAULT_LISTEN_MS * DURATION_MS,
                           .max_restarts = PM_DEFAULT_MAX_RESTART,
                           .min_uptime = PM_DEFAULT_MIN_UPTIME * DURATION_MS,
                           .max_log_size = PM_DEFAULT_LOG_SIZE};
    struct flag flags[] = {
        {"i", FLAG_INT, &o.instances, "Number of instances, numbered 0..N-1.", false},
        {"port-base", FLAG_INT, &o.port_base, "Instance i gets PORT=P+i.", false},
        {"env", FLAG_STRING_LIST, &o.env, "K=V added to the environment; repeatable.", false},
        {"cwd", FLAG_STRING, &o.cwd, "Working directory (default: the current one).", false},
        {"kill-timeout", FLAG_DURATION, &o.kill_timeout, "SIGTERM to SIGKILL delay.", false},
        {"listen-timeout", FLAG_DURATION, &o.listen_timeout,
         "reload: longest wait for a new process to listen on its PORT (without one: the wait).",
         false},
        {"max-restarts", FLAG_INT, &o.max_restarts,
         "The Nth unstable exit in a row (up less than -min-uptime) is final: errored, after\n"
         "N-1 restarts, as PM2 counts them; 0: no exit is restarted.",
         false},
        {"no-autorestart", FLAG_BOOL, &o.no_autorestart,
         "Never restart an exit (PM2's autorestart: false): the instance shows stopped.", false},
        {"min-uptime", FLAG_DURATION, &o.min_uptime, "Shorter runs count as unstable.", false},
        {"restart-delay", FLAG_DURATION, &o.restart_delay,
         "Wait between an exit and the restart (0: at once).", false},
        {"exp-backoff-restart-delay", FLAG_DURATION, &o.exp_backoff,
         "First wait of an exponential backoff: x1.5 per exit, capped at 15s, reset after\n"
         "30s up. Wins over -restart-delay.",
         false},
        {"stop-exit-codes", FLAG_STRING_LIST, &o.stop_exit_codes,
         "Exit codes that are not restarted (status stopped), as 0,3; repeatable.", false},
        {"max-log-size", FLAG_INT, &o.max_log_size, "Rotate a log file past this many bytes.",
         false},
        {"max-memory-restart", FLAG_STRING, &o.max_memory,
         "Restart an instance whose RSS exceeds this: bytes, or a number with K, M or G (300M).\n"
         "Checked every 30s, or every $PM2_WORKER_INTERVAL ms of the daemon's environment.",
         false},
        {"cron-restart", FLAG_STRING, &o.cron,
         "Restart every instance on a cron schedule, local time: 5 fields (\"0 * * * *\": hourly)\n"
         "or 6 with seconds first (\"*/30 * * * * *\"); \"0\": none.",
         false},
        {"c", FLAG_STRING, &o.cron, "Same as -cron-restart (PM2's -c).", false},
        {"watch", FLAG_BOOL, &o.watch,
         "Restart every instance when a file under -cwd changes (PM2's --watch; dot paths and\n"
         "node_modules ignored). Other paths: an ecosystem file's \"watch\": [paths].",
         false},
        {"ignore-watch", FLAG_STRING_LIST, &o.ignore_watch,
         "A glob of paths -watch ignores (\"*.log\", \"client/img\"); repeatable. Replaces the\n"
         "default: add node_modules and .* again to keep ignoring them.",
         false},
        {"watch-delay", FLAG_DURATION, &o.watch_delay,
         "-watch: wait from the first change to the restart; changes meanwhile fold in.", false},
    };
    char *name = NULL;
    int dd = argc;
    int npos = 0;
    int rc;
    json_t *apps = json_array();
    json_t *reply = NULL;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--") == 0) {
            dd = k;
            break;
        }
    }
    rc = parse_args(flags, ARRAY_LEN(flags), start_usage, dd, argv, &name, 1, &npos);
    if (rc == 0 && !name)
        rc = fail("start: missing NAME (or FILE.json)");
    if (rc == 0)
        rc = start_specs(&o, name, dd < argc ? argc - dd - 1 : 0, argv + dd + 1, apps);
    if (rc == 0)
        rc = request(home, json_pack("{s:s,s:O}", "cmd", "start", "apps", apps), &reply);
    if (rc == 0)
        print_table(json_object_get(reply, "processes"));
    json_decref(reply);
    json_decref(apps);
    flag_list_free(&o.env);
    flag_list_free(&o.stop_exit_codes);
    free(o.cwd);
    free(o.max_memory);
    free(o.cron);
    flag_list_free(&o.ignore_watch);
    return rc == 2 ? 0 : rc;
}

/* ---- the other commands ----------------------------------------------------------------- */

/* stop / restart / reload / delete NAME|all: answer once the processes have exited (or restarted).
 */
static int cmd_target(const char *home, int argc, char **argv)
{
    char usage[128];
    struct flag none[1];
    json_t *reply = NULL;
    char *name = NULL;
    int npos;
    int rc;

    snprintf(usage, sizeof(usage), "mesh pm %s NAME|all", argv[0]);
    rc = parse_args(none, 0, usage, argc, argv, &name, 1, &npos);
    if (rc != 0)
        return rc == 2 ? 0 : rc;
    if (npos != 1) {
        fprintf(stderr, "Usage: %s\n", usage);
        return 1;
    }
    rc = request(home, json_pack("{s:s,s:s}", "cmd", argv[0], "name", name), &reply);
    json_decref(reply);
    return rc == 0 ? print_ls(home) : rc;
}

static int cmd_scale(const char *home, int argc, char **argv)
{
    static const char usage[] = "Usage: mesh pm scale NAME N|+N|-N\n";
    json_t *reply = NULL;
    const char *n;
    char *end;
    long v;
    int rc;

    if (argc == 2 && (strcmp(argv[1], "-help") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 3) {
        fputs(usage, stderr);
        return 1;
    }
    n = argv[2];
    errno = 0;
    v = strtol(n, &end, 10);
    if (!n[0] || *end || errno || v < -PM_MAX_INSTANCES || v > PM_MAX_INSTANCES)
        return fail("scale: N must be a number of instances, +N or -N");
    rc = request(home,
                 json_pack("{s:s,s:s,s:i,s:b}", "cmd", "scale", "name", argv[1], "n", (int)v,
                           "relative", n[0] == '+' || n[0] == '-'),
                 &reply);
    json_decref(reply);
    return rc == 0 ? print_ls(home) : rc;
}

/* ls [-json] and describe NAME [-json]. */
static int cmd_show(const char *home, int argc, char **argv)
{
    bool describe = strcmp(argv[0], "describe") == 0;
    bool as_json = false;
    struct flag flags[] = {{"json", FLAG_BOOL, &as_json, "Print JSON.", false}};
    struct buf b = BUF_INIT;
    json_t *reply = NULL;
    json_t *rows;
    char *name = NULL;
    int npos;
    int rc = parse_args(flags, 1, describe ? "mesh pm describe NAME [-json]" : "mesh pm ls [-json]",
                        argc, argv, &name, describe ? 1 : 0, &npos);

    if (rc != 0)
        return rc == 2 ? 0 : rc;
    if (describe && npos != 1)
        return fail("usage: mesh pm describe NAME [-json]");
    rc = request(home,
                 describe ? json_pack("{s:s,s:s}", "cmd", "describe", "name", name)
                          : json_pack("{s:s}", "cmd", "ls"),
                 &reply);
    if (rc != 0)
        return rc;
    if (json_string_value(json_object_get(reply, "warning")))
        fprintf(stderr, "mesh pm: warning: %s\n",
                json_string_value(json_object_get(reply, "warning")));
    rows = json_object_get(reply, "processes");
    if (as_json)
        json_append(&b, rows, true);
    else if (describe)
        pm_format_describe(rows, &b);
    else
        pm_format_ls(rows, &b);
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
    json_decref(reply);
    return 0;
}

static int cmd_daemon(const char *home, int argc, char **argv)
{
    bool foreground = false;
    struct flag flags[] = {
        {"foreground", FLAG_BOOL, &foreground, "Run in this process instead of detaching.", false}};
    struct err e = {{0}};
    json_t *ping = json_pack("{s:s}", "cmd", "ping");
    json_t *reply = NULL;
    char *none = NULL;
    int npos;
    int rc = parse_args(flags, 1, "mesh pm daemon [-foreground]", argc, argv, &none, 0, &npos);

    if (rc != 0)
        goto out;
    if (foreground) {
        rc = pm_daemon_run(home, &e) == 0 ? 0 : fail(e.msg);
        goto out;
    }
    if (pm_client_request(home, ping, false, &reply, &e) == 0) {
        printf("pm daemon already running (pid %lld)\n",
               (long long)json_integer_value(json_object_get(reply, "pid")));
        goto out;
    }
    rc = pm_client_spawn_daemon(home, &e) == 0 ? 0 : fail(e.msg);
    if (rc == 0)
        printf("pm daemon started in %s\n", home);
out:
    json_decref(ping);
    json_decref(reply);
    return rc == 2 ? 0 : rc;
}

/* Parses a command that takes no flags and no arguments: 0 to go on; else the exit status
 * (0 after -help, which must never run the command: `kill -help` stopped every app). */
static int parse_no_args(const char *usage, int argc, char **argv)
{
    int npos;
    int rc = parse_args(NULL, 0, usage, argc, argv, NULL, 0, &npos);
    return rc == 2 ? -1 : rc;
}

/* Whether a daemon answers on the socket, and its PID: how `mesh down` finds it. */
static int cmd_ping(const char *home, int argc, char **argv)
{
    bool as_json = false;
    struct flag flags[] = {
        {"json", FLAG_BOOL, &as_json, "Print the daemon's reply as JSON.", false}};
    struct err e = {{0}};
    json_t *req = json_pack("{s:s}", "cmd", "ping");
    json_t *reply = NULL;
    char *none = NULL;
    int npos;
    int rc = parse_args(flags, 1,
                        "mesh pm ping [-json]\n\n  Exits 0 when the daemon answers, 1 otherwise.",
                        argc, argv, &none, 0, &npos);

    if (rc != 0)
        goto out;
    rc = pm_client_request(home, req, false, &reply, &e);
    if (rc != 0) {
        fprintf(stderr, "mesh pm: no daemon answers: %s\n", e.msg);
        rc = 1;
    } else if (as_json) {
        json_object_del(reply, "ok");
        json_dumpf(reply, stdout, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
        putchar('\n');
    } else {
        printf("pong (pid %lld)\n", (long long)json_integer_value(json_object_get(reply, "pid")));
    }
out:
    json_decref(req);
    json_decref(reply);
    return rc == 2 ? 0 : rc;
}

/* Stops every app, then the daemon; returns when the daemon process is gone. */
static int cmd_kill(const char *home, int argc, char **argv)
{
    int parsed = parse_no_args(
        "mesh pm kill\n\n  Stops every app, then the daemon; returns when the daemon is gone.",
        argc, argv);
    if (parsed != 0)
        return parsed < 0 ? 0 : parsed;

    struct err e = {{0}};
    json_t *req = json_pack("{s:s}", "cmd", "kill");
    json_t *reply = NULL;
    pid_t pid;
    int rc = pm_client_request(home, req, false, &reply, &e);

    json_decref(req);
    if (rc != 0) {
        printf("no pm daemon running in %s\n", home);
        return 0;
    }
    pid = (pid_t)json_integer_value(json_object_get(reply, "pid"));
    json_decref(reply);
    for (int waited = 0; pid > 0 && procfs_start_time(pid) != 0; waited += 20) {
        if (waited >= PM_KILL_WAIT_MS)
            return fail("kill: the daemon did not exit");
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    }
    printf("pm daemon stopped, all apps stopped\n");
    return 0;
}

int pm_main(int argc, char **argv)
{
    char *home_flag = NULL;
    struct flag flags[] = {
        {"home", FLAG_STRING, &home_flag,
         "Directory of the daemon's socket, state and logs ($MESH_PM_HOME, $HOME/.mesh/pm).",
         false},
    };
    struct err e = {{0}};
    char *home = NULL;
    const char *cmd;
    int first;
    int rc = flags_parse(flags, 1, argc - 1, argv + 1, &first, &e);

    if (rc == FLAGS_HELP || (rc == 0 && first + 1 >= argc)) {
        fputs(usage_text, rc == FLAGS_HELP ? stdout : stderr);
        rc = rc == FLAGS_HELP ? 0 : 1;
        goto out;
    }
    if (rc != 0) {
        rc = fail(e.msg);
        goto out;
    }
    argv += first + 1;
    argc -= first + 1;
    cmd = argv[0];
    home = resolve_home(home_flag);
    if (!home) {
        rc = 1;
        goto out;
    }
    if (strcmp(cmd, "start") == 0)
        rc = cmd_start(home, argc, argv);
    else if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0 ||
             strcmp(cmd, "reload") == 0 || strcmp(cmd, "delete") == 0)
        rc = cmd_target(home, argc, argv);
    else if (strcmp(cmd, "scale") == 0)
        rc = cmd_scale(home, argc, argv);
    else if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0 || strcmp(cmd, "describe") == 0)
        rc = cmd_show(home, argc, argv);
    else if (strcmp(cmd, "logs") == 0)
        rc = pm_cmd_logs(home, argc, argv);
    else if (strcmp(cmd, "daemon") == 0)
        rc = cmd_daemon(home, argc, argv);
    else if (strcmp(cmd, "ping") == 0)
        rc = cmd_ping(home, argc, argv);
    else if (strcmp(cmd, "kill") == 0)
        rc = cmd_kill(home, argc, argv);
    else if (strcmp(cmd, "help") == 0)
        rc = (fputs(usage_text, stdout), 0);
    else
        rc = fail("unknown command (run mesh pm -help)");
out:
    free(home_flag);
    free(home);
    return rc;
}
