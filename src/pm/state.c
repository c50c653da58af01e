/*
 * The saved app table: written (temp + rename) on every change, read by the next daemon, which
 * adopts each recorded process that is still the same process (start time in /proc/PID/stat)
 * and starts again the ones that are gone, unless they were stopped (PM2's resurrect).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "pm/daemon.h"

#define RETIRED_SUFFIX ".retired.pid"

static json_t *inst_state(const struct pm_inst *i)
{
    json_t *o = json_object();

    json_object_set_new(o, "instance", json_integer(i->instance));
    json_object_set_new(o, "pm_id", json_integer(i->pm_id));
    json_object_set_new(o, "pid", json_integer(i->pid));
    json_object_set_new(o, "start_ticks", json_integer((json_int_t)i->start_ticks));
    json_object_set_new(o, "status", json_string(pm_status_name(i->status)));
    json_object_set_new(o, "restarts", json_integer(i->restarts));
    json_object_set_new(o, "unstable", json_integer(i->backoff.unstable));
    json_object_set_new(o, "delay_ms", json_integer(i->backoff.delay_ms));
    json_object_set_new(o, "started_ms", json_integer(i->started_ms));
    return o;
}

/*
 * Written synchronously on purpose: a reply ("started", "scaled") must never reach the client
 * before the change is on disk, or a daemon killed right after it would forget the process. The
 * file is a few KB, written without fsync (a daemon crash, not a power cut, is the case).
 */
int pm_state_save(struct pm_daemon *d, struct err *e)
{
    json_t *root = json_object();
    json_t *apps = json_array();
    struct buf b = BUF_INIT;
    int rc;

    for (size_t k = 0; k < d->napps; k++) {
        struct pm_app *a = d->apps[k];
        json_t *insts = json_array();
        for (size_t j = 0; j < a->ninsts; j++)
            json_array_append_new(insts, inst_state(a->insts[j]));
        json_array_append_new(apps, json_pack("{s:o,s:b,s:o}", "spec", pm_spec_to_json(&a->spec),
                                              "deleting", a->deleting, "instances", insts));
    }
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "next_id", json_integer(d->next_id));
    json_object_set_new(root, "apps", apps);
    json_append(&b, root, true);
    if ((rc = file_replace(d->state_path, b.data, b.len, 0600, 0, e)) < 0)
        log_error("save: %s", e->msg);
    buf_free(&b);
    json_decref(root);
    return rc;
}

/*
 * An instance's pidfile is written as soon as its process starts and removed when it exits, each
 * before the table is saved: a daemon killed in between (a reload's new process started, not yet
 * saved) left a table that names the process before. The pidfile then names the newer one.
 */
static void prefer_pidfile(struct pm_inst *i)
{
    char *path = pm_inst_pid_path(i);
    uint64_t start = 0;
    pid_t pid = 0;

    if (procfs_pidfile_check(path, &pid, &start) > 0 &&
        (pid != i->pid || start != i->start_ticks)) {
        log_warn("%s-%d: its pidfile names pid %d, started after the table was saved (pid %d)",
                 i->app->spec.name, i->instance, (int)pid, i->pid);
        i->pid = pid;
        i->start_ticks = start;
    }
    free(path);
}

/* Brings one recorded instance back: adopt, restart, or leave stopped. */
static void revive(struct pm_inst *i, enum pm_status was, bool deleting)
{
    struct err e = {{0}};
    int rc;

    prefer_pidfile(i);
    if ((rc = pm_inst_adopt(i)) != -ESRCH) {
        if (rc != 0)
            pm_inst_adopt_later(i, rc);
        /* One not adopted yet is stopped once it is (or found gone): pm_inst_stop waits. */
        if (was == PM_STOPPING || deleting)
            pm_inst_stop(i, deleting ? PM_AFTER_DELETE : PM_AFTER_NONE);
        return;
    }
    i->pid = 0;
    if (deleting) {
        pm_inst_stop(i, PM_AFTER_DELETE);
        return;
    }
    if (was == PM_STOPPED || was == PM_ERRORED || was == PM_STOPPING) {
        i->status = was == PM_ERRORED ? PM_ERRORED : PM_STOPPED;
        return;
    }
    i->restarts++;
    if (pm_inst_spawn(i, &e) != 0)
        log_error("%s-%d: %s", i->app->spec.name, i->instance, e.msg);
    else
        log_info("%s-%d was gone: started again", i->app->spec.name, i->instance);
}

