/* mesh: one binary, one subcommand per component. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lb/lb_main.h"
#include "load/drill.h"
#include "load/load.h"
#include "pm/pm.h"
#include "registry/agent/agent.h"
#include "template/template.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"agent", reg_agent_main, "Run a registry agent (Consul's HTTP API)"},
    {"lb", lb_main, "Run the HTTP load balancer"},
    {"load", load_main, "Run Artillery load test scripts"},
    {"drill", load_drill_main, "Failure drills under load: failover, scale, node-loss"},
    {"template", template_main,
     "Render config files from the registry and run a command on change"},
    {"members", cli_members, "List the members of the cluster"},
    {"catalog", cli_catalog, "Read the catalog: services, nodes, service NAME"},
    {"kv", cli_kv, "Read and write the key/value store"},
    {"services", cli_services, "Register and deregister services with the local agent"},
    {"lock", cli_lock, "Run a command while holding a lock in the KV store"},
    {"tls", cli_tls, "Create a CA and agent certificates for TLS"},
    {"join", cli_join, "Tell a client agent to join the cluster through a server"},
    {"rtt", cli_rtt, "Estimate the network round-trip time between two nodes"},
    {"leave", cli_leave, "Gracefully leave the cluster and shut the agent down"},
    {"force-leave", cli_force_leave, "Remove a failed node from the cluster"},
    {"reload", cli_reload, "Make the agent reload its configuration files"},
    {"operator", cli_operator, "Replicated servers: list-peers, remove-peer (operator raft)"},
    {"pm", pm_main, "Supervise processes: start, stop, scale, restart on crash (PM2's job)"},
    {"version", cli_version, "Print the version, the commit and the libraries"},
    {"man", cli_man, "Write the man pages of every command into a directory"},
    /* The local cluster and its operator commands (cluster_utils.sh's). */
    {"up", cli_up, "Start the local cluster (loopback, or -netns) and print its URLs"},
    {"down", cli_down, "Stop everything 'mesh up' started"},
    {"cleanup", cli_cleanup, "Stop the cluster and remove its state and logs"},
    {"status", cli_status, "The cluster at a glance: nodes, services, apps, lb backends"},
    {"nodes", cli_nodes, "The cluster's nodes and their agents"},
    {"health", cli_health, "Every health check (exit 2 when one fails)"},
    {"lb-status", cli_lb_status, "Backends as the load balancer sees them"},
    {"stop-service", cli_stop_service, "Stop the web service on a node (no failed request)"},
    {"start-service", cli_start_service, "Start the web service on a node again"},
    {"reload-service", cli_reload_service,
     "Replace a node's web processes one by one (no failed request)"},
    {"scale-up", cli_scale_up, "One more web instance on a node"},
    {"scale-down", cli_scale_down, "One web instance less on a node"},
    {"kill-node", cli_kill_node, "Hard failure of a node (SIGKILL of all its processes)"},
    {"revive-node", cli_revive_node, "Bring a killed node back"},
    {"reload-lb", cli_reload_lb, "Make the load balancer re-read its config (SIGHUP)"},
    {"test-lb", cli_test_lb, "Send N requests through the lb; print the spread"},
    {"test-load", cli_test_load, "Run scenarios/basic|stress|failover.yml against the lb"},
    {"exec", cli_exec, "Run a command as if on a node: its namespace, its agent (vagrant ssh)"},
};

/*
 * The original's cluster_utils.sh names, so its scripts and habits keep working: each runs
 * `mesh COMMAND [ARG]` with the rest of the command line.
 */
static const struct alias {
    const char *name;
    const char *command;
    const char *arg; /* inserted before the user's arguments, or NULL */
} aliases[] = {
    {"consul-status", "nodes", NULL},
    {"haproxy-status", "lb-status", NULL},
    {"reload-haproxy", "reload-lb", NULL},
    {"test-loadbalancer", "test-lb", NULL},
    {"artillery-basic", "test-load", "basic"},
    {"artillery-stress", "test-load", "stress"},
    {"artillery-failover", "test-load", "failover"},
};

#define ALIAS_MAX_ARGS 256

/* Where `mesh help` starts the operator commands' section. */
#define FIRST_CLUSTER_COMMAND "up"

static void usage(FILE *f)
{
    /* Name and summary are two spaces apart at least: `mesh man` splits a line there. */
    int width = 0;
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        int len = (int)strlen(subcommands[i].name);
        width = len > width ? len : width;
    }
    fprintf(f, "Usage: mesh <command> [flags] [args]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(subcommands[i].name, FIRST_CLUSTER_COMMAND) == 0)
            fprintf(f,
                    "\nLocal cluster (run directory ./run, -run-dir or MESH_RUN_DIR; --json):\n");
        fprintf(f, "    %-*s  %s\n", width, subcommands[i].name, subcommands[i].summary);
    }
    fprintf(f, "\nThe original's cluster_utils.sh names, accepted as they were:\n");
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        fprintf(f, "    %-18s = mesh %s%s%s\n", aliases[i].name, aliases[i].command,
                aliases[i].arg ? " " : "", aliases[i].arg ? aliases[i].arg : "");
    fprintf(f, "\nRun 'mesh <command> -help' for a command's flags.\n");
}

/* Runs the alias's command with argv[0] its name (its messages and -help say what it is). */
static int run_alias(const struct alias *a, int argc, char **argv)
{
    char *args[ALIAS_MAX_ARGS + 2];
    int n = 0;

    if (argc > ALIAS_MAX_ARGS) {
        fprintf(stderr, "mesh %s: too many arguments\n", a->name);
        return 1;
    }
    args[n++] = (char *)a->command;
    if (a->arg)
        args[n++] = (char *)a->arg;
    for (int i = 2; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(subcommands[i].name, a->command) == 0)
            return subcommands[i].run(n, args);
    }
    return 1;
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
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(argv[1], aliases[i].name) == 0)
            return run_alias(&aliases[i], argc, argv);
    }
    fprintf(stderr, "mesh: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 1;
}
