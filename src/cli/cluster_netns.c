/*
 * `mesh up -netns`: the original's three VMs as network namespaces on one bridge, each node
 * with its own address and the standard ports. The host holds the bridge's first address, so
 * the load balancer, stats and registry answer from the host on the nodes' addresses.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cluster.h"

#define IP_TIMEOUT_MS 10000

/* Runs `ip ARGS...` (NULL-terminated array); 0, or -EIO with e set to what ip said. */
static int ip(unsigned flags, char *const argv[], struct err *e)
{
    char *av[16] = {"ip"};
    struct buf cmd = BUF_INIT;
    size_t k = 1;
    int rc;

    for (size_t i = 0; argv[i] && k < 15; i++) {
        av[k++] = argv[i];
        buf_printf(&cmd, " %s", argv[i]);
    }
    av[k] = NULL;
    rc = cluster_run(NULL, av, NULL, flags, IP_TIMEOUT_MS, e);
    if (rc > 0) {
        err_set(e, "ip%s failed (status %d)", cmd.data, rc);
        rc = -EIO;
    }
    buf_free(&cmd);
    return rc;
}

#define IP(e, ...)       ip(0, (char *[]){__VA_ARGS__, NULL}, e)
#define IP_QUIET(e, ...) ip(CLUSTER_RUN_QUIET, (char *[]){__VA_ARGS__, NULL}, e)

static int setup_node(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    char cidr[80];
    char *ns = (char *)n->netns, *veth = (char *)n->veth;
    int rc;

    snprintf(cidr, sizeof(cidr), "%s/24", n->addr);
    if ((rc = IP(e, "netns", "add", ns)) < 0 ||
        (rc = IP(e, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)) <
            0 ||
        (rc = IP(e, "link", "set", veth, "master", (char *)s->bridge, "up")) < 0 ||
        (rc = IP(e, "-n", ns, "addr", "add", cidr, "dev", "eth0")) < 0 ||
        (rc = IP(e, "-n", ns, "link", "set", "eth0", "up")) < 0 ||
        (rc = IP(e, "-n", ns, "link", "set", "lo", "up")) < 0)
        return rc;
    return 0;
}

int cluster_netns_setup(const struct cluster_state *s, struct err *e)
{
    char cidr[80];
    char *br = (char *)s->bridge;
    int rc;

    snprintf(cidr, sizeof(cidr), "%s/24", s->host_addr);
    if ((rc = IP(e, "link", "add", br, "type", "bridge")) < 0) {
        err_prefix(e, "bridge %s (another cluster up with -netns? 'mesh down' stops it)", br);
        return rc;
    }
    if ((rc = IP(e, "addr", "add", cidr, "dev", br)) < 0 ||
        (rc = IP(e, "link", "set", br, "up")) < 0)
        return rc;
    for (size_t i = 0; i < s->n_nodes; i++) {
        if ((rc = setup_node(s, &s->nodes[i], e)) < 0)
            return rc;
    }
    return 0;
}

int cluster_netns_teardown(const struct cluster_state *s)
{
    struct err e;
    int removed = 0;

    /* Each step may already be undone (a half-made setup, a second down): errors are fine. */
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        if (n->netns[0] && IP_QUIET(&e, "netns", "del", (char *)n->netns) == 0)
            removed++;
        if (n->veth[0])
            IP_QUIET(&e, "link", "del", (char *)n->veth);
    }
    if (s->bridge[0])
        IP_QUIET(&e, "link", "del", (char *)s->bridge);
    return removed;
}
