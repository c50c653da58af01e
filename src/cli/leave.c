/* The agent control commands `mesh join ADDR`, `mesh leave`, `mesh force-leave NODE` and
 * `mesh reload`, as consul's. */
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

#define JOIN_USAGE                                                                                 \
    "mesh join [options] ADDRESS...\n\n"                                                           \
    "  Tells a running client agent to join the cluster through a server: ADDRESS is the\n"        \
    "  server's HTTP API, host or host:port (port 8500 when omitted), or http(s)://host:port.\n"   \
    "  Succeeds when at least one address answers."

#define FORCE_LEAVE_USAGE                                                                          \
    "mesh force-leave [options] NODE\n\n"                                                          \
    "  Forces a failed member into the left state and removes its node from the catalog. An\n"     \
    "  alive one is marked leaving: its next heartbeat makes it alive again. With -prune the\n"    \
    "  member is removed whatever its status."

#define RELOAD_USAGE                                                                               \
    "mesh reload [options]\n\n"                                                                    \
    "  Causes the agent to reload its configuration files: services defined there are\n"           \
    "  registered, updated or deregistered, and the log level applied. Same as SIGHUP."

/* Sends one PUT and prints msg on success. Returns the command's exit status. */
static int put(const struct cli_http_opts *o, const char *target, const char *what, const char *msg)
{
    if (cli_call(o, "PUT", target, what) < 0)
        return 1;
    if (msg)
        printf("%s\n", msg);
    return 0;
}

int cli_leave(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1;

    if (cli_parse_command(flags, ARRAY_LEN(flags), LEAVE_USAGE, argc - 1, argv + 1, 0, &first,
                          &status))
        status =
            put(&o, "/v1/agent/leave", "Error leaving through agent", "Graceful leave complete");
    cli_http_opts_free(&o);
    return status;
}

int cli_join(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1, joined = 0;

    if (cli_parse_flags(flags, ARRAY_LEN(flags), JOIN_USAGE, argc - 1, argv + 1, &first, &status)) {
        status = 1;
        if (first == argc - 1)
            fprintf(stderr, "At least one address to join must be specified.\n");
        for (int i = first + 1; i < argc; i++) {
            struct buf target = BUF_INIT;
            buf_append_cstr(&target, "/v1/agent/join/");
            url_encode(&target, str_from(argv[i]), false);
            if (put(&o, target.data, "Error joining the cluster", NULL) == 0)
                joined++;
            buf_free(&target);
        }
        if (joined) {
            printf("Successfully joined cluster by contacting %d nodes.\n", joined);
            status = 0;
        }
    }
    cli_http_opts_free(&o);
    return status;
}

int cli_force_leave(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    bool prune = false;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {.name = "prune",
         .type = FLAG_BOOL,
         .ptr = &prune,
         .help = "Also remove the member from the list of members."},
    };
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
            if (prune)
                buf_append_cstr(&target, "?prune=1");
            status = put(&o, target.data, "Error force leaving", "Force leave complete");
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

    if (cli_parse_command(flags, ARRAY_LEN(flags), RELOAD_USAGE, argc - 1, argv + 1, 0, &first,
                          &status))
        status = put(&o, "/v1/agent/reload", "Error reloading", "Configuration reload triggered");
    cli_http_opts_free(&o);
    return status;
}
