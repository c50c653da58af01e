/*
 * Active health checks of `mesh lb`, on the control loop: every server of the backend's current
 * set gets "GET <check_path>" every check_inter (the first after a random offset, so checks of
 * many servers spread out), on a fresh connection with "Connection: close", within
 * check_timeout. 2xx and 3xx pass. After check_fall consecutive failures an UP server goes DOWN;
 * after check_rise consecutive passes a DOWN server (failed checks or passive ejection by the
 * workers) comes back UP. DRAIN and MAINT servers keep their admin state; their checks still
 * run and still record status. Each check writes the server's check_status (HAProxy's "L7OK",
 * "L7STS", "L4CON", "L4TOUT", "L7TOUT", "L7RSP", "SOCKERR"), check_code, check_duration_ms and
 * the chkfail / chkdown counters.
 *
 * With checks off (cfg->check false), a server ejected by the workers comes back after
 * cfg->eject_for instead.
 */
#ifndef MESH_LB_HEALTH_H
#define MESH_LB_HEALTH_H

#include <uv.h>

#include "lb/config.h"
#include "lb/lb.h"

struct lb_health;

/*
 * Starts checking the servers of b's current set on loop (the control thread's). The settings
 * of cfg are copied; loop and b are borrowed until lb_health_free.
 */
struct lb_health *lb_health_new(uv_loop_t *loop, const struct lb_config *cfg, struct lb_backend *b);

/*
 * Follows the backend's current set: servers new to it get checks, servers gone from it stop
 * being checked (and the reference on them is dropped). Call after each lb_backend_publish.
 */
void lb_health_sync(struct lb_health *h);

/* Applies the check settings of cfg (copied), from the next check of each server on. */
void lb_health_configure(struct lb_health *h, const struct lb_config *cfg);

/*
 * Stops every check and frees h. The checks' handles finish closing on the loop: run it until
 * it ends before closing it.
 */
void lb_health_free(struct lb_health *h);

#endif