/* Adds one saved app to the table; false when it cannot be read (it is skipped). */
static bool load_app(struct pm_daemon *d, const json_t *o)
{
    struct pm_spec spec;
    struct pm_app *a;
    struct err e = {{0}};
    json_t *v;
    size_t k;

    pm_spec_init(&spec);
    if (pm_spec_from_json(json_object_get(o, "spec"), &spec, NULL, "state", &e) != 0 ||
        pm_app_find(d, spec.name)) {
        log_error("saved state: skipping an app: %s", e.msg[0] ? e.msg : "duplicate name");
        pm_spec_free(&spec);
        return false;
    }
    a = pm_app_add(d, &spec);
    a->deleting = json_is_true(json_object_get(o, "deleting"));
    json_array_foreach(json_object_get(o, "instances"), k, v)
    {
        int id = (int)json_integer_value(json_object_get(v, "pm_id"));
        struct pm_inst *i =
            pm_inst_new(a, (int)json_integer_value(json_object_get(v, "instance")), id);
        i->pid = (int)json_integer_value(json_object_get(v, "pid"));
        i->start_ticks = (uint64_t)json_integer_value(json_object_get(v, "start_ticks"));
        i->restarts = (int)json_integer_value(json_object_get(v, "restarts"));
        i->backoff.unstable = (int)json_integer_value(json_object_get(v, "unstable"));
        i->backoff.delay_ms = json_integer_value(json_object_get(v, "delay_ms"));
        i->started_ms = json_integer_value(json_object_get(v, "started_ms"));
        const char *status = json_string_value(json_object_get(v, "status"));
        if (!status || !pm_status_parse(status, &i->status))
            i->status = PM_ONLINE;
        d->next_id = id >= d->next_id ? id + 1 : d->next_id;
        a->insts = xrealloc(a->insts, (a->ninsts + 1) * sizeof(*a->insts));
        a->insts[a->ninsts++] = i;
    }
    return true;
}

/*
 * The file is about to be rewritten without what could not be read: keep it for the user, as
 * state.json.bad, else .bad.1, .bad.2, ...: an earlier bad copy is never overwritten.
 */
static void keep_aside(struct pm_daemon *d)
{
    char *bad = xasprintf("%s.bad", d->state_path);

    for (int k = 1; k <= PM_STATE_BAD_KEEP && access(bad, F_OK) == 0; k++) {
        free(bad);
        bad = xasprintf("%s.bad.%d", d->state_path, k);
    }
    if (rename(d->state_path, bad) == 0)
        log_error("%s: kept as %s", d->state_path, bad);
    free(d->state_warning);
    d->state_warning = xasprintf("%s was damaged (kept as %s); apps were taken back from their "
                                 "pidfiles only",
                                 d->state_path, bad);
    free(bad);
}

/* A NUL-separated /proc/PID/FILE (cmdline, environ) into s's arguments or environment. */
static void proc_strings(int pid, const char *file, struct pm_spec *s, bool env)
{
    char path[64];
    struct buf b = BUF_INIT;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    if (file_read_all(fd, &b) == 0) {
        for (size_t i = 0; i < b.len; i += strlen(b.data + i) + 1) {
            if (env)
                pm_spec_set_env(s, b.data + i);
            else
                pm_spec_add_arg(s, b.data + i);
        }
    }
    close(fd);
    buf_free(&b);
}

/* The app NAME for a process found through its pidfile: its spec read back from /proc. */
static struct pm_app *app_from_proc(struct pm_daemon *d, const char *name, int pid)
{
    struct pm_app *a = pm_app_find(d, name);
    struct pm_spec spec;
    char cwd[PATH_MAX], path[64];
    ssize_t n;

