/*
 * `mesh test-load basic|stress|failover`: the original's artillery-basic, artillery-stress and
 * artillery-failover. Runs the scenario file with `mesh load run` against the cluster's load
 * balancer, whatever target the file names, and leaves the terminal to it (the process is
 * replaced, so its live line, summary and exit status are the command's own).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"

#define TEST_LOAD_USAGE                                                                            \
    "mesh test-load basic|stress|failover [options] [-- LOAD-RUN-FLAGS...]\n\n"                    \
    "  Runs scenarios/NAME.yml (beside the binary's directory) with 'mesh load run' against\n"     \
    "  the cluster's load balancer. Flags after -- go to 'mesh load run' (for example\n"           \
    "  -- -e quick, or -- --report run.html)."

#define TEST_LOAD_MAX_ARGS 64

static const char *const scenarios[] = {"basic", "stress", "failover"};

/* scenarios/NAME.yml beside the directory of the mesh binary (build/mesh -> scenarios/). */
static int scenario_path(const struct cluster_state *s, const char *name, char *out, size_t len,
                         struct err *e)
{
    char dir[PATH_MAX], cand[PATH_MAX + 64];

    snprintf(dir, sizeof(dir), "%s", s->mesh);
    snprintf(cand, sizeof(cand), "%s/scenarios/%s.yml", dirname(dirname(dir)), name);
    if (!realpath(cand, out) || strlen(out) >= len)
        return err_set(e, "scenario %s: %s (give -scenario FILE)", cand,
                       strerror(errno ? errno : ENAMETOOLONG));
    return 0;
}

int cli_test_load(int argc, char **argv)
{
    struct cluster_cmd c = {0};
    char *scenario = NULL;
    struct flag flags[] = {
        CLUSTER_CMD_FLAGS(&c),
        {.name = "scenario",
         .type = FLAG_STRING,
         .ptr = &scenario,
         .help = "The scenario file (default scenarios/NAME.yml beside the binary's directory)."},
    };
    char path[PATH_MAX], target[128];
    char *av[TEST_LOAD_MAX_ARGS + 8];
    struct cluster_state s;
    struct err e;
    int own = argc, status = 1;
    size_t k = 0;
    bool known = false;

    /* Everything after -- is the load tester's. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            own = i;
            break;
        }
    }
    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags), TEST_LOAD_USAGE, own, argv, 1, &status, &s))
        goto out;
    status = 1;
    for (size_t i = 0; i < ARRAY_LEN(scenarios); i++)
        known = known || strcmp(c.arg, scenarios[i]) == 0;
    if (!known && !scenario) {
        fprintf(stderr, "%s: unknown scenario \"%s\" (basic, stress or failover)\n", argv[0],
                c.arg);
        goto out;
    }
    if (argc - own - 1 > TEST_LOAD_MAX_ARGS) {
        fprintf(stderr, "%s: at most %d flags after --\n", argv[0], TEST_LOAD_MAX_ARGS);
        goto out;
    }
    if (scenario)
        snprintf(path, sizeof(path), "%s", scenario);
    else if (scenario_path(&s, c.arg, path, sizeof(path), &e) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    snprintf(target, sizeof(target), "http://%s:%d", cluster_lb_host(&s), s.lb_port);
    av[k++] = s.mesh;
    av[k++] = "load";
    av[k++] = "run";
    av[k++] = "--target";
    av[k++] = target;
    for (int i = own + 1; i < argc; i++)
        av[k++] = argv[i];
    av[k++] = path;
    av[k] = NULL;
    fflush(stdout);
    execv(s.mesh, av);
    fprintf(stderr, "%s: run %s: %s\n", argv[0], s.mesh, strerror(errno));
out:
    free(scenario);
    free(c.run_dir);
    return status;
}
