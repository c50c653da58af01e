/*
 * Human-readable error detail for setup and input-validation paths. Functions return 0 or a
 * negative errno and, when given a struct err, fill it with a message such as
 * "bind 127.0.0.1:8500: address already in use". Async paths report an int status instead.
 */
#ifndef MESH_LIB_ERR_H
#define MESH_LIB_ERR_H

#include <errno.h>

struct err {
    char msg[512];
};

/* Writes the message (truncating if needed). e may be NULL. */
void err_setf(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * err_setf, evaluating to -EINVAL: `return err_set(e, "...")`. A macro so that the negative value
 * shows at each call site, to a reader and to clang's analyzer, which does not follow variadic
 * calls and would otherwise take any return value as possible (and with it a success path that
 * leaves results unset).
 */
#define err_set(e, ...)                                                                            \
    __extension__({                                                                                \
        err_setf((e), __VA_ARGS__);                                                                \
        -EINVAL;                                                                                   \
    })

/* Prefixes the existing message: "prefix: old message". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
