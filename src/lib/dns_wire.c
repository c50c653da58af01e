#include "lib/dns_wire.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NAME_WIRE_MAX  255
#define LABEL_MAX      63
#define PTR_MAX_OFFSET 0x3fff

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Appends one label's text to out at *olen, escaping what would not read back as one label. */
static void label_text(const uint8_t *label, size_t n, char *out, size_t *olen)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = label[i];
        if (c == '.' || c == '\\' || c <= 0x20 || c >= 0x7f)
            *olen += (size_t)snprintf(out + *olen, 5, "\\%03u", c);
        else
            out[(*olen)++] = (char)c;
    }
    out[*olen] = '\0';
}

int dns_name_read(const uint8_t *msg, size_t len, size_t off, char *out)
{
    size_t pos = off, seg_start = off, wire_len = 0, olen = 0;
    int consumed = -1;

    out[0] = '\0';
    for (;;) {
        if (pos >= len)
            return -2;
        uint8_t c = msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return -2;
            size_t target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
            /* Only backwards, and before where this stretch began: every jump lowers seg_start,
             * so the walk ends whatever the pointers say. */
            if (target >= seg_start)
                return -1;
            if (consumed < 0)
                consumed = (int)(pos + 2 - off);
            pos = seg_start = target;
            continue;
        }
        if (c & 0xc0) /* 0x40 and 0x80: extended and reserved label types */
            return -1;
        wire_len += (size_t)c + 1;
        if (wire_len > NAME_WIRE_MAX)
            return -1;
        if (c == 0)
            break;
        if (pos + 1 + c > len)
            return -2;
        if (olen)
            out[olen++] = '.';
        label_text(msg + pos + 1, c, out, &olen);
        pos += 1 + (size_t)c;
    }
    return consumed >= 0 ? consumed : (int)(pos + 1 - off);
}

/* Skips a resource record at *pos; sets *type and *rclass. n / -2 / -1 as dns_name_read. */
static int skip_rr(const uint8_t *msg, size_t len, size_t *pos, uint16_t *type, uint16_t *rclass)
{
    char name[DNS_NAME_TEXT_MAX];
    int n = dns_name_read(msg, len, *pos, name);

    if (n < 0)
        return n;
    size_t p = *pos + (size_t)n;
    if (p + 10 > len)
        return -2;
    *type = get16(msg + p);
    *rclass = get16(msg + p + 2);
    size_t rdlen = get16(msg + p + 8);
    if (p + 10 + rdlen > len)
        return -2;
    *pos = p + 10 + rdlen;
    return 0;
}

int dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q)
{
    memset(q, 0, sizeof(*q));
    if (len < DNS_HEADER_LEN)
        return -2;
    q->id = get16(msg);
    q->flags = get16(msg + 2);
    q->qdcount = get16(msg + 4);
    uint16_t others[3] = {get16(msg + 6), get16(msg + 8), get16(msg + 10)};
    if (q->qdcount != 1)
        return -1;
    size_t pos = DNS_HEADER_LEN;
    int n = dns_name_read(msg, len, pos, q->qname);
    if (n < 0)
        return n;
    if (pos + (size_t)n + 4 > len)
        return -2;
    q->qtype = get16(msg + pos + (size_t)n);
    q->qclass = get16(msg + pos + (size_t)n + 2);
    q->question = msg + pos;
    q->question_len = (size_t)n + 4;
    pos += q->question_len;
    for (int s = 0; s < 3; s++) {
        for (uint16_t i = 0; i < others[s]; i++) {
            uint16_t type, rclass;
            int rc = skip_rr(msg, len, &pos, &type, &rclass);
            if (rc < 0)
                return rc;
            if (s == 2 && type == DNS_TYPE_OPT) {
                if (q->edns) /* RFC 6891: more than one OPT is a FORMERR */
                    return -1;
                q->edns = true;
                q->edns_udp = rclass;
            }
        }
    }
    return pos == len ? (int)len : -1;
}

/* ---- writing ----------------------------------------------------------------------------- */

/*
 * Converts dotted text (with \DDD and \c escapes, optional trailing dot) to wire labels.
 * Returns the wire length (at least 1: the root byte) or -EINVAL.
 */
