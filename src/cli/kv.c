/*
 * `mesh kv get|put|delete`: the consul CLI's KV verbs over /v1/kv/:key, with its messages
 * ("Success! Data written to: k", "Error! No key exists at: k") and its argument rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/url.h"

#define KV_USAGE                                                                                   \
    "mesh kv <subcommand> [options] [args]\n\n"                                                    \
    "  Interacts with the key/value store.\n\n"                                                    \
    "Subcommands:\n"                                                                               \
    "    delete    Removes data from the KV store\n"                                               \
    "    get       Retrieves or lists data from the KV store\n"                                    \
    "    put       Sets or updates data in the KV store\n"

#define KV_GET_USAGE                                                                               \
    "mesh kv get [options] [KEY_OR_PREFIX]\n\n"                                                    \
    "  Retrieves the value from the key/value store at the given key name. If no key\n"            \
    "  exists with that name, an error is returned. With -recurse, every key under the\n"          \
    "  prefix is printed as key:value; with -keys, only the key names are."

#define KV_PUT_USAGE                                                                               \
    "mesh kv put [options] KEY [DATA]\n\n"                                                         \
    "  Writes the data to the given path in the key/value store. DATA \"-\" reads stdin,\n"        \
    "  \"@path\" reads a file, absent writes an empty value."

#define KV_DELETE_USAGE                                                                            \
    "mesh kv delete [options] KEY_OR_PREFIX\n\n"                                                   \
    "  Removes the value at the given key (or, with -recurse, every key under the prefix)."

#define KV_MAX_INPUT (512u * 1024u + 1u) /* one past kv_max_value_size: the agent answers 413 */

/* "/v1/kv/<key percent-encoded, '/' kept>". */
static void kv_target(struct buf *t, const char *key)
{
    buf_append_cstr(t, "/v1/kv/");
    url_encode(t, str_from(key), true);
}

/* Consul's CLI strips one leading '/' ("a nice thing to do": keys cannot start with it). */
static const char *kv_key(const char *arg)
{
    return arg[0] == '/' ? arg + 1 : arg;
}

void cli_kv_append_value(struct buf *out, const json_t *entry, bool base64_value)
{
    const char *b64 = json_string_value(json_object_get(entry, "Value"));
    unsigned char *raw;
    size_t len = 0;

    if (!b64)
        return;
    if (base64_value) {
        buf_append_cstr(out, b64);
        return;
    }
    raw = base64_decode(b64, &len);
    if (raw)
        buf_append(out, raw, len);
    free(raw);
}

static unsigned long long entry_u64(const json_t *entry, const char *key)
{
    return (unsigned long long)json_integer_value(json_object_get(entry, key));
}

void cli_kv_render_detailed(struct buf *out, const json_t *entry, bool base64_value)
{
    struct cli_lines l = {0};
    struct buf v = BUF_INIT;
    const char *session = json_string_value(json_object_get(entry, "Session"));
    const char *key = json_string_value(json_object_get(entry, "Key"));
    const char *ns = json_string_value(json_object_get(entry, "Namespace"));
    const char *part = json_string_value(json_object_get(entry, "Partition"));

    cli_lines_add(&l, "CreateIndex\t%llu", entry_u64(entry, "CreateIndex"));
    cli_lines_add(&l, "Flags\t%llu", entry_u64(entry, "Flags"));
    cli_lines_add(&l, "Key\t%s", key ? key : "");
    cli_lines_add(&l, "LockIndex\t%llu", entry_u64(entry, "LockIndex"));
    cli_lines_add(&l, "ModifyIndex\t%llu", entry_u64(entry, "ModifyIndex"));
    if (ns && *ns)
        cli_lines_add(&l, "Namespace\t%s", ns);
    if (part && *part)
        cli_lines_add(&l, "Partition\t%s", part);
    cli_lines_add(&l, "Session\t%s", session && *session ? session : "-");
    cli_kv_append_value(&v, entry, base64_value);
    /* The value may hold NULs: write it after the table rather than through printf. */
    cli_lines_add(&l, "Value\t");
    cli_tabwrite(out, &l, false);
    out->len--; /* drop the "\n" after "Value<pad>" and put the value there */
    buf_append(out, v.data ? v.data : "", v.len);
    buf_append_cstr(out, "\n");
    buf_free(&v);
    cli_lines_free(&l);
}

