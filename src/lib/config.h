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
 * Reads and parses path. Returns 0, or -errno / -EINVAL with e = "path:line: message" (syntax
 * error, or the top level is not an object) or "path: strerror" (unreadable).
 */
int config_doc_load(const char *path, struct config_doc *doc, struct err *e);
void config_doc_free(struct config_doc *doc);

/*
 * Lists the *.json files of dir in lexical order (heap array of heap strings, NULL-terminated).
 * Returns 0 or -errno with e set.
 */
int config_dir_list(const char *dir, char ***paths, struct err *e);
void config_dir_list_free(char **paths);

/*
 * 1-based line of the value at `path` in the document's text: keys separated by '.', array
 * elements as "[i]", e.g. "ports.http" or "services[1].check.interval". Returns the line of the
 * deepest component found (1 when nothing matched).
 */
int config_locate(const struct config_doc *doc, const char *path);

/* Fills e with "file:line: message" for the value at path. Returns -EINVAL. */
int config_error(const struct config_doc *doc, const char *path, struct err *e, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

#endif
