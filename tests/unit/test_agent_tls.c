/*
 * TLS for the agent: `mesh tls` certificate generation (files, SANs, chain verified with
 * X509_verify_cert against the generated CA) and the outgoing request options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "lib/alloc.h"
#include "lib/http_client.h"
#include "registry/agent/agent_config.h"
#include "registry/agent/agent_tls.h"

static char old_cwd[4096];
static char dir[4096];

/* Each test runs in a fresh directory: `mesh tls` writes to the current one. */
static int enter_tmpdir(void **state)
{
    const char *base = getenv("MESH_TEST_TMPDIR");

    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(dir, sizeof(dir), "%s/agent_tls.XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
    assert_int_equal(chdir(dir), 0);
    return 0;
}

static int leave_tmpdir(void **state)
{
    char cmd[4200];

    assert_int_equal(chdir(old_cwd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int run_tls(const char *a1, const char *a2, ...)
{
    char *argv[16] = {"tls", (char *)a1, (char *)a2};
    int argc = 3;
    va_list ap;
    const char *s;

    va_start(ap, a2);
    while ((s = va_arg(ap, const char *)) && argc < 15)
        argv[argc++] = (char *)s;
    va_end(ap);
    return cli_tls(argc, argv);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The certificate's SANs as "DNS:a,DNS:b,IP:1.2.3.4". */
static void sans(X509 *x, char *out, size_t n)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t len = 0;

    out[0] = '\0';
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            len += (size_t)snprintf(out + len, n - len, "%sDNS:%s", len ? "," : "",
                                    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
            len += (size_t)snprintf(out + len, n - len, "%sIP:%u.%u.%u.%u", len ? "," : "", p[0],
                                    p[1], p[2], p[3]);
        }
    }
    GENERAL_NAMES_free(names);
}

/* X509_verify_cert of leaf against ca as the only trust anchor, for the given purpose. */
static int verify(X509 *ca, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void test_ca_create(void **state)
{
    assert_int_equal(run_tls("ca", "create", NULL), 0);
    assert_true(exists("consul-agent-ca.pem"));
    assert_true(exists("consul-agent-ca-key.pem"));
    /* Never overwritten, as consul refuses. */
    assert_int_equal(run_tls("ca", "create", NULL), 1);

    X509 *ca = read_cert("consul-agent-ca.pem");
    EVP_PKEY *key = read_key("consul-agent-ca-key.pem");
    assert_int_equal(X509_check_private_key(ca, key), 1);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    char curve[64] = "";
    EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), NULL);
    assert_string_equal(curve, "prime256v1");
    char cn[256];
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
    assert_int_equal(strncmp(cn, "Consul Agent CA ", 16), 0);
    /* -days 1825 by default: expires between 1824 and 1826 days from now. */
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca));
    assert_in_range(days, 1824, 1825);
    EVP_PKEY_free(key);
    X509_free(ca);

    assert_int_equal(run_tls("ca", "create", "-domain", "mesh", "-common-name", "Test CA", NULL),
                     0);
    ca = read_cert("mesh-agent-ca.pem");
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "Test CA");
    X509_free(ca);
}

