#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/agent/agent_config.h"
#include "registry/api/catalog_query.h"
#include "registry/dns/dns.h"
#include "registry/state/state.h"

static struct reg_dns_lookup parse_type(const char *qname, uint16_t qtype)
{
    struct reg_dns_lookup l;
    reg_dns_lookup_parse(qname, qtype, "consul.", &l);
    return l;
}

static struct reg_dns_lookup parse(const char *qname)
{
    return parse_type(qname, DNS_TYPE_A);
}

static void test_service_names(void **state)
{
    struct reg_dns_lookup l;

    (void)state;
    l = parse("web.service.consul.");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "");
    assert_string_equal(l.dc, "");
    l = parse("web.service.dc2.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.dc, "dc2");
    l = parse("primary.web.Service.CONSUL");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "primary");
    /* Everything before the name is the tag, dots and all (as Consul joins it). */
    l = parse("v1.2.web.service.consul");
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "v1.2");
}

static void test_rfc2782_names(void **state)
{
    struct reg_dns_lookup l;

    (void)state;
    l = parse("_web._tcp.service.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, ""); /* the protocol, not a tag */
    l = parse("_web._primary.service.dc1.consul");
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "primary");
    assert_string_equal(l.dc, "dc1");
    /* Only one underscore: the ordinary TAG.NAME form. */
    l = parse("_x.web.service.consul");
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "_x");
    /* An SRV question may leave the "service" label out; other questions may not. */
    l = parse_type("_web._tcp.consul", DNS_TYPE_SRV);
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "");
    assert_string_equal(l.dc, "");
    l = parse_type("_web._v2.dc1.consul.", DNS_TYPE_SRV);
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "v2");
    assert_string_equal(l.dc, "dc1");
    assert_int_equal(parse("_web._tcp.consul").kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse_type("_web.consul", DNS_TYPE_SRV).kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse_type("web._tcp.consul", DNS_TYPE_SRV).kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse_type("_web._tcp.a.b.consul", DNS_TYPE_SRV).kind, REG_DNS_LOOKUP_INVALID);
    l = parse_type("_web._v2.dc1.dc.consul", DNS_TYPE_SRV);
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.tag, "v2");
    assert_string_equal(l.dc, "dc1");
    l = parse_type("_web._tcp.dc.consul", DNS_TYPE_SRV); /* a datacenter named "dc" */
    assert_string_equal(l.dc, "dc");
}

