/* `mesh agent` configuration: flags over files, unknown keys, file:line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "lib/flags.h"
#include "registry/agent/agent_config.h"

static int load(struct reg_settings *cfg, struct err *e, int argc, const char **argv)
{
    return reg_agent_config_load(cfg, argc, (char **)argv, e);
}

static void test_defaults(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *argv[] = {"-node", "n1"};

    assert_int_equal(load(&cfg, &e, 2, argv), 0);
    assert_string_equal(cfg.node_name, "n1");
    assert_string_equal(cfg.datacenter, "dc1");
    assert_string_equal(cfg.client_addr, "127.0.0.1");
    assert_int_equal(cfg.http_port, 8500);
    assert_false(cfg.server);
    struct reg_acl_settings set;
    reg_settings_acl(&cfg, &set);
    assert_false(set.enabled);
    assert_true(set.default_allow); /* default_policy "allow" */
    reg_agent_config_free(&cfg);
}

static void test_flags_override_files(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path =
        scratch_write("a.json", "{\"datacenter\": \"east\", \"node_name\": \"file\",\n"
                                " \"ports\": {\"http\": 9000}, \"server\": true}\n");
    const char *argv[] = {"-config-file", path, "-node", "flag"};

    assert_int_equal(load(&cfg, &e, 4, argv), 0);
    assert_string_equal(cfg.node_name, "flag");
    assert_string_equal(cfg.datacenter, "east");
    assert_int_equal(cfg.http_port, 9000);
    assert_true(cfg.server);
    reg_agent_config_free(&cfg);
}

static void test_unknown_keys_named_once_each(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path = scratch_write("b.json", "{\"acl_x\": 1, \"acl\": {\"tokens\": "
                                               "{\"replication\": \"r\", \"agent\": \"a\"}},\n"
                                               " \"telemetry\": {},\n"
                                               " \"ports\": {\"http\": 9001, \"serf_lan\": 8301, "
                                               "\"grpc\": 8502}}\n");
    const char *argv[] = {"-config-file", path, "-config-file", path};

    assert_int_equal(load(&cfg, &e, 4, argv), 0);
    /* Nested keys are named by path, every ports key is seen, and loading twice adds nothing. */
    assert_string_equal(cfg.unknown_keys.data,
                        "acl_x, acl.tokens.replication, telemetry, ports.serf_lan, ports.grpc");
    assert_string_equal(cfg.acl_agent_token, "a");
    reg_agent_config_free(&cfg);
}

