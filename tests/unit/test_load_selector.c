/* CSS selectors over HTML as cheerio (css-select) matches them, and what a selector capture
 * takes from the element it picks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "load/html_capture.h"
#include "load/selector.h"

static const char page[] =
    "<!doctype html><html><head><title>t</title></head><body>"
    "<div id=top class='box  main'>"
    "  <form id=f1 method=POST action='/login?next=/home'>"
    "    <input id=i1 type=hidden name=_csrf value='tok&amp;1'>"
    "    <input id=i2 type=TEXT name=user data-x='a b' lang=en-US>"
    "    <INPUT id=i3 type=checkbox name=remember checked>"
    "    <select id=s1><option id=o1>First <b>one</b></option><option id=o2 value=2>2</select>"
    "  </form>"
    "  <p id=p1 class=note>one<p id=p2 class='note warn'>two"
    "</div>"
    "<div class=x id=x1><div class=y id=y1><div class=y id=y2><span class=z id=z1></span>"
    "</div></div></div>"
    "<my-widget id=w1 Kind=Big></my-widget>"
    "<script>var s = '<div id=fake>';</script>"
    "</body></html>";

/* The ids of what sel matches in page, in order, joined by ","; "ERR: ..." when it does not
 * compile. */
static char *ids(const char *sel)
{
    struct err e = {""};
    struct load_sel *s = load_sel_compile(sel, &e);
    GumboOutput *out;
    const GumboNode **els;
    struct buf b = BUF_INIT;
    size_t n;

    if (!s)
        return xasprintf("ERR: %s", e.msg);
    out = gumbo_parse(page);
    n = load_sel_select(s, out->document, &els);
    for (size_t i = 0; i < n; i++) {
        const GumboAttribute *id = gumbo_get_attribute(&els[i]->v.element.attributes, "id");

        buf_printf(&b, "%s%s", i ? "," : "", id ? id->value : "?");
    }
    free(els);
    gumbo_destroy_output(&kGumboDefaultOptions, out);
    load_sel_free(s);
    buf_append(&b, "", 1);
    return buf_steal(&b);
}

