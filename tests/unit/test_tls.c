/*
 * TLS layer: sessions pumped against each other in memory, then the HTTP client over https
 * against the HTTP server's TLS mode on a real loop. Certificates are made here with OpenSSL's
 * API (a CA, a second unrelated CA, a server and a client certificate) into a temp directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/duration.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/tls.h"
#include "registry/agent/checks.h"
#include "registry/state/state.h"

/* ---- certificates -------------------------------------------------------------------------- */

static char *tmpdir;
static char *ca_file, *other_ca_file, *server_cert, *server_key, *client_cert, *client_key;

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key named cn, signed by issuer (self-signed when NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san, long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v3, NID_subject_key_identifier, "hash");
    add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
    if (!issuer) {
        add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &v3, NID_basic_constraints, "CA:FALSE");
        add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
        add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (san)
        add_ext(x, &v3, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static char *write_pem(const char *name, X509 *cert, EVP_PKEY *key)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (cert)
        assert_int_equal(PEM_write_X509(fp, cert), 1);
    if (key)
        assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    return path;
}

static int setup(void **state)
{
    const char *base = getenv("MESH_TEST_TMPDIR");
    if (!base)
        base = "/tmp";
    mkdir(base, 0755);
    tmpdir = xasprintf("%s/test_tls.XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;

    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    EVP_PKEY *srv_key = EVP_EC_gen("P-256"), *cli_key = EVP_EC_gen("P-256");
    X509 *ca = make_cert(ca_key, "meshkit test CA", NULL, NULL, NULL, 1);
    X509 *other = make_cert(other_key, "some other CA", NULL, NULL, NULL, 2);
    X509 *srv = make_cert(srv_key, "localhost", ca, ca_key, "DNS:localhost,IP:127.0.0.1", 3);
    X509 *cli = make_cert(cli_key, "client.meshkit", ca, ca_key, "DNS:client.meshkit", 4);

    ca_file = write_pem("ca.pem", ca, NULL);
    other_ca_file = write_pem("other-ca.pem", other, NULL);
    server_cert = write_pem("server.pem", srv, NULL);
    server_key = write_pem("server.key", NULL, srv_key);
    client_cert = write_pem("client.pem", cli, NULL);
    client_key = write_pem("client.key", NULL, cli_key);

    X509_free(ca);
    X509_free(other);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    return 0;
}

static int teardown(void **state)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    FREE_NULL(tmpdir);
    FREE_NULL(ca_file);
    FREE_NULL(other_ca_file);
    FREE_NULL(server_cert);
    FREE_NULL(server_key);
    FREE_NULL(client_cert);
    FREE_NULL(client_key);
    return rc == 0 ? 0 : -1;
}

/* ---- sessions in memory -------------------------------------------------------------------- */

static struct tls_ctx *new_ctx(const struct tls_ctx_config *cfg)
{
    struct tls_ctx *ctx = NULL;
    struct err e = {{0}};
    int rc = tls_ctx_new(cfg, &ctx, &e);
    if (rc < 0)
        fail_msg("tls_ctx_new: %s", e.msg);
    return ctx;
}

static struct tls_ctx *server_ctx(bool verify_clients)
{
    struct tls_ctx_config cfg = {
        .server = true,
        .cert_file = server_cert,
        .key_file = server_key,
        .ca_file = verify_clients ? ca_file : NULL,
        .verify_peer = verify_clients,
    };
    return new_ctx(&cfg);
}

static struct tls_ctx *client_ctx(const char *ca, bool verify, bool with_cert)
{
    struct tls_ctx_config cfg = {
        .ca_file = ca,
        .verify_peer = verify,
        .cert_file = with_cert ? client_cert : NULL,
        .key_file = with_cert ? client_key : NULL,
    };
    return new_ctx(&cfg);
}

struct pair {
    struct tls_ctx *cctx, *sctx;
    struct tls_conn *c, *s;
    struct buf c_plain, s_plain;
    int c_rc, s_rc;
};

