/*
 * `mesh tls ca create` and `mesh tls cert create`: a private CA and agent certificates made the
 * way `consul tls` makes them (ECDSA P-256 keys, the same file names, subjects, SANs and
 * messages), so a Consul how-to's commands and files work unchanged with mesh agents.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/buf.h"

#define TLS_USAGE                                                                                  \
    "mesh tls <subcommand> [options]\n\n"                                                          \
    "  Creates a CA and certificates for agents, as `consul tls` does.\n\n"                        \
    "Subcommands:\n"                                                                               \
    "    ca create      Create a certificate authority\n"                                          \
    "    cert create    Create a -server, -client or -cli certificate signed by the CA"

#define CA_USAGE                                                                                   \
    "mesh tls ca create [options]\n\n"                                                             \
    "  Creates <domain>-agent-ca.pem and <domain>-agent-ca-key.pem in the current directory."

#define CERT_USAGE                                                                                 \
    "mesh tls cert create [options]\n\n"                                                           \
    "  Creates <dc>-<server|client|cli>-<domain>-<n>.pem and its -key.pem in the current\n"        \
    "  directory, signed by the CA; n is the first index whose files do not exist yet."

#define SERVER_WARNING                                                                             \
    "==> WARNING: Server Certificates grants authority to become a\n"                              \
    "    server and access all state in the cluster including root keys\n"                         \
    "    and all ACL tokens. Do not distribute them to production hosts\n"                         \
    "    that are not server nodes. Store them as securely as CA keys.\n"

/* ---- building blocks ------------------------------------------------------------------- */

static void print_ssl_error(const char *what)
{
    char text[256] = "unknown error";
    unsigned long code = ERR_get_error();

    if (code)
        ERR_error_string_n(code, text, sizeof(text));
    ERR_clear_error();
    fprintf(stderr, "==> %s: %s\n", what, text);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Writes data to a new file (never replacing one). Returns 0 or -errno, message printed. */
static int write_new_file(const char *path, const struct buf *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int rc = 0;

    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "==> Failed to write %s: %s\n", path, strerror(errno));
        return rc;
    }
    if (write(fd, data->data, data->len) != (ssize_t)data->len)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        fprintf(stderr, "==> Failed to write %s: %s\n", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

/* PEM of a certificate or (Go's "EC PRIVATE KEY" form) a key, appended to out. */
static int pem_append(struct buf *out, X509 *cert, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    int ok = cert ? PEM_write_bio_X509(bio, cert)
                  : PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL);
    long n = BIO_get_mem_data(bio, &p);

    if (ok == 1 && n > 0)
        buf_append(out, p, (size_t)n);
    BIO_free(bio);
    return ok == 1 && n > 0 ? 0 : -EIO;
}

/* A random positive serial below 2^128 (Go's GenerateSerialNumber); its decimal form too. */
static int set_serial(X509 *x, char *dec, size_t dec_len)
{
    BIGNUM *bn = BN_new();
    int rc = -EIO;

    if (bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        char *s = BN_bn2dec(bn);
        if (s && dec)
            snprintf(dec, dec_len, "%s", s);
        rc = s ? 0 : -EIO;
        OPENSSL_free(s);
    }
    BN_free(bn);
    return rc;
}

/* Adds an extension from OpenSSL's config syntax; values here are fixed strings of ours. */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok ? 0 : -EINVAL;
}

