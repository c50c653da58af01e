/* The agent control commands `mesh leave`, `mesh force-leave NODE` and `mesh reload`, as
 * consul's. */
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/url.h"
#include "cli/cli.h"
#include "cli/cli_internal.h"

#define LEAVE_USAGE                                                                                \
    "mesh leave [options]\n\n"                                                                     \
    "  Causes the agent to gracefully leave the cluster and shut down. A client agent's\n"         \
    "  services are deregistered at once."

#define FORCE_LEAVE_USAGE                                                                          \
    "mesh force-leave [options] NODE\n\n"                                                          \
    "  Removes a failed node from the cluster, as if it had left gracefully. An alive node\n"      \
    "  cannot be forced out."

#define RELOAD_USAGE                                                                               \
    "mesh reload [options]\n\n"                                                                    \
    "  Causes the agent to reload its configuration files: services defined there are\n"           \
    "  registered, updated or deregistered, and the log level applied. Same as SIGHUP."

/* Sends one PUT and prints msg on success. */
static int put(struct cli_http_opts *o, const char *target, const char *what, const char *msg)
{
    struct cli_http h;
    struct cli_response res = {0};
    struct err e;
    int status = 1;

    if (cli_http_open(&h, o, &e) < 0) {
        fprintf(stderr, "Error connecting to the agent: %s\n", e.msg);
        return 1;
    }
    if (cli_http_call(&h, "PUT", target, NULL, 0, 0, &res, &e) < 0) {
        fprintf(stderr, "Error %s: %s\n", what, e.msg);
    } else {
        printf("%s\n", msg);
        status = 0;
    }
    cli_response_free(&res);
    cli_http_close(&h);
    return status;
}

int cli_leave(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1;

    if (cli_parse_flags(flags, ARRAY_LEN(flags), LEAVE_USAGE, argc - 1, argv + 1, &first,
                        &status)) {
        status = first == argc - 1 ? put(&o, "/v1/agent/leave", "leaving through agent",
                                         "Graceful leave complete")
                                   : (fprintf(stderr, "Too many arguments (expected 0)\n"), 1);
    }
    cli_http_opts_free(&o);
    return status;
}

int cli_force_leave(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1;

    if (cli_parse_flags(flags, ARRAY_LEN(flags), FORCE_LEAVE_USAGE, argc - 1, argv + 1, &first,
                        &status)) {
        status = 1;
        if (first != argc - 2) {
            fprintf(stderr, "A single node name must be specified.\n");
        } else {
            struct buf target = BUF_INIT;
            buf_append_cstr(&target, "/v1/agent/force-leave/");
            url_encode(&target, str_from(argv[argc - 1]), false);
            status = put(&o, target.data, "force leaving", "Force leave complete");
            buf_free(&target);
        }
    }
    cli_http_opts_free(&o);
    return status;
}

int cli_reload(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1;

    if (cli_parse_flags(flags, ARRAY_LEN(flags), RELOAD_USAGE, argc - 1, argv + 1, &first,
                        &status)) {
        status = first == argc - 1
                     ? put(&o, "/v1/agent/reload", "reloading", "Configuration reload triggered")
                     : (fprintf(stderr, "Too many arguments (expected 0)\n"), 1);
    }
    cli_http_opts_free(&o);
    return status;
}
