/*
 * The supervisor's pure parts, kept free of I/O so unit tests pin them: PM2's restart policy,
 * /proc parsing, log rotation names and the human formats of ls.
 */
#ifndef MESH_PM_POLICY_H
#define MESH_PM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_BACKOFF_FACTOR      1.5
#define PM_BACKOFF_CAP_MS      15000
#define PM_BACKOFF_RESET_MS    30000 /* PM2's EXP_BACKOFF_RESET_TIMER */
#define PM_DEFAULT_MIN_UPTIME  1000
#define PM_DEFAULT_MAX_RESTART 16
#define PM_DEFAULT_KILL_MS     1600
#define PM_DEFAULT_LISTEN_MS   3000 /* PM2's listen_timeout: how long reload waits for readiness */
#define PM_DEFAULT_LOG_SIZE    (10 * 1024 * 1024) /* pm2-logrotate's max_size 10M */
#define PM_LOG_KEEP            5
#define PM_WORKER_INTERVAL_MS  30000 /* PM2's worker: how often memory limits are checked */
#define PM_MEMORY_MAX          (INT64_C(1) << 50) /* the largest max_memory_restart */

enum pm_status {
    PM_ONLINE = 0,
    PM_LAUNCHING,
    PM_STOPPING,
    PM_STOPPED,
    PM_ERRORED,
    PM_WAITING, /* "waiting restart": in the backoff delay */
    PM_STATUS_COUNT
};

/* PM2's status text ("waiting restart" for PM_WAITING). */
const char *pm_status_name(enum pm_status s);
/* Parses pm_status_name's text; false when unknown. */
bool pm_status_parse(const char *s, enum pm_status *out);

/* What the restart policy keeps per instance between exits. */
struct pm_backoff {
    int64_t delay_ms; /* the last delay used; 0 after a reset */
    int unstable;     /* consecutive exits before min_uptime (PM2's unstable_restarts) */
};

struct pm_policy {
    int64_t restart_delay_ms; /* restart_delay: the same wait after every exit */
    int64_t exp_backoff_ms;   /* exp_backoff_restart_delay: first wait of a backoff; 0: none */
    int64_t min_uptime_ms;
    int max_restarts;
};

/*
 * Decides what follows an exit that nobody asked for, after the process was up for uptime_ms.
 * Returns false when the instance must go errored: this exit makes max_restarts unstable ones
 * (up less than min_uptime_ms) in a row, or max_restarts is 0. Else true with *delay_ms, the wait
 * before the next start. As in PM2: with exp_backoff_ms, that value first, then x1.5 (rounded down)
 * per exit, capped at 15 s, and back to the first value after a run of more than 30 s; it wins over
 * restart_delay_ms, which is otherwise the wait every time (0 when neither is set: at once).
 */
bool pm_backoff_next(struct pm_backoff *b, const struct pm_policy *p, int64_t uptime_ms,
                     int64_t *delay_ms);

/*
 * Name of rotated file k (1..PM_LOG_KEEP) of path: "path.k", into out (outlen bytes).
 * Returns 0, or -ENAMETOOLONG when it does not fit.
 */
int pm_rotate_name(const char *path, int k, char *out, size_t outlen);

/*
 * Parses a memory size as PM2's max_memory_restart takes it: digits, optionally followed by K, M
 * or G (1024, 1024^2, 1024^3 bytes); a bare number is bytes. At most PM_MEMORY_MAX.
 * Returns 0 with *bytes, or -EINVAL.
 */
int pm_parse_memory(const char *s, int64_t *bytes);

/* The exit codes of stop_exit_codes (0..255), as a bit set. */
struct pm_exit_codes {
    uint64_t bits[4];
};

static inline bool pm_exit_codes_has(const struct pm_exit_codes *c, int code)
{
    return code >= 0 && code <= 255 && (c->bits[code / 64] >> (code % 64) & 1);
}

static inline void pm_exit_codes_add(struct pm_exit_codes *c, int code)
{
    c->bits[code / 64] |= UINT64_C(1) << (code % 64);
}

/*
 * Adds the codes of a comma-separated list ("0,3") to *c. Returns 0, or -EINVAL when an element
 * is not a number in 0..255 (c then holds the elements before it).
 */
int pm_parse_exit_codes(const char *s, struct pm_exit_codes *c);

/* Uptime as PM2 prints it: "45s", "12m", "5h", "3D"; "0s" below a second. */
void pm_format_uptime(int64_t ms, char *out, size_t outlen);

/*
 * True when name is usable as an app name: 1..64 bytes of [A-Za-z0-9_.-], not starting with
 * '-' or '.', and not "all" (a keyword of stop/restart/delete).
 */
bool pm_name_valid(const char *name);

/*
 * Whether watch mode ignores a change at rel, a path relative to the app's directory ("lib/a.js").
 * Each pattern is a glob (fnmatch: * ? [..], \ escapes): one with a '/' is matched against rel
 * and each of its leading directories ("client/img" ignores what is under it), one without
 * against each component ("*.log", "node_modules"). With no patterns, PM2's default: a component
 * starting with '.' (.git, .env) or named node_modules.
 */
bool pm_watch_ignored(const char *rel, char *const *patterns, size_t npatterns);

#endif
