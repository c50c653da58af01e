#include "lib/tls.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/alloc.h"

#define READ_CHUNK 16384

struct tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the peer; owned by ssl */
    BIO *wbio; /* ciphertext for the peer; owned by ssl */
    char *server_name;
    struct buf pending; /* plaintext waiting for the handshake */
    bool server;
    bool handshake_done;
    bool shut;
    int status; /* sticky: 0, TLS_CLOSED or TLS_ERR_PROTO */
    char err[256];
};

static int on_verify(int ok, X509_STORE_CTX *sctx);

/* ---- contexts ------------------------------------------------------------------------------ */

/* The first OpenSSL error in the queue, as text; empties the queue. */
static void ssl_error_text(char *out, size_t n, const char *fallback)
{
    unsigned long code = ERR_get_error();

    if (code)
        ERR_error_string_n(code, out, n);
    else
        snprintf(out, n, "%s", fallback);
    ERR_clear_error();
}

static int ctx_fail(SSL_CTX *ctx, struct err *e, const char *what, const char *file)
{
    char text[256];

    ssl_error_text(text, sizeof(text), "unknown error");
    SSL_CTX_free(ctx);
    return err_set(e, "%s %s: %s", what, file ? file : "", text);
}

static int ctx_load(SSL_CTX *ctx, const struct tls_ctx_config *cfg, struct err *e)
{
    if (cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1)
            return ctx_fail(ctx, e, "load CA file", cfg->ca_file);
        if (cfg->server) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        }
    } else if (!cfg->server && cfg->verify_peer) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            return ctx_fail(ctx, e, "load system CA store", NULL);
    } else if (cfg->server && cfg->verify_peer) {
        SSL_CTX_free(ctx);
        return err_set(e, "verifying clients needs a CA file");
    }
    if (cfg->cert_file || cfg->key_file || cfg->server) {
        if (!cfg->cert_file || !cfg->key_file) {
            SSL_CTX_free(ctx);
            return err_set(e, "a TLS %s needs both a certificate and a key file",
                           cfg->server ? "server" : "client certificate");
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
            return ctx_fail(ctx, e, "load certificate", cfg->cert_file);
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(ctx, e, "load key", cfg->key_file);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return ctx_fail(ctx, e, "key does not match certificate", cfg->key_file);
    }
    return 0;
}

int tls_ctx_new(const struct tls_ctx_config *cfg, struct tls_ctx **out, struct err *e)
{
    SSL_CTX *ctx = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());

    *out = NULL;
    if (!ctx) {
        char text[256];
        ssl_error_text(text, sizeof(text), "SSL_CTX_new failed");
        return err_set(e, "%s", text);
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Memory BIOs never block, so whole-record writes are fine; the buffer may move between
     * calls because pending plaintext lives in a growable buffer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int mode = SSL_VERIFY_NONE;
    if (cfg->verify_peer)
        mode = cfg->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, on_verify);
    int rc = ctx_load(ctx, cfg, e);
    if (rc < 0)
        return rc;
    *out = xcalloc(1, sizeof(**out));
    (*out)->ssl_ctx = ctx;
    return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ---- connections --------------------------------------------------------------------------- */

static bool is_ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *server_name)
{
    struct tls_conn *t = xcalloc(1, sizeof(*t));

    t->ssl = SSL_new(ctx->ssl_ctx);
    if (!t->ssl)
        abort(); /* only out of memory */
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->rbio || !t->wbio)
        abort();
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    t->server = SSL_is_server(t->ssl);
    if (t->server) {
        SSL_set_accept_state(t->ssl);
        return t;
    }
    SSL_set_connect_state(t->ssl);
    if (server_name && server_name[0]) {
        t->server_name = xstrdup(server_name);
        if (is_ip_literal(server_name)) {
            /* RFC 6066: no IP literals in SNI; the certificate must list the IP instead. */
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name);
        } else {
            SSL_set_tlsext_host_name(t->ssl, server_name);
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(t->ssl, server_name);
        }
    }
    /* Produces the ClientHello; it can only ask for more input here. */
    ERR_clear_error();
    SSL_do_handshake(t->ssl);
    ERR_clear_error();
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    SSL_free(t->ssl); /* frees both BIOs */
    buf_free(&t->pending);
    free(t->server_name);
    free(t);
}

/* The certificate's names Go would list for a host of the given kind. */
static void cert_names(X509 *cert, bool ip, struct buf *out)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);

    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char text[INET6_ADDRSTRLEN];
        if (!ip && g->type == GEN_DNS) {
            buf_printf(out, "%s%.*s", out->len ? ", " : "", ASN1_STRING_length(g->d.dNSName),
                       (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (ip && g->type == GEN_IPADD) {
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, p, text, sizeof(text)))
                buf_printf(out, "%s%s", out->len ? ", " : "", text);
        }
    }
    GENERAL_NAMES_free(names);
}

