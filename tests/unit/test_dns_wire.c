#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/dns_wire.h"

/* A query for web.service.consul A (ID 0x1234, RD), as dig sends it, without EDNS. */
static const uint8_t query_web[] = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    3,    'w',  'e',  'b',  7,    's',  'e',  'r',  'v',  'i',  'c',  'e',
    6,    'c',  'o',  'n',  's',  'u',  'l',  0,    0x00, 0x01, 0x00, 0x01,
};

static void test_name_read_plain_and_pointer(void **state)
{
    /* offset 0: "a.b", offset 5: "x" + pointer to 0 */
    const uint8_t msg[] = {1, 'a', 1, 'b', 0, 1, 'x', 0xc0, 0x00};
    char out[DNS_NAME_TEXT_MAX];

    (void)state;
    assert_int_equal(dns_name_read(msg, sizeof(msg), 0, out), 5);
    assert_string_equal(out, "a.b");
    /* The pointer ends the name where it stands: 2 labels' bytes plus the pointer. */
    assert_int_equal(dns_name_read(msg, sizeof(msg), 5, out), 4);
    assert_string_equal(out, "x.a.b");
    const uint8_t root[] = {0};
    assert_int_equal(dns_name_read(root, 1, 0, out), 1);
    assert_string_equal(out, "");
}

static void test_name_read_rejects_loops_and_bad_labels(void **state)
{
    char out[DNS_NAME_TEXT_MAX];
    const uint8_t self[] = {0xc0, 0x00};
    const uint8_t forward[] = {0xc0, 0x02, 1, 'a', 0};
    const uint8_t back_then_loop[] = {1, 'a', 0xc0, 0x04, 0xc0, 0x00}; /* 4 -> 0 -> 2 -> 4 */
    const uint8_t ext_label[] = {0x41, 'a', 0};
    const uint8_t reserved[] = {0x80, 0};

    (void)state;
    assert_int_equal(dns_name_read(self, sizeof(self), 0, out), -1);
    assert_int_equal(dns_name_read(forward, sizeof(forward), 0, out), -1);
    assert_int_equal(dns_name_read(back_then_loop, sizeof(back_then_loop), 4, out), -1);
    assert_int_equal(dns_name_read(ext_label, sizeof(ext_label), 0, out), -1);
    assert_int_equal(dns_name_read(reserved, sizeof(reserved), 0, out), -1);
}

static void test_name_read_limits(void **state)
{
    char out[DNS_NAME_TEXT_MAX];
    uint8_t msg[300];
    size_t n = 0;

    (void)state;
    /* 4 labels of 63 bytes: 256 wire bytes with the root, one over RFC 1035's 255. */
    for (int l = 0; l < 4; l++) {
        msg[n++] = 63;
        memset(msg + n, 'a', 63);
        n += 63;
    }
    msg[n++] = 0;
    assert_int_equal(dns_name_read(msg, n, 0, out), -1);
    /* Cut short inside a label, and inside a pointer: -2. */
    const uint8_t cut[] = {5, 'a', 'b'};
    assert_int_equal(dns_name_read(cut, sizeof(cut), 0, out), -2);
    const uint8_t cut_ptr[] = {1, 'a', 0xc0};
    assert_int_equal(dns_name_read(cut_ptr, sizeof(cut_ptr), 0, out), -2);
    assert_int_equal(dns_name_read(cut, 0, 0, out), -2);
}

static void test_name_read_escapes(void **state)
{
    const uint8_t msg[] = {3, 'a', '.', 0x01, 1, '\\', 0};
    char out[DNS_NAME_TEXT_MAX];

    (void)state;
    assert_int_equal(dns_name_read(msg, sizeof(msg), 0, out), (int)sizeof(msg));
    assert_string_equal(out, "a\\046\\001.\\092");
}