static void test_cert_create(void **state)
{
    char names[512];

    assert_int_equal(run_tls("ca", "create", NULL), 0);
    assert_int_equal(run_tls("cert", "create", NULL), 1); /* needs a role */
    assert_int_equal(run_tls("cert", "create", "-server", "-client", NULL), 1);
    assert_int_equal(run_tls("cert", "create", "-server", NULL), 0);
    assert_int_equal(run_tls("cert", "create", "-server", "-additional-dnsname", "web.example",
                             "-additional-ipaddress", "10.1.2.3", NULL),
                     0);
    assert_int_equal(run_tls("cert", "create", "-client", "-dc", "east", NULL), 0);
    assert_true(exists("dc1-server-consul-0.pem") && exists("dc1-server-consul-0-key.pem"));
    assert_true(exists("dc1-server-consul-1.pem") && exists("dc1-server-consul-1-key.pem"));
    assert_true(exists("east-client-consul-0.pem") && exists("east-client-consul-0-key.pem"));

    X509 *ca = read_cert("consul-agent-ca.pem");
    X509 *s0 = read_cert("dc1-server-consul-0.pem");
    X509 *s1 = read_cert("dc1-server-consul-1.pem");
    X509 *c0 = read_cert("east-client-consul-0.pem");
    EVP_PKEY *k0 = read_key("dc1-server-consul-0-key.pem");

    sans(s0, names, sizeof(names));
    assert_string_equal(names, "DNS:server.dc1.consul,DNS:localhost,IP:127.0.0.1");
    sans(s1, names, sizeof(names));
    assert_string_equal(names, "DNS:server.dc1.consul,DNS:localhost,DNS:web.example,IP:127.0.0.1,"
                               "IP:10.1.2.3");
    sans(c0, names, sizeof(names));
    assert_string_equal(names, "DNS:client.east.consul,DNS:localhost,IP:127.0.0.1");
    assert_int_equal(X509_check_private_key(s0, k0), 1);
    assert_int_equal(X509_check_host(s0, "server.dc1.consul", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(s1, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ca(s0), 0);

    assert_int_equal(verify(ca, s0, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(ca, s1, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(ca, c0, X509_PURPOSE_SSL_CLIENT), 1);
    assert_int_equal(verify(ca, s0, X509_PURPOSE_SSL_CLIENT), 1); /* servers dial servers too */
    /* A certificate from another CA does not verify against this one. */
    assert_int_equal(run_tls("ca", "create", "-domain", "other", NULL), 0);
    X509 *other = read_cert("other-agent-ca.pem");
    assert_int_equal(verify(other, s0, X509_PURPOSE_SSL_SERVER), 0);

    X509_free(other);
    EVP_PKEY_free(k0);
    X509_free(c0);
    X509_free(s1);
    X509_free(s0);
    X509_free(ca);
}

static void test_cert_create_errors(void **state)
{
    /* No CA in the directory: consul's "Error reading CA", nothing written. */
    assert_int_equal(run_tls("cert", "create", "-client", NULL), 1);
    assert_false(exists("dc1-client-consul-0.pem"));
    assert_int_equal(run_tls("ca", "create", NULL), 0);
    assert_int_equal(run_tls("cert", "create", "-client", "-additional-ipaddress", "nope", NULL),
                     1);
    assert_false(exists("dc1-client-consul-0.pem"));
    assert_false(exists("dc1-client-consul-0-key.pem"));
    assert_int_equal(run_tls("nothing", "here", NULL), 1);
}

static void test_client_options(void **state)
{
    struct reg_settings cfg = {
        .datacenter = "dc2",
        .tls_ca_file = "/ca.pem",
        .tls_cert_file = "/c.pem",
        .tls_key_file = "/k.pem",
    };
    struct http_client_request r = {.host = "10.0.0.5", .port = 8501};

    /* No verify_outgoing and a plain address: left as plain HTTP. */
    reg_agent_tls_client_options(&cfg, &r);
    assert_false(r.tls);
    assert_null(r.tls_ca_file);

    cfg.tls_verify_outgoing = true;
    reg_agent_tls_client_options(&cfg, &r);
    assert_true(r.tls);
    assert_false(r.tls_skip_verify);
    assert_string_equal(r.tls_ca_file, "/ca.pem");
    assert_string_equal(r.tls_cert_file, "/c.pem");
    assert_string_equal(r.tls_key_file, "/k.pem");
    assert_string_equal(r.tls_server_name, "server.dc2.consul");

    /* An https address without verify_outgoing and without a CA: the system store, the
     * address itself as the name, no client certificate without a key. */
    struct reg_settings bare = {.datacenter = "dc1", .tls_cert_file = "/c.pem"};
    struct http_client_request r2 = {.host = "example.com", .port = 443, .tls = true};
    reg_agent_tls_client_options(&bare, &r2);
    assert_true(r2.tls);
    assert_null(r2.tls_ca_file);
    assert_null(r2.tls_server_name);
    assert_null(r2.tls_cert_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_create, enter_tmpdir, leave_tmpdir),
        cmocka_unit_test_setup_teardown(test_cert_create, enter_tmpdir, leave_tmpdir),
        cmocka_unit_test_setup_teardown(test_cert_create_errors, enter_tmpdir, leave_tmpdir),
        cmocka_unit_test(test_client_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
