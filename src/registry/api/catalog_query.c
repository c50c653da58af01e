#include "registry/api/catalog_query.h"

#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "registry/api/api_acl.h"

int reg_catalog_filter_parse(struct reg_api_call *c, struct reg_catalog_filter *f,
                             struct reg_api_result *res)
{
    const char *meta[REG_CATALOG_MAX_FILTERS];

    memset(f, 0, sizeof(*f));
    f->ntags = url_query_get_all(&c->query, "tag", f->tags, REG_CATALOG_MAX_FILTERS);
    size_t n = url_query_get_all(&c->query, "node-meta", meta, REG_CATALOG_MAX_FILTERS);
    for (size_t i = 0; i < n && i < REG_CATALOG_MAX_FILTERS; i++) {
        const char *colon = strchr(meta[i], ':');
        if (!colon) {
            reg_catalog_filter_free(f);
            reg_api_result_error(res, 400, "Invalid node-meta filter: \"%s\" (want key:value)",
                                 meta[i]);
            return -EINVAL;
        }
        f->meta_keys[f->nmeta] = xstrndup(meta[i], (size_t)(colon - meta[i]));
        f->meta_values[f->nmeta++] = colon + 1;
    }
    if (f->ntags > REG_CATALOG_MAX_FILTERS)
        f->ntags = REG_CATALOG_MAX_FILTERS;
    return 0;
}

void reg_catalog_filter_free(struct reg_catalog_filter *f)
{
    for (size_t i = 0; i < f->nmeta; i++)
        free(f->meta_keys[i]);
    f->nmeta = 0;
}

bool reg_catalog_node_matches(const struct reg_catalog_filter *f, const struct reg_node *n)
{
    for (size_t i = 0; i < f->nmeta; i++) {
        const char *v = json_string_value(json_object_get(n->meta, f->meta_keys[i]));
        if (!v || strcmp(v, f->meta_values[i]) != 0)
            return false;
    }
    return true;
}

bool reg_catalog_service_matches(const struct reg_catalog_filter *f, const struct reg_service *s,
                                 const char *name)
{
    if (name && strcasecmp(s->name, name) != 0)
        return false;
    return reg_service_has_tags(s, f->tags, f->ntags);
}

json_t *reg_catalog_visible_nodes(struct reg_api_call *c, struct reg_api_result *res,
                                  reg_catalog_node_render_fn render)
{
    struct reg_catalog_filter f;
    json_t *list;

    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return NULL;
    list = json_array();
    smap_foreach(&c->api->state->nodes, e)
    {
        const struct reg_node *n = e->val;
        if (!reg_catalog_node_matches(&f, n))
            continue;
        if (reg_api_acl_allow(c, REG_ACL_RES_NODE, n->name, REG_ACL_ACCESS_READ))
            json_array_append_new(list, render(c, res, n));
        else
            reg_api_acl_filtered(c, res);
    }
    reg_catalog_filter_free(&f);
    return list;
}

void reg_catalog_foreach_service(const struct reg_state *st, const struct reg_catalog_filter *f,
                                 const char *name, reg_catalog_service_fn fn, void *ctx)
{
    smap_foreach(&st->nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!reg_catalog_node_matches(f, n))
            continue;
        smap_foreach(&n->services, se)
        {
            if (reg_catalog_service_matches(f, se->val, name))
                fn(se->val, ctx);
        }
    }
}

/* Whether s is a Connect endpoint of the service name (reg_catalog_foreach_connect). */
static bool connect_endpoint_of(const struct reg_service *s, const char *name)
{
    if (strcmp(s->kind, "connect-proxy") == 0) {
        const char *dest = json_string_value(json_object_get(s->proxy, "DestinationServiceName"));
        return dest && strcasecmp(dest, name) == 0;
    }
    return strcasecmp(s->name, name) == 0 && json_is_true(json_object_get(s->connect, "Native"));
}