static int name_to_wire(const char *text, uint8_t wire[NAME_WIRE_MAX])
{
    size_t wl = 0, label_start = 0;
    const char *p = text;

    if (p[0] == '.' && p[1] == '\0')
        p++;
    while (*p) {
        label_start = wl++;
        size_t n = 0;
        while (*p && *p != '.') {
            unsigned c = (unsigned char)*p++;
            if (c == '\\' && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
                isdigit((unsigned char)p[2])) {
                c = (unsigned)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
                p += 3;
                if (c > 255)
                    return -EINVAL;
            } else if (c == '\\' && *p) {
                c = (unsigned char)*p++;
            }
            if (++n > LABEL_MAX || wl >= NAME_WIRE_MAX)
                return -EINVAL;
            wire[wl++] = (uint8_t)c;
        }
        if (n == 0) /* an empty label: ".." or a leading dot */
            return -EINVAL;
        wire[label_start] = (uint8_t)n;
        if (*p == '.')
            p++;
    }
    if (wl >= NAME_WIRE_MAX)
        return -EINVAL;
    wire[wl++] = 0;
    return (int)wl;
}

static void fold(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)tolower(src[i]);
}

static int find_name(const struct dns_writer *w, const uint8_t *key, size_t n)
{
    for (size_t i = 0; i < w->nnames; i++)
        if (w->names[i].key_len == n && memcmp(w->names[i].key, key, n) == 0)
            return w->names[i].off;
    return -1;
}

/* Remembers the suffix wire[0..n) (a name ending in the root label) written at off. */
static void remember_name(struct dns_writer *w, const uint8_t *wire, size_t n, size_t off)
{
    uint8_t key[NAME_WIRE_MAX];

    if (off > PTR_MAX_OFFSET || w->nnames == DNS_COMPRESS_MAX || n <= 1)
        return;
    fold(key, wire, n);
    if (find_name(w, key, n) >= 0)
        return;
    memcpy(w->names[w->nnames].key, key, n);
    w->names[w->nnames].key_len = (uint8_t)n;
    w->names[w->nnames].off = (uint16_t)off;
    w->nnames++;
}

/* Writes a name at w->len, compressed against earlier names when compress is set. */
static int put_name(struct dns_writer *w, const char *text, bool compress)
{
    uint8_t wire[NAME_WIRE_MAX], key[NAME_WIRE_MAX];
    int wl = name_to_wire(text, wire);

    if (wl < 0)
        return wl;
    for (size_t i = 0; i < (size_t)wl;) {
        size_t rest = (size_t)wl - i;
        fold(key, wire + i, rest);
        int at = compress && rest > 1 ? find_name(w, key, rest) : -1;
        if (at >= 0) {
            if (w->len + 2 > w->cap)
                return -ENOSPC;
            put16(w->buf + w->len, (uint16_t)(0xc000 | at));
            w->len += 2;
            return 0;
        }
        size_t step = wire[i] + 1u;
        if (w->len + step > w->cap)
            return -ENOSPC;
        remember_name(w, wire + i, rest, w->len);
        memcpy(w->buf + w->len, wire + i, step);
        w->len += step;
        i += step;
    }
    return 0;
}

/* The question's name is uncompressed in practice: remember its suffixes so that answers owned
 * by it cost two bytes. A pointer in it (legal, if odd) just leaves it out. */
static void remember_question(struct dns_writer *w, const uint8_t *name, size_t n)
{
    size_t end = 0;

    while (end < n && name[end] && name[end] < 0x40)
        end += name[end] + 1u;
    if (end >= n || name[end] != 0)
        return;
    for (size_t i = 0; i < end; i += name[i] + 1u)
        remember_name(w, name + i, end + 1 - i, DNS_HEADER_LEN + i);
}

int dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t cap, const struct dns_query *q,
                    uint16_t flags, enum dns_rcode rcode)
{
    size_t qlen = q->question ? q->question_len : 0;

    memset(w, 0, sizeof(*w));
    if (cap < DNS_HEADER_LEN + qlen)
        return -ENOSPC;
    w->buf = buf;
    w->cap = cap;
    memset(buf, 0, DNS_HEADER_LEN);
    put16(buf, q->id);
    uint16_t f = (uint16_t)(DNS_FLAG_QR | (q->flags & (0x7800 | DNS_FLAG_RD)) | flags | rcode);
    put16(buf + 2, f);
    put16(buf + 4, qlen ? 1 : 0);
    w->len = DNS_HEADER_LEN;
    if (qlen) {
        memcpy(buf + w->len, q->question, qlen);
        remember_question(w, q->question, qlen - 4);
        w->len += qlen;
    }
    return 0;
}

