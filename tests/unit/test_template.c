/*
 * The template language: golden files (tests/unit/golden/template/NAME.ctmpl rendered against
 * the registry answers in answers.json must give NAME.out), multi-pass rendering, parse and
 * runtime error positions, dependency parsing and the -template flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "template/runner.h"
#include "template/tmpl.h"

static char *golden_path(const char *name)
{
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 1;
    return xasprintf("%.*s/golden/template/%s", dir, slash ? __FILE__ : ".", name);
}

static char *slurp(const char *name, size_t *len)
{
    char *path = golden_path(name);
    FILE *f = fopen(path, "rb");
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    free(path);
    *len = b.len;
    return b.data ? buf_steal(&b) : xstrdup("");
}

static void store_free(struct smap *store)
{
    smap_foreach(store, e) json_decref(e->val);
    smap_free(store);
}

/*
 * Renders like the runner: each pass feeds the dependencies it asked for from answers (id ->
 * {status, body}) through tmpl_dep_decode, until a pass has everything. Returns the passes.
 */
static int render_with(const struct tmpl *t, const json_t *answers, struct buf *out)
{
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct err e;
    int passes = 0;

    for (;;) {
        buf_reset(out);
        passes++;
        /* an error while data is missing may come from the placeholders: only a complete
         * pass's error counts, as in the runner */
        if (tmpl_render(t, &store, out, &used, &e) < 0 && used.missing == 0)
            fail_msg("%s", e.msg);
        if (used.missing == 0) {
            tmpl_used_free(&used);
            break;
        }
        assert_true(passes < 5);
        for (size_t i = 0; i < used.n; i++) {
            json_t *a = json_object_get(answers, used.deps[i].id), *body;
            struct buf text = BUF_INIT;
            if (!a)
                fail_msg("no answer for %s", used.deps[i].id);
            body = json_object_get(a, "body");
            if (body)
                json_append(&text, body, false);
            json_t *v = tmpl_dep_decode(&used.deps[i],
                                        (int)json_integer_value(json_object_get(a, "status")),
                                        text.data ? text.data : "", text.len, &e);
            if (!v)
                fail_msg("%s: %s", used.deps[i].id, e.msg);
            json_decref(smap_put(&store, used.deps[i].id, v));
            buf_free(&text);
        }
        tmpl_used_free(&used);
    }
    store_free(&store);
    return passes;
}

static void golden(const char *name, int want_passes)
{
    size_t len, alen, wlen;
    char *file = xasprintf("%s.ctmpl", name), *outname = xasprintf("%s.out", name);
    char *src = slurp(file, &len), *raw = slurp("answers.json", &alen), *want;
    json_t *answers = json_loadb(raw, alen, 0, NULL);
    struct tmpl *t = NULL;
    struct buf out = BUF_INIT;
    struct err e;

    assert_non_null(answers);
    if (tmpl_parse(file, src, len, &t, &e) < 0)
        fail_msg("%s", e.msg);
    int passes = render_with(t, answers, &out);
    want = slurp(outname, &wlen);
    assert_string_equal(out.data ? out.data : "", want);
    if (want_passes)
        assert_int_equal(passes, want_passes);
    buf_free(&out);
    tmpl_free(t);
    json_decref(answers);
    free(want);
    free(raw);
    free(src);
    free(file);
    free(outname);
}

static void test_golden_haproxy(void **state)
{
    golden("haproxy", 2);
}

static void test_golden_health(void **state)
{
    golden("health", 2);
}

static void test_golden_kv(void **state)
{
    /* pass 1 asks for every key (parseInt of one not fetched yet reads "" as 0, as
     * consul-template's does); node without a name needs agent/self before the node (pass 2);
     * pass 3 has everything */
    golden("kv", 3);
}

static void test_golden_lang(void **state)
{
    setenv("MESH_TEMPLATE_TEST_VAR", "set-value", 1);
    unsetenv("MESH_TEMPLATE_TEST_UNSET");
    golden("lang", 2);
}

/* A key that does not exist holds the render back; keyOrDefault does not. */
static void test_missing_key_blocks(void **state)
{
    const char *src = "{{ key \"a\" }}{{ keyOrDefault \"b\" \"d\" }}";
    struct tmpl *t;
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct buf out = BUF_INIT;
    struct err e;

    assert_int_equal(tmpl_parse("k", src, strlen(src), &t, &e), 0);
    assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
    assert_int_equal(used.n, 2);
    assert_int_equal(used.missing, 2);
    tmpl_used_free(&used);
    smap_put(&store, "kv.get(a)", json_null());
    smap_put(&store, "kv.get(b)", json_null());
    buf_reset(&out);
    assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
    assert_int_equal(used.missing, 1);
    assert_string_equal(out.data, "d");
    tmpl_used_free(&used);
    json_decref(smap_put(&store, "kv.get(a)", json_string("v")));
    buf_reset(&out);
    assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
    assert_int_equal(used.missing, 0);
    assert_string_equal(out.data, "vd");
    tmpl_used_free(&used);
    store_free(&store);
    buf_free(&out);
    tmpl_free(t);
}

/* safeLs and safeTree hold the render back while their prefix has no pair; ls and tree do not. */
static void test_safe_lists_block(void **state)
{
    const char *src = "{{ range safeTree \"app\" }}{{ .Key }};{{ end }}{{ range ls \"other\" }}x"
                      "{{ end }}{{ len (safeLs \"app\") }}";
    struct tmpl *t;
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct buf out = BUF_INIT;
    struct err e;

    assert_int_equal(tmpl_parse("k", src, strlen(src), &t, &e), 0);
    smap_put(&store, "kv.list(app)", json_array());
    smap_put(&store, "kv.list(other)", json_array());
    assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
    assert_int_equal(used.n, 2);
    assert_int_equal(used.missing, 2); /* one for each safe call; ls "other" is complete */
    tmpl_used_free(&used);
    json_decref(smap_put(&store, "kv.list(app)",
                         json_pack("[{s:s, s:s}, {s:s, s:s}]", "Path", "app/a", "Value", "1",
                                   "Path", "app/d/b", "Value", "2")));
    buf_reset(&out);
    assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
    assert_int_equal(used.missing, 0);
    assert_string_equal(out.data, "a;d/b;1");
    tmpl_used_free(&used);
    store_free(&store);
    buf_free(&out);
    tmpl_free(t);
}

struct error_case {
    const char *src, *msg;
};

