/*
 * DNS answers from the registry's state (Consul's agent/dns.go behaviour, re-created): which
 * name is asked for, which instances are healthy, which records answer it, and how a UDP answer
 * is trimmed. The listeners are in dns_server.c.
 */
#include "registry/dns/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/str.h"
#include "registry/settings/settings.h"
#include "registry/state/acl.h"
#include "registry/state/state.h"

/* ---- names ------------------------------------------------------------------------------- */

#define MAX_LABELS 128

/* Copies s[0..n) into out (DNS_NAME_TEXT_MAX bytes). */
static void copy_n(char *out, const char *s, size_t n)
{
    if (n >= DNS_NAME_TEXT_MAX)
        n = DNS_NAME_TEXT_MAX - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = str_hex_digit(s[2 * i]), lo = hi < 0 ? -1 : str_hex_digit(s[2 * i + 1]);
        if (lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Fills out from the labels before the type label (prefix, np labels, dotted in text). */
static void parse_prefix(struct reg_dns_lookup *out, const char *type, const char *const *labels,
                         size_t np, const char *text, size_t text_len)
{
    if (np == 0)
        return; /* "service.consul": no name, NXDOMAIN */
    if (strcasecmp(type, "service") == 0) {
        out->kind = REG_DNS_LOOKUP_SERVICE;
        if (np == 2 && labels[0][0] == '_' && labels[1][0] == '_') { /* RFC 2782 */
            copy_n(out->name, labels[0] + 1, strcspn(labels[0] + 1, "."));
            copy_n(out->tag, labels[1] + 1, strcspn(labels[1] + 1, "."));
            if (strcasecmp(out->tag, "tcp") == 0)
                out->tag[0] = '\0'; /* _web._tcp: the protocol, not a tag */
        } else {
            const char *last = labels[np - 1];
            copy_n(out->name, last, strcspn(last, "."));
            if (np > 1) /* everything before the name is the tag, dots included */
                copy_n(out->tag, text, (size_t)(last - 1 - text));
        }
    } else if (strcasecmp(type, "node") == 0 || strcasecmp(type, "query") == 0) {
        out->kind = type[0] == 'n' || type[0] == 'N' ? REG_DNS_LOOKUP_NODE : REG_DNS_LOOKUP_QUERY;
        copy_n(out->name, text, text_len);
    } else if (np == 1) { /* addr */
        size_t n = strcspn(labels[0], ".");
        out->addr_len = n == 8 ? 4 : n == 32 ? 16 : 0;
        if (out->addr_len && hex_decode(labels[0], out->addr, (size_t)out->addr_len) == 0)
            out->kind = REG_DNS_LOOKUP_ADDR;
    }
}

/*
 * Reads labels[0..n) (ending at end) as PREFIX.TYPE[.DC]: the rightmost type label decides, and
 * at most one label (the datacenter) may follow it. False when no type label is there.
 */
static bool parse_typed(struct reg_dns_lookup *out, const char *const *labels, size_t n,
                        const char *qname, const char *end)
{
    static const char *const types[] = {"service", "node", "query", "addr"};

    for (size_t i = n; i-- > 0 && n - i <= 2;) {
        const char *lend = i + 1 < n ? labels[i + 1] - 1 : end;
        size_t ll = (size_t)(lend - labels[i]);
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            if (ll != strlen(types[t]) || strncasecmp(labels[i], types[t], ll) != 0)
                continue;
            if (i + 1 < n)
                copy_n(out->dc, labels[i + 1], (size_t)(end - labels[i + 1]));
            parse_prefix(out, types[t], labels, i, qname, i ? (size_t)(labels[i] - 1 - qname) : 0);
            return true;
        }
    }
    return false;
}

/* Reads labels[0..n) (ending at end) as _NAME._TAG[.DC], which Consul takes for a service in
 * an SRV question only. */
static void parse_rfc2782(struct reg_dns_lookup *out, const char *const *labels, size_t n,
                          const char *qname, const char *end)
{
    if ((n == 2 || (n == 3 && labels[2][0] != '_')) && labels[0][0] == '_' && labels[1][0] == '_') {
        if (n == 3)
            copy_n(out->dc, labels[2], (size_t)(end - labels[2]));
        parse_prefix(out, "service", labels, 2, qname, (size_t)(labels[1] - qname));
    }
}

void reg_dns_lookup_parse(const char *qname, uint16_t qtype, const char *domain,
                          struct reg_dns_lookup *out)
{
    const char *labels[MAX_LABELS] = {NULL}; /* initialized: gcc -O2 cannot see n bound reads */
    size_t qlen = strlen(qname), dlen = strlen(domain), n = 0;

    memset(out, 0, sizeof(*out));
    if (qlen && qname[qlen - 1] == '.')
        qlen--;
    if (dlen && domain[dlen - 1] == '.')
        dlen--;
    if (qlen == dlen && strncasecmp(qname, domain, dlen) == 0) {
        out->kind = REG_DNS_LOOKUP_APEX;
        return;
    }
    if (qlen <= dlen + 1 || qname[qlen - dlen - 1] != '.' ||
        strncasecmp(qname + qlen - dlen, domain, dlen) != 0)
        return; /* REG_DNS_LOOKUP_OUTSIDE */
    out->kind = REG_DNS_LOOKUP_INVALID;
    size_t rest = qlen - dlen - 1; /* qname[0..rest): the labels under the domain */
    for (size_t i = 0; i < rest && n < MAX_LABELS; i++)
        if (i == 0 || qname[i - 1] == '.')
            labels[n++] = qname + i;
    if (n == MAX_LABELS)
        return;
    const char *end = qname + rest;
    if (parse_typed(out, labels, n, qname, end))
        return;
    /* The datacenter spelled DC.dc (docs/agent.md, DNS): read without the "dc" label, DC is
     * the label after the type. (A datacenter named "dc" was read above, as Consul reads it.) */
    if (n >= 3 && end - labels[n - 1] == 2 && strncasecmp(labels[n - 1], "dc", 2) == 0) {
        if (parse_typed(out, labels, n - 1, qname, labels[n - 1] - 1))
            return;
        if (qtype == DNS_TYPE_SRV && n == 4) {
            parse_rfc2782(out, labels, 3, qname, labels[3] - 1);
            return;
        }
    }
    if (qtype == DNS_TYPE_SRV)
        parse_rfc2782(out, labels, n, qname, end);
}

/* ---- records ----------------------------------------------------------------------------- */

/* The records of one answer, before encoding: every string is owned here. */
struct rrset {
    struct dns_rr *rr;
    enum dns_section *section;
    int *owner; /* additional records: the answer they support (-1: none) */
    size_t n, cap;
    char **strs;
    size_t nstrs, strs_cap;
    size_t nanswers;
};

static const char *rrset_str(struct rrset *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *rrset_str(struct rrset *set, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort(); /* out of memory, as x*alloc */
    va_end(ap);
    if (set->nstrs == set->strs_cap) {
        set->strs_cap = set->strs_cap ? set->strs_cap * 2 : 16;
        set->strs = xrealloc(set->strs, set->strs_cap * sizeof(*set->strs));
    }
    set->strs[set->nstrs++] = s;
    return s;
}

static struct dns_rr *rrset_add(struct rrset *set, enum dns_section s, int owner)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->rr = xrealloc(set->rr, set->cap * sizeof(*set->rr));
        set->section = xrealloc(set->section, set->cap * sizeof(*set->section));
        set->owner = xrealloc(set->owner, set->cap * sizeof(*set->owner));
    }
    memset(&set->rr[set->n], 0, sizeof(set->rr[0]));
    set->section[set->n] = s;
    set->owner[set->n] = owner;
    if (s == DNS_ANSWER)
        set->nanswers++;
    return &set->rr[set->n++];
}

