#include "registry/api/decode.h"

#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"

#define META_MAX_PAIRS     64
#define META_MAX_KEY_LEN   128
#define META_MAX_VALUE_LEN 512
#define OUTPUT_MAX_DEFAULT 4096
#define MIN_INTERVAL       DURATION_SEC

/* Reads fields of one JSON object, stopping at the first error (later reads become no-ops). */
struct reader {
    const json_t *obj;
    const char *type; /* Go struct name for error texts, e.g. "ServiceDefinition" */
    struct err *e;
    int rc;
};

static const char *where(struct reader *r, const char *field, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", r->type, field);
    return buf;
}

static char *rd_str(struct reader *r, const char *key, const char *dflt)
{
    const char *v = NULL;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_string(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v ? xstrdup(v) : (dflt ? xstrdup(dflt) : NULL);
}

static bool rd_bool(struct reader *r, const char *key)
{
    bool v = false;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_bool(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v;
}

static int64_t rd_int(struct reader *r, const char *key)
{
    int64_t v = 0;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_int(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v;
}

static int64_t rd_duration(struct reader *r, const char *key)
{
    int64_t v = 0;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_duration(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v;
}

static json_t *rd_object(struct reader *r, const char *key)
{
    json_t *v = NULL;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_object(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v;
}

static json_t *rd_array(struct reader *r, const char *key)
{
    json_t *v = NULL;
    char w[128];

    if (r->rc == 0)
        r->rc = json_read_array(r->obj, key, where(r, key, w, sizeof(w)), &v, r->e);
    return v;
}

/* A JSON array of strings into a NULL-terminated heap vector (*n elements). */
static char **rd_string_list(struct reader *r, const char *key, size_t *n)
{
    json_t *a = rd_array(r, key);
    size_t len = json_array_size(a);
    char **v = xcalloc(len + 1, sizeof(char *));

    *n = 0;
    for (size_t i = 0; i < len && r->rc == 0; i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s)) {
            r->rc =
                err_set(r->e, "json: cannot unmarshal %s into Go struct field %s.%s of type string",
                        json_type_name(s), r->type, key);
            break;
        }
        v[(*n)++] = xstrdup(json_string_value(s));
    }
    return v;
}

static void free_string_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- checks ------------------------------------------------------------------------------ */

void reg_check_def_free(struct reg_check_def *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->name);
    free(d->service_id);
    free(d->http);
    free(d->method);
    json_decref(d->header);
    free(d->body);
    free(d->tls_server_name);
    free(d->tcp);
    free_string_list(d->args);
    free(d);
}

void reg_check_reg_free(struct reg_check_reg *r)
{
    reg_check_clear(&r->chk);
    reg_check_def_free(r->run);
    memset(r, 0, sizeof(*r));
}

static const char *kind_type(enum reg_check_kind k)
{
    switch (k) {
    case REG_CHECK_HTTP:
        return "http";
    case REG_CHECK_TCP:
        return "tcp";
    case REG_CHECK_TTL:
        return "ttl";
    case REG_CHECK_SCRIPT:
        return "script";
    case REG_CHECK_NONE:
        break;
    }
    return "";
}

static json_t *duration_json(int64_t ns)
{
    char s[32];
    duration_format(ns, s, sizeof(s));
    return json_string(s);
}

/* Consul's check "Definition" object: the probe as registered. */
static json_t *definition(const struct reg_check_def *d)
{
    json_t *o = json_object();

    json_object_set_new(o, "Interval", duration_json(d->interval));
    json_object_set_new(o, "Timeout", duration_json(d->timeout));
    json_object_set_new(o, "DeregisterCriticalServiceAfter",
                        duration_json(d->deregister_critical_after));
    json_object_set_new(o, "HTTP", json_string(d->http ? d->http : ""));
    json_object_set_new(o, "Header", d->header ? json_deep_copy(d->header) : json_null());
    json_object_set_new(o, "Method", json_string(d->method ? d->method : ""));
    json_object_set_new(o, "Body", json_string(d->body ? d->body : ""));
    json_object_set_new(o, "TLSServerName",
                        json_string(d->tls_server_name ? d->tls_server_name : ""));
    json_object_set_new(o, "TLSSkipVerify", json_boolean(d->tls_skip_verify));
    json_object_set_new(o, "TCP", json_string(d->tcp ? d->tcp : ""));
    if (d->kind == REG_CHECK_TTL) /* kept so the check can be restored after a restart */
        json_object_set_new(o, "TTL", duration_json(d->ttl));
    json_t *args = json_array();
    for (size_t i = 0; d->args && d->args[i]; i++)
        json_array_append_new(args, json_string(d->args[i]));
    json_object_set_new(o, "ScriptArgs",
                        json_array_size(args) ? args : (json_decref(args), json_null()));
    return o;
}

/* Header: {"Name": ["v", ...]} exactly (Go's map[string][]string). */
static int check_header_shape(const json_t *h, struct err *e)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)h, k, v)
    {
        size_t i;
        json_t *s;
        if (!json_is_array(v))
            return err_set(e,
                           "json: cannot unmarshal %s into Go struct field CheckType.Header of "
                           "type []string",
                           json_type_name(v));
        json_array_foreach(v, i, s) if (!json_is_string(s)) return err_set(
            e, "json: cannot unmarshal %s into Go struct field CheckType.Header of type string",
            json_type_name(s));
    }
    return 0;
}

