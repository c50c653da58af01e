/*
 * Renders a template with no registry data and compares its output, or its error, with what a
 * test expects. Header-only, static: include it (after cmocka.h) in a template test file.
 */
#ifndef MESH_TESTS_UNIT_TMPL_EXPECT_H
#define MESH_TESTS_UNIT_TMPL_EXPECT_H

#include <errno.h>
#include <string.h>

#include "template/tmpl.h"

/* Renders src and compares with want; a want starting with "!" is the error, from parsing or
 * rendering. */
static void expect(const char *src, const char *want)
{
    struct smap store = SMAP_INIT;
    struct buf out = BUF_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;
    int rc;

    if (tmpl_parse("in.ctmpl", src, strlen(src), &t, &e) < 0) {
        if (want[0] != '!')
            fail_msg("%s: %s", src, e.msg);
        assert_string_equal(e.msg, want + 1);
        return;
    }
    rc = tmpl_render(t, &store, &out, &used, &e);
    if (want[0] == '!') {
        if (rc == 0)
            fail_msg("%s: rendered \"%.*s\"", src, (int)out.len, out.data ? out.data : "");
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(e.msg, want + 1);
    } else {
        if (rc < 0)
            fail_msg("%s: %s", src, e.msg);
        assert_string_equal(out.data ? out.data : "", want);
    }
    tmpl_used_free(&used);
    tmpl_free(t);
    buf_free(&out);
}

#endif
