/*
 * Whole-file helpers: write all of a buffer, read all of a descriptor, and replace a file
 * atomically (temporary file next to it, then rename), so a reader or a crash sees the old
 * content or the new, never a part. Blocking: call them off a loop thread (uv_queue_work) when
 * the file may be large or the disk slow.
 */
#ifndef MESH_LIB_FILE_H
#define MESH_LIB_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/err.h"

/* Writes all n bytes, retrying short writes and EINTR. Returns 0 or -errno. */
int file_write_all(int fd, const void *p, size_t n);

/* Appends fd's whole content, from offset 0, to out (pread: fd's offset does not move; out stays
 * NUL-terminated). Returns 0 or -errno. */
int file_read_all(int fd, struct buf *out);

/* Appends what fd gives until its end (read: a pipe, a socket) to out, which stays
 * NUL-terminated. Returns 0 or -errno. */
int file_read_stream(int fd, struct buf *out);

/*
 * Makes dir and the directories above it that do not exist yet (mkdir -p), each with mode
 * (masked by the umask). Returns 0 (also when there is nothing to make), or -errno: -ENOTDIR
 * when something other than a directory (or a symbolic link to one) stands at dir or above
 * it.
 */
int file_mkdir_all(const char *dir, mode_t mode);
/* file_mkdir_all with e set for the user, naming the path that failed: "PATH: exists and is not a
 * directory" (the file in the way, dir or one above it), else "mkdir PATH: reason". */
int file_mkdir_all_err(const char *dir, mode_t mode, struct err *e);

/* file_mkdir_all of the directory path's last component is in ("a/b" for "a/b/c"). */
int file_mkdir_parents(const char *path, mode_t mode);

#define FILE_SYNC 1u /* fsync the data before the rename: it survives a power loss */

/*
 * Replaces path with data[len]: a uniquely named temporary file in path's directory, written in
 * full with permissions mode (not masked by the umask), fsynced with FILE_SYNC, then renamed over
 * path. Returns 0, or -errno with e (may be NULL) set to "write PATH: reason"; the temporary file
 * is removed on failure. Safe to call from any thread.
 */
int file_replace(const char *path, const void *data, size_t len, mode_t mode, unsigned flags,
                 struct err *e);

/*
 * Writes this process's PID and a newline to path, replacing it whole (file_replace, mode 0644),
 * so a reader never sees a half-written number. Returns 0 or -errno with e set to
 * "pid file PATH: reason".
 */
int file_write_pid(const char *path, struct err *e);

#endif
