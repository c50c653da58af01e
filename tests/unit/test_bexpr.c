#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bexpr.h"

/* A health-service entry shaped like Consul's /v1/health/service/:name elements. */
static const char *const entry_json =
    "{\"Node\": {\"Node\": \"web1\", \"Address\": \"10.0.0.1\", \"Meta\": {\"rack\": \"r1\"}},"
    " \"Service\": {\"ID\": \"web-1\", \"Service\": \"web\", \"Tags\": [\"primary\", \"v2\"],"
    "  \"Port\": 8080, \"Weight\": 1.5, \"EnableTagOverride\": false,"
    "  \"Meta\": {\"env\": \"prod\", \"team.name\": \"core\"}, \"Empty\": \"\", \"Nothing\": null},"
    " \"Checks\": [{\"CheckID\": \"serfHealth\", \"Status\": \"passing\"},"
    "             {\"CheckID\": \"service:web-1\", \"Status\": \"critical\"}]}";

struct eval_case {
    const char *expr;
    int want;
};

static const struct eval_case cases[] = {
    {"Service.Service == web", 1},
    {"Service.Service == \"web\"", 1},
    {"Service.Service == `api`", 0},
    {"Service.Service != api", 1},
    {"Service.Port == 8080", 1},
    {"Service.Port != 8080", 0},
    {"Service.Weight == 1.5", 1},
    {"Service.EnableTagOverride == false", 1},
    {"Service.Tags contains primary", 1},
    {"Service.Tags not contains primary", 0},
    {"primary in Service.Tags", 1},
    {"\"v3\" in Service.Tags", 0},
    {"\"v3\" not in Service.Tags", 1},
    {"env in Service.Meta", 1},
    {"Service.Meta.env == prod", 1},
    {"Service.Meta[\"team.name\"] == core", 1},
    {"Service.Meta.missing == x", 0},
    {"Service.Meta.missing != x", 1},
    {"Service.Meta.missing is empty", 1},
    {"Service.Meta is not empty", 1},
    {"Service.Empty is empty", 1},
    {"Service.Nothing is nil", 1},
    {"Service.Tags is nil", 0},
    {"Service.ID matches \"^web-[0-9]+$\"", 1},
    {"Service.ID not matches \"^api\"", 1},
    {"Service.ID matches \"b-\\\\d$\"", 1}, /* RE2's \d, as Consul's Go regexp has it */
    {"Service.ID matches \"^eb\"", 0},
    {"Service.ID matches \"x|^w\"", 1},
    {"Service.ID contains \"eb-\"", 1},
    {"Service.ID contains xyz", 0},
    {"Node.Meta.rack == r1 and Service.Port == 8080", 1},
    {"Node.Meta.rack == r2 or Service.Port == 8080", 1},
    {"not Service.Port == 8080", 0},
    {"not (Node.Node == web2 or Node.Node == web3)", 1},
    {"(Node.Node == web1) and not (Service.Tags contains v1)", 1},
    /* a field of a list: any element; negative operators: none */
    {"Checks.Status == critical", 1},
    {"Checks.Status == warning", 0},
    {"Checks.Status != critical", 0},
    {"Checks.Status != warning", 1},
    {"Checks.0.CheckID == serfHealth", 1},
    {"Checks.1.Status == passing", 0},
    {"Service.Tags.0 == primary", 1},
};

static void test_eval_cases(void **state)
{
    json_t *v = json_loads(entry_json, 0, NULL);
    assert_non_null(v);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = {{0}};
        struct bexpr *x = bexpr_parse(cases[i].expr, &e);
        if (!x)
            fail_msg("%s: parse failed: %s", cases[i].expr, e.msg);
        int got = bexpr_eval(x, v, &e);
        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d (%s)", cases[i].expr, got, cases[i].want, e.msg);
        bexpr_free(x);
    }
    json_decref(v);
}

struct error_case {
    const char *expr;
    const char *want; /* the message's start */
};

