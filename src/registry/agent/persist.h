/*
 * Durable storage of the registry state in a data directory: a snapshot of the whole state and
 * an append-only journal of the records committed since (docs/registry-storage.md). Every
 * record is written with write(2) before the API acknowledges the change, so it survives the
 * process being killed; an fdatasync follows each batch of writes off the loop thread, so a
 * power loss can lose the last batch.
 *
 * On open, the snapshot then the journal are replayed. A torn tail (a crash in the middle of a
 * write: a record that fails its length or checksum with nothing valid after it) is truncated
 * and logged; the agent starts with every record before it. A corrupt snapshot, a damaged record
 * followed by intact ones, a journal whose snapshot is missing, or a whole record that the state
 * rejects fails the open instead: none comes from a crash, and nothing is dropped silently.
 *
 * Everything runs on the loop thread. Opening does blocking file I/O there; compaction writes
 * its snapshot in a forked child (reg_persist_maybe_compact).
 */
#ifndef MESH_REGISTRY_PERSIST_H
#define MESH_REGISTRY_PERSIST_H

#include <uv.h>

#include "lib/err.h"
#include "registry/state/state.h"

struct reg_persist;

/*
 * Opens (creating if needed, mode 0700) data_dir, loads its contents into st (which must be
 * empty, fresh from reg_state_init) and installs itself as st's journal (st->journal and
 * st->journal_data), so st must outlive it. A journal grown past the compaction threshold is
 * compacted at once, in the background. loop runs the background fdatasyncs. Returns 0 and
 * sets *out, or -errno (-EINVAL for a corrupt or foreign file) with e naming the file and
 * *out = NULL; st then holds whatever was loaded and should be freed.
 */
int reg_persist_open(struct reg_persist **out, uv_loop_t *loop, const char *data_dir,
                     struct reg_state *st, struct err *e);

/*
 * Once the journal has grown past a threshold (several times the snapshot's size), writes a
 * new snapshot in a forked child (the loop goes on serving) and, when it is in place, cuts the
 * journal down to the records written since. Cheap to call often; the loop must run for the
 * compaction to complete. A journal broken by a write error is repaired by a snapshot taken
 * in place instead.
 */
void reg_persist_maybe_compact(struct reg_persist *p);

/*
 * Writes a new snapshot now (snapshot.json.tmp, fsync, rename, fsync of the directory) and
 * cuts the journal back to its header. Returns 0 or -errno with e set; on failure the previous
 * snapshot and the journal stay valid.
 */
int reg_persist_compact(struct reg_persist *p, struct err *e);

/*
 * How many records, since open, could not be written (the journal was broken by a write or
 * flush error, such as a full disk), with the error (-errno) of the last failure in *err. The
 * API compares the count around a write so that a change that was not persisted is not
 * acknowledged.
 */
uint64_t reg_persist_unwritten(const struct reg_persist *p, int *err);

/*
 * Removes p from st's journal hook, syncs the journal and frees p (NULL is a no-op). If a
 * background fdatasync is still in flight, the file and p are released when it completes, so
 * run the loop (as before any uv_loop_close) after calling this.
 */
void reg_persist_close(struct reg_persist *p);

#endif
