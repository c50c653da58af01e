#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/flags.h"

struct opts {
    bool dev;
    bool server;
    char *node;
    int port;
    int64_t interval;
    struct flag_list join;
    struct flag defs[6];
};

static void opts_init(struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->node = xstrdup("default-node");
    o->port = 8500;
    o->interval = 10 * DURATION_SEC;
    struct flag defs[] = {
        {"dev", FLAG_BOOL, &o->dev, "Development mode.", false},
        {"server", FLAG_BOOL, &o->server, "Run as a server.", false},
        {"node", FLAG_STRING, &o->node, "Name of this node.", false},
        {"http-port", FLAG_INT, &o->port, "HTTP API port.", false},
        {"interval", FLAG_DURATION, &o->interval, "Sync interval.", false},
        {"join", FLAG_STRING_LIST, &o->join, "Address to join.\nRepeatable.", false},
    };
    memcpy(o->defs, defs, sizeof(defs));
}

static void opts_free(struct opts *o)
{
    free(o->node);
    flag_list_free(&o->join);
}

static int parse(struct opts *o, int argc, const char **argv, int *first, struct err *e)
{
    return flags_parse(o->defs, ARRAY_LEN(o->defs), argc, (char **)argv, first, e);
}

static void test_forms(void **state)
{
    struct opts o;
    struct err e = {{0}};
    int first = -1;
    const char *argv[] = {"-dev",
                          "--server=false",
                          "-node",
                          "web1",
                          "--http-port=9500",
                          "-interval=1m30s",
                          "-join",
                          "10.0.0.1",
                          "--join",
                          "10.0.0.2",
                          "rest",
                          "-dev2"};
    opts_init(&o);
    o.server = true;
    assert_int_equal(parse(&o, ARRAY_LEN(argv), argv, &first, &e), 0);
    assert_int_equal(first, 10);
    assert_true(o.dev);
    assert_false(o.server);
    assert_string_equal(o.node, "web1");
    assert_int_equal(o.port, 9500);
    assert_int_equal(o.interval, 90 * DURATION_SEC);
    assert_int_equal(o.join.n, 2);
    assert_string_equal(o.join.items[0], "10.0.0.1");
    assert_string_equal(o.join.items[1], "10.0.0.2");
    for (size_t i = 0; i < ARRAY_LEN(o.defs); i++)
        assert_true(o.defs[i].seen);
    opts_free(&o);
}

static void test_stop_rules(void **state)
{
    struct opts o;
    struct err e;
    int first;

    /* Bool flags never take the next argument. */
    const char *a1[] = {"-dev", "false", "-server"};
    opts_init(&o);
    assert_int_equal(parse(&o, 3, a1, &first, &e), 0);
    assert_int_equal(first, 1);
    assert_true(o.dev);
    assert_false(o.server);
    assert_false(o.defs[1].seen);
    opts_free(&o);

    /* "--" ends flags and is consumed. */
    const char *a2[] = {"-dev", "--", "-server"};
    opts_init(&o);
    assert_int_equal(parse(&o, 3, a2, &first, &e), 0);
    assert_int_equal(first, 2);
    assert_false(o.server);
    opts_free(&o);

    /* A lone "-" is positional; so is an empty argument. */
    const char *a3[] = {"-", "-dev"};
    opts_init(&o);
    assert_int_equal(parse(&o, 2, a3, &first, &e), 0);
    assert_int_equal(first, 0);
    assert_false(o.dev);
    opts_free(&o);

    /* No arguments at all; a value may start with a dash. */
    opts_init(&o);
    assert_int_equal(parse(&o, 0, NULL, &first, &e), 0);
    assert_int_equal(first, 0);
    const char *a4[] = {"-node", "-weird", "-node="};
    assert_int_equal(parse(&o, 3, a4, &first, &e), 0);
    assert_int_equal(first, 3);
    assert_string_equal(o.node, "");
    assert_string_equal(o.defs[0].name, "dev");
    assert_false(o.defs[0].seen);
    opts_free(&o);
}

