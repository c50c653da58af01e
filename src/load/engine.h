/*
 * The load engine: worker threads, each with its own libuv loop, firing virtual users at the
 * scheduled instants (open loop) or, in pool mode, keeping N connections busy back to back
 * (closed loop, like wrk). Virtual users run their scenario's flow over one keep-alive
 * connection of their own.
 */
#ifndef MESH_LOAD_ENGINE_H
#define MESH_LOAD_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "lib/err.h"
#include "load/script.h"
#include "load/stats.h"

struct load_engine;

struct load_engine_opts {
    const struct load_script *script; /* borrowed; prepared by load_engine_new */
    int workers;                      /* threads, >= 1 */
    int pool;                         /* > 0: pool mode with this many connections */
    bool insecure;                    /* https: accept any certificate (-k) */
    uv_loop_t *main_loop;             /* told through an async handle when all workers end */
    void (*on_done)(void *data);      /* runs on main_loop */
    void *data;
};

/*
 * Resolves the target (blocking getaddrinfo: call before any loop runs), builds the static
 * requests and the workers. Returns NULL with e set when the target cannot be resolved.
 * script is modified: requests without templates get their bytes prebuilt.
 */
struct load_engine *load_engine_new(struct load_script *script, const struct load_engine_opts *opts,
                                    struct err *e);
/*
 * The script's before flow, when it has one, run as Artillery runs it before the phases: once,
 * by one user on this thread, its requests left out of the measurements. What its user's
 * variables hold at the end (captures included) is where every later user starts, under
 * config.variables and payload rows. Returns 0, or -EIO with e naming the error that failed
 * it: then Artillery stops, and so does the run.
 */
int load_engine_before(struct load_engine *eng, struct err *e);
/* After load_engine_join: the script's after flow, when it has one, run the same way from the
 * variables before left. 0, or -EIO with e naming the error that failed it. */
int load_engine_after(struct load_engine *eng, struct err *e);
/* Starts the worker threads (on the thread of main_loop, before it runs); the run's clock
 * starts now. */
void load_engine_start(struct load_engine *eng);
/* Asks every worker to stop at once (Ctrl-C): in-flight requests are abandoned. */
void load_engine_stop(struct load_engine *eng);
/* After on_done: joins the threads. */
void load_engine_join(struct load_engine *eng);
void load_engine_free(struct load_engine *eng);

/* Monotonic ns at the start, and wall-clock ms at the start. */
uint64_t load_engine_start_ns(const struct load_engine *eng);
int64_t load_engine_start_epoch_ms(const struct load_engine *eng);
size_t load_engine_workers(const struct load_engine *eng);
/* Worker i's stats (lock them to read while running). */
struct load_stats *load_engine_stats(struct load_engine *eng, size_t i);

#endif