static void write_out(const struct buf *b)
{
    fwrite(b->data ? b->data : "", 1, b->len, stdout);
}

struct kv_get_opts {
    bool recurse, keys, detailed, b64;
    char *separator;
};

static int kv_get_keys(struct cli_http *h, const char *key, const char *sep, struct err *e)
{
    struct buf t = BUF_INIT;
    struct cli_response res = {0};
    json_t *arr = NULL;
    int rc;

    kv_target(&t, key);
    cli_query_add(&t, "keys", NULL);
    if (sep && *sep)
        cli_query_add(&t, "separator", sep);
    rc = cli_http_call(h, "GET", t.data, NULL, 0, CLI_READ | CLI_ALLOW_404, &res, e);
    if (rc == 0 && res.status == 200 && !(arr = cli_json(&res, e)))
        rc = -EPROTO;
    for (size_t i = 0; arr && i < json_array_size(arr); i++) {
        const char *k = json_string_value(json_array_get(arr, i));
        printf("%s\n", k ? k : "");
    }
    json_decref(arr);
    cli_response_free(&res);
    buf_free(&t);
    return rc;
}

/* One entry (exact key) or every entry under a prefix. *arr is NULL after a 404. */
static int kv_fetch(struct cli_http *h, const char *key, bool recurse, json_t **arr, struct err *e)
{
    struct buf t = BUF_INIT;
    struct cli_response res = {0};
    int rc;

    *arr = NULL;
    kv_target(&t, key);
    if (recurse)
        cli_query_add(&t, "recurse", NULL);
    rc = cli_http_call(h, "GET", t.data, NULL, 0, CLI_READ | CLI_ALLOW_404, &res, e);
    if (rc == 0 && res.status == 200 && !(*arr = cli_json(&res, e)))
        rc = -EPROTO;
    cli_response_free(&res);
    buf_free(&t);
    return rc;
}

static void kv_print_list(const json_t *arr, const struct kv_get_opts *g)
{
    struct buf out = BUF_INIT;
    size_t n = json_array_size(arr);

    for (size_t i = 0; i < n; i++) {
        const json_t *entry = json_array_get(arr, i);
        if (g->detailed) {
            cli_kv_render_detailed(&out, entry, g->b64);
            if (i + 1 < n)
                buf_append_cstr(&out, "\n");
        } else {
            const char *k = json_string_value(json_object_get(entry, "Key"));
            buf_printf(&out, "%s:", k ? k : "");
            cli_kv_append_value(&out, entry, g->b64);
            buf_append_cstr(&out, "\n");
        }
    }
    write_out(&out);
    buf_free(&out);
}

static int kv_get_run(const struct cli_http_opts *o, const struct kv_get_opts *g, const char *key)
{
    struct cli_http h;
    struct err e;
    json_t *arr = NULL;
    int status = 1;

    if (cli_connect(&h, o) < 0)
        return 1;
    if (g->keys) {
        if (kv_get_keys(&h, key, g->separator, &e) < 0)
            goto fail;
    } else if (kv_fetch(&h, key, g->recurse, &arr, &e) < 0) {
        goto fail;
    } else if (g->recurse) {
        if (arr)
            kv_print_list(arr, g);
    } else if (!arr || !json_array_size(arr)) {
        fprintf(stderr, "Error! No key exists at: %s\n", key);
        goto out;
    } else {
        struct buf out = BUF_INIT;
        if (g->detailed)
            cli_kv_render_detailed(&out, json_array_get(arr, 0), g->b64);
        else {
            cli_kv_append_value(&out, json_array_get(arr, 0), g->b64);
            buf_append_cstr(&out, "\n");
        }
        write_out(&out);
        buf_free(&out);
    }
    status = 0;
    goto out;
fail:
    fprintf(stderr, "Error querying Consul agent: %s\n", e.msg);
out:
    json_decref(arr);
    cli_http_close(&h);
    return status;
}

/*
 * Parses a command's flags and its one optional KEY argument ("" when none). Returns false when
 * the command should stop, with *status its exit status (the reason printed).
 */
