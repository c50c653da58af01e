/* `mesh rtt NODE1 [NODE2]`: the round-trip time between two nodes estimated from their network
 * coordinates (/v1/coordinate/nodes), as consul rtt prints it. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/vivaldi.h"

#define RTT_USAGE                                                                                  \
    "mesh rtt [options] NODE1 [NODE2]\n\n"                                                         \
    "  Estimates the network round-trip time between two nodes from their network\n"               \
    "  coordinates. NODE2 defaults to the node of the agent -http-addr names."

/* Reads one node's Coord out of the /v1/coordinate/nodes list: 0, or -1 with a message. */
static int find_coord(const json_t *list, const char *node, struct vivaldi_coord *out)
{
    size_t i;
    const json_t *entry;

    json_array_foreach(list, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "Node"));
        const json_t *c = json_object_get(entry, "Coord");
        const json_t *vec = json_object_get(c, "Vec");
        if (!name || strcasecmp(name, node) != 0 || json_array_size(vec) != VIVALDI_DIMENSIONS)
            continue;
        for (size_t k = 0; k < VIVALDI_DIMENSIONS; k++)
            out->vec[k] = json_number_value(json_array_get(vec, k));
        out->error = json_number_value(json_object_get(c, "Error"));
        out->adjustment = json_number_value(json_object_get(c, "Adjustment"));
        out->height = json_number_value(json_object_get(c, "Height"));
        return 0;
    }
    fprintf(stderr, "Could not find a coordinate for node \"%s\"\n", node);
    return -1;
}

static int rtt_between(struct cli_http_opts *o, const char *n1, const char *n2)
{
    json_t *list = NULL, *me = NULL;
    struct vivaldi_coord a, b;
    int status = 1;

    if (!n2) { /* the agent's own node */
        me = cli_call_json(o, "GET", "/v1/agent/self", 0, "Unable to look up agent info");
        if (!me)
            goto out;
        n2 = json_string_value(json_object_get(json_object_get(me, "Config"), "NodeName"));
    }
    list = cli_call_json(o, "GET", "/v1/coordinate/nodes", CLI_READ, "Error getting coordinates");
    if (!list)
        goto out;
    if (!n2 || find_coord(list, n1, &a) < 0 || find_coord(list, n2, &b) < 0)
        goto out;
    printf("Estimated %s <-> %s rtt: %.3f ms (using LAN coordinates)\n", n1, n2,
           vivaldi_distance(&a, &b) * 1000.0);
    status = 0;
out:
    json_decref(list);
    json_decref(me);
    return status;
}

int cli_rtt(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag flags[] = {CLI_HTTP_FLAGS(&o)};
    int first, status = 1;

    if (cli_parse_flags(flags, ARRAY_LEN(flags), RTT_USAGE, argc - 1, argv + 1, &first, &status)) {
        int n = argc - 1 - first;
        if (n < 1 || n > 2) {
            fprintf(stderr, "One or two node names must be specified\n");
            status = 1;
        } else {
            status = rtt_between(&o, argv[first + 1], n == 2 ? argv[first + 2] : NULL);
        }
    }
    cli_http_opts_free(&o);
    return status;
}
