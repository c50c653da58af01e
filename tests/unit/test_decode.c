/* Service and check definitions: defaults, validation and Go's decode error texts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/duration.h"
#include "registry/api/decode.h"

static const struct reg_decode_opts no_scripts = {.allow_scripts = false};
static const struct reg_decode_opts scripts = {.allow_scripts = true};

/* Decodes a service from JSON text; returns the rc, the message in e. */
static int service(const char *text, const struct reg_decode_opts *o, struct reg_service_reg *r,
                   struct err *e)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    assert_non_null(v);
    memset(e, 0, sizeof(*e));
    int rc = reg_decode_service(v, o, r, e);
    json_decref(v);
    return rc;
}

/* Expects text to fail with exactly msg. */
static void service_fails(const char *text, const struct reg_decode_opts *o, const char *msg)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service(text, o, &r, &e), -EINVAL);
    assert_string_equal(e.msg, msg);
    reg_service_reg_free(&r);
}

static void test_service_defaults(void **state)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service("{\"Name\":\"web\"}", &no_scripts, &r, &e), 0);
    assert_string_equal(r.svc.name, "web");
    assert_string_equal(r.svc.id, "web");
    assert_int_equal(r.svc.ntags, 0);
    assert_non_null(r.svc.tags);
    assert_string_equal(r.svc.address, "");
    assert_int_equal(r.svc.port, 0);
    assert_int_equal(r.svc.weight_passing, 1);
    assert_int_equal(r.svc.weight_warning, 1);
    assert_string_equal(r.svc.kind, "");
    assert_false(r.svc.enable_tag_override);
    assert_null(r.svc.tagged_addresses);
    assert_int_equal(r.nchecks, 0);
    reg_service_reg_free(&r);

    /* An empty ID also falls back to the name. */
    assert_int_equal(service("{\"Name\":\"web\",\"ID\":\"\"}", &no_scripts, &r, &e), 0);
    assert_string_equal(r.svc.id, "web");
    reg_service_reg_free(&r);
}

static void test_service_full(void **state)
{
    struct reg_service_reg r;
    struct err e;
    const char *text = "{\"ID\":\"web1\",\"Name\":\"web\",\"Tags\":[\"a\",\"B\"],"
                       "\"Address\":\"10.0.0.5\",\"Port\":8000,\"Meta\":{\"k\":\"v\"},"
                       "\"Weights\":{\"Passing\":10,\"Warning\":2},\"EnableTagOverride\":true,"
                       "\"TaggedAddresses\":{\"lan\":{\"address\":\"10.0.0.5\",\"port\":8000}}}";

    assert_int_equal(service(text, &no_scripts, &r, &e), 0);
    assert_string_equal(r.svc.id, "web1");
    assert_int_equal(r.svc.ntags, 2);
    assert_string_equal(r.svc.tags[0], "a");
    assert_string_equal(r.svc.tags[1], "B");
    assert_string_equal(r.svc.address, "10.0.0.5");
    assert_int_equal(r.svc.port, 8000);
    assert_string_equal(json_string_value(json_object_get(r.svc.meta, "k")), "v");
    assert_int_equal(r.svc.weight_passing, 10);
    assert_int_equal(r.svc.weight_warning, 2);
    assert_true(r.svc.enable_tag_override);
    /* Lower-case address/port accepted, capitalised on output. */
    json_t *lan = json_object_get(r.svc.tagged_addresses, "lan");
    assert_string_equal(json_string_value(json_object_get(lan, "Address")), "10.0.0.5");
    assert_int_equal(json_integer_value(json_object_get(lan, "Port")), 8000);
    reg_service_reg_free(&r);
}