/* Starts a version 3 certificate for key, valid from now for days. */
static X509 *cert_start(EVP_PKEY *key, long days, char *serial, size_t serial_len)
{
    X509 *x = X509_new();

    if (!x || X509_set_version(x, 2) != 1 || set_serial(x, serial, serial_len) < 0 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) ||
        X509_set_pubkey(x, key) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Saves cert and key as two new files, printing consul's "==> Saved" lines. */
static int save_pair(const char *cert_path, const char *key_path, X509 *cert, EVP_PKEY *key)
{
    struct buf c = BUF_INIT, k = BUF_INIT;
    int rc = pem_append(&c, cert, NULL);

    if (rc == 0)
        rc = pem_append(&k, NULL, key);
    if (rc < 0)
        print_ssl_error("Failed to encode");
    if (rc == 0 && (rc = write_new_file(cert_path, &c, 0644)) == 0) {
        printf("==> Saved %s\n", cert_path);
        if ((rc = write_new_file(key_path, &k, 0600)) == 0)
            printf("==> Saved %s\n", key_path);
        else
            unlink(cert_path); /* ours, just written: leave no certificate without its key */
    }
    buf_free(&c);
    buf_free(&k);
    return rc;
}

/* ---- tls ca create ----------------------------------------------------------------------- */

struct ca_opts {
    int days;
    char *domain;
    char *common_name;
    bool name_constraint;
    struct flag_list constraints;
};

/* Builds and self-signs the CA certificate (Consul's GenerateCA template). */
static X509 *ca_build(const struct ca_opts *o, EVP_PKEY *key)
{
    char serial[64] = "", cn[128];
    X509 *x = cert_start(key, o->days, serial, sizeof(serial));
    X509V3_CTX ctx;
    int rc = x ? 0 : -EIO;

    if (rc == 0) {
        X509_NAME *n = X509_get_subject_name(x);
        if (o->common_name && *o->common_name)
            snprintf(cn, sizeof(cn), "%s", o->common_name);
        else
            snprintf(cn, sizeof(cn), "Consul Agent CA %s", serial);
        const char *fields[][2] = {
            {"C", "US"},
            {"postalCode", "94105"},
            {"ST", "CA"},
            {"L", "San Francisco"},
            {"street", "101 Second Street"},
            {"O", "HashiCorp Inc."},
            {"CN", cn},
        };
        for (size_t i = 0; i < ARRAY_LEN(fields) && rc == 0; i++)
            if (X509_NAME_add_entry_by_txt(n, fields[i][0], MBSTRING_UTF8,
                                           (const unsigned char *)fields[i][1], -1, -1, 0) != 1)
                rc = -EINVAL;
        if (rc == 0 && X509_set_issuer_name(x, n) != 1)
            rc = -EIO;
    }
    if (rc == 0) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    }
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (rc == 0 && o->name_constraint) {
        struct buf nc = BUF_INIT;
        buf_printf(&nc, "critical,permitted;DNS:%s,permitted;DNS:localhost", o->domain);
        for (size_t i = 0; i < o->constraints.n; i++)
            buf_printf(&nc, ",permitted;DNS:%s", o->constraints.items[i]);
        rc = add_ext(x, &ctx, NID_name_constraints, nc.data);
        buf_free(&nc);
    }
    if (rc == 0 && X509_sign(x, key, EVP_sha256()) <= 0)
        rc = -EIO;
    if (rc < 0) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static int ca_create(int argc, char **argv)
{
    struct ca_opts o = {.days = 1825, .domain = xstrdup("consul")};
    struct flag flags[] = {
        {"days", FLAG_INT, &o.days, "Number of days the CA is valid for.", false},
        {"domain", FLAG_STRING, &o.domain, "Domain of consul cluster.", false},
        {"common-name", FLAG_STRING, &o.common_name,
         "Common Name of CA. Defaults to Consul Agent CA.", false},
        {"name-constraint", FLAG_BOOL, &o.name_constraint,
         "Add name constraints for the CA: <domain> and localhost.", false},
        {"additional-name-constraint", FLAG_STRING_LIST, &o.constraints,
         "Add name constraints for the CA (repeatable; with -name-constraint).", false},
    };
    char cert_path[300], key_path[300];
    int first, code = 1;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), CA_USAGE, argc, argv, &first, &code))
        goto out;
    code = 1;
    snprintf(cert_path, sizeof(cert_path), "%s-agent-ca.pem", o.domain);
    snprintf(key_path, sizeof(key_path), "%s-agent-ca-key.pem", o.domain);
    if (file_exists(cert_path)) {
        fprintf(stderr, "==> CA file %s already exists\n", cert_path);
        goto out;
    }
    if (file_exists(key_path)) {
        fprintf(stderr, "==> CA key file %s already exists\n", key_path);
        goto out;
    }
    if (o.days <= 0) {
        fprintf(stderr, "==> -days must be a positive number of days\n");
        goto out;
    }
    key = EVP_EC_gen("P-256");
    if (!key || !(x = ca_build(&o, key))) {
        print_ssl_error("Failed to generate the CA");
        goto out;
    }
    code = save_pair(cert_path, key_path, x, key) == 0 ? 0 : 1;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    free(o.domain);
    free(o.common_name);
    flag_list_free(&o.constraints);
    return code;
}

