/*
 * `mesh pm logs`: the last lines of each instance's log files (reaching into the newest rotated
 * file when the current one is short), then, with -f, what is appended, across rotations: when
 * a file shrinks it was copy-truncated, so the rest of the old content is read from file.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/flags.h"
#include "pm/client.h"
#include "pm/policy.h"

#define PM_TAIL_BYTES  (1024 * 1024) /* read at most this much from the end of a file */
#define PM_FOLLOW_MS   100
#define PM_MAX_FOLLOWS 2 * 1024
#define PM_LINE_MAX    (64 * 1024) /* a longer unterminated line is shown in pieces this long */

struct follow {
    char *path;
    char *label;
    off_t offset;
    ino_t rot_ino;      /* of path.1 when we last followed a rotation */
    ino_t seen_ino;     /* a new path.1 put off for one round */
    struct buf partial; /* a line not yet terminated */
};

/* Appends to out the bytes of path from offset to the end (at most PM_TAIL_BYTES). */
static off_t read_from(const char *path, off_t offset, struct buf *out)
{
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t pos = offset;
    ssize_t n;

    if (fd < 0)
        return offset;
    if (lseek(fd, offset, SEEK_SET) == offset) {
        while (out->len < PM_TAIL_BYTES && (n = read(fd, chunk, sizeof(chunk))) > 0) {
            buf_append(out, chunk, (size_t)n);
            pos += n;
        }
    }
    close(fd);
    return pos;
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Number of complete lines in b. */
static size_t count_lines(const struct buf *b)
{
    size_t n = 0;

    for (size_t k = 0; k < b->len; k++)
        n += b->data[k] == '\n';
    if (b->len && b->data[b->len - 1] != '\n')
        n++;
    return n;
}

/* Prints the last `lines` lines of text, each prefixed with label. */
static void print_tail(const char *label, const struct buf *text, size_t lines)
{
    size_t total = count_lines(text);
    size_t skip = total > lines ? total - lines : 0;
    const char *p = text->data;
    const char *end = text->data + text->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (skip)
            skip--;
        else
            printf("%s | %.*s\n", label, (int)len, p);
        p += len + 1;
    }
}

/* The last lines of path, continuing into path.1 when path has fewer. */
static off_t show_tail(const char *path, const char *label, size_t lines)
{
    char older[PATH_MAX];
    struct buf cur = BUF_INIT;
    struct buf old = BUF_INIT;
    off_t size = file_size(path);
    off_t start = size > PM_TAIL_BYTES ? size - PM_TAIL_BYTES : 0;
    off_t end = read_from(path, start, &cur);
    size_t have = count_lines(&cur);

    if (have < lines && pm_rotate_name(path, 1, older, sizeof(older)) == 0) {
        off_t osize = file_size(older);
        read_from(older, osize > PM_TAIL_BYTES ? osize - PM_TAIL_BYTES : 0, &old);
        print_tail(label, &old, lines - have);
    }
    print_tail(label, &cur, lines);
    buf_free(&cur);
    buf_free(&old);
    return end > 0 ? end : 0;
}

/* Prints the complete lines of new bytes; keeps the unterminated rest. */
static void emit(struct follow *f, struct buf *fresh)
{
    char *nl;

    buf_append(&f->partial, fresh->data ? fresh->data : "", fresh->len);
    while (f->partial.len && (nl = memchr(f->partial.data, '\n', f->partial.len)) != NULL) {
        size_t len = (size_t)(nl - f->partial.data);
        printf("%s | %.*s\n", f->label, (int)len, f->partial.data);
        buf_consume(&f->partial, len + 1);
    }
    /* A line that does not end (a dump without newlines) is shown in pieces, not held in full. */
    while (f->partial.len >= PM_LINE_MAX) {
        printf("%s | %.*s\n", f->label, PM_LINE_MAX, f->partial.data);
        buf_consume(&f->partial, PM_LINE_MAX);
    }
    fflush(stdout);
}

/* Inode of path, 0 when absent. */
static ino_t file_ino(const char *path, off_t *size)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return 0;
    *size = st.st_size;
    return st.st_ino;
}

/*
 * A rotation shows as a new file.1 (the old one was renamed to .2). The current file may already
 * have grown past our offset again, so its size alone does not tell; but until the truncate
 * happened it is at least as long as the fresh copy, and then we wait one round.
 */