/* Moves ciphertext both ways until neither side has anything to say. */
static void pump(struct pair *p)
{
    for (int round = 0; round < 20; round++) {
        struct buf wire = BUF_INIT;
        size_t moved = 0;
        if (tls_conn_take_output(p->c, &wire)) {
            moved += wire.len;
            if (!p->s_rc)
                p->s_rc = tls_conn_recv(p->s, wire.data, wire.len, &p->s_plain);
        }
        buf_reset(&wire);
        if (tls_conn_take_output(p->s, &wire)) {
            moved += wire.len;
            if (!p->c_rc)
                p->c_rc = tls_conn_recv(p->c, wire.data, wire.len, &p->c_plain);
        }
        buf_free(&wire);
        if (!moved)
            return;
    }
    fail_msg("the sessions kept talking");
}

static void pair_open(struct pair *p, struct tls_ctx *cctx, struct tls_ctx *sctx, const char *name)
{
    memset(p, 0, sizeof(*p));
    p->cctx = cctx;
    p->sctx = sctx;
    p->c = tls_conn_new(cctx, name);
    p->s = tls_conn_new(sctx, NULL);
    pump(p);
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->c);
    tls_conn_free(p->s);
    tls_ctx_free(p->cctx);
    tls_ctx_free(p->sctx);
    buf_free(&p->c_plain);
    buf_free(&p->s_plain);
}

static void test_handshake_and_data(void **state)
{
    struct pair p;
    pair_open(&p, client_ctx(ca_file, true, false), server_ctx(false), "localhost");

    assert_int_equal(p.c_rc, 0);
    assert_int_equal(p.s_rc, 0);
    assert_true(tls_conn_handshake_done(p.c));
    assert_true(tls_conn_handshake_done(p.s));
    assert_true(tls_conn_peer_verified(p.c));
    assert_false(tls_conn_peer_verified(p.s)); /* no client certificate asked for */
    assert_string_equal(tls_conn_server_name(p.s), "localhost");
    assert_string_equal(tls_conn_server_name(p.c), "localhost");
    assert_string_equal(tls_conn_error(p.c), "");

    assert_int_equal(tls_conn_write(p.c, "ping", 4), 0);
    pump(&p);
    assert_string_equal(p.s_plain.data, "ping");
    /* Bigger than one record: arrives whole and in order. */
    char big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(tls_conn_write(p.s, big, sizeof(big)), 0);
    pump(&p);
    assert_int_equal(p.c_plain.len, sizeof(big));
    assert_memory_equal(p.c_plain.data, big, sizeof(big));

    tls_conn_shutdown(p.s);
    pump(&p);
    assert_int_equal(p.c_rc, TLS_CLOSED);
    assert_int_equal(tls_conn_write(p.s, "x", 1), -EPIPE);
    pair_close(&p);
}

/* Plaintext written before the handshake is over waits for it. */
static void test_write_before_handshake(void **state)
{
    struct pair p;
    memset(&p, 0, sizeof(p));
    p.cctx = client_ctx(ca_file, true, false);
    p.sctx = server_ctx(false);
    p.c = tls_conn_new(p.cctx, "127.0.0.1");
    p.s = tls_conn_new(p.sctx, NULL);
    assert_int_equal(tls_conn_write(p.c, "early", 5), 0);
    assert_false(tls_conn_handshake_done(p.c));
    pump(&p);
    assert_int_equal(p.c_rc, 0);
    assert_true(tls_conn_peer_verified(p.c)); /* the IP SAN matched */
    assert_null(tls_conn_server_name(p.s));   /* no SNI for an IP literal */
    assert_string_equal(p.s_plain.data, "early");
    pair_close(&p);
}

static void test_unknown_authority(void **state)
{
    struct pair p;
    pair_open(&p, client_ctx(other_ca_file, true, false), server_ctx(false), "localhost");

    assert_int_equal(p.c_rc, TLS_ERR_PROTO);
    assert_string_equal(tls_conn_error(p.c), "tls: failed to verify certificate: x509: "
                                             "certificate signed by unknown authority");
    assert_false(tls_conn_handshake_done(p.c));
    assert_int_equal(tls_conn_write(p.c, "x", 1), TLS_ERR_PROTO);
    /* The server hears the client's alert. */
    assert_int_equal(p.s_rc, TLS_ERR_PROTO);
    assert_non_null(strstr(tls_conn_error(p.s), "unknown ca"));
    pair_close(&p);
}