static void test_wrong_type_names_file_and_line(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path = scratch_write("c.json", "{\n  \"server\": true,\n  \"ports\": {\n"
                                               "    \"http\": \"abc\"\n  }\n}\n");
    const char *argv[] = {"-config-file", path};
    char want[300];

    assert_int_equal(load(&cfg, &e, 2, argv), -22);
    snprintf(want, sizeof(want), "%s:4: ", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    assert_non_null(strstr(e.msg, "ports.http"));
    reg_agent_config_free(&cfg);
}

static void test_syntax_error_line(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path = scratch_write("d.json", "{\n  \"server\": true,\n  \"x\": [1,\n}\n");
    const char *argv[] = {"-config-file", path};
    char want[300];

    assert_int_equal(load(&cfg, &e, 2, argv), -22);
    snprintf(want, sizeof(want), "%s:4: ", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    reg_agent_config_free(&cfg);
}

static void test_cluster_acl_and_tls_keys(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path = scratch_write(
        "e.json",
        "{\"retry_join\": [\"127.0.0.1:8500\"], \"retry_interval\": \"2s\",\n"
        " \"acl\": {\"enabled\": true, \"default_policy\": \"deny\",\n"
        "         \"tokens\": {\"initial_management\": \"root\"}},\n"
        " \"tls\": {\"defaults\": {\"ca_file\": \"ca.pem\", \"verify_incoming\": true}}}\n");
    const char *argv[] = {"-config-file",     path, "-retry-join", "10.0.0.1",
                          "-failure-timeout", "3s"};

    assert_int_equal(load(&cfg, &e, 6, argv), 0);
    assert_int_equal(cfg.retry_join.n, 2);
    assert_string_equal(cfg.retry_join.items[0], "127.0.0.1:8500");
    assert_string_equal(cfg.retry_join.items[1], "10.0.0.1");
    assert_int_equal(cfg.retry_interval_ns, 2000000000);
    assert_int_equal(cfg.failure_timeout_ns, 3000000000);
    assert_true(cfg.acl_enabled);
    assert_string_equal(cfg.acl_default_policy, "deny");
    assert_string_equal(cfg.acl_initial_management, "root");
    struct reg_acl_settings set;
    reg_settings_acl(&cfg, &set);
    assert_true(set.enabled);
    assert_false(set.default_allow);
    assert_string_equal(set.initial_management, "root");
    assert_string_equal(cfg.tls_ca_file, "ca.pem");
    assert_true(cfg.tls_verify_incoming);
    assert_int_equal(cfg.unknown_keys.len, 0);
    reg_agent_config_free(&cfg);
}

/* verify_incoming with an HTTPS port closes plain HTTP unless ports.http asks for it. */
static void test_http_port_under_verify_incoming(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *tls = scratch_write(
        "vi.json", "{\"ports\": {\"https\": 8501},\n"
                   " \"tls\": {\"defaults\": {\"ca_file\": \"ca.pem\", \"cert_file\": \"c.pem\",\n"
                   "  \"key_file\": \"k.pem\", \"verify_incoming\": true}}}\n");
    const char *only_https[] = {"-config-file", tls};
    const char *with_flag[] = {"-config-file", tls, "-http-port", "8600"};
    const char *nothing[] = {"-node", "n"};

    (void)state;
    assert_int_equal(load(&cfg, &e, 2, only_https), 0);
    assert_int_equal(cfg.http_port, -1);
    reg_agent_config_free(&cfg);
    assert_int_equal(load(&cfg, &e, 4, with_flag), 0);
    assert_int_equal(cfg.http_port, 8600);
    reg_agent_config_free(&cfg);
    assert_int_equal(load(&cfg, &e, 2, nothing), 0);
    assert_int_equal(cfg.http_port, 8500);
    reg_agent_config_free(&cfg);

    const char *explicit_http = scratch_write("vi2.json", "{\"ports\": {\"http\": 8500}}\n");
    const char *both[] = {"-config-file", tls, "-config-file", explicit_http};
    assert_int_equal(load(&cfg, &e, 4, both), 0);
    assert_int_equal(cfg.http_port, 8500);
    reg_agent_config_free(&cfg);

    const char *off = scratch_write("off.json", "{\"ports\": {\"http\": -1}}\n");
    const char *no_api[] = {"-config-file", off};
    assert_int_equal(load(&cfg, &e, 2, no_api), -22);
    assert_string_equal(e.msg, "no API listener: ports.http is -1 and no ports.https is set");
    reg_agent_config_free(&cfg);
    const char *zero[] = {"-http-port", "0"};
    assert_int_equal(load(&cfg, &e, 2, zero), -22);
    assert_string_equal(e.msg, "invalid HTTP port 0");
    reg_agent_config_free(&cfg);
}

static void test_dns_keys(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *path = scratch_write(
        "dns.json", "{\"ports\": {\"dns\": -1}, \"domain\": \"mesh.internal\",\n"
                    " \"dns_config\": {\"only_passing\": true, \"udp_answer_limit\": 5,\n"
                    "  \"enable_truncate\": true, \"node_ttl\": \"10s\",\n"
                    "  \"service_ttl\": {\"*\": \"5s\"}}}\n");
    const char *argv[] = {"-config-file", path};

    assert_int_equal(load(&cfg, &e, 2, argv), 0);
    assert_int_equal(cfg.dns_port, -1);
    assert_string_equal(cfg.domain, "mesh.internal");
    assert_true(cfg.dns_only_passing && cfg.dns_enable_truncate);
    assert_int_equal(cfg.dns_udp_answer_limit, 5);
    assert_true(cfg.dns_node_ttl_ns == 10 * 1000000000LL);
    assert_true(cfg.dns_service_ttl_ns == 5 * 1000000000LL);
    assert_true(cfg.dns_node_meta_txt);
    reg_agent_config_free(&cfg);

    path = scratch_write("dns-bad.json", "{\n  \"ports\": {\"dns\": -2}\n}\n");
    const char *bad[] = {"-config-file", path};
    char want[300];
    assert_int_equal(load(&cfg, &e, 2, bad), -22);
    snprintf(want, sizeof(want), "%s:2: ports.dns: expected a port number", path);
    assert_true(strncmp(e.msg, want, strlen(want)) == 0);
    reg_agent_config_free(&cfg);

    const char *domain[] = {"-domain", "..consul"};
    assert_int_equal(load(&cfg, &e, 2, domain), -22);
    assert_string_equal(e.msg, "invalid DNS domain \"..consul\"");
    reg_agent_config_free(&cfg);
}

static void test_bad_flag(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *argv[] = {"-no-such-flag"};

    assert_int_equal(load(&cfg, &e, 1, argv), -22);
    assert_string_equal(e.msg, "flag provided but not defined: -no-such-flag");
    reg_agent_config_free(&cfg);
}

static void test_dev_implies_server_on_loopback(void **state)
{
    struct reg_settings cfg;
    struct err e = {""};
    const char *argv[] = {"-dev"};

    assert_int_equal(load(&cfg, &e, 1, argv), 0);
    assert_true(cfg.server);
    assert_true(cfg.bootstrap);
    assert_string_equal(cfg.bind_addr, "127.0.0.1");
    reg_agent_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_override_files),
        cmocka_unit_test(test_unknown_keys_named_once_each),
        cmocka_unit_test(test_wrong_type_names_file_and_line),
        cmocka_unit_test(test_syntax_error_line),
        cmocka_unit_test(test_cluster_acl_and_tls_keys),
        cmocka_unit_test(test_http_port_under_verify_incoming),
        cmocka_unit_test(test_dns_keys),
        cmocka_unit_test(test_bad_flag),
        cmocka_unit_test(test_dev_implies_server_on_loopback),
    };
    if (scratch_make("test_agent_config") < 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (scratch_remove() < 0)
        rc = rc ? rc : 1;
    return rc;
}