uint64_t reg_catalog_foreach_connect(const struct reg_state *st, const struct reg_catalog_filter *f,
                                     const char *name, reg_catalog_service_fn fn, void *ctx)
{
    uint64_t index = reg_service_index(st, name);

    /* Consul keeps an index of proxies by destination; a walk of every instance serves until
     * meshes grow large enough to show in profiles. */
    smap_foreach(&st->nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!reg_catalog_node_matches(f, n))
            continue;
        smap_foreach(&n->services, se)
        {
            const struct reg_service *s = se->val;
            if (!connect_endpoint_of(s, name) || !reg_catalog_service_matches(f, s, NULL))
                continue;
            uint64_t own = reg_service_index(st, s->name);
            index = own > index ? own : index;
            fn(s, ctx);
        }
    }
    return index;
}

/* fn behind the call's ACL filter (reg_catalog_foreach_visible). */
struct visible {
    struct reg_api_call *c;
    struct reg_api_result *res;
    bool need_node; /* node:read too (reg_catalog_foreach_visible) */
    reg_catalog_service_fn fn;
    void *ctx;
};

static void visit_if_visible(const struct reg_service *s, void *data)
{
    struct visible *v = data;

    if (reg_api_acl_service_visible(v->c, v->res, s, v->need_node))
        v->fn(s, v->ctx);
}

uint64_t reg_catalog_foreach_visible(struct reg_api_call *c, struct reg_api_result *res,
                                     const struct reg_catalog_filter *f, const char *name,
                                     bool connect, bool need_node, reg_catalog_service_fn fn,
                                     void *ctx)
{
    struct visible v = {c, res, need_node, fn, ctx};

    MESH_BUG_ON(connect && !name);
    if (connect && name)
        return reg_catalog_foreach_connect(c->api->state, f, name, visit_if_visible, &v);
    reg_catalog_foreach_service(c->api->state, f, name, visit_if_visible, &v);
    return name ? reg_service_index(c->api->state, name) : 0;
}

void reg_catalog_result_index(struct reg_api_result *res, uint64_t index)
{
    res->index = index;
    res->index_headers = true;
}

/* ---- registration ------------------------------------------------------------------------ */

void reg_catalog_registration_free(struct reg_catalog_registration *r)
{
    json_decref(r->body);
    if (r->has_service)
        reg_service_reg_free(&r->service);
    for (size_t i = 0; i < r->nchecks; i++)
        reg_check_reg_free(&r->checks[i]);
    free(r->checks);
    memset(r, 0, sizeof(*r));
}

/* Decodes one catalog check: stored as given, never run. */
static int decode_catalog_check(const json_t *obj, struct reg_check_reg *out, struct err *e)
{
    const char *id = NULL, *name = NULL, *status = NULL, *notes = NULL, *output = NULL, *sid = NULL;
    json_t *def = NULL;
    enum reg_health h = REG_CRITICAL;

    memset(out, 0, sizeof(*out));
    if (json_read_string(obj, "CheckID", "HealthCheck.CheckID", &id, e) < 0 ||
        json_read_string(obj, "Name", "HealthCheck.Name", &name, e) < 0 ||
        json_read_string(obj, "Status", "HealthCheck.Status", &status, e) < 0 ||
        json_read_string(obj, "Notes", "HealthCheck.Notes", &notes, e) < 0 ||
        json_read_string(obj, "Output", "HealthCheck.Output", &output, e) < 0 ||
        json_read_string(obj, "ServiceID", "HealthCheck.ServiceID", &sid, e) < 0 ||
        json_read_object(obj, "Definition", "HealthCheck.Definition", &def, e) < 0) {
        err_prefix(e, "Request decode failed");
        return -EINVAL;
    }
    if ((!id || !id[0]) && (!name || !name[0]))
        return err_set(e, "Missing check ID or name");
    if (status && status[0] && !reg_health_parse(status, &h))
        return err_set(e, "Status for checks must 'passing', 'warning', 'critical'");
    out->chk.id = xstrdup(id && id[0] ? id : name);
    out->chk.name = xstrdup(name && name[0] ? name : id);
    out->chk.status = h;
    out->chk.notes = xstrdup(notes ? notes : "");
    out->chk.output = xstrdup(output ? output : "");
    out->chk.service_id = xstrdup(sid ? sid : "");
    out->chk.type = xstrdup("");
    out->chk.definition = def ? json_deep_copy(def) : json_object();
    return 0;
}