    if (a)
        return a;
    pm_spec_init(&spec);
    spec.name = xstrdup(name);
    spec.instances = 0;
    proc_strings(pid, "cmdline", &spec, false);
    proc_strings(pid, "environ", &spec, true);
    snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
    if ((n = readlink(path, cwd, sizeof(cwd) - 1)) > 0) {
        cwd[n] = '\0';
        spec.cwd = xstrdup(cwd);
    }
    if (spec.argc == 0) {
        pm_spec_free(&spec);
        return NULL;
    }
    return pm_app_add(d, &spec);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The kill timeout for a retired pidfile NAME-I.PID.retired.pid: its app's, else PM2's default. */
static int64_t retired_kill_timeout(struct pm_daemon *d, const char *file)
{
    char name[256];
    char *cut;
    struct pm_app *a;

    /* Cut ".retired.pid", then ".PID", then "-I": NAME may hold '.' and '-' itself. */
    snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - strlen(RETIRED_SUFFIX)), file);
    if (!(cut = strrchr(name, '.')))
        return PM_DEFAULT_KILL_MS;
    *cut = '\0';
    if (!(cut = strrchr(name, '-')))
        return PM_DEFAULT_KILL_MS;
    *cut = '\0';
    a = pm_app_find(d, name);
    return a ? a->spec.kill_timeout_ms : PM_DEFAULT_KILL_MS;
}

/* The instance whose process (adopted) is pid, or NULL. */
static struct pm_inst *inst_of_pid(struct pm_daemon *d, pid_t pid)
{
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++) {
            struct pm_inst *i = d->apps[k]->insts[j];
            if (i->child && i->pid == pid)
                return i;
        }
    }
    return NULL;
}

/*
 * One pids/NAME-I.PID.retired.pid file (pm_retired_pid_path): its process is watched and stopped
 * (0), or is gone and the file removed (0). When it cannot be checked or watched (out of
 * descriptors) the file is kept, as the only record of a process nobody supervises: -errno, and
 * a later pass tries again.
 */
static int retire_file(struct pm_daemon *d, const char *name)
{
    char path[PATH_MAX + 300];
    pid_t pid = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", d->pids_dir, name);
    rc = procfs_pidfile_check(path, &pid, NULL);
    /* A daemon killed after the rename, before it started the new process: the table's process
     * is the instance's still, adopted, in the instance's pidfile again. */
    if (rc > 0 && inst_of_pid(d, pid)) {
        log_info("pid %d: the reload that was replacing it had not started its successor: kept",
                 (int)pid);
        rc = 0;
    }
    if (rc == 0) {
        unlink(path);
        return 0;
    }
    if (rc > 0) {
        char *owned = xstrdup(path);
        if ((rc = pm_child_adopt_retired(d, pid, owned, retired_kill_timeout(d, name))) == 0)
            return 0;
        free(owned);
        /* It still goes; only the SIGKILL after the kill timeout waits for a watch. */
        pm_signal_group(pid, SIGTERM);
    }
    return rc;
}

/*
 * Stops the processes a reload was replacing when the daemon before this one died: each is in a
 * retired pidfile, while the instance's own pidfile and the table name the new process, which the
 * table has adopted or restarted. Those that cannot be watched yet go to d->retired_left.
 */
static void stop_retired(struct pm_daemon *d)
{
    struct dirent *de;
    DIR *dir = opendir(d->pids_dir);
    int rc;

    if (!dir && !d->retired_unread)
        log_error("%s: %s: processes a reload was replacing are not stopped yet: tried again "
                  "every second",
                  d->pids_dir, strerror(errno));
    d->retired_unread = !dir;
    while (dir && (de = readdir(dir)) != NULL) {
        if (!has_suffix(de->d_name, RETIRED_SUFFIX) || (rc = retire_file(d, de->d_name)) == 0)
            continue;
        log_error("%s/%s: %s: kept, and tried again every second", d->pids_dir, de->d_name,
                  strerror(-rc));
        d->retired_left =
            xrealloc(d->retired_left, (d->nretired_left + 1) * sizeof(*d->retired_left));
        d->retired_left[d->nretired_left++] = xstrdup(de->d_name);
    }
    if (dir)
        closedir(dir);
}

