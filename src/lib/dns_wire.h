/*
 * DNS messages on the wire (RFC 1035, with RFC 2782 SRV and RFC 6891 EDNS0): reading a query
 * and writing an answer. Reading follows compression pointers only backwards, so a hostile
 * message cannot make it loop, and bounds names to 255 bytes as the RFC does. Writing compresses
 * names against those already in the message, as every server does to fit 512-byte UDP answers.
 */
#ifndef MESH_LIB_DNS_WIRE_H
#define MESH_LIB_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_UDP_MIN    512   /* a UDP answer's size without EDNS0 */
#define DNS_MSG_MAX    65535 /* a TCP message's size (2-byte length prefix) */
/* A name in presentation form: at most 255 wire bytes, each possibly escaped as \DDD. */
#define DNS_NAME_TEXT_MAX 1024

enum dns_type {
    DNS_TYPE_A = 1,
    DNS_TYPE_NS = 2,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_SOA = 6,
    DNS_TYPE_PTR = 12,
    DNS_TYPE_TXT = 16,
    DNS_TYPE_AAAA = 28,
    DNS_TYPE_SRV = 33,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_ANY = 255,
};

#define DNS_CLASS_IN 1

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
};

/* Header flag bits (the second 16-bit word of the header). */
#define DNS_FLAG_QR       0x8000
#define DNS_FLAG_AA       0x0400
#define DNS_FLAG_TC       0x0200
#define DNS_FLAG_RD       0x0100
#define DNS_FLAG_RA       0x0080
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xf)

struct dns_query {
    uint16_t id;
    uint16_t flags;
    uint16_t qdcount;
    char qname[DNS_NAME_TEXT_MAX]; /* the first question's name, no trailing dot ("" = root) */
    uint16_t qtype;
    uint16_t qclass;
    const uint8_t *question; /* the first question as it came (points into the message) */
    size_t question_len;
    bool edns;         /* an OPT record came in the additional section */
    uint16_t edns_udp; /* the UDP size it advertised */
};

/*
 * Reads the name at msg[off] (msg is the whole message, len bytes) into out (DNS_NAME_TEXT_MAX
 * bytes) as dotted text without the trailing dot, escaping '.', '\\' and non-printable bytes as
 * \DDD. Returns the bytes the name takes at off (n), -2 when the message ends inside it, -1 when
 * it is malformed (a label type other than 0 or 0xC0, a pointer that does not point backwards, a
 * name over 255 bytes).
 */
int dns_name_read(const uint8_t *msg, size_t len, size_t off, char *out);

/*
 * Parses a whole query message: header, the first question, and the other sections skipped over
 * for an EDNS0 OPT record. Returns len (n) when every section is well formed, -2 when the message
 * is cut short, -1 when malformed (or a question count other than 1). q is filled as far as the
 * parse got; q->id and q->flags are set whenever len >= DNS_HEADER_LEN.
 */
int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q);

enum dns_section { DNS_ANSWER = 0, DNS_AUTHORITY, DNS_ADDITIONAL };

/* One record to write. Strings are borrowed; which fields count depends on type. */
struct dns_rr {
    const char *name; /* owner, dotted, with or without the trailing dot */
    uint16_t type;
    uint32_t ttl;
    uint8_t addr[16];                /* A: 4 bytes, AAAA: 16 */
    uint16_t priority, weight, port; /* SRV */
    const char *target; /* SRV, CNAME, NS target; SOA mname; TXT text (split in 255-byte parts) */
    const char *rname;  /* SOA */
    uint32_t serial, refresh, retry, expire, minimum; /* SOA */
};

#define DNS_COMPRESS_MAX 64

/* Writes one message into a caller's buffer: header, question, then records section by section
 * in order (answer, authority, additional). */
struct dns_writer {
    uint8_t *buf; /* borrowed */
    size_t cap;
    size_t len;
    uint16_t counts[3];
    int section; /* the last section written to */
    /* Names already in the message, for compression: each suffix as lower-cased wire bytes. */
    struct {
        uint8_t key[255];
        uint8_t key_len;
        uint16_t off;
    } names[DNS_COMPRESS_MAX];
    size_t nnames;
};

/*
 * Starts a response to q in buf (cap bytes, at least DNS_HEADER_LEN + q->question_len): the
 * header with q's id, QR, q's RD and opcode, the given extra flags and rcode, and q's question
 * copied (none when q->question is NULL). Returns 0 or -ENOSPC.
 */
int dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t cap, const struct dns_query *q,
                    uint16_t flags, enum dns_rcode rcode);
/*
 * Appends rr to section s (s must not go back to an earlier section). Returns 0, -ENOSPC when
 * it does not fit in cap (the message is left as it was), or -EINVAL for a name that is not
 * valid (a label over 63 bytes or a name over 255) or a section out of order.
 */
int dns_writer_add(struct dns_writer *w, enum dns_section s, const struct dns_rr *rr);
/* Appends an EDNS0 OPT record advertising udp_size to the additional section. 0 or -ENOSPC. */
int dns_writer_add_opt(struct dns_writer *w, uint16_t udp_size);

#endif
