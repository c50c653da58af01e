/*
 * JSON configuration files. jansson parses them; a small tokenizer over the raw text maps a key
 * path back to a line number, because jansson keeps no positions for parsed values and an error
 * that names the line is worth the extra walk.
 */
#include "lib/config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/str.h"

/* Configuration is hand-written; anything bigger is a mistake, not a config file. */
#define CONFIG_MAX_BYTES (16u << 20)

/* Reads the whole file into a NUL-terminated heap string. Returns 0 or -errno. */
static int read_file(const char *path, char **text, size_t *len)
{
    struct buf b = BUF_INIT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        buf_reserve(&b, 65536);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto err_after_open;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        if (b.len > CONFIG_MAX_BYTES) {
            rc = -EFBIG;
            goto err_after_open;
        }
    }
    close(fd);
    b.data[b.len] = '\0';
    *len = b.len;
    *text = buf_steal(&b);
    return 0;

err_after_open:
    close(fd);
    buf_free(&b);
    return rc;
}

/* 1-based line of byte offset off in text. */
static int line_at(const char *text, size_t off)
{
    int line = 1;

    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n')
            line++;
    }
    return line;
}

static size_t skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

int config_doc_load(const char *path, struct config_doc *doc, struct err *e)
{
    json_error_t je;
    int rc;

    memset(doc, 0, sizeof(*doc));
    rc = read_file(path, &doc->text, &doc->len);
    if (rc < 0) {
        err_set(e, "%s: %s", path, strerror(-rc));
        return rc;
    }
    doc->root = json_loadb(doc->text, doc->len, 0, &je);
    if (!doc->root) {
        rc = err_set(e, "%s:%d: %s", path, je.line > 0 ? je.line : 1, je.text);
        goto err_after_read;
    }
    if (!json_is_object(doc->root)) {
        int line = line_at(doc->text, skip_ws(doc->text, doc->len, 0));
        rc = err_set(e, "%s:%d: configuration must be a JSON object, not %s", path, line,
                     json_is_array(doc->root) ? "an array" : "a scalar");
        goto err_after_parse;
    }
    doc->path = xstrdup(path);
    return 0;

err_after_parse:
    json_decref(doc->root);
    doc->root = NULL;
err_after_read:
    FREE_NULL(doc->text);
    doc->len = 0;
    return rc;
}

void config_doc_free(struct config_doc *doc)
{
    FREE_NULL(doc->path);
    FREE_NULL(doc->text);
    doc->len = 0;
    if (doc->root)
        json_decref(doc->root);
    doc->root = NULL;
}

static int cmp_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_json_ext(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, ".json") == 0;
}

