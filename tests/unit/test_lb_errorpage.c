/* The built-in 503 (configs/errors/503.http): a whole, well-framed, self-contained response. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/http_parse.h"
#include "lb/proxy.h"

static void test_default_503_is_a_whole_response(void **state)
{
    (void)state;
    struct http_response_head res;
    size_t len = strlen(lb_default_503);
    int n = http_parse_response(lb_default_503, len, NULL, &res);

    assert_true(n > 0);
    assert_int_equal(res.status, 503);
    /* HAProxy sends an errorfile as it is: its Content-Length must be right */
    assert_int_equal(res.framing.content_length, (int64_t)(len - (size_t)n));
    assert_non_null(http_find_header(res.headers, res.num_headers, "retry-after"));
    assert_non_null(http_find_header(res.headers, res.num_headers, "content-type"));
    assert_false(res.framing.keep_alive);
}

static void test_default_503_page_is_self_contained(void **state)
{
    (void)state;
    const char *body = strstr(lb_default_503, "\r\n\r\n");
    static const char *const external[] = {
        "http:", "https:", "src=", "href=", "@import", "url(", "<script"};

    assert_non_null(body);
    for (size_t i = 0; i < sizeof(external) / sizeof(external[0]); i++)
        assert_null(strstr(body, external[i]));
    assert_non_null(strstr(body, "503"));
    assert_non_null(strstr(body, "prefers-color-scheme:dark")); /* light and dark */
    assert_non_null(strstr(body, "try again"));                 /* when to retry */
    assert_true(strlen(body) < 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_503_is_a_whole_response),
        cmocka_unit_test(test_default_503_page_is_self_contained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
