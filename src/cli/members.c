/*
 * `mesh members`: the gossip members an agent knows, laid out as `consul members` does (same
 * columns, same words for status and role), so scripts parsing that table keep working.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/re.h"

#define MEMBERS_USAGE                                                                              \
    "mesh members [options]\n\n"                                                                   \
    "  Outputs the members of the cluster as the agent sees them (GET /v1/agent/members).\n"       \
    "  Exits 2 when no member matches the filters."

const char *cli_member_status(long long status)
{
    static const char *const words[] = {"none", "alive", "leaving", "left", "failed"};

    if (status < 0 || status >= (long long)ARRAY_LEN(words))
        return "unknown";
    return words[status];
}

static const char *member_str(const json_t *m, const char *key)
{
    const char *s = json_string_value(json_object_get(m, key));
    return s ? s : "";
}

static const char *member_tag(const json_t *m, const char *name)
{
    const char *s = json_string_value(json_object_get(json_object_get(m, "Tags"), name));
    return s ? s : "";
}

static int member_cmp(const void *a, const void *b)
{
    const json_t *ma = *(json_t *const *)a;
    const json_t *mb = *(json_t *const *)b;
    int c = strcmp(member_str(ma, "Name"), member_str(mb, "Name"));

    return c ? c : strcmp(member_tag(ma, "segment"), member_tag(mb, "segment"));
}

/* Go's net.TCPAddr.String(): "ip:port", "[v6]:port". */
static void member_addr(const json_t *m, char *out, size_t n)
{
    const char *ip = member_str(m, "Addr");
    long long port = json_integer_value(json_object_get(m, "Port"));

    if (strchr(ip, ':'))
        snprintf(out, n, "[%s]:%lld", ip, port);
    else
        snprintf(out, n, "%s:%lld", ip, port);
}

static void member_line_standard(struct cli_lines *l, const json_t *m, const char *status)
{
    char addr[300];
    const char *role = member_tag(m, "role");
    const char *build = member_tag(m, "build");
    const char *partition = *member_tag(m, "ap") ? member_tag(m, "ap") : "default";
    const char *segment = member_tag(m, "segment");
    int build_len = (int)strcspn(build, ":");

    member_addr(m, addr, sizeof(addr));
    if (!*build) {
        build = "< 0.3";
        build_len = 5;
    }
    if (strcmp(role, "node") == 0 || strcmp(role, "consul") == 0) {
        bool server = role[0] == 'c';
        if (!*segment)
            segment = server ? "<all>" : "<default>";
        cli_lines_add(l, "%s\x1f%s\x1f%s\x1f%s\x1f%.*s\x1f%s\x1f%s\x1f%s\x1f%s",
                      member_str(m, "Name"), addr, status, server ? "server" : "client", build_len,
                      build, member_tag(m, "vsn"), member_tag(m, "dc"), partition, segment);
    } else {
        cli_lines_add(l, "%s\x1f%s\x1f%s\x1funknown\x1f\x1f\x1f\x1f\x1f", member_str(m, "Name"),
                      addr, status);
    }
}

static int cstr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Detailed: every tag as k=v, sorted by key, joined by ','. */
static void member_line_detailed(struct cli_lines *l, const json_t *m, const char *status)
{
    char addr[300];
    json_t *tags = json_object_get(m, "Tags");
    size_t n = json_is_object(tags) ? json_object_size(tags) : 0;
    const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
    struct buf b = BUF_INIT;
    const char *k;
    json_t *v;
    size_t i = 0;

    member_addr(m, addr, sizeof(addr));
    if (n) {
        json_object_foreach(tags, k, v) keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cstr_cmp);
    for (i = 0; i < n; i++) {
        const char *val = json_string_value(json_object_get(tags, keys[i]));
        buf_printf(&b, "%s%s=%s", i ? "," : "", keys[i], val ? val : "");
    }
    cli_lines_add(l, "%s\x1f%s\x1f%s\x1f%s", member_str(m, "Name"), addr, status,
                  b.data ? b.data : "");
    buf_free(&b);
    free(keys);
}

size_t cli_members_render(json_t *members, bool detailed, const regex_t *status_re, struct buf *out)
{
    size_t n = json_is_array(members) ? json_array_size(members) : 0;
    json_t **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    struct cli_lines l = {0};
    size_t shown = 0;

    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(members, i);
    qsort(sorted, n, sizeof(*sorted), member_cmp);
    cli_lines_add(&l, detailed ? "Node\x1f"
                                 "Address\x1fStatus\x1fTags"
                               : "Node\x1f"
                                 "Address\x1fStatus\x1fType\x1f"
                                 "Build\x1fProtocol\x1f"
                                 "DC\x1fPartition\x1fSegment");
    for (size_t i = 0; i < n; i++) {
        const char *status =
            cli_member_status(json_integer_value(json_object_get(sorted[i], "Status")));
        if (status_re && regexec(status_re, status, 0, NULL, 0) != 0)
            continue;
        if (detailed)
            member_line_detailed(&l, sorted[i], status);
        else
            member_line_standard(&l, sorted[i], status);
        shown++;
    }
    if (shown)
        cli_columnize(out, &l, '\x1f', "  ");
    cli_lines_free(&l);
    free(sorted);
    return shown;
}

static int members_run(const struct cli_http_opts *o, bool detailed, bool wan, const char *segment,
                       const regex_t *re)
{
    struct buf target = BUF_INIT;
    struct buf out = BUF_INIT;
    int status = 1;

    buf_append_cstr(&target, "/v1/agent/members");
    cli_query_add(&target, "segment", segment && *segment ? segment : "_all");
    if (wan)
        cli_query_add(&target, "wan", "1");
    json_t *arr = cli_call_json(o, "GET", target.data, 0, "Error retrieving members");
    if (arr) {
        /* consul exits 2 when the filters leave nothing. */
        status = cli_members_render(arr, detailed, re, &out) ? 0 : 2;
        fwrite(out.data ? out.data : "", 1, out.len, stdout);
    }
    json_decref(arr);
    buf_free(&out);
    buf_free(&target);
    return status;
}

int cli_members(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    bool detailed = false, wan = false;
    char *status_filter = xstrdup(".*");
    char *segment = NULL;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"detailed", FLAG_BOOL, &detailed, "Provides detailed information about nodes.", false},
        {"status", FLAG_STRING, &status_filter,
         "If provided, output is filtered to only nodes matching the regular\n"
         "expression for status.",
         false},
        {"wan", FLAG_BOOL, &wan,
         "If the agent is in server mode, this can be used to return the other\n"
         "peers in the WAN pool.",
         false},
        {"segment", FLAG_STRING, &segment,
         "(Enterprise-only) If provided, output is filtered to only nodes in the\n"
         "given segment.",
         false},
    };
    regex_t re;
    int first, status = 1;

    if (!cli_parse_command(flags, ARRAY_LEN(flags), MEMBERS_USAGE, argc - 1, argv + 1, 0, &first,
                           &status))
        goto out;
    status = 1;
    struct err e;
    if (re_compile(&re, status_filter, REG_NOSUB, &e) < 0) {
        fprintf(stderr, "Failed to compile status regexp: %s\n", e.msg);
        goto out;
    }
    status = members_run(&o, detailed, wan, segment, &re);
    regfree(&re);
out:
    free(status_filter);
    free(segment);
    cli_http_opts_free(&o);
    return status;
}
