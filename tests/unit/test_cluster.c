/*
 * The local cluster's pieces that need no running cluster: the state file round trip and its
 * validation, aligned tables with and without colour, views rendered as tables, and the
 * process helpers (bounded runs, PID checks, pidfiles).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cluster.h"
#include "lib/alloc.h"

static void sample_state(struct cluster_state *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->run_dir, sizeof(s->run_dir), "/tmp/run");
    snprintf(s->mesh, sizeof(s->mesh), "/usr/bin/mesh");
    snprintf(s->webapp, sizeof(s->webapp), "/usr/bin/webapp");
    snprintf(s->stats_user, sizeof(s->stats_user), "admin");
    snprintf(s->stats_password, sizeof(s->stats_password), "pw");
    s->lb_port = 8080;
    s->stats_port = 8404;
    s->failure_timeout_ns = 3000000000;
    s->check_interval_ns = 2000000000;
    s->n_nodes = 2;
    snprintf(s->nodes[0].name, sizeof(s->nodes[0].name), "loadbalancer");
    s->nodes[0].server = true;
    snprintf(s->nodes[0].addr, sizeof(s->nodes[0].addr), "127.0.0.1");
    s->nodes[0].agent_port = 8500;
    snprintf(s->nodes[1].name, sizeof(s->nodes[1].name), "web1");
    snprintf(s->nodes[1].addr, sizeof(s->nodes[1].addr), "10.77.0.11");
    snprintf(s->nodes[1].netns, sizeof(s->nodes[1].netns), "mesh-web1");
    snprintf(s->nodes[1].veth, sizeof(s->nodes[1].veth), "mv-web1");
    s->nodes[1].agent_port = 8501;
    s->nodes[1].web_port = 3000;
}

static void test_state_round_trip(void **state)
{
    struct cluster_state a, b;
    struct err e;
    json_t *doc;

    (void)state;
    sample_state(&a);
    a.netns = true;
    snprintf(a.bridge, sizeof(a.bridge), "meshbr0");
    doc = cluster_state_to_json(&a);
    assert_string_equal(json_string_value(json_object_get(doc, "mode")), "netns");
    assert_int_equal(cluster_state_from_json(doc, &b, &e), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_non_null(cluster_node_find(&b, "web1", &e));
    assert_null(cluster_node_find(&b, "web9", &e));
    assert_string_equal(e.msg, "no node \"web9\" in this cluster (nodes: loadbalancer, web1)");
    json_decref(doc);
}

static void test_state_rejects_damage(void **state)
{
    struct cluster_state a, b;
    struct err e;
    json_t *doc;

    (void)state;
    sample_state(&a);
    doc = cluster_state_to_json(&a);
    json_object_set_new(doc, "mode", json_string("vm"));
    assert_int_equal(cluster_state_from_json(doc, &b, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "\"mode\""));
    json_object_set_new(doc, "mode", json_string("loopback"));
    json_object_set_new(doc, "lb_port", json_integer(70000));
    assert_int_equal(cluster_state_from_json(doc, &b, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "lb_port"));
    json_object_set_new(doc, "lb_port", json_integer(8080));
    json_object_set_new(json_array_get(json_object_get(doc, "nodes"), 0), "server", json_false());
    assert_int_equal(cluster_state_from_json(doc, &b, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "first node must be the server"));
    json_object_del(doc, "nodes");
    assert_int_equal(cluster_state_from_json(doc, &b, &e), -EINVAL);
    json_decref(doc);
}

static void test_state_file(void **state)
{
    char dir[] = "/tmp/test_cluster_XXXXXX";
    struct cluster_state a, b;
    struct err e;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(cluster_state_load(dir, &b, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "mesh up"));
    sample_state(&a);
    snprintf(a.run_dir, sizeof(a.run_dir), "%s", dir);
    assert_int_equal(cluster_state_save(&a, &e), 0);
    assert_int_equal(cluster_state_load(dir, &b, &e), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(cluster_rm_tree(dir), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
}

static void test_table_aligns(void **state)
{
    struct cluster_table t;
    struct buf plain = BUF_INIT, colored = BUF_INIT;

    (void)state;
    cluster_table_init(&t, 3);
    cluster_table_row(&t, (const char *[]){"NODE", "STATUS", "NOTE"});
    cluster_table_row(&t, (const char *[]){"loadbalancer", "passing", ""});
    cluster_table_color(&t, 1, cluster_status_color("passing"));
    cluster_table_row(&t, (const char *[]){"web1", "critical", "down"});
    cluster_table_color(&t, 1, cluster_status_color("critical"));
    cluster_table_render(&t, false, &plain);
    assert_string_equal(plain.data, "NODE          STATUS    NOTE\n"
                                    "loadbalancer  passing\n"
                                    "web1          critical  down\n");
    cluster_table_render(&t, true, &colored);
    assert_string_equal(colored.data,
                        "\033[1mNODE\033[0m          \033[1mSTATUS\033[0m    \033[1mNOTE\033[0m\n"
                        "loadbalancer  \033[32mpassing\033[0m\n"
                        "web1          \033[31mcritical\033[0m  down\n");
    cluster_table_free(&t);
    buf_free(&plain);
    buf_free(&colored);
}

static void test_status_colors(void **state)
{
    (void)state;
    assert_int_equal(cluster_status_color("UP"), CLUSTER_GREEN);
    assert_int_equal(cluster_status_color("online"), CLUSTER_GREEN);
    assert_int_equal(cluster_status_color("warning"), CLUSTER_YELLOW);
    assert_int_equal(cluster_status_color("waiting restart"), CLUSTER_YELLOW);
    assert_int_equal(cluster_status_color("DOWN"), CLUSTER_RED);
    assert_int_equal(cluster_status_color("failed"), CLUSTER_RED);
}

static void test_view_render(void **state)
{
    static const struct cluster_column cols[] = {
        {"ID", "id", 0}, {"PORT", "port", 0}, {"NOTE", "note", 0}, {"OUTPUT", "output", 0}};
    static const struct cluster_column health_cols[] = {{"ID", "id", 0},
                                                        {"OUTPUT", "output", CLUSTER_COL_LINES},
                                                        {"MEMORY", "mem", CLUSTER_COL_BYTES}};
    json_error_t je;
    json_t *view = json_loads("[{\"id\": \"web-1\", \"port\": 3000, \"output\": \"ok\\nmore\","
                              "   \"note\": \"x\", \"mem\": 3801088},"
                              " {\"id\": \"web-22\", \"output\": \"HTTP GET\\r\\nline two\\n\\n\","
                              "   \"mem\": 512}]",
                              0, &je);
    struct buf out = BUF_INIT;

    (void)state;
    assert_non_null(view);
    /* One line per row unless a column keeps its lines. */
    cluster_view_render(view, cols, 4, false, &out);
    assert_string_equal(out.data, "ID      PORT  NOTE  OUTPUT\n"
                                  "web-1   3000  x     ok\n"
                                  "web-22              HTTP GET\n");
    buf_reset(&out);
    /* A check's output whole (mesh health), its lines under each other. */
    cluster_view_render(view, health_cols, 3, false, &out);
    assert_string_equal(out.data, "ID      OUTPUT    MEMORY\n"
                                  "web-1   ok        3.8 MB\n"
                                  "        more\n"
                                  "web-22  HTTP GET  512 B\n"
                                  "        line two\n");
    buf_free(&out);
    json_decref(view);
}

