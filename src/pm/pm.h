/*
 * mesh pm: the process supervisor (PM2's job). One daemon per node keeps a table of apps, each
 * with N instances, restarts what crashes with PM2's exponential backoff, stops gracefully,
 * rotates logs, and saves its table so a new daemon re-adopts (or restarts) the processes.
 */
#ifndef MESH_PM_PM_H
#define MESH_PM_PM_H

/* `mesh pm [-home DIR] COMMAND ...`; returns the process exit code. */
int pm_main(int argc, char **argv);

#endif
