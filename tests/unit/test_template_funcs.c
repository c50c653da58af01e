/*
 * consul-template's map and template helpers: mergeMap and mergeMapWithOverride (mergo's
 * rules: dst keeps its non-empty values unless overridden, maps merge at every depth, lists
 * are values) and executeTemplate (a definition's output as a string); the functions still
 * refused fail at parse time.
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

/* Renders src (no data) and compares with want; a want starting with "!" is the error. */
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

static void test_still_refused(void **state)
{
    expect("a\n  {{ toYAML . }}", "!in.ctmpl:2:6: function \"toYAML\" not supported");
    expect("{{ byPort (service \"web\") }}", "!in.ctmpl:1:4: function \"byPort\" not supported");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_map),
        cmocka_unit_test(test_execute_template),
        cmocka_unit_test(test_still_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
