/* `mesh template`: flags and environment into a runner configuration. */
#include "template/template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "lib/duration.h"
#include "lib/flags.h"
#include "lib/log.h"
#include "lib/rlimit.h"
#include "template/runner.h"

#define TEMPLATE_USAGE                                                                             \
    "mesh template [options]\n\n"                                                                  \
    "  Renders consul-template templates from the registry (mesh agent or Consul) and keeps\n"     \
    "  them current: each change rewrites the file (atomically, only when its content\n"           \
    "  changes) and runs its command. See docs/template.md."

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

static int run(struct template_opts *o, struct err *e)
{
    struct tmpl_runner_config cfg = {
        .once = o->once, .dry = o->dry, .cmd_timeout_ns = o->cmd_timeout};
    struct tmpl_spec *specs = xcalloc(o->templates.n + 1, sizeof(*specs));
    size_t n = 0;
    int rc;

    const struct consul_flags registry = {.addr = o->addr, .token = o->token};

    if ((o->wait && (rc = parse_wait(o->wait, &cfg.wait_min_ns, &cfg.wait_max_ns, e)) < 0) ||
        (rc = consul_endpoint_resolve(&cfg.registry, &registry, e)) < 0)
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
    consul_endpoint_free(&cfg.registry);
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
         "The registry's HTTP address ([http[s]://]HOST[:PORT]); default $CONSUL_HTTP_ADDR,\n"
         "else " CONSUL_DEFAULT_ADDR ". HTTPS settings: docs/template.md.",
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
        /* one descriptor per query in flight and per command: Go raises it for consul-template */
        rlimit_nofile_raise();
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
