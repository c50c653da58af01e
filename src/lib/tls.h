/*
 * TLS over any byte stream, with OpenSSL memory BIOs: the caller moves bytes between the socket
 * and the TLS engine, so there are no threads, no blocking and no sockets in here, and the same
 * code serves a client (health checks, agent to server) and a server (the HTTP API).
 *
 *     socket bytes ──tls_conn_recv()──► plaintext appended to a struct buf
 *     plaintext ──tls_conn_write()──► queued; encrypted as soon as the handshake allows
 *     tls_conn_take_output() ──► ciphertext to write to the socket (handshake records too)
 *
 * After every tls_conn_recv() and tls_conn_write() the caller writes what tls_conn_take_output()
 * hands back. Errors are negative errno values; tls_conn_error() holds readable text: for a
 * failed certificate check Go's wording ("tls: failed to verify certificate: x509: certificate
 * signed by unknown authority"), otherwise OpenSSL's (ERR_error_string_n).
 */
#ifndef MESH_LIB_TLS_H
#define MESH_LIB_TLS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

/* A handshake or record failure; tls_conn_error() says which. */
#define TLS_ERR_PROTO (-EPROTO)
/* The peer ended the session cleanly (close_notify): treat as end of stream. */
#define TLS_CLOSED (-ESHUTDOWN)

struct tls_ctx_config {
    bool server;
    /*
     * PEM bundle of CAs that sign the peer's certificate. A client given none verifies against
     * the system store (SSL_CTX_set_default_verify_paths); a server needs one for verify_peer.
     */
    const char *ca_file;
    /* PEM certificate (chain, leaf first) and its key: required for a server, optional for a
     * client (presented when the server asks for one). */
    const char *cert_file;
    const char *key_file;
    /*
     * Client: verify the server's certificate chain and name (false = TLSSkipVerify).
     * Server: require and verify a client certificate (Consul's verify_incoming).
     */
    bool verify_peer;
};

/* Settings shared by many connections: one OpenSSL SSL_CTX. TLS 1.2 is the minimum. */
struct tls_ctx;

/*
 * Builds a context, reading the files named in cfg (strings borrowed for the call). This reads
 * files synchronously: build contexts at startup or cache them, not per connection. Returns 0
 * and *out, or -EINVAL with e saying which file and why.
 */
int tls_ctx_new(const struct tls_ctx_config *cfg, struct tls_ctx **out, struct err *e);
/* Connections made from ctx hold their own reference and may outlive it. NULL is a no-op. */
void tls_ctx_free(struct tls_ctx *ctx);

/* One TLS session on one stream. */
struct tls_conn;

/*
 * Starts a session. For a client, server_name (copied; may be NULL) is the name the server's
 * certificate must match (a DNS name or an IP literal) and, when it is a DNS name, the SNI
 * sent; the ClientHello is ready in tls_conn_take_output() on return. A server passes NULL and
 * waits for the client.
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *server_name);
void tls_conn_free(struct tls_conn *t);

/*
 * Feeds ciphertext read from the stream (borrowed), advances the handshake, and appends any
 * plaintext that is now available to plain. Returns 0, TLS_CLOSED once the peer sent
 * close_notify (plaintext before it is still appended), or TLS_ERR_PROTO. After an error every
 * later call returns the same error.
 */
int tls_conn_recv(struct tls_conn *t, const void *data, size_t len, struct buf *plain);

/* Queues plaintext (copied) to send; it is encrypted once the handshake is done. Returns 0 or
 * the connection's earlier error. */
int tls_conn_write(struct tls_conn *t, const void *data, size_t len);

/* Sends close_notify (appears in the output); later writes are refused. */
void tls_conn_shutdown(struct tls_conn *t);

/* Appends the ciphertext waiting to be written to the stream to out; returns its length. */
size_t tls_conn_take_output(struct tls_conn *t, struct buf *out);

bool tls_conn_handshake_done(const struct tls_conn *t);

/*
 * True when the peer presented a certificate that verified (chain, and for a client the name).
 * False with verification off, even if the certificate happens to be good.
 */
bool tls_conn_peer_verified(const struct tls_conn *t);

/* Client: the name given to tls_conn_new(). Server: the SNI name the client sent. NULL if none. */
const char *tls_conn_server_name(const struct tls_conn *t);

/* Text of the error that stopped the connection; "" while there is none. */
const char *tls_conn_error(const struct tls_conn *t);

#endif