static void test_query_parse(void **state)
{
    struct dns_query q;

    (void)state;
    assert_int_equal(dns_query_parse(query_web, sizeof(query_web), &q), (int)sizeof(query_web));
    assert_int_equal(q.id, 0x1234);
    assert_int_equal(q.flags, DNS_FLAG_RD);
    assert_string_equal(q.qname, "web.service.consul");
    assert_int_equal(q.qtype, DNS_TYPE_A);
    assert_int_equal(q.qclass, DNS_CLASS_IN);
    assert_int_equal(q.question_len, sizeof(query_web) - DNS_HEADER_LEN);
    assert_false(q.edns);
    /* Every prefix is cut short (-2), never malformed or accepted. */
    for (size_t n = 0; n < sizeof(query_web); n++)
        assert_int_equal(dns_query_parse(query_web, n, &q), -2);
    /* A trailing byte is malformed. */
    uint8_t longer[sizeof(query_web) + 1];
    memcpy(longer, query_web, sizeof(query_web));
    longer[sizeof(query_web)] = 0;
    assert_int_equal(dns_query_parse(longer, sizeof(longer), &q), -1);
    /* No question, or two: malformed, with the ID known for the FORMERR. */
    uint8_t none[sizeof(query_web)];
    memcpy(none, query_web, sizeof(query_web));
    none[5] = 0;
    assert_int_equal(dns_query_parse(none, sizeof(none), &q), -1);
    assert_int_equal(q.id, 0x1234);
}

static void test_query_parse_edns(void **state)
{
    uint8_t msg[sizeof(query_web) + 11];
    const uint8_t opt[] = {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0}; /* OPT, 4096 */
    struct dns_query q;

    (void)state;
    memcpy(msg, query_web, sizeof(query_web));
    memcpy(msg + sizeof(query_web), opt, sizeof(opt));
    msg[11] = 1; /* ARCOUNT */
    assert_int_equal(dns_query_parse(msg, sizeof(msg), &q), (int)sizeof(msg));
    assert_true(q.edns);
    assert_int_equal(q.edns_udp, 4096);
    msg[sizeof(msg) - 1] = 1; /* RDLENGTH 1 with no data: cut short */
    assert_int_equal(dns_query_parse(msg, sizeof(msg), &q), -2);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void test_writer_answer(void **state)
{
    static uint8_t buf[DNS_MSG_MAX];
    struct dns_writer *w = malloc(sizeof(*w));
    struct dns_query q;
    char name[DNS_NAME_TEXT_MAX];

    (void)state;
    assert_int_equal(dns_query_parse(query_web, sizeof(query_web), &q), (int)sizeof(query_web));
    assert_int_equal(dns_writer_init(w, buf, sizeof(buf), &q, DNS_FLAG_AA, DNS_RCODE_NOERROR), 0);
    struct dns_rr a = {.name = "web.service.consul", .type = DNS_TYPE_A, .addr = {10, 0, 0, 1}};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &a), 0);
    /* The owner is the question's name: a 2-byte pointer to offset 12. */
    size_t rr_at = sizeof(query_web);
    assert_int_equal(get16(buf + rr_at), 0xc00c);
    assert_int_equal(w->len, sizeof(query_web) + 2 + 10 + 4);
    struct dns_rr srv = {.name = "WEB.service.consul.",
                         .type = DNS_TYPE_SRV,
                         .ttl = 30,
                         .priority = 1,
                         .weight = 5,
                         .port = 8080,
                         .target = "node1.node.dc1.consul."};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &srv), 0);
    struct dns_rr soa = {.name = "consul.",
                         .type = DNS_TYPE_SOA,
                         .target = "ns.consul.",
                         .rname = "hostmaster.consul.",
                         .serial = 7,
                         .refresh = 3600};
    assert_int_equal(dns_writer_add(w, DNS_AUTHORITY, &soa), 0);
    struct dns_rr txt = {
        .name = "node1.node.dc1.consul", .type = DNS_TYPE_TXT, .target = "rack=r1"};
    assert_int_equal(dns_writer_add(w, DNS_ADDITIONAL, &txt), 0);
    /* Going back to an earlier section is refused. */
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &a), -EINVAL);

    assert_int_equal(get16(buf), 0x1234);
    assert_int_equal(get16(buf + 2), DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD);
    assert_int_equal(get16(buf + 4), 1);
    assert_int_equal(get16(buf + 6), 2);
    assert_int_equal(get16(buf + 8), 1);
    assert_int_equal(get16(buf + 10), 1);
    /* Read the SRV back: owner compressed (case-insensitively), target spelled out. */
    size_t p = rr_at + 2 + 10 + 4;
    assert_int_equal(dns_name_read(buf, w->len, p, name), 2);
    assert_string_equal(name, "web.service.consul");
    p += 2;
    assert_int_equal(get16(buf + p), DNS_TYPE_SRV);
    size_t rdlen = get16(buf + p + 8);
    p += 10;
    assert_int_equal(get16(buf + p + 4), 8080);
    assert_int_equal(dns_name_read(buf, w->len, p + 6, name), (int)rdlen - 6);
    assert_string_equal(name, "node1.node.dc1.consul");
    assert_int_equal(rdlen, 6 + 23);
    /* The SOA's owner points into the question ("consul"). */
    p += rdlen;
    assert_int_equal(dns_name_read(buf, w->len, p, name), 2);
    assert_string_equal(name, "consul");
    free(w);
}

