/* ACL rules parsing and authorization (registry/state/acl.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/state/acl.h"
#include "registry/state/state.h"

/* An authorizer over one parsed rule set. */
struct fixture {
    struct reg_acl_rules rules;
    const struct reg_acl_rules *list[1];
    struct reg_acl_authz a;
};

static void load(struct fixture *f, const char *text, bool default_allow)
{
    struct err e;
    assert_int_equal(reg_acl_rules_parse(text, &f->rules, &e), 0);
    f->list[0] = &f->rules;
    f->a = (struct reg_acl_authz){.enabled = true, .default_allow = default_allow, .rules = NULL};
    f->a.rules = f->list;
    f->a.nrules = 1;
}

static void test_parse_hcl(void **state)
{
    (void)state;
    struct reg_acl_rules r;
    struct err e;
    const char *text = "# comment\n"
                       "key_prefix \"app/\" { policy = \"write\" }\n"
                       "// another\n"
                       "service \"web\" {\n  policy = \"read\"\n  intentions = \"read\"\n}\n"
                       "/* block */ operator = \"read\"\n";
    assert_int_equal(reg_acl_rules_parse(text, &r, &e), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.v[0].res, REG_ACL_RES_KEY);
    assert_true(r.v[0].prefix);
    assert_string_equal(r.v[0].name, "app/");
    assert_int_equal(r.v[0].level, REG_ACL_LEVEL_WRITE);
    assert_int_equal(r.v[1].res, REG_ACL_RES_SERVICE);
    assert_false(r.v[1].prefix);
    assert_int_equal(r.v[1].level, REG_ACL_LEVEL_READ);
    assert_int_equal(r.v[2].res, REG_ACL_RES_OPERATOR);
    reg_acl_rules_free(&r);
}

static void test_parse_json(void **state)
{
    (void)state;
    struct reg_acl_rules r;
    struct err e;
    assert_int_equal(
        reg_acl_rules_parse(
            "{\"key_prefix\": {\"a/\": {\"policy\": \"list\"}}, \"acl\": \"write\"}", &r, &e),
        0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].level, REG_ACL_LEVEL_LIST);
    assert_int_equal(r.v[1].res, REG_ACL_RES_ACL);
    reg_acl_rules_free(&r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct reg_acl_rules r;
    struct err e;
    assert_int_equal(reg_acl_rules_parse("key \"a\" { policy = \"bogus\" }", &r, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "invalid policy"));
    reg_acl_rules_free(&r);
    assert_int_equal(reg_acl_rules_parse("service \"a\" { policy = \"list\" }", &r, &e), -EINVAL);
    reg_acl_rules_free(&r);
    assert_int_equal(reg_acl_rules_parse("frobnicate \"a\" { policy = \"read\" }", &r, &e),
                     -EINVAL);
    reg_acl_rules_free(&r);
    assert_int_equal(reg_acl_rules_parse("key \"a\" { policy = \"read\"", &r, &e), -EINVAL);
    reg_acl_rules_free(&r);
    assert_int_equal(reg_acl_rules_parse("{\"key\": 3}", &r, &e), -EINVAL);
    reg_acl_rules_free(&r);
    assert_int_equal(reg_acl_rules_parse("", &r, &e), 0);
    assert_int_equal(r.n, 0);
    reg_acl_rules_free(&r);
}

static void test_prefix_precedence(void **state)
{
    (void)state;
    struct fixture f;
    load(&f,
         "key_prefix \"\" { policy = \"read\" }\n"
         "key_prefix \"app/\" { policy = \"write\" }\n"
         "key_prefix \"app/secret/\" { policy = \"deny\" }\n"
         "key \"app/secret/open\" { policy = \"write\" }\n",
         false);
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "other", REG_ACL_ACCESS_READ));
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "other", REG_ACL_ACCESS_WRITE));
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "app/x", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "app/secret/x", REG_ACL_ACCESS_READ));
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "app/secret/open", REG_ACL_ACCESS_WRITE));
    /* No service rule: the default (deny) applies. */
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_SERVICE, "web", REG_ACL_ACCESS_READ));
    reg_acl_rules_free(&f.rules);
}

