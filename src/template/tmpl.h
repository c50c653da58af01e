/*
 * The template language: the subset of Go's text/template that consul-template users write.
 *
 * A template is parsed once into a tree (tmpl_parse) and rendered many times (tmpl_render)
 * against a data store: a map from dependency ids ("health.service(web|passing)",
 * "kv.block(config/x)", ...) to the data the registry last answered for them. Rendering is
 * pure: it reads the store, records every dependency it touched and says whether each one
 * already had data. The runner (runner.c) fetches what is missing with blocking queries and
 * renders again, so nested queries ({{ range services }}{{ range service .Name }}) settle in a
 * few passes, as in consul-template.
 *
 * Values are jansson values: strings, integers, reals, booleans, arrays (Go slices), objects
 * (Go maps and structs) and NULL (Go's nil; json null is treated the same).
 */
#ifndef MESH_TEMPLATE_TMPL_H
#define MESH_TEMPLATE_TMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/smap.h"

struct tmpl;

/* ---- parsing (lex.c, parse.c) ------------------------------------------------------------ */

/*
 * Parses text (len bytes, borrowed for the call) named name (copied; used in error messages).
 * Returns 0 and *out (free with tmpl_free), or -EINVAL with e set to "name:line:col: message",
 * e.g. "in.ctmpl:12:5: function "servce" not defined".
 */
int tmpl_parse(const char *name, const char *text, size_t len, struct tmpl **out, struct err *e);
void tmpl_free(struct tmpl *t);

/* ---- dependencies (deps.c) --------------------------------------------------------------- */

enum tmpl_dep_kind {
    TMPL_DEP_SERVICE,     /* /v1/health/service/<name> */
    TMPL_DEP_SERVICES,    /* /v1/catalog/services */
    TMPL_DEP_KEY,         /* /v1/kv/<path> */
    TMPL_DEP_KEY_LIST,    /* /v1/kv/<prefix>?recurse */
    TMPL_DEP_NODE,        /* /v1/catalog/node/<name> */
    TMPL_DEP_NODES,       /* /v1/catalog/nodes */
    TMPL_DEP_SELF,        /* /v1/agent/self: the local node's name, for node without a name */
    TMPL_DEP_DATACENTERS, /* /v1/catalog/datacenters */
    TMPL_DEP_FILE,        /* a local file, polled (watch.c): name is its path */
};

/* Health filters of a service dependency (bit set); none given means passing. */
#define TMPL_HEALTH_PASSING     0x01u
#define TMPL_HEALTH_WARNING     0x02u
#define TMPL_HEALTH_CRITICAL    0x04u
#define TMPL_HEALTH_MAINTENANCE 0x08u
#define TMPL_HEALTH_ANY         0x0fu

struct tmpl_dep {
    enum tmpl_dep_kind kind;
    char *id;        /* canonical, the store's key: equal ids are one watch */
    char *name;      /* service name, KV path or prefix, node name; "" when none */
    char *tag;       /* service tag or NULL */
    char *dc;        /* datacenter or NULL */
    char *query;     /* "ns=a&partition=b&peer=c&sameness-group=d" (those given) or NULL */
    char *near;      /* node the answer is ordered from (service, nodes) or NULL */
    unsigned health; /* TMPL_HEALTH_* for services */
};

/*
 * Parses a function's query argument into dep (all strings heap copies; free with
 * tmpl_dep_clear), consul-template's grammar: "[tag.]name[?query][@dc][~near][|filter,...]"
 * for service, "[?query][@dc]" for services, "[?query][@dc][~near]" for nodes,
 * "path[?query][@dc]" for keys and prefixes, "[name][?query][@dc]" for node (query:
 * "ns=a&partition=b&peer=c&sameness-group=d"), a path (spaces around it trimmed, "@" part of
 * it) for file. 0, or -EINVAL with e set, e.g.
 * `service "web|bogus": unknown health filter "bogus"`.
 */
