/* `mesh template`: flags and environment into a runner configuration. */
#include "template/template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/flags.h"
#include "lib/log.h"
#include "lib/url.h"
#include "template/runner.h"

#define TEMPLATE_USAGE                                                                             \
    "mesh template [options]\n\n"                                                                  \
    "  Renders consul-template templates from the registry (mesh agent or Consul) and keeps\n"     \
    "  them current: each change rewrites the file (atomically, only when its content\n"           \
    "  changes) and runs its command. See docs/template.md."

#define DEFAULT_ADDR "127.0.0.1:8500"

struct template_opts {
    struct flag_list templates;
    bool once, dry;
    char *wait, *addr, *token, *log_level;
    int64_t cmd_timeout;
};

/* "min[:max]": max defaults to 4 x min, as consul-template. 0 or -EINVAL with e set. */
static int parse_wait(const char *s, int64_t *min, int64_t *max, struct err *e)
{
    const char *colon = strchr(s, ':');
    struct str a = colon ? (struct str){s, (size_t)(colon - s)} : str_from(s);

    if (duration_parse(a, min) < 0 || (colon && duration_parse(str_from(colon + 1), max) < 0))
        return err_set(e, "invalid value \"%s\" for flag -wait: expected MIN[:MAX] durations", s);
    if (!colon) /* saturated: 4 x MIN passes int64 from 640 000 hours */
        *max = *min > INT64_MAX / 4 ? INT64_MAX : *min * 4;
    if (*max < *min)
        return err_set(e, "invalid value \"%s\" for flag -wait: max is less than min", s);
    return 0;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Go's strconv.ParseBool, as consul-template reads CONSUL_HTTP_SSL and _SSL_VERIFY. */
static bool env_bool(const char *name, bool def)
{
    const char *v = env_nonempty(name);

    if (!v)
        return def;
    if (strcmp(v, "1") == 0 || strcasecmp(v, "t") == 0 || strcasecmp(v, "true") == 0)
        return true;
    if (strcmp(v, "0") == 0 || strcasecmp(v, "f") == 0 || strcasecmp(v, "false") == 0)
        return false;
    return def;
}

/* The registry address: -consul-addr, else CONSUL_HTTP_ADDR, else 127.0.0.1:8500; https and
 * its settings from consul-template's environment (CONSUL_HTTP_SSL, CONSUL_CACERT, ...). */
static int parse_conn(struct template_opts *o, struct tmpl_conn *c, struct err *e)
{
    const char *env = getenv("CONSUL_HTTP_ADDR");
    const char *addr = o->addr && *o->addr ? o->addr : env && *env ? env : DEFAULT_ADDR;
    const char *scheme = strstr(addr, "://");
    struct url_parts u;

    if (url_split(addr, &u) < 0)
        return err_set(e, "invalid registry address \"%s\": expected [http[s]://]HOST:PORT", addr);
    /* a bare HOST:PORT is https when CONSUL_HTTP_SSL says so; a scheme wins */
    c->tls = u.https || (!scheme && env_bool("CONSUL_HTTP_SSL", false));
    /* "host" alone means Consul's port, not HTTP's */
    if (!strchr(addr + (scheme ? scheme - addr + 3 : 0), ':'))
        u.port = c->tls ? 8501 : 8500;
    snprintf(c->host, sizeof(c->host), "%s", strcmp(u.host, "localhost") ? u.host : "127.0.0.1");
    c->port = u.port;
    c->cert_file = env_nonempty("CONSUL_CLIENT_CERT");
    c->key_file = env_nonempty("CONSUL_CLIENT_KEY");
    c->server_name = env_nonempty("CONSUL_TLS_SERVER_NAME");
    /* the certificate is for the name given, not for the address it is reached at */
    if (!c->server_name && strcmp(u.host, "localhost") == 0)
        c->server_name = "localhost";
    c->skip_verify = !env_bool("CONSUL_HTTP_SSL_VERIFY", true);
    c->addr = addr;
    url_parts_free(&u);
    if (!(o->token && *o->token)) {
        const char *t = getenv("CONSUL_HTTP_TOKEN");
        free(o->token);
        o->token = t && *t ? xstrdup(t) : NULL;
    }
    /* the token goes into a header line: a line break in it would forge headers */
    if (o->token && strpbrk(o->token, "\r\n"))
        return err_set(e, "invalid token: it contains a line break");
    c->token = o->token;
    c->ca_file = env_nonempty("CONSUL_CACERT");
    return 0;
}

static int run(struct template_opts *o, struct err *e)
{
    struct tmpl_runner_config cfg = {
        .once = o->once, .dry = o->dry, .cmd_timeout_ns = o->cmd_timeout};
    struct tmpl_spec *specs = xcalloc(o->templates.n + 1, sizeof(*specs));
    size_t n = 0;
    int rc;

    if ((o->wait && (rc = parse_wait(o->wait, &cfg.wait_min_ns, &cfg.wait_max_ns, e)) < 0) ||
        (rc = parse_conn(o, &cfg.conn, e)) < 0)
        goto done;
    if (o->templates.n == 0) {
        rc = err_set(e, "no templates: give -template \"in.ctmpl:out.cfg[:command]\"");
        goto done;
    }
    for (; n < o->templates.n; n++)
        if ((rc = tmpl_spec_parse(o->templates.items[n], &specs[n], e)) < 0)
            goto done;
    cfg.specs = specs;
    cfg.nspecs = n;
    rc = tmpl_runner_run(&cfg, e);
done:
    for (size_t i = 0; i < n; i++)
        tmpl_spec_clear(&specs[i]);
    free(specs);
    return rc;
}

int template_main(int argc, char **argv)
{
    struct template_opts o = {.cmd_timeout = 30 * DURATION_SEC};
    struct flag flags[] = {
        {"template", FLAG_STRING_LIST, &o.templates,
         "SOURCE:DESTINATION[:COMMAND]: render SOURCE into DESTINATION and run COMMAND\n"
         "(through sh -c) after each change. Repeatable.",
         false},
        {"consul-addr", FLAG_STRING, &o.addr,
         "The registry's HTTP address ([http[s]://]HOST:PORT); default $CONSUL_HTTP_ADDR,\n"
         "else " DEFAULT_ADDR ".",
         false},
        {"token", FLAG_STRING, &o.token, "ACL token; default $CONSUL_HTTP_TOKEN.", false},
        {"wait", FLAG_STRING, &o.wait,
         "MIN[:MAX] quiescence: after a change wait until MIN passes with no further\n"
         "change, but no longer than MAX (default 4 x MIN) after the first.",
         false},
        {"once", FLAG_BOOL, &o.once, "Render each template once, run its command, and exit.",
         false},
        {"dry", FLAG_BOOL, &o.dry,
         "Print \"> DESTINATION\" and the content to stdout instead of writing; run no\n"
         "command.",
         false},
        {"command-timeout", FLAG_DURATION, &o.cmd_timeout,
         "Kill a command that runs longer than this.", false},
        {"log-level", FLAG_STRING, &o.log_level, "debug, info, warn or error.", false},
    };
    int first, status = 1;
    struct err e;
    enum log_level level = LOG_INFO;

    log_set_component("template");
    int rc = flags_parse(flags, ARRAY_LEN(flags), argc - 1, argv + 1, &first, &e);
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, TEMPLATE_USAGE, flags, ARRAY_LEN(flags));
        status = 0;
    } else if (rc < 0) {
        fprintf(stderr, "%s\n", e.msg);
        flags_usage(stderr, TEMPLATE_USAGE, flags, ARRAY_LEN(flags));
    } else if (first != argc - 1) {
        fprintf(stderr, "mesh template: unexpected argument \"%s\"\n", argv[first + 1]);
    } else if (o.log_level && !log_level_parse(o.log_level, &level)) {
        fprintf(stderr, "invalid value \"%s\" for flag -log-level\n", o.log_level);
    } else if (o.cmd_timeout <= 0) {
        fprintf(stderr, "invalid value for flag -command-timeout: must be positive\n");
    } else {
        log_min_level = level;
        status = run(&o, &e);
        if (status < 0) {
            fprintf(stderr, "mesh template: %s\n", e.msg);
            status = 1;
        }
    }
    flag_list_free(&o.templates);
    free(o.wait);
    free(o.addr);
    free(o.token);
    free(o.log_level);
    return status;
}
