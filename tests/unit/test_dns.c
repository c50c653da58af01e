#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/dns/dns.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_names),        cmocka_unit_test(test_rfc2782_names),
        cmocka_unit_test(test_node_query_addr),      cmocka_unit_test(test_dc_label),
        cmocka_unit_test(test_apex_outside_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