static void rrset_free(struct rrset *set)
{
    for (size_t i = 0; i < set->nstrs; i++)
        free(set->strs[i]);
    free(set->strs);
    free(set->rr);
    free(set->section);
    free(set->owner);
}

/* One answer under construction. */
struct reg_dns_ctx {
    const struct reg_dns *d;
    const struct reg_state *st; /* what the answer is read from */
    const struct dns_query *q;
    const char *domain; /* the configured domain with its trailing dot */
    struct rrset set;
    enum dns_rcode rcode;
    struct reg_acl_authz authz;
};

static uint32_t ttl_secs(int64_t ns)
{
    return ns <= 0 ? 0 : (uint32_t)(ns / DURATION_SEC);
}

static bool want(const struct reg_dns_ctx *c, uint16_t type)
{
    return c->q->qtype == type || c->q->qtype == DNS_TYPE_ANY;
}

/*
 * Adds the records that give owner the address addr: A or AAAA for an IP (when the question
 * asks for that type; when all is set, regardless of it), a CNAME for a host name. Returns the
 * record type it chose, or 0 for none.
 */
static uint16_t add_addr(struct reg_dns_ctx *c, enum dns_section s, int owner_ans,
                         const char *owner, const char *addr, uint32_t ttl, bool all)
{
    struct dns_rr *rr;
    uint8_t ip[16];

    if (inet_pton(AF_INET, addr, ip) == 1) {
        if (!all && !want(c, DNS_TYPE_A))
            return 0;
        rr = rrset_add(&c->set, s, owner_ans);
        rr->type = DNS_TYPE_A;
        memcpy(rr->addr, ip, 4);
    } else if (inet_pton(AF_INET6, addr, ip) == 1) {
        if (!all && !want(c, DNS_TYPE_AAAA))
            return 0;
        rr = rrset_add(&c->set, s, owner_ans);
        rr->type = DNS_TYPE_AAAA;
        memcpy(rr->addr, ip, 16);
    } else {
        if (!addr[0])
            return 0;
        rr = rrset_add(&c->set, s, owner_ans);
        rr->type = DNS_TYPE_CNAME;
        rr->target = rrset_str(&c->set, "%s.", addr);
    }
    rr->name = owner;
    rr->ttl = ttl;
    return rr->type;
}