int tmpl_dep_parse(enum tmpl_dep_kind kind, const char *arg, struct tmpl_dep *dep, struct err *e);
void tmpl_dep_clear(struct tmpl_dep *dep);
/* A deep copy of src into dst (free with tmpl_dep_clear). */
void tmpl_dep_copy(struct tmpl_dep *dst, const struct tmpl_dep *src);
/* The request target (path and query, without index/wait) that fetches dep; not for files. */
void tmpl_dep_target(const struct tmpl_dep *dep, struct buf *out);
/*
 * Turns a registry answer for dep (HTTP status and body) into the value functions read: for
 * services the consul-template service objects (filtered by health, sorted by Node then ID);
 * for a key its decoded value as a string, or null when the key does not exist (404); for a
 * prefix the pairs with decoded values; for nodes and catalogs their lists. Returns a new
 * reference, or NULL with e set when the answer is not what the endpoint returns.
 */
json_t *tmpl_dep_decode(const struct tmpl_dep *dep, int status, const char *body, size_t len,
                        struct err *e);

/*
 * Calls mark on each map in data (dep's decoded value, as tmpl_dep_decode made it) whose Go type
 * in consul-template has a zero value for a missing key, with that value (borrowed): "" for the
 * map[string]string ones (ServiceMeta, NodeMeta, Node.Meta, TaggedAddresses ...), {Address: "",
 * Port: 0} for ServiceTaggedAddresses (map[string]api.ServiceAddress). A key missing from other
 * maps (map[string]interface{}, as parseJSON makes) is nil.
 */
void tmpl_dep_map_zeros(const struct tmpl_dep *dep, json_t *data,
                        void (*mark)(void *arg, json_t *map, const json_t *zero), void *arg);

/* ---- rendering (eval.c, funcs.c, value.c) ------------------------------------------------ */

/*
 * A file writeToFile asked for (write_file.c). Rendering only records it: the runner writes
 * the files of a complete render, with tmpl_file_write_apply.
 */
struct tmpl_file_write {
    char *path, *user, *group; /* user, group "" when not given (the process's own) */
    unsigned mode;             /* permission bits */
    bool append;
    char *content; /* with the "newline" flag's newline */
    size_t len;
    char *where; /* "in.ctmpl:3:5", for errors */
};

/*
 * Writes w as consul-template does (blocking: call it off the loop). 0, or -errno with e set
 * to "in.ctmpl:3:5: error calling writeToFile: open /x/y: permission denied".
 */
int tmpl_file_write_apply(const struct tmpl_file_write *w, struct err *e);
/* Frees n writes and the array. */
void tmpl_file_writes_free(struct tmpl_file_write *w, size_t n);
/* Go's error text for a negative errno: strerror's, first letter lower-cased. */
void tmpl_errno_text(int rc, char out[128]);

/* What a render touched. */
struct tmpl_used {
    struct tmpl_dep *deps; /* distinct by id, in first-use order; owned */
    size_t n;
    size_t missing;                 /* how many had no data yet in the store */
    struct tmpl_file_write *writes; /* writeToFile's, in render order; owned */
    size_t nwrites;
};

void tmpl_used_free(struct tmpl_used *u);

/*
 * Renders t against store (dependency id -> json_t*, borrowed) into out. Returns 0 with *used
 * filled (the caller frees it with tmpl_used_free; the output is final only when
 * used->missing is 0), or -EINVAL with e set to "name:line:col: message" (a runtime error such
 * as calling index out of range); *used is then still filled with what was touched before.
 * An error while used->missing is not 0 may come from the empty placeholders that functions
 * return for data not fetched yet (parseInt of a key), so callers fetch and render again
 * before reporting it.
 */
int tmpl_render(const struct tmpl *t, const struct smap *store, struct buf *out,
                struct tmpl_used *used, struct err *e);

#endif
