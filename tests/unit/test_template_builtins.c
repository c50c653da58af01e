/*
 * Go's text/template builtins as Go's own tests expect them (exec_test.go's cases, with its
 * expected outputs): html, js and urlquery escape byte for byte as HTMLEscapeString,
 * JSEscapeString and url.QueryEscape; slice and index follow reflect's rules and messages;
 * call fails as on a value that is not a function; eq, ne, lt, le, gt and ge compare only
 * values of one basic kind.
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

static void test_html(void **state)
{
    expect("{{ html \"<script>alert(\\\"XSS\\\");</script>\" }}",
           "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;");
    expect("{{ printf \"<script>alert(\\\"XSS\\\");</script>\" | html }}",
           "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;");
    expect("{{ html \"a string\" }}", "a string");
    /* a nil prints as <no value> first, which is then escaped */
    expect("{{ html nil }}", "&lt;no value&gt;");
    /* ' and &, and NUL becomes U+FFFD */
    expect("{{ html \"it's a&b\\x00.\" }}", "it&#39;s a&amp;b\xef\xbf\xbd.");
    /* arguments join as fmt.Sprint does: a space only between two non-strings */
    expect("{{ html 1 2 \"<\" 3 }}", "1 2&lt;3");
}

static void test_js(void **state)
{
    expect("{{ js \"It'd be nice.\" }}", "It\\'d be nice.");
    expect("{{ js `Go \"jump\" \\` }}", "Go \\\"jump\\\" \\\\");
    expect("{{ js \"<html>\" }}", "\\u003Chtml\\u003E");
    expect("{{ js \"no = in attributes\" }}", "no \\u003D in attributes");
    expect("{{ js \"&#x27; does not become HTML entity\" }}",
           "\\u0026#x27; does not become HTML entity");
    /* printable runes pass; U+FFFE is not printable, control bytes are \u00XX */
    expect("{{ js \"Yukihiro says \\\"今日は世界\\\"\" }}", "Yukihiro says \\\"今日は世界\\\"");
    expect("{{ js \"unprintable \\uFFFE\" }}", "unprintable \\uFFFE");
    expect("{{ js \"a\\tb\\x01\\u2028\\u00a0\" }}", "a\\u0009b\\u0001\\u2028\\u00A0");
    /* beyond the BMP: %04X gives five digits; invalid UTF-8 passes as it is */
    expect("{{ js \"\\U000E0001 \\U0001F600\" }}", "\\uE0001 \xf0\x9f\x98\x80");
    expect("{{ js \"\\xff\" }}", "\xff");
    expect("{{ js nil }}", "\\u003Cno value\\u003E");
}

static void test_urlquery(void **state)
{
    expect("{{ \"http://www.example.org/\" | urlquery }}", "http%3A%2F%2Fwww.example.org%2F");
    expect("{{ urlquery \"a b&c=d~e_f.g-h\" \"/\" 1 }}", "a+b%26c%3Dd~e_f.g-h%2F1");
    expect("{{ urlquery \"é\" }}", "%C3%A9");
    expect("{{ urlquery }}", "");
}

#define SI "{{ $s := parseYAML `[3, 4, 5]` }}"

static void test_slice(void **state)
{
    expect(SI "{{ slice $s }} {{ slice $s 1 }} {{ slice $s 1 2 }} {{ slice $s 1 2 3 }}",
           "[3 4 5] [4 5] [4] [4]");
    expect(SI "{{ slice $s 3 }}|{{ slice $s 0 0 }}", "[]|[]");
    expect(
        "{{ slice \"xyz\" }} {{ slice \"xyz\" 0 1 }} {{ slice \"xyz\" 1 }} {{ slice \"xyz\" 1 2 }}",
        "xyz x yz y");
    expect(SI "{{ slice $s -1 }}", "!in.ctmpl:1:37: error calling slice: index out of range: -1");
    expect(SI "{{ slice $s 4 5 }}", "!in.ctmpl:1:37: error calling slice: index out of range: 4");
    expect(SI "{{ slice $s 2 1 }}",
           "!in.ctmpl:1:37: error calling slice: invalid slice index: 2 > 1");
    expect(SI "{{ slice $s 2 2 1 }}",
           "!in.ctmpl:1:37: error calling slice: invalid slice index: 2 > 1");
    expect(SI "{{ slice $s 1 2 3 4 }}",
           "!in.ctmpl:1:37: error calling slice: too many slice indexes: 4");
    expect("{{ slice \"xyz\" 1 5 }}", "!in.ctmpl:1:4: error calling slice: index out of range: 5");
    expect("{{ slice \"xyz\" 1 2 2 }}",
           "!in.ctmpl:1:4: error calling slice: cannot 3-index slice a string");
    expect("{{ slice nil }}", "!in.ctmpl:1:4: error calling slice: slice of untyped nil");
    expect("{{ slice 3 }}", "!in.ctmpl:1:4: error calling slice: can't slice item of type int");
    expect("{{ slice \"x\" \"1\" }}",
           "!in.ctmpl:1:4: error calling slice: cannot index slice/array with type string");
    expect("{{ slice \"x\" nil }}",
           "!in.ctmpl:1:4: error calling slice: cannot index slice/array with nil");
}