static void test_parse_errors(void **state)
{
    static const struct error_case cases[] = {
        {"line one\n  {{ range servce \"web\" }}",
         "in.ctmpl:2:12: function \"servce\" not defined"},
        {"{{ $x }}", "in.ctmpl:1:4: undefined variable \"$x\""},
        {"{{ if true }}x", "in.ctmpl:1:15: unexpected EOF in if"},
        {"{{ end }}", "in.ctmpl:1:4: unexpected {{end}}"},
        {"a\n{{ else }}", "in.ctmpl:2:4: unexpected {{else}}"},
        {"{{ \"abc }}", "in.ctmpl:1:4: unterminated quoted string"},
        {"{{ .A", "in.ctmpl:1:6: unclosed action"},
        {"{{ if }}{{ end }}", "in.ctmpl:1:7: missing value for command"},
        {"{{/* c */ x }}", "in.ctmpl:1:3: comment ends before closing delimiter"},
        {"{{ /* c */ }}", "in.ctmpl:1:4: unrecognized character in action: U+002F '/'"},
        {"{{ 1x }}", "in.ctmpl:1:4: bad number syntax: \"1x\""},
        {"{{ template \"x\" }}", "in.ctmpl:1:4: template \"x\" not defined"},
        {"{{ template x }}", "in.ctmpl:1:13: unexpected \"x\" in template clause"},
        {"{{ block \"b\" }}{{ end }}", "in.ctmpl:1:14: missing value for command"},
        {"{{ define \"a\" }}x", "in.ctmpl:1:18: unexpected EOF in define"},
        {"{{ define \"a\" }}{{ end }}{{ define \"a\" }}{{ end }}",
         "in.ctmpl:1:36: multiple definition of template \"a\""},
        {"{{ if 1 }}{{ define \"a\" }}{{ end }}{{ end }}",
         "in.ctmpl:1:14: {{define}} only at the top level of a template"},
        /* a definition sees no variable of the text around it, but its own $ */
        {"{{ $x := 1 }}{{ define \"a\" }}{{ $ }}{{ $x }}{{ end }}",
         "in.ctmpl:1:40: undefined variable \"$x\""},
        {"{{ break }}", "in.ctmpl:1:4: {{break}} outside {{range}}"},
        {"{{ range 1 }}{{ else }}{{ continue }}{{ end }}",
         "in.ctmpl:1:27: {{continue}} outside {{range}}"},
        {"{{ range 1 }}{{ define \"a\" }}{{ break }}{{ end }}{{ end }}",
         "in.ctmpl:1:17: {{define}} only at the top level of a template"},
        {"{{ range 1 }}{{ block \"a\" . }}{{ break }}{{ end }}{{ end }}",
         "in.ctmpl:1:34: {{break}} outside {{range}}"},
        {"{{ range 1 }}{{ break 1 }}{{ end }}", "in.ctmpl:1:23: unexpected \"1\" in break"},
        /* consul-template's functions this renderer lacks say so */
        {"{{ sockaddr \"{}\" }}", "in.ctmpl:1:4: function \"sockaddr\" not supported"},
        {"{{ sprig_list }}", "in.ctmpl:1:4: function \"sprig_list\" not supported"},
        /* scratch stands only with one of its methods; other functions have no fields */
        {"{{ scratch }}", "in.ctmpl:1:4: scratch needs a method: scratch.Set, scratch.Get, ..."},
        {"{{ scratch.Put \"a\" 1 }}", "in.ctmpl:1:4: scratch has no method Put (Key, Get, Set, "
                                      "SetX, MapSet, MapSetX, MapValues)"},
        {"{{ scratch.Get.X \"a\" }}", "in.ctmpl:1:4: scratch has no method Get (Key, Get, Set, "
                                      "SetX, MapSet, MapSetX, MapValues)"},
        {"{{ services.Name }}", "in.ctmpl:1:4: unexpected . after term \"services\""},
        {"{{ a := 1 }}", "in.ctmpl:1:4: function \"a\" not defined"},
        {"{{ $a, $b := 1 }}", "in.ctmpl:1:4: undefined variable \"$a\""},
        {"{{ 3 | }}", "in.ctmpl:1:8: missing value for command"},
    };
    struct tmpl *t = NULL;
    struct err e;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        if (tmpl_parse("in.ctmpl", cases[i].src, strlen(cases[i].src), &t, &e) == 0)
            fail_msg("parsed: %s", cases[i].src);
        assert_string_equal(e.msg, cases[i].msg);
    }
    /* fuzz: a NUL byte inside an action was taken for one of the one-character tokens */
    assert_int_equal(tmpl_parse("in.ctmpl", "{{ \0\5", 5, &t, &e), -EINVAL);
    assert_string_equal(e.msg, "in.ctmpl:1:4: unrecognized character in action: U+0000");
    /* fuzz: a backslash as the last byte of a quoted string read past the input */
    assert_int_equal(tmpl_parse("in.ctmpl", "{{ \"a\\", 6, &t, &e), -EINVAL);
    assert_string_equal(e.msg, "in.ctmpl:1:7: unterminated quoted string");
}

/* Each case parses, then fails to render (with no registry data) with exactly its message. */
static void expect_render_errors(const struct error_case *cases, size_t n)
{
    struct smap store = SMAP_INIT;
    struct buf out = BUF_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;

    for (size_t i = 0; i < n; i++) {
        if (tmpl_parse("in.ctmpl", cases[i].src, strlen(cases[i].src), &t, &e) < 0)
            fail_msg("%s: %s", cases[i].src, e.msg);
        if (tmpl_render(t, &store, &out, &used, &e) == 0)
            fail_msg("rendered: %s", cases[i].src);
        assert_string_equal(e.msg, cases[i].msg);
        tmpl_used_free(&used);
        tmpl_free(t);
        buf_reset(&out);
    }
    buf_free(&out);
}

