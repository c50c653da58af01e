/*
 * toYAML and parseYAML against what consul-template's tests and gopkg.in/yaml.v2's (the library
 * it calls) expect, byte for byte: YAML 1.1 resolution (yes, 0x1f, 017, ~), yaml.v2's quoting
 * and key order, and the refusals (syntax errors, aliases that explode, values a template
 * cannot hold).
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

/* toYAML of the JSON j (parsed by parseJSON, so numbers are float64 as in Go) */
#define TO_YAML(j) "{{ parseJSON `" j "` | toYAML }}"

static void test_to_yaml_consul_template(void **state)
{
    /* consul-template's helper_toYAML */
    expect("{{ \"{\\\"foo\\\":\\\"bar\\\"}\" | parseJSON | toYAML }}", "foo: bar");
}

/* yaml.v2's marshal tests that a template can build: maps of strings, numbers, lists */
static void test_to_yaml_scalars(void **state)
{
    expect(TO_YAML("{\"v\":\"hi\"}"), "v: hi");
    expect(TO_YAML("{\"v\":\"true\"}"), "v: \"true\"");
    expect(TO_YAML("{\"v\":\"false\"}"), "v: \"false\"");
    expect(TO_YAML("{\"v\":true}"), "v: true");
    expect(TO_YAML("{\"v\":false}"), "v: false");
    expect(TO_YAML("{\"v\":10}"), "v: 10");
    expect(TO_YAML("{\"v\":-10}"), "v: -10");
    expect(TO_YAML("{\"v\":4294967296}"), "v: 4.294967296e+09"); /* a float64, as in Go */
    expect(TO_YAML("{\"v\":\"10\"}"), "v: \"10\"");
    expect(TO_YAML("{\"v\":0.1}"), "v: 0.1");
    expect(TO_YAML("{\"v\":-0.1}"), "v: -0.1");
    expect(TO_YAML("{\"v\":null}"), "v: null");
    expect(TO_YAML("{\"v\":\"\"}"), "v: \"\"");
    expect(TO_YAML("{\"a\":\"-\"}"), "a: '-'");
    expect(TO_YAML("{\"a\":\"<foo>\"}"), "a: <foo>");
    expect(TO_YAML("{\"a\":\"1:1\"}"), "a: \"1:1\""); /* a YAML 1.1 base-60 float */
    expect(TO_YAML("{\"a\":\"\\u0000\"}"), "a: \"\\0\"");
    expect(TO_YAML("{\"a\":\"你好\"}"), "a: 你好");
    expect(TO_YAML("{\"a\":\"2015-02-24T18:19:39Z\"}"), "a: \"2015-02-24T18:19:39Z\"");
    expect(TO_YAML("{\"a\":\"b: c\"}"), "a: 'b: c'");
    expect(TO_YAML("{\"a\":\"Hello #comment\"}"), "a: 'Hello #comment'");
    expect(TO_YAML("{\"a\":\"你好 #comment\"}"), "a: '你好 #comment'");
    /* YAML 1.1's other words and numbers are quoted too */
    expect(TO_YAML("[\"yes\",\"off\",\"~\",\"0x1f\",\"1_000\",\".5\",\"1e3\",\"2001-12-14\","
                   "\".inf\",\"-\",\"y\",\"0b2\",\"1e\",\"2001-13-01\"]"),
           "- \"yes\"\n- \"off\"\n- \"~\"\n- \"0x1f\"\n- \"1_000\"\n- \".5\"\n- \"1e3\"\n"
           "- \"2001-12-14\"\n- \".inf\"\n- '-'\n- \"y\"\n- 0b2\n- 1e\n- 2001-13-01");
    /* numbers as Go's FormatFloat(f, 'g', -1, 64) writes a float64; integers as they are */
    expect(TO_YAML("[8080,1234567,1e21,1e-7,0.5]"),
           "- 8080\n- 1.234567e+06\n- 1e+21\n- 1e-07\n- 0.5");
    expect("{{ loop 3 | toYAML }}", "- 0\n- 1\n- 2");
    /* a bare value, and nil */
    expect("{{ \"foo\" | toYAML }}", "foo");
    expect("{{ toYAML 7 }}", "7");
    expect("{{ toYAML nil }}", "null");
}