/* Node meta as RFC 1464 TXT records ("key=value"). */
static void add_meta_txt(struct reg_dns_ctx *c, enum dns_section s, int owner_ans,
                         const char *owner, const struct reg_node *n, uint32_t ttl)
{
    const char *k;
    json_t *v;

    json_object_foreach(n->meta, k, v)
    {
        struct dns_rr *rr = rrset_add(&c->set, s, owner_ans);
        rr->name = owner;
        rr->type = DNS_TYPE_TXT;
        rr->ttl = ttl;
        rr->target =
            rrset_str(&c->set, "%s=%s", k, json_string_value(v) ? json_string_value(v) : "");
    }
}

static void add_soa(struct reg_dns_ctx *c, enum dns_section s)
{
    struct dns_rr *rr = rrset_add(&c->set, s, -1);

    rr->name = c->domain;
    rr->type = DNS_TYPE_SOA;
    rr->ttl = 0;
    rr->target = rrset_str(&c->set, "ns.%s", c->domain);
    rr->rname = rrset_str(&c->set, "hostmaster.%s", c->domain);
    rr->serial = (uint32_t)time(NULL);
    rr->refresh = 3600;
    rr->retry = 600;
    rr->expire = 86400;
    rr->minimum = 0;
}

static bool dc_matches(const struct reg_dns_ctx *c, const struct reg_dns_lookup *l)
{
    return !l->dc[0] || strcasecmp(l->dc, c->d->cfg->datacenter) == 0;
}

/* The domain apex: SOA, and NS records naming the servers (nodes running the consul service). */
static void answer_apex(struct reg_dns_ctx *c)
{
    if (want(c, DNS_TYPE_SOA))
        add_soa(c, DNS_ANSWER);
    if (want(c, DNS_TYPE_NS)) {
        smap_foreach(&c->st->nodes, e)
        {
            const struct reg_node *n = e->val;
            if (!reg_service_get(n, "consul"))
                continue;
            const char *fqdn =
                rrset_str(&c->set, "%s.node.%s.%s", n->name, n->datacenter, c->domain);
            struct dns_rr *rr = rrset_add(&c->set, DNS_ANSWER, -1);
            rr->name = c->q->qname;
            rr->type = DNS_TYPE_NS;
            rr->target = fqdn;
            add_addr(c, DNS_ADDITIONAL, (int)c->set.nanswers - 1, fqdn, n->address, 0, true);
        }
    }
    if (!c->set.nanswers)
        add_soa(c, DNS_AUTHORITY);
}

