/* lib/re: bounded compilation of users' regular expressions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/re.h"

/* Patterns that glibc's regcomp would expand into gigabytes, or regexec run for ages on: each
 * is refused at once with RE2's reason. */
static void test_refused_with_the_reason(void **state)
{
    static const struct {
        const char *pattern, *msg;
    } cases[] = {
        /* issue 12: ?filter=ID matches "a{1,1000}{1,1000}" froze an agent for 75 s */
        {"a{1,1000}{1,1000}",
         "error parsing regexp: invalid nested repetition operator: `a{1,1000}{1,1000}`"},
        {"a**", "error parsing regexp: invalid nested repetition operator: `a**`"},
        {"a*+++", "error parsing regexp: invalid nested repetition operator: `a*+++`"},
        {"a{1001}", "error parsing regexp: invalid repeat count: `a{1001}`"},
        {"a{2,1001}", "error parsing regexp: invalid repeat count: `a{2,1001}`"},
        {"(a{1,1000}){1,1000}",
         "error parsing regexp: expression too large: `(a{1,1000}){1,1000}`"},
        {"((a{1,40}){1,40})", "error parsing regexp: expression too large: `((a{1,40}){1,40})`"},
        {"(a?){999}", "error parsing regexp: expression too large: `(a?){999}`"},
        {"(a)\\1", "error parsing regexp: invalid escape sequence: `(a)\\1`"},
        {"(", "error parsing regexp: Unmatched ( or \\(: `(`"},
        /* a filter "(a*)*" x 50 took regcomp forever under the one-pass search's ".*" */
        {"(a*)*(a*)*(a*)*(a*)*(a*)*b", "error parsing regexp: too many repeated groups that "
                                       "match the empty string: `(a*)*(a*)*(a*)*(a*)*(a*)*b`"},
        {"(a?)+(b|)*(^)*((c*)*)*", "error parsing regexp: too many repeated groups that match "
                                   "the empty string: `(a?)+(b|)*(^)*((c*)*)*`"},
        {"(x*){2}(x*){0,5}(x*){3,}(x*)+(x*)*", "error parsing regexp: too many repeated "
                                               "groups that match the empty string: "
                                               "`(x*){2}(x*){0,5}(x*){3,}(x*)+(x*)*`"},
        /* fuzz: glibc reads a stray ')' as a literal, which the one-pass search would close */
        {"a)*(a|aa)*b", "error parsing regexp: unexpected ): `a)*(a|aa)*b`"},
    };
    regex_t re;
    struct err e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(re_compile(&re, cases[i].pattern, REG_NOSUB, &e), -EINVAL);
        assert_string_equal(e.msg, cases[i].msg);
        assert_int_equal(re_compile(&re, cases[i].pattern, 0, &e), -EINVAL);
        assert_string_equal(e.msg, cases[i].msg);
    }
}

static void test_nesting_and_length_bounded(void **state)
{
    char deep[2 * (RE_MAX_DEPTH + 1) + 2];
    char *long_pattern = malloc(RE_MAX_PATTERN + 2);
    regex_t re;
    struct err e;

    memset(deep, '(', RE_MAX_DEPTH + 1);
    memset(deep + RE_MAX_DEPTH + 1, ')', RE_MAX_DEPTH + 1);
    deep[2 * (RE_MAX_DEPTH + 1)] = '\0';
    assert_int_equal(re_compile(&re, deep, REG_NOSUB, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "expression nests too deeply"));
    deep[RE_MAX_DEPTH] = 'a'; /* one level less */
    deep[RE_MAX_DEPTH + 1] = ')';
    memmove(deep + RE_MAX_DEPTH + 1, deep + RE_MAX_DEPTH + 2, RE_MAX_DEPTH + 1);
    assert_int_equal(re_compile(&re, deep, REG_NOSUB, &e), 0);
    regfree(&re);

    memset(long_pattern, 'a', RE_MAX_PATTERN + 1);
    long_pattern[RE_MAX_PATTERN + 1] = '\0';
    assert_int_equal(re_compile(&re, long_pattern, REG_NOSUB, &e), -EINVAL);
    assert_string_equal(e.msg, "pattern longer than 4096 bytes");
    long_pattern[RE_MAX_PATTERN] = '\0';
    assert_int_equal(re_compile(&re, long_pattern, REG_NOSUB, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "expression too large")); /* 4096 atoms */
    long_pattern[RE_MAX_SIZE] = '\0';
    assert_int_equal(re_compile(&re, long_pattern, REG_NOSUB, &e), 0);
    regfree(&re);
    free(long_pattern);
}

