/*
 * The process's limit on open files. A daemon holds a descriptor per connection, child, watch
 * or timer file, and many distributions start processes with a soft limit of 1024 under a hard
 * limit far above it (systemd's 1024:524288): the soft one is the program's to raise, as Go's
 * runtime does for every Go program (Consul, consul-template), node for PM2, and nginx with
 * worker_rlimit_nofile.
 */
#ifndef MESH_LIB_RLIMIT_H
#define MESH_LIB_RLIMIT_H

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit and logs what it did at debug level. Children
 * started after it inherit the raised limit. Returns 0, or -errno when the limit could not be
 * read or set (it stays as it was; the caller may go on).
 */
int rlimit_nofile_raise(void);

#endif
