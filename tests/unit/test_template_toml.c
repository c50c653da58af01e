/*
 * toTOML against what consul-template's tests and BurntSushi/toml's encoder tests (the library it
 * calls) expect, byte for byte: key order, tables and arrays of tables with their indentation,
 * inline arrays and tables, string escapes, floats, and the values TOML cannot hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "template/tmpl.h"
#include "tmpl_expect.h"

/* toTOML of YAML y: parseYAML gives integers where parseJSON gives float64 */
#define TO_TOML(y) "{{ parseYAML `" y "` | toTOML }}"

static void test_to_toml_consul_template(void **state)
{
    /* consul-template's helper_toTOML */
    expect("{{ \"{\\\"foo\\\":\\\"bar\\\"}\" | parseJSON | toTOML }}", "foo = \"bar\"");
}

/* BurntSushi's encoder tests that a template's values can express */
static void test_to_toml_tables(void **state)
{
    expect(TO_TOML("{a: 1, b: c}"), "a = 1\nb = \"c\"");
    /* plain keys first, then tables; a blank line before each top-level table */
    expect(TO_TOML("{a: {Int: 2}, b: 1}"), "b = 1\n\n[a]\n  Int = 2");
    expect(TO_TOML("{a: {b: 1}, c: {d: 2}}"), "[a]\n  b = 1\n\n[c]\n  d = 2");
    expect(TO_TOML("{V: 1, A: {V: 2}, B: [{V: 3}]}"), "V = 1\n\n[A]\n  V = 2\n\n[[B]]\n  V = 3");
    expect(TO_TOML("{map: {zero: 5, arr: [{friend: 5}]}}"),
           "[map]\n  zero = 5\n\n  [[map.arr]]\n    friend = 5");
    expect(TO_TOML("{struct: [{Int: 1}, {Int: 3}]}"),
           "[[struct]]\n  Int = 1\n\n[[struct]]\n  Int = 3");
    /* nested tables: headers and keys two spaces deeper per level, no blank line */
    expect(TO_TOML("{a: {b: {c: {d: 1}}, e: 2}}"),
           "[a]\n  e = 2\n  [a.b]\n    [a.b.c]\n      d = 1");
    /* keys in byte order; quoted unless [A-Za-z0-9_-]+ */
    expect(TO_TOML("{b: 1, B: 2, \"a b\": 3, \"\": 4, \"\\n\": \"\\n\", x.y: 5}"),
           "\"\" = 4\n\"\\n\" = \"\\n\"\nB = 2\n\"a b\" = 3\nb = 1\n\"x.y\" = 5");
    expect(TO_TOML("{\"\": {v: 1}, \"a.b\": {c: {d: 1}}}"),
           "[\"\"]\n  v = 1\n\n[\"a.b\"]\n  [\"a.b\".c]\n    d = 1");
    /* nil values are left out; an empty map is a header alone */
    expect(TO_TOML("{a: ~, b: {}, c: 1}"), "c = 1\n\n[b]");
}

static void test_to_toml_values(void **state)
{
    expect(TO_TOML("{IntArray0: [], IntArray3: [1, 2, 3]}"),
           "IntArray0 = []\nIntArray3 = [1, 2, 3]");
    /* lists inside lists, and tables inside them inline */
    expect(TO_TOML("{arr: [[{a: [hello, world], b: [1.12, 4.1], c: 1, d: {e: E}, "
                   "g: [{A: 3, B: 4}, {A: 5, B: 6}]}]]}"),
           "arr = [[{a = [\"hello\", \"world\"], b = [1.12, 4.1], c = 1, d = {e = \"E\"}, "
           "g = [{A = 3, B = 4}, {A = 5, B = 6}]}]]");
    expect(TO_TOML("{Slices: [[{Int: 1}], [{Int: 2}], [{Int: 3}]]}"),
           "Slices = [[{Int = 1}], [{Int = 2}], [{Int = 3}]]");
    /* a list of maps and other values is inline, not an array of tables */
    expect(TO_TOML("{l: [{a: 1}, 2]}"), "l = [{a = 1}, 2]");
    /* and an inline table leaves nil values out too, the last one included */
    expect(TO_TOML("{l: [{a: 1, b: ~}, 2], m: [{z: ~, a: 1, c: [3]}, 4]}"),
           "l = [{a = 1}, 2]\nm = [{a = 1, c = [3]}, 4]");
    /* floats as FormatFloat(f, 'f', -1, 64) with ".0" added: no exponent */
    expect("{{ parseJSON `{\"a\":8080,\"b\":0.5,\"c\":1e21,\"d\":1e-7,\"e\":-2,\"f\":1e23}` "
           "| toTOML }}",
           "a = 8080.0\nb = 0.5\nc = 1000000000000000000000.0\nd = 0.0000001\ne = -2.0\n"
           "f = 100000000000000000000000.0");
    expect(TO_TOML("{t: true, f: false, i: -9223372036854775808}"),
           "f = false\ni = -9223372036854775808\nt = true");
    /* basic strings: " and \\ escaped, controls by name or as \\u00XX, UTF-8 as it is */
    expect("{{ parseJSON `{\"s\":\"q\\\" b\\\\ \\u0001 \\u007f \\t\\r\\b\\f é\"}` | toTOML }}",
           "s = \"q\\\" b\\\\ \\u0001 \\u007f \\t\\r\\b\\f é\"");
    /* a bare value is written as one */
    expect("{{ \"x\" | toTOML }}", "\"x\"");
    expect("{{ loop 3 | toTOML }}", "[0, 1, 2]");
}

static void test_to_toml_refused(void **state)
{
    expect(TO_TOML("{a: [1, ~]}"),
           "!in.ctmpl:1:30: error calling toTOML: toTOML: toml: cannot encode array with nil "
           "element");
    expect(TO_TOML("{a: {b: [[1, ~]]}}"),
           "!in.ctmpl:1:37: error calling toTOML: toTOML: toml: cannot encode array with nil "
           "element");
    expect(TO_TOML("[{a: 1}]"), "!in.ctmpl:1:27: error calling toTOML: toTOML: toml: top-level "
                                "values must be Go maps or structs");
    expect("{{ toTOML nil }}",
           "!in.ctmpl:1:4: error calling toTOML: toTOML: toml: cannot encode nil");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_toml_consul_template),
        cmocka_unit_test(test_to_toml_tables),
        cmocka_unit_test(test_to_toml_values),
        cmocka_unit_test(test_to_toml_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
