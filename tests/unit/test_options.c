/* lib/options: one table for flags, config keys and their types. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/options.h"

struct settings {
    bool on;
    char *name;
    int count;
    int port;
    int64_t wait_ns;
    struct flag_list hosts;
};

#define OFF(f) offsetof(struct settings, f)

static const struct option_def defs[] = {
    {"on", "on", OPTION_BOOL, OFF(on), "A switch."},
    {"a.name", "name", OPTION_STRING, OFF(name), "A name."},
    {"count", NULL, OPTION_INT, OFF(count), NULL},
    {"port", "port", OPTION_PORT, OFF(port), "A port."},
    {"wait", "wait", OPTION_DURATION, OFF(wait_ns), "A duration."},
    {"hosts", "host", OPTION_STRING_LIST, OFF(hosts), "Repeatable."},
};

static int load(struct config_doc *doc, const char *text)
{
    char path[] = "/tmp/mesh-options-XXXXXX";
    struct err e;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = config_doc_load(path, doc, &e);
    unlink(path);
    return rc;
}

/* Reads every top-level key (and "a.name") of doc through the table. */
static int read_all(struct settings *s, const struct config_doc *doc, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach(doc->root, key, v)
    {
        const char *path = key;
        const json_t *value = v;
        const struct option_def *d = options_find(defs, ARRAY_LEN(defs), key);
        if (!d && options_is_section(defs, ARRAY_LEN(defs), key)) {
            path = "a.name";
            d = options_find(defs, ARRAY_LEN(defs), path);
            value = json_object_get(v, "name");
        }
        assert_non_null(d);
        int rc = options_read(d, s, doc, path, value, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void test_flags_bind_to_fields(void **state)
{
    struct settings s = {0};
    struct flag flags[ARRAY_LEN(defs)];
    char *argv[] = {"-on", "-name", "x", "-port=80", "-wait", "1m30s", "-host", "a", "-host", "b"};
    struct err e;
    int first;

    size_t n = options_bind_flags(defs, ARRAY_LEN(defs), &s, flags);
    assert_int_equal(n, 5); /* "count" has no flag */
    assert_int_equal(flags_parse(flags, n, 10, argv, &first, &e), 0);
    assert_true(s.on);
    assert_string_equal(s.name, "x");
    assert_int_equal(s.port, 80);
    assert_int_equal(s.wait_ns, 90 * INT64_C(1000000000));
    assert_int_equal(s.hosts.n, 2);
    assert_string_equal(s.hosts.items[1], "b");
    options_free(defs, ARRAY_LEN(defs), &s);
    assert_null(s.name);
    assert_int_equal(s.hosts.n, 0);
}

static void test_file_values(void **state)
{
    struct settings s = {0};
    struct config_doc doc;
    struct err e;

    assert_int_equal(load(&doc, "{\"on\": true, \"a\": {\"name\": \"n\"}, \"count\": 7,\n"
                                " \"port\": 8500, \"wait\": 250, \"hosts\": \"one\"}\n"),
                     0);
    assert_int_equal(read_all(&s, &doc, &e), 0);
    assert_true(s.on);
    assert_string_equal(s.name, "n");
    assert_int_equal(s.count, 7);
    assert_int_equal(s.port, 8500);
    assert_int_equal(s.wait_ns, 250 * INT64_C(1000000)); /* a bare number is milliseconds */
    assert_int_equal(s.hosts.n, 1);                      /* one string is a list of one */
    options_free(defs, ARRAY_LEN(defs), &s);
    config_doc_free(&doc);
}

static void test_errors_name_file_line_and_path(void **state)
{
    static const char *const bad[] = {
        "{\n\"on\": 1}",          "{\n\"port\": 70000}",         "{\n\"count\": -1}",
        "{\n\"wait\": \"soon\"}", "{\n\"hosts\": [\"a\",\n 2]}", "{\n\"a\": {\"name\": 3}}",
    };
    static const char *const want[] = {
        ":2: on: expected a boolean, got number",
        ":2: port: expected a port number (0-65535), got number",
        ":2: count: expected a non-negative integer, got number",
        ":2: wait: expected a duration such as \"10s\", got soon",
        ":3: hosts[1]: expected a string, got number",
        ":2: a.name: expected a string, got number",
    };

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct settings s = {0};
        struct config_doc doc;
        struct err e = {""};
        assert_int_equal(load(&doc, bad[i]), 0);
        assert_true(read_all(&s, &doc, &e) < 0);
        if (!strstr(e.msg, want[i]))
            fail_msg("case %zu: got \"%s\", want \"...%s\"", i, e.msg, want[i]);
        options_free(defs, ARRAY_LEN(defs), &s);
        config_doc_free(&doc);
    }
}

/* ---- options_load: flags, then the files they name, then the flags again ---------------- */

static void settings_defaults(void *s)
{
    memset(s, 0, sizeof(struct settings));
    ((struct settings *)s)->port = 1;
}

static void settings_free(void *s)
{
    options_free(defs, ARRAY_LEN(defs), s);
}

/* The "file" is data's JSON text, read only when the flags named it (-name file). */
static int settings_read_files(void *s, const void *named, void *data, struct err *e)
{
    const struct settings *n = named;
    struct config_doc doc;
    int rc;

    if (!n->name || strcmp(n->name, "file") != 0)
        return 0;
    assert_int_equal(load(&doc, data), 0);
    rc = read_all(s, &doc, e);
    config_doc_free(&doc);
    return rc;
}

static const struct options_loader loader = {
    defs, ARRAY_LEN(defs), "usage", settings_defaults, settings_free, settings_read_files,
};

static void test_load_flags_win_over_the_file_they_name(void **state)
{
    struct settings s, scratch;
    struct flag flags[ARRAY_LEN(defs)];
    size_t n;
    struct err e = {""};
    char *argv[] = {"-name", "file", "-port", "99"};
    char *help[] = {"-help"};
    char *extra[] = {"-on", "stray"};
    char *text = "{\"port\": 7, \"wait\": \"5s\", \"on\": true}";

    assert_int_equal(options_load(&loader, &s, &scratch, flags, &n, 4, argv, text, &e), 0);
    assert_int_equal(s.port, 99);                         /* the flag wins */
    assert_int_equal(s.wait_ns, 5 * INT64_C(1000000000)); /* the file fills the rest */
    assert_true(s.on);
    assert_string_equal(s.name, "file");
    assert_int_equal(n, 5);
    assert_ptr_equal(flags[2].ptr, &s.port); /* bound to s, as given */
    assert_true(flags[2].seen);
    settings_free(&s);

    assert_int_equal(options_load(&loader, &s, &scratch, flags, &n, 1, help, text, &e), FLAGS_HELP);
    settings_free(&s);
    assert_int_equal(options_load(&loader, &s, &scratch, flags, &n, 2, extra, text, &e), -EINVAL);
    assert_string_equal(e.msg, "unexpected argument: stray");
    assert_int_equal(s.port, 1); /* the defaults, nothing read */
    settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_bind_to_fields),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_errors_name_file_line_and_path),
        cmocka_unit_test(test_load_flags_win_over_the_file_they_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