static int decode_check_fields(struct reader *r, struct reg_check_def *d, const char **status)
{
    size_t nargs;

    d->http = rd_str(r, "HTTP", NULL);
    d->method = rd_str(r, "Method", NULL);
    d->header = json_incref(rd_object(r, "Header"));
    d->body = rd_str(r, "Body", NULL);
    d->tls_skip_verify = rd_bool(r, "TLSSkipVerify");
    d->tls_server_name = rd_str(r, "TLSServerName", NULL);
    d->disable_redirects = rd_bool(r, "DisableRedirects");
    d->tcp = rd_str(r, "TCP", NULL);
    d->args =
        rd_string_list(r, json_iget_snake(r->obj, "ScriptArgs") ? "ScriptArgs" : "Args", &nargs);
    d->interval = rd_duration(r, "Interval");
    d->timeout = rd_duration(r, "Timeout");
    d->ttl = rd_duration(r, "TTL");
    d->deregister_critical_after = rd_duration(r, "DeregisterCriticalServiceAfter");
    d->success_before_passing = (int)rd_int(r, "SuccessBeforePassing");
    d->failures_before_warning = (int)rd_int(r, "FailuresBeforeWarning");
    d->failures_before_critical = (int)rd_int(r, "FailuresBeforeCritical");
    d->output_max_size = (size_t)rd_int(r, "OutputMaxSize");
    if (r->rc == 0) {
        const char *s = NULL;
        char w[64];
        r->rc = json_read_string(r->obj, "Status", where(r, "Status", w, sizeof(w)), &s, r->e);
        *status = s;
    }
    if (r->rc == 0 && d->header)
        r->rc = check_header_shape(d->header, r->e);
    if (r->rc < 0)
        return r->rc;
    if (d->args && !d->args[0]) {
        free_string_list(d->args);
        d->args = NULL;
    }
    return 0;
}

