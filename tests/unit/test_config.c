#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "lib/alloc.h"
#include "lib/config.h"

static int setup(void **state)
{
    return scratch_make("test_config");
}

static int teardown(void **state)
{
    return scratch_remove();
}

/* Line numbers are part of the test: keep this text's layout. */
static const char doc_text[] =
    "{\n"                                                             /* 1 */
    "  \"datacenter\": \"dc1\",\n"                                    /* 2 */
    "  \"note\": \"braces } ] { [ and \\\"quotes\\\" , \\\\\",\n"     /* 3 */
    "  \"ports\": {\n"                                                /* 4 */
    "    \"dns\": 8600,\n"                                            /* 5 */
    "    \"HTTP\":\n"                                                 /* 6 */
    "      8500\n"                                                    /* 7 */
    "  },\n"                                                          /* 8 */
    "  \"services\": [\n"                                             /* 9 */
    "    {\"name\": \"a\", \"checks\": [{\"interval\": \"1s\"}]},\n"  /* 10 */
    "    {\n"                                                         /* 11 */
    "      \"name\": \"web\",\n"                                      /* 12 */
    "      \"checks\": [\n"                                           /* 13 */
    "        {\"http\": \"http://x/{id}\", \"interval\": \"10s\"},\n" /* 14 */
    "        {\n"                                                     /* 15 */
    "          \"tcp\": \"x:1\",\n"                                   /* 16 */
    "          \"Interval\": \"bad\"\n"                               /* 17 */
    "        }\n"                                                     /* 18 */
    "      ]\n"                                                       /* 19 */
    "    }\n"                                                         /* 20 */
    "  ],\n"                                                          /* 21 */
    "  \"dereg_after\": [1, 2,\n"                                     /* 22 */
    "    3],\n"                                                       /* 23 */
    "  \"k\\u00e9y\": true,\n"                                        /* 24 */
    "  \"log_level\": \"INFO\"\n"                                     /* 25 */
    "}\n";                                                            /* 26 */

static void load_doc(struct config_doc *doc, const char *name, const char *text)
{
    struct err e = {{0}};
    const char *path = scratch_write(name, text);
    int rc = config_doc_load(path, doc, &e);
    if (rc != 0)
        fail_msg("load: %s", e.msg);
    assert_string_equal(doc->path, path);
    assert_int_equal(doc->len, strlen(text));
    assert_true(json_is_object(doc->root));
}

static void test_load_and_locate(void **state)
{
    struct config_doc doc;
    load_doc(&doc, "a.json", doc_text);
    assert_string_equal(json_string_value(json_object_get(doc.root, "datacenter")), "dc1");

    assert_int_equal(config_locate(&doc, "datacenter"), 2);
    assert_int_equal(config_locate(&doc, "note"), 3);
    assert_int_equal(config_locate(&doc, "ports"), 4);
    assert_int_equal(config_locate(&doc, "ports.dns"), 5);
    assert_int_equal(config_locate(&doc, "ports.http"), 7); /* the value's line */
    assert_int_equal(config_locate(&doc, "services"), 9);
    assert_int_equal(config_locate(&doc, "services[0]"), 10);
    assert_int_equal(config_locate(&doc, "services[0].checks[0].interval"), 10);
    assert_int_equal(config_locate(&doc, "services[1]"), 11);
    assert_int_equal(config_locate(&doc, "services[1].name"), 12);
    assert_int_equal(config_locate(&doc, "services[1].checks[0].interval"), 14);
    assert_int_equal(config_locate(&doc, "services[1].checks[1]"), 15);
    assert_int_equal(config_locate(&doc, "services[1].checks[1].interval"), 17);
    assert_int_equal(config_locate(&doc, "Services[1].Checks[1].TCP"), 16);
    assert_int_equal(config_locate(&doc, "deregafter[2]"), 23);
    assert_int_equal(config_locate(&doc, "dereg_after[1]"), 22);
    assert_int_equal(config_locate(&doc, "LogLevel"), 25);
    assert_int_equal(config_locate(&doc, "k\xc3\xa9y"), 24);

    /* Deepest component found, or 1. */
    assert_int_equal(config_locate(&doc, "services[1].checks[5].interval"), 13);
    assert_int_equal(config_locate(&doc, "services[1].missing"), 11);
    assert_int_equal(config_locate(&doc, "ports.http.deeper"), 7);
    assert_int_equal(config_locate(&doc, "services.name"), 9);
    assert_int_equal(config_locate(&doc, "ports[0]"), 4);
    assert_int_equal(config_locate(&doc, "nothing"), 1);
    assert_int_equal(config_locate(&doc, ""), 1);
    assert_int_equal(config_locate(&doc, "services[x]"), 9);
    assert_int_equal(config_locate(&doc, "[0].services"), 1);
    assert_int_equal(config_locate(&doc, "services[1"), 9);
    assert_int_equal(config_locate(&doc, "braces } ] { [ and "), 1);

    struct err e;
    assert_int_equal(
        config_error(&doc, "services[1].checks[1].interval", &e, "invalid duration \"%s\"", "bad"),
        -EINVAL);
    char *want = xasprintf("%s/a.json:17: invalid duration \"bad\"", scratch_dir);
    assert_string_equal(e.msg, want);
    free(want);
    config_doc_free(&doc);
    assert_null(doc.root);
    assert_null(doc.text);
    assert_null(doc.path);
    config_doc_free(&doc); /* idempotent */
}