/* A recursive delete needs write on every key under the prefix (Consul's KeyWritePrefix). */
static void test_subtree_write(void **state)
{
    (void)state;
    struct fixture f;
    load(&f,
         "key_prefix \"\" { policy = \"write\" }\n"
         "key_prefix \"app/secret/\" { policy = \"deny\" }\n"
         "key \"ro/frozen\" { policy = \"read\" }\n",
         false);
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "app/", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "app/", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "ro", REG_ACL_ACCESS_WRITE));
    assert_true(
        reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "app/public/", REG_ACL_ACCESS_WRITE));
    assert_true(reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "ro/other", REG_ACL_ACCESS_WRITE));
    assert_false(
        reg_acl_allowed_subtree(&f.a, REG_ACL_RES_KEY, "app/secret/x", REG_ACL_ACCESS_WRITE));
    reg_acl_rules_free(&f.rules);
}

static void test_deny_wins_ties(void **state)
{
    (void)state;
    struct fixture f;
    load(&f,
         "service_prefix \"web\" { policy = \"write\" }\nservice_prefix \"web\" { policy = "
         "\"deny\" }\n",
         true);
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_SERVICE, "web1", REG_ACL_ACCESS_READ));
    assert_true(
        reg_acl_allowed(&f.a, REG_ACL_RES_SERVICE, "db", REG_ACL_ACCESS_WRITE)); /* default allow */
    reg_acl_rules_free(&f.rules);
}

static void test_levels_and_defaults(void **state)
{
    (void)state;
    struct fixture f;
    load(&f, "key_prefix \"l/\" { policy = \"list\" }\noperator = \"read\"\n", true);
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "l/a", REG_ACL_ACCESS_LIST));
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "l/a", REG_ACL_ACCESS_READ));
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "l/a", REG_ACL_ACCESS_WRITE));
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_OPERATOR, NULL, REG_ACL_ACCESS_READ));
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_OPERATOR, NULL, REG_ACL_ACCESS_WRITE));
    /* Default allow still keeps ACL management to explicit grants. */
    assert_false(reg_acl_allowed(&f.a, REG_ACL_RES_ACL, NULL, REG_ACL_ACCESS_READ));
    f.a.management = true;
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_ACL, NULL, REG_ACL_ACCESS_WRITE));
    f.a.management = false;
    f.a.enabled = false;
    assert_true(reg_acl_allowed(&f.a, REG_ACL_RES_KEY, "l/a", REG_ACL_ACCESS_WRITE));
    reg_acl_rules_free(&f.rules);
}

static void test_denied_text(void **state)
{
    (void)state;
    struct reg_acl_authz a = {.enabled = true, .accessor_id = "abc"};
    struct buf b = BUF_INIT;
    reg_acl_denied_text(&a, REG_ACL_RES_KEY, "foo", REG_ACL_ACCESS_WRITE, &b);
    assert_string_equal(b.data, "Permission denied: token with AccessorID 'abc' lacks permission "
                                "'key:write' on \"foo\"");
    buf_reset(&b);
    reg_acl_denied_text(&a, REG_ACL_RES_OPERATOR, "", REG_ACL_ACCESS_READ, &b);
    assert_string_equal(b.data, "Permission denied: token with AccessorID 'abc' lacks permission "
                                "'operator:read'");
    buf_free(&b);
}

/* Collects snapshot records into a JSON array. */
static void collect(const json_t *record, void *data)
{
    json_array_append_new(data, json_deep_copy(record));
}