static void test_index(void **state)
{
    /* a string's item is its byte, a number */
    expect("{{ index \"abc\" 1 }}", "98");
    expect("{{ index \"abc\" 3 }}",
           "!in.ctmpl:1:4: error calling index: reflect: string index out of range");
    expect("{{ index (split \",\" \"a,b\") 2 }}",
           "!in.ctmpl:1:4: error calling index: reflect: slice index out of range");
    /* nil as a map key is the key type's zero value: "" */
    expect("{{ index (parseJSON `{\"\":1}`) nil }}", "1");
    expect("{{ index (parseJSON `{\"a\":{}}`) \"b\" \"c\" }}",
           "!in.ctmpl:1:4: error calling index: index of nil pointer");
    expect("{{ index (parseJSON `{}`) true }}",
           "!in.ctmpl:1:4: error calling index: value has type bool; should be string");
    expect("{{ index 3 1 }}", "!in.ctmpl:1:4: error calling index: can't index item of type int");
    expect("{{ index nil 1 }}", "!in.ctmpl:1:4: error calling index: index of untyped nil");
}

static void test_call(void **state)
{
    expect("{{ call nil }}", "!in.ctmpl:1:4: error calling call: call of nil");
    expect("{{ $x := parseJSON `{\"f\":1}` }}{{ call $x.f 2 }}",
           "!in.ctmpl:1:35: error calling call: non-function $x.f of type float64");
    expect("{{ call (print \"a\") }}",
           "!in.ctmpl:1:4: error calling call: non-function (print \"a\") of type string");
    expect("{{ call }}", "!in.ctmpl:1:4: wrong number of args for call: want at least 1 got 0");
}

static void test_comparisons(void **state)
{
    expect("{{ eq 1 1 }} {{ eq 1.5 1.5 }} {{ eq \"a\" \"b\" \"a\" }} {{ eq true false }} "
           "{{ eq nil nil }} {{ eq \"a\" nil }} {{ ne 1 2 }}",
           "true true true false true false true");
    expect("{{ le 1 1 }} {{ le 2 1 }} {{ gt 2 1 }} {{ ge 1 1 }} {{ lt \"a\" \"b\" }}",
           "true false true true true");
    /* an int and a float are different kinds, as in Go */
    expect("{{ eq 1 1.0 }}",
           "!in.ctmpl:1:4: error calling eq: incompatible types for comparison: int and float64");
    expect("{{ lt 1.5 1 }}",
           "!in.ctmpl:1:4: error calling lt: incompatible types for comparison: float64 and int");
    expect("{{ lt true false }}", "!in.ctmpl:1:4: error calling lt: invalid type for comparison");
    expect("{{ lt \"a\" nil }}", "!in.ctmpl:1:4: error calling lt: invalid type for comparison");
    expect("{{ gt true 1 }}",
           "!in.ctmpl:1:4: error calling gt: incompatible types for comparison: bool and int");
    /* lists and maps compare only with nil */
    expect("{{ $l := split \",\" \"a,b\" }}{{ eq $l nil }} {{ eq nil $l }}", "false false");
    expect("{{ $l := split \",\" \"a,b\" }}{{ eq $l $l }}",
           "!in.ctmpl:1:31: error calling eq: non-comparable type [a b]: []interface {}");
    expect("{{ eq (split \",\" \"a\") (parseJSON `{}`) }}",
           "!in.ctmpl:1:4: error calling eq: non-comparable types [a]: []interface {}, "
           "map[string]interface {}: map[]");
    expect("{{ eq 1 }}", "!in.ctmpl:1:4: error calling eq: missing argument for comparison");
}

/* fmt's %T, %c, %U and %b, with the outputs Go's fmt gives */
static void test_printf_verbs(void **state)
{
    expect("{{ printf \"%T %T %T %T %T %T %T\" 1 1.5 \"s\" true nil (split \",\" \"a\") "
           "(parseJSON \"{}\") }}",
           "int float64 string bool <nil> []interface {} map[string]interface {}");
    expect("{{ printf \"%c|%5c|%c|%U|%#U|%#U\" 65 0x263A -1 0x1F600 0x41 10 }}",
           "A|    \xe2\x98\xba|\xef\xbf\xbd|U+1F600|U+0041 'A'|U+000A");
    /* width and precision count runes */
    expect("{{ printf \"%5s|%.2s|%-4q|\" \"é\" \"héllo\" \"é\" }}", "    é|hé|\"é\" |");
    expect("{{ printf \"%b|%#b|%08b|%-6b|%+b\" 5 5 -5 5 5 }}", "101|0b101|-0000101|101   |+101");
    expect("{{ printf \"%b|%b|%b\" 8.0 0.1 0.0 }}",
           "4503599627370496p-49|7205759403792794p-56|0p-1074");
    expect("{{ printf \"%c|%b\" \"x\" true }}", "%!c(string=x)|%!b(bool=true)");
}