static void test_runtime_errors(void **state)
{
    static const struct error_case cases[] = {
        {"x\n {{ index (split \",\" \"a\") 3 }}",
         "in.ctmpl:2:5: error calling index: index out of range: 3"},
        {"{{ .A.B }}", "in.ctmpl:1:4: nil pointer evaluating interface {}.A"},
        {"{{ $s := \"x\" }}{{ $s.Field }}",
         "in.ctmpl:1:19: can't evaluate field Field in type string"},
        {"{{ lt 1 \"a\" }}",
         "in.ctmpl:1:4: error calling lt: incompatible types for comparison: int and string"},
        {"{{ toLower 3 }}", "in.ctmpl:1:4: wrong type for value; expected string; got int"},
        /* every function's argument types are checked by the one call path, in order */
        {"{{ regexReplaceAll \"a\" 1 \"x\" }}",
         "in.ctmpl:1:4: wrong type for value; expected string; got int"},
        {"{{ service \"web\" 2.5 }}",
         "in.ctmpl:1:4: wrong type for value; expected string; got float64"},
        {"{{ byMeta \"v\" \"x\" }}",
         "in.ctmpl:1:4: wrong type for value; expected []string; got string"},
        {"{{ loop 2.5 }}", "in.ctmpl:1:4: error calling loop: loop: bad argument type: float64"},
        {"{{ loop 1 \"3x\" }}",
         "in.ctmpl:1:4: error calling loop: parseInt: strconv.ParseInt: parsing \"3x\": invalid "
         "syntax"},
        {"{{ loop 1 2 3 }}", "in.ctmpl:1:4: error calling loop: loop: wrong number of arguments, "
                             "expected 1 or 2, but got 3"},
        {"{{ toUpper }}", "in.ctmpl:1:4: wrong number of args for toUpper: want 1 got 0"},
        {"{{ parseInt \"x1\" }}",
         "in.ctmpl:1:4: error calling parseInt: parseInt: strconv.ParseInt: parsing \"x1\": "
         "invalid syntax"},
        /* Go's ParseInt takes no spaces, and its error quotes the text */
        {"{{ parseInt \"\\r5\" }}",
         "in.ctmpl:1:4: error calling parseInt: parseInt: strconv.ParseInt: parsing \"\\r5\": "
         "invalid syntax"},
        {"{{ parseInt \"9223372036854775808\" }}",
         "in.ctmpl:1:4: error calling parseInt: parseInt: strconv.ParseInt: parsing "
         "\"9223372036854775808\": value out of range"},
        {"{{ service \"web|bogus\" }}",
         "in.ctmpl:1:4: service \"web|bogus\": unknown health filter \"bogus\""},
        {"{{ service \"a b\" }}", "in.ctmpl:1:4: service \"a b\": invalid format"},
        {"{{ range \"s\" }}{{ end }}", "in.ctmpl:1:4: range can't iterate over string"},
        {"{{ len 3 }}", "in.ctmpl:1:4: error calling len: len of type int"},
        {"{{ join }}", "in.ctmpl:1:4: wrong number of args for join: want 2 got 0"},
        {"{{ \"x\" 1 }}", "in.ctmpl:1:4: can't give argument to non-function x"},
        {"{{ regexMatch \"(\" \"x\" }}",
         "in.ctmpl:1:4: error calling regexMatch: error parsing regexp: Unmatched ( or \\(: `(`"},
        {"{{ loop 1 2000000 }}", "in.ctmpl:1:4: error calling loop: more than 1000000 items"},
        /* TO - FROM overflowed int64: undefined behaviour, then 2^64 items */
        {"{{ loop -9223372036854775807 9223372036854775807 }}",
         "in.ctmpl:1:4: error calling loop: more than 1000000 items"},
        /* fuzz: a range over a huge integer ran for ever */
        {"{{ range 5555555555 }}{{ end }}",
         "in.ctmpl:1:4: range: more than 10000000 iterations in one render"},
        /* fuzz: glibc's regcomp copies repeated atoms; these took gigabytes */
        {"{{ regexMatch \"a*+++\" \"x\" }}",
         "in.ctmpl:1:4: error calling regexMatch: error parsing regexp: invalid nested "
         "repetition operator: `a*+++`"},
        {"{{ regexMatch \"(a{1,1000}){1,1000}\" \"x\" }}",
         "in.ctmpl:1:4: error calling regexMatch: error parsing regexp: expression too large: "
         "`(a{1,1000}){1,1000}`"},
        {"{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
         "in.ctmpl:1:20: exceeded maximum template depth (200)"},
        {"{{ regexMatch \"a{1001}\" \"x\" }}",
         "in.ctmpl:1:4: error calling regexMatch: error parsing regexp: invalid repeat count: "
         "`a{1001}`"},
    };

    expect_render_errors(cases, ARRAY_LEN(cases));
}

/* Renders src with no registry data; the output in out (a complete render expected). */
static void render_plain(const char *src, struct buf *out)
{
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;

    if (tmpl_parse("in.ctmpl", src, strlen(src), &t, &e) < 0)
        fail_msg("%s: %s", src, e.msg);
    if (tmpl_render(t, &store, out, &used, &e) < 0)
        fail_msg("%s: %s", src, e.msg);
    tmpl_used_free(&used);
    tmpl_free(t);
}

/* Each case renders (with no registry data) to exactly its msg. */
static void expect_renders(const struct error_case *cases, size_t n)
{
    struct buf out = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        buf_reset(&out);
        render_plain(cases[i].src, &out);
        if (out.len != strlen(cases[i].msg) || memcmp(out.data, cases[i].msg, out.len) != 0)
            fail_msg("%s: got \"%.*s\", want \"%s\"", cases[i].src, (int)out.len,
                     out.data ? out.data : "", cases[i].msg);
    }
    buf_free(&out);
}

/* `{{ parseJSON "{\"a/a/...\": 1}" | explodeMap | toJSON }}`, its key n segments long. */
static void deep_explode(struct buf *src, size_t n)
{
    buf_reset(src);
    buf_append_cstr(src, "{{ parseJSON `{\"a");
    for (size_t i = 1; i < n; i++)
        buf_append_cstr(src, "/a");
    buf_append_cstr(src, "\": 1}` | explodeMap | toJSON }}");
}

/* fuzz: one KV key "a/a/a..." made a map as deep as the key is long, and sorting it overflowed
 * the stack; a key as deep as parseJSON's deepest value still explodes. */
static void test_explode_bounds_depth(void **state)
{
    struct buf src = BUF_INIT, out = BUF_INIT;
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;

    (void)state;
    deep_explode(&src, 2048);
    render_plain(src.data, &out);
    assert_int_equal(out.len, 2048 * strlen("{\"a\":") + 1 + 2048);
    for (size_t n = 2049; n <= 200000; n += 200000 - 2049) {
        deep_explode(&src, n);
        assert_int_equal(tmpl_parse("in.ctmpl", src.data, src.len, &t, &e), 0);
        assert_int_equal(tmpl_render(t, &store, &out, &used, &e), -EINVAL);
        assert_string_equal(
            strchr(e.msg, ' ') + 1,
            "error calling explodeMap: explodeMap: a key of more than 2048 segments");
        tmpl_used_free(&used);
        tmpl_free(t);
    }
    buf_free(&src);
    buf_free(&out);
}

