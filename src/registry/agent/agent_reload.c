/*
 * Services from config files, registered at start and again on reload (SIGHUP, `PUT
 * /v1/agent/reload`, `mesh reload`), as Consul's agent does: a reload reads the same flags and
 * files again, registers the services they define now, deregisters those they no longer define,
 * and applies the log level. What cannot change in a running agent (ports, node name, data dir,
 * server mode, ACL and TLS settings) is logged as "restart to apply". A file that fails to load
 * changes nothing: the agent keeps its running configuration and the error names file:line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/log.h"
#include "lib/smap.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/decode.h"

/*
 * The key path of the field a decode error names ("... Go struct field CheckType.Interval of
 * type ..."), so the error points at its line: the service's own key, else one of its checks'.
 */
static void locate_decode_error(const struct reg_config_service *cs, const char *msg, char *out,
                                size_t n)
{
    const char *f = strstr(msg, "Go struct field ");
    char field[64], candidate[160];

    snprintf(out, n, "%s", cs->path);
    if (!f)
        return;
    f += strlen("Go struct field ");
    const char *end = strchr(f, ' ');
    const char *dot = memrchr(f, '.', end ? (size_t)(end - f) : strlen(f));
    if (!end || !dot || (size_t)(end - dot - 1) >= sizeof(field))
        return;
    snprintf(field, sizeof(field), "%.*s", (int)(end - dot - 1), dot + 1);
    int base = config_locate(cs->doc, cs->path);
    for (int i = -2; i < 16; i++) {
        if (i == -2)
            snprintf(candidate, sizeof(candidate), "%s.%s", cs->path, field);
        else if (i == -1)
            snprintf(candidate, sizeof(candidate), "%s.check.%s", cs->path, field);
        else
            snprintf(candidate, sizeof(candidate), "%s.checks[%d].%s", cs->path, i, field);
        if (config_locate(cs->doc, candidate) != base) {
            snprintf(out, n, "%s", candidate);
            return;
        }
    }
}

static void regs_free(struct reg_service_reg *regs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reg_service_reg_free(&regs[i]);
    free(regs);
}

/* Decodes every service of cfg. Returns a heap array of cfg->nservices, or NULL with e set to
 * "file:line: message" (nothing registered). */
static struct reg_service_reg *decode_all(const struct reg_settings *cfg, struct err *e)
{
    struct reg_decode_opts opts = {.allow_scripts = cfg->enable_script_checks ||
                                                    cfg->enable_local_script_checks};
    struct reg_service_reg *regs = xcalloc(cfg->nservices ? cfg->nservices : 1, sizeof(*regs));

    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct reg_config_service *cs = &cfg->services[i];
        struct err derr = {{0}};
        if (reg_decode_service(cs->def, &opts, &regs[i], &derr) < 0) {
            char path[160];
            locate_decode_error(cs, derr.msg, path, sizeof(path));
            config_report(cs->doc, path, e, "%s", derr.msg);
            regs_free(regs, i + 1);
            return NULL;
        }
    }
    return regs;
}

int reg_agent_config_services_apply(struct reg_agent *a, const struct reg_settings *before,
                                    const struct reg_settings *cfg, struct err *e)
{
    struct reg_service_reg *now = decode_all(cfg, e);
    if (!now)
        return -EINVAL;
    struct smap keep = SMAP_INIT;
    for (size_t i = 0; i < cfg->nservices; i++) {
        reg_agent_register_service(a, &now[i], true);
        smap_put(&keep, now[i].svc.id, &keep);
    }
    if (before) {
        struct reg_service_reg *old = decode_all(before, NULL);
        for (size_t i = 0; old && i < before->nservices; i++) {
            const char *id = old[i].svc.id;
            if (!smap_get(&keep, id) && reg_agent_service_deregister(a, id) == 0)
                log_info("reload: deregistered service %s (no longer in the configuration)", id);
        }
        if (old)
            regs_free(old, before->nservices);
    }
    smap_free(&keep);
    regs_free(now, cfg->nservices);
    return 0;
}

