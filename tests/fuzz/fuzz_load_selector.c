/*
 * Fuzz target for selector captures (load/selector, load/html_capture): the input's first line
 * is a CSS selector, as a script gives it, and the rest a response body. The selector must
 * compile or be refused with a reason; the body must be parsed, or refused by the scan that
 * bounds the parse's work, and the tree the parse builds must be no deeper than that scan
 * allows for (its estimate errs on the deep side, and a table is four levels at most: table,
 * tbody, tr, td), whatever the body's tags; a capture must take a string, an object or nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "lib/alloc.h"
#include "load/html_capture.h"

/* The depth of the deepest element under n, without recursion (parent links). */
static size_t tree_depth(const GumboNode *root)
{
    size_t depth = 0, max = 0;
    const GumboNode *n = root;

    for (;;) {
        const GumboVector *kids = n->type == GUMBO_NODE_DOCUMENT ? &n->v.document.children
                                  : n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE
                                      ? &n->v.element.children
                                      : NULL;

        if (kids && kids->length) {
            n = kids->data[0];
            max = ++depth > max ? depth : max;
            continue;
        }
        for (;;) {
            const GumboNode *parent = n->parent;
            const GumboVector *sib;

            if (n == root || !parent)
                return max;
            sib = parent->type == GUMBO_NODE_DOCUMENT ? &parent->v.document.children
                                                      : &parent->v.element.children;
            if (n->index_within_parent + 1 < sib->length) {
                n = sib->data[n->index_within_parent + 1];
                break;
            }
            n = parent;
            depth--;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t sel_len = nl ? (size_t)(nl - (const char *)data) : size;
    char *text = xstrndup((const char *)data, sel_len);
    const char *body = nl ? nl + 1 : "";
    size_t body_len = nl ? size - sel_len - 1 : 0;
    struct err e = {""};
    struct load_sel *sel = load_sel_compile(text, &e);
    struct load_html *h = load_html_parse(body, body_len);

    CHECK(sel || e.msg[0]);
    if (h) {
        uint64_t rng = 1;

        /* 4 levels a table, and an element whose end tag HTML leaves out inside each */
        CHECK(tree_depth(load_html_document(h)) <= 8 * LOAD_HTML_MAX_DEPTH + 8);
        if (sel) {
            struct load_capture c = {.kind = LOAD_CAPTURE_SELECTOR, .index_kind = LOAD_INDEX_LAST};
            json_t *v = load_html_capture(h, sel, &c, &rng);

            CHECK(!v || json_is_object(v));
            json_decref(v);
            c.attr = "id";
            v = load_html_capture(h, sel, &c, &rng);
            CHECK(!v || json_is_string(v));
            json_decref(v);
        }
    }
    load_html_free(h);
    load_sel_free(sel);
    free(text);
    return 0;
}
