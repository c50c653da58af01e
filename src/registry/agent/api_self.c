/*
 * The agent describing itself: /v1/agent/self (Config, DebugConfig, Stats), /v1/agent/host,
 * /v1/agent/version and /v1/agent/metrics. Stats are built one section per function, so a
 * new fact (the Raft layer's leader and terms) is one more field in its section.
 */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/duration.h"
#include "lib/file.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/cluster.h"
#include "registry/cluster/members.h"
#include "registry/agent/metrics.h"
#include "registry/agent/sync.h"

#define BUILD_DATE "2026-11-27T00:00:00Z"

/* Consul reports counts and flags in Stats as strings. */
static void set_u64(json_t *o, const char *k, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    json_object_set_new(o, k, json_string(text));
}

static void set_bool(json_t *o, const char *k, bool v)
{
    json_object_set_new(o, k, json_string(v ? "true" : "false"));
}

/* Go's GOARCH for the machine uname(2) reports. */
static const char *go_arch(const char *machine)
{
    if (strcmp(machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(machine, "aarch64") == 0)
        return "arm64";
    if (strcmp(machine, "i686") == 0 || strcmp(machine, "i386") == 0)
        return "386";
    return machine;
}

/*
 * What the Raft engine knows (cluster.h) on a replicated server; a single server is its own
 * leader at the registry's index, on its server port.
 */
static void raft_facts(const struct reg_agent *a, struct reg_repl_status *st)
{
    if (a->cluster.replicated) {
        reg_cluster_status(&a->cluster, st);
        return;
    }
    const struct reg_node *node = reg_node_get(&a->state, a->cfg.node_name);
    memset(st, 0, sizeof(*st));
    st->role = REG_REPL_LEADER;
    st->term = 1;
    st->commit_index = st->applied_index = st->last_index = a->state.index;
    snprintf(st->leader_address, sizeof(st->leader_address), "%s:%d",
             node ? node->address : "127.0.0.1", a->cfg.server_port);
    st->nservers = 1;
}

static json_t *stats_agent(const struct reg_agent *a)
{
    /* A follower's own node may not be in its catalog yet (the leader registers it). */
    const struct reg_node *n = reg_agent_local_node((struct reg_agent *)a);
    uint64_t ttls = 0, monitors = 0, checks = 0, services = 0;
    json_t *o = json_object();

    /* The agent's own registrations: a server's "consul" service and serfHealth belong to
     * the cluster, as in Consul's local state. */
    smap_foreach(&n->checks, e)
    {
        const struct reg_check *c = e->val;
        if (strcmp(c->id, "serfHealth") == 0)
            continue;
        checks++;
        if (strcmp(c->type, "ttl") == 0)
            ttls++;
        else if (c->type[0])
            monitors++;
    }
    smap_foreach(&n->services, e) services += !reg_agent_builtin_service(a, e->key);
    set_u64(o, "check_monitors", monitors);
    set_u64(o, "check_ttls", ttls);
    set_u64(o, "checks", checks);
    set_u64(o, "services", services);
    return o;
}

static json_t *stats_consul(const struct reg_agent *a)
{
    json_t *o = json_object();
    struct reg_repl_status st;

    set_bool(o, "acl", a->cfg.acl_enabled);
    if (!a->cfg.server) {
        set_u64(o, "known_servers", reg_sync_known_servers((struct reg_agent *)a));
        set_bool(o, "server", false);
        return o;
    }
    raft_facts(a, &st);
    set_bool(o, "bootstrap", a->cfg.bootstrap);
    set_u64(o, "known_datacenters", 1);
    set_bool(o, "leader", st.role == REG_REPL_LEADER);
    json_object_set_new(o, "leader_addr", json_string(st.leader_address));
    set_bool(o, "server", true);
    return o;
}

static json_t *stats_raft(const struct reg_agent *a)
{
    static const char *const roles[] = {"Shutdown", "Follower", "Candidate", "Leader"};
    struct reg_repl_status st;
    json_t *o = json_object();

    raft_facts(a, &st);
    set_u64(o, "applied_index", st.applied_index);
    set_u64(o, "commit_index", st.commit_index);
    set_u64(o, "last_log_index", st.last_index);
    set_u64(o, "last_log_term", st.term);
    set_u64(o, "last_snapshot_index", st.snapshot_index);
    set_u64(o, "fsm_pending", 0);
    set_u64(o, "last_contact", st.last_contact_ms);
    set_u64(o, "num_peers", st.nservers ? st.nservers - 1 : 0);
    set_u64(o, "protocol_version", 3);
    json_object_set_new(o, "state", json_string(roles[st.role <= REG_REPL_LEADER ? st.role : 0]));
    set_u64(o, "term", st.term);
    return o;
}

static json_t *stats_runtime(void)
{
    struct utsname u;
    json_t *o = json_object();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (uname(&u) < 0)
        strcpy(u.machine, "unknown");
    json_object_set_new(o, "arch", json_string(go_arch(u.machine)));
    set_u64(o, "cpu_count", cpus > 0 ? (uint64_t)cpus : 1);
    set_u64(o, "max_procs", 1); /* one loop thread */
    json_object_set_new(o, "os", json_string("linux"));
    json_object_set_new(o, "version", json_string("meshkit " MESH_VERSION));
    return o;
}

static json_t *stats_serf_lan(const struct reg_agent *a)
{
    uint64_t by_status[REG_MEMBER_FAILED + 1] = {0};
    json_t *o = json_object();

    by_status[REG_MEMBER_ALIVE] = 1; /* this agent */
    smap_foreach(&a->cluster.members.by_name, e)
    {
        const struct reg_member *mb = e->val;
        by_status[mb->status]++;
    }
    set_u64(o, "members", 1 + a->cluster.members.by_name.n);
    set_u64(o, "failed", by_status[REG_MEMBER_FAILED]);
    set_u64(o, "left", by_status[REG_MEMBER_LEFT]);
    return o;
}

static json_t *agent_stats(const struct reg_agent *a)
{
    json_t *o = json_object();

    json_object_set_new(o, "agent", stats_agent(a));
    json_object_set_new(o, "build",
                        json_pack("{s:s, s:s, s:s, s:s}", "prerelease", "", "revision", "meshkit",
                                  "version", MESH_VERSION, "version_metadata", ""));
    json_object_set_new(o, "consul", stats_consul(a));
    if (a->cfg.server)
        json_object_set_new(o, "raft", stats_raft(a));
    json_object_set_new(o, "runtime", stats_runtime());
    json_object_set_new(o, "serf_lan", stats_serf_lan(a));
    return o;
}

static json_t *string_list(const struct flag_list *l)
{
    json_t *v = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(v, json_string(l->items[i]));
    return v;
}

/* Consul's sanitized runtime configuration: the fields clients read, durations as Go
 * prints them. */
static json_t *debug_config(const struct reg_agent *a)
{
    const struct reg_settings *cfg = &a->cfg;
    char ttl_min[32];

    duration_format(REG_SESSION_TTL_MIN_NS, ttl_min, sizeof(ttl_min));
    json_t *o = json_pack(
        "{s:b, s:s, s:s, s:b, s:[s], s:s, s:s, s:i, s:s, s:b, s:b, s:i, s:i, s:s, s:s, s:s}",
        "ACLsEnabled", cfg->acl_enabled, "ACLDefaultPolicy",
        cfg->acl_default_policy ? cfg->acl_default_policy : "allow", "BindAddr",
        cfg->bind_addr ? cfg->bind_addr : "", "Bootstrap", cfg->bootstrap, "ClientAddrs",
        cfg->client_addr, "DataDir", cfg->data_dir ? cfg->data_dir : "", "Datacenter",
        cfg->datacenter, "DNSPort", cfg->dns_port, "DNSDomain", cfg->domain, "EnableScriptChecks",
        cfg->enable_script_checks, "EnableLocalScriptChecks", cfg->enable_local_script_checks,
        "HTTPPort", cfg->http_port, "HTTPSPort", cfg->https_port ? cfg->https_port : -1, "NodeID",
        a->node_id, "NodeName", cfg->node_name, "PrimaryDatacenter", cfg->datacenter);
    json_object_set_new(o, "Revision", json_string("meshkit"));
    json_object_set_new(o, "RetryJoinLAN", string_list(&cfg->retry_join));
    json_object_set_new(o, "StartJoinAddrsLAN", string_list(&cfg->start_join));
    json_object_set_new(o, "ServerMode", json_boolean(cfg->server));
    json_object_set_new(o, "SessionTTLMin", json_string(ttl_min));
    json_object_set_new(o, "UIConfig", json_pack("{s:b}", "Enabled", cfg->ui));
    json_object_set_new(o, "Version", json_string(MESH_VERSION));
    return o;
}

void reg_api_agent_self(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_agent *a = c->api->agent;
    json_t *self = json_object();

    json_object_set_new(self, "Config",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s}", "Datacenter",
                                  a->cfg.datacenter, "PrimaryDatacenter", a->cfg.datacenter,
                                  "NodeName", a->cfg.node_name, "NodeID", a->node_id, "Revision",
                                  "meshkit", "Server", a->cfg.server, "Version", MESH_VERSION,
                                  "BuildDate", BUILD_DATE));
    json_object_set_new(self, "DebugConfig", debug_config(a));
    json_object_set_new(self, "Coord", reg_coord_json(&a->vivaldi.coord));
    json_object_set_new(self, "Member", reg_members_local(&a->cluster));
    json_object_set_new(self, "Stats", agent_stats(a));
    json_object_set_new(self, "Meta", json_pack("{s:s}", "consul-network-segment", ""));
    reg_api_result_json(c, res, self);
}

