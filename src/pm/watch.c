/*
 * PM2's watch mode: every instance of an app is restarted when a file under its directory (or
 * under the paths of its `watch` list) changes, unless pm_watch_ignored says the path is
 * ignored. One inotify descriptor per app, polled by the loop; one watch per directory, added
 * as directories appear, at most PM_WATCH_MAX_DIRS per app. The first change arms a timer of
 * watch_delay (at least PM_WATCH_FOLD_MS); changes until it fires fold into the same restart.
 *
 * Directories are listed on the loop: a bounded walk (PM_WATCH_MAX_DIRS) of directories the
 * kernel serves from its cache, once when the app is added and then only for a new directory.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/log.h"
#include "pm/daemon.h"

/* The least wait from a first change to the restart, whatever watch_delay: the events of one
 * save (create, write, close, rename) come within it and restart once. */
#define PM_WATCH_FOLD_MS 100

#define PM_WATCH_MASK                                                                              \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM |              \
     IN_MOVED_TO | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

/* One inotify watch: a directory (or a file named in the watch list). */
struct pm_watch_dir {
    int wd;
    char *abs;
    char *rel; /* relative to the app's directory, "" for it; what ignore patterns see */
};

struct pm_watch {
    struct pm_app *app; /* NULL once stopped */
    int fd;
    uv_poll_t poll;
    uv_timer_t delay;
    struct pm_watch_dir *dirs; /* ascending wd: inotify hands them out in increasing order */
    size_t ndirs;
    bool full_logged;
    bool draining; /* the restart is about to happen: changes fold into it */
    int open_handles;
};

