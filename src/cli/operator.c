/*
 * `mesh operator raft list-peers | remove-peer`: the replicated servers' configuration and the
 * removal of a server from it, as consul operator raft (same table, same messages).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"

#define OPERATOR_USAGE                                                                             \
    "mesh operator <subcommand> [options]\n\n"                                                     \
    "  Operator commands for the servers of the cluster.\n\n"                                      \
    "Subcommands:\n"                                                                               \
    "    raft    Inspect and change the servers' Raft configuration\n"

#define RAFT_USAGE                                                                                 \
    "mesh operator raft <subcommand> [options]\n\n"                                                \
    "  The Raft configuration of the replicated servers.\n\n"                                      \
    "Subcommands:\n"                                                                               \
    "    list-peers     List the servers of the Raft configuration\n"                              \
    "    remove-peer    Remove a server from the Raft configuration\n"

#define LIST_PEERS_USAGE                                                                           \
    "mesh operator raft list-peers [options]\n\n"                                                  \
    "  Lists the servers of the Raft configuration with their state (leader or follower)\n"        \
    "  and whether they vote (GET /v1/operator/raft/configuration)."

#define REMOVE_PEER_USAGE                                                                          \
    "mesh operator raft remove-peer [options] -address=IP:PORT | -id=ID\n\n"                       \
    "  Removes a server from the Raft configuration (DELETE /v1/operator/raft/peer): for a\n"      \
    "  server that failed and will not come back. A server leaving gracefully (mesh leave)\n"      \
    "  removes itself. The leader cannot be removed: stop it with mesh leave first."

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int list_peers(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o), CLI_STALE_FLAG(&o)};
    struct cli_lines l = {0};
    struct buf out = BUF_INIT;
    json_t *v = NULL;
    int first, status = 1;

    if (!cli_parse_command(flags, ARRAY_LEN(flags), LIST_PEERS_USAGE, argc - 1, argv + 1, 0, &first,
                           &status))
        goto out;
    status = 1;
    v = cli_call_json(&o, "GET", "/v1/operator/raft/configuration", CLI_READ,
                      "Error getting peers");
    if (!v)
        goto out;
    cli_lines_add(&l, "Node|ID|Address|State|Voter|RaftProtocol");
    json_t *servers = json_object_get(v, "Servers");
    for (size_t i = 0; i < json_array_size(servers); i++) {
        const json_t *s = json_array_get(servers, i);
        cli_lines_add(&l, "%s|%s|%s|%s|%s|%s", jstr(s, "Node"), jstr(s, "ID"), jstr(s, "Address"),
                      json_is_true(json_object_get(s, "Leader")) ? "leader" : "follower",
                      json_is_true(json_object_get(s, "Voter")) ? "true" : "false",
                      *jstr(s, "ProtocolVersion") ? jstr(s, "ProtocolVersion") : "<=1");
    }
    cli_columnize(&out, &l, '|', "  ");
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    status = 0;
out:
    json_decref(v);
    buf_free(&out);
    cli_lines_free(&l);
    cli_http_opts_free(&o);
    return status;
}

static int remove_peer(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    char *address = NULL, *id = NULL;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"address", FLAG_STRING, &address,
         "The address of the server to remove, `IP:port` as list-peers shows it.", false},
        {"id", FLAG_STRING, &id, "The ID of the server to remove, as list-peers shows it.", false},
    };
    struct buf target = BUF_INIT;
    int first, status = 1;

    if (!cli_parse_command(flags, ARRAY_LEN(flags), REMOVE_PEER_USAGE, argc - 1, argv + 1, 0,
                           &first, &status))
        goto out;
    status = 1;
    if (!(address && *address) == !(id && *id)) {
        fprintf(stderr, "Error removing peer: %s\n",
                address && *address ? "cannot give both -address and -id"
                                    : "an address or an ID is required for the peer to remove");
        goto out;
    }
    buf_append_cstr(&target, "/v1/operator/raft/peer");
    cli_query_add(&target, address && *address ? "address" : "id",
                  address && *address ? address : id);
    if (cli_call(&o, "DELETE", target.data, "Error removing peer") == 0) {
        printf("Removed peer with %s \"%s\"\n", address && *address ? "address" : "id",
               address && *address ? address : id);
        status = 0;
    }
out:
    buf_free(&target);
    free(address);
    free(id);
    cli_http_opts_free(&o);
    return status;
}

static int operator_raft(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"list-peers", list_peers},
        {"remove-peer", remove_peer},
    };

    return cli_subcommand(argv[0], RAFT_USAGE, subs, ARRAY_LEN(subs), argc, argv);
}

int cli_operator(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {{"raft", operator_raft}};

    return cli_subcommand(argv[0], OPERATOR_USAGE, subs, ARRAY_LEN(subs), argc, argv);
}
