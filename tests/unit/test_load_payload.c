/* config.payload: the CSV dialect Artillery reads (csv-parse's) and rows as variables. */
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
#include "lib/json.h"
#include "load/payload.h"
#include "load/script.h"

static const struct load_csv_opts defaults = {",", false, true, true};

/* The rows of text as compact JSON, or "ERR: message". Caller frees. */
static char *parse(const char *text, const struct load_csv_opts *o)
{
    struct err e = {0};
    json_t *rows = NULL;
    char *out;

    if (load_csv_parse(text, strlen(text), o, &rows, &e) < 0)
        return xasprintf("ERR: %s", e.msg);
    out = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    return out;
}

#define ASSERT_CSV(text, opts, want)                                                               \
    do {                                                                                           \
        char *got_ = parse(text, opts);                                                            \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_fields_and_quotes(void **state)
{
    (void)state;
    ASSERT_CSV("a,b\nc,d\n", &defaults, "[[\"a\",\"b\"],[\"c\",\"d\"]]");
    /* no final line end, CRLF and CR line ends */
    ASSERT_CSV("a,b\r\nc,d", &defaults, "[[\"a\",\"b\"],[\"c\",\"d\"]]");
    ASSERT_CSV("a\rb\r", &defaults, "[[\"a\"],[\"b\"]]");
    /* quotes: a delimiter, a line end and a doubled quote inside; an empty quoted field */
    ASSERT_CSV("\"x,y\",\"1\n2\",\"say \"\"hi\"\"\",\"\"\n", &defaults,
               "[[\"x,y\",\"1\\n2\",\"say \\\"hi\\\"\",\"\"]]");
    /* empty fields stay, spaces stay (a field is not trimmed) */
    ASSERT_CSV(",b, c \n", &defaults, "[[\"\",\"b\",\" c \"]]");
    /* empty lines are skipped, unless skipEmptyLines is false */
    ASSERT_CSV("a\n\n\nb\n", &defaults, "[[\"a\"],[\"b\"]]");
    ASSERT_CSV("a\n\nb\n", (&(struct load_csv_opts){",", false, false, true}),
               "[[\"a\"],[\"\"],[\"b\"]]");
    /* a byte order mark is not part of the first field */
    ASSERT_CSV("\xEF\xBB\xBFid\n", &defaults, "[[\"id\"]]");
    ASSERT_CSV("", &defaults, "[]");
}

static void test_options(void **state)
{
    struct load_csv_opts o = {";", true, true, true};

    (void)state;
    ASSERT_CSV("user;pass\nann;s3cret\nbob;pw\n", &o, "[[\"ann\",\"s3cret\"],[\"bob\",\"pw\"]]");
    o.delimiter = "||";
    ASSERT_CSV("h\na||b|c\n", &o, "[[\"a\",\"b|c\"]]");
    o.delimiter = "\t";
    o.skip_header = false;
    ASSERT_CSV("a\tb\n", &o, "[[\"a\",\"b\"]]");
}

static void test_cast(void **state)
{
    struct load_csv_opts raw = {",", false, true, false};

    (void)state;
    /* as Number() reads them: integers, reals, exponents, signs, white space around */
    ASSERT_CSV("12,-3,1.5,.5,5.,1e3, 7 ,+4\n", &defaults, "[[12,-3,1.5,0.5,5,1000,7,4]]");
    /* not numbers: text, hexadecimal, Infinity, an empty field, separators, leading zeros kept
     * as the number they read as */
    ASSERT_CSV("abc,0x1F,Infinity,,1_000,1e,007\n", &defaults,
               "[[\"abc\",\"0x1F\",\"Infinity\",\"\",\"1_000\",\"1e\",7]]");
    /* quoted fields are cast too, as csv-parse does */
    ASSERT_CSV("\"42\"\n", &defaults, "[[42]]");
    ASSERT_CSV("12,007\n", &raw, "[[\"12\",\"007\"]]");
}

static void test_errors(void **state)
{
    (void)state;
    ASSERT_CSV("a,b\nc,d\ne\n", &defaults, "ERR: line 3: 1 fields, where the first row has 2");
    ASSERT_CSV("a\n\"open\n\n", &defaults, "ERR: line 2: a quote is never closed");
    ASSERT_CSV("\"a\"b,c\n", &defaults, "ERR: line 1: text after a closing quote");
    ASSERT_CSV("a\nb\"c\n", &defaults,
               "ERR: line 2: a quote inside a field that does not start with one");
    ASSERT_CSV("ok\n\xff\xfe\n", &defaults, "ERR: line 2: not UTF-8 text");
}

static void test_rows_as_variables(void **state)
{
    struct load_payload p = {0};
    char *fields[] = {"user", "n"};
    uint64_t rng = 7;
    json_t *vars = json_object();

    (void)state;
    p.fields = fields;
    p.n_fields = 2;
    p.sequence = true;
    p.rows = json_pack("[[s,i],[s,i],[s]]", "ann", 1, "bob", 2, "cy");
    for (int i = 0; i < 4; i++) {
        static const char *const want[] = {"ann", "bob", "cy", "ann"};

        json_object_clear(vars);
        load_payload_vars(&p, 1, vars, &rng);
        assert_string_equal(json_string_value(json_object_get(vars, "user")), want[i]);
        /* a short row leaves the missing fields unset */
        assert_true(i == 2 ? json_object_get(vars, "n") == NULL
                           : json_is_integer(json_object_get(vars, "n")));
    }
    /* random: every pick is one of the rows */
    p.sequence = false;
    for (int i = 0; i < 20; i++) {
        const char *u;

        load_payload_vars(&p, 1, vars, &rng);
        u = json_string_value(json_object_get(vars, "user"));
        assert_true(strcmp(u, "ann") == 0 || strcmp(u, "bob") == 0 || strcmp(u, "cy") == 0);
    }
    json_decref(p.rows);
    json_decref(vars);
}

/* A script's payload: the file next to the script, its rows and the errors it can bring. */
static void test_script_payload(void **state)
{
    char dir[] = "/tmp/mesh-payload-XXXXXX", path[256], csv[256], bad[256];
    static const char script[] = "config:\n"
                                 "  target: http://127.0.0.1:1\n"
                                 "  phases: [{duration: 1, arrivalRate: 1}]\n"
                                 "  payload:\n"
                                 "    - path: users.csv\n"
                                 "      fields: [user, pass]\n"
                                 "      skipHeader: true\n"
                                 "      order: sequence\n"
                                 "    - {path: ids.csv, name: ids, loadAll: true}\n"
                                 "scenarios: [{flow: [{get: {url: /}}]}]\n";
    struct load_script s;
    struct buf msgs = BUF_INIT;
    struct err e = {0};
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.yml", dir);
    snprintf(csv, sizeof(csv), "%s/users.csv", dir);
    f = fopen(csv, "w");
    fputs("user,pass\nann,1\n", f);
    fclose(f);
    snprintf(bad, sizeof(bad), "%s/ids.csv", dir);
    f = fopen(bad, "w");
    fputs("1\n2\n", f);
    fclose(f);
    assert_int_equal(load_script_parse(path, script, strlen(script), NULL, NULL, &s, &msgs, &e), 0);
    assert_int_equal(s.n_payloads, 2);
    assert_true(s.payloads[0].sequence);
    assert_int_equal(json_array_size(s.payloads[0].rows), 1);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(s.payloads[0].rows, 0), 1)),
                     1);
    assert_string_equal(s.payloads[1].name, "ids");
    load_script_free(&s);
    /* a row of the wrong length: the file and its line, at the payload's path key */
    f = fopen(bad, "w");
    fputs("1\n2,3\n", f);
    fclose(f);
    assert_int_equal(load_script_parse(path, script, strlen(script), NULL, NULL, &s, &msgs, &e),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, ":9: config.payload[1]: "));
    assert_non_null(strstr(msgs.data, "ids.csv: line 2: 2 fields, where the first row has 1"));
    buf_reset(&msgs);
    unlink(bad);
    unlink(csv);
    assert_int_equal(load_script_parse(path, script, strlen(script), NULL, NULL, &s, &msgs, &e),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "users.csv: No such file or directory"));
    buf_reset(&msgs);
    {
        static const char odd[] = "config:\n"
                                  "  target: http://127.0.0.1:1\n"
                                  "  phases: [{duration: 1, arrivalRate: 1}]\n"
                                  "  payload: {path: x.csv, order: shuffle, delimiter: '\"',\n"
                                  "            fieds: [a]}\n"
                                  "scenarios: [{flow: [{get: {url: /}}]}]\n";

        assert_int_equal(load_script_parse(path, odd, strlen(odd), NULL, NULL, &s, &msgs, &e),
                         -EINVAL);
        assert_non_null(strstr(msgs.data, "config.payload.order: want random or sequence"));
        assert_non_null(strstr(msgs.data, "config.payload.delimiter: want a string"));
        assert_non_null(strstr(msgs.data, "unknown key `fieds`, did you mean `fields`?"));
        assert_non_null(strstr(msgs.data, "config.payload: want fields"));
    }
    rmdir(dir);
    buf_free(&msgs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_quotes),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rows_as_variables),
        cmocka_unit_test(test_script_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
