/* What `mesh pm ls` and `describe` print, from the daemon's JSON rows (pure, unit-tested). */
#ifndef MESH_PM_TABLE_H
#define MESH_PM_TABLE_H

#include <jansson.h>

#include "lib/buf.h"

/*
 * Appends an aligned table of rows (the "processes" array of an ls reply): columns name, id,
 * instance, pid, status, restarts, uptime, cpu, memory; two spaces between columns.
 */
void pm_format_ls(const json_t *rows, struct buf *out);

/* Appends "key: value" blocks, one per instance, from describe's rows. */
void pm_format_describe(const json_t *rows, struct buf *out);

#endif