static void answer_node(struct reg_dns_ctx *c, const struct reg_dns_lookup *l)
{
    const struct reg_node *n = reg_node_get(c->st, l->name);
    uint32_t ttl = ttl_secs(c->d->cfg->dns_node_ttl_ns);

    if (!n || !dc_matches(c, l) ||
        !reg_acl_allowed(&c->authz, REG_ACL_RES_NODE, n->name, REG_ACL_ACCESS_READ)) {
        c->rcode = DNS_RCODE_NXDOMAIN;
        add_soa(c, DNS_AUTHORITY);
        return;
    }
    add_addr(c, DNS_ANSWER, -1, c->q->qname, n->address, ttl, false);
    if (want(c, DNS_TYPE_TXT))
        add_meta_txt(c, DNS_ANSWER, -1, c->q->qname, n, ttl);
    else if (c->set.nanswers && c->d->cfg->dns_node_meta_txt)
        add_meta_txt(c, DNS_ADDITIONAL, -1, c->q->qname, n, ttl);
    if (!c->set.nanswers)
        add_soa(c, DNS_AUTHORITY);
}

static void answer_addr(struct reg_dns_ctx *c, const struct reg_dns_lookup *l)
{
    char text[INET6_ADDRSTRLEN];

    inet_ntop(l->addr_len == 4 ? AF_INET : AF_INET6, l->addr, text, sizeof(text));
    add_addr(c, DNS_ANSWER, -1, c->q->qname, text, 0, false);
    if (!c->set.nanswers)
        add_soa(c, DNS_AUTHORITY);
}

/* ---- services ---------------------------------------------------------------------------- */

/* The worst status among an instance's checks: its node's and its own. */
static enum reg_health instance_health(const struct reg_service *s)
{
    enum reg_health worst = REG_PASSING;

    smap_foreach(&s->node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if ((!chk->service_id[0] || strcmp(chk->service_id, s->id) == 0) && chk->status > worst)
            worst = chk->status;
    }
    return worst;
}

struct instances {
    const struct reg_service **v;
    size_t n, cap;
};

/* Whether an instance answers: the prepared query's rules when there is one, else the lookup's
 * tag and the agent's health rule. */
static bool instance_wanted(const struct reg_dns_ctx *c, const struct reg_dns_lookup *l,
                            const struct reg_query *query, const struct reg_service *s)
{
    enum reg_health worst_ok = c->d->cfg->dns_only_passing ? REG_PASSING : REG_WARNING;
    const char *tag = l->tag;

    if (query)
        return reg_query_selects(query, s);
    return (!tag[0] || reg_service_has_tags(s, &tag, 1)) && instance_health(s) <= worst_ok;
}

/* The healthy instances of the service the lookup (or the prepared query) names, shuffled
 * (Consul's DNS shuffles every answer so that clients spread over the instances). */
static void find_instances(struct reg_dns_ctx *c, const struct reg_dns_lookup *l,
                           const struct reg_query *query, struct instances *out)
{
    const char *name =
        query
            ? json_string_value(json_object_get(json_object_get(query->def, "Service"), "Service"))
            : l->name;

    smap_foreach(&c->st->nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!reg_acl_allowed(&c->authz, REG_ACL_RES_NODE, n->name, REG_ACL_ACCESS_READ))
            continue;
        smap_foreach(&n->services, se)
        {
            const struct reg_service *s = se->val;
            if (strcasecmp(s->name, name) != 0 || !instance_wanted(c, l, query, s) ||
                !reg_acl_allowed(&c->authz, REG_ACL_RES_SERVICE, s->name, REG_ACL_ACCESS_READ))
                continue;
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 16;
                out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
            }
            out->v[out->n++] = s;
        }
    }
    for (size_t i = out->n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rand() % i;
        const struct reg_service *t = out->v[i - 1];
        out->v[i - 1] = out->v[j];
        out->v[j] = t;
    }
}

static const char *instance_addr(const struct reg_service *s)
{
    return s->address && s->address[0] ? s->address : s->node->address;
}

