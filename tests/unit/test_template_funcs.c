/*
 * consul-template's map and template helpers: mergeMap and mergeMapWithOverride (mergo's
 * rules: dst keeps its non-empty values unless overridden, maps merge at every depth, lists
 * are values), executeTemplate (a definition's output as a string) and byPort (services by
 * port); the functions still refused fail at parse time.
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

#define DST                                                                                        \
    "{{ $d := parseJSON "                                                                          \
    "`{\"a\":1,\"e\":\"\",\"l\":[1],\"m\":{\"x\":1,\"y\":{\"p\":1}},\"s\":\"d\"}` }}"
#define SRC                                                                                        \
    "{{ $s := parseJSON "                                                                          \
    "`{\"a\":2,\"e\":\"s\",\"l\":[2,3],\"m\":{\"x\":2,\"y\":{\"q\":2},\"z\":3},\"n\":null,\"s\":"  \
    "\"\",\"t\":true}` }}"

static void test_merge_map(void **state)
{
    /* dst's non-empty values stay; empty ones and missing keys take src's; maps merge */
    expect(DST SRC "{{ mergeMap $d $s | toJSON }}",
           "{\"a\":1,\"e\":\"s\",\"l\":[1],\"m\":{\"x\":1,\"y\":{\"p\":1,\"q\":2},\"z\":3},"
           "\"s\":\"d\",\"t\":true}");
    /* with override src's values win, an empty string and a null too; maps still merge */
    expect(DST SRC "{{ mergeMapWithOverride $d $s | toJSON }}",
           "{\"a\":2,\"e\":\"s\",\"l\":[2,3],\"m\":{\"x\":2,\"y\":{\"p\":1,\"q\":2},\"z\":3},"
           "\"n\":null,\"s\":\"\",\"t\":true}");
    /* the arguments are left as they were */
    expect(DST SRC "{{ $m := mergeMapWithOverride $d $s }}{{ $d.a }} {{ $s.a }} {{ $m.a }}",
           "1 2 2");
    expect("{{ mergeMap (parseJSON `{}`) \"x\" }}",
           "!in.ctmpl:1:4: wrong type for value; expected map[string]interface {}; got string");
}

static void test_execute_template(void **state)
{
    expect("{{ define \"srv\" }}{{ .Name }}:{{ .Port }}{{ end }}"
           "{{ $m := parseJSON `{\"Name\":\"web\",\"Port\":80}` }}"
           "[{{ executeTemplate \"srv\" $m | toUpper }}]",
           "[WEB:80]");
    /* without a value dot is nil; the caller's variables are not seen, its output untouched */
    expect("{{ define \"d\" }}<{{ . }}>{{ end }}{{ $x := 1 }}a{{ $v := executeTemplate \"d\" }}b"
           "{{ $v }}",
           "ab<<no value>>");
    expect("{{ executeTemplate \"nope\" }}",
           "!in.ctmpl:1:4: error calling executeTemplate: template: no template \"nope\" "
           "associated with template \"in.ctmpl\"");
    expect("{{ define \"r\" }}{{ executeTemplate \"r\" }}{{ end }}{{ template \"r\" }}",
           "!in.ctmpl:1:20: exceeded maximum template depth (200)");
}

static void test_by_port(void **state)
{
    /* ports from parseYAML, whose numbers are integers as a registry's are */
    expect(
        "{{ $s := parseYAML `[{ID: a, Port: 8080}, {ID: b, Port: 80}, {ID: c, Port: 8080}, "
        "{ID: d, ServicePort: 80}, {ID: e}]` }}"
        "{{ range $p, $l := byPort $s }}{{ $p }}:{{ range $l }}{{ .ID }}{{ end }} {{ end }}"
        "{{ range index (byPort $s) 8080 }}{{ .ID }}{{ end }} {{ len (index (byPort $s) \"80\") }}"
        " {{ byPort nil | len }}",
        "80:bd 8080:ac ac 2 0");
    expect("{{ byPort \"x\" }}", "!in.ctmpl:1:4: byPort: wrong argument type string");
    /* range visits the ports by number, as Go ranges a map[int], and the keys are integers */
    expect("{{ $s := parseYAML `[{ID: a, Port: 8080}, {ID: b, Port: 443}, {ID: c, Port: 80}, "
           "{ID: d, Port: 9}]` }}{{ $m := byPort $s }}"
           "{{ range $p, $l := $m }}{{ $p | add 1 }}:{{ (index $l 0).ID }} {{ end }}"
           "{{ with $m }}{{ range $p, $_ := . }}{{ $p }} {{ end }}{{ end }}",
           "10:d 81:c 444:b 8081:a 9 80 443 8080 ");
    /* toJSON writes Go's int keys as strings, in their text order */
    expect("{{ range $k, $_ := parseYAML `[{Port: 443}, {Port: 80}]` | byPort | toJSON | "
           "parseJSON }} {{ $k }}{{ end }}",
           " 443 80");
}

/* consul-template's in(): integers, floats and strings match, each only its own kind */
static void test_in(void **state)
{
    expect("{{ $l := parseYAML `[1, 2.5, a, true, null, [x], {k: v}]` }}"
           "{{ in $l 1 }} {{ in $l 2.5 }} {{ in $l \"a\" }} {{ in $l 1.0 }} {{ in $l true }} "
           "{{ in $l nil }} {{ in $l (parseYAML `[x]`) }} {{ $l | contains true }} "
           "{{ containsAny (parseYAML `[true, 1]`) $l }} {{ containsAll (parseYAML `[true]`) $l }}",
           "true true true false false false false false true false");
    expect("{{ \"abc\" | contains \"b\" }} {{ in \"abc\" \"d\" }}", "true false");
}

/* consul-template's template_test.go cases for loop and parseInt, with its outputs */
static void test_loop_and_parse_int(void **state)
{
    expect("{{ range loop 1 \"3\" }}1{{ end }}", "11");
    expect("{{ $i := print \"3\" | parseInt }}{{ range loop 1 $i }}1{{ end }}", "11");
    expect("{{ $n := 3 }}{{ range $i := loop $n }}{{ $i }}{{ end }}", "012");
    expect("{{ \"-1\" | parseInt }} {{ \"+7\" | parseInt }} {{ parseInt \"\" }}", "-1 7 0");
    expect("{{ range loop \"\" }}x{{ else }}none{{ end }}", "none");
}

static void test_still_refused(void **state)
{
    expect("a\n  {{ sockaddr . }}", "!in.ctmpl:2:6: function \"sockaddr\" not supported");
    expect("{{ plugin \"x\" }}", "!in.ctmpl:1:4: function \"plugin\" not supported");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_map), cmocka_unit_test(test_execute_template),
        cmocka_unit_test(test_by_port),   cmocka_unit_test(test_loop_and_parse_int),
        cmocka_unit_test(test_in),        cmocka_unit_test(test_still_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
