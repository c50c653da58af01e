#include "registry/api/render.h"

#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/duration.h"
#include "lib/url.h"

static json_t *copy_or_empty(const json_t *v)
{
    return v ? json_deep_copy(v) : json_object();
}

static json_t *weights(const struct reg_service *s)
{
    return json_pack("{s:i, s:i}", "Passing", s->weight_passing, "Warning", s->weight_warning);
}

json_t *reg_render_tags(const struct reg_service *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->ntags; i++)
        json_array_append_new(a, json_string(s->tags[i]));
    return a;
}

json_t *reg_render_node(const struct reg_node *n)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "ID", n->id, "Node", n->name,
                     "Address", n->address, "Datacenter", n->datacenter, "TaggedAddresses",
                     copy_or_empty(n->tagged_addresses), "Meta", copy_or_empty(n->meta),
                     "CreateIndex", (json_int_t)n->create_index, "ModifyIndex",
                     (json_int_t)n->modify_index);
}

static json_t *proxy_or_default(const struct reg_service *s)
{
    if (s->proxy)
        return json_deep_copy(s->proxy);
    return json_pack("{s:s, s:{}, s:{}}", "Mode", "", "MeshGateway", "Expose");
}

/*
 * The keys a catalog and an agent view of a service begin with, in Consul's order; the two views
 * differ after them (and clients diffing JSON text see the order).
 */
static json_t *service_head(const struct reg_service *s)
{
    json_t *o = json_object();

    if (s->kind[0])
        json_object_set_new(o, "Kind", json_string(s->kind));
    json_object_set_new(o, "ID", json_string(s->id));
    json_object_set_new(o, "Service", json_string(s->name));
    json_object_set_new(o, "Tags", reg_render_tags(s));
    return o;
}

json_t *reg_render_node_service(const struct reg_service *s)
{
    json_t *o = service_head(s);

    json_object_set_new(o, "Address", json_string(s->address));
    if (s->tagged_addresses && json_object_size(s->tagged_addresses))
        json_object_set_new(o, "TaggedAddresses", json_deep_copy(s->tagged_addresses));
    json_object_set_new(o, "Meta", copy_or_empty(s->meta));
    json_object_set_new(o, "Port", json_integer(s->port));
    json_object_set_new(o, "Weights", weights(s));
    json_object_set_new(o, "EnableTagOverride", json_boolean(s->enable_tag_override));
    json_object_set_new(o, "Proxy", proxy_or_default(s));
    json_object_set_new(o, "Connect", copy_or_empty(s->connect));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)s->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)s->modify_index));
    return o;
}

json_t *reg_render_service_node(const struct reg_service *s)
{
    const struct reg_node *n = s->node;
    json_t *o = json_object();

    json_object_set_new(o, "ID", json_string(n->id));
    json_object_set_new(o, "Node", json_string(n->name));
    json_object_set_new(o, "Address", json_string(n->address));
    json_object_set_new(o, "Datacenter", json_string(n->datacenter));
    json_object_set_new(o, "TaggedAddresses", copy_or_empty(n->tagged_addresses));
    json_object_set_new(o, "NodeMeta", copy_or_empty(n->meta));
    json_object_set_new(o, "ServiceKind", json_string(s->kind));
    json_object_set_new(o, "ServiceID", json_string(s->id));
    json_object_set_new(o, "ServiceName", json_string(s->name));
    json_object_set_new(o, "ServiceTags", reg_render_tags(s));
    json_object_set_new(o, "ServiceAddress", json_string(s->address));
    if (s->tagged_addresses && json_object_size(s->tagged_addresses))
        json_object_set_new(o, "ServiceTaggedAddresses", json_deep_copy(s->tagged_addresses));
    json_object_set_new(o, "ServiceWeights", weights(s));
    json_object_set_new(o, "ServiceMeta", copy_or_empty(s->meta));
    json_object_set_new(o, "ServicePort", json_integer(s->port));
    json_object_set_new(o, "ServiceEnableTagOverride", json_boolean(s->enable_tag_override));
    json_object_set_new(o, "ServiceProxy", proxy_or_default(s));
    json_object_set_new(o, "ServiceConnect", copy_or_empty(s->connect));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)s->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)s->modify_index));
    return o;
}

static json_t *definition_without_secrets(const json_t *def)
{
    json_t *o = copy_or_empty(def);
    const char *http = json_string_value(json_object_get(o, "HTTP"));
    char *url = http ? url_redacted(http) : NULL;

    if (json_object_get(o, "Header"))
        json_object_set_new(o, "Header", json_null());
    if (json_object_get(o, "Body"))
        json_object_set_new(o, "Body", json_string(""));
    if (json_object_get(o, "ScriptArgs"))
        json_object_set_new(o, "ScriptArgs", json_null());
    if (url)
        json_object_set_new(o, "HTTP", json_string(url));
    free(url);
    return o;
}

