#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/str.h"

/* ---- buf ------------------------------------------------------------------------------------ */

static void test_buf_append_growth(void **state)
{
    struct buf b = BUF_INIT;
    char want[10000];

    for (size_t i = 0; i < sizeof(want); i++) {
        char c = (char)('a' + i % 26);
        want[i] = c;
        buf_append(&b, &c, 1);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    /* Embedded NULs are kept; the terminator still follows. */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b\0", 4);

    /* Appending nothing to an empty buffer allocates a terminated string. */
    struct buf e = BUF_INIT;
    buf_append(&e, NULL, 0);
    assert_non_null(e.data);
    assert_int_equal(e.len, 0);
    assert_string_equal(e.data, "");
    buf_free(&e);

    buf_append_cstr(&b, "xyz");
    buf_append_str(&b, STR_LIT("12"));
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "a\0bxyz12", 9);
    struct str s = buf_str(&b);
    assert_int_equal(s.n, 8);
    assert_ptr_equal(s.p, b.data);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_printf(void **state)
{
    struct buf b = BUF_INIT;

    buf_printf(&b, "%s=%d", "a", 42);
    assert_string_equal(b.data, "a=42");
    assert_int_equal(b.len, 4);
    buf_printf(&b, "%s", ""); /* empty output changes nothing */
    assert_int_equal(b.len, 4);

    /* Output larger than the current capacity, several times over. */
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 4 + 2 + sizeof(big) - 1);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[5], 'x');
    assert_int_equal(b.data[b.len - 2], 'x');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_true(b.cap > b.len);

    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%04d", i);
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.data + 3996, "0999", 5);
    buf_free(&b);
}

static void test_buf_consume(void **state)
{
    struct buf b = BUF_INIT;

    buf_consume(&b, 0); /* on an empty, unallocated buffer */
    assert_int_equal(b.len, 0);
    buf_append_cstr(&b, "hello world");
    buf_consume(&b, 0);
    assert_string_equal(b.data, "hello world");
    buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    buf_append_cstr(&b, "!");
    assert_string_equal(b.data, "world!");
    buf_consume(&b, 6);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

static void test_buf_steal(void **state)
{
    struct buf b = BUF_INIT;

    /* Stealing an empty, never-allocated buffer still gives a terminated heap string. */
    char *s = buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_null(b.data);
    free(s);

    buf_append_cstr(&b, "abc");
    buf_consume(&b, 3);
    s = buf_steal(&b);
    assert_string_equal(s, "");
    free(s);

    buf_printf(&b, "%d", 123);
    s = buf_steal(&b);
    assert_string_equal(s, "123");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* The buffer is reusable after a steal. */
    buf_append_cstr(&b, "again");
    assert_string_equal(b.data, "again");
    buf_free(&b);
}

static void test_buf_reserve(void **state)
{
    struct buf b = BUF_INIT;

    buf_reserve(&b, 1000);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.data[0], '\0');
    char *before = b.data;
    buf_append(&b, "x", 1);
    memset(b.data + b.len, 'y', 999);
    assert_ptr_equal(b.data, before); /* no move within the reservation */
    buf_free(&b);
}

/* ---- str ------------------------------------------------------------------------------------ */

static void check_trim(const char *in, const char *want)
{
    struct str t = str_trim(str_from(in));
    assert_int_equal(t.n, strlen(want));
    assert_memory_equal(t.p, want, t.n);
}

static void test_str_trim(void **state)
{
    check_trim("", "");
    check_trim("   ", "");
    check_trim("\t \t", "");
    check_trim("abc", "abc");
    check_trim("  abc", "abc");
    check_trim("abc \t", "abc");
    check_trim(" \ta b\t ", "a b");
    check_trim("\nx\n", "\nx\n"); /* only spaces and tabs */
    struct str t = str_trim(STR_NULL);
    assert_int_equal(t.n, 0);
}

static void test_str_utf8(void **state)
{
    assert_int_equal(str_utf8_seq_len(STR_LIT("a")), 1);
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xc3\xa9")), 2);
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xe2\x82\xac")), 3);
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xf4\x8f\xbf\xbf")), 4); /* U+10FFFF */
    assert_int_equal(str_utf8_seq_len(STR_NULL), 0);
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xc3")), 0);             /* cut short */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xe2\x82")), 0);         /* cut short */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xc0\xaf")), 0);         /* overlong '/' */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xe0\x80\xaf")), 0);     /* overlong */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xed\xa0\x80")), 0);     /* surrogate */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xf4\x90\x80\x80")), 0); /* > U+10FFFF */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\x80")), 0);             /* continuation */
    assert_int_equal(str_utf8_seq_len(STR_LIT("\xff")), 0);

    assert_true(str_is_text(STR_LIT("")));
    assert_true(str_is_text(STR_LIT("app/caf\xc3\xa9 \xf0\x9f\x98\x80")));
    assert_false(str_is_text(STR_LIT("victim\0x")));
    assert_false(str_is_text(STR_LIT("\0")));
    assert_false(str_is_text(STR_LIT("caf\xe9")));
}