static void test_exact_beats_folded(void **state)
{
    struct config_doc doc;
    load_doc(&doc, "dup.json",
             "{\n"
             "  \"Port\": 1,\n"
             "  \"port\": 2,\n"
             "  \"p_o_r_t\": 3\n"
             "}\n");
    assert_int_equal(config_locate(&doc, "port"), 3);
    assert_int_equal(config_locate(&doc, "Port"), 2);
    assert_int_equal(config_locate(&doc, "PORT"), 2);
    assert_int_equal(config_locate(&doc, "p_o_r_t"), 4);
    config_doc_free(&doc);
}

static void check_load_error(const char *text, const char *want_suffix)
{
    struct config_doc doc;
    struct err e;
    const char *path = scratch_write("bad.json", text);
    assert_int_equal(config_doc_load(path, &doc, &e), -EINVAL);
    char *want = xasprintf("%s%s", path, want_suffix);
    assert_string_equal(e.msg, want);
    assert_null(doc.root);
    assert_null(doc.text);
    free(want);
}

static void test_load_errors(void **state)
{
    check_load_error("{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3\n}\n",
                     ":4: '}' expected near '\"c\"'");
    check_load_error("{\n  \"a\": \"x { y\",\n  \"b\": [1, 2,,]\n}\n",
                     ":3: unexpected token near ','");
    check_load_error("\n\n  [1, 2]\n", ":3: configuration must be a JSON object, not an array");
    check_load_error("", ":1: '[' or '{' expected near end of file");
    check_load_error("{}\n{}\n", ":2: end of file expected near '{'");

    struct config_doc doc;
    struct err e;
    char *path = xasprintf("%s/absent.json", scratch_dir);
    assert_int_equal(config_doc_load(path, &doc, &e), -ENOENT);
    char *want = xasprintf("%s: No such file or directory", path);
    assert_string_equal(e.msg, want);
    free(want);
    free(path);
    assert_int_equal(config_doc_load(scratch_dir, &doc, &e), -EISDIR);
}

static void test_dir_list(void **state)
{
    struct err e;
    char **paths = NULL;
    char *dir = xasprintf("%s/conf.d", scratch_dir);
    assert_int_equal(mkdir(dir, 0755), 0);

    assert_int_equal(config_dir_list(dir, &paths, &e), 0);
    assert_null(paths[0]);
    config_dir_list_free(paths);

    static const char *const names[] = {"conf.d/20-web.json", "conf.d/10-base.json",
                                        "conf.d/notes.txt",   "conf.d/b.json.bak",
                                        "conf.d/A.json",      "conf.d/.json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        scratch_write(names[i], "{}");
    char *sub = xasprintf("%s/sub.json", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    free(sub);

    assert_int_equal(config_dir_list(dir, &paths, &e), 0);
    const char *want[] = {"/.json", "/10-base.json", "/20-web.json", "/A.json"};
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(paths[i]);
        char *full = xasprintf("%s%s", dir, want[i]);
        assert_string_equal(paths[i], full);
        free(full);
    }
    assert_null(paths[4]);
    config_dir_list_free(paths);
    config_dir_list_free(NULL);

    char *missing = xasprintf("%s/nope", scratch_dir);
    assert_int_equal(config_dir_list(missing, &paths, &e), -ENOENT);
    char *msg = xasprintf("%s: No such file or directory", missing);
    assert_string_equal(e.msg, msg);
    free(msg);
    free(missing);
    free(dir);
}

static void test_locate_unusual_text(void **state)
{
    /* Hand-built docs: locate must not read past the text, even when it is not valid JSON. */
    static const char *const texts[] = {
        "{\"a\": {\"b\": [1, {\"c\": \"unterminated",
        "{\"a\"",
        "{\"a\":",
        "{\"a\\",
        "{\"\\u12",
        "{\"\\ud800\\u",
        "[",
        "",
        "{\"a\": [1, 2",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct config_doc doc = {NULL, xstrdup(texts[i]), strlen(texts[i]), NULL};
        assert_int_equal(config_locate(&doc, "a.b[1].c"), 1);
        assert_int_equal(config_locate(&doc, "a[5]"), 1);
        free(doc.text);
    }
    struct config_doc none = {NULL, NULL, 0, NULL};
    assert_int_equal(config_locate(&none, "a"), 1);
    struct err e;
    assert_int_equal(config_error(&none, "a", &e, "%s", "x"), -EINVAL);
    assert_string_equal(e.msg, "?:1: x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_locate),     cmocka_unit_test(test_exact_beats_folded),
        cmocka_unit_test(test_load_errors),         cmocka_unit_test(test_dir_list),
        cmocka_unit_test(test_locate_unusual_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