static void test_wrong_name(void **state)
{
    struct pair p;
    pair_open(&p, client_ctx(ca_file, true, false), server_ctx(false), "wrong.example");
    assert_int_equal(p.c_rc, TLS_ERR_PROTO);
    assert_string_equal(tls_conn_error(p.c), "tls: failed to verify certificate: x509: "
                                             "certificate is valid for localhost, not "
                                             "wrong.example");
    pair_close(&p);

    pair_open(&p, client_ctx(ca_file, true, false), server_ctx(false), "10.1.2.3");
    assert_int_equal(p.c_rc, TLS_ERR_PROTO);
    assert_string_equal(tls_conn_error(p.c), "tls: failed to verify certificate: x509: "
                                             "certificate is valid for 127.0.0.1, not 10.1.2.3");
    pair_close(&p);
}

static void test_skip_verify(void **state)
{
    struct pair p;
    pair_open(&p, client_ctx(other_ca_file, false, false), server_ctx(false), "wrong.example");
    assert_int_equal(p.c_rc, 0);
    assert_true(tls_conn_handshake_done(p.c));
    assert_false(tls_conn_peer_verified(p.c));
    assert_string_equal(tls_conn_error(p.c), "");
    assert_int_equal(tls_conn_write(p.c, "ok", 2), 0);
    pump(&p);
    assert_string_equal(p.s_plain.data, "ok");
    pair_close(&p);
}

static void test_client_certificates(void **state)
{
    struct pair p;
    pair_open(&p, client_ctx(ca_file, true, false), server_ctx(true), "localhost");
    assert_int_equal(p.s_rc, TLS_ERR_PROTO);
    assert_non_null(strstr(tls_conn_error(p.s), "peer did not return a certificate"));
    pair_close(&p);

    pair_open(&p, client_ctx(ca_file, true, true), server_ctx(true), "localhost");
    assert_int_equal(p.c_rc, 0);
    assert_int_equal(p.s_rc, 0);
    assert_true(tls_conn_peer_verified(p.s));
    pair_close(&p);
}

static void test_garbage_from_peer(void **state)
{
    struct tls_ctx *ctx = client_ctx(ca_file, true, false);
    struct tls_conn *c = tls_conn_new(ctx, "localhost");
    struct buf plain = BUF_INIT;
    const char *http = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

    assert_int_equal(tls_conn_recv(c, http, strlen(http), &plain), TLS_ERR_PROTO);
    assert_non_null(strstr(tls_conn_error(c), "wrong version number"));
    assert_int_equal(plain.len, 0);
    assert_int_equal(tls_conn_recv(c, "x", 1, &plain), TLS_ERR_PROTO);
    tls_conn_free(c);
    tls_ctx_free(ctx);
    buf_free(&plain);
}

static void test_ctx_errors(void **state)
{
    struct tls_ctx *ctx = (struct tls_ctx *)1;
    struct err e = {{0}};
    struct tls_ctx_config cfg = {.ca_file = "/nonexistent/ca.pem", .verify_peer = true};

    assert_int_equal(tls_ctx_new(&cfg, &ctx, &e), -EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(e.msg, "load CA file /nonexistent/ca.pem: "));

    struct tls_ctx_config srv = {.server = true, .cert_file = server_cert};
    assert_int_equal(tls_ctx_new(&srv, &ctx, &e), -EINVAL);
    assert_string_equal(e.msg, "a TLS server needs both a certificate and a key file");

    struct tls_ctx_config mismatch = {
        .server = true, .cert_file = server_cert, .key_file = client_key};
    assert_int_equal(tls_ctx_new(&mismatch, &ctx, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "key values mismatch"));

    struct tls_ctx_config no_ca = {
        .server = true, .cert_file = server_cert, .key_file = server_key, .verify_peer = true};
    assert_int_equal(tls_ctx_new(&no_ca, &ctx, &e), -EINVAL);
    assert_string_equal(e.msg, "verifying clients needs a CA file");

    /* The system store loads (whatever it holds). */
    struct tls_ctx_config sys = {.verify_peer = true};
    assert_int_equal(tls_ctx_new(&sys, &ctx, &e), 0);
    tls_ctx_free(ctx);
    tls_ctx_free(NULL);
}

/* ---- https over a real loop ---------------------------------------------------------------- */

struct net {
    uv_loop_t loop;
    struct tls_ctx *sctx;
    struct http_server srv; /* TLS */
    int port;
    struct http_server plain; /* plain HTTP */
    int plain_port;
    uv_tcp_t raw; /* closes each connection after its first bytes */
    int raw_port;
    struct http_client *client;
    int requests;
    char peer[64]; /* of the last request */
    bool done;
    int status;
    int code;
    char body[64];
    char error[640];
};

