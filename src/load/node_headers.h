/*
 * A response's headers as Node's http gives them (IncomingMessage.headers), which is what
 * Artillery's captures and afterResponse hooks read: names in lower case, and of a repeated
 * header a list for set-cookie (always a list), the first for those Node keeps once
 * (content-type, location, ...), "; "-joined for cookie, ", "-joined for the others.
 */
#ifndef MESH_LOAD_NODE_HEADERS_H
#define MESH_LOAD_NODE_HEADERS_H

#include <jansson.h>

#include "lib/http_parse.h"

/* h's headers as a new object, as above. */
json_t *load_node_headers(const struct http_response_head *h);

#endif