int config_dir_list(const char *dir, char ***paths, struct err *e)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **list = NULL;
    size_t n = 0;
    int rc = 0;

    if (!d) {
        rc = -errno;
        err_set(e, "%s: %s", dir, strerror(-rc));
        return rc;
    }
    while ((errno = 0, de = readdir(d))) {
        struct stat st;
        if (!has_json_ext(de->d_name))
            continue;
        char *full = xasprintf("%s/%s", dir, de->d_name);
        /* stat, not lstat: a symlink to a file counts, as in Consul; directories do not. */
        if (stat(full, &st) < 0) {
            rc = -errno;
            err_set(e, "%s: %s", full, strerror(-rc));
            free(full);
            goto err_after_open;
        }
        if (!S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        list = xrealloc(list, (n + 2) * sizeof(*list));
        list[n++] = full;
    }
    if (errno) {
        rc = -errno;
        err_set(e, "%s: %s", dir, strerror(-rc));
        goto err_after_open;
    }
    closedir(d);
    if (!list)
        list = xcalloc(1, sizeof(*list));
    qsort(list, n, sizeof(*list), cmp_paths);
    list[n] = NULL;
    *paths = list;
    return 0;

err_after_open:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

void config_dir_list_free(char **paths)
{
    if (!paths)
        return;
    for (size_t i = 0; paths[i]; i++)
        free(paths[i]);
    free(paths);
}

/* ---- locating a key path in the raw text ---- */

/* Keys longer than this never match (config keys are short). */
#define LOCATE_KEY_MAX 256

struct scan {
    const char *p;
    size_t len;
};

/* Index just past the string starting at i (p[i] == '"'), or len when unterminated. */
static size_t skip_string(const struct scan *s, size_t i)
{
    for (i++; i < s->len; i++) {
        if (s->p[i] == '\\')
            i++;
        else if (s->p[i] == '"')
            return i + 1;
    }
    return s->len;
}

/* Index just past the value starting at i; strings inside containers may hold brackets. */
static size_t skip_value(const struct scan *s, size_t i)
{
    size_t depth = 0;

    if (i >= s->len)
        return i;
    if (s->p[i] == '"')
        return skip_string(s, i);
    while (i < s->len) {
        char c = s->p[i];
        if (c == '"') {
            i = skip_string(s, i);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* end of the enclosing container: a scalar ended */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            return i;
        }
        i++;
    }
    return i;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int d = str_hex_digit(p[k]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Decodes the key string [i, end) (quotes included) into out; false when too long or odd. */
static bool decode_key(const struct scan *s, size_t i, size_t end, char *out)
{
    static const char esc_in[] = "\"\\/bfnrt";
    static const char esc_out[] = "\"\\/\b\f\n\r\t";
    size_t o = 0;

    for (i++; i + 1 < end; i++) {
        if (o + 4 >= LOCATE_KEY_MAX)
            return false;
        char c = s->p[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        c = s->p[++i];
        const char *k = c ? strchr(esc_in, c) : NULL;
        if (k) {
            out[o++] = esc_out[k - esc_in];
            continue;
        }
        if (c != 'u' || end - i < 5)
            return false;
        int cp = hex4(s->p + i + 1);
        if (cp < 0)
            return false;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && end - i > 6 && s->p[i + 1] == '\\' &&
            s->p[i + 2] == 'u') {
            int lo = hex4(s->p + i + 3);
            if (lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        o += str_utf8_put(out + o, (uint32_t)cp);
    }
    out[o] = '\0';
    return true;
}

/* How well key matches want: 3 exact, 2 ignoring case, 1 ignoring case and '_', 0 not at all. */
static int key_match(const char *key, const char *want)
{
    if (strcmp(key, want) == 0)
        return 3;
    if (strcasecmp(key, want) == 0)
        return 2;
    for (const char *a = key, *b = want;; a++, b++) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b)
            return !*a && !*b ? 1 : 0;
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb)
            return 0;
    }
}

/*
 * Offset of the value of member `want` in the object at i (p[i] == '{'), or SIZE_MAX. Picks the
 * member json_iget_snake would: an exact match (the last, as jansson keeps the last duplicate),
 * else the first case-insensitive one, else the first underscore-blind one.
 */
static size_t find_member(const struct scan *s, size_t i, const char *want)
{
    char key[LOCATE_KEY_MAX];
    size_t best = SIZE_MAX;
    int best_score = 0;

    i = skip_ws(s->p, s->len, i + 1);
    while (i < s->len && s->p[i] == '"') {
        size_t key_end = skip_string(s, i);
        int score = decode_key(s, i, key_end, key) ? key_match(key, want) : 0;
        i = skip_ws(s->p, s->len, key_end);
        if (i >= s->len || s->p[i] != ':')
            break;
        i = skip_ws(s->p, s->len, i + 1);
        if (score > best_score || (score == 3 && best_score == 3)) {
            best = i;
            best_score = score;
        }
        i = skip_ws(s->p, s->len, skip_value(s, i));
        if (i >= s->len || s->p[i] != ',')
            break;
        i = skip_ws(s->p, s->len, i + 1);
    }
    return best;
}

/* Offset of element idx of the array at i (p[i] == '['), or SIZE_MAX. */
static size_t find_element(const struct scan *s, size_t i, size_t idx)
{
    i = skip_ws(s->p, s->len, i + 1);
    if (i >= s->len || s->p[i] == ']')
        return SIZE_MAX;
    for (size_t k = 0;; k++) {
        if (k == idx)
            return i;
        i = skip_ws(s->p, s->len, skip_value(s, i));
        if (i >= s->len || s->p[i] != ',')
            return SIZE_MAX;
        i = skip_ws(s->p, s->len, i + 1);
    }
}

/*
 * Next component of path at *pp: a key (copied into key, *idx = SIZE_MAX) or "[n]" (*idx = n).
 * Returns false at the end of the path or on a malformed one.
 */
static bool next_component(const char **pp, char *key, size_t *idx)
{
    const char *p = *pp;

    if (*p == '.')
        p++;
    if (!*p)
        return false;
    if (*p == '[') {
        char *end;
        if (p[1] < '0' || p[1] > '9')
            return false;
        unsigned long long v = strtoull(p + 1, &end, 10);
        if (*end != ']')
            return false;
        *idx = (size_t)v;
        *pp = end + 1;
        return true;
    }
    size_t n = strcspn(p, ".[");
    if (n == 0 || n >= LOCATE_KEY_MAX)
        return false;
    memcpy(key, p, n);
    key[n] = '\0';
    *idx = SIZE_MAX;
    *pp = p + n;
    return true;
}

int config_locate(const struct config_doc *doc, const char *path)
{
    struct scan s = {doc->text, doc->text ? doc->len : 0};
    char key[LOCATE_KEY_MAX];
    size_t idx;
    size_t at = skip_ws(s.p, s.len, 0);
    int line = 1;

    while (at < s.len && next_component(&path, key, &idx)) {
        if (idx == SIZE_MAX)
            at = s.p[at] == '{' ? find_member(&s, at, key) : SIZE_MAX;
        else
            at = s.p[at] == '[' ? find_element(&s, at, idx) : SIZE_MAX;
        if (at >= s.len)
            break;
        line = line_at(s.p, at);
    }
    return line;
}

void config_report(const struct config_doc *doc, const char *path, struct err *e, const char *fmt,
                   ...)
{
    struct buf msg = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    err_setf(e, "%s:%d: %s", doc->path ? doc->path : "?", config_locate(doc, path),
             msg.data ? msg.data : "");
    buf_free(&msg);
}
