/* `mesh lb`: the HTTP load balancer's entry point (docs/lb.md). */
#ifndef MESH_LB_LB_MAIN_H
#define MESH_LB_LB_MAIN_H

/*
 * Runs `mesh lb` with argv after "lb" (argv[0] is "lb"). Returns the exit status: 0 after -help
 * or a drained shutdown (SIGTERM, SIGINT), 1 on a configuration or startup error (printed to
 * stderr as "mesh lb: <message>").
 */
int lb_main(int argc, char **argv);

#endif
