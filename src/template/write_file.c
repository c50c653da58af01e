/*
 * consul-template's writeToFile PATH USER GROUP MODE [FLAGS] CONTENT. A render stays pure: the
 * function records the write (tmpl_used.writes) and gives "", and the runner makes the writes
 * of a complete render only, off the loop, before the template's own file (a render re-run
 * while its dependencies arrive would otherwise write, or append, once per pass).
 *
 * The write is consul-template's: the directory is made when missing, a symbolic link as the
 * file or as its directory is refused, the file is opened without following one (O_NOFOLLOW),
 * truncated (or appended to), then given its owner and mode through the open descriptor.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/file.h"
#include "template/tmpl_internal.h"

void tmpl_errno_text(int rc, char out[128])
{
    snprintf(out, 128, "%s", strerror(-rc));
    out[0] = (char)tolower((unsigned char)out[0]);
}

/* ---- the function ------------------------------------------------------------------------ */

static int fn_write_to_file(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *perm = json_string_value(args[3]);
    const json_t *content = args[nargs - 1];
    char *end;

    if (nargs == 4) /* Go indexes the missing content: args[len(args)-1] */
        return tmpl_fail(ev, "error calling writeToFile: runtime error: index out of range [-1]");
    errno = 0;
    unsigned long mode = strtoul(perm, &end, 8);
    if (!*perm || *end || errno || mode > 0xffffffffUL || perm[0] == '-' || perm[0] == '+' ||
        isspace((unsigned char)perm[0]))
        return tmpl_fail(
            ev, "error calling writeToFile: strconv.ParseUint: parsing \"%s\": %s", perm,
            errno == ERANGE || mode > 0xffffffffUL ? "value out of range" : "invalid syntax");
    const char *flags = nargs == 6 ? json_string_value(args[4]) : "";
    struct tmpl_used *u = ev->used;
    u->writes = xrealloc(u->writes, (u->nwrites + 1) * sizeof(*u->writes));
    struct tmpl_file_write *w = &u->writes[u->nwrites++];
    struct buf b = BUF_INIT;
    buf_append(&b, json_string_value(content), json_string_length(content));
    if (strstr(flags, "newline"))
        buf_append_cstr(&b, "\n");
    *w = (struct tmpl_file_write){
        .path = xstrdup(json_string_value(args[0])),
        .user = xstrdup(json_string_value(args[1])),
        .group = xstrdup(json_string_value(args[2])),
        /* Go's os.FileMode keeps the permission bits only: "4755" is 0755 */
        .mode = (unsigned)mode & 0777,
        .append = strstr(flags, "append") != NULL,
        .len = b.len,
        .where =
            xasprintf("%s:%d:%d", ev->t->name, ev->at ? ev->at->line : 0, ev->at ? ev->at->col : 0),
    };
    w->content = b.data ? buf_steal(&b) : xstrdup("");
    *out = json_string("");
    return 0;
}

static const struct tmpl_func write_funcs[] = {
    {"writeToFile", fn_write_to_file, 4, -1, "s"},
};

const struct tmpl_func *tmpl_write_func_find(const char *name)
{
    return tmpl_func_lookup(write_funcs, ARRAY_LEN(write_funcs), name);
}

void tmpl_file_writes_free(struct tmpl_file_write *w, size_t n)
{
    if (MESH_BUG_ON(n > 0 && !w)) /* a count kept after its list was handed on */
        return;
    for (size_t i = 0; i < n; i++) {
        free(w[i].path);
        free(w[i].user);
        free(w[i].group);
        free(w[i].content);
        free(w[i].where);
    }
    free(w);
}

/* ---- the write --------------------------------------------------------------------------- */

/* Sets e to "WHERE: error calling writeToFile: OP PATH: why" (Go's *PathError) and returns rc. */
static int os_error(const struct tmpl_file_write *w, const char *op, const char *path, int rc,
                    struct err *e)
{
    char why[128];

