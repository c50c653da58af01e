/*
 * Artillery scenario files: YAML (libyaml) read into a jansson tree, plus the line of every
 * value so that later checks can say "file:line: message". Plain scalars are typed as YAML 1.2's
 * core schema (js-yaml, which Artillery uses): null, true/false, integers, floats; quoted and
 * block scalars stay strings. Anchors and aliases are resolved; merge keys ("<<") are not.
 */
#ifndef MESH_LOAD_YAML_H
#define MESH_LOAD_YAML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct load_yaml_line {
    const json_t *parent; /* the object or array holding the value */
    char *key;            /* object member name, or NULL for an array element */
    size_t index;         /* array element index */
    int line;             /* 1-based */
    const char *file;     /* the file it is in, when merged from another; else NULL */
};

struct load_yaml {
    char *path;   /* owned */
    json_t *root; /* owned reference; an object for a valid scenario file */
    struct load_yaml_line *lines;
    size_t n_lines, cap_lines;
    /* what load_yaml_merge laid over root: [[path, root], ...], kept for the line table */
    json_t *merged;
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
/* The same, and *file set to the file it is in (y->path unless merged from another). */
int load_yaml_where(const struct load_yaml *y, const json_t *parent, const char *key, size_t index,
                    const char **file);

/*
 * Lays src's tree over y's as lodash's merge does, which is how Artillery lays `--config FILE`
 * over a script: mappings merge key by key, lists element by element (with replace_lists, as
 * its `--overrides` does, a list replaces the one under it), anything else replaces. The lines
 * of what came from src keep naming src's file. src is emptied (y keeps what it needs).
 */
void load_yaml_merge(struct load_yaml *y, struct load_yaml *src, bool replace_lists);
/* The same over at, a mapping or list in y's tree, rather than over its root. */
void load_yaml_merge_at(struct load_yaml *y, json_t *at, struct load_yaml *src, bool replace_lists);

#endif
