/* `mesh lb` configuration: defaults, flags over the file, file:line errors, -help. */
#include <errno.h>
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

#include "lb/config.h"
#include "lib/duration.h"
#include "lib/flags.h"

static int load(struct lb_config *cfg, struct err *e, int argc, const char **argv)
{
    return lb_config_load(cfg, argc, (char **)argv, e);
}

/* The default -workers: the online CPUs, at most 64. */
static int cpus_capped(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus;
}

/* -workers 0 asks for the default, one per CPU; beyond 256 is refused. */
static void test_workers(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *zero[] = {"-service", "api", "-workers", "0"};
    const char *three[] = {"-service", "api", "-workers", "3"};
    const char *many[] = {"-service", "api", "-workers", "257"};

    (void)state;
    assert_int_equal(load(&cfg, &e, 4, zero), 0);
    assert_int_equal(cfg.workers, cpus_capped());
    lb_config_free(&cfg);
    assert_int_equal(load(&cfg, &e, 4, three), 0);
    assert_int_equal(cfg.workers, 3);
    lb_config_free(&cfg);
    assert_int_equal(load(&cfg, &e, 4, many), -EINVAL);
    assert_string_equal(e.msg, "workers must be 0 (one per CPU) to 256");
}

static void test_defaults(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *argv[] = {"-service", "api"};

    (void)state;
    unsetenv("CONSUL_HTTP_ADDR");
    unsetenv("CONSUL_HTTP_TOKEN");
    assert_int_equal(load(&cfg, &e, 2, argv), 0);
    assert_string_equal(cfg.bind_addr, "0.0.0.0");
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(cfg.workers, cpus_capped());
    assert_int_equal(cfg.maxconn, 10000);
    assert_string_equal(cfg.service, "api");
    assert_string_equal(cfg.backend_name, "api");
    assert_int_equal(cfg.balance, LB_BALANCE_ROUNDROBIN);
    assert_null(cfg.registry_addr); /* the environment, else 127.0.0.1:8500 (lib/consul_client) */
    assert_null(cfg.registry_token);
    assert_true(cfg.check);
    assert_string_equal(cfg.check_path, "/health");
    assert_int_equal(cfg.check_inter_ns, 5 * DURATION_SEC);
    assert_int_equal(cfg.check_rise, 2);
    assert_int_equal(cfg.check_fall, 3);
    assert_int_equal(cfg.check_timeout_ns, 2 * DURATION_SEC);
    assert_int_equal(cfg.eject_after_errors, 5);
    assert_int_equal(cfg.retries, 3);
    assert_true(cfg.redispatch);
    assert_int_equal(cfg.timeout_connect_ns, 2 * DURATION_SEC);
    assert_int_equal(cfg.timeout_http_request_ns, 10 * DURATION_SEC);
    assert_int_equal(cfg.timeout_tunnel_ns, 3600 * DURATION_SEC);
    assert_int_equal(cfg.queue_max, 1000);
    assert_true(cfg.x_forwarded_for);
    assert_false(cfg.forwarded);
    assert_true(cfg.via);
    assert_int_equal(cfg.stats_port, 8404);
    assert_string_equal(cfg.stats_path, "/stats");
    assert_string_equal(cfg.stats_user, "admin");
    assert_string_equal(cfg.stats_password, "admin");
    assert_int_equal(cfg.stats_refresh_s, 5);
    assert_string_equal(cfg.log_level, "info");
    lb_config_free(&cfg);
}

