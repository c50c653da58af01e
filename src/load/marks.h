/*
 * Step markers for a running test, so a manual failover (stop a service, start it again) shows
 * its steps on the report's charts as a drill's do. `mesh load run` keeps a marks file named by
 * its pid; `mesh load mark TEXT` appends TEXT to it and sends the run SIGUSR1, on which the run
 * reads the new lines and records each as an event (meshkit.events: {"t_ms", "name"}). A
 * SIGUSR1 without a new line records "mark N".
 */
#ifndef MESH_LOAD_MARKS_H
#define MESH_LOAD_MARKS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* The marks file of run pid ($XDG_RUNTIME_DIR, else /tmp). Caller frees. */
char *load_marks_path(pid_t pid);

/* Reads the lines appended to path since *off (advanced), each an event at t_ms into events;
 * a call that finds none records "mark N" (N: the events so far + 1). Each is printed to out. */
void load_marks_take(const char *path, size_t *off, int64_t t_ms, json_t *events, FILE *out);

/* `mesh load mark [-pid PID] TEXT`: returns the exit code. */
int load_mark_main(int argc, char **argv);

#endif