void reg_api_agent_version(struct reg_api_call *c, struct reg_api_result *res)
{
    reg_api_result_json(c, res,
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "SDKVersion", "", "BuildDate",
                                  BUILD_DATE, "HumanVersion", MESH_VERSION, "Revision", "meshkit",
                                  "FIPS", ""));
}

void reg_api_agent_metrics(struct reg_api_call *c, struct reg_api_result *res)
{
    const char *format = reg_api_query(c, "format");

    if (format && strcmp(format, "prometheus") == 0) {
        buf_reset(&res->body);
        reg_metrics_prometheus(c->api->agent, &res->body);
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return;
    }
    reg_api_result_json(c, res, reg_metrics_json(c->api->agent));
}

/* ---- /v1/agent/host ---------------------------------------------------------------------- */

static json_t *host_memory(void)
{
    struct sysinfo si;

    if (sysinfo(&si) < 0)
        return json_object();
    uint64_t unit = si.mem_unit ? si.mem_unit : 1;
    uint64_t total = si.totalram * unit, free_ = si.freeram * unit;
    uint64_t buffers = si.bufferram * unit, used = total - free_ - buffers;
    return json_pack("{s:I, s:I, s:I, s:f, s:I, s:I}", "total", (json_int_t)total, "available",
                     (json_int_t)(free_ + buffers), "used", (json_int_t)used, "usedPercent",
                     total ? 100.0 * (double)used / (double)total : 0.0, "free", (json_int_t)free_,
                     "buffers", (json_int_t)buffers);
}

