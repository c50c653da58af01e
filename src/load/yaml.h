/*
 * Artillery scenario files: YAML (libyaml) read into a jansson tree, plus the line of every
 * value so that later checks can say "file:line: message". Plain scalars are typed as YAML 1.2's
 * core schema (js-yaml, which Artillery uses): null, true/false, integers, floats; quoted and
 * block scalars stay strings. Anchors and aliases are resolved; merge keys ("<<") are not.
 */
#ifndef MESH_LOAD_YAML_H
#define MESH_LOAD_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

struct load_yaml_line {
    const json_t *parent; /* the object or array holding the value */
    char *key;            /* object member name, or NULL for an array element */
    size_t index;         /* array element index */
    int line;             /* 1-based */
};

struct load_yaml {
    char *path;   /* owned */
    json_t *root; /* owned reference; an object for a valid scenario file */
    struct load_yaml_line *lines;
    size_t n_lines, cap_lines;
};

/*
 * Parses text[0..len) (borrowed) read from path (copied, used in messages). Returns 0, or
 * -EINVAL with e = "path:line: message" for a YAML syntax error, an unknown alias, a non-scalar
 * key or a document that is not a mapping. On error y holds nothing to free.
 */
int load_yaml_parse(const char *path, const char *text, size_t len, struct load_yaml *y,
                    struct err *e);
/* Reads path whole (blocking; startup only) and parses it. -errno with "path: strerror". */
int load_yaml_load(const char *path, struct load_yaml *y, struct err *e);
void load_yaml_free(struct load_yaml *y);

/* Records that parent's member key (or element index, key NULL) is at line. */
void load_yaml_add_line(struct load_yaml *y, const json_t *parent, const char *key, size_t index,
                        int line);

/* Line of parent's member key (key != NULL) or element index; 0 when unknown. */
int load_yaml_line(const struct load_yaml *y, const json_t *parent, const char *key, size_t index);

#endif