static void test_service_case_insensitive_keys(void **state)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service("{\"name\":\"web\",\"PORT\":81,\"tags\":[\"x\"],\"id\":\"w\"}",
                             &no_scripts, &r, &e),
                     0);
    assert_string_equal(r.svc.name, "web");
    assert_string_equal(r.svc.id, "w");
    assert_int_equal(r.svc.port, 81);
    assert_int_equal(r.svc.ntags, 1);
    reg_service_reg_free(&r);

    /* snake_case (config files): enable_tag_override, deregister_critical_service_after. */
    assert_int_equal(service("{\"name\":\"web\",\"enable_tag_override\":true,\"check\":{"
                             "\"ttl\":\"10s\",\"deregister_critical_service_after\":\"90m\"}}",
                             &no_scripts, &r, &e),
                     0);
    assert_true(r.svc.enable_tag_override);
    assert_int_equal(r.nchecks, 1);
    assert_int_equal(r.checks[0].run->deregister_critical_after, 90LL * 60 * DURATION_SEC);
    assert_int_equal(r.checks[0].run->ttl, 10 * DURATION_SEC);
    reg_service_reg_free(&r);
}

static void test_service_validation(void **state)
{
    service_fails("{}", &no_scripts, "Missing service name");
    service_fails("{\"Name\":\"\"}", &no_scripts, "Missing service name");
    service_fails("{\"Name\":\"web\",\"Address\":\"0.0.0.0\"}", &no_scripts,
                  "Invalid service address");
    service_fails("{\"Name\":\"web\",\"Address\":\"::\"}", &no_scripts, "Invalid service address");
    service_fails("{\"Name\":\"web\",\"Weights\":{\"Passing\":0,\"Warning\":1}}", &no_scripts,
                  "Invalid Weights: Passing must be greater than 0");
    service_fails("{\"Name\":\"web\",\"Meta\":{\"consul-x\":\"v\"}}", &no_scripts,
                  "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use");

    char key[200], text[1024];
    memset(key, 'k', 129);
    key[129] = '\0';
    snprintf(text, sizeof(text), "{\"Name\":\"web\",\"Meta\":{\"%s\":\"v\"}}", key);
    service_fails(text, &no_scripts,
                  "Invalid Service Meta: Key is too long (limit: 128 characters)");
    char value[600];
    memset(value, 'v', 513);
    value[513] = '\0';
    char big[1024];
    snprintf(big, sizeof(big), "{\"Name\":\"web\",\"Meta\":{\"k\":\"%s\"}}", value);
    service_fails(big, &no_scripts,
                  "Invalid Service Meta: Value is too long (limit: 512 characters)");

    struct buf many = BUF_INIT;
    buf_append_cstr(&many, "{\"Name\":\"web\",\"Meta\":{");
    for (int i = 0; i < 65; i++)
        buf_printf(&many, "%s\"k%d\":\"v\"", i ? "," : "", i);
    buf_append_cstr(&many, "}}");
    service_fails(
        many.data, &no_scripts,
        "Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs");
    buf_free(&many);
}

static void test_service_type_errors(void **state)
{
    service_fails("{\"Name\":\"web\",\"Port\":\"80\"}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal string into Go struct field "
                  "ServiceDefinition.Port of type int");
    service_fails("{\"Name\":7}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal number into Go struct field "
                  "ServiceDefinition.Name of type string");
    service_fails("{\"Name\":\"web\",\"Tags\":[1]}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal number into Go struct field "
                  "ServiceDefinition.Tags of type string");
    service_fails("{\"Name\":\"web\",\"Meta\":{\"k\":1}}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal number into Go struct field "
                  "ServiceDefinition.Meta of type string");
    service_fails("{\"Name\":\"web\",\"Check\":\"x\"}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal string into Go struct field "
                  "ServiceDefinition.Check of type structs.CheckType");
    service_fails("{\"Name\":\"web\",\"Check\":{\"TTL\":true}}", &no_scripts,
                  "Request decode failed: json: cannot unmarshal bool into Go struct field "
                  "CheckType.TTL of type time.Duration");
}

