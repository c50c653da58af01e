/*
 * `mesh services register|deregister`: service definitions to the local agent, as `consul
 * services` does. Files hold Consul's definition format ({"service": {...}}, {"services":
 * [...]} or a bare service object); they are sent as they are, since the agent API matches
 * keys case-insensitively and takes the snake_case aliases the file format uses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/url.h"

#define SERVICES_USAGE_TOP                                                                         \
    "mesh services <subcommand> [options] [args]\n\n"                                              \
    "  Registers and deregisters services with the local agent.\n\n"                               \
    "  Without a subcommand (or with list): the local cluster's services, one row per\n"           \
    "  instance with its health (see mesh services list -help).\n\n"                               \
    "Subcommands:\n"                                                                               \
    "    list          The local cluster's service instances and their health\n"                   \
    "    deregister    Deregister services with the local agent\n"                                 \
    "    register      Register services with the local agent\n"

#define REGISTER_USAGE                                                                             \
    "mesh services register [options] [FILE...]\n\n"                                               \
    "  Register one or more services using the local agent API. Services can be\n"                 \
    "  registered from standard Consul configuration files (JSON: {\"service\": {...}},\n"         \
    "  {\"services\": [...]} or a bare service object) or with flags:\n\n"                         \
    "      mesh services register -name=web -port=3000 -tag=v1"

#define DEREGISTER_USAGE                                                                           \
    "mesh services deregister [options] [ID | FILE...]\n\n"                                        \
    "  Deregister one or more services previously registered with the local agent, by\n"           \
    "  ID (-id or an argument) or by the definition files they were registered with."

/* Appends v (one definition object, or an array of them) to out; returns how many. */
static size_t append_defs(json_t *out, json_t *v)
{
    size_t n = 0;

    if (json_is_object(v)) {
        json_array_append(out, v);
        return 1;
    }
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        if (json_is_object(json_array_get(v, i))) {
            json_array_append(out, json_array_get(v, i));
            n++;
        }
    }
    return n;
}

/* Appends the service definitions found in one parsed file to out (new references). */
static int collect_services(json_t *doc, const char *path, json_t *out)
{
    json_t *one = json_iget(doc, "service");
    json_t *many = json_iget(doc, "services");
    size_t found;

    if (!json_is_object(doc)) {
        fprintf(stderr, "Error: %s: expected a JSON object\n", path);
        return -EINVAL;
    }
    if (one || many)
        found = append_defs(out, one) + append_defs(out, many);
    else
        found = append_defs(out, doc); /* a bare service object */
    if (!found) {
        fprintf(stderr, "Error: %s: no service definitions found\n", path);
        return -EINVAL;
    }
    return 0;
}

/* Reads every file's definitions into a new array; NULL (message printed) on error. */
static json_t *services_from_files(char **paths, int n)
{
    json_t *out = json_array();

    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t *doc = json_load_file(paths[i], JSON_DECODE_ANY, &je);
        if (!doc) {
            fprintf(stderr, "Error: Failed to decode %s: %s (line %d, column %d)\n", paths[i],
                    je.text, je.line, je.column);
            goto err;
        }
        int rc = collect_services(doc, paths[i], out);
        json_decref(doc);
        if (rc < 0)
            goto err;
    }
    return out;
err:
    json_decref(out);
    return NULL;
}

static const char *svc_str(const json_t *svc, const char *key)
{
    const char *s = json_string_value(json_iget(svc, key));
    return s ? s : "";
}

/*
 * One agent call per definition, stopping at the first that fails: register sends the definition
 * as it is, deregister names its ID (or, without one, its name). Returns the exit status.
 */
static int call_each(const struct cli_http_opts *o, const json_t *svcs, bool deregister)
{
    struct cli_http h;
    struct cli_response res = {0};
    struct err e;
    int status = 0;

    if (cli_connect(&h, o) < 0)
        return 1;
    for (size_t i = 0; i < json_array_size(svcs); i++) {
        const json_t *svc = json_array_get(svcs, i);
        const char *id = *svc_str(svc, "id") ? svc_str(svc, "id") : svc_str(svc, "name");
        const char *shown = deregister ? id : svc_str(svc, "name");
        struct buf path = BUF_INIT, body = BUF_INIT;
        if (deregister && !*id)
            continue;
        if (deregister) {
            buf_append_cstr(&path, "/v1/agent/service/deregister/");
            url_encode(&path, str_from(id), true);
        } else {
            buf_append_cstr(&path, "/v1/agent/service/register");
            json_append(&body, svc, false);
        }
        int rc = cli_http_call(&h, "PUT", path.data, body.data, body.len, 0, &res, &e);
        buf_free(&path);
        buf_free(&body);
        if (rc < 0) {
            fprintf(stderr, "Error %s service \"%s\": %s\n",
                    deregister ? "deregistering" : "registering", shown, e.msg);
            status = 1;
            break;
        }
        printf("%s service: %s\n", deregister ? "Deregistered" : "Registered", shown);
    }
    cli_response_free(&res);
    cli_http_close(&h);
    return status;
}