/* {{define}}, {{template}}, {{block}} and {{break}}, {{continue}} as Go runs them. */
static void test_define_and_loops(void **state)
{
    static const struct error_case cases[] = {
        /* text around the definitions stays; a definition prints only where it is used */
        {"{{ define \"T\" }}Hello {{ . }}{{ end }}\n{{ template \"T\" \"you\" }}!", "\nHello you!"},
        {"{{ template \"T\" }}{{ define \"T\" }}[{{ . }}]{{ end }}", "[<no value>]"},
        {"{{ define \"T\" }}{{ $ }}/{{ . }}{{ end }}{{ template \"T\" (index (split \",\" \"x\") "
         "0) }}",
         "x/x"},
        {"{{ $v := \"out\" }}{{ block \"B\" $v }}<{{ . }}>{{ end }}{{ template \"B\" \"again\" }}",
         "<out><again>"},
        /* variables of the caller are back after the call */
        {"{{ $x := 1 }}{{ define \"T\" }}{{ $x := 2 }}{{ $x }}{{ end }}{{ template \"T\" }}{{ $x "
         "}}",
         "21"},
        {"{{ range split \",\" \"a,b,c,d,e\" }}{{ if eq . \"b\" }}{{ continue }}{{ end }}"
         "{{ if eq . \"d\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
         "ac"},
        /* break leaves only the innermost range; a broken range was not empty */
        {"{{ range 2 }}{{ range $i := 5 }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $i }}{{ end }}"
         ";{{ end }}",
         "01;01;"},
        {"{{ range 3 }}{{ break }}{{ else }}empty{{ end }}ok", "ok"},
        {"{{ range $k, $v := index (loop 1) 0 | print | split \"x\" }}{{ continue }}{{ end }}.",
         "."},
        {"{{ define \"L\" }}{{ range . }}{{ if eq . \"2\" }}{{ break }}{{ end }}{{ . }}{{ end }}"
         "{{ end }}{{ template \"L\" (split \",\" \"1,2,3\") }}",
         "1"},
    };

    expect_renders(cases, ARRAY_LEN(cases));
}

/* The conversion and arithmetic helpers: consul-template's argument order, Go's output. */
static void test_conversions(void **state)
{
    static const struct error_case cases[] = {
        {"{{ trim \"/\" \"//a/b//\" }}|{{ \"web-01.prod\" | trimSuffix \".prod\" | trimPrefix "
         "\"web-\" }}"
         "|{{ trimPrefix \"x\" \"abc\" }}|{{ trimSuffix \"abcd\" \"bcd\" }}",
         "a/b|01|abc|bcd"},
        {"{{ parseBool \"True\" }} {{ parseBool \"0\" }} {{ parseBool \"\" }} {{ parseBool \"t\" "
         "}}",
         "true false false true"},
        /* Go prints float64 with %v: exponents from 1e+21 and for 1e6 written as such */
        {"{{ parseFloat \"1.5\" }} {{ parseFloat \"1e6\" }} {{ parseFloat \"\" }} {{ parseFloat "
         "\"3\" }}",
         "1.5 1e+06 0 3"},
        {"{{ parseUint \"42\" }} {{ parseUint \"\" }}", "42 0"},
        /* parseJSON's numbers are float64, as Go's json.Unmarshal makes them */
        {"{{ $j := parseJSON \"{\\\"a\\\":[1,\\\"x\\\"],\\\"n\\\":8080,\\\"b\\\":1234567}\" }}"
         "{{ index $j.a 1 }} {{ $j.n }} {{ $j.b }} {{ len (parseJSON \"\") }} {{ parseJSON "
         "\"null\" }}",
         "x 8080 1.234567e+06 0 <no value>"},
        {"{{ base64Encode \"hi?>\" }} {{ base64URLEncode \"hi?>\" }} {{ base64Decode \"aGk/Pg==\" "
         "}} "
         "{{ base64URLDecode \"aGk_Pg==\" }}",
         "aGk/Pg== aGk_Pg== hi?> hi?>"},
        /* OP B A is A op B, so that pipelines read left to right */
        {"{{ add 1 2 }} {{ 10 | subtract 3 }} {{ multiply 4 2.5 }} {{ divide 2 7 }} {{ divide 2.0 "
         "7 }} "
         "{{ modulo 3 7 }} {{ minimum 3 7 }} {{ maximum 3 7.5 }} {{ 5 | maximum 5.0 }}",
         "3 7 10 3 3.5 1 3 7.5 5"},
        /* in LIST V is contains V LIST; containsNone and containsNotAll negate Any and All */
        {"{{ $t := split \",\" \"a,b\" }}{{ in $t \"b\" }} {{ in $t \"c\" }} {{ in \"abc\" \"bc\" "
         "}} "
         "{{ containsNone (split \",\" \"c,d\") $t }} {{ containsNone (split \",\" \"c,a\") $t }} "
         "{{ containsNotAll (split \",\" \"a,b\") $t }} {{ containsNotAll (split \",\" \"a,c\") $t "
         "}}",
         "true false true true false false true"},
        {"{{ add 1 9223372036854775807 }} {{ divide -1 -9223372036854775808 }}",
         "-9223372036854775808 -9223372036854775808"},
    };
    static const struct error_case errors[] = {
        {"{{ divide 0 1 }}",
         "in.ctmpl:1:4: error calling divide: runtime error: integer divide by zero"},
        {"{{ modulo 0 1 }}",
         "in.ctmpl:1:4: error calling modulo: runtime error: integer divide by zero"},
        {"{{ add \"x\" 1 }}",
         "in.ctmpl:1:4: error calling add: add: unknown type for \"x\" (string)"},
        {"{{ modulo 2.5 7 }}",
         "in.ctmpl:1:4: error calling modulo: modulo: unknown type for 2.5 (float64)"},
        {"{{ maximum true 7 }}",
         "in.ctmpl:1:4: error calling maximum: maximum: unknown type for bool"},
        {"{{ parseBool \"yes\" }}", "in.ctmpl:1:4: error calling parseBool: parseBool: "
                                    "strconv.ParseBool: parsing \"yes\": invalid syntax"},
        {"{{ parseFloat \" 1\" }}", "in.ctmpl:1:4: error calling parseFloat: parseFloat: "
                                    "strconv.ParseFloat: parsing \" 1\": invalid syntax"},
        {"{{ parseFloat \"inf\" }}", "in.ctmpl:1:4: error calling parseFloat: parseFloat: "
                                     "strconv.ParseFloat: parsing \"inf\": value out of range"},
        {"{{ parseUint \"-1\" }}", "in.ctmpl:1:4: error calling parseUint: parseUint: "
                                   "strconv.ParseUint: parsing \"-1\": invalid syntax"},
        {"{{ parseJSON \"{\" }}", "in.ctmpl:1:4: error calling parseJSON: string or '}' expected "
                                  "near end of file at offset 1"},
        {"{{ base64Decode \"aGk_Pg==\" }}",
         "in.ctmpl:1:4: error calling base64Decode: base64Decode: illegal base64 data"},
        {"{{ base64URLDecode \"aGk/Pg==\" }}",
         "in.ctmpl:1:4: error calling base64URLDecode: base64URLDecode: illegal base64 data"},
        {"{{ trim 1 \"x\" }}", "in.ctmpl:1:4: wrong type for value; expected string; got int"},
    };

    expect_renders(cases, ARRAY_LEN(cases));
    expect_render_errors(errors, ARRAY_LEN(errors));
}