#define CHECK_IDS(sel, want)                                                                       \
    do {                                                                                           \
        char *got_ = ids(sel);                                                                     \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_simple(void **state)
{
    (void)state;
    CHECK_IDS("input", "i1,i2,i3");
    CHECK_IDS("INPUT", "i1,i2,i3"); /* type names case aside */
    CHECK_IDS("my-widget", "w1");   /* an element gumbo does not know */
    CHECK_IDS("#i2", "i2");
    CHECK_IDS("#I2", "");        /* ids exactly */
    CHECK_IDS(".note", "p1,p2"); /* a <p> ends at the next one */
    CHECK_IDS(".main", "top");   /* one of the words, however spaced */
    CHECK_IDS(".mai", "");
    CHECK_IDS(".note.warn", "p2");
    CHECK_IDS("*#f1", "f1");
    CHECK_IDS("#fake", ""); /* script text is not markup */
}

static void test_attributes(void **state)
{
    (void)state;
    CHECK_IDS("[checked]", "i3");
    CHECK_IDS("[CHECKED]", "i3"); /* attribute names case aside */
    CHECK_IDS("input[name=_csrf]", "i1");
    CHECK_IDS("input[name='_csrf']", "i1");
    CHECK_IDS("[value=\"tok&1\"]", "i1"); /* the value as decoded */
    CHECK_IDS("[name=_CSRF]", "");        /* values exactly ... */
    CHECK_IDS("[type=text]", "i2");       /* ... but the ones HTML compares case aside */
    CHECK_IDS("[method=post]", "f1");
    CHECK_IDS("[name=_CSRF i]", "i1"); /* the i flag */
    CHECK_IDS("[type=text s]", "");    /* and the s flag */
    CHECK_IDS("[action^='/login']", "f1");
    CHECK_IDS("[action$=/home]", "f1");
    CHECK_IDS("[action*=next]", "f1");
    CHECK_IDS("[action^='']", ""); /* an empty value matches nothing */
    CHECK_IDS("[action*=\"\"]", "");
    CHECK_IDS("[data-x~=b]", "i2");
    CHECK_IDS("[data-x~='a b']", "");
    CHECK_IDS("[lang|=en]", "i2");
    CHECK_IDS("[lang|=en-US]", "i2");
    CHECK_IDS("[lang|=e]", "");
    CHECK_IDS("[kind=Big]", "w1");
    CHECK_IDS("[ name = user ]", "i2");
    CHECK_IDS("[name=\\5f csrf]", "i1"); /* a CSS escape */
    CHECK_IDS("[value='2']", "o2");
}

static void test_combinators(void **state)
{
    (void)state;
    CHECK_IDS("form input", "i1,i2,i3");
    CHECK_IDS("div input[type=hidden]", "i1");
    CHECK_IDS("body > div", "top,x1");
    CHECK_IDS("body>div>form", "f1");
    CHECK_IDS("body > form", "");
    CHECK_IDS("select option b", "");
    CHECK_IDS("option > b", "");
    CHECK_IDS("#s1 option", "o1,o2");
    /* the nearest .y above the span is not a child of .x, the one above it is */
    CHECK_IDS(".x > .y .z", "z1");
    CHECK_IDS(".x > .y > .z", "");
    CHECK_IDS(".y > .y > .z", "z1");
    CHECK_IDS("div div div span", "z1");
    CHECK_IDS("div div div div span", "");
    /* lists: document order, each element once */
    CHECK_IDS("#i3, #i1, input[name=_csrf]", "i1,i3");
    CHECK_IDS("p,form", "f1,p1,p2");
}

static void test_refused(void **state)
{
    (void)state;
    CHECK_IDS("input:first", "ERR: the pseudo-class :first is not supported (type, *, #id, "
                             ".class, [attr], [attr=value], ~= |= ^= $= *=, the descendant and > "
                             "combinators and lists with \",\" are)");
    CHECK_IDS("li:nth-child(2)", "ERR: the pseudo-class :nth-child is not supported (type, *, "
                                 "#id, .class, [attr], [attr=value], ~= |= ^= $= *=, the "
                                 "descendant and > combinators and lists with \",\" are)");
    CHECK_IDS("p::before", "ERR: the pseudo-element ::before is not supported (type, *, #id, "
                           ".class, [attr], [attr=value], ~= |= ^= $= *=, the descendant and > "
                           "combinators and lists with \",\" are)");
    CHECK_IDS("a + b", "ERR: the sibling combinators + and ~ are not supported (at \"+ b\")");
    CHECK_IDS("a~b", "ERR: the sibling combinators + and ~ are not supported (at \"~b\")");
    CHECK_IDS("svg|rect", "ERR: namespaces such as \"svg|rect\" are not supported");
    CHECK_IDS("[xlink|href]", "ERR: namespaces such as [xlink...] are not supported");
    CHECK_IDS("[a", "ERR: an attribute selector without its closing ] at \"\"");
    CHECK_IDS("[a='x]", "ERR: an attribute value without its closing '");
    CHECK_IDS("[=x]", "ERR: an attribute selector without a name at \"=x]\"");
    CHECK_IDS("[a!=x]", "ERR: an attribute selector without its closing ] at \"!=x]\"");
    CHECK_IDS("#", "ERR: \"#\" without a name after it");
    CHECK_IDS("[a\\", "ERR: a backslash at the end"); /* found by the fuzzer */
    CHECK_IDS(".\\", "ERR: a backslash at the end");
    CHECK_IDS("p\\", "ERR: a backslash at the end");
    CHECK_IDS("", "ERR: a selector was expected");
    CHECK_IDS("a,", "ERR: a selector was expected");
    CHECK_IDS("a >", "ERR: a selector was expected");
    CHECK_IDS("> a", "ERR: a selector was expected at \"> a\"");
    CHECK_IDS("a)", "ERR: \")\" is not supported (type, *, #id, .class, [attr], [attr=value], "
                    "~= |= ^= $= *=, the descendant and > combinators and lists with \",\" are)");
}

/* What a capture of sel (attr and index as in a script) takes from page, as JSON text, or
 * "undefined". */
static char *take(const char *sel, const char *attr, enum load_capture_index kind, double at)
{
    struct load_capture c = {
        .kind = LOAD_CAPTURE_SELECTOR, .attr = (char *)attr, .index_kind = kind, .index = at};
    struct load_sel *s = load_sel_compile(sel, NULL);
    struct load_html *h = load_html_parse(page, strlen(page));
    uint64_t rng = 42;
    json_t *v;
    char *text;

    assert_non_null(s);
    assert_non_null(h);
    v = load_html_capture(h, s, &c, &rng);
    text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : xstrdup("undefined");
    json_decref(v);
    load_html_free(h);
    load_sel_free(s);
    return text;
}

#define CHECK_TAKE(sel, attr, kind, at, want)                                                      \
    do {                                                                                           \
        char *got_ = take(sel, attr, kind, at);                                                    \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_capture(void **state)
{
    (void)state;
    CHECK_TAKE("input[name=_csrf]", "value", LOAD_INDEX_FIRST, 0, "\"tok&1\"");
    CHECK_TAKE("input", "name", LOAD_INDEX_FIRST, 0, "\"_csrf\"");
    CHECK_TAKE("input", "name", LOAD_INDEX_LAST, 0, "\"remember\"");
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, 1, "\"user\"");
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, 1.7, "\"user\"");      /* as slice truncates */
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, -2, "\"user\"");       /* slice(-2, -1) */
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, -1, "undefined");      /* slice(-1, 0) */
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, 3, "undefined");       /* past the end */
    CHECK_TAKE("input", "name", LOAD_INDEX_AT, NAN, "undefined");     /* Number("x") */
    CHECK_TAKE("input", "nothing", LOAD_INDEX_FIRST, 0, "undefined"); /* no such attribute */
    CHECK_TAKE("#nothing", "id", LOAD_INDEX_FIRST, 0, "undefined");
    CHECK_TAKE("#nothing", "id", LOAD_INDEX_LAST, 0, "undefined");
    CHECK_TAKE("#nothing", "id", LOAD_INDEX_RANDOM, 0, "undefined");
    /* without attr: every attribute, as cheerio's .attr() gives them */
    CHECK_TAKE("#i1", NULL, LOAD_INDEX_FIRST, 0,
               "{\"id\":\"i1\",\"type\":\"hidden\",\"name\":\"_csrf\",\"value\":\"tok&1\"}");
    CHECK_TAKE("#i1", "", LOAD_INDEX_FIRST, 0,
               "{\"id\":\"i1\",\"type\":\"hidden\",\"name\":\"_csrf\",\"value\":\"tok&1\"}");
    /* cheerio's special cases */
    CHECK_TAKE("#i3", "checked", LOAD_INDEX_FIRST, 0, "\"checked\"");
    CHECK_TAKE("#i3", "value", LOAD_INDEX_FIRST, 0, "\"on\"");
    CHECK_TAKE("#i2", "value", LOAD_INDEX_FIRST, 0, "undefined");
    CHECK_TAKE("#o1", "value", LOAD_INDEX_FIRST, 0, "\"First one\"");
    CHECK_TAKE("#o2", "value", LOAD_INDEX_FIRST, 0, "\"2\"");
}

