/*
 * `mesh test-lb -n N`: N requests through the load balancer, tallied by the instance that
 * served each (X-Served-By), as cluster_utils.sh's test-loadbalancer shows the spread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"

#define TEST_LB_MAX_N      1000000
#define TEST_LB_TIMEOUT_MS 10000

/* Adds one to tally[key] (a JSON object of counts). */
static void bump(json_t *tally, const char *key)
{
    json_t *v = json_object_get(tally, key);

    json_object_set_new(tally, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static json_t *send_requests(const struct cluster_state *s, int n, int *failed)
{
    json_t *tally = json_object();
    struct cluster_reply r = {0};
    struct err e;
    char key[160];

    *failed = 0;
    for (int i = 0; i < n; i++) {
        if (cluster_get(cluster_lb_host(s), s->lb_port, "/", NULL, TEST_LB_TIMEOUT_MS, &r, &e) < 0)
            snprintf(key, sizeof(key), "(error)");
        else if (r.status != 200 || !r.served_by[0])
            snprintf(key, sizeof(key), "(HTTP %d)", r.status);
        else
            snprintf(key, sizeof(key), "%s", r.served_by);
        if (key[0] == '(')
            (*failed)++;
        bump(tally, key);
    }
    buf_free(&r.body);
    return tally;
}

static void print_table(const json_t *tally, int n, bool color)
{
    struct cluster_table t;
    struct buf out = BUF_INIT;
    const char *key;
    json_t *v;

    cluster_table_init(&t, 3);
    cluster_table_row(&t, (const char *[]){"SERVED BY", "REQUESTS", "SHARE"});
    json_object_foreach((json_t *)tally, key, v)
    {
        char count[32], share[32];
        snprintf(count, sizeof(count), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        snprintf(share, sizeof(share), "%.1f%%", 100.0 * (double)json_integer_value(v) / n);
        cluster_table_row(&t, (const char *[]){key, count, share});
        if (key[0] == '(')
            cluster_table_color(&t, 0, CLUSTER_RED);
    }
    cluster_table_render(&t, color, &out);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    cluster_table_free(&t);
}

int cli_test_lb(int argc, char **argv)
{
    struct cluster_cmd c = {0};
    int n = 100, failed;
    struct flag flags[] = {
        CLUSTER_CMD_FLAGS(&c),
        {.name = "n", .type = FLAG_INT, .ptr = &n, .help = "Number of requests."},
    };
    struct cluster_state s;
    json_t *tally = NULL;
    int status = 1;

    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags),
                           "mesh test-lb [options]\n\n"
                           "  Sends -n GET / requests through the load balancer, one after the\n"
                           "  other, and prints how many each instance served (X-Served-By).\n"
                           "  Exits 1 when a request failed.",
                           argc, argv, 0, &status, &s))
        goto out;
    status = 1;
    if (n < 1 || n > TEST_LB_MAX_N) {
        fprintf(stderr, "%s: -n must be 1..%d\n", argv[0], TEST_LB_MAX_N);
        goto out;
    }
    tally = send_requests(&s, n, &failed);
    if (c.json) {
        json_t *v =
            json_pack("{s:i, s:i, s:O}", "requests", n, "failed", failed, "served_by", tally);
        cluster_print_json(v);
        json_decref(v);
    } else {
        printf("%d requests to http://%s:%d/:\n", n, cluster_lb_host(&s), s.lb_port);
        print_table(tally, n, cluster_use_color());
    }
    status = failed ? 1 : 0;
out:
    json_decref(tally);
    free(c.run_dir);
    return status;
}