static void test_single_check(void **state)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service("{\"Name\":\"web\",\"ID\":\"web1\",\"Check\":{"
                             "\"HTTP\":\"http://127.0.0.1:3000/health\",\"Interval\":\"10s\"}}",
                             &no_scripts, &r, &e),
                     0);
    assert_int_equal(r.nchecks, 1);
    struct reg_check_reg *c = &r.checks[0];
    assert_string_equal(c->chk.id, "service:web1");
    assert_string_equal(c->chk.name, "Service 'web' check");
    assert_string_equal(c->chk.service_id, "web1");
    assert_string_equal(c->chk.type, "http");
    assert_int_equal(c->chk.status, REG_CRITICAL);
    assert_false(c->status_given);
    assert_int_equal(c->chk.interval_ns, 10 * DURATION_SEC);
    assert_int_equal(c->chk.timeout_ns, 10 * DURATION_SEC);
    assert_int_equal(c->run->kind, REG_CHECK_HTTP);
    assert_string_equal(c->run->http, "http://127.0.0.1:3000/health");
    assert_string_equal(c->run->id, "service:web1");
    assert_string_equal(json_string_value(json_object_get(c->chk.definition, "HTTP")),
                        "http://127.0.0.1:3000/health");
    assert_string_equal(json_string_value(json_object_get(c->chk.definition, "Interval")), "10s");
    reg_service_reg_free(&r);
}

static void test_multiple_checks(void **state)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service("{\"Name\":\"web\",\"Checks\":[{\"TTL\":\"30s\"},"
                             "{\"TCP\":\"127.0.0.1:80\",\"Interval\":\"5s\",\"Name\":\"tcp\","
                             "\"Status\":\"passing\"},"
                             "{\"CheckID\":\"mine\",\"TTL\":\"1m\"}]}",
                             &no_scripts, &r, &e),
                     0);
    assert_int_equal(r.nchecks, 3);
    assert_string_equal(r.checks[0].chk.id, "service:web:1");
    assert_string_equal(r.checks[0].chk.type, "ttl");
    assert_int_equal(r.checks[0].run->kind, REG_CHECK_TTL);
    assert_int_equal(r.checks[0].chk.timeout_ns, 0);
    assert_string_equal(r.checks[1].chk.id, "service:web:2");
    assert_string_equal(r.checks[1].chk.name, "tcp");
    assert_string_equal(r.checks[1].chk.type, "tcp");
    assert_int_equal(r.checks[1].chk.status, REG_PASSING);
    assert_true(r.checks[1].status_given);
    assert_string_equal(r.checks[2].chk.id, "mine");
    assert_string_equal(r.checks[2].chk.name, "Service 'web' check");
    reg_service_reg_free(&r);

    /* Check and Checks together: Check comes first, numbering covers both. */
    assert_int_equal(service("{\"Name\":\"web\",\"Check\":{\"TTL\":\"30s\"},"
                             "\"Checks\":[{\"TTL\":\"30s\"}]}",
                             &no_scripts, &r, &e),
                     0);
    assert_int_equal(r.nchecks, 2);
    assert_string_equal(r.checks[0].chk.id, "service:web:1");
    assert_string_equal(r.checks[1].chk.id, "service:web:2");
    reg_service_reg_free(&r);
}

static void test_check_rules(void **state)
{
    service_fails("{\"Name\":\"web\",\"Check\":{\"TTL\":\"10s\",\"Interval\":\"10s\"}}",
                  &no_scripts, "Invalid check: Interval and TTL cannot both be specified");
    service_fails("{\"Name\":\"web\",\"Check\":{\"HTTP\":\"http://x/\"}}", &no_scripts,
                  "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks");
    service_fails("{\"Name\":\"web\",\"Check\":{\"TCP\":\"x:1\"}}", &no_scripts,
                  "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks");
    service_fails("{\"Name\":\"web\",\"Check\":{\"Notes\":\"n\"}}", &no_scripts,
                  "Invalid check: TTL must be > 0 for TTL checks");
    service_fails("{\"Name\":\"web\",\"Check\":{\"GRPC\":\"127.0.0.1:9000\",\"Interval\":\"5s\"}}",
                  &no_scripts, "Invalid check: GRPC checks are not supported by this agent");
    service_fails("{\"Name\":\"web\",\"Check\":{\"Args\":[\"true\"],\"Interval\":\"5s\"}}",
                  &no_scripts,
                  "Scripts are disabled on this agent; to enable, configure "
                  "'enable_script_checks' or 'enable_local_script_checks' to true");
    service_fails("{\"Name\":\"web\",\"Check\":{\"TTL\":\"10s\",\"Status\":\"up\"}}", &no_scripts,
                  "Status for checks must 'passing', 'warning', 'critical'");
    service_fails("{\"Name\":\"web\",\"Check\":{\"TTL\":\"ten\"}}", &no_scripts,
                  "Request decode failed: time: invalid duration \"ten\"");
}