static void test_random_index(void **state)
{
    struct load_capture c = {
        .kind = LOAD_CAPTURE_SELECTOR, .attr = "id", .index_kind = LOAD_INDEX_RANDOM};
    struct load_sel *s = load_sel_compile("input", NULL);
    struct load_html *h = load_html_parse(page, strlen(page));
    uint64_t rng = 7;
    int seen[3] = {0};

    (void)state;
    for (int i = 0; i < 300; i++) {
        json_t *v = load_html_capture(h, s, &c, &rng);
        const char *id = json_string_value(v);

        assert_non_null(id);
        seen[id[1] - '1']++;
        json_decref(v);
    }
    for (int i = 0; i < 3; i++)
        assert_true(seen[i] > 0); /* each of the three is picked */
    load_html_free(h);
    load_sel_free(s);
}

static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = xmalloc(n * len + 1);

    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[n * len] = '\0';
    return s;
}

static bool too_costly(const char *s)
{
    return load_html_too_costly(s, strlen(s), LOAD_HTML_MAX_DEPTH, SIZE_MAX);
}

/* Misnested tags the tree builder leaves open, each deepening the tree it builds (gumbo took
 * 37 s over 256 KiB of the first): the scan counts them all. */
static void test_misnested(void **state)
{
    static const char *const deepening[] = {
        "<i><b></i>",         /* b is opened again inside the next i */
        "<span><div></span>", /* </span> does not close past a div */
        "<b><div></b>",       /* the adoption agency moves the div, and keeps it open */
        "<form><div></form>", /* </form> takes the form out alone */
        "<div><table></div>", /* nor does </div> close past a table */
        "<p><b></p>",         /* b stays open past its paragraph's end */
    };
    static const char *const level[] = {"<div><section></div>", "<b><i></b></i>",
                                        "<ul><li><span>x</span><li>y</ul>", "<span><p></span>"};

    (void)state;
    for (size_t i = 0; i < sizeof(deepening) / sizeof(*deepening); i++) {
        char *s = repeat(deepening[i], LOAD_HTML_MAX_DEPTH + 1);

        if (!too_costly(s))
            fail_msg("%s", deepening[i]);
        free(s);
    }
    for (size_t i = 0; i < sizeof(level) / sizeof(*level); i++) {
        char *s = repeat(level[i], 5000);

        if (too_costly(s))
            fail_msg("%s", level[i]);
        free(s);
    }
}

