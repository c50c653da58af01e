/* The agent's HTTPS listener and the TLS settings of its requests to servers. */
#include "registry/agent/agent_tls.h"

#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api.h"

static void on_https_closed(struct http_server *srv)
{
    struct reg_agent *a = CONTAINER_OF(srv, struct reg_agent, https);

    /* Every connection is gone: nothing uses the context any more. */
    tls_ctx_free(a->https_ctx);
    a->https_ctx = NULL;
}

int reg_agent_tls_start(struct reg_agent *a, struct err *e)
{
    const struct reg_settings *cfg = &a->cfg;
    struct tls_ctx_config tc = {
        .server = true,
        .ca_file = cfg->tls_ca_file,
        .cert_file = cfg->tls_cert_file,
        .key_file = cfg->tls_key_file,
        .verify_peer = cfg->tls_verify_incoming,
    };
    struct err terr = {""};
    int rc;

    if (!cfg->https_port)
        return 0;
    if (cfg->tls_verify_incoming && !cfg->tls_ca_file)
        return err_set(e, "tls.defaults.verify_incoming needs tls.defaults.ca_file");
    rc = tls_ctx_new(&tc, &a->https_ctx, &terr);
    if (rc < 0)
        return err_set(e, "HTTPS: %s", terr.msg), rc;
    struct http_server_config hc = reg_agent_http_config(cfg);
    hc.tls = a->https_ctx;
    http_server_init(&a->https, a->loop, &hc, reg_api_handle, &a->api);
    a->https_on = true;
    rc = http_server_listen(&a->https, cfg->client_addr, cfg->https_port, e);
    if (rc < 0)
        return rc;
    log_info("https api on %s:%d (verify_incoming=%s)", cfg->client_addr, cfg->https_port,
             cfg->tls_verify_incoming ? "true" : "false");
    return 0;
}

void reg_agent_tls_close(struct reg_agent *a)
{
    if (a->https_on) {
        a->https_on = false;
        http_server_close(&a->https, on_https_closed);
    } else {
        tls_ctx_free(a->https_ctx); /* built, but the server never started */
        a->https_ctx = NULL;
    }
}

void reg_agent_tls_client_options(const struct reg_settings *cfg, struct http_client_request *r)
{
    static char server_name[300];

    if (!cfg->tls_verify_outgoing && !r->tls)
        return;
    r->tls = true;
    r->tls_skip_verify = false;
    r->tls_ca_file = cfg->tls_ca_file;
    if (cfg->tls_ca_file) {
        int n = snprintf(server_name, sizeof(server_name), "server.%s.consul", cfg->datacenter);
        if (n > 0 && (size_t)n < sizeof(server_name))
            r->tls_server_name = server_name;
    }
    if (cfg->tls_cert_file && cfg->tls_key_file) {
        r->tls_cert_file = cfg->tls_cert_file;
        r->tls_key_file = cfg->tls_key_file;
    }
}