static void test_script_check_allowed(void **state)
{
    struct reg_service_reg r;
    struct err e;

    assert_int_equal(service("{\"Name\":\"web\",\"Check\":{\"ScriptArgs\":[\"/bin/true\",\"-x\"],"
                             "\"Interval\":\"100ms\"}}",
                             &scripts, &r, &e),
                     0);
    struct reg_check_reg *c = &r.checks[0];
    assert_int_equal(c->run->kind, REG_CHECK_SCRIPT);
    assert_string_equal(c->chk.type, "script");
    assert_string_equal(c->run->args[0], "/bin/true");
    assert_string_equal(c->run->args[1], "-x");
    assert_null(c->run->args[2]);
    /* Interval below 1s is raised to 1s; scripts time out after 30s by default. */
    assert_int_equal(c->chk.interval_ns, DURATION_SEC);
    assert_int_equal(c->run->timeout, 30 * DURATION_SEC);
    assert_string_equal(json_string_value(json_object_get(c->chk.definition, "Interval")), "1s");
    reg_service_reg_free(&r);
}

static void test_decode_check_alone(void **state)
{
    struct reg_check_reg c;
    struct err e = {{0}};
    json_t *v = json_pack("{s:s, s:s, s:s}", "Name", "mem", "TTL", "15s", "Status", "warning");

    assert_int_equal(reg_decode_check(v, &no_scripts, NULL, NULL, NULL, &c, &e), 0);
    assert_string_equal(c.chk.id, "mem"); /* default ID = Name */
    assert_string_equal(c.chk.service_id, "");
    assert_int_equal(c.chk.status, REG_WARNING);
    assert_true(c.status_given);
    reg_check_reg_free(&c);
    json_decref(v);

    v = json_pack("{s:s}", "TTL", "15s");
    assert_int_equal(reg_decode_check(v, &no_scripts, NULL, NULL, NULL, &c, &e), -EINVAL);
    assert_string_equal(e.msg, "Missing check name");
    reg_check_reg_free(&c);
    json_decref(v);

    v = json_pack("{s:s, s:s, s:s}", "ID", "x", "Name", "n", "HTTP", "http://h/");
    json_object_set_new(v, "Interval", json_integer(2 * DURATION_SEC)); /* nanoseconds */
    json_object_set_new(v, "Header", json_pack("{s:[s]}", "X-A", "1"));
    assert_int_equal(reg_decode_check(v, &no_scripts, "svc", NULL, NULL, &c, &e), 0);
    assert_string_equal(c.chk.id, "x");
    assert_string_equal(c.chk.service_id, "svc");
    assert_int_equal(c.run->interval, 2 * DURATION_SEC);
    reg_check_reg_free(&c);
    json_object_set_new(v, "Header", json_pack("{s:s}", "X-A", "1"));
    assert_int_equal(reg_decode_check(v, &no_scripts, "svc", NULL, NULL, &c, &e), -EINVAL);
    assert_string_equal(e.msg, "Request decode failed: json: cannot unmarshal string into Go "
                               "struct field CheckType.Header of type []string");
    reg_check_reg_free(&c);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_defaults),
        cmocka_unit_test(test_service_full),
        cmocka_unit_test(test_service_case_insensitive_keys),
        cmocka_unit_test(test_service_validation),
        cmocka_unit_test(test_service_type_errors),
        cmocka_unit_test(test_single_check),
        cmocka_unit_test(test_multiple_checks),
        cmocka_unit_test(test_check_rules),
        cmocka_unit_test(test_script_check_allowed),
        cmocka_unit_test(test_decode_check_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