/* Number and character constants, with Go's exec_test.go cases and outputs */
static void test_constants(void **state)
{
    expect("{{ print 1234 }} {{ print 12_34 }} {{ print 0b101 }} {{ print 0b_1_0_1 }} "
           "{{ print 0B101 }} {{ print 0377 }} {{ print 0o377 }} {{ print 0o_3_7_7 }} "
           "{{ print 0O377 }} {{ print 0x123 }} {{ print 0x1_23 }} {{ print 0X123ABC }}",
           "1234 1234 5 5 5 255 255 255 255 291 291 1194684");
    expect("{{ print 123.4 }} {{ print 0_0_1_2_3.4 }} {{ print +0x1.ep+2 }} "
           "{{ print +0x_1.e_0p+0_2 }} {{ print +0X1.EP+2 }} {{ print 1_2_3_4 7.5_00_00_00 }} "
           "{{ print 1234 0x0_1.e_0p+02 }} {{ 1e3 }} {{ 0x1E }} {{ 0x1.bp1 }}",
           "123.4 123.4 7.5 7.5 7.5 1234 7.5 1234 7.5 1000 30 3.375");
    /* a character constant is its rune's value, an integer */
    expect("{{ 'a' }} {{ '\\n' }} {{ '\\x41' }} {{ '\\377' }} {{ '\\u00e9' }} {{ 'é' }} "
           "{{ '\\'' }} {{ printf \"%c\" 'x' }}",
           "97 10 65 255 233 233 39 x");
    expect("{{ 'ab' }}", "!in.ctmpl:1:4: malformed character constant: 'ab'");
    expect("{{ '' }}", "!in.ctmpl:1:4: malformed character constant: ''");
    expect("{{ 'a }}", "!in.ctmpl:1:4: unterminated character constant");
    expect("{{ 1__0 }}", "!in.ctmpl:1:4: bad number syntax: \"1__0\"");
    expect("{{ 0x1.8 }}", "!in.ctmpl:1:4: bad number syntax: \"0x1.8\"");
    expect("{{ 0o1.5 }}", "!in.ctmpl:1:4: bad number syntax: \"0o1.5\"");
}

/* range over an integer (Go 1.22) binds one variable, the value; two are an error, even for 0 */
static void test_range_int(void **state)
{
    expect("{{ range $v := 3 }}{{ $v }}{{ end }}{{ range 2 }}{{ . }}{{ end }}", "01201");
    expect("{{ range $i, $v := 3 }}x{{ end }}",
           "!in.ctmpl:1:4: can't use 3 to iterate over more than one variable");
    expect("{{ range $i, $v := 0 }}x{{ else }}y{{ end }}",
           "!in.ctmpl:1:4: can't use 0 to iterate over more than one variable");
}

/* Commands Go refuses: a constant after a pipe (when parsed), nil as a command (when run) */
static void test_commands(void **state)
{
    expect("{{ 1 | 2 }}", "!in.ctmpl:1:8: non executable command in pipeline stage 2");
    expect("{{ \"x\" | printf \"%s\" | . }}",
           "!in.ctmpl:1:24: non executable command in pipeline stage 3");
    expect("{{ nil }}", "!in.ctmpl:1:4: nil is not a command");
    expect("{{ (nil) }}", "!in.ctmpl:1:5: nil is not a command");
    expect("{{ eq nil nil }} {{ . | print }}", "true <nil>");
}

/* {{ else with }} (Go 1.23) after a with, as {{ else if }} after an if */
static void test_else_with(void **state)
{
    expect("{{ with 0 }}a{{ else with 2 }}{{ . }}{{ else }}c{{ end }}"
           "{{ with \"\" }}a{{ else with 0 }}b{{ else }}c{{ end }}",
           "2c");
    expect("{{ if 0 }}a{{ else with 2 }}b{{ end }}", "!in.ctmpl:1:20: unexpected \"with\" in else");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html),        cmocka_unit_test(test_js),
        cmocka_unit_test(test_urlquery),    cmocka_unit_test(test_slice),
        cmocka_unit_test(test_index),       cmocka_unit_test(test_call),
        cmocka_unit_test(test_comparisons), cmocka_unit_test(test_printf_verbs),
        cmocka_unit_test(test_constants),   cmocka_unit_test(test_else_with),
        cmocka_unit_test(test_range_int),   cmocka_unit_test(test_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
