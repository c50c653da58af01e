/*
 * The file function: its dependency (the path trimmed, "@" part of it), its value in a render,
 * and the watch that polls the file on a real loop: the content, a change, and a file that
 * disappears, which ends the watch with consul-template's error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/alloc.h"
#include "run_until.h"
#include "template/tmpl.h"
#include "template/watch.h"

static void test_file_dep_parse(void **state)
{
    struct tmpl_dep dep;
    struct err e;

    assert_int_equal(tmpl_dep_parse(TMPL_DEP_FILE, "  /etc/a b@dc1\n", &dep, &e), 0);
    assert_string_equal(dep.id, "file(/etc/a b@dc1)");
    assert_string_equal(dep.name, "/etc/a b@dc1");
    assert_null(dep.dc);
    tmpl_dep_clear(&dep);
    assert_int_equal(tmpl_dep_parse(TMPL_DEP_FILE, " \t", &dep, &e), -EINVAL);
    assert_string_equal(e.msg, "file: invalid format: \"\"");
}

/* Renders src once against store; returns what it asked for that had no data. */
static size_t render(const char *src, const struct smap *store, struct buf *out, size_t *ndeps)
{
    struct tmpl *t;
    struct tmpl_used used;
    struct err e;

    if (tmpl_parse("in.ctmpl", src, strlen(src), &t, &e) < 0)
        fail_msg("%s", e.msg);
    buf_reset(out);
    if (tmpl_render(t, store, out, &used, &e) < 0)
        fail_msg("%s", e.msg);
    size_t missing = used.missing;
    *ndeps = used.n;
    tmpl_used_free(&used);
    tmpl_free(t);
    return missing;
}

static void test_file_render(void **state)
{
    struct smap store = SMAP_INIT;
    struct buf out = BUF_INIT;
    size_t ndeps;

    /* not read yet: the render waits for it */
    assert_int_equal(render("[{{ file \" a.txt \" }}]", &store, &out, &ndeps), 1);
    assert_int_equal(ndeps, 1);
    smap_put(&store, "file(a.txt)", json_string("x=1\n"));
    assert_int_equal(
        render("[{{ file \" a.txt \" }}]{{ file \"a.txt\" | len }}", &store, &out, &ndeps), 0);
    assert_int_equal(ndeps, 1); /* one dependency, however the path is spaced */
    assert_string_equal(out.data, "[x=1\n]4");
    /* an empty path is "" and no dependency, as in consul-template */
    assert_int_equal(render("[{{ file \"\" }}]", &store, &out, &ndeps), 0);
    assert_int_equal(ndeps, 0);
    assert_string_equal(out.data, "[]");
    smap_foreach(&store, ent) json_decref(ent->val);
    smap_free(&store);
    buf_free(&out);
}

struct seen {
    int values;
    char *last;
    char *error;
};

static void on_value(void *data, const struct tmpl_dep *dep, json_t *value, const char *error)
{
    struct seen *s = data;

    if (error) {
        free(s->error);
        s->error = xstrdup(error);
        return;
    }
    s->values++;
    free(s->last);
    s->last = xstrdup(json_string_value(value));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_file_watch_follows_the_file(void **state)
{
    char dir[] = "/tmp/mesh-template-file-XXXXXX";
    uv_loop_t loop;
    struct seen seen = {0};
    struct tmpl_dep dep;
    struct err e;

    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/data.txt", dir);
    write_text(path, "one\n");
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tmpl_dep_parse(TMPL_DEP_FILE, path, &dep, &e), 0);
    struct tmpl_watch *w = tmpl_watch_start(&loop, NULL, NULL, &dep, on_value, &seen);

    RUN_UNTIL(&loop, seen.values == 1);
    assert_string_equal(seen.last, "one\n");
    /* a new size is a change, seen at the next poll */
    write_text(path, "two, longer\n");
    RUN_UNTIL_MS(&loop, seen.values == 2, 4 * TMPL_WATCH_FILE_POLL_MS);
    assert_string_equal(seen.last, "two, longer\n");
    assert_null(seen.error);
    /* gone: the watch ends with the error consul-template stops on */
    assert_int_equal(unlink(path), 0);
    RUN_UNTIL_MS(&loop, seen.error != NULL, 4 * TMPL_WATCH_FILE_POLL_MS);
    char *want = xasprintf("file(%s): stat %s: no such file or directory", path, path);
    assert_string_equal(seen.error, want);
    assert_int_equal(seen.values, 2);

    tmpl_watch_free(w);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    tmpl_dep_clear(&dep);
    rmdir(dir);
    free(want);
    free(path);
    free(seen.last);
    free(seen.error);
}

/* Freed while its read is in flight: nothing is reported and nothing leaks. */
static void test_file_watch_freed_while_reading(void **state)
{
    uv_loop_t loop;
    struct seen seen = {0};
    struct tmpl_dep dep;
    struct err e;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tmpl_dep_parse(TMPL_DEP_FILE, "/proc/self/status", &dep, &e), 0);
    tmpl_watch_free(tmpl_watch_start(&loop, NULL, NULL, &dep, on_value, &seen));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(seen.values, 0);
    assert_null(seen.error);
    assert_int_equal(uv_loop_close(&loop), 0);
    tmpl_dep_clear(&dep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_dep_parse),
        cmocka_unit_test(test_file_render),
        cmocka_unit_test(test_file_watch_follows_the_file),
        cmocka_unit_test(test_file_watch_freed_while_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