/* The definition the flags describe (consul's -name/-id/-address/-port/-tag/-meta). */
static json_t *service_from_flags(const char *name, const char *id, const char *address,
                                  bool port_seen, int port, const struct flag_list *tags,
                                  const struct flag_list *meta)
{
    json_t *svc = json_object();

    json_object_set_new(svc, "Name", json_string(name));
    if (id && *id)
        json_object_set_new(svc, "ID", json_string(id));
    if (address && *address)
        json_object_set_new(svc, "Address", json_string(address));
    if (port_seen)
        json_object_set_new(svc, "Port", json_integer(port));
    if (tags->n) {
        json_t *t = json_array();
        for (size_t i = 0; i < tags->n; i++)
            json_array_append_new(t, json_string(tags->items[i]));
        json_object_set_new(svc, "Tags", t);
    }
    if (meta->n) {
        json_t *m = json_object();
        for (size_t i = 0; i < meta->n; i++) {
            const char *eq = strchr(meta->items[i], '=');
            char *k = xstrndup(meta->items[i],
                               eq ? (size_t)(eq - meta->items[i]) : strlen(meta->items[i]));
            json_object_set_new(m, k, json_string(eq ? eq + 1 : ""));
            free(k);
        }
        json_object_set_new(svc, "Meta", m);
    }
    return svc;
}

/*
 * A command takes definition files as arguments or its flags, one of the two: false (why printed,
 * in consul's words) when it got neither or both.
 */
static bool args_or_flag(int nargs, bool flag_given, const char *what, const char *flags)
{
    if (nargs == 0 && !flag_given) {
        fprintf(stderr, "Service %s requires at least one argument or %s.\n", what, flags);
        return false;
    }
    if (nargs > 0 && flag_given) {
        fprintf(stderr, "Service %s requires arguments or -id, not both.\n", what);
        return false;
    }
    return true;
}

static int services_register(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    char *name = NULL, *id = NULL, *address = NULL;
    int port = 0;
    struct flag_list tags = {0}, meta = {0};
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"address", FLAG_STRING, &address,
         "Address of the service to register for arg-based registration.", false},
        {"id", FLAG_STRING, &id,
         "ID of the service to register for arg-based registration. If this\n"
         "isn't set, it will default to the -name value.",
         false},
        {"meta", FLAG_STRING_LIST, &meta,
         "Metadata to set on the service, formatted as key=value. This flag\n"
         "may be specified multiple times to set multiple meta fields.",
         false},
        {"name", FLAG_STRING, &name, "Name of the service to register for arg-based registration.",
         false},
        {"port", FLAG_INT, &port, "Port of the service to register for arg-based registration.",
         false},
        {"tag", FLAG_STRING_LIST, &tags,
         "Tag to add to the service. This flag can be specified multiple\n"
         "times to set multiple tags.",
         false},
    };
    json_t *svcs = NULL;
    int first, status = 1;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), REGISTER_USAGE, argc - 1, argv + 1, &first,
                         &status))
        goto out;
    status = 1;
    int nargs = argc - 1 - first;
    if (!args_or_flag(nargs, name && *name, "registration", "flags"))
        goto out;
    if (nargs > 0) {
        svcs = services_from_files(argv + 1 + first, nargs);
    } else {
        bool port_seen = false;
        for (size_t i = 0; i < ARRAY_LEN(flags); i++)
            port_seen |= flags[i].ptr == &port && flags[i].seen;
        svcs = json_array();
        json_array_append_new(svcs,
                              service_from_flags(name, id, address, port_seen, port, &tags, &meta));
    }
    if (svcs)
        status = call_each(&o, svcs, false);
out:
    json_decref(svcs);
    free(name);
    free(id);
    free(address);
    flag_list_free(&tags);
    flag_list_free(&meta);
    cli_http_opts_free(&o);
    return status;
}

/* An argument names a definition file when it exists as a regular file or ends in ".json". */
static bool is_file_arg(const char *arg)
{
    struct stat st;
    size_t n = strlen(arg);

    return (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) ||
           (n > 5 && strcmp(arg + n - 5, ".json") == 0);
}

static int services_deregister(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    char *id = NULL;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"id", FLAG_STRING, &id, "ID to delete. This must not be set if arguments are given.",
         false},
    };
    json_t *svcs = NULL;
    int first, status = 1;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), DEREGISTER_USAGE, argc - 1, argv + 1, &first,
                         &status))
        goto out;
    status = 1;
    int nargs = argc - 1 - first;
    if (!args_or_flag(nargs, id && *id, "deregistration", "-id"))
        goto out;
    if (nargs == 1 && !is_file_arg(argv[1 + first])) {
        /* mesh extra: a bare ID argument, like -id. */
        svcs = json_array();
        json_array_append_new(svcs, json_pack("{s:s}", "ID", argv[1 + first]));
    } else if (nargs > 0) {
        svcs = services_from_files(argv + 1 + first, nargs);
    } else {
        svcs = json_array();
        json_array_append_new(svcs, json_pack("{s:s}", "ID", id));
    }
    if (svcs)
        status = call_each(&o, svcs, true);
out:
    json_decref(svcs);
    free(id);
    cli_http_opts_free(&o);
    return status;
}

int cli_services(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"list", cli_services_list},
        {"register", services_register},
        {"deregister", services_deregister},
    };

    /* No subcommand (flags only): the cluster's services, as cluster_utils.sh's "services". */
    if (argc < 2 || (argv[1][0] == '-' && !cli_is_help(argv[1])))
        return cli_services_list(argc, argv);
    return cli_subcommand("mesh services", SERVICES_USAGE_TOP, subs, ARRAY_LEN(subs), argc, argv);
}