static void test_dc_label(void **state)
{
    struct reg_dns_lookup l;

    (void)state;
    /* DC.dc after the type label names the datacenter (the newer spelling). */
    l = parse("v2.web.service.dc1.dc.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.tag, "v2");
    assert_string_equal(l.dc, "dc1");
    l = parse("_web._tcp.service.dc1.DC.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
    assert_string_equal(l.dc, "dc1");
    l = parse("node1.node.dc2.dc.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_NODE);
    assert_string_equal(l.name, "node1");
    assert_string_equal(l.dc, "dc2");
    l = parse("7f000001.addr.dc1.dc.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_ADDR);
    assert_string_equal(l.dc, "dc1");
    /* A datacenter named "dc", the legacy way. */
    l = parse("web.service.dc.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.dc, "dc");
    /* Still one datacenter label only, and "dc" needs one before it. */
    assert_int_equal(parse("web.service.a.b.dc.consul").kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse("web.dc.consul").kind, REG_DNS_LOOKUP_INVALID);
}

static void test_node_query_addr(void **state)
{
    struct reg_dns_lookup l;

    (void)state;
    l = parse("node1.node.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_NODE);
    assert_string_equal(l.name, "node1");
    l = parse("my.dotted.host.node.dc1.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_NODE);
    assert_string_equal(l.name, "my.dotted.host");
    assert_string_equal(l.dc, "dc1");
    l = parse("geo.query.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_QUERY);
    assert_string_equal(l.name, "geo");
    l = parse("7f000001.addr.dc1.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_ADDR);
    assert_int_equal(l.addr_len, 4);
    assert_memory_equal(l.addr, ((uint8_t[]){127, 0, 0, 1}), 4);
    l = parse("20010db8000000000000000000000001.addr.dc1.consul");
    assert_int_equal(l.kind, REG_DNS_LOOKUP_ADDR);
    assert_int_equal(l.addr_len, 16);
    assert_int_equal(l.addr[0], 0x20);
    assert_int_equal(l.addr[15], 1);
    assert_int_equal(parse("7f0001.addr.consul").kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse("7f00000g.addr.consul").kind, REG_DNS_LOOKUP_INVALID);
}

static void test_apex_outside_invalid(void **state)
{
    (void)state;
    assert_int_equal(parse("consul").kind, REG_DNS_LOOKUP_APEX);
    assert_int_equal(parse("Consul.").kind, REG_DNS_LOOKUP_APEX);
    assert_int_equal(parse("example.com").kind, REG_DNS_LOOKUP_OUTSIDE);
    assert_int_equal(parse("notconsul").kind, REG_DNS_LOOKUP_OUTSIDE);
    assert_int_equal(parse("").kind, REG_DNS_LOOKUP_OUTSIDE);
    assert_int_equal(parse("service.consul").kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse("web.consul").kind, REG_DNS_LOOKUP_INVALID);
    assert_int_equal(parse("node.consul").kind, REG_DNS_LOOKUP_INVALID);
    /* Two labels after the type: not a datacenter. */
    assert_int_equal(parse("web.service.a.b.consul").kind, REG_DNS_LOOKUP_INVALID);
    /* "services" is not "service". */
    assert_int_equal(parse("web.services.consul").kind, REG_DNS_LOOKUP_INVALID);
    struct reg_dns_lookup l;
    reg_dns_lookup_parse("web.service.mesh.internal", DNS_TYPE_A, "mesh.internal", &l);
    assert_int_equal(l.kind, REG_DNS_LOOKUP_SERVICE);
    assert_string_equal(l.name, "web");
}

/* ---- answers from a context with no agent behind it ------------------------------------ */

/* A server's DNS: the context the agent would fill, over a real state and a loaded config. */
struct fixture {
    struct reg_state st;
    struct reg_settings cfg;
    struct reg_dns dns;
};

static void fixture_init(struct fixture *f, int argc, const char **argv)
{
    struct err e = {""};

    reg_state_init(&f->st);
    assert_int_equal(reg_agent_config_load(&f->cfg, argc, (char **)argv, &e), 0);
    f->dns = (struct reg_dns){.state = &f->st, .cfg = &f->cfg};
}

static void fixture_free(struct fixture *f)
{
    reg_state_free(&f->st);
    reg_agent_config_free(&f->cfg);
}

/* Registers service name on node at addr, with one check of status health. */
static void add_instance(struct fixture *f, const char *node, const char *addr, const char *name,
                         const char *health)
{
    struct reg_catalog_registration reg;
    struct err e = {""};
    json_t *body = json_pack("{s:s, s:s, s:{s:s, s:i}, s:[{s:s, s:s, s:s}]}", "Node", node,
                             "Address", addr, "Service", "Service", name, "Port", 80, "Checks",
                             "CheckID", "alive", "ServiceID", name, "Status", health);

    assert_int_equal(reg_catalog_registration_decode(body, &reg, &e), 0);
    assert_int_equal(reg_catalog_registration_apply(&f->st, &reg, &e), 0);
    reg_catalog_registration_free(&reg);
    json_decref(body);
}

struct answer {
    uint8_t msg[DNS_MSG_MAX];
    size_t len;
    int calls;
};

static void on_answer(const uint8_t *msg, size_t len, void *data)
{
    struct answer *a = data;

    memcpy(a->msg, msg, len);
    a->len = len;
    a->calls++;
}

/* Asks qname (dotted, no trailing dot) for qtype over UDP; returns the answer's ANCOUNT. */
static int ask(struct fixture *f, const char *qname, uint16_t qtype, struct answer *a)
{
    uint8_t q[DNS_MSG_MAX] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t n = DNS_HEADER_LEN;

    for (const char *p = qname; *p;) {
        size_t label = strcspn(p, ".");
        q[n++] = (uint8_t)label;
        memcpy(q + n, p, label);
        n += label;
        p += label + (p[label] == '.');
    }
    q[n++] = 0;
    q[n++] = (uint8_t)(qtype >> 8);
    q[n++] = (uint8_t)qtype;
    q[n++] = 0;
    q[n++] = DNS_CLASS_IN;
    memset(a, 0, sizeof(*a));
    reg_dns_query(&f->dns, q, n, false, on_answer, a);
    assert_int_equal(a->calls, 1); /* a server answers within the call */
    assert_true(a->len >= DNS_HEADER_LEN);
    return a->msg[6] << 8 | a->msg[7];
}

static bool has_addr(const struct answer *a, const uint8_t ip[4])
{
    return memmem(a->msg, a->len, ip, 4) != NULL;
}

static void test_answers_from_the_context_state(void **state)
{
    static const uint8_t up[4] = {10, 0, 0, 1}, warn[4] = {10, 0, 0, 2}, down[4] = {10, 0, 0, 3};
    const char *argv[] = {"-server", "-node", "n1"};
    struct fixture f;
    struct answer a;

    (void)state;
    fixture_init(&f, 3, argv);
    add_instance(&f, "a", "10.0.0.1", "web", "passing");
    add_instance(&f, "b", "10.0.0.2", "web", "warning");
    add_instance(&f, "c", "10.0.0.3", "web", "critical");
    assert_int_equal(ask(&f, "web.service.consul", DNS_TYPE_A, &a), 2);
    assert_int_equal(a.msg[3] & 0xf, DNS_RCODE_NOERROR);
    assert_true(has_addr(&a, up) && has_addr(&a, warn) && !has_addr(&a, down));
    /* The settings are read through the context at each query, as a reload changes them. */
    f.cfg.dns_only_passing = true;
    assert_int_equal(ask(&f, "web.service.consul", DNS_TYPE_A, &a), 1);
    assert_true(has_addr(&a, up) && !has_addr(&a, warn));
    assert_int_equal(ask(&f, "nothing.service.consul", DNS_TYPE_A, &a), 0);
    assert_int_equal(a.msg[3] & 0xf, DNS_RCODE_NXDOMAIN);
    fixture_free(&f);
}

static void test_domain_and_acl_from_the_context_config(void **state)
{
    const char *argv[] = {"-server", "-node", "n1", "-domain", "mesh.internal"};
    struct fixture f;
    struct answer a;

    (void)state;
    fixture_init(&f, 5, argv);
    add_instance(&f, "a", "10.0.0.1", "web", "passing");
    assert_int_equal(ask(&f, "web.service.mesh.internal", DNS_TYPE_A, &a), 1);
    assert_int_equal(ask(&f, "web.service.consul", DNS_TYPE_A, &a), 0);
    assert_int_equal(a.msg[3] & 0xf, DNS_RCODE_REFUSED); /* outside the domain */
    /* Under ACLs that deny by default, the agent's default token (none) may read nothing. */
    f.cfg.acl_enabled = true;
    free(f.cfg.acl_default_policy);
    f.cfg.acl_default_policy = strdup("deny");
    assert_int_equal(ask(&f, "web.service.mesh.internal", DNS_TYPE_A, &a), 0);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_names),
        cmocka_unit_test(test_rfc2782_names),
        cmocka_unit_test(test_node_query_addr),
        cmocka_unit_test(test_dc_label),
        cmocka_unit_test(test_apex_outside_invalid),
        cmocka_unit_test(test_answers_from_the_context_state),
        cmocka_unit_test(test_domain_and_acl_from_the_context_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