static void test_help(void **state)
{
    static const char *const helps[] = {"-h", "-help", "--help", "--h", "-help=1"};
    for (size_t i = 0; i < ARRAY_LEN(helps); i++) {
        struct opts o;
        struct err e;
        int first;
        const char *argv[] = {"-dev", helps[i], "-server"};
        opts_init(&o);
        assert_int_equal(parse(&o, 3, argv, &first, &e), FLAGS_HELP);
        assert_true(o.dev);
        assert_false(o.server);
        opts_free(&o);
    }
}

static void check_error(const char **argv, int argc, const char *want)
{
    struct opts o;
    struct err e = {{0}};
    int first;
    opts_init(&o);
    assert_int_equal(parse(&o, argc, argv, &first, &e), -EINVAL);
    assert_string_equal(e.msg, want);
    assert_int_equal(o.port, 8500); /* a bad value leaves the default */
    assert_int_equal(o.interval, 10 * DURATION_SEC);
    opts_free(&o);
}

static void test_errors(void **state)
{
    const char *a1[] = {"-foo"};
    check_error(a1, 1, "flag provided but not defined: -foo");
    const char *a2[] = {"--foo=bar"};
    check_error(a2, 1, "flag provided but not defined: -foo");
    const char *a3[] = {"-node"};
    check_error(a3, 1, "flag needs an argument: -node");
    const char *a4[] = {"-http-port", "x"};
    check_error(a4, 2, "invalid value \"x\" for flag -http-port: parse error");
    const char *a5[] = {"-http-port=99999999999"};
    check_error(a5, 1, "invalid value \"99999999999\" for flag -http-port: value out of range");
    const char *a6[] = {"-http-port=80x"};
    check_error(a6, 1, "invalid value \"80x\" for flag -http-port: parse error");
    const char *a7[] = {"-http-port="};
    check_error(a7, 1, "invalid value \"\" for flag -http-port: parse error");
    const char *a8[] = {"-interval", "10"};
    check_error(a8, 2, "invalid value \"10\" for flag -interval: parse error");
    const char *a9[] = {"-interval=-5s"};
    check_error(a9, 1, "invalid value \"-5s\" for flag -interval: parse error");
    const char *a10[] = {"-dev=yes"};
    check_error(a10, 1, "invalid boolean value \"yes\" for -dev: parse error");
    const char *a11[] = {"---dev"};
    check_error(a11, 1, "bad flag syntax: ---dev");
    const char *a12[] = {"-=x"};
    check_error(a12, 1, "bad flag syntax: -=x");
}

static void test_values(void **state)
{
    struct opts o;
    struct err e;
    int first;
    const char *argv[] = {"-http-port=0x1F", "-dev=T", "-server=0", "-interval", "0"};
    opts_init(&o);
    o.server = true;
    assert_int_equal(parse(&o, ARRAY_LEN(argv), argv, &first, &e), 0);
    assert_int_equal(o.port, 31);
    assert_true(o.dev);
    assert_false(o.server);
    assert_int_equal(o.interval, 0);
    const char *neg[] = {"-http-port", "-1"};
    assert_int_equal(parse(&o, 2, neg, &first, &e), 0);
    assert_int_equal(o.port, -1);
    opts_free(&o);

    /* A string flag may start out NULL. */
    char *s = NULL;
    struct flag f[] = {{"s", FLAG_STRING, &s, "x", false}};
    const char *a2[] = {"-s", "one", "-s=two"};
    assert_int_equal(flags_parse(f, 1, 3, (char **)a2, &first, &e), 0);
    assert_string_equal(s, "two");
    free(s);
}

static void test_usage(void **state)
{
    struct opts o;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    opts_init(&o);
    o.dev = true;
    flags_usage(f, "mesh agent [options]", o.defs, ARRAY_LEN(o.defs));
    fclose(f);
    assert_string_equal(text, "Usage: mesh agent [options]\n\n"
                              "  -dev\n"
                              "        Development mode. (default true)\n"
                              "  -server\n"
                              "        Run as a server.\n"
                              "  -node <string>\n"
                              "        Name of this node. (default \"default-node\")\n"
                              "  -http-port <int>\n"
                              "        HTTP API port. (default 8500)\n"
                              "  -interval <duration>\n"
                              "        Sync interval. (default 10s)\n"
                              "  -join <string>\n"
                              "        Address to join.\n"
                              "        Repeatable.\n");
    free(text);
    opts_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),  cmocka_unit_test(test_stop_rules),
        cmocka_unit_test(test_help),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_values), cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