static bool kv_parse_args(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                          const char **key, int *status)
{
    int first;

    if (!cli_parse_flags(flags, n, usage, argc - 1, argv + 1, &first, status))
        return false;
    *status = 1;
    int nargs = argc - 1 - first;
    if (nargs > 1) {
        fprintf(stderr, "Too many arguments (expected 1, got %d)\n", nargs);
        return false;
    }
    *key = nargs == 1 ? kv_key(argv[1 + first]) : "";
    return true;
}

static int kv_get(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct kv_get_opts g = {.separator = xstrdup("/")};
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        CLI_STALE_FLAG(&o),
        {"base64", FLAG_BOOL, &g.b64, "Base64 encode the value. The default value is false.",
         false},
        {"detailed", FLAG_BOOL, &g.detailed,
         "Provide additional metadata about the key in addition to the value such\n"
         "as the ModifyIndex and any flags that may have been set on the key.\n"
         "The default value is false.",
         false},
        {"keys", FLAG_BOOL, &g.keys,
         "List keys which start with the given prefix, but not their values.\n"
         "This is especially useful if you only need the key names themselves.\n"
         "This option is commonly combined with the -separator option.\n"
         "The default value is false.",
         false},
        {"recurse", FLAG_BOOL, &g.recurse,
         "Recursively look at all keys prefixed with the given path. The default\n"
         "value is false.",
         false},
        {"separator", FLAG_STRING, &g.separator,
         "String to use as a separator between keys. The default value is \"/\",\n"
         "but this option is only taken into account when paired with the -keys\n"
         "flag.",
         false},
    };
    int status = 1;
    const char *key;

    if (!kv_parse_args(flags, ARRAY_LEN(flags), KV_GET_USAGE, argc, argv, &key, &status))
        goto out;
    if (!*key && !(g.recurse || g.keys)) {
        fprintf(stderr, "Error! Missing KEY argument\n");
        goto out;
    }
    status = kv_get_run(&o, &g, key);
out:
    free(g.separator);
    cli_http_opts_free(&o);
    return status;
}

/* Reads all of f (at most KV_MAX_INPUT bytes: the agent refuses more anyway). */
static int read_all(FILE *f, struct buf *out)
{
    char chunk[8192];
    size_t n;

    while (out->len < KV_MAX_INPUT && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(out, chunk, n);
    return ferror(f) ? -EIO : 0;
}

/* consul's dataFromArgs: DATA as given, "-" = stdin, "@path" = file, absent = empty. */
static int kv_put_data(const char *arg, struct buf *data, struct err *e)
{
    if (!arg || !*arg)
        return 0;
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        if (!f)
            return err_set(e, "Failed to read file: open %s: %s", arg + 1, strerror(errno));
        int rc = read_all(f, data);
        fclose(f);
        if (rc < 0)
            return err_set(e, "Failed to read file: read %s: %s", arg + 1, strerror(EIO));
        return 0;
    }
    if (strcmp(arg, "-") == 0) {
        if (read_all(stdin, data) < 0)
            return err_set(e, "Failed to read stdin: %s", strerror(EIO));
        return 0;
    }
    buf_append_cstr(data, arg);
    return 0;
}

/* Parses a uint64 flag value held as a string (flags.h has no uint64 type). */
static bool parse_u64_flag(const char *name, const char *v, unsigned long long *out)
{
    *out = 0;
    if (!v)
        return true;
    if (str_to_u64(str_from(v), out))
        return true;
    fprintf(stderr, "invalid value \"%s\" for flag -%s: parse error\n", v, name);
    return false;
}

struct kv_put_opts {
    bool cas, b64, acquire, release;
    char *flags_s, *index_s, *session;
    unsigned long long flags, index;
};

