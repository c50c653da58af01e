/*
 * An Artillery processor (config.processor: a JavaScript module) run by a Node.js helper
 * process, one per worker loop, so hooks and function steps behave as they do under Artillery:
 * require and npm modules work, console.log prints, context.vars persists per virtual user.
 * The helper's script is assets/processor.js; the two ends speak one JSON object per line over
 * a socket pair, and everything queued in one loop iteration leaves in one write (batching).
 * Only scripts that name a processor start one; requests without hooks never touch it.
 */
#ifndef MESH_LOAD_PROCESSOR_H
#define MESH_LOAD_PROCESSOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"

struct load_proc;

struct load_proc_opts {
    const char *path; /* the processor module; resolved by Node from the current directory */
    /* Runs on the loop with what events.emit recorded, [[type, name, value], ...] (borrowed):
     * type "counter", "histogram", "rate" or "error". */
    void (*on_metrics)(void *data, const json_t *list);
    void *data;
};

/*
 * Starts the helper on loop (which must not be running: this runs it until the module has
 * loaded, bounded in time). Returns 0 with *out set, or -errno with e saying why: Node.js
 * missing (`node` not on PATH, or MESH_LOAD_NODE), or the module failing to load.
 */
int load_proc_start(uv_loop_t *loop, const struct load_proc_opts *o, struct load_proc **out,
                    struct err *e);

/* Whether the module exports a function of that name. */
bool load_proc_has(const struct load_proc *p, const char *name);

/*
 * Queues msg (stolen; its "id" is set here) for the helper. cb runs later on the loop with the
 * reply (borrowed), or with {"error": "..."} when the helper is gone. Returns the call's id,
 * never 0, for load_proc_cancel.
 */
uint64_t load_proc_call(struct load_proc *p, json_t *msg,
                        void (*cb)(void *data, const json_t *reply), void *data);
/* The call's cb will not run (its caller is gone). */
void load_proc_cancel(struct load_proc *p, uint64_t id);
/* Virtual user vu has ended: the helper forgets its context. */
void load_proc_end_vu(struct load_proc *p, uint64_t vu);

/* Closes the channel, lets the helper exit (killed after a few seconds), runs loop until its
 * handles are closed, frees p. NULL is fine. */
void load_proc_free(struct load_proc *p);

#endif