static const struct error_case parse_errors[] = {
    {"", "1:1: empty expression"},
    {"Service.Port ==", "1:16: expected a value"},
    {"Service.Port", "1:13: expected an operator"},
    {"Service.Port 8080", "1:14: expected an operator"},
    {"(Service.Port == 1", "1:1: unmatched parentheses"},
    {"Service.Port == 1)", "1:18: unexpected text"},
    {"Service.Name == \"web", "1:17: unterminated string"},
    {"Service.Meta[env] == x", "1:13: invalid index"},
    {"Service.Meta[\"env\" == x", "1:13: unclosed index"},
    {"Service.ID matches \"(\"", "1:1: failed to compile regular expression"},
    /* glibc's regcomp took 75 s and 3.85 GB on this one (issue 12): refused in bounds */
    {"ID matches \"a{1,1000}{1,1000}\"",
     "1:1: failed to compile regular expression: error parsing regexp: invalid nested repetition "
     "operator: `a{1,1000}{1,1000}`"},
    {"ID matches \"(a{1,1000}){1,1000}\"",
     "1:1: failed to compile regular expression: error parsing regexp: expression too large"},
    {"ID matches \"(a)\\\\1\"",
     "1:1: failed to compile regular expression: error parsing regexp: invalid escape sequence"},
    {"Service.Tags is full", "1:17: expected \"empty\" or \"nil\""},
    {"Service.Port == 12abc", "1:17: invalid number literal"},
    {"\"web\" == Service.Service", "1:7: expected \"in\" or \"not in\""},
    {"Service.Port == 1 and", "1:22: expected a selector"},
};

static void test_parse_errors_name_the_column(void **state)
{
    for (size_t i = 0; i < sizeof(parse_errors) / sizeof(parse_errors[0]); i++) {
        struct err e = {{0}};
        struct bexpr *x = bexpr_parse(parse_errors[i].expr, &e);
        if (x)
            fail_msg("%s: parsed, want error %s", parse_errors[i].expr, parse_errors[i].want);
        if (strncmp(e.msg, parse_errors[i].want, strlen(parse_errors[i].want)) != 0)
            fail_msg("%s: error \"%s\", want \"%s...\"", parse_errors[i].expr, e.msg,
                     parse_errors[i].want);
    }
}

static void test_uncomparable_values_are_errors(void **state)
{
    json_t *v = json_loads(entry_json, 0, NULL);
    struct err e = {{0}};
    struct bexpr *x = bexpr_parse("Service.Port == abc", &e);
    assert_non_null(x);
    assert_int_equal(bexpr_eval(x, v, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "abc"));
    bexpr_free(x);
    x = bexpr_parse("Service.Tags == primary", &e);
    assert_int_equal(bexpr_eval(x, v, &e), -EINVAL);
    bexpr_free(x);
    json_decref(v);
}

/* A type shaped like Consul's CheckServiceNode, cut down. */
static const struct bexpr_field meta_value[] = {{"", BEXPR_STRING, NULL}, {NULL, 0, NULL}};
static const struct bexpr_field check_fields[] = {
    {"Status", BEXPR_STRING, NULL},
    {"ServiceTags", BEXPR_STRINGS, NULL},
    {NULL, 0, NULL},
};
static const struct bexpr_field service_fields[] = {
    {"Service", BEXPR_STRING, NULL}, {"Tags", BEXPR_STRINGS, NULL},
    {"Port", BEXPR_INT, NULL},       {"EnableTagOverride", BEXPR_BOOL, NULL},
    {"Meta", BEXPR_MAP, meta_value}, {NULL, 0, NULL},
};
static const struct bexpr_field entry_fields[] = {
    {"Service", BEXPR_STRUCT, service_fields},
    {"Checks", BEXPR_LIST, check_fields},
    {NULL, 0, NULL},
};