/* Sends the PUT; returns the exit status and prints consul's messages. */
static int kv_put_send(struct cli_http *h, const struct kv_put_opts *p, const char *key,
                       const struct buf *data)
{
    struct buf t = BUF_INIT;
    struct cli_response res = {0};
    struct err e;
    char num[32];
    int status = 1;

    kv_target(&t, key);
    if (p->flags) {
        snprintf(num, sizeof(num), "%llu", p->flags);
        cli_query_add(&t, "flags", num);
    }
    if (p->cas) {
        snprintf(num, sizeof(num), "%llu", p->index);
        cli_query_add(&t, "cas", num);
    } else if (p->acquire || p->release) {
        cli_query_add(&t, p->acquire ? "acquire" : "release", p->session);
    }
    if (cli_http_call(h, "PUT", t.data, data->data, data->len, 0, &res, &e) < 0) {
        if (p->cas)
            fprintf(stderr, "Error! Did not write to %s: %s\n", key, e.msg);
        else
            fprintf(stderr, "Error! Failed writing data: %s\n", e.msg);
        goto out;
    }
    struct str answer = cli_trim(buf_str(&res.body));
    bool ok = str_eq_cstr(answer, "true");
    if (p->cas && !ok)
        fprintf(stderr, "Error! Did not write to %s: CAS failed\n", key);
    else if (p->acquire && !ok)
        fprintf(stderr, "Error! Did not acquire lock\n");
    else if (p->release && !ok)
        fprintf(stderr, "Error! Did not release lock\n");
    else {
        if (p->acquire)
            printf("Success! Lock acquired on: %s\n", key);
        else if (p->release)
            printf("Success! Lock released on: %s\n", key);
        else
            printf("Success! Data written to: %s\n", key);
        status = 0;
    }
out:
    cli_response_free(&res);
    buf_free(&t);
    return status;
}

static int kv_put_run(const struct cli_http_opts *o, const struct kv_put_opts *p, const char *key,
                      const char *arg)
{
    struct cli_http h;
    struct buf data = BUF_INIT;
    struct err e;
    int status = 1;

    if (kv_put_data(arg, &data, &e) < 0) {
        fprintf(stderr, "Error! %s\n", e.msg);
        goto out;
    }
    if (p->b64) {
        size_t len = 0;
        unsigned char *raw = base64_decode(data.data ? data.data : "", &len);
        if (!raw) {
            fprintf(stderr, "Error! Cannot base 64 decode data: illegal base64 data\n");
            goto out;
        }
        buf_reset(&data);
        buf_append(&data, raw, len);
        free(raw);
    }
    if (cli_connect(&h, o) < 0)
        goto out;
    status = kv_put_send(&h, p, key, &data);
    cli_http_close(&h);
out:
    buf_free(&data);
    return status;
}

/* Argument checks in consul's order; returns -1 to go on, else the exit status. */
static int kv_put_check(struct kv_put_opts *p, int nargs)
{
    if (nargs == 0) {
        fprintf(stderr, "Error! Missing KEY argument\n");
        return 1;
    }
    if (nargs > 2) {
        fprintf(stderr, "Error! Too many arguments (expected 1 or 2, got %d)\n", nargs);
        return 1;
    }
    if (!parse_u64_flag("flags", p->flags_s, &p->flags) ||
        !parse_u64_flag("modify-index", p->index_s, &p->index))
        return 1;
    if ((p->release || p->acquire) && !(p->session && *p->session)) {
        fprintf(stderr, "Error! Missing -session (required with -acquire and -release)\n");
        return 1;
    }
    if (p->cas && p->index == 0) {
        fprintf(stderr, "Must specify -modify-index with -cas!\n");
        return 1;
    }
    return -1;
}

static int kv_put(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct kv_put_opts p = {0};
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"acquire", FLAG_BOOL, &p.acquire,
         "Obtain a lock on the key. If the key does not exist, this operation\n"
         "will create the key and obtain the lock. The session must already\n"
         "exist and be specified via the -session flag. The default value is false.",
         false},
        {"base64", FLAG_BOOL, &p.b64,
         "Treat the data as base 64 encoded. The default value is false.", false},
        {"cas", FLAG_BOOL, &p.cas,
         "Perform a Check-And-Set operation. Specifying this value also\n"
         "requires the -modify-index flag to be set. The default value is false.",
         false},
        {"flags", FLAG_STRING, &p.flags_s,
         "Unsigned integer value to assign to this key-value pair. This value is\n"
         "not read by the registry, so clients can use it for any purpose. The\n"
         "default value is 0.",
         false},
        {"modify-index", FLAG_STRING, &p.index_s,
         "Unsigned integer representing the ModifyIndex of the key. This is used\n"
         "in combination with the -cas flag.",
         false},
        {"release", FLAG_BOOL, &p.release,
         "Forfeit the lock on the key at the given path. This requires the\n"
         "-session flag to be set. The default value is false.",
         false},
        {"session", FLAG_STRING, &p.session,
         "User-defined identifier for this session as a string. This is commonly\n"
         "used with the -acquire and -release operations to build robust locking,\n"
         "but it can be set on any key.",
         false},
    };
    int first, status = 1;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), KV_PUT_USAGE, argc - 1, argv + 1, &first,
                         &status))
        goto out;
    int nargs = argc - 1 - first;
    status = kv_put_check(&p, nargs);
    if (status >= 0)
        goto out;
    const char *key = kv_key(argv[1 + first]);
    if (!*key) {
        fprintf(stderr, "Error! Missing KEY argument\n");
        status = 1;
        goto out;
    }
    status = kv_put_run(&o, &p, key, nargs == 2 ? argv[2 + first] : NULL);
