/* Consul's JSON shapes: exact field names and order (docs/api.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "registry/api/render.h"
#include "registry/state/state.h"

struct fixture {
    struct reg_state st;
    struct reg_node *node;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    json_t *ta = json_pack("{s:s}", "lan", "10.0.0.1");
    json_t *meta = json_pack("{s:s}", "env", "prod");
    struct reg_node_fields nf = {.name = "node1",
                                 .id = "6a3b0b3e-5d4c-4e2a-9f1e-000000000001",
                                 .address = "10.0.0.1",
                                 .datacenter = "dc1",
                                 .tagged_addresses = ta,
                                 .meta = meta};

    reg_state_init(&f->st);
    reg_node_upsert(&f->st, &nf); /* index 2 */
    json_decref(ta);
    json_decref(meta);
    f->node = reg_node_get(&f->st, "node1");
    char *tags[] = {"primary", "v1"};
    struct reg_service web = {.id = "web1",
                              .name = "web",
                              .tags = tags,
                              .ntags = 2,
                              .address = "10.0.0.5",
                              .port = 3000,
                              .weight_passing = 10,
                              .weight_warning = 1};
    reg_service_upsert(&f->st, f->node, &web); /* 3 */
    struct reg_service bare = {.name = "db", .port = 5432};
    reg_service_upsert(&f->st, f->node, &bare); /* 4 */
    struct reg_check chk = {.id = "service:web1",
                            .name = "Service 'web' check",
                            .status = REG_PASSING,
                            .output = "HTTP GET: 200 OK",
                            .service_id = "web1",
                            .type = "http",
                            .interval_ns = 10 * DURATION_SEC,
                            .timeout_ns = DURATION_SEC};
    reg_check_upsert(&f->st, f->node, &chk); /* 5 */
    struct reg_check serf = {.id = "serfHealth",
                             .name = "Serf Health Status",
                             .status = REG_PASSING,
                             .output = "Agent alive and reachable"};
    reg_check_upsert(&f->st, f->node, &serf); /* 6 */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    reg_state_free(&f->st);
    free(f);
    return 0;
}

/* Compares the compact text of v (consumed) with want. */
static void assert_json(json_t *v, const char *want)
{
    char *got = json_dumps(v, JSON_COMPACT);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    json_decref(v);
}

static void test_render_node(void **state)
{
    struct fixture *f = *state;

    assert_json(reg_render_node(f->node),
                "{\"ID\":\"6a3b0b3e-5d4c-4e2a-9f1e-000000000001\",\"Node\":\"node1\","
                "\"Address\":\"10.0.0.1\",\"Datacenter\":\"dc1\","
                "\"TaggedAddresses\":{\"lan\":\"10.0.0.1\"},\"Meta\":{\"env\":\"prod\"},"
                "\"CreateIndex\":2,\"ModifyIndex\":2}");
}

static void test_render_node_service(void **state)
{
    struct fixture *f = *state;

    assert_json(reg_render_node_service(reg_service_get(f->node, "web1")),
                "{\"ID\":\"web1\",\"Service\":\"web\",\"Tags\":[\"primary\",\"v1\"],"
                "\"Address\":\"10.0.0.5\",\"Meta\":{},\"Port\":3000,"
                "\"Weights\":{\"Passing\":10,\"Warning\":1},\"EnableTagOverride\":false,"
                "\"Proxy\":{\"Mode\":\"\",\"MeshGateway\":{},\"Expose\":{}},\"Connect\":{},"
                "\"CreateIndex\":3,\"ModifyIndex\":3}");
    assert_json(reg_render_node_service(reg_service_get(f->node, "db")),
                "{\"ID\":\"db\",\"Service\":\"db\",\"Tags\":[],\"Address\":\"\",\"Meta\":{},"
                "\"Port\":5432,\"Weights\":{\"Passing\":1,\"Warning\":1},"
                "\"EnableTagOverride\":false,"
                "\"Proxy\":{\"Mode\":\"\",\"MeshGateway\":{},\"Expose\":{}},\"Connect\":{},"
                "\"CreateIndex\":4,\"ModifyIndex\":4}");
}