/* The text formatters: Go's encoding/json, x/text's title caser, indent, digests, env, maps. */
static void test_formatting(void **state)
{
    static const struct error_case cases[] = {
        /* parseJSON makes Go maps, written with sorted keys; floats as encoding/json writes them */
        {"{{ parseJSON \"{\\\"z\\\":1,\\\"a\\\":1e21,\\\"m\\\":1e-7,\\\"k\\\":[0.5,12]}\" | "
         "toJSON }}",
         "{\"a\":1e+21,\"k\":[0.5,12],\"m\":1e-7,\"z\":1}"},
        {"{{ parseJSON \"{\\\"b\\\":[1,\\\"<x>&\\\"],\\\"a\\\":{},\\\"c\\\":[]}\" | toJSONPretty "
         "}}",
         "{\n  \"a\": {},\n  \"b\": [\n    1,\n    \"\\u003cx\\u003e\\u0026\"\n  ],\n  \"c\": "
         "[]\n}"},
        /* past 2^53 encoding/json writes the shortest digits, then zeros: not 2^60's exact
         * 1152921504606846976; fmt's %v uses an exponent there */
        {"{{ parseFloat \"1152921504606846976\" | toJSON }} {{ parseFloat \"1e20\" | toJSON }} "
         "{{ parseFloat \"9007199254740993\" | toJSON }} {{ parseFloat \"1e20\" }} "
         "{{ parseFloat \"9007199254740993\" }}",
         "1152921504606847000 100000000000000000000 9007199254740992 1e+20 "
         "9.007199254740992e+15"},
        {"{{ toJSONPretty nil }} {{ toJSON \"tab\\tbs\\b\\u2028\\x01\" }}",
         "null \"tab\\tbs\\b\\u2028\\u0001\""},
        /* the Unescaped variants leave <, > and & as they are, and still escape U+2028 */
        {"{{ toUnescapedJSON \"<a&b>\u2028\" }} {{ parseJSON \"{\\\"a\\\":[\\\"<\\\"]}\" | "
         "toUnescapedJSONPretty }}",
         "\"<a&b>\\u2028\" {\n  \"a\": [\n    \"<\"\n  ]\n}"},
        {"{{ parseJSON \"{\\\"b/c\\\":1,\\\"a\\\":\\\"x\\\",\\\"b/d\\\":\\\"y\\\"}\" | "
         "explodeMap | toJSON }}",
         "{\"a\":\"x\",\"b\":{\"c\":1,\"d\":\"y\"}}"},
        /* x/text's title caser with NoLower: ' . : inside a word continue it, digits too */
        {"{{ toTitle \"hello world-wide web_site don't a..b 1st o'neil x:y iPhone\" }}",
         "Hello World-Wide Web_site Don't A..B 1St O'neil X:y IPhone"},
        /* consul-template's own case: non-ASCII punctuation and symbols break words too */
        {"{{ \"this is a sentence\\u2026and another sentence\\u2026with a "
         "\\xf0\\x9f\\x9a\\x80rocket\" | toTitle }}",
         "This Is A Sentence\u2026And Another Sentence\u2026With A \xf0\x9f\x9a\x80Rocket"},
        /* U+2019 inside a word continues it; accented letters continue words (keeping case) */
        {"{{ toTitle \"don\u2019t na\u00efve x\u2014y \u00e9lan \u00a0z\" }}",
         "Don\u2019t Na\u00efve X\u2014Y \u00e9lan \u00a0Z"},
        {"{{ indent 4 \"a\\n\\nb\\n\" }}|{{ \"x\" | indent 0 }}", "    a\n\n    b\n|x"},
        {"{{ sha256Hex \"abc\" }} {{ md5sum \"\" }}",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
         "d41d8cd98f00b204e9800998ecf8427e"},
        {"{{ hmacSHA256Hex \"what do ya want for nothing?\" \"Jefe\" }}",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        /* consul-template's split trims the string first; a trailing separator is an item */
        {"{{ split \",\" \" a,b\\n\" | len }} {{ split \",\" \"a,\" | len }} {{ split \",\" \" \" "
         "| len }}",
         "2 2 0"},
        {"{{ splitToMap \",\" \"=\" \" b=2,a=1,c,a=3=x \\n\" }} {{ splitToMap \",\" \"=\" "
         "\"z=1,y=2\" "
         "| toJSON }} {{ len (splitToMap \";\" \":\" \"\") }}",
         "map[a:3=x b:2] {\"y\":\"2\",\"z\":\"1\"} 0"},
        {"{{ mustEnv \"MESH_TEST_SET\" }}|{{ envOrDefault \"MESH_TEST_EMPTY\" \"d\" }}|{{ "
         "envOrDefault \"MESH_TEST_UNSET\" \"d\" }}",
         "v||d"},
        /* byKey and explode regroup KV pairs (any list of objects with Key and Value) */
        {"{{ $p := parseJSON \"[{\\\"Key\\\":\\\"web/a\\\",\\\"Value\\\":\\\"1\\\"},"
         "{\\\"Key\\\":\\\"db/x/y\\\",\\\"Value\\\":\\\"2\\\"},{\\\"Key\\\":\\\"top\\\","
         "\\\"Value\\\":\\\"3\\\"},{\\\"Key\\\":\\\"web/\\\",\\\"Value\\\":\\\"4\\\"}]\" }}"
         "{{ range $k, $v := byKey $p }}{{ $k }}:{{ range $v }}{{ .Key }}={{ .Value }};{{ end }} "
         "{{ end }}|{{ explode $p | toJSON }}",
         "db:x/y=2; web:a=1; |{\"db\":{\"x\":{\"y\":\"2\"}},\"top\":\"3\",\"web\":{\"a\":\"1\"}}"},
    };
    static const struct error_case errors[] = {
        {"{{ indent -1 \"x\" }}",
         "in.ctmpl:1:4: error calling indent: indent value must be a positive integer"},
        {"{{ indent \"2\" \"x\" }}",
         "in.ctmpl:1:4: wrong type for value; expected int; got string"},
        {"{{ mustEnv \"MESH_TEST_EMPTY\" }}",
         "in.ctmpl:1:4: error calling mustEnv: required environment variable MESH_TEST_EMPTY is "
         "empty"},
        {"{{ explode (parseJSON \"[{\\\"Key\\\":\\\"a\\\",\\\"Value\\\":\\\"x\\\"},{\\\"Key\\\":"
         "\\\"a/b\\\",\\\"Value\\\":\\\"y\\\"}]\") }}",
         "in.ctmpl:1:4: error calling explode: explode: not a map: \"a/b\": \"a\" already has "
         "value \"x\""},
        {"{{ parseJSON \"{\\\"a/b\\\":1,\\\"a\\\":\\\"x\\\"}\" | explodeMap }}",
         "in.ctmpl:1:42: error calling explodeMap: explodeMap: not a map: \"a/b\": \"a\" already "
         "has value \"x\""},
        {"{{ explodeMap \"x\" }}",
         "in.ctmpl:1:4: wrong type for value; expected map[string]interface {}; got string"},
        {"{{ byKey \"x\" }}", "in.ctmpl:1:4: wrong type for value; expected []string; got string"},
    };

    setenv("MESH_TEST_SET", "v", 1);
    setenv("MESH_TEST_EMPTY", "", 1);
    unsetenv("MESH_TEST_UNSET");
    expect_renders(cases, ARRAY_LEN(cases));
    expect_render_errors(errors, ARRAY_LEN(errors));
}

/* scratch: a map for one render, through its methods. */
static void test_scratch(void **state)
{
    static const struct error_case cases[] = {
        {"{{ scratch.Set \"a\" \"x\" }}{{ scratch.Get \"a\" }} {{ scratch.Key \"a\" }} "
         "{{ scratch.Key \"b\" }} {{ scratch.Get \"b\" }}",
         "x true false <no value>"},
        {"{{ scratch.Set \"a\" 1 }}{{ scratch.SetX \"a\" 2 }}{{ scratch.SetX \"b\" 3 }}"
         "{{ scratch.Get \"a\" }}{{ scratch.Get \"b\" }}{{ \"v\" | scratch.Set \"p\" }}"
         "{{ if scratch.Key \"p\" }}{{ scratch.Get \"p\" }}{{ end }}",
         "13v"},
        /* a key set to nil exists and gets nil */
        {"{{ scratch.Set \"n\" nil }}{{ scratch.Key \"n\" }} {{ scratch.Get \"n\" }}",
         "true <no value>"},
        /* MapSet builds a Go map: values in key order, toJSON sorts its keys */
        {"{{ range $i := loop 3 }}{{ scratch.MapSet \"m\" (printf \"k%d\" (subtract $i 3)) $i }}"
         "{{ end }}{{ scratch.MapValues \"m\" }} {{ scratch.Get \"m\" | toJSON }} "
         "{{ scratch.MapSetX \"m\" \"k3\" 9 }}{{ scratch.MapSetX \"m\" \"k4\" 4 }}"
         "{{ scratch.Get \"m\" }} {{ scratch.MapValues \"none\" }}",
         "[2 1 0] {\"k1\":2,\"k2\":1,\"k3\":0} map[k1:2 k2:1 k3:0 k4:4] <no value>"},
        /* each {{template}} sees the same scratch */
        {"{{ define \"T\" }}{{ scratch.Set \"t\" . }}{{ end }}{{ template \"T\" \"in\" }}"
         "{{ scratch.Get \"t\" }}",
         "in"},
    };
    static const struct error_case errors[] = {
        {"{{ scratch.Set \"a\" \"x\" }}{{ scratch.MapSet \"a\" \"k\" 1 }}",
         "in.ctmpl:1:29: error calling MapSet: \"a\" is not a map"},
        {"{{ scratch.Set \"a\" }}", "in.ctmpl:1:4: wrong number of args for Set: want 2 got 1"},
        {"{{ scratch.Get 1 }}", "in.ctmpl:1:4: wrong type for value; expected string; got int"},
    };
    const char *src = "{{ scratch.Get \"n\" }}{{ scratch.Set \"n\" \"1\" }}";
    struct smap store = SMAP_INIT;
    struct buf out = BUF_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;

    expect_renders(cases, ARRAY_LEN(cases));
    expect_render_errors(errors, ARRAY_LEN(errors));
    /* every render starts with an empty scratch */
    assert_int_equal(tmpl_parse("in.ctmpl", src, strlen(src), &t, &e), 0);
    for (int i = 0; i < 2; i++) {
        buf_reset(&out);
        assert_int_equal(tmpl_render(t, &store, &out, &used, &e), 0);
        tmpl_used_free(&used);
        assert_int_equal(out.len, strlen("<no value>"));
    }
    tmpl_free(t);
    buf_free(&out);
}

/* timestamp LAYOUT: Go's layout words, in UTC (the zone words are constants then). */
static void test_timestamp_layouts(void **state)
{
    const char *src = "{{ timestamp \"Jan 2 _2 1/2 3:4:5 pm PM MST -07:00 -0700 Z0700 "
                      "Z07:00 2006-01-02T15:04:05 x%y\" }}";
    struct buf out = BUF_INIT;
    char want[2][200];

    for (int k = 0; k < 2; k++) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(want[k], sizeof(want[k]),
                 "%b %-d %e %-m/%-d %-I:%-M:%-S %P %p UTC +00:00 +0000 Z Z %Y-%m-%dT%H:%M:%S x%%y",
                 &tm);
        if (k == 0)
            render_plain(src, &out);
    }
    /* the second may have turned during the render */
    if (strcmp(out.data, want[0]) != 0)
        assert_string_equal(out.data, want[1]);
    buf_free(&out);
}