/* A, AAAA or CNAME answers: one per distinct address, at most dns_config.a_record_limit. */
static void service_addr_answers(struct reg_dns_ctx *c, const struct instances *in, uint32_t ttl)
{
    int limit = c->d->cfg->dns_a_record_limit;

    for (size_t i = 0; i < in->n && (limit <= 0 || (int)c->set.nanswers < limit); i++) {
        const char *addr = instance_addr(in->v[i]);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(instance_addr(in->v[j]), addr) == 0;
        if (!seen)
            add_addr(c, DNS_ANSWER, -1, c->q->qname, addr, ttl, false);
    }
}

/* SRV answers: port and a target that resolves through the additional section. */
static void service_srv_answers(struct reg_dns_ctx *c, const struct instances *in, uint32_t ttl)
{
    for (size_t i = 0; i < in->n; i++) {
        const struct reg_service *s = in->v[i];
        const char *addr = instance_addr(s);
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = in->v[j]->node == s->node && in->v[j]->port == s->port &&
                  strcmp(instance_addr(in->v[j]), addr) == 0;
        if (dup)
            continue;
        const char *target;
        uint8_t ip[16];
        int af = inet_pton(AF_INET, addr, ip) == 1    ? 4
                 : inet_pton(AF_INET6, addr, ip) == 1 ? 16
                                                      : 0;
        if (strcmp(addr, s->node->address) == 0) {
            target =
                rrset_str(&c->set, "%s.node.%s.%s", s->node->name, s->node->datacenter, c->domain);
        } else if (af) { /* an IP cannot be an SRV target: Consul spells it as HEX.addr */
            char hex[33] = "";
            for (int k = 0; k < af; k++)
                snprintf(hex + 2 * k, 3, "%02x", ip[k]);
            target = rrset_str(&c->set, "%s.addr.%s.%s", hex, s->node->datacenter, c->domain);
        } else {
            target = rrset_str(&c->set, "%s.", addr);
        }
        struct dns_rr *rr = rrset_add(&c->set, DNS_ANSWER, -1);
        rr->name = c->q->qname;
        rr->type = DNS_TYPE_SRV;
        rr->ttl = ttl;
        rr->priority = 1;
        rr->weight =
            (uint16_t)(instance_health(s) == REG_WARNING ? s->weight_warning : s->weight_passing);
        rr->port = (uint16_t)s->port;
        rr->target = target;
        int ans = (int)c->set.nanswers - 1;
        if (af || strcmp(addr, s->node->address) == 0)
            add_addr(c, DNS_ADDITIONAL, ans, target, addr, ttl, true);
        if (strcmp(addr, s->node->address) == 0 && c->d->cfg->dns_node_meta_txt)
            add_meta_txt(c, DNS_ADDITIONAL, ans, target, s->node, ttl);
    }
}

/* NAME.service lookups, and NAME.query ones (query set: its DNS.TTL, when given, wins). */
static void answer_service(struct reg_dns_ctx *c, const struct reg_dns_lookup *l,
                           const struct reg_query *query)
{
    struct instances in = {NULL, 0, 0};
    uint32_t ttl = ttl_secs(c->d->cfg->dns_service_ttl_ns);
    const char *qttl =
        query ? json_string_value(json_object_get(json_object_get(query->def, "DNS"), "TTL"))
              : NULL;
    int64_t ns;

    if (qttl && qttl[0] && duration_parse(str_from(qttl), &ns) == 0)
        ttl = ttl_secs(ns);
    if (dc_matches(c, l))
        find_instances(c, l, query, &in);
    if (in.n == 0) {
        c->rcode = DNS_RCODE_NXDOMAIN;
    } else if (c->q->qtype == DNS_TYPE_SRV) {
        service_srv_answers(c, &in, ttl);
    } else if (want(c, DNS_TYPE_A) || want(c, DNS_TYPE_AAAA) || c->q->qtype == DNS_TYPE_CNAME) {
        service_addr_answers(c, &in, ttl);
        if (c->q->qtype == DNS_TYPE_ANY)
            service_srv_answers(c, &in, ttl);
    }
    if (!c->set.nanswers)
        add_soa(c, DNS_AUTHORITY);
    free(in.v);
}

/* ---- encoding and trimming --------------------------------------------------------------- */

/* Encodes the first nans answers (with the additional records that support them). Returns the
 * length, or 0 when it does not fit in cap. */