    tmpl_errno_text(rc, why);
    err_setf(e, "%s: error calling writeToFile: %s %s: %s", w->where, op, path, why);
    return rc;
}

/* A user or group by name, else by number, as Go's user.Lookup then strconv.Atoi. */
static int owner_id(const struct tmpl_file_write *w, const char *name, bool group, long *id,
                    struct err *e)
{
    char buf[16384], *end;

    if (group) {
        struct group g, *res = NULL;
        if (getgrnam_r(name, &g, buf, sizeof(buf), &res) == 0 && res) {
            *id = (long)g.gr_gid;
            return 0;
        }
    } else {
        struct passwd p, *res = NULL;
        if (getpwnam_r(name, &p, buf, sizeof(buf), &res) == 0 && res) {
            *id = (long)p.pw_uid;
            return 0;
        }
    }
    errno = 0;
    *id = strtol(name, &end, 10);
    if (*name && !*end && !errno && *id >= 0)
        return 0;
    err_setf(e, "%s: error calling writeToFile: %s: unknown %s %s", w->where,
             group ? "group" : "user", group ? "group" : "user", name);
    return -EINVAL;
}

/* The directory part of path (Go's filepath.Dir without the cleaning): "." when none. */
static char *dir_of(const char *path)
{
    size_t n = strlen(path);

    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n ? xstrndup(path, n) : xstrdup(".");
}

/* Checks the directory (made when missing) and the file for symbolic links. */
static int check_path(const struct tmpl_file_write *w, const char *dir, struct err *e)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return os_error(w, "stat", dir, -errno, e);
        int rc = file_mkdir_all(dir, 0777);
        if (rc < 0)
            return os_error(w, "mkdir", dir, rc, e);
    }
    if (lstat(dir, &st) != 0)
        return os_error(w, "lstat", dir, -errno, e);
    if (S_ISLNK(st.st_mode)) {
        err_setf(e,
                 "%s: error calling writeToFile: writeToFile: refusing to write through symlinked "
                 "directory in path \"%s\"",
                 w->where, w->path);
        return -ELOOP;
    }
    if (lstat(w->path, &st) == 0 && S_ISLNK(st.st_mode)) {
        err_setf(e,
                 "%s: error calling writeToFile: writeToFile: refusing to write to symlink \"%s\"",
                 w->where, w->path);
        return -ELOOP;
    }
    return 0;
}

int tmpl_file_write_apply(const struct tmpl_file_write *w, struct err *e)
{
    char *dir = dir_of(w->path);
    long uid = (long)getuid(), gid = (long)getgid();
    int fd, rc;

    if ((rc = check_path(w, dir, e)) < 0)
        goto err_after_dir;
    fd = open(w->path,
              O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (w->append ? O_APPEND : O_TRUNC),
              (mode_t)w->mode);
    if (fd < 0) {
        rc = os_error(w, "open", w->path, -errno, e);
        goto err_after_dir;
    }
    if ((rc = file_write_all(fd, w->content, w->len)) < 0) {
        os_error(w, "write", w->path, rc, e);
        goto err_after_open;
    }
    if ((*w->user && (rc = owner_id(w, w->user, false, &uid, e)) < 0) ||
        (*w->group && (rc = owner_id(w, w->group, true, &gid, e)) < 0))
        goto err_after_open;
    /* only when asked, as consul-template: no chown to oneself */
    if ((*w->user || *w->group) && fchown(fd, (uid_t)uid, (gid_t)gid) != 0) {
        rc = os_error(w, "chown", w->path, -errno, e);
        goto err_after_open;
    }
    if (fchmod(fd, (mode_t)w->mode) != 0) {
        rc = os_error(w, "chmod", w->path, -errno, e);
        goto err_after_open;
    }
    rc = 0;
err_after_open:
    close(fd);
err_after_dir:
    free(dir);
    return rc;
}