static bool str_changed(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Names the settings that differ and only take effect at start. */
static void warn_restart_needed(const struct reg_settings *run, const struct reg_settings *cfg)
{
    struct {
        const char *name;
        bool changed;
    } fixed[] = {
        {"server", run->server != cfg->server},
        {"node_name", str_changed(run->node_name, cfg->node_name)},
        {"datacenter", str_changed(run->datacenter, cfg->datacenter)},
        {"bind_addr", str_changed(run->bind_addr, cfg->bind_addr)},
        {"client_addr", str_changed(run->client_addr, cfg->client_addr)},
        {"ports.http", run->http_port != cfg->http_port},
        {"ports.https", run->https_port != cfg->https_port},
        {"ports.dns", run->dns_port != cfg->dns_port},
        {"domain", str_changed(run->domain, cfg->domain)},
        {"limits", run->http_max_conns != cfg->http_max_conns ||
                       run->http_max_conns_per_client != cfg->http_max_conns_per_client ||
                       run->http_max_unsent_mb != cfg->http_max_unsent_mb ||
                       run->http_write_timeout_ns != cfg->http_write_timeout_ns},
        {"data_dir", str_changed(run->data_dir, cfg->data_dir)},
        {"acl.enabled", run->acl_enabled != cfg->acl_enabled},
        {"acl.default_policy", str_changed(run->acl_default_policy, cfg->acl_default_policy)},
        {"tls", str_changed(run->tls_cert_file, cfg->tls_cert_file) ||
                    str_changed(run->tls_key_file, cfg->tls_key_file) ||
                    str_changed(run->tls_ca_file, cfg->tls_ca_file)},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i].changed)
            log_warn("reload: %s changed; restart the agent to apply it", fixed[i].name);
}

#define SWAP(x, y)                                                                                 \
    do {                                                                                           \
        __typeof__(x) swap_tmp_ = (x);                                                             \
        (x) = (y);                                                                                 \
        (y) = swap_tmp_;                                                                           \
    } while (0)

int reg_agent_reload(struct reg_agent *a, struct err *e)
{
    struct reg_settings cfg;
    enum log_level lvl;

    memset(&cfg, 0, sizeof(cfg));
    int rc = reg_agent_config_load(&cfg, a->argc, a->argv, e);
    if (rc > 0) /* FLAGS_HELP: cannot happen with the arguments the agent started with */
        rc = err_set(e, "the agent's arguments no longer parse");
    if (rc == 0)
        rc = reg_agent_config_services_apply(a, &a->cfg, &cfg, e);
    if (rc < 0) {
        reg_agent_config_free(&cfg);
        return -EINVAL;
    }
    warn_restart_needed(&a->cfg, &cfg);
    if (cfg.log_level && log_level_parse(cfg.log_level, &lvl))
        log_min_level = lvl;
    /* The running configuration takes the new service definitions (and the documents their
     * error positions point into), log level and dns_config; the old ones go with cfg. */
    SWAP(a->cfg.services, cfg.services);
    SWAP(a->cfg.nservices, cfg.nservices);
    SWAP(a->cfg.docs, cfg.docs);
    SWAP(a->cfg.ndocs, cfg.ndocs);
    SWAP(a->cfg.log_level, cfg.log_level);
    /* dns_config applies to the next query, as Consul reloads it. */
    a->cfg.dns_only_passing = cfg.dns_only_passing;
    a->cfg.dns_a_record_limit = cfg.dns_a_record_limit;
    a->cfg.dns_udp_answer_limit = cfg.dns_udp_answer_limit;
    a->cfg.dns_enable_truncate = cfg.dns_enable_truncate;
    a->cfg.dns_node_meta_txt = cfg.dns_node_meta_txt;
    a->cfg.dns_node_ttl_ns = cfg.dns_node_ttl_ns;
    a->cfg.dns_service_ttl_ns = cfg.dns_service_ttl_ns;
    reg_agent_config_free(&cfg);
    log_info("reload: configuration reloaded (%zu services from config files)", a->cfg.nservices);
    return 0;
}