static void test_to_yaml_collections(void **state)
{
    expect(TO_YAML("{\"v\":[\"A\",\"B\"]}"), "v:\n- A\n- B");
    expect(TO_YAML("{\"v\":[\"A\",\"B\\nC\"]}"), "v:\n- A\n- |-\n  B\n  C");
    expect(TO_YAML("{\"v\":[\"A\",1,{\"B\":[2,3]}]}"), "v:\n- A\n- 1\n- B:\n  - 2\n  - 3");
    expect(TO_YAML("{\"a\":{\"b\":\"c\"}}"), "a:\n  b: c");
    expect(TO_YAML("{\"a\":{},\"b\":[]}"), "a: {}\nb: []");
    expect(TO_YAML("{}"), "{}");
    /* a trailing line break is kept (|), several too (|+); a key with one is a complex key */
    expect(TO_YAML("{\"a\":\"x\\n\",\"b\":\"y\\n\\n\",\"c\":\"  z\\nw\"}"),
           "a: |\n  x\nb: |+\n  y\n\nc: |2-\n    z\n  w");
    expect(TO_YAML("{\"a\\nb\":1}"), "? |-\n  a\n  b\n: 1");
    /* yaml.v2's key order: non-letters before letters, digit runs by value */
    expect(TO_YAML("{\"b\":1,\"a10\":1,\"a2\":1,\"A\":1,\"1\":1,\"_x\":1,\"a02\":1}"),
           "_x: 1\n\"1\": 1\nA: 1\na2: 1\na02: 1\na10: 1\nb: 1");
    /* a run of digits past int64 is added up as yaml.v2 does, without overflowing */
    expect(TO_YAML("{\"a99999999999999999999\":1,\"a1\":2}"), "a1: 2\na99999999999999999999: 1");
    /* yaml.v2 breaks a line longer than 80 columns at a space */
    expect(TO_YAML("{\"a\":\"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 "
                   "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 \"}"),
           "a: 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 "
           "abcdefghijklmnopqrstuvwxyz\n  ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 '");
}

static void test_to_yaml_binary(void **state)
{
    /* invalid UTF-8 is written as !!binary, base64 in lines of 70 */
    expect("a: {{ \"\\x80\\x81\\x82\" | toYAML }}", "a: !!binary gIGC");
    char src[512], want[256];
    int n = snprintf(src, sizeof(src), "{{ \"");
    for (int i = 0; i < 54; i++)
        n += snprintf(src + n, sizeof(src) - (size_t)n, "\\x90");
    snprintf(src + n, sizeof(src) - (size_t)n, "\" | toYAML }}");
    memmove(src + 2, src, strlen(src) + 1); /* a want starting with "!" would be an error */
    memcpy(src, "a ", 2);
    n = snprintf(want, sizeof(want), "a !!binary |\n  ");
    for (int i = 0; i < 17; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "kJCQ");
    snprintf(want + n, sizeof(want) - (size_t)n, "kJ\n  CQ");
    expect(src, want);
}

static void test_parse_yaml_consul_template(void **state)
{
    /* consul-template's helper_parseYAML, helper_parseYAMLv2 and helper_parseYAMLnested */
    expect("{{ \"foo: bar\" | parseYAML }}", "map[foo:bar]");
    expect("{{ \"foo: bar\\nbaz: \\\"foo\\\"\" | parseYAML }}", "map[baz:foo foo:bar]");
    expect("{{ \"foo:\\n  bar: \\\"baz\\\"\\n  baz: 7\" | parseYAML }}",
           "map[foo:map[bar:baz baz:7]]");
}

static void test_parse_yaml_types(void **state)
{
    /* YAML 1.1 as yaml.v2 reads it: words, bases, underscores, timestamps kept as strings */
    expect("{{ parseYAML `"
           "a: yes\nb: 0x1f\nc: 1_000\nd: 017\ne: 1.5\nf: ~\ng: 2001-12-14\nh: '10'\ni: 08\n"
           "j: .5\nk: Off\nl: -0b11\nm: 0o17\nnn: 1e3\no: \"\"\np: +12\nq: 1:20\nr: 2001-12-14 "
           "21:59:43.10\ns:\nt: 9223372036854775807\nu: -9223372036854775808\n` | toJSON }}",
           "{\"a\":true,\"b\":31,\"c\":1000,\"d\":15,\"e\":1.5,\"f\":null,\"g\":\"2001-12-14\","
           "\"h\":\"10\",\"i\":8,\"j\":0.5,\"k\":false,\"l\":-3,\"m\":15,\"nn\":1000,\"o\":\"\","
           "\"p\":12,\"q\":\"1:20\",\"r\":\"2001-12-14 21:59:43.10\",\"s\":null,"
           "\"t\":9223372036854775807,\"u\":-9223372036854775808}");
    /* integers stay integers (int in Go), floats floats */
    expect("{{ $y := parseYAML `i: 7\nf: 7.0` }}{{ divide 2 $y.i }} {{ divide 2 $y.f }}", "3 3.5");
    /* lists, flow style, block scalars */
    expect("{{ parseYAML `- a\n- [1, {b: c}]\n- |\n  x\n  y\n- >-\n  p\n  q` | toJSON }}",
           "[\"a\",[1,{\"b\":\"c\"}],\"x\\ny\\n\",\"p q\"]");
    /* explicit tags */
    expect(
        "{{ parseYAML `[!!str 10, !!float 1, !!binary aGk=, !foo bar, !!int \"12\"]` | toJSON }}",
        "[\"10\",1,\"hi\",\"bar\",12]");
    /* y and n are booleans in YAML 1.1, keys too */
    expect("{{ parseYAML `y: 1\nn: 2` | toJSON }}", "{\"false\":2,\"true\":1}");
    /* keys that are not strings become their text, as Go prints them */
    expect("{{ parseYAML `1: a\ntrue: b\n0x10: c\n~: d` | toUnescapedJSON }}",
           "{\"1\":\"a\",\"16\":\"c\",\"<nil>\":\"d\",\"true\":\"b\"}");
    /* "" is an empty map (consul-template), a document of nothing nil, only the first one read */
    expect("{{ parseYAML \"\" | len }}", "0");
    expect("{{ parseYAML \"# nothing\" }}", "<no value>");
    expect("{{ parseYAML \"a: 1\\n---\\nb: 2\" }}", "map[a:1]");
}

