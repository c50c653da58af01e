/*
 * Logging: one line per event on stderr (or split, see log_set_split), "ts level component[pid]
 * message".
 * The level is tested before the arguments are evaluated.
 */
#ifndef MESH_LIB_LOG_H
#define MESH_LIB_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
    /* count sentinel */
    LOG_LEVEL_COUNT
};

extern enum log_level log_min_level;

/* Sets the component name printed on every line (borrowed: keep it static). */
void log_set_component(const char *name);
/*
 * With split on, DEBUG and INFO lines go to stdout and WARN and ERROR to stderr: a process run
 * under a supervisor that keeps an output log and an error log (PM2's out_file and error_file,
 * `mesh pm`) gets its notices in the first and its failures in the second. Off by default.
 */
void log_set_split(bool on);
/* Parses "debug", "info", "warn"/"warning", "error" (also Consul's "trace" = debug). */
bool log_level_parse(const char *s, enum log_level *out);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= log_min_level)                                                              \
            log_write((level), __VA_ARGS__);                                                       \
    } while (0)

#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)

#endif