out:
    free(p.flags_s);
    free(p.index_s);
    free(p.session);
    cli_http_opts_free(&o);
    return status;
}

static int kv_delete_run(const struct cli_http_opts *o, const char *key, bool recurse, bool cas,
                         unsigned long long index)
{
    struct cli_http h;
    struct cli_response res = {0};
    struct buf t = BUF_INIT;
    struct err e;
    char num[32];
    int status = 1;

    if (cli_connect(&h, o) < 0)
        return 1;
    kv_target(&t, key);
    if (recurse)
        cli_query_add(&t, "recurse", NULL);
    if (cas) {
        snprintf(num, sizeof(num), "%llu", index);
        cli_query_add(&t, "cas", num);
    }
    if (cli_http_call(&h, "DELETE", t.data, NULL, 0, 0, &res, &e) < 0) {
        if (recurse)
            fprintf(stderr, "Error! Did not delete prefix %s: %s\n", key, e.msg);
        else if (cas)
            fprintf(stderr, "Error! Did not delete key %s: %s\n", key, e.msg);
        else
            fprintf(stderr, "Error deleting key %s: %s\n", key, e.msg);
        goto out;
    }
    if (cas && !str_eq_cstr(cli_trim(buf_str(&res.body)), "true")) {
        fprintf(stderr, "Error! Did not delete key %s: CAS failed\n", key);
        goto out;
    }
    if (recurse)
        printf("Success! Deleted keys with prefix: %s\n", key);
    else
        printf("Success! Deleted key: %s\n", key);
    status = 0;
out:
    cli_response_free(&res);
    buf_free(&t);
    cli_http_close(&h);
    return status;
}

static int kv_delete(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    bool recurse = false, cas = false;
    char *index_s = NULL;
    unsigned long long index = 0;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"cas", FLAG_BOOL, &cas,
         "Perform a Check-And-Set operation. Specifying this value also requires\n"
         "the -modify-index flag to be set. The default value is false.",
         false},
        {"modify-index", FLAG_STRING, &index_s,
         "Unsigned integer representing the ModifyIndex of the key. This is used\n"
         "in combination with the -cas flag.",
         false},
        {"recurse", FLAG_BOOL, &recurse,
         "Recursively delete all keys with the path. The default value is false.", false},
    };
    int status = 1;
    const char *key;

    if (!kv_parse_args(flags, ARRAY_LEN(flags), KV_DELETE_USAGE, argc, argv, &key, &status))
        goto out;
    if (!parse_u64_flag("modify-index", index_s, &index))
        goto out;
    if (!*key && !recurse)
        fprintf(stderr, "Error! Missing KEY argument\n");
    else if (cas && index == 0)
        fprintf(stderr, "Must specify -modify-index with -cas!\n");
    else if (index != 0 && !cas)
        fprintf(stderr, "Cannot specify -modify-index without -cas!\n");
    else if (recurse && cas)
        fprintf(stderr, "Cannot specify both -cas and -recurse!\n");
    else
        status = kv_delete_run(&o, key, recurse, cas, index);
out:
    free(index_s);
    cli_http_opts_free(&o);
    return status;
}

int cli_kv(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"get", kv_get},
        {"put", kv_put},
        {"delete", kv_delete},
    };

    return cli_subcommand("mesh kv", KV_USAGE, subs, ARRAY_LEN(subs), argc, argv);
}
