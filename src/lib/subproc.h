/*
 * Running a short command to completion from a program with no event loop (the CLI): its
 * stdout captured, bounded in size and in time. Blocking: never call it on a loop thread.
 */
#ifndef MESH_LIB_SUBPROC_H
#define MESH_LIB_SUBPROC_H

#include "lib/buf.h"
#include "lib/err.h"

#define SUBPROC_QUIET      1u          /* stderr to /dev/null instead of inherited */
#define SUBPROC_MAX_OUTPUT (16u << 20) /* stdout kept; the rest is read and dropped */

/*
 * Runs argv (argv[0] looked up in PATH; stdin /dev/null) and waits for it, at most timeout_ms,
 * then SIGKILLs it. Its stdout is appended to out when out is not NULL, else inherited. Returns
 * the exit status (0..255, 128 + N for signal N), or -errno with e set (-ETIMEDOUT: killed).
 */
int subproc_run(char *const argv[], struct buf *out, unsigned flags, int timeout_ms, struct err *e);

#endif