int reg_catalog_registration_decode(const json_t *body, struct reg_catalog_registration *r,
                                    struct err *e)
{
    json_t *svc = NULL, *chk = NULL, *chks = NULL;
    struct reg_decode_opts opts = {.allow_scripts = true}; /* catalog checks are never run */

    memset(r, 0, sizeof(*r));
    r->body = json_deep_copy(body);
    if (json_read_string(r->body, "Node", "RegisterRequest.Node", &r->node.name, e) < 0 ||
        json_read_string(r->body, "ID", "RegisterRequest.ID", &r->node.id, e) < 0 ||
        json_read_string(r->body, "Address", "RegisterRequest.Address", &r->node.address, e) < 0 ||
        json_read_string(r->body, "Datacenter", "RegisterRequest.Datacenter", &r->node.datacenter,
                         e) < 0 ||
        json_read_object(r->body, "TaggedAddresses", "RegisterRequest.TaggedAddresses",
                         (json_t **)&r->node.tagged_addresses, e) < 0 ||
        json_read_object(r->body, "NodeMeta", "RegisterRequest.NodeMeta", (json_t **)&r->node.meta,
                         e) < 0 ||
        json_read_object(r->body, "Service", "RegisterRequest.Service", &svc, e) < 0 ||
        json_read_object(r->body, "Check", "RegisterRequest.Check", &chk, e) < 0 ||
        json_read_array(r->body, "Checks", "RegisterRequest.Checks", &chks, e) < 0 ||
        json_read_bool(r->body, "SkipNodeUpdate", "RegisterRequest.SkipNodeUpdate",
                       &r->skip_node_update, e) < 0) {
        err_prefix(e, "Request decode failed");
        return -EINVAL;
    }
    if (!r->node.name || !r->node.name[0])
        return err_set(e, "Must provide node");
    if (!r->node.address || !r->node.address[0])
        return err_set(e, "Must provide address");
    if (svc) {
        /* The catalog's service object names the service "Service", not "Name". */
        json_t *copy = json_deep_copy(svc);
        json_t *name = json_iget(copy, "Service");
        if (name && !json_iget(copy, "Name"))
            json_object_set(copy, "Name", name);
        json_object_del(copy, "Service");
        json_object_del(copy, "Check");
        json_object_del(copy, "Checks");
        r->has_service = true;
        int rc = reg_decode_service(copy, &opts, &r->service, e);
        json_decref(copy);
        if (rc < 0)
            return rc;
    }
    size_t n = (chk ? 1 : 0) + json_array_size(chks);
    r->checks = xcalloc(n ? n : 1, sizeof(*r->checks));
    for (size_t i = 0; i < n; i++) {
        const json_t *c =
            chk ? (i == 0 ? chk : json_array_get(chks, i - 1)) : json_array_get(chks, i);
        r->nchecks = i + 1;
        if (!json_is_object(c))
            return err_set(e,
                           "Request decode failed: json: cannot unmarshal %s into Go struct "
                           "field RegisterRequest.Checks of type structs.HealthCheck",
                           json_type_name(c));
        if (decode_catalog_check(c, &r->checks[i], e) < 0)
            return -EINVAL;
    }
    return 0;
}

int reg_catalog_registration_apply(struct reg_state *st, struct reg_catalog_registration *r,
                                   struct err *e)
{
    struct reg_node *node = reg_node_get(st, r->node.name);

    if (!node || !r->skip_node_update) {
        reg_node_upsert(st, &r->node);
        node = reg_node_get(st, r->node.name);
    }
    if (r->has_service)
        reg_service_upsert(st, node, &r->service.svc);
    for (size_t i = 0; i < r->nchecks; i++) {
        const char *sid = r->checks[i].chk.service_id;
        if (sid[0] && !reg_service_get(node, sid))
            return err_set(e, "Unknown service ID '%s' for check ID '%s'", sid,
                           r->checks[i].chk.id);
        reg_check_upsert(st, node, &r->checks[i].chk);
    }
    return 0;
}
