/* Artillery's expect plugin, built in: a request's checks on a response, and its console lines. */
#ifndef MESH_LOAD_EXPECT_H
#define MESH_LOAD_EXPECT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lib/str.h"
#include "load/script.h"

/*
 * One response's checks while it comes in: those on the head when the head is there, those on
 * the body (hasProperty, equals, matchesRegexp, ...) once the body is. Owned by the connection
 * the response comes on; load_expect_run_clear frees what it holds.
 */
struct load_expect_run {
    json_t *results; /* per check {"ok", "expected", "type", "got"}; null until it ran */
    uint32_t failed; /* bit i: r->expects[i] failed */
    bool json_body;  /* the Content-Type is JSON's: the body checks read it as JSON */
};

/*
 * Runs r's checks on the response head h (templates rendered from vars, borrowed), into run
 * (cleared first). Safe from any worker thread.
 */
void load_expect_head(struct load_expect_run *run, const struct load_request *r,
                      const struct http_response_head *h, const json_t *vars, uint64_t *rng);

/* Runs r's checks on the complete body (what was kept of it), after load_expect_head. */
void load_expect_body(struct load_expect_run *run, const struct load_request *r,
                      const struct buf *body, const json_t *vars, uint64_t *rng);

/*
 * Prints the plugin's lines for the request in s->expect_format (pretty: "* GET /path", then
 * "  ok statusCode 200 " per check, with "expected:" and "got:" under a failed one). wire is the
 * request's bytes (its request line gives the path). One write, so workers do not interleave.
 */
void load_expect_print(const struct load_script *s, const struct load_request *r,
                       const struct load_expect_run *run, const char *wire, size_t wire_len,
                       FILE *out);

void load_expect_run_clear(struct load_expect_run *run);

/* The request line's path ("GET /a?b HTTP/1.1" -> "/a?b"), as Artillery prints it. */
struct str load_expect_path(const char *wire, size_t len);

#endif