static void watch_free(struct pm_watch *w)
{
    for (size_t k = 0; k < w->ndirs; k++) {
        free(w->dirs[k].abs);
        free(w->dirs[k].rel);
    }
    free(w->dirs);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

static void on_watch_closed(uv_handle_t *h)
{
    struct pm_watch *w = h->data;

    if (--w->open_handles == 0)
        watch_free(w);
}

static struct pm_watch_dir *dir_find(struct pm_watch *w, int wd)
{
    size_t lo = 0, hi = w->ndirs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->dirs[mid].wd == wd)
            return &w->dirs[mid];
        if (w->dirs[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Adds one watch; false when none was added (the limit, the kernel's, or watched already). */
static bool watch_one(struct pm_watch *w, const char *abs, const char *rel)
{
    const struct pm_spec *s = &w->app->spec;
    int wd;

    if (w->ndirs >= PM_WATCH_MAX_DIRS) {
        if (!w->full_logged)
            log_warn("%s: watch: %d directories watched, the most for one app: %s and what is "
                     "under it are not",
                     s->name, PM_WATCH_MAX_DIRS, abs);
        w->full_logged = true;
        return false;
    }
    if ((wd = inotify_add_watch(w->fd, abs, PM_WATCH_MASK)) < 0) {
        log_warn("%s: watch %s: %s%s", s->name, abs, strerror(errno),
                 errno == ENOSPC ? " (fs.inotify.max_user_watches)" : "");
        return false;
    }
    if (dir_find(w, wd)) /* reached twice (overlapping watch paths, a bind mount): walked once */
        return false;
    w->dirs = xrealloc(w->dirs, (w->ndirs + 1) * sizeof(*w->dirs));
    size_t k = w->ndirs;
    while (k > 0 && w->dirs[k - 1].wd > wd) /* wd values are reused only after a wrap */
        k--;
    memmove(w->dirs + k + 1, w->dirs + k, (w->ndirs - k) * sizeof(*w->dirs));
    w->dirs[k] = (struct pm_watch_dir){wd, xstrdup(abs), xstrdup(rel)};
    w->ndirs++;
    return true;
}

static char *join(const char *dir, const char *name)
{
    return dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

/* Watches abs and every directory under it that is not ignored (symbolic links not followed). */
static void watch_tree(struct pm_watch *w, const char *root_abs, const char *root_rel)
{
    const struct pm_spec *s = &w->app->spec;
    char **todo = NULL; /* pairs: abs, rel */
    size_t ntodo = 0;

    pm_spec_add_str(&todo, &ntodo, root_abs);
    pm_spec_add_str(&todo, &ntodo, root_rel);
    while (ntodo > 0) {
        char *rel = todo[--ntodo];
        char *abs = todo[--ntodo];
        DIR *dir = watch_one(w, abs, rel) ? opendir(abs) : NULL;
        struct dirent *de;
        while (dir && (de = readdir(dir)) != NULL) {
            struct stat st;
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *cabs = join(abs, de->d_name);
            char *crel = join(rel, de->d_name);
            bool is_dir = de->d_type == DT_DIR || (de->d_type == DT_UNKNOWN &&
                                                   lstat(cabs, &st) == 0 && S_ISDIR(st.st_mode));
            if (is_dir && !pm_watch_ignored(crel, s->ignore_watch, s->nignore_watch) &&
                ntodo / 2 < PM_WATCH_MAX_DIRS) {
                todo = xrealloc(todo, (ntodo + 2) * sizeof(*todo));
                todo[ntodo++] = cabs;
                todo[ntodo++] = crel;
            } else {
                free(cabs);
                free(crel);
            }
        }
        if (dir)
            closedir(dir);
        free(abs);
        free(rel);
    }
    free(todo);
}

static void drain(struct pm_watch *w);

static void on_delay(uv_timer_t *t)
{
    struct pm_watch *w = t->data;

    if (!w->app)
        return;
    /* An instance is still being stopped or started (the last restart, a stop, a reload): the
     * change came after what that gives, so it restarts them once it is done, not never. */
    for (size_t k = 0; k < w->app->ninsts; k++) {
        if (pm_inst_busy(w->app->insts[k])) {
            uv_timer_start(&w->delay, on_delay, PM_WATCH_FOLD_MS, 0);
            return;
        }
    }
    /* What is queued happened before this restart, which the new processes will see: it folds
     * in, rather than restart them again at once (one save is several events). */
    w->draining = true;
    drain(w);
    w->draining = false;
    pm_app_restart_all(w->app);
}

/* A change at rel: the restart comes watch_delay after the first one. */
static void changed(struct pm_watch *w, const char *rel)
{
    const struct pm_spec *s = &w->app->spec;

    if (w->draining || uv_is_active((uv_handle_t *)&w->delay))
        return;
    /* PM2's words. */
    log_info("Change detected on path %s for app %s - restarting", rel[0] ? rel : ".", s->name);
    uv_timer_start(
        &w->delay, on_delay,
        (uint64_t)(s->watch_delay_ms > PM_WATCH_FOLD_MS ? s->watch_delay_ms : PM_WATCH_FOLD_MS), 0);
}

static void dir_forget(struct pm_watch *w, struct pm_watch_dir *d)
{
    size_t k = (size_t)(d - w->dirs);

    free(d->abs);
    free(d->rel);
    memmove(w->dirs + k, w->dirs + k + 1, (w->ndirs - k - 1) * sizeof(*w->dirs));
    w->ndirs--;
}

static void on_event(struct pm_watch *w, const struct inotify_event *ev)
{
    const struct pm_spec *s = &w->app->spec;
    struct pm_watch_dir *d;

    if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: one of them may have mattered */
        changed(w, "");
        return;
    }
    if (!(d = dir_find(w, ev->wd)))
        return;
    if (ev->mask & IN_IGNORED) { /* the directory is gone: its watch with it */
        dir_forget(w, d);
        return;
    }
    char *rel = ev->len && ev->name[0] ? join(d->rel, ev->name) : xstrdup(d->rel);
    if (!pm_watch_ignored(rel, s->ignore_watch, s->nignore_watch)) {
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
            char *abs = join(d->abs, ev->name);
            watch_tree(w, abs, rel); /* d may have moved: not used after this */
            free(abs);
        }
        changed(w, rel);
    }
    free(rel);
}

static void drain(struct pm_watch *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    while (w->app && (n = read(w->fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            on_event(w, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    drain(h->data);
}

/* The absolute path abs with its `.` and `..` components resolved lexically (and empty ones
 * dropped), as PM2's path.resolve does: "/app/./src" is "/app/src", "/app/../shared" is
 * "/shared". Ignore patterns must never see such a component: PM2's default ignores any that
 * starts with a dot, which would leave "./src" unwatched. */
static char *normalise(const char *abs)
{
    size_t n = strlen(abs);
    char *out;
    size_t len = 0;

    if (MESH_BUG_ON(abs[0] != '/')) /* cwd is made absolute when the spec is read */
        return xstrdup(abs);
    out = xmalloc(n + 2);
    for (const char *p = abs; *p;) {
        while (*p == '/')
            p++;
        size_t c = strcspn(p, "/");
        if (c == 0 || (c == 1 && p[0] == '.')) {
            /* nothing: an empty component or "." */
        } else if (c == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && out[len - 1] != '/') /* the last component, if any ("/.." is "/") */
                len--;
            if (len > 0)
                len--;
        } else {
            out[len++] = '/';
            memcpy(out + len, p, c);
            len += c;
        }
        p += c;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    return out;
}

/* A watch list path made absolute, with what ignore patterns see of it: the part under the
 * app's directory, or "" for a path outside it (only what is under it is matched). */
static void root_paths(const char *cwd, const char *path, char **abs, char **rel)
{
    char *joined = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", cwd, path);
    char *dir = normalise(cwd);
    size_t dlen = strcmp(dir, "/") == 0 ? 0 : strlen(dir);

    *abs = normalise(joined);
    if (strncmp(*abs, dir, dlen) == 0 && (*abs)[dlen] == '/')
        *rel = xstrdup(*abs + dlen + 1);
    else
        *rel = xstrdup("");
    free(joined);
    free(dir);
}

void pm_watch_start(struct pm_app *a)
{
    const struct pm_spec *s = &a->spec;
    struct pm_watch *w;
    char here[PATH_MAX];
    const char *cwd = s->cwd;
    int fd;

    if (!s->watch || a->watch)
        return;
    if (!cwd)
        cwd = getcwd(here, sizeof(here)) ? here : "/";
    if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        log_error("%s: watch: inotify: %s: not watching", s->name, strerror(errno));
        return;
    }
    w = xcalloc(1, sizeof(*w));
    w->app = a;
    w->fd = fd;
    a->watch = w;
    if (s->nwatch_paths == 0)
        watch_tree(w, cwd, "");
    for (size_t k = 0; k < s->nwatch_paths; k++) {
        char *abs, *rel;
        root_paths(cwd, s->watch_paths[k], &abs, &rel);
        watch_tree(w, abs, rel);
        free(abs);
        free(rel);
    }
    log_info("%s: watching %zu director%s for changes", s->name, w->ndirs,
             w->ndirs == 1 ? "y" : "ies");
    uv_poll_init(a->d->loop, &w->poll, fd);
    uv_timer_init(a->d->loop, &w->delay);
    w->poll.data = w;
    w->delay.data = w;
    w->open_handles = 2;
    uv_poll_start(&w->poll, UV_READABLE, on_readable);
}

void pm_watch_stop(struct pm_app *a)
{
    struct pm_watch *w = a->watch;

    if (!w)
        return;
    a->watch = NULL;
    w->app = NULL;
    uv_close((uv_handle_t *)&w->poll, on_watch_closed);
    uv_close((uv_handle_t *)&w->delay, on_watch_closed);
}
