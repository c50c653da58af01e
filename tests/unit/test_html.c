#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/html.h"

static void test_escape(void **state)
{
    struct buf b = BUF_INIT;

    html_escape(&b, "a<b>&\"c\"'d'");
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
    buf_reset(&b);
    html_escape(&b, "");
    assert_int_equal(b.len, 0);
    html_escape(&b, "plain web1/0 ü");
    assert_string_equal(b.data, "plain web1/0 ü");
    buf_free(&b);
}

static void test_json_cannot_close_script(void **state)
{
    struct buf b = BUF_INIT;
    json_t *v =
        json_pack("{s:s, s:[s, f]}", "name", "</script><!-- & \xe2\x80\xa8", "list", "ü", 0.5);
    json_t *back;

    html_append_json(&b, v, 0);
    assert_null(strchr(b.data, '<'));
    assert_null(strchr(b.data, '>'));
    assert_null(strchr(b.data, '&'));
    for (size_t i = 0; i < b.len; i++)
        assert_true((unsigned char)b.data[i] < 0x80);
    /* Still the same JSON once parsed. */
    back = json_loads(b.data, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    json_decref(back);
    json_decref(v);
    buf_free(&b);
}

static void test_json_precision(void **state)
{
    struct buf b = BUF_INIT;
    json_t *v = json_real(1.0 / 3.0);

    html_append_json(&b, v, JSON_REAL_PRECISION(4));
    assert_string_equal(b.data, "0.3333");
    json_decref(v);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_json_cannot_close_script),
        cmocka_unit_test(test_json_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