static void test_writer_nospace_and_bad_names(void **state)
{
    uint8_t buf[64];
    struct dns_writer *w = malloc(sizeof(*w));
    struct dns_query q;

    (void)state;
    dns_query_parse(query_web, sizeof(query_web), &q);
    assert_int_equal(dns_writer_init(w, buf, 20, &q, 0, 0), -ENOSPC);
    assert_int_equal(dns_writer_init(w, buf, sizeof(buf), &q, 0, DNS_RCODE_NXDOMAIN), 0);
    assert_int_equal(get16(buf + 2) & 0xf, DNS_RCODE_NXDOMAIN);
    struct dns_rr a = {.name = "web.service.consul", .type = DNS_TYPE_A};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &a), 0); /* 52 bytes */
    size_t len = w->len;
    struct dns_rr big = {.name = "another.name.entirely", .type = DNS_TYPE_A};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &big), -ENOSPC);
    assert_int_equal(w->len, len);
    assert_int_equal(get16(buf + 6), 1);
    char label[80];
    memset(label, 'x', 64);
    label[64] = '\0';
    struct dns_rr bad = {.name = label, .type = DNS_TYPE_A};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &bad), -EINVAL);
    bad.name = "a..b";
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &bad), -EINVAL);
    assert_int_equal(w->len, len);
    free(w);
}

static void test_writer_txt_split_and_opt(void **state)
{
    static uint8_t buf[DNS_MSG_MAX];
    struct dns_writer *w = malloc(sizeof(*w));
    struct dns_query q;
    char text[301];

    (void)state;
    dns_query_parse(query_web, sizeof(query_web), &q);
    dns_writer_init(w, buf, sizeof(buf), &q, 0, 0);
    memset(text, 'k', 300);
    text[300] = '\0';
    struct dns_rr txt = {.name = "web.service.consul", .type = DNS_TYPE_TXT, .target = text};
    assert_int_equal(dns_writer_add(w, DNS_ANSWER, &txt), 0);
    size_t p = sizeof(query_web) + 2;
    assert_int_equal(get16(buf + p + 8), 1 + 255 + 1 + 45);
    assert_int_equal(buf[p + 10], 255);
    assert_int_equal(buf[p + 10 + 256], 45);
    assert_int_equal(dns_writer_add_opt(w, 1232), 0);
    assert_int_equal(get16(buf + 10), 1);
    assert_int_equal(get16(buf + w->len - 8), 1232);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_read_plain_and_pointer),
        cmocka_unit_test(test_name_read_rejects_loops_and_bad_labels),
        cmocka_unit_test(test_name_read_limits),
        cmocka_unit_test(test_name_read_escapes),
        cmocka_unit_test(test_query_parse),
        cmocka_unit_test(test_query_parse_edns),
        cmocka_unit_test(test_writer_answer),
        cmocka_unit_test(test_writer_nospace_and_bad_names),
        cmocka_unit_test(test_writer_txt_split_and_opt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
