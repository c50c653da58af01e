/*
 * The CLI side of mesh pm (src/pm only): finding the daemon's directory, one request over the
 * control socket (starting the daemon when nothing answers), and the logs command, which reads
 * the log files directly.
 */
#ifndef MESH_PM_CLIENT_H
#define MESH_PM_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"

/*
 * Sends req (borrowed) to the daemon of home and waits for its reply (blocking: the CLI has no
 * loop). With autostart, a daemon is started when nothing answers. Returns 0 with *reply (new
 * reference; an {"error": ...} reply is turned into -EINVAL with e set), or -errno with e.
 */
int pm_client_request(const char *home, const json_t *req, bool autostart, json_t **reply,
                      struct err *e);

/* Starts a detached daemon for home and waits (bounded) until it answers. 0 or -errno. */
int pm_client_spawn_daemon(const char *home, struct err *e);

/* `mesh pm logs NAME [-lines N] [-f] [-err|-out]`; returns the exit code. */
int pm_cmd_logs(const char *home, int argc, char **argv);

#endif