static size_t encode(const struct reg_dns_ctx *c, size_t nans, uint16_t flags, uint8_t *out,
                     size_t cap)
{
    struct dns_writer *w = xmalloc(sizeof(*w));
    size_t len = 0, ans = 0;
    int rc = dns_writer_init(w, out, cap, c->q, flags, c->rcode);

    for (size_t i = 0; rc == 0 && i < c->set.n; i++) {
        enum dns_section s = c->set.section[i];
        if ((s == DNS_ANSWER && ans++ >= nans) ||
            (s == DNS_ADDITIONAL && c->set.owner[i] >= (int)nans))
            continue;
        rc = dns_writer_add(w, s, &c->set.rr[i]);
        if (rc == -EINVAL) /* a name too long to write (a huge node name): leave it out */
            rc = 0;
    }
    if (rc == 0 && c->q->edns)
        rc = dns_writer_add_opt(w, c->q->edns_udp < DNS_UDP_MIN ? DNS_UDP_MIN : c->q->edns_udp);
    if (rc == 0)
        len = w->len;
    free(w);
    return len;
}

/* Additional records go after every answer and authority record: sort them stably so. */
static void order_sections(struct rrset *set)
{
    for (size_t i = 1; i < set->n; i++) {
        for (size_t j = i; j > 0 && set->section[j - 1] > set->section[j]; j--) {
            struct dns_rr rr = set->rr[j];
            enum dns_section s = set->section[j];
            int o = set->owner[j];
            set->rr[j] = set->rr[j - 1];
            set->section[j] = set->section[j - 1];
            set->owner[j] = set->owner[j - 1];
            set->rr[j - 1] = rr;
            set->section[j - 1] = s;
            set->owner[j - 1] = o;
        }
    }
}

/*
 * Consul's trimming: over UDP, without EDNS0 at most dns_config.udp_answer_limit answers, then
 * answers dropped from the end until the message fits 512 bytes (or the EDNS0 size); over TCP,
 * answers dropped until it fits one TCP message (65535 bytes). Consul sets TC on a trimmed UDP
 * answer only with dns_config.enable_truncate: by default a UDP client gets fewer records and no
 * hint that TCP would give more.
 */
static size_t encode_trimmed(const struct reg_dns_ctx *c, bool tcp, uint8_t *out, size_t cap)
{
    size_t max = tcp ? cap : DNS_UDP_MIN, nans = c->set.nanswers, len = 0;

    if (!tcp && c->q->edns && c->q->edns_udp > max)
        max = c->q->edns_udp;
    if (max > cap)
        max = cap;
    if (!tcp && !c->q->edns && c->d->cfg->dns_udp_answer_limit > 0 &&
        nans > (size_t)c->d->cfg->dns_udp_answer_limit)
        nans = (size_t)c->d->cfg->dns_udp_answer_limit;
    len = encode(c, nans, DNS_FLAG_AA, out, max);
    if (!len && nans > 0) { /* the most answers that fit: lo fits (or is 0), hi does not */
        size_t lo = 0, hi = nans;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (encode(c, mid, DNS_FLAG_AA, out, max))
                lo = mid;
            else
                hi = mid;
        }
        nans = lo;
        len = encode(c, nans, DNS_FLAG_AA, out, max);
    }
    if (len && !tcp && nans < c->set.nanswers && c->d->cfg->dns_enable_truncate)
        len = encode(c, nans, DNS_FLAG_AA | DNS_FLAG_TC, out, max);
    return len;
}

/* ---- entry ------------------------------------------------------------------------------- */

size_t reg_dns_answer_rcode(const struct dns_query *q, enum dns_rcode rcode, uint8_t *out,
                            size_t cap)
{
    struct dns_writer *w = xmalloc(sizeof(*w));
    size_t len = dns_writer_init(w, out, cap, q, 0, rcode) == 0 ? w->len : 0;

    free(w);
    return len;
}

void reg_dns_domain(const struct reg_dns *d, char out[DNS_NAME_TEXT_MAX])
{
    const char *domain = d->cfg->domain;
    size_t dl = strlen(domain);
    snprintf(out, DNS_NAME_TEXT_MAX, "%s%s", domain, dl && domain[dl - 1] == '.' ? "" : ".");
}