/* ---- tls cert create --------------------------------------------------------------------- */

struct cert_opts {
    bool server, client, cli;
    char *dc;
    char *domain;
    int days;
    char *ca;
    char *key;
    struct flag_list dns;
    struct flag_list ips;
};

/* The SAN list: the role name, localhost, 127.0.0.1, then the extra names and addresses. */
static int add_sans(X509 *x, const char *name, const struct cert_opts *o)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = 0;

    for (size_t i = 0; i < o->dns.n + 2 && rc == 0; i++) {
        const char *dns = i == 0 ? name : i == 1 ? "localhost" : o->dns.items[i - 2];
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        ASN1_STRING_set(s, dns, -1);
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(names, g);
    }
    for (size_t i = 0; i < o->ips.n + 1 && rc == 0; i++) {
        const char *ip = i == 0 ? "127.0.0.1" : o->ips.items[i - 1];
        ASN1_OCTET_STRING *a = a2i_IPADDRESS(ip);
        if (!a) {
            fprintf(stderr, "==> invalid IP address: %s\n", ip);
            rc = -EINVAL;
            break;
        }
        GENERAL_NAME *g = GENERAL_NAME_new();
        GENERAL_NAME_set0_value(g, GEN_IPADD, a);
        sk_GENERAL_NAME_push(names, g);
    }
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0) != 1)
        rc = -EIO;
    GENERAL_NAMES_free(names);
    return rc;
}

/* Builds the leaf certificate for key, signed by the CA (Consul's GenerateCert template). */
static X509 *cert_build(const struct cert_opts *o, const char *name, EVP_PKEY *key, X509 *ca,
                        EVP_PKEY *ca_key)
{
    X509 *x = cert_start(key, o->days, NULL, 0);
    X509V3_CTX ctx;
    int rc = x ? 0 : -EIO;

    if (rc == 0 && (X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                               (const unsigned char *)name, -1, -1, 0) != 1 ||
                    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1))
        rc = -EINVAL;
    if (rc == 0) {
        X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
        rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    }
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_ext_key_usage, o->cli ? "clientAuth" : "serverAuth,clientAuth");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (rc == 0)
        rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (rc == 0)
        rc = add_sans(x, name, o);
    if (rc == 0 && X509_sign(x, ca_key, EVP_sha256()) <= 0)
        rc = -EIO;
    if (rc < 0) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* Reads the CA certificate and key (PEM). Returns 0 or -1 with consul's message printed. */
static int load_ca(const struct cert_opts *o, X509 **ca, EVP_PKEY **ca_key)
{
    FILE *f = fopen(o->ca, "r");

    if (!f) {
        fprintf(stderr, "==> Error reading CA: open %s: %s\n", o->ca, strerror(errno));
        return -1;
    }
    *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*ca) {
        print_ssl_error("Error parsing CA");
        return -1;
    }
    f = fopen(o->key, "r");
    if (!f) {
        fprintf(stderr, "==> Error reading CA key: open %s: %s\n", o->key, strerror(errno));
        return -1;
    }
    *ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*ca_key || X509_check_private_key(*ca, *ca_key) != 1) {
        print_ssl_error("Error parsing CA key");
        return -1;
    }
    return 0;
}

