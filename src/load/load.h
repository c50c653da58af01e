/* `mesh load`: Artillery-compatible load testing. */
#ifndef MESH_LOAD_LOAD_H
#define MESH_LOAD_LOAD_H

/* `mesh load run|report ...`: argv[0] is "load". Returns the exit code. */
int load_main(int argc, char **argv);

/*
 * `mesh load run [flags] FILE.yml`: argv[0] is "run". Exit codes: 0 done, 1 an ensure check
 * failed, 2 bad flags, a bad or unsupported scenario file, or an unusable target.
 */
int load_run_main(int argc, char **argv);

#endif