json_t *reg_render_check(const struct reg_check *c, bool with_secrets)
{
    const struct reg_service *s = c->service_id[0] ? reg_service_get(c->node, c->service_id) : NULL;
    char interval[32] = "", timeout[32] = "";

    if (c->interval_ns)
        duration_format(c->interval_ns, interval, sizeof(interval));
    if (c->timeout_ns)
        duration_format(c->timeout_ns, timeout, sizeof(timeout));
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:i, s:o, s:I, "
        "s:I}",
        "Node", c->node->name, "CheckID", c->id, "Name", c->name, "Status",
        reg_health_name(c->status), "Notes", c->notes, "Output", c->output, "ServiceID",
        c->service_id, "ServiceName", s ? s->name : "", "ServiceTags",
        s ? reg_render_tags(s) : json_array(), "Type", c->type, "Interval", interval, "Timeout",
        timeout, "ExposedPort", 0, "Definition",
        with_secrets ? copy_or_empty(c->definition) : definition_without_secrets(c->definition),
        "CreateIndex", (json_int_t)c->create_index, "ModifyIndex", (json_int_t)c->modify_index);
}

json_t *reg_render_agent_service(const struct reg_service *s, const char *datacenter)
{
    json_t *o = service_head(s);

    json_object_set_new(o, "Meta", copy_or_empty(s->meta));
    json_object_set_new(o, "Port", json_integer(s->port));
    json_object_set_new(o, "Address", json_string(s->address));
    if (s->tagged_addresses && json_object_size(s->tagged_addresses))
        json_object_set_new(o, "TaggedAddresses", json_deep_copy(s->tagged_addresses));
    json_object_set_new(o, "Weights", weights(s));
    json_object_set_new(o, "EnableTagOverride", json_boolean(s->enable_tag_override));
    /* As Consul's agent view: a proxy's configuration, and Connect only for a native service. */
    if (s->proxy && strcmp(s->kind, "connect-proxy") == 0)
        json_object_set_new(o, "Proxy", json_deep_copy(s->proxy));
    if (json_is_true(json_object_get(s->connect, "Native")))
        json_object_set_new(o, "Connect", json_pack("{s:b}", "Native", 1));
    json_object_set_new(o, "Datacenter", json_string(datacenter));
    return o;
}

json_t *reg_render_kv(const struct reg_kv *kv)
{
    json_t *o = json_object();

    json_object_set_new(o, "LockIndex", json_integer((json_int_t)kv->lock_index));
    json_object_set_new(o, "Key", json_string(kv->key));
    json_object_set_new(o, "Flags", json_integer((json_int_t)kv->flags));
    if (kv->value_len) {
        char *b64 = base64_encode(kv->value, kv->value_len);
        json_object_set_new(o, "Value", json_string(b64));
        free(b64);
    } else {
        json_object_set_new(o, "Value", json_null());
    }
    if (kv->session)
        json_object_set_new(o, "Session", json_string(kv->session));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)kv->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)kv->modify_index));
    return o;
}

json_t *reg_render_health_checks(const struct reg_service *s, reg_render_check_fn render,
                                 const void *arg, bool *all_passing)
{
    json_t *list = json_array();
    const struct reg_check **ordered = reg_node_checks_ordered(s->node);

    *all_passing = true;
    for (size_t i = 0; i < s->node->checks.n; i++) {
        const struct reg_check *c = ordered[i];
        if (c->service_id[0] && strcmp(c->service_id, s->id) != 0)
            continue;
        if (c->status != REG_PASSING)
            *all_passing = false;
        json_array_append_new(list, render ? render(c, arg) : reg_render_check(c, false));
    }
    free(ordered);
    return list;
}

json_t *reg_render_health_entry(const struct reg_service *s, json_t *checks)
{
    return json_pack("{s:o, s:o, s:o}", "Node", reg_render_node(s->node), "Service",
                     reg_render_node_service(s), "Checks", checks);
}

const char *reg_render_health_entry_node(const json_t *entry)
{
    const char *name = json_string_value(json_object_get(json_object_get(entry, "Node"), "Node"));
    return name ? name : "";
}

const char *reg_render_entry_node(const json_t *entry)
{
    const char *name = json_string_value(json_object_get(entry, "Node"));
    return name ? name : "";
}