/* Resolution through the state: management, a policy token, anonymous, unknown secret. */
static void test_resolve_and_replay(void **state)
{
    (void)state;
    struct reg_state st, st2;
    struct reg_acl_settings set = {
        .enabled = true, .default_allow = false, .initial_management = "root"};
    struct reg_acl_authz a = {0};
    struct err e;
    uint64_t index;

    reg_state_init(&st);
    reg_acl_state_ensure(&st, &set);
    assert_int_equal(reg_acl_resolve(&st, &set, "root", &a), 0);
    assert_true(a.management);
    assert_int_equal(reg_acl_resolve(&st, &set, "nope", &a), -ENOENT);
    assert_false(reg_acl_allowed(&a, REG_ACL_RES_KEY, "x", REG_ACL_ACCESS_READ));
    assert_int_equal(reg_acl_resolve(&st, &set, NULL, &a), 0);
    assert_string_equal(a.accessor_id, REG_ACL_ANONYMOUS_ID);
    assert_false(reg_acl_allowed(&a, REG_ACL_RES_KEY, "x", REG_ACL_ACCESS_READ));

    struct reg_acl_policy p = {.id = (char *)"p1",
                               .name = (char *)"app",
                               .rules = (char *)"key_prefix \"app/\" { policy = \"write\" }"};
    assert_int_equal(reg_acl_policy_put(&st, &p, &index, &e), 0);
    p.rules = (char *)"key_prefix {";
    assert_int_equal(reg_acl_policy_put(&st, &p, &index, &e), -EINVAL);
    char *ids[1] = {(char *)"p1"};
    struct reg_acl_token t = {
        .accessor_id = (char *)"t1", .secret_id = (char *)"s1", .policy_ids = ids, .npolicies = 1};
    reg_acl_token_put(&st, &t);
    assert_int_equal(reg_acl_resolve(&st, &set, "s1", &a), 0);
    assert_true(reg_acl_allowed(&a, REG_ACL_RES_KEY, "app/x", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed(&a, REG_ACL_RES_KEY, "other", REG_ACL_ACCESS_WRITE));

    /* A snapshot replayed into a fresh state gives the same answers. */
    reg_state_init(&st2);
    json_t *records = json_array();
    reg_state_dump(&st, collect, records);
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) assert_int_equal(reg_state_apply(&st2, r), 0);
    json_decref(records);
    assert_int_equal(reg_acl_resolve(&st2, &set, "s1", &a), 0);
    assert_true(reg_acl_allowed(&a, REG_ACL_RES_KEY, "app/y", REG_ACL_ACCESS_WRITE));
    assert_false(reg_acl_allowed(&a, REG_ACL_RES_KEY, "zzz", REG_ACL_ACCESS_WRITE));
    assert_int_equal(st2.table_index[REG_TABLE_ACL], st.table_index[REG_TABLE_ACL]);
    assert_int_equal(reg_acl_resolve(&st2, &set, "root", &a), 0);
    assert_true(a.management);

    assert_true(reg_acl_token_delete(&st, "t1") > 0);
    assert_int_equal(reg_acl_resolve(&st, &set, "s1", &a), -ENOENT);
    reg_acl_authz_free(&a);
    reg_state_free(&st);
    reg_state_free(&st2);
}

/*
 * An update may pass the stored token's own strings (the API updates from the token it looked
 * up): the put must not read them after it replaced, and freed, that token.
 */
static void test_token_update_from_stored_token(void **state)
{
    (void)state;
    struct reg_state st;
    struct reg_acl_token t = {.accessor_id = (char *)"t1", .secret_id = (char *)"s1"};

    reg_state_init(&st);
    uint64_t created = reg_acl_token_put(&st, &t);
    const struct reg_acl_token *stored = reg_acl_token_get(&st, "t1");
    struct reg_acl_token u = *stored;
    u.description = (char *)"renamed";
    uint64_t updated = reg_acl_token_put(&st, &u);
    assert_true(updated > created);
    stored = reg_acl_token_get(&st, "t1");
    assert_non_null(stored);
    assert_string_equal(stored->description, "renamed");
    assert_string_equal(stored->secret_id, "s1");
    assert_int_equal(stored->create_index, created);
    assert_int_equal(stored->modify_index, updated);
    assert_ptr_equal(reg_acl_token_by_secret(&st, "s1"), stored);
    reg_state_free(&st);
}