/* Go's crypto/x509 wording for a failed verification of cert. */
static void verify_error_text(struct tls_conn *t, long code, X509 *cert)
{
    struct buf msg = BUF_INIT;

    buf_append_cstr(&msg, "tls: failed to verify certificate: x509: ");
    switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        buf_append_cstr(&msg, "certificate signed by unknown authority");
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        buf_append_cstr(&msg, "certificate has expired or is not yet valid");
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: {
        bool ip = code == X509_V_ERR_IP_ADDRESS_MISMATCH;
        struct buf names = BUF_INIT;
        if (cert)
            cert_names(cert, ip, &names);
        if (names.len)
            buf_printf(&msg, "certificate is valid for %s, not %s", names.data, t->server_name);
        else
            buf_printf(&msg, "certificate is not valid for any names, but wanted to match %s",
                       t->server_name);
        buf_free(&names);
        break;
    }
    default:
        buf_append_cstr(&msg, X509_verify_cert_error_string(code));
        break;
    }
    snprintf(t->err, sizeof(t->err), "%s", msg.data);
    buf_free(&msg);
}

/*
 * Notes the first verification failure while the certificate is at hand (the session does not
 * keep a peer certificate that failed). Verification itself stays OpenSSL's.
 */
static int on_verify(int ok, X509_STORE_CTX *sctx)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_conn *t = ssl ? SSL_get_app_data(ssl) : NULL;

    if (!ok && t && !t->err[0] && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE)
        verify_error_text(t, X509_STORE_CTX_get_error(sctx), X509_STORE_CTX_get0_cert(sctx));
    return ok;
}

/* Records why the session failed; returns the sticky error. */
static int conn_fail(struct tls_conn *t, int ssl_err)
{
    long verify = SSL_get_verify_result(t->ssl);

    t->status = TLS_ERR_PROTO;
    if (ssl_err == SSL_ERROR_SSL && verify != X509_V_OK &&
        SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE && !t->handshake_done) {
        if (!t->err[0])
            verify_error_text(t, verify, NULL);
        ERR_clear_error();
    } else {
        ssl_error_text(t->err, sizeof(t->err), "TLS failure");
    }
    return t->status;
}

/* Advances the handshake, then encrypts pending plaintext. Returns 0 or the sticky error. */
static int conn_step(struct tls_conn *t)
{
    if (!t->handshake_done) {
        ERR_clear_error();
        int rc = SSL_do_handshake(t->ssl);
        if (rc != 1) {
            int e = SSL_get_error(t->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return conn_fail(t, e);
        }
        t->handshake_done = true;
    }
    while (t->pending.len && !t->shut) {
        ERR_clear_error();
        size_t n = t->pending.len > INT32_MAX ? INT32_MAX : t->pending.len;
        int rc = SSL_write(t->ssl, t->pending.data, (int)n);
        if (rc <= 0) {
            int e = SSL_get_error(t->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return conn_fail(t, e);
        }
        buf_consume(&t->pending, (size_t)rc);
    }
    return 0;
}

static int conn_read_plain(struct tls_conn *t, struct buf *plain)
{
    for (;;) {
        buf_reserve(plain, READ_CHUNK);
        ERR_clear_error();
        int rc = SSL_read(t->ssl, plain->data + plain->len, READ_CHUNK);
        if (rc > 0) {
            plain->len += (size_t)rc;
            plain->data[plain->len] = '\0';
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->status = TLS_CLOSED;
            return t->status;
        }
        return conn_fail(t, e);
    }
}

int tls_conn_recv(struct tls_conn *t, const void *data, size_t len, struct buf *plain)
{
    if (t->status)
        return t->status;
    if (len && BIO_write(t->rbio, data, (int)len) != (int)len)
        abort(); /* a memory BIO only fails without memory */
    int rc = conn_step(t);
    if (rc == 0 && t->handshake_done)
        rc = conn_read_plain(t, plain);
    /* Reading may have finished a handshake step (TLS 1.3 post-handshake messages), so flush. */
    if (rc == 0)
        rc = conn_step(t);
    return rc;
}

int tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
    if (t->status && t->status != TLS_CLOSED)
        return t->status;
    if (t->shut)
        return -EPIPE;
    buf_append(&t->pending, data, len);
    return conn_step(t);
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->shut || t->status == TLS_ERR_PROTO || !t->handshake_done)
        return;
    conn_step(t); /* what was queued goes before the alert */
    t->shut = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t tls_conn_take_output(struct tls_conn *t, struct buf *out)
{
    size_t n = (size_t)BIO_ctrl_pending(t->wbio);

    if (n == 0)
        return 0;
    buf_reserve(out, n);
    int rc = BIO_read(t->wbio, out->data + out->len, (int)n);
    if (rc <= 0)
        return 0;
    out->len += (size_t)rc;
    out->data[out->len] = '\0';
    return (size_t)rc;
}

bool tls_conn_handshake_done(const struct tls_conn *t)
{
    return t->handshake_done;
}

bool tls_conn_peer_verified(const struct tls_conn *t)
{
    return t->handshake_done && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE &&
           SSL_get0_peer_certificate(t->ssl) && SSL_get_verify_result(t->ssl) == X509_V_OK;
}

const char *tls_conn_server_name(const struct tls_conn *t)
{
    if (!t->server)
        return t->server_name;
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *tls_conn_error(const struct tls_conn *t)
{
    return t->err;
}