static void test_render_node_service_kind_and_tagged(void **state)
{
    struct fixture *f = *state;
    json_t *ta = json_pack("{s:{s:s, s:i}}", "lan", "Address", "10.0.0.5", "Port", 3000);
    struct reg_service gw = {
        .id = "gw", .name = "gw", .kind = "mesh-gateway", .port = 443, .tagged_addresses = ta};

    reg_service_upsert(&f->st, f->node, &gw); /* 7 */
    json_decref(ta);
    struct reg_service *s = reg_service_get(f->node, "gw");
    assert_json(reg_render_node_service(s),
                "{\"Kind\":\"mesh-gateway\",\"ID\":\"gw\",\"Service\":\"gw\",\"Tags\":[],"
                "\"Address\":\"\","
                "\"TaggedAddresses\":{\"lan\":{\"Address\":\"10.0.0.5\",\"Port\":3000}},"
                "\"Meta\":{},\"Port\":443,\"Weights\":{\"Passing\":1,\"Warning\":1},"
                "\"EnableTagOverride\":false,"
                "\"Proxy\":{\"Mode\":\"\",\"MeshGateway\":{},\"Expose\":{}},\"Connect\":{},"
                "\"CreateIndex\":7,\"ModifyIndex\":7}");
    json_t *sn = reg_render_service_node(s);
    assert_string_equal(json_string_value(json_object_get(sn, "ServiceKind")), "mesh-gateway");
    assert_non_null(json_object_get(sn, "ServiceTaggedAddresses"));
    json_decref(sn);
    json_t *as = reg_render_agent_service(s, "dc1");
    assert_string_equal(json_string_value(json_object_get(as, "Kind")), "mesh-gateway");
    assert_non_null(json_object_get(as, "TaggedAddresses"));
    json_decref(as);
}

static void test_render_service_node(void **state)
{
    struct fixture *f = *state;

    assert_json(reg_render_service_node(reg_service_get(f->node, "web1")),
                "{\"ID\":\"6a3b0b3e-5d4c-4e2a-9f1e-000000000001\",\"Node\":\"node1\","
                "\"Address\":\"10.0.0.1\",\"Datacenter\":\"dc1\","
                "\"TaggedAddresses\":{\"lan\":\"10.0.0.1\"},\"NodeMeta\":{\"env\":\"prod\"},"
                "\"ServiceKind\":\"\",\"ServiceID\":\"web1\",\"ServiceName\":\"web\","
                "\"ServiceTags\":[\"primary\",\"v1\"],\"ServiceAddress\":\"10.0.0.5\","
                "\"ServiceWeights\":{\"Passing\":10,\"Warning\":1},\"ServiceMeta\":{},"
                "\"ServicePort\":3000,\"ServiceEnableTagOverride\":false,"
                "\"ServiceProxy\":{\"Mode\":\"\",\"MeshGateway\":{},\"Expose\":{}},"
                "\"ServiceConnect\":{},\"CreateIndex\":3,\"ModifyIndex\":3}");
}

static void test_render_check(void **state)
{
    struct fixture *f = *state;

    assert_json(reg_render_check(reg_check_get(f->node, "service:web1"), true),
                "{\"Node\":\"node1\",\"CheckID\":\"service:web1\","
                "\"Name\":\"Service 'web' check\",\"Status\":\"passing\",\"Notes\":\"\","
                "\"Output\":\"HTTP GET: 200 OK\",\"ServiceID\":\"web1\",\"ServiceName\":\"web\","
                "\"ServiceTags\":[\"primary\",\"v1\"],\"Type\":\"http\",\"Interval\":\"10s\","
                "\"Timeout\":\"1s\",\"ExposedPort\":0,\"Definition\":{},"
                "\"CreateIndex\":5,\"ModifyIndex\":5}");
    /* A node check: no service, ServiceTags [], empty durations. */
    assert_json(reg_render_check(reg_check_get(f->node, "serfHealth"), true),
                "{\"Node\":\"node1\",\"CheckID\":\"serfHealth\",\"Name\":\"Serf Health Status\","
                "\"Status\":\"passing\",\"Notes\":\"\",\"Output\":\"Agent alive and reachable\","
                "\"ServiceID\":\"\",\"ServiceName\":\"\",\"ServiceTags\":[],\"Type\":\"\","
                "\"Interval\":\"\",\"Timeout\":\"\",\"ExposedPort\":0,\"Definition\":{},"
                "\"CreateIndex\":6,\"ModifyIndex\":6}");
}

static void test_render_check_status_names(void **state)
{
    struct fixture *f = *state;
    struct reg_check *c = reg_check_get(f->node, "serfHealth");

    reg_check_set_status(&f->st, c, REG_CRITICAL, "Agent not live or unreachable");
    json_t *v = reg_render_check(c, true);
    assert_string_equal(json_string_value(json_object_get(v, "Status")), "critical");
    assert_int_equal(json_integer_value(json_object_get(v, "ModifyIndex")), 7);
    assert_int_equal(json_integer_value(json_object_get(v, "CreateIndex")), 6);
    json_decref(v);
    reg_check_set_status(&f->st, c, REG_WARNING, NULL);
    v = reg_render_check(c, true);
    assert_string_equal(json_string_value(json_object_get(v, "Status")), "warning");
    json_decref(v);
}

