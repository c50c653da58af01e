/*
 * Pieces shared by the CLI commands (src/cli only, and its unit tests): the HTTP API flags every
 * command takes, a blocking-style request over the async HTTP client, Go-compatible table
 * layout (columnize, tabwriter) and the pure renderers the commands print with.
 */
#ifndef MESH_CLI_CLI_INTERNAL_H
#define MESH_CLI_CLI_INTERNAL_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/consul_client.h"
#include "lib/err.h"
#include "lib/flags.h"

/* ---- HTTP API options ------------------------------------------------------------------- */

/* Values of the common flags. Strings are heap or NULL (flags.h rules); free with _free. */
struct cli_http_opts {
    char *http_addr;
    char *token;
    char *token_file;
    char *datacenter;
    bool stale;
};

#define CLI_HELP_HTTP_ADDR                                                                         \
    "The address and port of the agent's HTTP API, \"host:port\" or \"http://host:port\".\n"       \
    "Also MESH_HTTP_ADDR or CONSUL_HTTP_ADDR. Default 127.0.0.1:8500."
#define CLI_HELP_TOKEN                                                                             \
    "ACL token to use in the request (X-Consul-Token). Also MESH_HTTP_TOKEN or\n"                  \
    "CONSUL_HTTP_TOKEN."
#define CLI_HELP_TOKEN_FILE                                                                        \
    "File holding the ACL token. Also MESH_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN_FILE."
#define CLI_HELP_DC "Name of the datacenter to query. Default: the datacenter of the queried agent."
#define CLI_HELP_STALE                                                                             \
    "Permit any server (non-leader) to answer this read. The default value is false."

/* Flag entries for the common options (without -stale), to put in a command's flag array. */
#define CLI_HTTP_FLAGS(o)                                                                          \
    {.name = "http-addr",                                                                          \
     .type = FLAG_STRING,                                                                          \
     .ptr = &(o)->http_addr,                                                                       \
     .help = CLI_HELP_HTTP_ADDR},                                                                  \
        {.name = "token", .type = FLAG_STRING, .ptr = &(o)->token, .help = CLI_HELP_TOKEN},        \
        {.name = "token-file",                                                                     \
         .type = FLAG_STRING,                                                                      \
         .ptr = &(o)->token_file,                                                                  \
         .help = CLI_HELP_TOKEN_FILE},                                                             \
    {                                                                                              \
        .name = "datacenter", .type = FLAG_STRING, .ptr = &(o)->datacenter, .help = CLI_HELP_DC    \
    }
/* The -stale flag, for read commands. */
#define CLI_STALE_FLAG(o)                                                                          \
    {                                                                                              \
        .name = "stale", .type = FLAG_BOOL, .ptr = &(o)->stale, .help = CLI_HELP_STALE             \
    }

void cli_http_opts_free(struct cli_http_opts *o);

/* ---- blocking-style requests -------------------------------------------------------------- */

/* A private loop and client; one request at a time runs the loop until its callback. */
struct cli_http {
    struct consul_endpoint ep;
    char *datacenter; /* heap copy or NULL */
    bool stale;
    uv_loop_t loop;
    struct http_client *client;
};

struct cli_response {
    int status;
    struct buf body;
};

/*
 * Resolves the agent's endpoint from the options and the environment (lib/consul_client.h:
 * MESH_x, else CONSUL_x) and opens a loop. Returns 0 or -EINVAL with e set.
 */
int cli_http_open(struct cli_http *h, const struct cli_http_opts *o, struct err *e);
/* Closes the client and drains and closes the loop. */
void cli_http_close(struct cli_http *h);
void cli_response_free(struct cli_response *r);

/* Appends "?name" / "&name" (value NULL) or "?name=value" with value percent-encoded. */
void cli_query_add(struct buf *target, const char *name, const char *value);

#define CLI_READ      1u /* a read: adds "stale" when -stale was given */
#define CLI_ALLOW_404 2u /* a 404 is an answer (KV misses), not an error */

/*
 * Sends method + target (path and query, already encoded; "dc" is appended when -datacenter was
 * given) with the token header and body, and waits for the answer. Returns 0 with res filled
 * (status 200, or 404 with CLI_ALLOW_404); -EIO for any other status, e set to the Go client's
 * "Unexpected response code: <code> (<trimmed body>)"; or a negative UV error with e set to the
 * Go-style transport text, e.g. `Get "http://127.0.0.1:8500/v1/kv/a": dial tcp
 * 127.0.0.1:8500: connect: connection refused`. res->body is empty on error; free it either way.
 */
int cli_http_call(struct cli_http *h, const char *method, const char *target, const void *body,
                  size_t body_len, unsigned flags, struct cli_response *res, struct err *e);

