/*
 * Regular expressions that come from users (bexpr "matches", event filters, templates, CLI
 * flags), compiled with bounds so that no pattern can freeze or exhaust the process.
 *
 * meshkit's peers use Go's RE2; this uses POSIX extended expressions (regex.h) with RE2's
 * common shorthands translated outside brackets (\d \D \w \W \s \S). glibc's regcomp copies a
 * repeated atom once per repetition, so "a{1,1000}{1,1000}" took minutes and gigabytes, and a
 * backreference makes regexec backtrack exponentially. Refused, each with the reason in RE2's
 * words where RE2 has them:
 *   - a pattern longer than RE_MAX_PATTERN bytes;
 *   - a repetition of a repetition ("a**", "a{2}{3}"): "invalid nested repetition operator";
 *   - a count over 1000, RE2's limit: "invalid repeat count";
 *   - more than RE_MAX_SIZE atoms once repetitions are expanded: "expression too large";
 *   - groups nested over RE_MAX_DEPTH: "expression nests too deeply";
 *   - more than RE_MAX_EMPTY_LOOPS repeated groups that can match the empty string ("(a*)*",
 *     "(a|)+"): the one-pass search's ".*" doubles regcomp's work with each (16 took half a
 *     second, 50 forever): "too many repeated groups that match the empty string";
 *   - a backreference \1..\9, which RE2 has not either: "invalid escape sequence".
 * What passes compiles to an automaton of bounded size. Under REG_NOSUB (a yes/no match, as
 * filters ask) the search is also made one pass over the subject; without it (submatches for
 * a replacement) glibc retries from each start offset, so keep subjects short there.
 */
#ifndef MESH_LIB_RE_H
#define MESH_LIB_RE_H

#include <regex.h>

#include "lib/err.h"

#define RE_MAX_PATTERN     4096
#define RE_MAX_REPEAT      1000 /* RE2's limit on {n,m} */
#define RE_MAX_SIZE        1000 /* atoms after repetitions are expanded */
#define RE_MAX_DEPTH       64
#define RE_MAX_EMPTY_LOOPS 4 /* repeated groups that can match the empty string */

/*
 * Compiles pattern (borrowed) into *re with regcomp's cflags (REG_EXTENDED is always added).
 * Returns 0 (free *re with regfree), or -EINVAL with e set to "error parsing regexp: WHY:
 * `PATTERN`" (or "pattern longer than 4096 bytes"), *re untouched and nothing to free.
 */
int re_compile(regex_t *re, const char *pattern, int cflags, struct err *e);

#endif
