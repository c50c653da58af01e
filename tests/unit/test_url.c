#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/url.h"

static void check_decode(const char *in, bool plus, const char *want)
{
    struct buf b = BUF_INIT;
    assert_int_equal(url_decode(str_from(in), plus, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
}

static void test_decode(void **state)
{
    check_decode("", true, "");
    check_decode("abc", true, "abc");
    check_decode("a+b", true, "a b");
    check_decode("a+b", false, "a+b");
    check_decode("%2Fv1%2fkv", false, "/v1/kv");
    check_decode("%41%7a%20", true, "Az ");
    check_decode("%2B", true, "+");
    check_decode("100%25", true, "100%");
    check_decode("caf%C3%A9", true, "caf\xc3\xa9");
    check_decode("%F0%9F%98%80", false, "\xf0\x9f\x98\x80"); /* U+1F600 */
}

/* What decodes to a NUL or to bytes that are not UTF-8 is refused: a key or name taken from a
 * URL must not be cut short by a C string ("victim%00x" is not "victim"). */
static void test_decode_not_text(void **state)
{
    static const char *const bad[] = {
        "%00",       "a%00b",        "%00junk", "%FF",   "caf%E9", "%C3",        "%C0%AF",
        "%ED%A0%80", "%F4%90%80%80", "\xff",    "a\xc3", "%E2%82", "x%F0%9F%98",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(url_decode(str_from(bad[i]), false, &b), -EILSEQ);
        buf_free(&b);
    }
    struct url_query q;
    assert_int_equal(url_query_parse(STR_LIT("a=1&token=x%00y"), &q), -EILSEQ);
    assert_int_equal(q.n, 0);
    assert_int_equal(url_query_parse(STR_LIT("k%FF=1"), &q), -EILSEQ);
    assert_int_equal(url_query_parse(STR_LIT("a=%zz"), &q), -EINVAL);
}

static void test_decode_bad(void **state)
{
    static const char *const bad[] = {"%", "%4", "%zz", "a%", "a%g1", "%1g", "ok%2", "%%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(url_decode(str_from(bad[i]), true, &b), -EINVAL);
        buf_free(&b);
    }
}

static void check_redacted(const char *in, const char *want)
{
    char *got = url_redacted(in);
    assert_string_equal(got, want);
    free(got);
}

/* A password in a URL is not shown (Go's URL.Redacted); everything else is kept. */
static void test_redacted(void **state)
{
    check_redacted("http://ops:hunter2@10.0.0.5:3000/health",
                   "http://ops:xxxxx@10.0.0.5:3000/health");
    check_redacted("https://u:p@h", "https://u:xxxxx@h");
    check_redacted("http://u:p:q@h/", "http://u:xxxxx@h/");
    check_redacted("http://a@b:c@h/x", "http://a@b:xxxxx@h/x"); /* the last '@' ends userinfo */
    check_redacted("http://ops@h/", "http://ops@h/");
    check_redacted("http://h/p?u=a:b@c", "http://h/p?u=a:b@c");
    check_redacted("http://h:80/#a:b@c", "http://h:80/#a:b@c");
    check_redacted("h:p@x", "h:p@x");
    check_redacted("", "");
}

static void test_encode(void **state)
{
    struct buf b = BUF_INIT;
    url_encode(&b, STR_LIT("web/v1 a+b~c_d.e-f?&=%"), true);
    assert_string_equal(b.data, "web/v1%20a%2Bb~c_d.e-f%3F%26%3D%25");
    buf_reset(&b);
    url_encode(&b, STR_LIT("a/b\xc3\xa9"), false);
    assert_string_equal(b.data, "a%2Fb%C3%A9");
    buf_reset(&b);
    url_encode(&b, STR_LIT(""), false);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_encode_round_trip(void **state)
{
    /* Every ASCII byte but NUL, and multi-byte characters. */
    char all[127 + 9];
    for (int i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    memcpy(all + 127, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    struct buf enc = BUF_INIT, dec = BUF_INIT;
    url_encode(&enc, (struct str){all, sizeof(all)}, false);
    assert_int_equal(url_decode(buf_str(&enc), true, &dec), 0);
    assert_int_equal(dec.len, sizeof(all));
    assert_memory_equal(dec.data, all, sizeof(all));
    buf_free(&enc);
    buf_free(&dec);
}

static void test_query(void **state)
{
    struct url_query q;
    assert_int_equal(
        url_query_parse(STR_LIT("index=42&wait=5s&passing&tag=a&tag=b+c&&dc=&x%20y=%2F"), &q), 0);
    assert_int_equal(q.n, 7);
    assert_string_equal(url_query_get(&q, "index"), "42");
    assert_string_equal(url_query_get(&q, "wait"), "5s");
    assert_string_equal(url_query_get(&q, "passing"), "");
    assert_true(url_query_has(&q, "passing"));
    assert_false(q.params[2].has_value);
    assert_string_equal(url_query_get(&q, "dc"), "");
    assert_true(q.params[5].has_value);
    assert_string_equal(url_query_get(&q, "x y"), "/");
    assert_null(url_query_get(&q, "missing"));
    assert_false(url_query_has(&q, "missing"));
    assert_null(url_query_get(&q, "Index")); /* names are case-sensitive, as in Go */

    const char *tags[4];
    assert_int_equal(url_query_get_all(&q, "tag", tags, 4), 2);
    assert_string_equal(tags[0], "a");
    assert_string_equal(tags[1], "b c");
    assert_int_equal(url_query_get_all(&q, "tag", tags, 1), 2); /* counts past max */
    assert_int_equal(url_query_get_all(&q, "none", tags, 4), 0);
    url_query_free(&q);
    assert_null(q.params);
    assert_int_equal(q.n, 0);
}

static void test_query_edge(void **state)
{
    struct url_query q;
    assert_int_equal(url_query_parse(STR_LIT(""), &q), 0);
    assert_int_equal(q.n, 0);
    url_query_free(&q);

    /* ';' is not a separator; '=' after the first belongs to the value. */
    assert_int_equal(url_query_parse(STR_LIT("a=1;b=2&k=v=w&=x"), &q), 0);
    assert_int_equal(q.n, 3);
    assert_string_equal(url_query_get(&q, "a"), "1;b=2");
    assert_string_equal(url_query_get(&q, "k"), "v=w");
    assert_string_equal(url_query_get(&q, ""), "x");
    url_query_free(&q);

    /* Many params grow the array. */
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "p%d=%d&", i, i);
    assert_int_equal(url_query_parse(buf_str(&b), &q), 0);
    assert_int_equal(q.n, 100);
    assert_string_equal(url_query_get(&q, "p99"), "99");
    url_query_free(&q);
    buf_free(&b);
}

static void test_query_bad(void **state)
{
    struct url_query q;
    assert_int_equal(url_query_parse(STR_LIT("a=1&b=%zz&c=3"), &q), -EINVAL);
    assert_int_equal(q.n, 0);
    assert_null(q.params);
    assert_int_equal(url_query_parse(STR_LIT("a=1&%4=1"), &q), -EINVAL);
    assert_int_equal(q.n, 0);
    assert_int_equal(url_query_parse(STR_LIT("%"), &q), -EINVAL);
    assert_int_equal(q.n, 0);
}

static void check_split(const char *url, bool https, const char *host, int port, const char *path)
{
    struct url_parts p;
    assert_int_equal(url_split(url, &p), 0);
    assert_int_equal(p.https, https);
    assert_string_equal(p.host, host);
    assert_int_equal(p.port, port);
    assert_string_equal(p.path, path);
    url_parts_free(&p);
    assert_null(p.path);
}

static void test_split(void **state)
{
    check_split("http://127.0.0.1:8500/v1/x?y", false, "127.0.0.1", 8500, "/v1/x?y");
    check_split("https://h/", true, "h", 443, "/");
    check_split("https://h", true, "h", 443, "/");
    check_split("127.0.0.1:8500", false, "127.0.0.1", 8500, "/");
    check_split("127.0.0.1:8500/v1/agent/self", false, "127.0.0.1", 8500, "/v1/agent/self");
    check_split("[::1]:8500", false, "::1", 8500, "/");
    check_split("http://[fe80::1]/a", false, "fe80::1", 80, "/a");
    check_split("[::1]", false, "::1", 80, "/");
    check_split("localhost", false, "localhost", 80, "/");
    check_split("http://localhost?x=1", false, "localhost", 80, "/?x=1");
    check_split("https://consul.example.com:65535/ui/", true, "consul.example.com", 65535, "/ui/");
}

static void test_split_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "http://",
        "http:///x",
        ":8500",
        "h:",
        "h:0",
        "h:65536",
        "h:123456",
        "h:80x",
        "h:-1",
        "ftp://h/",
        "[::1",
        "[::1]x",
        "[]:80",
        "::1:8500",
        "http://user@h/",
        "h o/",
        "http://"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct url_parts p;
        if (url_split(bad[i], &p) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_null(p.path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),          cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_decode_not_text), cmocka_unit_test(test_redacted),
        cmocka_unit_test(test_encode),          cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_query),           cmocka_unit_test(test_query_edge),
        cmocka_unit_test(test_query_bad),       cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
