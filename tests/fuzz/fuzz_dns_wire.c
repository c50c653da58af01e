/*
 * Fuzz target for DNS messages (lib/dns_wire): the input is a datagram as a client sends it. The
 * query parser must accept it whole or fail with -2/-1, never read past it or loop on
 * compression pointers; a name read at any offset must stay within RFC 1035's limits; and an
 * answer written for an accepted query must read back: its first record's owner is the question.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(const struct dns_query *q)
{
    static uint8_t out[DNS_MSG_MAX];
    struct dns_writer *w = xmalloc(sizeof(*w));
    char name[DNS_NAME_TEXT_MAX];

    if (dns_writer_init(w, out, DNS_UDP_MIN, q, DNS_FLAG_AA, DNS_RCODE_NOERROR) != 0)
        abort(); /* a parsed question is at most 259 bytes: it always fits */
    struct dns_rr a = {.name = q->qname, .type = DNS_TYPE_A, .addr = {127, 0, 0, 1}};
    struct dns_rr srv = {.name = q->qname, .type = DNS_TYPE_SRV, .port = 80, .target = q->qname};
    struct dns_rr txt = {.name = q->qname, .type = DNS_TYPE_TXT, .target = q->qname};
    int rc = dns_writer_add(w, DNS_ANSWER, &a);
    if (rc == 0) {
        size_t at = DNS_HEADER_LEN + q->question_len;
        int n = dns_name_read(out, w->len, at, name);
        if (n <= 0 || strcasecmp(name, q->qname) != 0)
            abort();
        rc = dns_writer_add(w, DNS_ANSWER, &srv);
        if (rc == 0)
            rc = dns_writer_add(w, DNS_ADDITIONAL, &txt);
    }
    if (rc != 0 && rc != -ENOSPC && rc != -EINVAL)
        abort();
    if (w->len > DNS_UDP_MIN)
        abort();
    free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_query q;
    char name[DNS_NAME_TEXT_MAX];
    int rc = dns_query_parse(data, size, &q);

    if (rc != -1 && rc != -2 && rc != (int)size)
        abort();
    if (rc > 0)
        check_answer(&q);
    for (size_t off = 0; off < size && off < 512; off++) {
        int n = dns_name_read(data, size, off, name);
        if (n != -1 && n != -2 && (n <= 0 || off + (size_t)n > size || strlen(name) >= 1024))
            abort();
    }
    return 0;
}