/* What a check's definition may hold of credentials is shown only with_secrets. */
static void test_render_check_hides_definition_secrets(void **state)
{
    struct fixture *f = *state;
    /* A copy of the stored check with its own definition: the state's is shared, read-only. */
    struct reg_check t = *reg_check_get(f->node, "service:web1"), *c = &t;
    const char *def = "{\"HTTP\":\"https://ops:hunter2@10.0.0.5:3000/health?at=@x\","
                      "\"Header\":{\"Authorization\":[\"Bearer s3cret\"]},"
                      "\"Method\":\"POST\",\"Body\":\"token=s3cret\","
                      "\"ScriptArgs\":[\"probe\",\"--password=s3cret\"],\"TCP\":\"\"}";
    struct buf b = BUF_INIT;

    c->definition = json_loads(def, 0, NULL);
    json_t *full = reg_render_check(c, true);
    json_append(&b, json_object_get(full, "Definition"), false);
    assert_non_null(strstr(b.data, "Bearer s3cret"));
    assert_non_null(strstr(b.data, "hunter2"));
    json_decref(full);

    json_t *v = reg_render_check(c, false);
    buf_reset(&b);
    json_append(&b, json_object_get(v, "Definition"), false);
    assert_string_equal(b.data, "{\"HTTP\":\"https://ops:xxxxx@10.0.0.5:3000/health?at=@x\","
                                "\"Header\":null,\"Method\":\"POST\",\"Body\":\"\","
                                "\"ScriptArgs\":null,\"TCP\":\"\"}");
    json_decref(v);

    /* A URL without a password, and one with only a user, are shown as they are. */
    json_object_set_new(c->definition, "HTTP", json_string("http://ops@10.0.0.5/h?q=a:b@c"));
    v = reg_render_check(c, false);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "Definition"), "HTTP")),
        "http://ops@10.0.0.5/h?q=a:b@c");
    json_decref(v);
    json_decref(c->definition);
    buf_free(&b);
}

static void test_render_agent_service(void **state)
{
    struct fixture *f = *state;

    assert_json(reg_render_agent_service(reg_service_get(f->node, "web1"), "dc1"),
                "{\"ID\":\"web1\",\"Service\":\"web\",\"Tags\":[\"primary\",\"v1\"],"
                "\"Meta\":{},\"Port\":3000,\"Address\":\"10.0.0.5\","
                "\"Weights\":{\"Passing\":10,\"Warning\":1},\"EnableTagOverride\":false,"
                "\"Datacenter\":\"dc1\"}");
}

static void test_render_kv(void **state)
{
    struct fixture *f = *state;

    reg_kv_set(&f->st, "service/web/maxconn", "100", 3, 0, NULL); /* 7 */
    reg_kv_set(&f->st, "service/web/maxconn", "200", 3, 5, NULL); /* 8 */
    assert_json(reg_render_kv(reg_kv_get(&f->st, "service/web/maxconn")),
                "{\"LockIndex\":0,\"Key\":\"service/web/maxconn\",\"Flags\":5,"
                "\"Value\":\"MjAw\",\"CreateIndex\":7,\"ModifyIndex\":8}");
    reg_kv_set(&f->st, "empty", NULL, 0, 0, NULL); /* 9 */
    assert_json(reg_render_kv(reg_kv_get(&f->st, "empty")),
                "{\"LockIndex\":0,\"Key\":\"empty\",\"Flags\":0,\"Value\":null,"
                "\"CreateIndex\":9,\"ModifyIndex\":9}");
    /* Session only while locked. */
    struct reg_kv locked = {.key = "lock",
                            .value = (unsigned char *)"a",
                            .value_len = 1,
                            .session = "adf4238a-882b-9ddc-4a9d-5b6758e4159e",
                            .lock_index = 1,
                            .create_index = 10,
                            .modify_index = 11};
    assert_json(reg_render_kv(&locked),
                "{\"LockIndex\":1,\"Key\":\"lock\",\"Flags\":0,\"Value\":\"YQ==\","
                "\"Session\":\"adf4238a-882b-9ddc-4a9d-5b6758e4159e\","
                "\"CreateIndex\":10,\"ModifyIndex\":11}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_node_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_node_service_kind_and_tagged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_service_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_check_status_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_check_hides_definition_secrets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_render_agent_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_kv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