/* Replays records (a journal, or a snapshot's dump) into a fresh state. */
static void replay(const json_t *records, struct reg_state *into)
{
    size_t i;
    json_t *r;

    reg_state_init(into);
    json_array_foreach(records, i, r) assert_int_equal(reg_state_apply(into, r), 0);
}

/*
 * Consul's reset index is the bootstrap's own index: other ACL writes leave it, a replica
 * (the journal replayed) and a restore (a snapshot) have it, and a later bootstrap moves it.
 */
static void test_bootstrap_index_is_the_bootstraps(void **state)
{
    (void)state;
    struct reg_state st, replica, restored;
    json_t *journal = json_array(), *snapshot = json_array();
    char *mgmt[1] = {(char *)REG_ACL_MANAGEMENT_POLICY_ID};
    struct reg_acl_token boot = {.accessor_id = (char *)"b1",
                                 .secret_id = (char *)"bs1",
                                 .policy_ids = mgmt,
                                 .npolicies = 1};
    struct reg_acl_token other = {.accessor_id = (char *)"t1", .secret_id = (char *)"s1"};

    reg_state_init(&st);
    st.journal = collect;
    st.journal_data = journal;
    assert_int_equal(reg_acl_bootstrap_index(&st), 0);
    reg_acl_token_put(&st, &other);
    uint64_t first = reg_acl_token_bootstrap(&st, &boot);
    assert_int_equal(reg_acl_bootstrap_index(&st), first);
    reg_acl_token_put(&st, &other);
    reg_acl_token_delete(&st, "b1");
    assert_true(st.table_index[REG_TABLE_ACL] > first);
    assert_int_equal(reg_acl_bootstrap_index(&st), first); /* even with its token gone */

    replay(journal, &replica);
    assert_int_equal(reg_acl_bootstrap_index(&replica), first);
    reg_state_dump(&st, collect, snapshot);
    replay(snapshot, &restored);
    assert_int_equal(reg_acl_bootstrap_index(&restored), first);

    boot.accessor_id = (char *)"b2";
    boot.secret_id = (char *)"bs2";
    uint64_t second = reg_acl_token_bootstrap(&st, &boot);
    assert_true(second > first);
    assert_int_equal(reg_acl_bootstrap_index(&st), second);
    reg_state_free(&replica);
    reg_state_free(&restored);
    json_decref(journal);
    json_decref(snapshot);
    reg_state_free(&st);
}

/* State written before bootstraps were recorded: the oldest management token's CreateIndex. */
static void test_bootstrap_index_of_older_state(void **state)
{
    (void)state;
    struct reg_state st;
    char *mgmt[1] = {(char *)REG_ACL_MANAGEMENT_POLICY_ID};
    struct reg_acl_token other = {.accessor_id = (char *)"t1", .secret_id = (char *)"s1"};
    struct reg_acl_token t = {.accessor_id = (char *)"m1",
                              .secret_id = (char *)"ms1",
                              .policy_ids = mgmt,
                              .npolicies = 1};

    reg_state_init(&st);
    reg_acl_token_put(&st, &other);
    assert_int_equal(reg_acl_bootstrap_index(&st), 0);
    uint64_t oldest = reg_acl_token_put(&st, &t);
    t.accessor_id = (char *)"m2";
    t.secret_id = (char *)"ms2";
    reg_acl_token_put(&st, &t);
    assert_int_equal(reg_acl_bootstrap_index(&st), oldest);
    reg_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hcl),
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_prefix_precedence),
        cmocka_unit_test(test_subtree_write),
        cmocka_unit_test(test_deny_wins_ties),
        cmocka_unit_test(test_levels_and_defaults),
        cmocka_unit_test(test_denied_text),
        cmocka_unit_test(test_resolve_and_replay),
        cmocka_unit_test(test_token_update_from_stored_token),
        cmocka_unit_test(test_bootstrap_index_is_the_bootstraps),
        cmocka_unit_test(test_bootstrap_index_of_older_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