static const struct error_case check_cases[] = {
    /* valid: want is NULL */
    {"Service.Service == web and Service.Port != 80", NULL},
    {"Service.Tags contains primary and \"v2\" not in Service.Tags", NULL},
    {"Service.Tags is not empty or Service.Meta is empty", NULL},
    {"Service.Meta.env == prod and Service.Meta[\"a.b\"] matches \"^x\"", NULL},
    {"env in Service.Meta", NULL},
    {"Checks.Status == critical and Checks is not empty", NULL},
    {"Service.EnableTagOverride == true", NULL},
    /* is nil: on what a Go value can be nil in (maps, slices) and structs (never nil) */
    {"Service.Tags is nil or Service.Meta is not nil or Checks is nil or Service is nil", NULL},
    /* unknown fields name the selector up to the first unknown part */
    {"Nope == 1", "Selector \"Nope\" is not valid"},
    {"Service.Nope.Deeper == 1", "Selector \"Service.Nope\" is not valid"},
    {"Service.Port == 1 or Checks.0.Status == passing", "Selector \"Checks.0\" is not valid"},
    {"Service.Port.X == 1", "Selector \"Service.Port.X\" is not valid"},
    /* operators the field's type does not take */
    {"Service.Tags == primary", "Invalid match operator \"Equal\" for selector \"Service.Tags\""},
    {"Service.Port contains 8", "Invalid match operator \"In\" for selector \"Service.Port\""},
    {"Service is empty", "Invalid match operator \"Is Empty\" for selector \"Service\""},
    {"Service.Service is not empty",
     "Invalid match operator \"Is Not Empty\" for selector \"Service.Service\""},
    {"Checks != x", "Invalid match operator \"Not Equal\" for selector \"Checks\""},
    {"Service.Port not matches \"8\"",
     "Invalid match operator \"Not Matches\" for selector \"Service.Port\""},
    /* ...and never on a string, number or bool, nor on a map's string values */
    {"Service.Service is nil",
     "cannot perform is-nil operations on type string for selector: \"Service.Service\""},
    {"Service.Port is not nil",
     "cannot perform is-nil operations on type int for selector: \"Service.Port\""},
    {"Service.EnableTagOverride is nil",
     "cannot perform is-nil operations on type bool for selector: "
     "\"Service.EnableTagOverride\""},
    {"Service.Meta.env is nil",
     "cannot perform is-nil operations on type string for selector: \"Service.Meta.env\""},
    {"Checks.Status is not nil",
     "cannot perform is-nil operations on type string for selector: \"Checks.Status\""},
    /* values that do not convert to the field's type, with Go's strconv words */
    {"Service.Port == abc",
     "Failed to coerce value \"abc\" for selector \"Service.Port\": strconv.ParseInt: parsing "
     "\"abc\": invalid syntax"},
    {"Service.Port == 99999999999999999999",
     "Failed to coerce value \"99999999999999999999\" for selector \"Service.Port\": "
     "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"},
    {"Service.EnableTagOverride != yes",
     "Failed to coerce value \"yes\" for selector \"Service.EnableTagOverride\": "
     "strconv.ParseBool: parsing \"yes\": invalid syntax"},
    /* the first fault wins, left to right, under not and parentheses */
    {"not (Service.Port == 1 and (Checks.Nope == x or Nope == y))",
     "Selector \"Checks.Nope\" is not valid"},
};

static void test_check_against_fields(void **state)
{
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        const struct error_case *c = &check_cases[i];
        struct err e = {{0}};
        struct bexpr *x = bexpr_parse(c->expr, &e);
        if (!x)
            fail_msg("%s: parse failed: %s", c->expr, e.msg);
        int r = bexpr_check(x, entry_fields, &e);
        if (!c->want && r != 0)
            fail_msg("%s: refused: %s", c->expr, e.msg);
        if (c->want && (r != -EINVAL || strcmp(e.msg, c->want) != 0))
            fail_msg("%s: got %d \"%s\", want \"%s\"", c->expr, r, e.msg, c->want);
        bexpr_free(x);
    }
}

static void test_nesting_is_bounded(void **state)
{
    char deep[BEXPR_MAX_DEPTH * 4 + 64] = "";
    for (int i = 0; i < BEXPR_MAX_DEPTH + 1; i++)
        strcat(deep, "not ");
    strcat(deep, "A == b");
    struct err e = {{0}};
    assert_null(bexpr_parse(deep, &e));
    assert_non_null(strstr(e.msg, "nested too deeply"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_cases),
        cmocka_unit_test(test_parse_errors_name_the_column),
        cmocka_unit_test(test_uncomparable_values_are_errors),
        cmocka_unit_test(test_nesting_is_bounded),
        cmocka_unit_test(test_check_against_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
