/*
 * The data path: worker threads, each with its own libuv loop and its own listening socket on
 * the frontend address (SO_REUSEPORT), proxying HTTP/1.1 requests to the backend's servers over
 * pools of keep-alive upstream connections. Whichever worker accepts a connection, it goes to
 * the worker with the fewest client connections.
 */
#ifndef MESH_LB_WORKERS_H
#define MESH_LB_WORKERS_H

#include "lib/err.h"
#include "lb/config.h"
#include "lb/lb.h"

struct lb_workers;

/*
 * Binds the frontend (in every worker, so a bind error is reported here) and starts
 * cfg->workers threads. With one worker and a loop (the caller's), none: the worker runs on
 * loop, on this thread, and its io_uring ring is set up here, so the caller calls
 * pollsock_loop_close(loop) once uv_run(loop) has returned (after lb_workers_join, or after
 * this call failed). loop may be NULL: a thread even for one worker. cfg, loop, backend and
 * frontend are borrowed until lb_workers_join returns. Returns 0 or a negative error with e
 * set ("listen 0.0.0.0:8080: address already in use").
 */
int lb_workers_start(struct lb_workers **out, const struct lb_config *cfg, uv_loop_t *loop,
                     struct lb_backend *backend, struct lb_counters *frontend, struct err *e);

/*
 * Graceful stop: workers stop accepting, answer the requests in flight (keep-alive
 * connections are closed after their current response), then their loops end. Callable from
 * any thread.
 */
void lb_workers_drain(struct lb_workers *w);

/* Waits for every worker thread to end and frees w (with one worker: after uv_run(loop)). */
void lb_workers_join(struct lb_workers *w);

#endif