/* Checks the role flags and fills in defaults. Returns 0 or -1 with the message printed. */
static int cert_check_opts(struct cert_opts *o)
{
    if ((int)o->server + (int)o->client + (int)o->cli != 1) {
        fprintf(stderr, "==> Please provide either -server, -client, or -cli\n");
        return -1;
    }
    if (!o->ca || !*o->ca) {
        free(o->ca);
        o->ca = xasprintf("%s-agent-ca.pem", o->domain);
    }
    if (!o->key || !*o->key) {
        free(o->key);
        o->key = xasprintf("%s-agent-ca-key.pem", o->domain);
    }
    if (o->days <= 0) {
        fprintf(stderr, "==> -days must be a positive number of days\n");
        return -1;
    }
    return 0;
}

/* The first "<prefix>-<n>.pem" / "<prefix>-<n>-key.pem" pair that does not exist yet. */
static void cert_paths(const char *prefix, char *cert, char *key, size_t n)
{
    for (int i = 0;; i++) {
        snprintf(cert, n, "%s-%d.pem", prefix, i);
        snprintf(key, n, "%s-%d-key.pem", prefix, i);
        if (!file_exists(cert) && !file_exists(key))
            return;
    }
}

static int cert_create(int argc, char **argv)
{
    struct cert_opts o = {.dc = xstrdup("dc1"), .domain = xstrdup("consul"), .days = 365};
    struct flag flags[] = {
        {"server", FLAG_BOOL, &o.server, "Generate server certificate.", false},
        {"client", FLAG_BOOL, &o.client, "Generate client certificate.", false},
        {"cli", FLAG_BOOL, &o.cli, "Generate cli certificate.", false},
        {"dc", FLAG_STRING, &o.dc, "Datacenter.", false},
        {"domain", FLAG_STRING, &o.domain, "Domain of consul cluster.", false},
        {"days", FLAG_INT, &o.days, "Number of days the certificate is valid for.", false},
        {"ca", FLAG_STRING, &o.ca, "The CA to use. Default <domain>-agent-ca.pem.", false},
        {"key", FLAG_STRING, &o.key, "The CA key to use. Default <domain>-agent-ca-key.pem.",
         false},
        {"additional-dnsname", FLAG_STRING_LIST, &o.dns,
         "Additional DNS name to add to the certificate's SANs (repeatable).", false},
        {"additional-ipaddress", FLAG_STRING_LIST, &o.ips,
         "Additional IP address to add to the certificate's SANs (repeatable).", false},
    };
    char name[300], prefix[300], cert_path[320], key_path[320];
    int first, code = 1;
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), CERT_USAGE, argc, argv, &first, &code))
        goto out;
    code = 1;
    if (cert_check_opts(&o) < 0)
        goto out;
    const char *role = o.server ? "server" : o.client ? "client" : "cli";
    snprintf(name, sizeof(name), "%s.%s.%s", role, o.dc, o.domain);
    snprintf(prefix, sizeof(prefix), "%s-%s-%s", o.dc, role, o.domain);
    cert_paths(prefix, cert_path, key_path, sizeof(cert_path));
    if (o.server)
        printf("%s", SERVER_WARNING);
    if (load_ca(&o, &ca, &ca_key) < 0)
        goto out;
    printf("==> Using %s and %s\n", o.ca, o.key);
    key = EVP_EC_gen("P-256");
    if (!key || !(x = cert_build(&o, name, key, ca, ca_key))) {
        print_ssl_error("Failed to generate the certificate");
        goto out;
    }
    code = save_pair(cert_path, key_path, x, key) == 0 ? 0 : 1;
out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    free(o.dc);
    free(o.domain);
    free(o.ca);
    free(o.key);
    flag_list_free(&o.dns);
    flag_list_free(&o.ips);
    return code;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int tls_usage(FILE *f, int code)
{
    fprintf(f, "Usage: %s\n", TLS_USAGE);
    return code;
}

int cli_tls(int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1]))
        return tls_usage(stdout, 0);
    if (argc >= 3 && strcmp(argv[1], "ca") == 0 && strcmp(argv[2], "create") == 0)
        return ca_create(argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "cert") == 0 && strcmp(argv[2], "create") == 0)
        return cert_create(argc - 3, argv + 3);
    return tls_usage(stderr, 1);
}