static void test_parse_yaml_anchors(void **state)
{
    expect("{{ parseYAML `base: &b {p: 1, q: 2}\nd:\n  <<: *b\n  q: 3\nl: [*b, *b]` | toJSON }}",
           "{\"base\":{\"p\":1,\"q\":2},\"d\":{\"p\":1,\"q\":3},\"l\":[{\"p\":1,\"q\":2},"
           "{\"p\":1,\"q\":2}]}");
    /* a list of maps merges with the first one winning */
    expect("{{ parseYAML `a: &a {p: 1}\nb: &b {p: 2, q: 2}\nc:\n  <<: [*a, *b]` | toJSON }}",
           "{\"a\":{\"p\":1},\"b\":{\"p\":2,\"q\":2},\"c\":{\"p\":1,\"q\":2}}");
    expect("{{ parseYAML `a: &a [1]\nb:\n  <<: *a` }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 3: map merge requires map or "
           "sequence of maps as the value");
    expect("{{ parseYAML `a: *x` }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: unknown anchor 'x' referenced");
    expect(
        "{{ parseYAML `a: &x [1, *x]` }}",
        "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: anchor 'x' value contains itself");
    /* a "billion laughs" document is refused, not expanded */
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "{{ parseYAML `a: &a [z,z,z,z,z,z,z,z,z,z]\n");
    for (char c = 'b'; c <= 'i'; c++)
        buf_printf(&b, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c, c, c - 1, c - 1,
                   c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    buf_append_cstr(&b, "` | len }}");
    expect(b.data, "!in.ctmpl:1:4: error calling parseYAML: yaml: line 4: document contains "
                   "excessive aliasing");
    buf_free(&b);
}

static void test_parse_yaml_refused(void **state)
{
    /* syntax errors as yaml.v2 words them (libyaml's messages, yaml.v2's line numbers) */
    expect("{{ parseYAML \"a: [\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: did not find expected node "
           "content");
    expect("{{ parseYAML \"a: b: c\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: mapping values are not allowed in this "
           "context");
    expect("{{ parseYAML \"a: 1\\n b: 2\\nc\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 2: mapping values are not allowed "
           "in this context");
    expect("{{ parseYAML \"a: !!int abc\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: cannot decode !!str `abc` as a "
           "!!int");
    /* what a template's values cannot hold */
    expect("{{ parseYAML \"a: 18446744073709551615\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: integer larger than "
           "9223372036854775807");
    expect("{{ parseYAML \"a: .inf\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: infinite and NaN floats are not "
           "supported");
    expect("{{ parseYAML \"? [1]\\n: a\" }}",
           "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: a map key must be a scalar");
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "{{ parseYAML `");
    for (int i = 0; i < 2100; i++)
        buf_append_cstr(&b, "[");
    buf_append_cstr(&b, "` }}");
    expect(b.data, "!in.ctmpl:1:4: error calling parseYAML: yaml: line 1: nesting deeper than "
                   "2048 levels");
    buf_free(&b);
    expect("{{ parseYAML 1 }}", "!in.ctmpl:1:4: wrong type for value; expected string; got int");
}

static void test_yaml_round_trip(void **state)
{
    expect("{{ parseYAML `b: [1, 2.5, yes, null]\na: {c: \"x y\", d: \"on\"}` | toYAML }}",
           "a:\n  c: x y\n  d: \"on\"\nb:\n- 1\n- 2.5\n- true\n- null");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_yaml_consul_template),
        cmocka_unit_test(test_to_yaml_scalars),
        cmocka_unit_test(test_to_yaml_collections),
        cmocka_unit_test(test_to_yaml_binary),
        cmocka_unit_test(test_parse_yaml_consul_template),
        cmocka_unit_test(test_parse_yaml_types),
        cmocka_unit_test(test_parse_yaml_anchors),
        cmocka_unit_test(test_parse_yaml_refused),
        cmocka_unit_test(test_yaml_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