size_t reg_dns_answer_from(const struct reg_dns *d, const struct reg_state *st, bool check_acl,
                           const struct dns_query *q, const struct reg_dns_lookup *l, bool tcp,
                           uint8_t *out, size_t cap)
{
    char domain[DNS_NAME_TEXT_MAX];
    struct reg_dns_ctx c = {.d = d, .st = st, .q = q, .domain = domain, .rcode = DNS_RCODE_NOERROR};

    reg_dns_domain(d, domain);
    if (check_acl) {
        struct reg_acl_settings set;
        reg_settings_acl(d->cfg, &set);
        reg_acl_resolve(st, &set, d->cfg->acl_default_token, &c.authz);
    }
    switch (l->kind) {
    case REG_DNS_LOOKUP_APEX:
        answer_apex(&c);
        break;
    case REG_DNS_LOOKUP_SERVICE:
        answer_service(&c, l, NULL);
        break;
    case REG_DNS_LOOKUP_QUERY: {
        const struct reg_query *query = reg_query_find(st, l->name);
        if (query) {
            answer_service(&c, l, query);
            break;
        }
        c.rcode = DNS_RCODE_NXDOMAIN;
        add_soa(&c, DNS_AUTHORITY);
        break;
    }
    case REG_DNS_LOOKUP_NODE:
        answer_node(&c, l);
        break;
    case REG_DNS_LOOKUP_ADDR:
        answer_addr(&c, l);
        break;
    default: /* invalid names: Consul's NXDOMAIN */
        c.rcode = DNS_RCODE_NXDOMAIN;
        add_soa(&c, DNS_AUTHORITY);
        break;
    }
    order_sections(&c.set);
    size_t n = encode_trimmed(&c, tcp, out, cap);
    reg_acl_authz_free(&c.authz);
    rrset_free(&c.set);
    return n;
}

/* Parses msg; returns 1 with q and l filled when it asks for a lookup, else 0 with *len the
 * immediate answer's length (0: no answer due). */
static int classify(const struct reg_dns *d, const uint8_t *msg, size_t len, struct dns_query *q,
                    struct reg_dns_lookup *l, uint8_t *out, size_t cap, size_t *n)
{
    char domain[DNS_NAME_TEXT_MAX];
    int rc = dns_query_parse(msg, len, q);

    *n = 0;
    if (len < DNS_HEADER_LEN || (q->flags & DNS_FLAG_QR))
        return 0; /* nothing to answer, or a response: answering could loop two servers */
    if (rc < 0) {
        if (rc == -2)
            q->question = NULL;
        *n = reg_dns_answer_rcode(q, DNS_RCODE_FORMERR, out, cap);
        return 0;
    }
    if (DNS_OPCODE(q->flags) != 0) {
        *n = reg_dns_answer_rcode(q, DNS_RCODE_NOTIMP, out, cap);
        return 0;
    }
    reg_dns_domain(d, domain);
    reg_dns_lookup_parse(q->qname, q->qtype, domain, l);
    if (l->kind == REG_DNS_LOOKUP_OUTSIDE) { /* no recursors: what Consul answers without them */
        *n = reg_dns_answer_rcode(q, DNS_RCODE_REFUSED, out, cap);
        return 0;
    }
    return 1;
}

void reg_dns_query(struct reg_dns *d, const uint8_t *msg, size_t len, bool tcp,
                   reg_dns_done_cb done, void *data)
{
    uint8_t *out = xmalloc(DNS_MSG_MAX);
    struct dns_query q;
    struct reg_dns_lookup l;
    size_t n;

    if (classify(d, msg, len, &q, &l, out, DNS_MSG_MAX, &n)) {
        /* A client agent holds only its own node: what needs the catalog comes from a server. */
        bool remote =
            !d->cfg->server && (l.kind == REG_DNS_LOOKUP_SERVICE || l.kind == REG_DNS_LOOKUP_NODE ||
                                l.kind == REG_DNS_LOOKUP_APEX);
        if (remote) {
            free(out);
            reg_dns_remote_lookup(d, msg, len, tcp, done, data);
            return;
        }
        n = reg_dns_answer_from(d, d->state, true, &q, &l, tcp, out, DNS_MSG_MAX);
    }
    done(out, n, data);
    free(out);
}
