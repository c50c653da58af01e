/*
 * `mesh exec NODE [--] CMD [ARGS...]`: the original's `vagrant ssh web1 -c CMD`. CMD runs as
 * if on that node: inside its network namespace when the cluster runs with -netns, and in
 * every mode with the node's environment, so `mesh members`, `consul kv get`, or
 * `curl $CONSUL_HTTP_ADDR/v1/agent/self` talk to that node's agent. The process is replaced
 * (through `ip netns exec`, which execs in place, in a namespace), so CMD's exit status,
 * signals and terminal are the command's own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"

#define EXEC_USAGE                                                                                 \
    "mesh exec [options] NODE [--] CMD [ARGS...]\n\n"                                              \
    "  Runs CMD as if on NODE (the original's 'vagrant ssh NODE'): in the node's network\n"        \
    "  namespace when the cluster runs with -netns, and with the node's environment:\n"            \
    "  CONSUL_HTTP_ADDR and MESH_HTTP_ADDR name its agent, NODE_NAME and MESH_NODE its name,\n"    \
    "  MESH_RUN_DIR the cluster (and, with -secure, its CA, client certificate and token).\n"      \
    "  The exit status is CMD's (127: not found, 126: not executable)."

#define EXEC_MAX_ARGS 1024

/* Sets every variable that makes CMD's clients talk to node n's agent. */
static void exec_env(const struct cluster_state *s, const struct cluster_node *n)
{
    char addr[128];

    if (s->secure)
        snprintf(addr, sizeof(addr), "https://%s:%d", n->addr, n->agent_port);
    else
        cluster_webapp_agent(n, addr, sizeof(addr));
    /* The mesh CLI takes the first non-empty of MESH_* and CONSUL_*: set both. */
    setenv("MESH_HTTP_ADDR", addr, 1);
    setenv("CONSUL_HTTP_ADDR", addr, 1);
    setenv("NODE_NAME", n->name, 1);
    setenv("MESH_NODE", n->name, 1);
    setenv("MESH_RUN_DIR", s->run_dir, 1);
}

int cli_exec(int argc, char **argv)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {
        {.name = "run-dir",
         .type = FLAG_STRING,
         .ptr = &c.run_dir,
         .help = "Run directory of the cluster (also MESH_RUN_DIR). Default ./run"},
    };
    struct cluster_state s;
    struct cluster_node *n;
    struct err e;
    char *av[EXEC_MAX_ARGS + 8];
    int own = argc, cmd = argc, status = 1, first = 0;
    size_t k = 0;

    /* Options and NODE, then CMD: after "--", or else right after NODE (as `ip netns exec`). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            own = i;
            cmd = i + 1;
            break;
        }
    }
    if (own == argc) {
        if (!cli_parse_flags(flags, ARRAY_LEN(flags), EXEC_USAGE, argc - 1, argv + 1, &first,
                             &status))
            goto out;
        own = first + 2; /* argv[first + 1] is NODE */
        cmd = own;
    }
    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags), EXEC_USAGE, own > argc ? argc : own, argv,
                           1, &status, &s))
        goto out;
    status = 1;
    if (cmd >= argc) {
        fprintf(stderr, "%s: give the command to run after the node (see -help)\n", argv[0]);
        goto out;
    }
    if (argc - cmd > EXEC_MAX_ARGS) {
        fprintf(stderr, "%s: at most %d arguments\n", argv[0], EXEC_MAX_ARGS);
        goto out;
    }
    if (!(n = cluster_node_find(&s, c.arg, &e))) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    exec_env(&s, n);
    if (n->netns[0]) {
        av[k++] = "ip";
        av[k++] = "netns";
        av[k++] = "exec";
        av[k++] = n->netns;
    }
    for (int i = cmd; i < argc; i++)
        av[k++] = argv[i];
    av[k] = NULL;
    fflush(stdout);
    execvp(av[0], av);
    /* As env(1) and the shells: 127 when there is no such command, 126 when it cannot run. */
    status = errno == ENOENT ? 127 : 126;
    fprintf(stderr, "%s: %s: %s\n", argv[0], av[0], strerror(errno));
out:
    free(c.run_dir);
    return status;
}