static void follow_once(struct follow *f)
{
    char older[PATH_MAX];
    struct buf fresh = BUF_INIT;
    off_t size = file_size(f->path);
    off_t osize = 0;
    ino_t ino = 0;

    if (size < 0 || pm_rotate_name(f->path, 1, older, sizeof(older)) != 0)
        return;
    ino = file_ino(older, &osize);
    if (ino && ino != f->rot_ino) {
        if (size >= f->offset && size >= osize && ino != f->seen_ino) {
            f->seen_ino = ino; /* copied, maybe not yet truncated: look again next round */
            return;
        }
        f->rot_ino = ino;
        if (osize >= f->offset)
            read_from(older, f->offset, &fresh);
        f->offset = 0;
    } else if (size < f->offset) {
        f->offset = 0; /* truncated by someone else */
    }
    f->offset = read_from(f->path, f->offset, &fresh);
    emit(f, &fresh);
    buf_free(&fresh);
}

/* The files to show: from describe's rows, out and/or err of each instance. */
static size_t collect(const json_t *rows, bool out, bool err, struct follow *fs)
{
    size_t n = 0;
    size_t k;
    json_t *row;

    json_array_foreach(rows, k, row)
    {
        const char *name = json_string_value(json_object_get(row, "name"));
        json_int_t inst = json_integer_value(json_object_get(row, "instance"));
        for (int w = 0; w < 2 && n < PM_MAX_FOLLOWS; w++) {
            const char *key = w == 0 ? "out_log" : "err_log";
            const char *path = json_string_value(json_object_get(row, key));
            if ((w == 0 && !out) || (w == 1 && !err) || !path)
                continue;
            fs[n].path = xstrdup(path);
            fs[n].label =
                xasprintf("%s-%lld%s", name ? name : "?", (long long)inst, w == 0 ? "" : " err");
            n++;
        }
    }
    return n;
}

int pm_cmd_logs(const char *home, int argc, char **argv)
{
    static const char usage[] = "mesh pm logs NAME [-lines N] [-f] [-err|-out]";
    int lines = 15;
    bool follow_flag = false, only_err = false, only_out = false;
    struct flag flags[] = {
        {"lines", FLAG_INT, &lines, "Lines to show from the end of each file.", false},
        {"f", FLAG_BOOL, &follow_flag, "Follow: print lines as they are written.", false},
        {"err", FLAG_BOOL, &only_err, "Standard error only.", false},
        {"out", FLAG_BOOL, &only_out, "Standard output only.", false},
    };
    struct err e = {{0}};
    struct follow *fs = NULL;
    json_t *req = NULL;
    json_t *reply = NULL;
    size_t n = 0;
    int first = 0;
    int rc = flags_parse(flags, ARRAY_LEN(flags), argc - 1, argv + 1, &first, &e);

    first++;
    /* NAME first, flags after it, as people type it; nothing may be left over. */
    if (rc == 0 && first < argc && first + 1 < argc) {
        int rest = 0;
        rc = flags_parse(flags, ARRAY_LEN(flags), argc - first - 1, argv + first + 1, &rest, &e);
        if (rc == 0 && first + 1 + rest < argc)
            rc = err_set(&e, "unexpected argument \"%s\"", argv[first + 1 + rest]);
    }
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, usage, flags, ARRAY_LEN(flags));
        return 0;
    }
    if (rc == 0 && first >= argc)
        rc = err_set(&e, "logs: missing NAME");
    if (rc == 0 && lines < 0)
        rc = err_set(&e, "-lines must not be negative");
    if (rc != 0) {
        fprintf(stderr, "mesh pm: %s\nUsage: %s\n", e.msg, usage);
        return 1;
    }
    req = json_pack("{s:s,s:s}", "cmd", "describe", "name", argv[first]);
    rc = pm_client_request(home, req, true, &reply, &e);
    json_decref(req);
    if (rc != 0) {
        fprintf(stderr, "mesh pm: %s\n", e.msg);
        return 1;
    }
    fs = xcalloc(PM_MAX_FOLLOWS, sizeof(*fs));
    n = collect(json_object_get(reply, "processes"), !only_err, !only_out, fs);
    json_decref(reply);
    for (size_t k = 0; k < n; k++) {
        char older[PATH_MAX];
        off_t ignored;
        if (pm_rotate_name(fs[k].path, 1, older, sizeof(older)) == 0)
            fs[k].rot_ino = file_ino(older, &ignored);
        fs[k].offset = show_tail(fs[k].path, fs[k].label, (size_t)lines);
    }
    fflush(stdout);
    /* Until interrupted: the user's Ctrl-C (or the caller's SIGTERM) ends it. */
    while (follow_flag) {
        nanosleep(&(struct timespec){0, PM_FOLLOW_MS * 1000000L}, NULL);
        for (size_t k = 0; k < n; k++)
            follow_once(&fs[k]);
    }
    for (size_t k = 0; k < n; k++) {
        free(fs[k].path);
        free(fs[k].label);
        buf_free(&fs[k].partial);
    }
    free(fs);
    return 0;
}
