/* Artillery's expect plugin, built in: a request's checks on a response, and its console lines. */
#ifndef MESH_LOAD_EXPECT_H
#define MESH_LOAD_EXPECT_H

#include <stdint.h>
#include <stdio.h>

#include "lib/http_parse.h"
#include "lib/str.h"
#include "load/script.h"

/*
 * Runs r's checks on the response head h; returns the failed ones as bits (bit i: r->expects[i]).
 * Prints the plugin's per-request lines to out in s->expect_format (pretty: "* GET /path", then
 * "  ok statusCode 200 " per check, with "expected:" and "got:" under a failed one). wire is the
 * request's bytes (its request line gives the path). Safe from any worker thread.
 */
uint32_t load_expect_check(const struct load_script *s, const struct load_request *r,
                           const struct http_response_head *h, const char *wire, size_t wire_len,
                           FILE *out);

/* The request line's path ("GET /a?b HTTP/1.1" -> "/a?b"), as Artillery prints it. */
struct str load_expect_path(const char *wire, size_t len);

#endif
