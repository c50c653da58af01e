/*
 * mesh template's runner: renders each template against the registry, follows its
 * dependencies with blocking queries (watch.h), and on a change waits for quiescence
 * (wait_min, restarted by each further change but never past wait_max after the first), then
 * renders again. A complete render that differs from the file on disk is written atomically
 * (a temporary file in the same directory, then rename) off the loop, and the template's
 * command runs through "sh -c" with a timeout; a command still running when the next write
 * lands runs again once it ends. A failed command is logged; the next change runs it again.
 */
#ifndef MESH_TEMPLATE_RUNNER_H
#define MESH_TEMPLATE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "template/watch.h"

struct tmpl_spec {
    char *src, *dst, *cmd; /* cmd NULL when none */
};

/* Parses "src:dst[:command]" (everything after the second colon is the command). */
int tmpl_spec_parse(const char *s, struct tmpl_spec *out, struct err *e);
void tmpl_spec_clear(struct tmpl_spec *s);

struct tmpl_runner_config {
    const struct tmpl_spec *specs; /* borrowed */
    size_t nspecs;
    struct consul_endpoint registry;  /* borrowed */
    int64_t wait_min_ns, wait_max_ns; /* 0: render at once */
    int64_t cmd_timeout_ns;
    bool once; /* render each template once, run its command, exit */
    bool dry;  /* print to stdout instead of writing; run no command */
};

/*
 * Runs until SIGINT/SIGTERM (or, with once, until every template is written and its command
 * done). SIGHUP re-reads the template files. Returns the exit status: 0, or 1 after a render
 * error or failed command in once mode, with e set when setup failed (a template that does
 * not parse: "in.ctmpl:3:7: ...").
 */
int tmpl_runner_run(const struct tmpl_runner_config *cfg, struct err *e);

#endif
