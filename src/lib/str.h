/*
 * Length-carrying string slices. A slice borrows its bytes: it is valid as long as the memory
 * it points into (often a connection's read buffer) is.
 */
#ifndef MESH_LIB_STR_H
#define MESH_LIB_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct str {
    const char *p;
    size_t n;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})
#define STR_NULL   ((struct str){NULL, 0})
/* printf("%.*s", STR_FMT(s)) */
#define STR_FMT(s) (int)(s).n, (s).p

static inline struct str str_from(const char *s)
{
    return (struct str){s, s ? strlen(s) : 0};
}

static inline bool str_eq(struct str a, struct str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline bool str_eq_cstr(struct str a, const char *b)
{
    return str_eq(a, str_from(b));
}

/* ASCII case-insensitive equality (HTTP header names, Consul service names). */
static inline bool str_ieq(struct str a, struct str b)
{
    return a.n == b.n && (a.n == 0 || strncasecmp(a.p, b.p, a.n) == 0);
}

static inline bool str_ieq_cstr(struct str a, const char *b)
{
    return str_ieq(a, str_from(b));
}

/* The value of one hexadecimal digit, either case; -1 for any other byte. */
static inline int str_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline bool str_has_prefix(struct str s, struct str prefix)
{
    return s.n >= prefix.n && memcmp(s.p, prefix.p, prefix.n) == 0;
}

/* Drops `n` bytes from the front (n <= s.n). */
static inline struct str str_skip(struct str s, size_t n)
{
    return (struct str){s.p + n, s.n - n};
}

/* Removes leading and trailing spaces and tabs. */
struct str str_trim(struct str s);

/* Parses all of `s` as a decimal unsigned 64-bit number; false on junk or overflow. */
bool str_to_u64(struct str s, unsigned long long *out);

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, surrogates or code points
 * past U+10FFFF) at the start of s, or 0 when s is empty or starts with none. */
size_t str_utf8_seq_len(struct str s);

/* Writes code point cp (at most U+10FFFF) as UTF-8 into out; returns its length, 1 to 4. */
size_t str_utf8_put(char out[4], uint32_t cp);

/* True when s is well-formed UTF-8 without NUL: text that can be a key, a name or an ID, and
 * that a C string cannot truncate. */
bool str_is_text(struct str s);

/*
 * A size in bytes for people, in decimal units with one digit after the point: "512 B",
 * "12.6 kB", "3.8 MB", "1.2 GB". Every meshkit table prints memory this way. Truncates to outlen
 * (16 bytes always suffice).
 */
void str_format_bytes(uint64_t bytes, char *out, size_t outlen);

/*
 * Edit distance between a and b: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1 ("ur" -> "url" is 1, "timeuot" -> "timeout" is 1). For "did you
 * mean" hints; SIZE_MAX when either is longer than STR_DISTANCE_MAX.
 */
#define STR_DISTANCE_MAX 64
size_t str_distance(const char *a, const char *b);

#endif