/* Parses a response body as JSON. NULL with e set ("Failed to decode response: ...") on junk. */
json_t *cli_json(const struct cli_response *res, struct err *e);

/* cli_http_open for a command: prints "Error connecting to the agent: ..." on failure. 0 or -1. */
int cli_connect(struct cli_http *h, const struct cli_http_opts *o);
/*
 * A command's one request, on a connection of its own: sends method + target (flags as
 * cli_http_call's) and returns the answer parsed as JSON (a new reference). On failure prints
 * "<what>: <error>" (or the connection's error) on stderr and returns NULL.
 */
json_t *cli_call_json(const struct cli_http_opts *o, const char *method, const char *target,
                      unsigned flags, const char *what);
/* As cli_call_json for a request whose answer is not read. Returns 0, or -1 after printing. */
int cli_call(const struct cli_http_opts *o, const char *method, const char *target,
             const char *what);

/* ---- command plumbing --------------------------------------------------------------------- */

/*
 * Parses argv with flags_parse. Returns true when the command should go on (*first_arg set).
 * Otherwise *exit_code is set: 0 after -help (usage on stdout), 1 after a bad flag (the message
 * and the usage on stderr).
 */
bool cli_parse_flags(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                     int *first_arg, int *exit_code);
/*
 * cli_parse_flags for a command that takes at most max_args arguments after its flags: with
 * more it prints "Too many arguments (expected N, got M)", sets *exit_code to 1 and returns
 * false.
 */
bool cli_parse_command(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                       int max_args, int *first_arg, int *exit_code);

/* True for -h, -help and --help. */
bool cli_is_help(const char *arg);

/* A subcommand: its name, and what runs it (with argv[0] its name). */
struct cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
};

/*
 * Runs the subcommand argv[1] names, of the n in subs. After -h, -help or --help, usage on stdout
 * and 0; with none, or an unknown one ("CMD: unknown subcommand \"X\""), usage on stderr and 1.
 */
int cli_subcommand(const char *cmd, const char *usage, const struct cli_subcommand *subs, size_t n,
                   int argc, char **argv);

/* Growable list of heap lines for the table helpers. */
struct cli_lines {
    char **v;
    size_t n;
    size_t cap;
};

void cli_lines_add(struct cli_lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_lines_free(struct cli_lines *l);

/*
 * Go's columnize (as the consul CLI uses it): each line split on delim, elements trimmed, every
 * element but a line's last padded to its column's widest, elements joined by glue, each line
 * ending in "\n". Appends to out.
 */
void cli_columnize(struct buf *out, const struct cli_lines *l, char delim, const char *glue);

/*
 * Go's text/tabwriter with minwidth 0, padding 6, pad ' ' over lines holding one '\t' each: the
 * first cell is padded to the widest first cell plus 6. Lines end in "\n". With trim, trailing
 * whitespace of the whole output is dropped and one "\n" put back (strings.TrimSpace then
 * UI.Output, as `consul catalog services -tags` prints).
 */
void cli_tabwrite(struct buf *out, const struct cli_lines *l, bool trim);

/* Trims ASCII whitespace from both ends of s in place (Go's strings.TrimSpace). */
struct str cli_trim(struct str s);

/* ---- renderers (pure, for the commands and tests) ----------------------------------------- */

/*
 * `consul members` output for an array of /v1/agent/members objects: sorted by name, filtered by
 * status_re (NULL = all) on the status word, as a table (detailed: Node Address Status Tags).
 * Appends to out and returns the number of members shown.
 */
size_t cli_members_render(json_t *members, bool detailed, const regex_t *status_re,
                          struct buf *out);
/* serf's word for a numeric member status: none, alive, leaving, left, failed, else unknown. */
const char *cli_member_status(long long status);

/* `consul kv get -detailed` block for one KV entry (ends in "\n"). */
void cli_kv_render_detailed(struct buf *out, const json_t *entry, bool base64_value);
/* The raw (base64-decoded) value of an entry; NULL value is "". Appends to out. */
void cli_kv_append_value(struct buf *out, const json_t *entry, bool base64_value);

/* Node table (Node ID Address DC, or the detailed one) for an array of catalog nodes. */
void cli_catalog_render_nodes(struct buf *out, const json_t *nodes, bool detailed);
/*
 * Services listing from a name -> [tags] object: names sorted, one per line, or with tags
 * (sorted, de-duplicated, joined by ',') through the tabwriter. Returns the number of services.
 */
size_t cli_catalog_render_services(struct buf *out, const json_t *services, bool tags);
/* Instance table (Node ServiceID Address Tags) for /v1/catalog/service/NAME's array. */
void cli_catalog_render_instances(struct buf *out, const json_t *instances);

#endif