static void test_run_and_pids(void **state)
{
    char *ok[] = {"/bin/sh", "-c", "echo hi; exit 3", NULL};
    char *slow[] = {"/bin/sh", "-c", "exec sleep 5", NULL};
    char *missing[] = {"/nonexistent/binary", NULL};
    struct buf out = BUF_INIT;
    struct err e;

    (void)state;
    assert_int_equal(cluster_run(NULL, ok, &out, 0, 5000, &e), 3);
    assert_string_equal(out.data, "hi\n");
    assert_int_equal(cluster_run(NULL, slow, NULL, 0, 100, &e), -ETIMEDOUT);
    assert_true(cluster_run(NULL, missing, NULL, CLUSTER_RUN_QUIET, 1000, &e) < 0);
    buf_free(&out);

    /* A process found through its pidfile is stopped; then nothing is found or signalled. */
    struct cluster_state st = {.n_nodes = 1};
    struct cluster_pid p;
    char dir[] = "/tmp/test_cluster_run_XXXXXX", path[PATH_MAX + 64];
    assert_non_null(mkdtemp(dir));
    snprintf(st.run_dir, sizeof(st.run_dir), "%s", dir);
    snprintf(st.nodes[0].name, sizeof(st.nodes[0].name), "web1");
    cluster_path(&st, &st.nodes[0], "", path, sizeof(path));
    assert_int_equal(mkdir(path, 0755), 0);
    cluster_path(&st, &st.nodes[0], "x.pid", path, sizeof(path));
    assert_false(cluster_pidfile_live(&st, &st.nodes[0], "x.pid", &p));
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    assert_int_equal(cluster_pidfile_write(path, child, &e), 0);
    assert_true(cluster_pidfile_live(&st, &st.nodes[0], "x.pid", &p));
    assert_int_equal(p.pid, child);
    assert_true(cluster_stop_pid(&p, SIGTERM, 5000));
    assert_false(cluster_pidfile_live(&st, &st.nodes[0], "x.pid", NULL));
    assert_false(cluster_stop_pid(&p, SIGTERM, 100));
    unlink(path);
    cluster_path(&st, &st.nodes[0], "", path, sizeof(path));
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_round_trip), cmocka_unit_test(test_state_rejects_damage),
        cmocka_unit_test(test_state_file),       cmocka_unit_test(test_table_aligns),
        cmocka_unit_test(test_status_colors),    cmocka_unit_test(test_view_render),
        cmocka_unit_test(test_run_and_pids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