/* Picks the check's kind and validates timing, with Consul's texts. */
static int classify_check(struct reg_check_def *d, const json_t *obj,
                          const struct reg_decode_opts *opts, struct err *e)
{
    static const char *const unsupported[] = {
        "GRPC", "UDP", "H2PING", "DockerContainerID", "AliasService", "AliasNode", "OSService"};

    for (size_t i = 0; i < ARRAY_LEN(unsupported); i++) {
        json_t *v = json_iget_snake(obj, unsupported[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return err_set(e, "Invalid check: %s checks are not supported by this agent",
                           unsupported[i]);
    }
    if (d->interval > 0 && d->ttl > 0)
        return err_set(e, "Invalid check: Interval and TTL cannot both be specified");
    if (d->http && d->http[0])
        d->kind = REG_CHECK_HTTP;
    else if (d->tcp && d->tcp[0])
        d->kind = REG_CHECK_TCP;
    else if (d->args)
        d->kind = REG_CHECK_SCRIPT;
    else if (d->ttl > 0)
        d->kind = REG_CHECK_TTL;
    else
        return err_set(e, "Invalid check: TTL must be > 0 for TTL checks");
    if (d->kind != REG_CHECK_TTL && d->interval <= 0)
        return err_set(e, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP "
                          "checks");
    if (d->kind == REG_CHECK_SCRIPT && !opts->allow_scripts)
        return err_set(e, "Scripts are disabled on this agent; to enable, configure "
                          "'enable_script_checks' or 'enable_local_script_checks' to true");
    if (d->interval > 0 && d->interval < MIN_INTERVAL)
        d->interval = MIN_INTERVAL;
    if (d->timeout <= 0)
        d->timeout = (d->kind == REG_CHECK_SCRIPT ? 30 : 10) * DURATION_SEC;
    if (d->output_max_size == 0)
        d->output_max_size = OUTPUT_MAX_DEFAULT;
    if (d->deregister_critical_after < 0 || d->ttl < 0 || d->interval < 0)
        return err_set(e, "Invalid check: durations must not be negative");
    return 0;
}

int reg_decode_check(const json_t *obj, const struct reg_decode_opts *opts, const char *service_id,
                     const char *default_id, const char *default_name, struct reg_check_reg *out,
                     struct err *e)
{
    struct reader r = {obj, "CheckType", e, 0};
    struct reg_check_def *d = xcalloc(1, sizeof(*d));
    const char *status = NULL;
    char *id, *name, *notes, *sid;

    memset(out, 0, sizeof(*out));
    out->run = d;
    name = rd_str(&r, "Name", default_name);
    id = rd_str(&r, "CheckID", NULL);
    if (!id)
        id = rd_str(&r, "ID", NULL);
    notes = rd_str(&r, "Notes", "");
    sid = rd_str(&r, "ServiceID", service_id ? service_id : "");
    out->chk.id = id ? id : xstrdup(default_id ? default_id : (name ? name : ""));
    out->chk.name = name;
    out->chk.notes = notes;
    out->chk.service_id = sid;
    out->chk.output = xstrdup("");
    if (r.rc < 0 || decode_check_fields(&r, d, &status) < 0) {
        err_prefix(e, "Request decode failed");
        return -EINVAL;
    }
    if (!name || !name[0])
        return err_set(e, "Missing check name");
    enum reg_health h = REG_CRITICAL;
    if (status && status[0] && !reg_health_parse(status, &h))
        return err_set(e, "Status for checks must 'passing', 'warning', 'critical'");
    if (classify_check(d, obj, opts, e) < 0)
        return -EINVAL;
    d->id = xstrdup(out->chk.id);
    d->name = xstrdup(name);
    d->service_id = xstrdup(sid);
    out->chk.status = h;
    out->status_given = status && status[0];
    out->chk.type = xstrdup(kind_type(d->kind));
    out->chk.definition = definition(d);
    out->chk.interval_ns = d->interval;
    out->chk.timeout_ns = d->kind == REG_CHECK_TTL ? 0 : d->timeout;
    return 0;
}

/* ---- services ---------------------------------------------------------------------------- */

void reg_service_reg_free(struct reg_service_reg *r)
{
    reg_service_clear(&r->svc);
    for (size_t i = 0; i < r->nchecks; i++)
        reg_check_reg_free(&r->checks[i]);
    free(r->checks);
    memset(r, 0, sizeof(*r));
}

static int validate_meta(const json_t *meta, struct err *e)
{
    const char *k;
    json_t *v;

    if (!meta)
        return 0;
    if (json_object_size(meta) > META_MAX_PAIRS)
        return err_set(e,
                       "Invalid Service Meta: Node metadata cannot contain more than %d "
                       "key/value pairs",
                       META_MAX_PAIRS);
    json_object_foreach((json_t *)meta, k, v)
    {
        if (!json_is_string(v))
            return err_set(e,
                           "Request decode failed: json: cannot unmarshal %s into Go struct "
                           "field ServiceDefinition.Meta of type string",
                           json_type_name(v));
        if (strlen(k) > META_MAX_KEY_LEN)
            return err_set(e, "Invalid Service Meta: Key is too long (limit: %d characters)",
                           META_MAX_KEY_LEN);
        if (strncmp(k, "consul-", 7) == 0)
            return err_set(e, "Invalid Service Meta: Key prefix 'consul-' is reserved for "
                              "internal use");
        if (json_string_length(v) > META_MAX_VALUE_LEN)
            return err_set(e, "Invalid Service Meta: Value is too long (limit: %d characters)",
                           META_MAX_VALUE_LEN);
    }
    return 0;
}

/* Normalises TaggedAddresses to {"name": {"Address": ..., "Port": ...}}. */
static json_t *tagged_addresses(const json_t *in, struct err *e, int *rc)
{
    const char *k;
    json_t *v, *out = json_object();

    json_object_foreach((json_t *)in, k, v)
    {
        if (!json_is_object(v)) {
            *rc = err_set(e,
                          "Request decode failed: json: cannot unmarshal %s into Go struct "
                          "field ServiceDefinition.TaggedAddresses of type "
                          "structs.ServiceAddress",
                          json_type_name(v));
            break;
        }
        json_t *addr = json_iget(v, "Address"), *port = json_iget(v, "Port");
        json_object_set_new(out, k,
                            json_pack("{s:s, s:I}", "Address",
                                      json_is_string(addr) ? json_string_value(addr) : "", "Port",
                                      json_is_integer(port) ? json_integer_value(port) : 0));
    }
    return out;
}

static int decode_service_checks(const json_t *obj, const struct reg_decode_opts *opts,
                                 struct reg_service_reg *out, struct err *e)
{
    json_t *one = json_iget(obj, "Check"), *many = json_iget(obj, "Checks");
    size_t n = (json_is_object(one) ? 1 : 0) + json_array_size(many);
    struct reg_service *s = &out->svc;
    char *default_name = xasprintf("Service '%s' check", s->name);
    int rc = 0;

    if (one && !json_is_null(one) && !json_is_object(one))
        rc = err_set(e,
                     "Request decode failed: json: cannot unmarshal %s into Go struct field "
                     "ServiceDefinition.Check of type structs.CheckType",
                     json_type_name(one));
    if (many && !json_is_null(many) && !json_is_array(many))
        rc = err_set(e,
                     "Request decode failed: json: cannot unmarshal %s into Go struct field "
                     "ServiceDefinition.Checks of type structs.CheckTypes",
                     json_type_name(many));
    out->checks = xcalloc(n ? n : 1, sizeof(*out->checks));
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *c = json_is_object(one) ? (i == 0 ? one : json_array_get(many, i - 1))
                                              : json_array_get(many, i);
        char *id =
            n == 1 ? xasprintf("service:%s", s->id) : xasprintf("service:%s:%zu", s->id, i + 1);
        if (!json_is_object(c))
            rc = err_set(e,
                         "Request decode failed: json: cannot unmarshal %s into Go struct "
                         "field ServiceDefinition.Checks of type structs.CheckType",
                         json_type_name(c));
        else
            rc = reg_decode_check(c, opts, s->id, id, default_name, &out->checks[i], e);
        out->nchecks = i + 1;
        free(id);
    }
    free(default_name);
    return rc;
}

int reg_decode_service(const json_t *obj, const struct reg_decode_opts *opts,
                       struct reg_service_reg *out, struct err *e)
{
    struct reader r = {obj, "ServiceDefinition", e, 0};
    struct reg_service *s = &out->svc;
    json_t *weights, *ta;

    memset(out, 0, sizeof(*out));
    s->name = rd_str(&r, "Name", NULL);
    s->id = rd_str(&r, "ID", NULL);
    s->tags = rd_string_list(&r, "Tags", &s->ntags);
    s->address = rd_str(&r, "Address", "");
    s->port = (int)rd_int(&r, "Port");
    s->meta = json_incref(rd_object(&r, "Meta"));
    s->enable_tag_override = rd_bool(&r, "EnableTagOverride");
    s->kind = rd_str(&r, "Kind", "");
    s->proxy = json_incref(rd_object(&r, "Proxy"));
    s->connect = json_incref(rd_object(&r, "Connect"));
    weights = rd_object(&r, "Weights");
    ta = rd_object(&r, "TaggedAddresses");
    if (r.rc < 0)
        return err_prefix(e, "Request decode failed"), -EINVAL;
    if (!s->name || !s->name[0])
        return err_set(e, "Missing service name");
    if (!s->id || !s->id[0]) {
        free(s->id);
        s->id = xstrdup(s->name);
    }
    if (strcmp(s->address, "0.0.0.0") == 0 || strcmp(s->address, "::") == 0 ||
        strcmp(s->address, "[::]") == 0)
        return err_set(e, "Invalid service address");
    if (s->port < 0 || s->port > 65535)
        return err_set(e, "Invalid service port");
    s->weight_passing = s->weight_warning = 1;
    if (weights) {
        struct reader wr = {weights, "Weights", e, 0};
        s->weight_passing = (int)rd_int(&wr, "Passing");
        s->weight_warning = (int)rd_int(&wr, "Warning");
        if (wr.rc < 0)
            return err_prefix(e, "Request decode failed"), -EINVAL;
        if (s->weight_passing < 1 || s->weight_warning < 0)
            return err_set(e, "Invalid Weights: Passing must be greater than 0");
    }
    if (validate_meta(s->meta, e) < 0)
        return -EINVAL;
    if (ta) {
        int rc = 0;
        s->tagged_addresses = tagged_addresses(ta, e, &rc);
        if (rc < 0)
            return rc;
    }
    return decode_service_checks(obj, opts, out, e);
}
