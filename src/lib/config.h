/*
 * JSON configuration files, with errors that name the file and line. jansson reports syntax
 * errors with a line; for semantic errors (a key of the wrong type, a bad value) config_error()
 * finds the line of the offending key by walking the file's text along the key path.
 */
#ifndef MESH_LIB_CONFIG_H
#define MESH_LIB_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

/* One loaded file. Owns path, text and root. */
struct config_doc {
    char *path;
    char *text;
    size_t len;
    json_t *root; /* always a JSON object */
};

/*
 * Reads and parses path (blocking: for startup and reload, not for the loop's hot path).
 * Duplicate keys are allowed, the last one wins, as in Go. Returns 0, or -EINVAL with
 * e = "path:line: <jansson's message>" (syntax error) or "path:line: configuration must be a
 * JSON object, not an array", or -errno with e = "path: strerror" (unreadable, or -EFBIG past
 * 16 MiB). On error doc holds nothing to free.
 */
int config_doc_load(const char *path, struct config_doc *doc, struct err *e);
/* Frees what doc owns and clears it; safe to call twice. */
void config_doc_free(struct config_doc *doc);

/*
 * Lists the regular files (symlinks followed) named *.json in dir, as "dir/name" paths in strcmp
 * order: a heap array of heap strings, NULL-terminated, possibly empty; free it with
 * config_dir_list_free. Returns 0 or -errno with e = "dir: strerror" (-ENOENT for a missing dir).
 */
int config_dir_list(const char *dir, char ***paths, struct err *e);
void config_dir_list_free(char **paths);

/*
 * 1-based line where the value at `path` starts in the document's text: keys separated by '.',
 * array elements as "[i]", e.g. "ports.http" or "services[1].check.interval". Keys match as
 * json_iget_snake does (exact, then ignoring case, then also ignoring '_'), so a path written
 * the way the reader looked the key up finds it. Keys containing '.' or '[' cannot be named.
 * Returns the line of the deepest component found (1 when nothing matched). Never reads past
 * doc->len, even on text that is not valid JSON.
 */
int config_locate(const struct config_doc *doc, const char *path);

/* Fills e with "file:line: message" for the value at path (see config_locate). */
void config_report(const struct config_doc *doc, const char *path, struct err *e, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/*
 * config_report, evaluating to -EINVAL. A macro so that the negative value shows at each call
 * site, as err_set's does: clang's analyzer does not follow variadic calls to see it.
 */
#define config_error(doc, path, e, ...) (config_report((doc), (path), (e), __VA_ARGS__), -EINVAL)

#endif