void pm_retired_retry(struct pm_daemon *d)
{
    size_t kept = 0;

    for (size_t k = 0; k < d->nretired_left; k++) {
        if (retire_file(d, d->retired_left[k]) == 0)
            free(d->retired_left[k]);
        else
            d->retired_left[kept++] = d->retired_left[k];
    }
    d->nretired_left = kept;
    if (d->retired_unread)
        stop_retired(d);
}

void pm_retired_free(struct pm_daemon *d)
{
    for (size_t k = 0; k < d->nretired_left; k++)
        free(d->retired_left[k]);
    free(d->retired_left);
    d->retired_left = NULL;
    d->nretired_left = 0;
}

/*
 * After a state file that could not be read: takes back the processes earlier daemons started,
 * found through their pidfiles (pids/NAME-I.pid, checked against the start time), so `ls`
 * shows them and `stop` or `kill` reach them. Their command line, directory and environment
 * are read back from /proc; limits and policies not kept there return to their defaults.
 */
static void readopt_from_pidfiles(struct pm_daemon *d)
{
    char path[PATH_MAX + 300], name[256];
    struct dirent *de;
    DIR *dir = opendir(d->pids_dir);

    while (dir && (de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        char *dash;
        uint64_t start;
        int inst;
        if (len < 7 || len >= sizeof(name) || strcmp(de->d_name + len - 4, ".pid") != 0 ||
            has_suffix(de->d_name, RETIRED_SUFFIX))
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(len - 4), de->d_name);
        if (!(dash = strrchr(name, '-')) || sscanf(dash + 1, "%d", &inst) != 1 || inst < 0)
            continue;
        *dash = '\0';
        snprintf(path, sizeof(path), "%s/%s", d->pids_dir, de->d_name);
        pid_t pid = procfs_pidfile_live(path, &start);
        struct pm_app *a = pid && pm_name_valid(name) ? app_from_proc(d, name, pid) : NULL;
        if (!a) {
            unlink(path);
            continue;
        }
        struct pm_inst *i = pm_inst_new(a, inst, d->next_id++);
        i->pid = pid;
        i->start_ticks = start;
        i->started_ms = pm_now_ms();
        a->insts = xrealloc(a->insts, (a->ninsts + 1) * sizeof(*a->insts));
        a->insts[a->ninsts++] = i;
        a->spec.instances = (int)a->ninsts;
        int rc = pm_inst_adopt(i);
        if (rc == -ESRCH)
            i->pid = 0; /* gone since procfs_pidfile_live */
        else if (rc != 0)
            pm_inst_adopt_later(i, rc);
        log_error("%s-%d (pid %d) taken back from its pidfile", name, inst, (int)pid);
    }
    if (dir)
        closedir(dir);
}

void pm_state_load(struct pm_daemon *d)
{
    json_error_t je;
    json_t *root = json_load_file(d->state_path, 0, &je);
    json_t *v;
    size_t k;
    bool all = true;

    if (!root) {
        if (access(d->state_path, F_OK) == 0) {
            log_error("%s:%d: %s", d->state_path, je.line, je.text);
            keep_aside(d);
            readopt_from_pidfiles(d);
        }
        stop_retired(d);
        return;
    }
    json_int_t next = json_integer_value(json_object_get(root, "next_id"));
    d->next_id = next > 0 && next < (1 << 30) ? (int)next : 0;
    json_array_foreach(json_object_get(root, "apps"), k, v) all = load_app(d, v) && all;
    json_decref(root);
    if (!all) {
        keep_aside(d);
        readopt_from_pidfiles(d);
    }
    /* Revive after the whole table is in place: a start may look up other apps. */
    for (size_t n = d->napps; n > 0; n--) {
        struct pm_app *a = d->apps[n - 1];
        bool deleting = a->deleting;
        if (deleting && a->ninsts == 0) {
            pm_app_remove(d, a);
            continue;
        }
        for (size_t j = a->ninsts; j > 0; j--) {
            struct pm_inst *i = a->insts[j - 1];
            enum pm_status was = i->status;
            revive(i, was, deleting);
        }
    }
    stop_retired(d);
}