/* Repeated groups that always read a character, and optional ones that do not repeat, are
 * not loops that can go round empty: any number compiles. */
static void test_repeated_groups_that_read_compile(void **state)
{
    static const char *const ok[] = {
        "(a*)*(a*)*(a*)*(a*)*b",
        "(ab*)*(ab*)*(ab*)*(ab*)*(ab*)*(ab*)*",
        "(a|b)*(a|b)*(a|b)*(a|b)*(a|b)*(a|b)*",
        "(a*)?(a*)?(a*)?(a*)?(a*)?(a*)?(a*){1}",
        "(a*b)+(a*b)+(a*b)+(a*b)+(a*b)+(a*b)+",
        "\\(a*\\)*\\(a*\\)*\\(a*\\)*\\(a*\\)*\\(a*\\)*",
    };
    regex_t re;
    struct err e;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (re_compile(&re, ok[i], REG_NOSUB, &e) < 0)
            fail_msg("%s: %s", ok[i], e.msg);
        regfree(&re);
    }
}

/* A yes/no match (REG_NOSUB, searched in one pass) answers as an unanchored search does. */
static void test_matches_as_a_search(void **state)
{
    static const struct {
        const char *pattern, *subject;
        bool match;
    } cases[] = {
        {"^web-[0-9]+$", "web-12", true},
        {"^web-[0-9]+$", "xweb-12", false},
        {"eb", "web", true},
        {"^eb", "web", false},
        {"x|^w", "web", true},
        {"x|^e", "web", false},
        {"b$", "web", true},
        {"e$", "web", false},
        {"\\d+", "v12", true},
        {"^\\w+$", "web_1", true},
        {"^\\w+$", "web-1", false},
        {"\\s", "a b", true},
        {"[\\d]", "d", true}, /* inside brackets \d stays as POSIX reads it */
        {"", "anything", true},
        {"(a|aa)*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false},
        {"(a|aa)*b", "aaaaab", true},
        {"a{1,1000}", "a", true},
    };
    regex_t re;
    struct err e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (re_compile(&re, cases[i].pattern, REG_NOSUB, &e) < 0)
            fail_msg("%s: %s", cases[i].pattern, e.msg);
        int rc = regexec(&re, cases[i].subject, 0, NULL, 0);
        if ((rc == 0) != cases[i].match)
            fail_msg("%s on %s: got %d", cases[i].pattern, cases[i].subject, rc);
        regfree(&re);
    }
}

/* Without REG_NOSUB the groups are the pattern's own, for replacements. */
static void test_submatches_kept(void **state)
{
    regmatch_t m[2];
    regex_t re;
    struct err e;

    assert_int_equal(re_compile(&re, "v(\\d+)", 0, &e), 0);
    assert_int_equal(regexec(&re, "app-v42", 2, m, 0), 0);
    assert_int_equal(m[0].rm_so, 4);
    assert_int_equal(m[1].rm_so, 5);
    assert_int_equal(m[1].rm_eo, 7);
    regfree(&re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_with_the_reason),
        cmocka_unit_test(test_nesting_and_length_bounded),
        cmocka_unit_test(test_repeated_groups_that_read_compile),
        cmocka_unit_test(test_matches_as_a_search),
        cmocka_unit_test(test_submatches_kept),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