/* The registry's client certificate from flags or the file (an agent with verify_incoming). */
static void test_registry_tls_settings(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *argv[] = {"-service",
                          "web",
                          "-registry-addr",
                          "https://10.0.0.5",
                          "-registry-cert-file",
                          "/c.pem",
                          "-registry-key-file",
                          "/k.pem"};

    (void)state;
    assert_int_equal(load(&cfg, &e, (int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
    assert_string_equal(cfg.registry_addr, "https://10.0.0.5");
    assert_string_equal(cfg.registry_cert_file, "/c.pem");
    assert_string_equal(cfg.registry_key_file, "/k.pem");
    assert_string_equal(cfg.backend_name, "web");
    lb_config_free(&cfg);
}

static void test_flags_override_file(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *path = scratch_write("a.json", "{\n  \"port\": 9000,\n  \"service\": \"web\",\n"
                                               "  \"balance\": \"leastconn\",\n"
                                               "  \"check_inter\": \"1s\",\n"
                                               "  \"timeout_server\": 1500,\n"
                                               "  \"servers\": [\"127.0.0.1:3000\"],\n"
                                               "  \"stats_user\": \"ops\"\n}\n");
    const char *argv[] = {"-config",     path,     "-port",   "9100",
                          "-balance",    "random", "-server", "127.0.0.1:3001,5",
                          "-check=false"};

    (void)state;
    assert_int_equal(load(&cfg, &e, 9, argv), 0);
    assert_int_equal(cfg.port, 9100);
    assert_int_equal(cfg.balance, LB_BALANCE_RANDOM);
    assert_string_equal(cfg.service, "web");
    assert_string_equal(cfg.stats_user, "ops");
    assert_int_equal(cfg.check_inter_ns, DURATION_SEC);
    assert_int_equal(cfg.timeout_server_ns, 1500 * DURATION_MS);
    assert_false(cfg.check);
    /* lists add up: the file's server, then the flag's */
    assert_int_equal(cfg.servers.n, 2);
    assert_string_equal(cfg.servers.items[0], "127.0.0.1:3000");
    assert_string_equal(cfg.servers.items[1], "127.0.0.1:3001,5");
    assert_string_equal(cfg.config_file, path);
    lb_config_free(&cfg);
}

static void test_file_errors_have_lines(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    char want[300];
    const char *path =
        scratch_write("bad.json", "{\n  \"service\": \"web\",\n  \"port\": \"x\"\n}\n");
    const char *argv[] = {"-config", path};

    (void)state;
    assert_int_equal(load(&cfg, &e, 2, argv), -EINVAL);
    snprintf(want, sizeof(want), "%s:3: port: expected a port number (0-65535), got x", path);
    assert_string_equal(e.msg, want);

    path = scratch_write("typo.json", "{\n  \"service\": \"web\",\n\n  \"prot\": 80\n}\n");
    argv[1] = path;
    assert_int_equal(load(&cfg, &e, 2, argv), -EINVAL);
    snprintf(want, sizeof(want), "%s:4: unknown key \"prot\"", path);
    assert_string_equal(e.msg, want);

    path = scratch_write("bal.json", "{\"service\": \"web\",\n \"balance\": \"source\"}\n");
    argv[1] = path;
    assert_int_equal(load(&cfg, &e, 2, argv), -EINVAL);
    snprintf(want, sizeof(want),
             "%s:2: balance must be roundrobin, leastconn or random, not \"source\"", path);
    assert_string_equal(e.msg, want);

    path = scratch_write("srv.json", "{\n\"servers\": [\n\"127.0.0.1\"]}\n");
    argv[1] = path;
    assert_int_equal(load(&cfg, &e, 2, argv), -EINVAL);
    assert_non_null(strstr(e.msg, ":3: server \"127.0.0.1\": expected HOST:PORT[,WEIGHT]"));

    path = scratch_write("syntax.json", "{\n\"service\": \"web\",,\n}\n");
    argv[1] = path;
    assert_int_equal(load(&cfg, &e, 2, argv), -EINVAL);
    snprintf(want, sizeof(want), "%s:2:", path);
    assert_memory_equal(e.msg, want, strlen(want));
}

static void test_flag_errors(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *nothing[] = {"-port", "80"};
    const char *bad_balance[] = {"-service", "web", "-balance", "hash"};
    const char *bad_server[] = {"-server", "web1:3000"};
    const char *bad_weight[] = {"-server", "127.0.0.1:3000,999"};
    const char *unknown[] = {"-frobnicate"};

    (void)state;
    assert_int_equal(load(&cfg, &e, 2, nothing), -EINVAL);
    assert_string_equal(e.msg, "no servers: give -service NAME (registry) or -server HOST:PORT");
    assert_int_equal(load(&cfg, &e, 4, bad_balance), -EINVAL);
    assert_string_equal(e.msg, "balance must be roundrobin, leastconn or random, not \"hash\"");
    assert_int_equal(load(&cfg, &e, 2, bad_server), -EINVAL);
    assert_string_equal(e.msg, "server \"web1:3000\": the host must be an IP address");
    assert_int_equal(load(&cfg, &e, 2, bad_weight), -EINVAL);
    assert_string_equal(e.msg, "server \"127.0.0.1:3000,999\": weight must be 0..256");
    assert_int_equal(load(&cfg, &e, 1, unknown), -EINVAL);
    assert_string_equal(e.msg, "flag provided but not defined: -frobnicate");
}

static void test_help(void **state)
{
    struct lb_config cfg;
    struct err e = {""};
    const char *argv[] = {"-help"};
    char out[] = "/tmp/mesh-lb-help-XXXXXX";
    int fd = mkstemp(out);
    char text[16384];

    (void)state;
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int rc = load(&cfg, &e, 1, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, FLAGS_HELP);
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    unlink(out);
    assert_true(n > 0);
    text[n] = '\0';
    assert_non_null(strstr(text, "Usage: mesh lb [options]"));
    assert_non_null(strstr(text, "  -check-inter <duration>\n"));
    assert_non_null(strstr(text, "(default 5s)"));
    assert_non_null(strstr(text, "  -server <string>\n"));
    assert_non_null(strstr(text, "  -registry-tls\n"));
    /* -workers names its default once, not also this machine's CPU count */
    const char *workers = strstr(text, "  -workers <int>\n");
    assert_non_null(workers);
    const char *end = strstr(workers + 1, "\n  -");
    assert_non_null(end);
    size_t defaults = 0;
    for (const char *p = workers; (p = strstr(p, "default")) && p < end; p++)
        defaults++;
    assert_int_equal(defaults, 1);
    assert_non_null(strstr(workers, "(default 0: one per CPU, at most 64)"));
}

static void test_reload_rereads_file(void **state)
{
    struct lb_config a, b;
    struct err e = {""};
    const char *path = scratch_write("r.json", "{\"servers\": [\"127.0.0.1:3000\"]}\n");
    const char *argv[] = {"-config", path};

    (void)state;
    assert_int_equal(load(&a, &e, 2, argv), 0);
    scratch_write("r.json", "{\"servers\": [\"127.0.0.1:3000\", \"127.0.0.1:3001\"]}\n");
    assert_int_equal(lb_config_reload(&a, 2, (char **)argv, &b, &e), 0);
    assert_int_equal(a.servers.n, 1);
    assert_int_equal(b.servers.n, 2);
    scratch_write("r.json", "{\"servers\": 3}\n");
    struct lb_config c;
    assert_int_equal(lb_config_reload(&b, 2, (char **)argv, &c, &e), -EINVAL);
    lb_config_free(&a);
    lb_config_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_registry_tls_settings),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_file_errors_have_lines),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_reload_rereads_file),
    };
    if (scratch_make("test_lb_config") < 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (scratch_remove() < 0)
        rc = rc ? rc : 1;
    return rc;
}