static void test_str_to_u64(void **state)
{
    unsigned long long v = 7;

    assert_true(str_to_u64(STR_LIT("0"), &v));
    assert_int_equal(v, 0);
    assert_true(str_to_u64(STR_LIT("42"), &v));
    assert_int_equal(v, 42);
    assert_true(str_to_u64(STR_LIT("007"), &v));
    assert_int_equal(v, 7);
    assert_true(str_to_u64(STR_LIT("18446744073709551615"), &v));
    assert_true(v == 18446744073709551615ull);
    assert_true(str_to_u64(STR_LIT("18446744073709551610"), &v));
    assert_true(v == 18446744073709551610ull);

    v = 7;
    static const char *const bad[] = {"",
                                      "18446744073709551616",
                                      "18446744073709551620",
                                      "99999999999999999999",
                                      "184467440737095516150",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1a",
                                      "0x10",
                                      "1.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(str_to_u64(str_from(bad[i]), &v));
        assert_int_equal(v, 7); /* untouched on failure */
    }
    /* Only the slice is read, not the bytes after it. */
    struct str s = {"123456", 3};
    assert_true(str_to_u64(s, &v));
    assert_int_equal(v, 123);
}

static void test_str_helpers(void **state)
{
    assert_true(str_eq(STR_LIT("ab"), STR_LIT("ab")));
    assert_false(str_eq(STR_LIT("ab"), STR_LIT("abc")));
    assert_true(str_eq(STR_NULL, STR_LIT("")));
    assert_true(str_ieq_cstr(STR_LIT("Content-Length"), "content-length"));
    assert_false(str_ieq_cstr(STR_LIT("Content-Length"), "content-lengt"));
    assert_true(str_has_prefix(STR_LIT("/v1/kv/x"), STR_LIT("/v1/kv/")));
    assert_false(str_has_prefix(STR_LIT("/v1"), STR_LIT("/v1/kv/")));
    struct str s = str_skip(STR_LIT("abcdef"), 2);
    assert_true(str_eq_cstr(s, "cdef"));
    assert_int_equal(str_from(NULL).n, 0);
}

/* ---- base64 --------------------------------------------------------------------------------- */

static void test_base64_known(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *enc = base64_encode(v[i].in, strlen(v[i].in));
        assert_string_equal(enc, v[i].out);
        free(enc);
        size_t len = 99;
        unsigned char *dec = base64_decode(v[i].out, &len);
        assert_non_null(dec);
        assert_int_equal(len, strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, len);
        assert_int_equal(dec[len], '\0');
        free(dec);
    }
    char *enc = base64_encode("\xfb\xff\xbf", 3); /* the two non-alphanumeric symbols */
    assert_string_equal(enc, "+/+/");
    free(enc);
}

static void test_base64_round_trip(void **state)
{
    unsigned char data[64];
    unsigned seed = 99;

    for (size_t len = 0; len <= sizeof(data); len++) {
        for (int round = 0; round < 4; round++) {
            for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                /* round 0: random; 1: all zero; 2: all 0xff; 3: counting */
                data[i] = round == 0   ? (unsigned char)(seed >> 16)
                          : round == 1 ? 0
                          : round == 2 ? 0xff
                                       : (unsigned char)i;
            }
            char *enc = base64_encode(data, len);
            assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
            size_t out_len = 12345;
            unsigned char *dec = base64_decode(enc, &out_len);
            assert_non_null(dec);
            assert_int_equal(out_len, len);
            if (len)
                assert_memory_equal(dec, data, len);
            free(dec);
            free(enc);
        }
    }
}

static void test_base64_bad(void **state)
{
    static const char *const bad[] = {
        "Z",        "Zg",       "Zg=",  "Zm9vY", /* length not a multiple of 4 */
        "Zm9v!A==", "Zm-v",     "Zm_v", "Zm9 ",  /* characters outside the alphabet */
        "Zm9v\n",   "Zg==Zg==", "Z===",          /* padding in the middle or too much */
        "====",     "=Zm9",     "Zm=v", "Zg=a",  "Zm9vYg=\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = 77;
        unsigned char *dec = base64_decode(bad[i], &len);
        if (dec)
            print_error("accepted: \"%s\"\n", bad[i]);
        assert_null(dec);
        assert_int_equal(len, 77);
    }
}

/*
 * A reservation whose size does not fit beside the bytes already held must end in the
 * allocator's out-of-memory abort, never in a wrapped sum that reports room it does not have.
 */
static void test_buf_reserve_beyond_size_max_aborts(void **state)
{
    (void)state;
    size_t extras[] = {SIZE_MAX, SIZE_MAX - 5, SIZE_MAX - 200};
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct buf b = BUF_INIT;
            buf_append(&b, "0123456789", 10);
            buf_reserve(&b, extras[i]);
            _exit(0); /* reached only when nothing aborted */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_growth),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_reserve_beyond_size_max_aborts),
        cmocka_unit_test(test_str_trim),
        cmocka_unit_test(test_str_utf8),
        cmocka_unit_test(test_str_to_u64),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_base64_known),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_base64_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