static int bound_port(uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_int_equal(uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void handler(struct http_request *req, void *data)
{
    struct net *n = data;

    n->requests++;
    snprintf(n->peer, sizeof(n->peer), "%s", req->peer);
    http_respond_text(req, 200, "secure hello");
}

static void on_raw_closed(uv_handle_t *h)
{
    free(h);
}

static void on_raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char scratch[4096];
    *b = uv_buf_init(scratch, sizeof(scratch));
}

/* The ClientHello arrived: hang up mid-handshake. */
static void on_raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    if (nread != 0)
        uv_close((uv_handle_t *)s, on_raw_closed);
}

static void on_raw_connection(uv_stream_t *listener, int status)
{
    uv_tcp_t *t = xcalloc(1, sizeof(*t));

    uv_tcp_init(listener->loop, t);
    if (status < 0 || uv_accept(listener, (uv_stream_t *)t) < 0) {
        uv_close((uv_handle_t *)t, on_raw_closed);
        return;
    }
    uv_read_start((uv_stream_t *)t, on_raw_alloc, on_raw_read);
}

static int net_setup(void **state)
{
    struct net *n = xcalloc(1, sizeof(*n));
    struct err e;
    struct sockaddr_in sa;

    assert_int_equal(uv_loop_init(&n->loop), 0);
    n->sctx = server_ctx(false);
    struct http_server_config cfg = {.tls = n->sctx};
    http_server_init(&n->srv, &n->loop, &cfg, handler, n);
    assert_int_equal(http_server_listen(&n->srv, "127.0.0.1", 0, &e), 0);
    n->port = bound_port(&n->srv.listener);
    http_server_init(&n->plain, &n->loop, NULL, handler, n);
    assert_int_equal(http_server_listen(&n->plain, "127.0.0.1", 0, &e), 0);
    n->plain_port = bound_port(&n->plain.listener);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&n->loop, &n->raw);
    assert_int_equal(uv_tcp_bind(&n->raw, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&n->raw, 16, on_raw_connection), 0);
    n->raw_port = bound_port(&n->raw);
    n->client = http_client_new(&n->loop);
    *state = n;
    return 0;
}