static json_t *host_info(void)
{
    struct utsname u;
    struct sysinfo si;
    char host[256] = "";

    gethostname(host, sizeof(host) - 1);
    if (uname(&u) < 0)
        memset(&u, 0, sizeof(u));
    if (sysinfo(&si) < 0)
        memset(&si, 0, sizeof(si));
    return json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s}", "hostname", host, "uptime",
                     (json_int_t)si.uptime, "bootTime", (json_int_t)(time(NULL) - si.uptime),
                     "procs", (json_int_t)si.procs, "os", "linux", "kernelVersion", u.release,
                     "kernelArch", u.machine, "platform", u.sysname);
}

static json_t *host_disk(const char *path)
{
    struct statvfs v;

    if (statvfs(path, &v) < 0)
        return json_object();
    uint64_t total = (uint64_t)v.f_blocks * v.f_frsize, free_ = (uint64_t)v.f_bavail * v.f_frsize;
    uint64_t used = total - (uint64_t)v.f_bfree * v.f_frsize;
    return json_pack("{s:s, s:I, s:I, s:I, s:f}", "path", path, "total", (json_int_t)total, "free",
                     (json_int_t)free_, "used", (json_int_t)used, "usedPercent",
                     used + free_ ? 100.0 * (double)used / (double)(used + free_) : 0.0);
}

/* One entry per CPU, as gopsutil's cpu.Info lists them (the fields /proc/cpuinfo gives). */
static json_t *host_cpus(void)
{
    json_t *list = json_array();
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    for (long i = 0; i < (n > 0 ? n : 1); i++)
        json_array_append_new(list, json_pack("{s:i, s:i}", "cpu", (int)i, "cores", 1));
    return list;
}

void reg_api_agent_host(struct reg_api_call *c, struct reg_api_result *res)
{
    const char *dir = c->api->agent->cfg.data_dir ? c->api->agent->cfg.data_dir : "/";
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    reg_api_result_json(
        c, res,
        json_pack("{s:o, s:o, s:o, s:o, s:I, s:n}", "Memory", host_memory(), "CPU", host_cpus(),
                  "Host", host_info(), "Disk", host_disk(dir), "CollectionTime",
                  (json_int_t)ts.tv_sec * 1000000000 + (json_int_t)ts.tv_nsec, "Errors"));
}