static int put_rdata(struct dns_writer *w, const struct dns_rr *rr)
{
    int rc = 0;

    switch (rr->type) {
    case DNS_TYPE_A:
    case DNS_TYPE_AAAA: {
        size_t n = rr->type == DNS_TYPE_A ? 4 : 16;
        if (w->len + n > w->cap)
            return -ENOSPC;
        memcpy(w->buf + w->len, rr->addr, n);
        w->len += n;
        return 0;
    }
    case DNS_TYPE_SRV:
        if (w->len + 6 > w->cap)
            return -ENOSPC;
        put16(w->buf + w->len, rr->priority);
        put16(w->buf + w->len + 2, rr->weight);
        put16(w->buf + w->len + 4, rr->port);
        w->len += 6;
        return put_name(w, rr->target, false); /* RFC 2782: the target is not compressed */
    case DNS_TYPE_CNAME:
    case DNS_TYPE_NS:
    case DNS_TYPE_PTR:
        return put_name(w, rr->target, true);
    case DNS_TYPE_SOA:
        if ((rc = put_name(w, rr->target, true)) < 0 || (rc = put_name(w, rr->rname, true)) < 0)
            return rc;
        if (w->len + 20 > w->cap)
            return -ENOSPC;
        put32(w->buf + w->len, rr->serial);
        put32(w->buf + w->len + 4, rr->refresh);
        put32(w->buf + w->len + 8, rr->retry);
        put32(w->buf + w->len + 12, rr->expire);
        put32(w->buf + w->len + 16, rr->minimum);
        w->len += 20;
        return 0;
    case DNS_TYPE_TXT: {
        size_t total = strlen(rr->target), done = 0;
        do { /* character-strings of at most 255 bytes; "" is one empty string */
            size_t n = total - done > 255 ? 255 : total - done;
            if (w->len + 1 + n > w->cap)
                return -ENOSPC;
            w->buf[w->len++] = (uint8_t)n;
            memcpy(w->buf + w->len, rr->target + done, n);
            w->len += n;
            done += n;
        } while (done < total);
        return 0;
    }
    default:
        return -EINVAL;
    }
}

int dns_writer_add(struct dns_writer *w, enum dns_section s, const struct dns_rr *rr)
{
    size_t len0 = w->len, nnames0 = w->nnames;
    int rc;

    if ((int)s < w->section || w->counts[s] == UINT16_MAX)
        return -EINVAL;
    if ((rc = put_name(w, rr->name, true)) < 0)
        goto fail;
    if (w->len + 10 > w->cap) {
        rc = -ENOSPC;
        goto fail;
    }
    put16(w->buf + w->len, rr->type);
    put16(w->buf + w->len + 2, DNS_CLASS_IN);
    put32(w->buf + w->len + 4, rr->ttl);
    size_t rdlen_at = w->len + 8;
    w->len += 10;
    if ((rc = put_rdata(w, rr)) < 0)
        goto fail;
    put16(w->buf + rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
    w->section = (int)s;
    w->counts[s]++;
    put16(w->buf + 6 + 2 * s, w->counts[s]);
    return 0;
fail:
    w->len = len0;
    w->nnames = nnames0;
    return rc;
}

int dns_writer_add_opt(struct dns_writer *w, uint16_t udp_size)
{
    if (w->len + 11 > w->cap)
        return -ENOSPC;
    uint8_t *p = w->buf + w->len;
    p[0] = 0; /* root owner */
    put16(p + 1, DNS_TYPE_OPT);
    put16(p + 3, udp_size);
    put32(p + 5, 0); /* extended rcode, version 0, no DO bit */
    put16(p + 9, 0);
    w->len += 11;
    w->section = DNS_ADDITIONAL;
    w->counts[DNS_ADDITIONAL]++;
    put16(w->buf + 10, w->counts[DNS_ADDITIONAL]);
    return 0;
}
