/* The per-user cookie jar: RFC 6265 storage and matching, as tough-cookie keeps it for
 * Artillery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load/cookies.h"

#define NOW 1700000000000LL /* 2023-11-14T22:13:20Z */

static void set(struct load_jar *j, const char *line, const char *host, const char *path, int want)
{
    struct load_jar_url u = {host, path, false};

    assert_int_equal(load_jar_set(j, line, strlen(line), &u, NOW), want);
}

static void header(struct load_jar *j, const char *host, const char *path, bool https, int64_t now,
                   const char *want)
{
    struct load_jar_url u = {host, path, https};
    struct buf b = BUF_INIT;

    load_jar_header(j, &u, now, &b);
    assert_string_equal(b.data ? b.data : "", want);
    buf_free(&b);
}

static void test_dates(void **state)
{
    (void)state;
    assert_true(load_cookie_date("Wed, 21 Oct 2015 07:28:00 GMT", 29) == 1445412480000LL);
    /* RFC 850 and asctime forms, two-digit years */
    assert_true(load_cookie_date("Wednesday, 21-Oct-15 07:28:00 GMT", 33) == 1445412480000LL);
    assert_true(load_cookie_date("Wed Oct 21 07:28:00 2015", 24) == 1445412480000LL);
    assert_true(load_cookie_date("Thu, 01 Jan 1970 00:00:00 GMT", 29) == 0);
    assert_true(load_cookie_date("yesterday", 9) == -1);
    assert_true(load_cookie_date("Wed, 32 Oct 2015 07:28:00 GMT", 29) == -1);
    assert_true(load_cookie_date("Wed, 21 Oct 2015 25:28:00 GMT", 29) == -1);
}

static void test_store_and_send(void **state)
{
    struct load_jar j = {0};

    (void)state;
    set(&j, "sid=abc; Path=/; HttpOnly", "app.test", "/login", 0);
    set(&j, "pref = dark ", "app.test", "/a/b/page?x=1", 0); /* default path /a/b */
    set(&j, "wide=1; Domain=.test", "app.test", "/", 0);
    set(&j, "sec=1; Secure", "app.test", "/", 0);
    set(&j, "noeq", "app.test", "/", -1);
    set(&j, "=v", "app.test", "/", -1);
    set(&j, "other=1; Domain=example.com", "app.test", "/", -1); /* not our domain */
    header(&j, "app.test", "/a/b/c", false, NOW, "pref=dark; sid=abc; wide=1");
    header(&j, "app.test", "/a/bc", false, NOW, "sid=abc; wide=1");
    header(&j, "app.test", "/", true, NOW, "sid=abc; wide=1; sec=1");
    header(&j, "api.app.test", "/", false, NOW, "wide=1"); /* host-only stays on its host */
    header(&j, "app.other", "/", false, NOW, "");
    /* a namesake replaces the cookie; an expired one deletes it */
    set(&j, "sid=new; Path=/", "app.test", "/", 0);
    header(&j, "app.test", "/", false, NOW, "sid=new; wide=1");
    set(&j, "sid=x; Path=/; Max-Age=0", "app.test", "/", 0);
    set(&j, "wide=x; Domain=test; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "app.test", "/", 0);
    header(&j, "app.test", "/", false, NOW, "");
    load_jar_free(&j);
}

static void test_expiry_and_bounds(void **state)
{
    struct load_jar j = {0};
    char line[LOAD_JAR_MAX_COOKIE + 16];

    (void)state;
    set(&j, "a=1; Max-Age=10", "h", "/", 0);
    /* Max-Age wins over Expires, whatever their order */
    set(&j, "b=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "h", "/", 0);
    header(&j, "h", "/", false, NOW + 9000, "a=1; b=1");
    header(&j, "h", "/", false, NOW + 10000, "");
    /* at most LOAD_JAR_MAX: the oldest goes */
    for (int i = 0; i <= LOAD_JAR_MAX; i++) {
        snprintf(line, sizeof(line), "c%d=1", i);
        set(&j, line, "h", "/", 0);
    }
    assert_int_equal(j.n, LOAD_JAR_MAX);
    for (size_t i = 0; i < j.n; i++)
        assert_string_not_equal(j.c[i].name, "c0");
    memset(line, 'v', sizeof(line) - 1);
    line[0] = 'n';
    line[1] = '=';
    line[sizeof(line) - 1] = '\0';
    set(&j, line, "h", "/", -1);
    load_jar_free(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_store_and_send),
        cmocka_unit_test(test_expiry_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
