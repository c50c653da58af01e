/* mesh: one binary, one subcommand per component. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lb/lb_main.h"
#include "registry/agent.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"agent", agent_main, "Run a registry agent (Consul's HTTP API)"},
    {"lb", lb_main, "Run the HTTP load balancer"},
    {"members", cli_members, "List the members of the cluster"},
    {"catalog", cli_catalog, "Read the catalog: services, nodes, service NAME"},
    {"kv", cli_kv, "Read and write the key/value store"},
    {"services", cli_services, "Register and deregister services with the local agent"},
    {"lock", cli_lock, "Run a command while holding a lock in the KV store"},
    {"tls", cli_tls, "Create a CA and agent certificates for TLS"},
    {"leave", cli_leave, "Gracefully leave the cluster and shut the agent down"},
    {"force-leave", cli_force_leave, "Remove a failed node from the cluster"},
    {"reload", cli_reload, "Make the agent reload its configuration files"},
    {"version", cli_version, "Print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: mesh <command> [flags] [args]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "    %-12s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nRun 'mesh <command> -help' for a command's flags.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
        strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0 ||
        strcmp(argv[1], "-version") == 0)
        return cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "mesh: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 1;
}