static int net_teardown(void **state)
{
    struct net *n = *state;

    http_client_free(n->client);
    http_server_close(&n->srv, NULL);
    http_server_close(&n->plain, NULL);
    uv_close((uv_handle_t *)&n->raw, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    tls_ctx_free(n->sctx);
    int rc = uv_loop_close(&n->loop);
    free(n);
    return rc == 0 ? 0 : -1;
}

static void on_done(int status, const struct http_client_response *res, void *data)
{
    struct net *n = data;
    const char *e = http_client_error(n->client);

    n->done = true;
    n->status = status;
    n->code = res ? res->status : 0;
    snprintf(n->body, sizeof(n->body), "%s", res ? res->body : "");
    snprintf(n->error, sizeof(n->error), "%s", e ? e : "(none)");
}

/* GET / over https on port with the given settings; runs the loop until it completes. */
static void get(struct net *n, int port, const char *ca, const char *name, bool skip)
{
    struct http_client_request req = {
        .host = "127.0.0.1",
        .port = port,
        .timeout_ms = 5000,
        .tls = true,
        .tls_ca_file = ca,
        .tls_server_name = name,
        .tls_skip_verify = skip,
    };
    n->done = false;
    http_client_send(n->client, &req, on_done, n);
    while (!n->done)
        uv_run(&n->loop, UV_RUN_ONCE);
}

static void test_https_get(void **state)
{
    struct net *n = *state;

    get(n, n->port, ca_file, "localhost", false);
    assert_int_equal(n->status, 0);
    assert_int_equal(n->code, 200);
    assert_string_equal(n->body, "secure hello");
    assert_string_equal(n->error, "(none)");
    /* No server name: the host, an IP, must be in the certificate's IP SANs (it is). */
    get(n, n->port, ca_file, NULL, false);
    assert_int_equal(n->status, 0);
    assert_int_equal(n->code, 200);
    assert_int_equal(n->requests, 2);
}

static void test_https_unknown_authority(void **state)
{
    struct net *n = *state;

    get(n, n->port, other_ca_file, "localhost", false);
    assert_int_equal(n->status, UV_EPROTO);
    assert_string_equal(n->error, "tls: failed to verify certificate: x509: certificate signed "
                                  "by unknown authority");
    assert_int_equal(n->requests, 0);
}

static void test_https_skip_verify(void **state)
{
    struct net *n = *state;

    get(n, n->port, other_ca_file, "wrong.example", true);
    assert_int_equal(n->status, 0);
    assert_int_equal(n->code, 200);
    assert_string_equal(n->body, "secure hello");
}

static void test_https_wrong_name(void **state)
{
    struct net *n = *state;

    get(n, n->port, ca_file, "wrong.example", false);
    assert_int_equal(n->status, UV_EPROTO);
    assert_string_equal(n->error, "tls: failed to verify certificate: x509: certificate is valid "
                                  "for localhost, not wrong.example");
    assert_int_equal(n->requests, 0);
}

static void test_https_closed_mid_handshake(void **state)
{
    struct net *n = *state;

    get(n, n->raw_port, ca_file, "localhost", false);
    assert_int_equal(n->status, UV_EPROTO);
    assert_string_equal(n->error, "EOF");
}

static void test_https_to_plain_server(void **state)
{
    struct net *n = *state;

    get(n, n->plain_port, ca_file, "localhost", false);
    assert_int_equal(n->status, UV_EPROTO);
    assert_string_equal(n->error, "http: server gave HTTP response to HTTPS client");
}

static void test_plain_to_tls_server(void **state)
{
    struct net *n = *state;
    struct http_client_request req = {.host = "127.0.0.1", .port = n->port, .timeout_ms = 5000};

    n->done = false;
    http_client_send(n->client, &req, on_done, n);
    while (!n->done)
        uv_run(&n->loop, UV_RUN_ONCE);
    /* Go's net/http answer, as Consul gives it; the handler never sees the request. */
    assert_int_equal(n->status, 0);
    assert_int_equal(n->code, 400);
    assert_string_equal(n->body, "Client sent an HTTP request to an HTTPS server.\n");
    assert_int_equal(n->requests, 0);
}

static void test_https_bad_ca_file(void **state)
{
    struct net *n = *state;

    get(n, n->port, "/nonexistent/ca.pem", "localhost", false);
    assert_int_equal(n->status, UV_EINVAL);
    assert_non_null(strstr(n->error, "tls: load CA file /nonexistent/ca.pem: "));
}

static void test_https_keep_alive(void **state)
{
    struct net *n = *state;
    char first[64];

    get(n, n->port, ca_file, "localhost", false);
    assert_int_equal(n->code, 200);
    snprintf(first, sizeof(first), "%s", n->peer);
    get(n, n->port, ca_file, "localhost", false);
    assert_int_equal(n->code, 200);
    assert_string_equal(n->peer, first); /* same client port: the connection was reused */
    assert_int_equal(n->requests, 2);

    /* Other TLS settings never ride on that connection: a CA that does not sign the server's
     * certificate must fail even though a verified connection sits in the pool. */
    get(n, n->port, other_ca_file, "localhost", false);
    assert_int_equal(n->status, UV_EPROTO);
    get(n, n->port, ca_file, "wrong.example", false);
    assert_int_equal(n->status, UV_EPROTO);
    get(n, n->port, ca_file, "localhost", true);
    assert_int_equal(n->code, 200);
    assert_string_not_equal(n->peer, first);
    /* And the first connection is still there for its own settings. */
    get(n, n->port, ca_file, "localhost", false);
    assert_string_equal(n->peer, first);
    assert_int_equal(n->requests, 4);
}

/* ---- https health checks ------------------------------------------------------------------- */

struct https_case {
    const char *id;
    const char *server_name; /* TLSServerName */
    bool skip;               /* TLSSkipVerify */
    enum reg_health want;
    const char *want_error; /* after `Get "<url>": ` when critical */
};

static void on_reap(const char *service_id, void *data)
{
}

static enum reg_health status_of(struct reg_state *st, const char *id)
{
    struct reg_check *c = reg_check_get(reg_node_get(st, "n1"), id);
    assert_non_null(c);
    return c->status;
}

/*
 * Runs the cases as checks of one agent whose system CA store is store_file (OpenSSL reads
 * SSL_CERT_FILE), until each has its wanted status; then compares outputs.
 */
static void run_https_checks(struct net *n, const char *store_file, const struct https_case *cases,
                             size_t count)
{
    struct reg_state st;
    char url[128], want[512];

    setenv("SSL_CERT_FILE", store_file, 1);
    reg_state_init(&st);
    struct reg_node_fields nf = {.name = "n1", .address = "127.0.0.1", .datacenter = "dc1"};
    reg_node_upsert(&st, &nf);
    struct reg_checks *checks = reg_checks_new(&n->loop, &st, "n1", on_reap, NULL);
    for (size_t i = 0; i < count; i++) {
        enum reg_health start = cases[i].want == REG_PASSING ? REG_CRITICAL : REG_PASSING;
        struct reg_check t = {.id = (char *)cases[i].id, .status = start, .service_id = ""};
        reg_check_upsert(&st, reg_node_get(&st, "n1"), &t);
        struct reg_check_def *d = xcalloc(1, sizeof(*d));
        d->id = xstrdup(cases[i].id);
        d->name = xstrdup(cases[i].id);
        d->service_id = xstrdup("");
        d->kind = REG_CHECK_HTTP;
        d->interval = DURATION_SEC;
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/health", n->port);
        d->http = xstrdup(url);
        d->tls_server_name = cases[i].server_name ? xstrdup(cases[i].server_name) : NULL;
        d->tls_skip_verify = cases[i].skip;
        reg_checks_start(checks, d);
    }
    uint64_t deadline = uv_now(&n->loop) + 5000;
    size_t settled = 0;
    while (settled < count && uv_now(&n->loop) < deadline) {
        uv_run(&n->loop, UV_RUN_ONCE);
        settled = 0;
        for (size_t i = 0; i < count; i++)
            settled += status_of(&st, cases[i].id) == cases[i].want;
    }
    for (size_t i = 0; i < count; i++) {
        const struct https_case *c = &cases[i];
        struct reg_check *chk = reg_check_get(reg_node_get(&st, "n1"), c->id);
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/health", n->port);
        if (c->want == REG_PASSING)
            snprintf(want, sizeof(want), "HTTP GET %s: 200 OK Output: secure hello", url);
        else
            snprintf(want, sizeof(want), "Get \"%s\": %s", url, c->want_error);
        if (chk->status != c->want || strcmp(chk->output, want) != 0)
            fail_msg("check %s: status %d, output \"%s\"; want %d, \"%s\"", c->id, (int)chk->status,
                     chk->output ? chk->output : "", (int)c->want, want);
    }
    reg_checks_free(checks);
    uv_run(&n->loop, UV_RUN_NOWAIT);
    reg_state_free(&st);
    unsetenv("SSL_CERT_FILE");
}

static void test_https_checks(void **state)
{
    struct net *n = *state;
    const struct https_case trusted[] = {
        {"by-ip", NULL, false, REG_PASSING, NULL},
        {"server-name", "localhost", false, REG_PASSING, NULL},
        {"wrong-name", "wrong.example", false, REG_CRITICAL,
         "tls: failed to verify certificate: x509: certificate is valid for localhost, not "
         "wrong.example"},
        {"skip-wrong-name", "wrong.example", true, REG_PASSING, NULL},
    };
    const struct https_case untrusted[] = {
        {"unknown-ca", NULL, false, REG_CRITICAL,
         "tls: failed to verify certificate: x509: certificate signed by unknown authority"},
        {"skip", NULL, true, REG_PASSING, NULL},
    };

    run_https_checks(n, ca_file, trusted, ARRAY_LEN(trusted));
    run_https_checks(n, other_ca_file, untrusted, ARRAY_LEN(untrusted));
    assert_true(n->requests >= 4); /* one probe at least for each passing one */
}

#define NET_TEST(f) cmocka_unit_test_setup_teardown(f, net_setup, net_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* clang-format off */
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_write_before_handshake),
        cmocka_unit_test(test_unknown_authority),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_skip_verify),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_garbage_from_peer),
        cmocka_unit_test(test_ctx_errors),
        NET_TEST(test_https_get),
        NET_TEST(test_https_unknown_authority),
        NET_TEST(test_https_skip_verify),
        NET_TEST(test_https_wrong_name),
        NET_TEST(test_https_closed_mid_handshake),
        NET_TEST(test_https_to_plain_server),
        NET_TEST(test_plain_to_tls_server),
        NET_TEST(test_https_bad_ca_file),
        NET_TEST(test_https_keep_alive),
        NET_TEST(test_https_checks),
        /* clang-format on */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
