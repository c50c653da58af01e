/*
 * What an app is: its command, environment and policy. One JSON form serves the ecosystem file
 * (PM2's "apps" entries), the request the CLI sends the daemon and the daemon's saved state.
 */
#ifndef MESH_PM_SPEC_H
#define MESH_PM_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/err.h"
#include "pm/policy.h"

#define PM_MAX_INSTANCES 1024
#define PM_MAX_ARGS      4096
#define PM_MAX_WATCH     64 /* watch paths, and ignore_watch patterns, of one app */

/* Owns every string and array it points to; free with pm_spec_free. */
struct pm_spec {
    char *name;
    char **argv; /* argc entries plus a NULL; argv[0] is the script */
    size_t argc;
    char **env; /* "K=V", nenv entries */
    size_t nenv;
    char *cwd; /* NULL: the daemon's */
    int instances;
    int port_base; /* 0: no PORT */
    int max_restarts;
    bool autorestart; /* false: an exit is never restarted (status stopped) */
    int64_t kill_timeout_ms;
    int64_t listen_timeout_ms; /* reload: the longest wait for a new process to listen */
    int64_t min_uptime_ms;
    int64_t restart_delay_ms; /* restart_delay: fixed wait before a restart */
    int64_t exp_backoff_ms;   /* exp_backoff_restart_delay; 0: none (it wins over restart_delay) */
    struct pm_exit_codes stop_exit_codes; /* exits with these codes are not restarted */
    int64_t max_log_size;                 /* bytes; 0: never rotate */
    int64_t max_memory_bytes; /* max_memory_restart: restart past this RSS; 0: no limit */
    char *cron_restart;       /* restart every instance on this schedule (lib/cron.h); NULL: none */
    bool watch;               /* PM2's watch: restart every instance when a file changes */
    char **watch_paths;       /* what to watch, relative to cwd; none: cwd itself */
    size_t nwatch_paths;
    char *
        *ignore_watch; /* globs (pm_watch_ignored); none: PM2's default (dot paths, node_modules) */
    size_t nignore_watch;
    int64_t watch_delay_ms; /* from the first change to the restart; later changes fold in */
};

/* Sets PM2's defaults (1 instance, 1600 ms kill timeout, ...) on an empty spec. */
void pm_spec_init(struct pm_spec *s);
void pm_spec_free(struct pm_spec *s);
/* Appends a heap copy of arg to argv / of "K=V" to env (replacing an earlier K). */
void pm_spec_add_arg(struct pm_spec *s, const char *arg);
void pm_spec_set_env(struct pm_spec *s, const char *kv);

/* Appends a heap copy of s to the list *v of *n strings (watch_paths, ignore_watch). */
void pm_spec_add_str(char ***v, size_t *n, const char *s);

/* Sets cron_restart to a heap copy of expr, or to none for NULL, "" or "0" (PM2's off). */
void pm_spec_set_cron(struct pm_spec *s, const char *expr);

/*
 * Checks the values (name, instances 1..1024, ports within 65535, non-negative durations, the
 * cron expression).
 * Returns 0 or -EINVAL with e = "<what>: message".
 */
int pm_spec_check(const struct pm_spec *s, struct err *e);

/*
 * Reads one app object: name, script, args (array or a string split at spaces), cwd, env
 * (object), instances, port_base, autorestart (bool), kill_timeout, listen_timeout, max_restarts,
 * min_uptime, restart_delay, exp_backoff_restart_delay, stop_exit_codes (an array of codes or one
 * code), max_log_size, max_memory_restart, cron_restart (a cron expression; "0": none, as PM2
 * reads it), watch (true, false, a path or an array of paths), ignore_watch (a glob or an array
 * of them), watch_delay; durations as milliseconds or Go strings ("2s"), memory
 * as bytes or PM2's "100M" (pm_parse_memory). Unknown keys are errors. With doc, errors read
 * "file:line: apps[0].key: ..." (path is the object's path in doc); without, "path.key: ...". s
 * must be initialised; on error it holds what was read so far (free it).
 */
int pm_spec_from_json(const json_t *obj, struct pm_spec *s, const struct config_doc *doc,
                      const char *path, struct err *e);
/* The JSON form pm_spec_from_json reads. New reference. */
json_t *pm_spec_to_json(const struct pm_spec *s);

/*
 * Loads an ecosystem file {"apps": [...]} (blocking; CLI only). A relative or absent cwd is taken
 * relative to the file's directory. Returns 0 with *specs (heap array of *n specs, free each and
 * the array) or -errno with e = "file:line: message".
 */
int pm_ecosystem_load(const char *path, struct pm_spec **specs, size_t *n, struct err *e);

#endif