static void test_dep_parse(void **state)
{
    static const struct {
        enum tmpl_dep_kind kind;
        const char *arg, *id, *target;
    } cases[] = {
        {TMPL_DEP_SERVICE, "web", "health.service(web|passing)",
         "/v1/health/service/web?passing=1"},
        {TMPL_DEP_SERVICE, "prod.v1.web@dc2|warning,passing",
         "health.service(prod.v1.web@dc2|passing,warning)",
         "/v1/health/service/web?tag=prod.v1&dc=dc2"},
        {TMPL_DEP_SERVICE, "web|any", "health.service(web|passing,warning,critical,maintenance)",
         "/v1/health/service/web"},
        {TMPL_DEP_SERVICE, "web~_agent", "health.service(web~_agent|passing)",
         "/v1/health/service/web?passing=1&near=_agent"},
        /* consul-template's order: ?query @dc ~near |filter; empty filter items skipped */
        {TMPL_DEP_SERVICE, "v1.web?partition=p1&ns=default@dc2~n2|warning,,passing",
         "health.service(v1.web?ns=default&partition=p1@dc2~n2|passing,warning)",
         "/v1/health/service/web?tag=v1&dc=dc2&ns=default&partition=p1&near=n2"},
        /* the first value of a key counts; an empty one is none */
        {TMPL_DEP_SERVICE, "web?ns=a&peer=x&ns=b&partition=",
         "health.service(web?ns=a&peer=x|passing)", "/v1/health/service/web?passing=1&ns=a&peer=x"},
        {TMPL_DEP_SERVICE, "web|,", "health.service(web)", "/v1/health/service/web"},
        /* a key ends only at "?" or "@" */
        {TMPL_DEP_KEY, "a~b|c?ns=x@dc1", "kv.get(a~b|c?ns=x@dc1)", "/v1/kv/a~b%7Cc?dc=dc1&ns=x"},
        {TMPL_DEP_KEY_LIST, "cfg?sameness-group=g", "kv.list(cfg?sameness-group=g)",
         "/v1/kv/cfg?recurse=&sameness-group=g"},
        {TMPL_DEP_SERVICES, "?ns=default@dc1", "catalog.services(?ns=default@dc1)",
         "/v1/catalog/services?dc=dc1&ns=default"},
        {TMPL_DEP_NODE, "n1?partition=p", "catalog.node(n1?partition=p)",
         "/v1/catalog/node/n1?partition=p"},
        {TMPL_DEP_NODES, "?ns=default~_agent", "catalog.nodes(?ns=default~_agent)",
         "/v1/catalog/nodes?ns=default&near=_agent"},
        {TMPL_DEP_KEY, "/a/b c@dc1", "kv.get(a/b c@dc1)", "/v1/kv/a/b%20c?dc=dc1"},
        {TMPL_DEP_KEY_LIST, "cfg", "kv.list(cfg)", "/v1/kv/cfg?recurse="},
        {TMPL_DEP_SERVICES, "@east", "catalog.services(@east)", "/v1/catalog/services?dc=east"},
        {TMPL_DEP_NODE, "n1", "catalog.node(n1)", "/v1/catalog/node/n1"},
        {TMPL_DEP_NODES, "", "catalog.nodes()", "/v1/catalog/nodes"},
        {TMPL_DEP_DATACENTERS, "", "catalog.datacenters()", "/v1/catalog/datacenters"},
    };
    static const struct {
        enum tmpl_dep_kind kind;
        const char *arg;
    } bad[] = {{TMPL_DEP_SERVICE, ""},
               {TMPL_DEP_SERVICE, "a.b.c|nope"},
               {TMPL_DEP_SERVICE, "web@"},
               {TMPL_DEP_SERVICE, "we/b"},
               {TMPL_DEP_KEY, ""},
               {TMPL_DEP_SERVICES, "x"},
               {TMPL_DEP_NODE, "a/b"},
               {TMPL_DEP_SERVICE, ".web"},
               /* out of consul-template's order, or not its grammar */
               {TMPL_DEP_SERVICE, "web|any@dc1"},
               {TMPL_DEP_SERVICE, "web@dc1?ns=a"},
               {TMPL_DEP_SERVICE, "web|"},
               {TMPL_DEP_SERVICE, "web?"},
               {TMPL_DEP_SERVICE, "web?bogus=1"},
               {TMPL_DEP_SERVICE, "web?ns=a.b"},
               {TMPL_DEP_SERVICE, "web?peer=a&sameness-group=b"},
               {TMPL_DEP_SERVICE, "web~"},
               {TMPL_DEP_SERVICES, "~n1"},
               {TMPL_DEP_NODE, "n1~n2"},
               {TMPL_DEP_KEY, "a@dc1?ns=x"}};
    struct tmpl_dep dep;
    struct err e;

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct buf target = BUF_INIT;
        if (tmpl_dep_parse(cases[i].kind, cases[i].arg, &dep, &e) < 0)
            fail_msg("%s: %s", cases[i].arg, e.msg);
        assert_string_equal(dep.id, cases[i].id);
        tmpl_dep_target(&dep, &target);
        assert_string_equal(target.data, cases[i].target);
        buf_free(&target);
        tmpl_dep_clear(&dep);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (tmpl_dep_parse(bad[i].kind, bad[i].arg, &dep, &e) == 0)
            fail_msg("accepted %s", bad[i].arg);
}

