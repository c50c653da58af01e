/*
 * Human-readable error detail for setup and input-validation paths. Functions return 0 or a
 * negative errno and, when given a struct err, fill it with a message such as
 * "bind 127.0.0.1:8500: address already in use". Async paths report an int status instead.
 */
#ifndef MESH_LIB_ERR_H
#define MESH_LIB_ERR_H

struct err {
    char msg[512];
};

/* Writes the message (truncating if needed). e may be NULL. Returns -EINVAL for convenience. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the existing message: "prefix: old message". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