/* Tags and text times their depth: 200 levels are fine, not with 256 KiB of text in them. */
static void test_work_bound(void **state)
{
    char *open = repeat("<div>", 200), *text = repeat("x", 256 << 10);
    char *s = xasprintf("%s%s", open, text);

    (void)state;
    assert_false(load_html_too_costly(open, strlen(open), LOAD_HTML_MAX_DEPTH, LOAD_HTML_MAX_WORK));
    assert_true(load_html_too_costly(s, strlen(s), LOAD_HTML_MAX_DEPTH, LOAD_HTML_MAX_WORK));
    assert_false(load_html_too_costly(text, strlen(text), LOAD_HTML_MAX_DEPTH, LOAD_HTML_MAX_WORK));
    free(open);
    free(text);
    free(s);
}

static void test_depth_bound(void **state)
{
    char *deep = repeat("<div>", LOAD_HTML_MAX_DEPTH + 1);
    char *ok = repeat("<div>", LOAD_HTML_MAX_DEPTH);
    char *flat = repeat("<div><p>a<br><li>b<img src=x><input></div>", 5000);
    char *closed = repeat("<div class='a>b'><span>x</span></div>", 5000);
    char *formatting = repeat("<b>x</p>", LOAD_HTML_MAX_DEPTH + 1);
    char *self = repeat("<div/>", LOAD_HTML_MAX_DEPTH + 1);
    char *svg = repeat("<svg><path/>", 100);
    char *big = repeat("<div>", 1 << 20); /* the size is bounded before the depth is scanned */
    struct load_html *h;

    (void)state;
    assert_true(too_costly(deep));
    assert_null(load_html_parse(deep, strlen(deep)));
    assert_false(too_costly(ok));
    assert_false(too_costly(flat));
    assert_false(too_costly(closed));
    /* an end tag that closes nothing open counts for nothing */
    assert_true(too_costly(formatting));
    /* HTML ignores "/>" on a div; in SVG it ends the element */
    assert_true(too_costly(self));
    assert_false(load_html_too_costly(svg, strlen(svg), 100, SIZE_MAX));
    assert_false(load_html_too_costly("<script><div><div><div></script><!-- <div><div> -->",
                                      strlen("<script><div><div><div></script><!-- <div><div> -->"),
                                      1, SIZE_MAX));
    assert_null(load_html_parse(big, strlen(big)));
    h = load_html_parse(flat, strlen(flat));
    assert_non_null(h);
    load_html_free(h);
    free(deep);
    free(ok);
    free(flat);
    free(closed);
    free(formatting);
    free(self);
    free(svg);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),      cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_combinators), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_capture),     cmocka_unit_test(test_random_index),
        cmocka_unit_test(test_depth_bound), cmocka_unit_test(test_misnested),
        cmocka_unit_test(test_work_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