static void test_dep_decode_errors(void **state)
{
    struct tmpl_dep dep;
    struct err e;

    assert_int_equal(tmpl_dep_parse(TMPL_DEP_SERVICE, "web", &dep, &e), 0);
    assert_null(tmpl_dep_decode(&dep, 403, "Permission denied", 17, &e));
    assert_string_equal(e.msg, "unexpected response code: 403 (Permission denied)");
    assert_null(tmpl_dep_decode(&dep, 200, "{}", 2, &e));
    assert_null(tmpl_dep_decode(&dep, 200, "[", 1, &e));
    json_t *v = tmpl_dep_decode(&dep, 200, "[]", 2, &e);
    assert_true(json_is_array(v));
    json_decref(v);
    tmpl_dep_clear(&dep);
    /* the datacenter list: strings only */
    assert_int_equal(tmpl_dep_parse(TMPL_DEP_DATACENTERS, "", &dep, &e), 0);
    assert_null(tmpl_dep_decode(&dep, 200, "[1]", 3, &e));
    v = tmpl_dep_decode(&dep, 200, "[\"dc1\",\"dc2\"]", 13, &e);
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);
    tmpl_dep_clear(&dep);
}

/* With ~near the registry's order (by round-trip time) stays; without, by node then ID. */
static void test_dep_near_keeps_the_order(void **state)
{
    static const char body[] = "[{\"Node\":{\"Node\":\"b\"},\"Service\":{\"ID\":\"w\"}},"
                               "{\"Node\":{\"Node\":\"a\"},\"Service\":{\"ID\":\"w\"}}]";
    static const char *const args[] = {"web~b", "web"}, *const first[] = {"b", "a"};
    struct tmpl_dep dep;
    struct err e;

    for (size_t i = 0; i < ARRAY_LEN(args); i++) {
        assert_int_equal(tmpl_dep_parse(TMPL_DEP_SERVICE, args[i], &dep, &e), 0);
        json_t *v = tmpl_dep_decode(&dep, 200, body, sizeof(body) - 1, &e);
        assert_int_equal(json_array_size(v), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "Node")),
                            first[i]);
        json_decref(v);
        tmpl_dep_clear(&dep);
    }
}

/* An item index made on the way (a string's byte) is freed when a later step fails (the leak
 * checker sees it otherwise); nil on the way fails too. */
static void test_index_failure_frees(void **state)
{
    static const char *const bad[] = {"{{ index \"ab\" 0 1 }}",
                                      "{{ index (parseJSON `{}`) \"a\" \"b\" }}"};
    struct buf out = BUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct smap store = SMAP_INIT;
        struct tmpl_used used;
        struct tmpl *t;
        struct err e;
        if (tmpl_parse("in.ctmpl", bad[i], strlen(bad[i]), &t, &e) < 0)
            fail_msg("%s", e.msg);
        assert_int_equal(tmpl_render(t, &store, &out, &used, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "in.ctmpl:1:4: error calling index: "));
        tmpl_used_free(&used);
        tmpl_free(t);
    }
    buf_free(&out);
}

