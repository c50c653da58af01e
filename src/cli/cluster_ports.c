/*
 * `mesh up` checks its ports before it starts anything: a second cluster on taken ports must fail
 * at once, naming the port and who holds it, rather than start half its processes, report
 * "up", and leave a supervisor restarting webapps that cannot bind.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/net.h"
#include "lib/procfs.h"

#define MAX_PORTS (CLUSTER_MAX_NODES * 4 + 2)

struct port_use {
    const char *node;
    const char *what; /* "agent HTTP API", "DNS", ... */
    const char *addr;
    int port;
    bool udp_too; /* DNS: UDP and TCP */
};

/* True when addr:port can be bound now (TCP as the servers bind it, with SO_REUSEADDR, so a
 * port left in TIME_WAIT counts as free; or UDP). */
static bool can_bind(const char *addr, int port, bool udp)
{
    struct sockaddr_storage ss;
    int one = 1;
    int fd;
    bool ok;

    if (net_parse_addr(addr, port, &ss) != 0)
        return false;
    fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    if (!udp)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *)&ss,
              ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in)) == 0;
    close(fd);
    return ok;
}

static int port_taken(const struct port_use *u, bool udp, struct err *e)
{
    char owner[256];
    pid_t pid;

    if (procfs_port_owner(u->port, udp, &pid, owner, sizeof(owner)))
        err_set(e,
                "port %d (%s's %s) is in use%s by pid %d (%s); pick other ports (-port-offset) "
                "or stop that process",
                u->port, u->node, u->what, udp ? " (UDP)" : "", (int)pid, owner);
    else
        err_set(e,
                "port %d (%s's %s) is in use%s by a process this user cannot see; pick other "
                "ports (-port-offset)",
                u->port, u->node, u->what, udp ? " (UDP)" : "");
    return -EADDRINUSE;
}

int cluster_ports_check(const struct cluster_state *s, struct err *e)
{
    struct port_use use[MAX_PORTS];
    size_t n = 0;

    if (s->netns)
        return 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct cluster_node *nd = &s->nodes[i];
        use[n++] = (struct port_use){nd->name, "agent HTTP API", nd->addr, nd->agent_port, false};
        if (nd->dns_port > 0)
            use[n++] = (struct port_use){nd->name, "agent DNS", nd->addr, nd->dns_port, true};
        if (nd->server_port > 0)
            use[n++] = (struct port_use){nd->name, "replication", nd->addr, nd->server_port, false};
        if (i == 0) {
            use[n++] = (struct port_use){nd->name, "load balancer", nd->addr, s->lb_port, false};
            use[n++] = (struct port_use){nd->name, "lb stats", nd->addr, s->stats_port, false};
        } else if (!nd->server) {
            use[n++] = (struct port_use){nd->name, "webapp", nd->addr, nd->web_port, false};
        }
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < i; k++) {
            if (use[k].port == use[i].port && strcmp(use[k].addr, use[i].addr) == 0) {
                err_set(e, "port %d is given to both %s's %s and %s's %s", use[i].port, use[k].node,
                        use[k].what, use[i].node, use[i].what);
                return -EADDRINUSE;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!can_bind(use[i].addr, use[i].port, false))
            return port_taken(&use[i], false, e);
        if (use[i].udp_too && !can_bind(use[i].addr, use[i].port, true))
            return port_taken(&use[i], true, e);
    }
    return 0;
}
