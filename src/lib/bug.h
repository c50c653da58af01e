/*
 * Invariants, stated in code (haproxy's BUG_ON, redis's serverAssert).
 *
 * MESH_BUG_ON(cond) says `cond` must never be true. In debug and fuzz builds (no NDEBUG, or
 * MESH_STRICT) a true condition prints file:line and the condition and aborts, so a broken
 * assumption fails loudly in tests and under the fuzzer instead of corrupting memory later. In
 * release builds it logs the same line once per call site and evaluates to true, so the caller
 * can take its safe way out (close the connection, refuse the request):
 *
 *     if (MESH_BUG_ON(c->write_pending))
 *         return conn_close(c);
 *
 * The condition is evaluated exactly once in every build; keep it free of side effects anyway.
 */
#ifndef MESH_LIB_BUG_H
#define MESH_LIB_BUG_H

#include <stdbool.h>

#if !defined(NDEBUG) || defined(MESH_STRICT)
#define MESH_BUG_FATAL 1
#else
#define MESH_BUG_FATAL 0
#endif

/* Reports a broken invariant; aborts when `fatal`. `*reported` makes the report once per site. */
void mesh_bug(const char *file, int line, const char *cond, bool fatal, bool *reported);

#define MESH_BUG_ON(cond)                                                                          \
    __extension__({                                                                                \
        bool mesh_bug_hit_ = (cond) ? true : false;                                                \
        if (__builtin_expect(mesh_bug_hit_, 0)) {                                                  \
            static bool mesh_bug_reported_;                                                        \
            mesh_bug(__FILE__, __LINE__, #cond, MESH_BUG_FATAL, &mesh_bug_reported_);              \
        }                                                                                          \
        mesh_bug_hit_;                                                                             \
    })

#endif