/* Renders src (a C string) with answers_text (render_with's answers, as JSON text) and checks
 * that the output is want. */
static void expect_render(const char *src, const char *answers_text, const char *want)
{
    json_t *answers = json_loads(answers_text, 0, NULL);
    struct tmpl *t = NULL;
    struct buf out = BUF_INIT;
    struct err e;

    assert_non_null(answers);
    if (tmpl_parse("in.ctmpl", src, strlen(src), &t, &e) < 0)
        fail_msg("%s", e.msg);
    render_with(t, answers, &out);
    assert_string_equal(out.data ? out.data : "", want);
    tmpl_free(t);
    json_decref(answers);
    buf_free(&out);
}

/* The registry's Meta and TaggedAddresses maps are Go map[string]string in consul-template: a
 * missing key is "", which eq, if, with, index and %q see; parseJSON's maps keep nil. */
static void test_string_maps_zero_value(void **state)
{
    static const char src[] =
        "{{ range service \"web\" }}{{ .ServiceMeta.no }}|{{ printf \"%q\" .ServiceMeta.no }}|"
        "{{ eq .ServiceMeta.no \"\" }}|{{ if .ServiceMeta.no }}t{{ else }}f{{ end }}|"
        "{{ with .NodeMeta.no }}w{{ else }}-{{ end }}|{{ index .ServiceMeta \"no\" | printf \"%q\" "
        "}}|"
        "{{ printf \"%q\" .NodeTaggedAddresses.wan }}|{{ $m := .ServiceMeta }}{{ $m.no | len }}|"
        "{{ .ServiceMeta.v }}{{ end }}\n"
        "{{ with node \"n1\" }}{{ printf \"%q %q\" .Node.Meta.no .Node.TaggedAddresses.lan }}"
        "{{ range .Services }} {{ printf \"%q\" .Meta.no }}{{ end }}{{ end }}\n"
        "{{ range nodes }}{{ printf \"%q %q\" .Meta.no .TaggedAddresses.lan }}{{ end }}\n"
        "{{ $j := parseJSON `{\"a\":\"b\"}` }}{{ $j.no }} {{ index $j \"no\" }}\n";
    static const char want[] = "|\"\"|true|f|-|\"\"|\"\"|0|1\n"
                               "\"\" \"\" \"\"\n"
                               "\"\" \"\"\n"
                               "<no value> <no value>\n";
    static const char answers_text[] =
        "{\"health.service(web|passing)\": {\"status\": 200, \"body\": [{\"Node\": {\"Node\": "
        "\"a\", \"Address\": \"10.0.0.1\", \"Meta\": {}}, \"Service\": {\"ID\": \"w\", "
        "\"Service\": \"web\", \"Meta\": {\"v\": \"1\"}, \"Port\": 1}, \"Checks\": []}]},"
        "\"catalog.node(n1)\": {\"status\": 200, \"body\": {\"Node\": {\"Node\": \"n1\", "
        "\"Meta\": {\"role\": \"lb\"}}, \"Services\": {\"s\": {\"ID\": \"s\", \"Service\": "
        "\"s\"}}}},"
        "\"catalog.nodes()\": {\"status\": 200, \"body\": [{\"Node\": \"n1\"}]}}";
    expect_render(src, answers_text, want);
}

/* ServiceTaggedAddresses is a Go map[string]api.ServiceAddress in consul-template: a missing key
 * is the zero struct, whose .Address is "" and .Port 0 (and which, a struct, is true). */
static void test_service_tagged_addresses_zero_value(void **state)
{
    static const char src[] =
        "{{ range service \"web\" }}{{ $a := .ServiceTaggedAddresses }}"
        "{{ printf \"%q %d\" $a.lan.Address $a.lan.Port }}|{{ (index $a \"lan\").Port }}|"
        "{{ $a.wan.Address }}:{{ $a.wan.Port }}|{{ if $a.lan }}t{{ end }}|"
        "{{ with $a.lan.Address }}w{{ else }}-{{ end }}\n{{ end }}";
    static const char want[] = "\"\" 0|0|10.0.0.9:80|t|-\n"
                               "\"\" 0|0|:0|t|-\n";
    static const char answers_text[] =
        "{\"health.service(web|passing)\": {\"status\": 200, \"body\": ["
        "{\"Node\": {\"Node\": \"a\", \"Address\": \"10.0.0.1\"}, \"Service\": {\"ID\": \"w1\", "
        "\"Service\": \"web\", \"Port\": 1, \"TaggedAddresses\": {\"wan\": {\"Address\": "
        "\"10.0.0.9\", \"Port\": 80}}}, \"Checks\": []},"
        "{\"Node\": {\"Node\": \"b\", \"Address\": \"10.0.0.2\"}, \"Service\": {\"ID\": \"w2\", "
        "\"Service\": \"web\", \"Port\": 1}, \"Checks\": []}]}}";
    expect_render(src, answers_text, want);
}

static void test_spec_parse(void **state)
{
    struct tmpl_spec s;
    struct err e;

    assert_int_equal(tmpl_spec_parse("in.ctmpl:/etc/out.cfg", &s, &e), 0);
    assert_string_equal(s.src, "in.ctmpl");
    assert_string_equal(s.dst, "/etc/out.cfg");
    assert_null(s.cmd);
    tmpl_spec_clear(&s);
    assert_int_equal(tmpl_spec_parse("a:b:haproxy -f x -sf $(cat p) && echo a:b", &s, &e), 0);
    assert_string_equal(s.cmd, "haproxy -f x -sf $(cat p) && echo a:b");
    tmpl_spec_clear(&s);
    assert_int_equal(tmpl_spec_parse("only", &s, &e), -EINVAL);
    assert_int_equal(tmpl_spec_parse(":b", &s, &e), -EINVAL);
    assert_int_equal(tmpl_spec_parse("a:", &s, &e), -EINVAL);
    assert_int_equal(tmpl_spec_parse("a::cmd", &s, &e), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_haproxy),
        cmocka_unit_test(test_golden_health),
        cmocka_unit_test(test_golden_kv),
        cmocka_unit_test(test_golden_lang),
        cmocka_unit_test(test_missing_key_blocks),
        cmocka_unit_test(test_safe_lists_block),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_dep_parse),
        cmocka_unit_test(test_timestamp_layouts),
        cmocka_unit_test(test_dep_decode_errors),
        cmocka_unit_test(test_dep_near_keeps_the_order),
        cmocka_unit_test(test_index_failure_frees),
        cmocka_unit_test(test_string_maps_zero_value),
        cmocka_unit_test(test_service_tagged_addresses_zero_value),
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_define_and_loops),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_formatting),
        cmocka_unit_test(test_scratch),
        cmocka_unit_test(test_explode_bounds_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
