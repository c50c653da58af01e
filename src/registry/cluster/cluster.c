/*
 * Replicated registry servers: the state machine glue, held answers, forwarding to the leader
 * and lifetime (cluster.h). Formation and membership are in cluster_members.c; the consensus
 * engine is behind replication.h.
 */
#include "registry/cluster/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "lib/duration.h"
#include "lib/file.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/forward.h"
#include "registry/cluster/members.h"
#include "registry/cluster/cluster_internal.h"

#define HOLD_MS       7000 /* a call waits this long for a leader (Consul's rpc_hold_timeout) */
#define HOLD_RETRY_MS 50

/* An answer held until an entry is committed. */
struct held {
    struct held *next;
    struct http_request *req;            /* NULL once the client went away */
    bool write;                          /* answers a write (else a read of the state) */
    struct http_shared_response *answer; /* a reference: watchers share one */
};

/* One log entry: the records of one loop turn, and the answers waiting for them. */
struct batch {
    struct reg_cluster *cl;
    struct list_node link; /* in cl->inflight once proposed */
    struct buf data;
    struct held *held;       /* in the order they were made: a write's own answer goes first, */
    struct held **held_tail; /* before the watchers it woke (&held when none) */
};

static void resync(struct reg_cluster *cl, const char *why);

/*
 * Paths a follower answers itself whatever the method or consistency. Not the member list:
 * nodes announce themselves to the leader, which alone has heard of every one, so a follower
 * asks it (or, with none elected yet, waits for one), as gossip would have told it of all.
 */
static bool answered_locally(const char *path)
{
    return strncmp(path, "/v1/status/", 11) == 0 ||
           strcmp(path, "/v1/operator/raft/configuration") == 0 ||
           strcmp(path, "/v1/internal/mesh/raft/info") == 0 ||
           (strncmp(path, "/v1/agent/", 10) == 0 && strncmp(path, "/v1/agent/force-leave/", 22) &&
            strcmp(path, "/v1/agent/members"));
}

/*
 * The member list, which a follower asks the leader for, it answers from its own view when no
 * leader answers (none elected, or the one it knew cannot be reached): Consul's agents list their
 * own gossip members, leader or not, and a client polling it during an outage gets an answer,
 * not 500 after the wait for a leader.
 */
static bool own_view_without_leader(const char *path)
{
    return strcmp(path, "/v1/agent/members") == 0;
}

/* ---- small helpers ----------------------------------------------------------------------- */

bool reg_cluster_wanted(const struct reg_cluster_ctx *cx)
{
    return cx->cfg->server && !cx->cfg->dev && !cx->cfg->bootstrap && cx->cfg->bootstrap_expect > 1;
}

bool reg_cluster_may_write(const struct reg_cluster_ctx *cx)
{
    if (!cx->replicated)
        return true;
    return reg_repl_leader_ready(cx->replicated->repl) && !cx->replicated->resyncing;
}

void reg_cluster_status(const struct reg_cluster_ctx *cx, struct reg_repl_status *out)
{
    if (!cx->replicated) {
        memset(out, 0, sizeof(*out));
        return;
    }
    reg_repl_status(cx->replicated->repl, out);
}

struct peer *reg_peer_by_id(struct reg_cluster *cl, uint64_t id)
{
    for (size_t i = 0; i < cl->npeers; i++)
        if (cl->peers[i].id == id)
            return &cl->peers[i];
    return NULL;
}

int reg_cluster_server_heard(const struct reg_cluster_ctx *cx, const char *node)
{
    const struct reg_cluster *cl = cx->replicated;
    struct reg_repl_status st;

    if (!cl)
        return -ENOENT;
    /* Probes go out every DISCOVER_FORMED_MS and may take PROBE_TIMEOUT_MS: a server is silent
     * only past a failure timeout beyond the longest wait for its next answer. */
    uint64_t window =
        (uint64_t)(cx->cfg->failure_timeout_ns / DURATION_MS) + REG_CLUSTER_PROBE_PERIOD_MS;
    uint64_t now = uv_now(cx->loop);
    reg_repl_status(cl->repl, &st);
    for (size_t i = 1; i < cl->npeers; i++) {
        const struct peer *p = &cl->peers[i];
        if (strcasecmp(p->node, node) != 0)
            continue;
        if (p->id == st.leader_id && st.role == REG_REPL_FOLLOWER && st.last_contact_ms < window)
            return 1; /* its leader, heard from just now */
        if (p->heard_ms == 0)
            return -ENOENT;
        return now - p->heard_ms < window;
    }
    return -ENOENT;
}

const char *reg_cluster_server_node(const struct reg_cluster_ctx *cx, uint64_t id)
{
    const struct peer *p = cx->replicated ? reg_peer_by_id(cx->replicated, id) : NULL;
    return p && p->node[0] ? p->node : NULL;
}

json_t *reg_cluster_http_servers(const struct reg_cluster_ctx *cx)
{
    struct reg_repl_status st;
    char addr[300];

    if (!cx->replicated)
        return NULL;
    json_t *out = json_array();
    reg_repl_status(cx->replicated->repl, &st);
    for (size_t i = 0; i < st.nservers; i++) {
        const struct peer *p = reg_peer_by_id(cx->replicated, st.servers[i].id);
        if (!p || !p->http_host[0])
            continue;
        snprintf(addr, sizeof(addr), "%s:%d", p->http_host, p->http_port);
        json_array_append_new(out, json_string(addr));
    }
    return out;
}

void reg_cluster_read_headers(const struct reg_cluster_ctx *cx, bool *known_leader,
                              uint64_t *last_contact)
{
    struct reg_repl_status st;

    *known_leader = true;
    *last_contact = 0;
    if (!cx->replicated)
        return;
    reg_repl_status(cx->replicated->repl, &st);
    *known_leader = st.leader_id != 0;
    *last_contact = st.last_contact_ms;
}

/* ---- the state machine ------------------------------------------------------------------- */

/* The table a record changes, for the watchers; each of a batch's records. */
static void notify_record(struct reg_cluster_ctx *cx, const json_t *r)
{
    const char *op = json_string_value(json_object_get(r, "op")) ?: "";
    enum reg_table t = REG_TABLE_CATALOG;
    const json_t *rec;
    size_t i;

    if (strcmp(op, "batch") == 0) {
        json_array_foreach(json_object_get(r, "records"), i, rec)
        {
            notify_record(cx, rec);
        }
        return;
    }

    if (strncmp(op, "kv", 2) == 0)
        t = REG_TABLE_KV;
    else if (strncmp(op, "session", 7) == 0)
        t = REG_TABLE_SESSIONS;
    else if (strncmp(op, "acl", 3) == 0)
        t = REG_TABLE_ACL;
    if (cx->state->on_change)
        cx->state->on_change(t, cx->state->change_data);
}

/* Applies newline-separated JSON records. Returns 0 or -EINVAL. */
static int apply_records(struct reg_cluster *cl, const char *data, size_t len)
{
    struct reg_cluster_ctx *cx = cl->cx;
    int rc = 0;

    cl->applying = true;
    for (size_t i = 0; i < len && rc == 0;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
        json_error_t jerr;
        json_t *r = n ? json_loadb(data + i, n, 0, &jerr) : NULL;
        if (n && (!r || reg_state_apply(cx->state, r) < 0)) {
            log_error("cluster: a committed record cannot be applied: %.*s",
                      (int)(n > 200 ? 200 : n), data + i);
            rc = -EINVAL;
        } else if (r) {
            notify_record(cx, r);
        }
        json_decref(r);
        i += n + 1;
    }
    cl->applying = false;
    return rc;
}

static int fsm_apply(const void *data, size_t len, bool own, void *ctx)
{
    struct reg_cluster *cl = ctx;

    if (own)
        return 0; /* proposed here: its effect is in the state already */
    if (reg_cluster_may_write(cl->cx)) {
        /* A leader only applies its own entries; anything else means its state diverged. */
        resync(cl, "a leader was handed an entry it did not propose");
        return 0;
    }
    return apply_records(cl, data, len);
}

static void emit_line(const json_t *record, void *data)
{
    struct buf *b = data;
    char *json = json_dumps(record, JSON_COMPACT | JSON_MESH_REAL_PRECISION);

    if (!json)
        abort(); /* out of memory only, as x*alloc */
    buf_append_cstr(b, json);
    buf_append(b, "\n", 1);
    free(json);
}

static void fsm_snapshot(struct buf *out, void *ctx)
{
    struct reg_cluster *cl = ctx;
    reg_state_dump(cl->cx->state, emit_line, out);
}

/* Nothing of this server's own is in flight: its state is the applied entries' alone. */
static bool fsm_snapshot_ready(void *ctx)
{
    struct reg_cluster *cl = ctx;

    return !cl->open && list_empty(&cl->inflight);
}

static int fsm_restore(const void *data, size_t len, void *ctx)
{
    struct reg_cluster *cl = ctx;
    struct reg_state *st = cl->cx->state;
    struct reg_state keep = *st;

    /* The whole state is replaced; the hooks the agent installed stay. */
    reg_state_free(st);
    reg_state_init(st);
    st->journal = keep.journal;
    st->journal_data = keep.journal_data;
    st->on_change = keep.on_change;
    st->change_data = keep.change_data;
    st->clock = keep.clock;
    st->clock_data = keep.clock_data;
    int rc = apply_records(cl, data, len);
    for (int t = 0; t < REG_TABLE_COUNT; t++)
        if (st->on_change)
            st->on_change((enum reg_table)t, st->change_data);
    log_info("cluster: state restored from a snapshot (%zu bytes, index %" PRIu64 ")", len,
             st->index);
    return rc;
}

/* Leadership moved: start or stop the leader-only duties. */
static void fsm_leadership(bool leader, bool lost, void *ctx)
{
    struct reg_cluster *cl = ctx;
    struct reg_cluster_ctx *cx = cl->cx;

    if (!leader) {
        if (lost)
            resync(cl, "leadership was lost with writes in flight");
        cx->ops->leadership(cx->agent, false);
        return;
    }
    /* Every entry before this term is applied: the state is the cluster's. */
    cx->ops->leadership(cx->agent, true);
    reg_members_grace(&cx->members);
}

/*
 * A follower announces itself to a leader it has just learned of at once, not a third of the
 * failure timeout later: until then the leader, which alone answers /v1/agent/members, does not
 * list it (docs/replication.md, "Every server in the catalog").
 */
static void fsm_leader_changed(uint64_t leader_id, void *ctx)
{
    struct reg_cluster *cl = ctx;

    if (leader_id != 0 && leader_id != cl->peers[0].id)
        uv_timer_start(&cl->beat, reg_cluster_beat, 0, uv_timer_get_repeat(&cl->beat));
}

static const struct reg_repl_fsm cluster_fsm = {
    .apply = fsm_apply,
    .snapshot = fsm_snapshot,
    .snapshot_ready = fsm_snapshot_ready,
    .restore = fsm_restore,
    .leadership = fsm_leadership,
    .leader_changed = fsm_leader_changed,
};

/* ---- held answers and proposals ---------------------------------------------------------- */

static void held_send(struct held *h, int status)
{
    if (h->req) {
        struct http_request *req = h->req;
        req->on_abort = NULL;
        req->data = NULL;
        if (status == 0) {
            http_respond_shared(req, h->answer);
        } else if (h->write) {
            static const char msg[] = "rpc error: the write was not committed (leadership "
                                      "changed); it may or may not have been applied\n";
            http_respond(req, 500, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
        } else {
            static const char msg[] = "rpc error: leadership changed while this read waited "
                                      "for earlier writes to commit; retry it\n";
            http_respond(req, 500, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
        }
    }
    http_shared_response_unref(h->answer);
    free(h);
}

/* Sends the answers held on b: as made when status is 0, else as their failure. */
static void batch_answer(struct batch *b, int status)
{
    while (b->held) {
        struct held *h = b->held;
        b->held = h->next;
        if (!b->held)
            b->held_tail = &b->held;
        held_send(h, status);
    }
}

static void batch_free(struct batch *b, int status)
{
    batch_answer(b, status);
    buf_free(&b->data);
    free(b);
}

static void on_committed(int status, void *arg)
{
    struct batch *b = arg;
    struct reg_cluster *cl = b->cl;

    list_remove(&b->link);
    if (status < 0)
        log_warn("cluster: an entry of %zu bytes was not committed: %s", b->data.len,
                 strerror(-status));
    batch_free(b, status);
    if (status == -ECANCELED)
        resync(cl, "leadership was lost with writes in flight");
}

static void resume_writes(struct reg_cluster *cl);

/*
 * Before the loop sleeps: this turn's records become one entry. Writes paused for a full log
 * (reg_repl_log_full) run first once its snapshot is taken, and join that entry.
 */
static void on_flush(uv_prepare_t *h)
{
    struct reg_cluster *cl = h->data;
    struct batch *b;

    if (!list_empty(&cl->paused) && !reg_repl_log_full(cl->repl))
        resume_writes(cl);
    b = cl->open;
    if (b) {
        cl->open = NULL;
        int rc = reg_repl_propose(cl->repl, b->data.data, b->data.len, on_committed, b);
        if (rc < 0) {
            batch_free(b, rc);
            resync(cl, "a change could not be proposed");
            return;
        }
        list_insert_tail(&cl->inflight, &b->link);
    }
    if (!list_empty(&cl->paused) && list_empty(&cl->inflight))
        reg_repl_snapshot_nudge(cl->repl); /* the engine asks after an applied entry */
}

/* The state's journal hook: a mutation made here becomes part of this turn's entry. */
static void cluster_journal_cb(const json_t *record, void *data)
{
    struct reg_cluster *cl = data;

    if (cl->applying)
        return;
    if (!reg_cluster_may_write(cl->cx)) {
        char *json = json_dumps(record, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
        log_error("cluster: a change made on a server that does not lead: %s", json ? json : "");
        free(json);
        resync(cl, "its state changed outside the log");
        return;
    }
    if (!cl->open) {
        cl->open = xcalloc(1, sizeof(*cl->open));
        cl->open->cl = cl;
        cl->open->held_tail = &cl->open->held;
    }
    emit_line(record, &cl->open->data);
}

static void on_held_abort(struct http_request *req)
{
    struct held *h = req->data;
    h->req = NULL;
}

/* The batch whose commit covers every change made so far: this turn's, else the newest. */
static struct batch *last_batch(const struct reg_cluster *cl)
{
    return cl->open ? cl->open : LIST_ENTRY(list_last(&cl->inflight), struct batch, link);
}

bool reg_cluster_must_hold(const struct reg_cluster_ctx *cx, const char *path, bool write,
                           int status)
{
    const struct reg_cluster *cl = cx->replicated;

    /*
     * The leader changes its state before the entry holding the change commits, so an answer
     * made now may show a change the cluster never takes: a write's own effect, or a read (a
     * blocking query woken by the change, a failed CAS) of someone else's. Entries commit in
     * order, so holding it until the newest entry commits covers every change it could show.
     * A read that failed on the server's side ("No cluster leader") shows none: it goes now.
     */
    if (!cl || (!write && (answered_locally(path) || status >= 500)))
        return false;
    return last_batch(cl) != NULL;
}

void reg_cluster_hold(struct reg_cluster_ctx *cx, struct http_request *req, bool write,
                      struct http_shared_response *answer)
{
    struct batch *b = cx->replicated ? last_batch(cx->replicated) : NULL;

    if (MESH_BUG_ON(!b)) { /* reg_cluster_must_hold() said there was one */
        http_respond_shared(req, answer);
        return;
    }
    struct held *h = xcalloc(1, sizeof(*h));
    h->req = req;
    h->write = write;
    h->answer = http_shared_response_ref(answer);
    *b->held_tail = h;
    b->held_tail = &h->next;
    req->data = h;
    req->on_abort = on_held_abort;
}

/* ---- writes paused for a snapshot -------------------------------------------------------- */

/*
 * The engine keeps the log since the last snapshot in memory, and the leader may snapshot only
 * a state that is the applied entries' alone (fsm_snapshot_ready), which writes that never
 * pause never give it. Once its log is full (reg_repl_log_full), a write waits before it runs:
 * the entries in flight commit, the engine asks for the snapshot after the last is applied,
 * and the snapshot is taken of the state as it stands then (a fork: a millisecond or two); the
 * writes then run, in the order they came, before the loop next sleeps. None is lost: a write
 * waits the time of a commit and a fork, and a server that loses leadership meanwhile answers
 * it 500, as any call waiting for a leader.
 *
 * A snapshot that cannot be stored (a full or read-only disk) or never ends (a stalled disk)
 * would keep them waiting for ever: a write waits at most until its hold_until (HOLD_MS after
 * it came, Consul's rpc_hold_timeout), then is answered what Consul's leader answers a write
 * it could not enqueue in time, and the log says why.
 */
struct paused {
    struct list_node link; /* in cl->paused, oldest first: their deadlines come in that order */
    struct reg_api_call *call;
};

static void arm_paused_deadline(struct reg_cluster *cl);

/* The client went away: its write leaves the queue unanswered. */
static void on_paused_abort(struct http_request *req)
{
    struct paused *p = req->data;

    list_remove(&p->link);
    reg_api_call_free(p->call);
    free(p);
}

static void pause_write(struct reg_cluster *cl, struct reg_api_call *c)
{
    struct paused *p = xcalloc(1, sizeof(*p));
    bool first = list_empty(&cl->paused);

    p->call = c;
    c->req->data = p;
    c->req->on_abort = on_paused_abort;
    list_insert_tail(&cl->paused, &p->link);
    if (first)
        arm_paused_deadline(cl);
}

/* What keeps the log full, for the log line of writes that waited too long. */
static void describe_stall(const struct reg_repl_status *st, char *out, size_t len)
{
    int n = snprintf(out, len, "%" PRIu64 " entries past the snapshot at index %" PRIu64,
                     st->last_index - st->snapshot_index, st->snapshot_index);

    if (n < 0 || (size_t)n >= len)
        return;
    if (st->snapshot_failed == -ECHILD) /* replication.c's mark of a writer that died */
        snprintf(out + n, len - (size_t)n, "; the last snapshot failed: its writer died");
    else if (st->snapshot_failed < 0)
        snprintf(out + n, len - (size_t)n, "; the last snapshot failed: %s",
                 strerror(-st->snapshot_failed));
    else if (st->snapshot_taking)
        snprintf(out + n, len - (size_t)n, "; a snapshot is still being written");
}

/* The oldest paused writes waited until their deadline: each is answered 500. */
static void on_paused_deadline(uv_timer_t *t)
{
    struct reg_cluster *cl = t->data;
    uint64_t now = uv_now(t->loop);
    struct reg_repl_status st;
    size_t n = 0;
    char why[256];

    while (!list_empty(&cl->paused)) {
        struct paused *p = LIST_ENTRY(list_first(&cl->paused), struct paused, link);
        struct reg_api_call *c = p->call;
        if (c->hold_until > now)
            break;
        list_remove(&p->link);
        free(p);
        c->req->on_abort = NULL;
        c->req->data = NULL;
        reg_api_error(c, 500, "timed out enqueuing operation"); /* hashicorp/raft's text */
        n++;
    }
    if (n > 0) {
        reg_repl_status(cl->repl, &st);
        describe_stall(&st, why, sizeof(why));
        log_error("cluster: %zu write%s waited %d ms for the snapshot a full log needs (%s); "
                  "answered 500",
                  n, n == 1 ? "" : "s", HOLD_MS, why);
    }
    arm_paused_deadline(cl);
}

/* Times the oldest paused write's deadline; with none paused, nothing. */
static void arm_paused_deadline(struct reg_cluster *cl)
{
    if (list_empty(&cl->paused)) {
        uv_timer_stop(&cl->paused_deadline);
        return;
    }
    const struct paused *p = LIST_ENTRY(list_first(&cl->paused), struct paused, link);
    uint64_t now = uv_now(cl->cx->loop);
    uint64_t at = p->call->hold_until;

    uv_timer_start(&cl->paused_deadline, on_paused_deadline, at > now ? at - now : 0, 0);
}

/*
 * Takes the paused writes off the queue and gives each call, in order, to fn. The queue is
 * emptied first: a write fn serves may find the log full again and queue itself anew, behind
 * the writes paused after it.
 */
static void drain_paused(struct reg_cluster *cl,
                         void (*fn)(struct reg_cluster *cl, struct reg_api_call *c))
{
    struct list_node taken;
    struct paused *p;

    list_init(&taken);
    LIST_FOR_EACH(p, &cl->paused, link) {
        list_remove(&p->link);
        list_insert_tail(&taken, &p->link);
    }
    uv_timer_stop(&cl->paused_deadline);
    LIST_FOR_EACH(p, &taken, link) {
        struct reg_api_call *c = p->call;

        list_remove(&p->link);
        free(p);
        c->req->on_abort = NULL;
        c->req->data = NULL;
        fn(cl, c);
    }
}

static void serve_or_route(struct reg_cluster *cl, struct reg_api_call *c);

static void resume_writes(struct reg_cluster *cl)
{
    drain_paused(cl, serve_or_route);
}

static void fail_paused(struct reg_cluster *cl, struct reg_api_call *c)
{
    (void)cl;
    reg_api_error(c, 500, "No cluster leader"); /* Consul's text: clients retry on it */
}

/* ---- resync ------------------------------------------------------------------------------ */

/* Every held answer becomes its failure now: the exec that follows would only drop them. */
static void fail_held_answers(struct reg_cluster *cl)
{
    struct batch *b;

    LIST_FOR_EACH(b, &cl->inflight, link)
        batch_answer(b, -ECANCELED);
    if (cl->open)
        batch_answer(cl->open, -ECANCELED);
    drain_paused(cl, fail_paused);
}

/*
 * The state may hold effects the log will never have. The server restarts itself with the same
 * command line and rebuilds its state from its log, as after a crash; its sockets are
 * close-on-exec.
 */
static void resync(struct reg_cluster *cl, const char *why)
{
    struct buf cmd = BUF_INIT;
    char *argv[256];
    int fd, argc = 0;

    if (cl->resyncing || cl->stopping)
        return;
    cl->resyncing = true;
    log_error("cluster: %s; restarting to rebuild the state from the replicated log", why);
    fail_held_answers(cl);
    cl->cx->ops->restarting(cl->cx->agent);
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || file_read_all(fd, &cmd) < 0 || cmd.len == 0) {
        log_error("cluster: cannot read the command line; exiting");
        _exit(1);
    }
    close(fd);
    for (size_t i = 0; i < cmd.len && argc < (int)ARRAY_LEN(argv) - 1;
         i += strlen(cmd.data + i) + 1)
        argv[argc++] = cmd.data + i;
    argv[argc] = NULL;
    execv("/proc/self/exe", argv);
    log_error("cluster: exec: %s; exiting", strerror(errno));
    _exit(1);
}

/* ---- forwarding to the leader ------------------------------------------------------------ */

/* A call waiting for a leader to be elected (or to finish taking over). */
struct hold {
    struct reg_cluster *cl;
    struct reg_api_call *call; /* NULL once the client went away */
    uv_timer_t timer;
};

static void hold_call(struct reg_cluster *cl, struct reg_api_call *c);

/*
 * The leader could not be reached (killed, or cut off, before this server noticed): the call
 * waits for the next leader like one that arrived with none known.
 */
static bool on_leader_unreachable(struct reg_api_call *c, void *data)
{
    struct reg_cluster *cl = data;

    if (cl->stopping || uv_now(cl->cx->loop) >= c->hold_until)
        return false;
    if (own_view_without_leader(c->path))
        reg_api_call_resume(c);
    else
        hold_call(cl, c);
    return true;
}

static void on_wait_abort(struct http_request *req)
{
    struct engine_wait *w = req->data;
    struct reg_api_call *c = w->call;

    w->call = NULL;
    reg_api_call_free(c);
}

struct engine_wait *reg_engine_wait_new(struct reg_cluster *cl, struct reg_api_call *c)
{
    struct engine_wait *w = xcalloc(1, sizeof(*w));

    w->cl = cl;
    w->call = c;
    c->req->data = w;
    c->req->on_abort = on_wait_abort;
    return w;
}

struct reg_api_call *reg_engine_wait_end(struct engine_wait *w)
{
    struct reg_api_call *c = w->call;

    free(w);
    if (c) {
        c->req->on_abort = NULL;
        c->req->data = NULL;
    }
    return c;
}

/* A ?consistent read's barrier completed (or failed: this server no longer leads). */
static void on_confirmed(int status, void *arg)
{
    struct reg_cluster *cl = ((struct engine_wait *)arg)->cl;
    struct reg_api_call *c = reg_engine_wait_end(arg);

    if (!c)
        return;
    if (status == 0)
        reg_api_call_resume(c);
    else if (!on_leader_unreachable(c, cl)) /* it no longer leads: wait for who does */
        reg_api_error(c, 500, "No cluster leader");
}

/*
 * Serves a call this server may answer: a ?consistent read only once a barrier committed by a
 * majority shows that no other leader was elected meanwhile (Consul's leadership check).
 */
static void serve_here(struct reg_cluster *cl, struct reg_api_call *c)
{
    if (c->route->write || !reg_api_query_has(c, "consistent")) {
        reg_api_call_resume(c);
        return;
    }
    struct engine_wait *w = reg_engine_wait_new(cl, c);
    if (reg_repl_barrier(cl->repl, on_confirmed, w) < 0)
        hold_call(cl, reg_engine_wait_end(w));
}

/* Where a call goes now: 1 answered here, 0 forwarded (or answered), -EAGAIN no leader yet. */
static int route_call(struct reg_cluster *cl, struct reg_api_call *c)
{
    struct reg_repl_status st;

    reg_repl_status(cl->repl, &st);
    if (st.leader_ready && !cl->resyncing)
        return 1;
    const struct peer *p = st.leader_id ? reg_peer_by_id(cl, st.leader_id) : NULL;
    if (!p || !p->http_host[0] || st.role == REG_REPL_LEADER || cl->resyncing)
        return -EAGAIN;
    reg_forward_to(cl->cx, c, p->http_host, p->http_port, cl->https, on_leader_unreachable, cl);
    return 0;
}

static void on_hold_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_hold_abort(struct http_request *req)
{
    struct hold *h = req->data;
    struct reg_api_call *c = h->call;

    h->call = NULL;
    reg_api_call_free(c);
}

static void on_hold_timer(uv_timer_t *t)
{
    struct hold *h = t->data;
    struct reg_api_call *c = h->call;
    int rc = 1;

    if (c && !h->cl->stopping) {
        c->req->on_abort = NULL;
        c->req->data = NULL;
        rc = route_call(h->cl, c);
        if (rc == -EAGAIN && uv_now(t->loop) < c->hold_until) {
            c->req->on_abort = on_hold_abort;
            c->req->data = h;
            return; /* the repeating timer tries again */
        }
        h->call = NULL;
        if (rc == 1)
            serve_here(h->cl, c);
        else if (rc == -EAGAIN)
            reg_api_error(c, 500, "No cluster leader"); /* Consul's text: clients retry on it */
    } else if (c) {
        c->req->on_abort = NULL;
        h->call = NULL;
        reg_api_error(c, 500, "No cluster leader");
    }
    uv_close((uv_handle_t *)t, on_hold_closed);
}

/* Parks c until a leader is known (or its hold_until passes). */
static void hold_call(struct reg_cluster *cl, struct reg_api_call *c)
{
    struct hold *h = xcalloc(1, sizeof(*h));

    h->cl = cl;
    h->call = c;
    uv_timer_init(cl->cx->loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_hold_timer, HOLD_RETRY_MS, HOLD_RETRY_MS);
    c->req->data = h;
    c->req->on_abort = on_hold_abort;
}

/* Sends c where it goes now: served here, forwarded to the leader, or held for one. */
static void serve_or_route(struct reg_cluster *cl, struct reg_api_call *c)
{
    int rc = route_call(cl, c);

    if (rc == 1)
        serve_here(cl, c);
    else if (rc == -EAGAIN)
        hold_call(cl, c);
}

/*
 * A ?stale read is answered here unless ?max_stale is given and this server heard from a leader
 * longer ago than that: then the leader answers it (Consul's max_stale).
 */
static bool fresh_enough(struct reg_cluster *cl, const struct reg_api_call *c)
{
    const char *max = reg_api_query(c, "max_stale");
    struct reg_repl_status st;
    int64_t ns;

    if (!max || !max[0] || duration_parse(str_from(max), &ns) < 0)
        return true;
    reg_repl_status(cl->repl, &st);
    return st.last_contact_ms <= (uint64_t)(ns / DURATION_MS);
}

bool reg_cluster_forward(struct reg_cluster_ctx *cx, struct reg_api_call *c, bool write)
{
    struct reg_cluster *cl = cx->replicated;

    if (!cl)
        return false;
    if (write && (strncmp(c->path, "/v1/agent/service/", 18) == 0 ||
                  strncmp(c->path, "/v1/agent/check/", 16) == 0)) {
        /* Their check runners would write from whichever server ran them, leader or not. */
        reg_api_error(c, 500,
                      "services and checks cannot be registered on a server of a replicated "
                      "cluster: register them through a client agent, or through "
                      "/v1/catalog/register");
        return true;
    }
    if (answered_locally(c->path))
        return false;
    if (!write && reg_api_query_has(c, "stale") && fresh_enough(cl, c))
        return false;
    c->hold_until = uv_now(cx->loop) + HOLD_MS;
    int rc = route_call(cl, c);
    if (rc == -EAGAIN && !write && own_view_without_leader(c->path))
        return false;
    if (rc == 1 && write && (!list_empty(&cl->paused) || reg_repl_log_full(cl->repl))) {
        pause_write(cl, c); /* after those paused before it */
        return true;
    }
    if (rc == 1 && (write || !reg_api_query_has(c, "consistent")))
        return false;
    if (rc == 1)
        serve_here(cl, c);
    else if (rc == -EAGAIN)
        hold_call(cl, c);
    return true;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

/* Refuses a data dir that holds a single server's journal (see docs/replication.md). */
static int check_data_dir(const struct reg_cluster_ctx *cx, struct err *e)
{
    const char *files[] = {"journal.log", "snapshot.json"};
    struct stat sb;
    char path[4096];

    if (!cx->cfg->data_dir)
        return err_set(e,
                       "-bootstrap-expect %d needs -data-dir: a replicated server keeps its "
                       "log on disk",
                       cx->cfg->bootstrap_expect);
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", cx->cfg->data_dir, files[i]);
        if (stat(path, &sb) == 0)
            return err_set(e,
                           "%s holds a single server's state (%s); a server of a replicated "
                           "cluster (-bootstrap-expect %d) keeps its state in %s/raft and "
                           "cannot take it over: start the cluster on empty data directories "
                           "and copy the data through the API, or keep running this server "
                           "alone (-bootstrap)",
                           cx->cfg->data_dir, files[i], cx->cfg->bootstrap_expect,
                           cx->cfg->data_dir);
    }
    if (cx->cfg->nservices > 0)
        return err_set(e, "services in configuration files are not supported on a server of a "
                          "replicated cluster; register them through a client agent");
    return 0;
}

int reg_cluster_check_single_data_dir(const char *data_dir, struct err *e)
{
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/raft", data_dir);
    if (!reg_repl_dir_used(dir))
        return 0;
    return err_set(e,
                   "%s holds the replicated log of a server of a cluster (in %s), not a single "
                   "server's state: start it with -bootstrap-expect as before, or give this "
                   "agent another -data-dir",
                   data_dir, dir);
}

int reg_cluster_start(struct reg_cluster_ctx *cx, struct err *e)
{
    struct reg_cluster *cl;
    char dir[4096], addr[REG_REPL_ADDR_MAX];
    int rc = check_data_dir(cx, e);

    if (rc < 0)
        return rc;
    const char *bind = cx->cfg->bind_addr && strcmp(cx->cfg->bind_addr, "0.0.0.0") != 0
                           ? cx->cfg->bind_addr
                           : "127.0.0.1";
    snprintf(addr, sizeof(addr), "%s:%d", bind, cx->cfg->server_port);
    snprintf(dir, sizeof(dir), "%s/raft", cx->cfg->data_dir);
    cl = xcalloc(1, sizeof(*cl));
    cl->cx = cx;
    list_init(&cl->inflight);
    list_init(&cl->paused);
    struct reg_repl_config rc_cfg = {
        .dir = dir,
        .id = reg_repl_id_for(cx->cfg->node_name),
        .address = addr,
        .snapshot_threshold = (unsigned)cx->cfg->raft_snapshot_threshold,
        .fsm = &cluster_fsm,
        .ctx = cl,
    };
    rc = reg_repl_open(&cl->repl, cx->loop, &rc_cfg, e);
    if (rc < 0) {
        free(cl);
        return rc;
    }
    cx->replicated = cl;
    uv_timer_init(cx->loop, &cl->paused_deadline);
    cl->paused_deadline.data = cl;
    struct peer *self = &cl->peers[cl->npeers++];
    self->id = rc_cfg.id;
    snprintf(self->node, sizeof(self->node), "%s", cx->cfg->node_name);
    snprintf(self->raft_addr, sizeof(self->raft_addr), "%s", addr);
    /* Where the others and client agents reach this server's API: a wildcard listen address
     * names no host, so the replication address stands in for it. */
    const char *http = cx->cfg->client_addr;
    if (strcmp(http, "0.0.0.0") == 0 || strcmp(http, "::") == 0)
        http = bind;
    snprintf(self->http_host, sizeof(self->http_host), "%s", http);
    /* With no plain HTTP listener (-http-port -1, as `mesh up -secure`), the API is HTTPS. */
    cl->https = cx->cfg->http_port <= 0 && cx->cfg->https_port > 0;
    self->http_port = cl->https ? cx->cfg->https_port : cx->cfg->http_port;
    cx->state->journal = cluster_journal_cb;
    cx->state->journal_data = cl;
    uv_prepare_init(cx->loop, &cl->flush);
    cl->flush.data = cl;
    uv_prepare_start(&cl->flush, on_flush);
    uv_timer_init(cx->loop, &cl->discover);
    cl->discover.data = cl;
    /* Every handle reg_cluster_stop closes is initialised before the start can fail. */
    uv_timer_init(cx->loop, &cl->beat);
    cl->beat.data = cl;
    if (reg_repl_has_state(cl->repl)) {
        rc = reg_repl_start(cl->repl, NULL, 0, e);
        if (rc < 0)
            return rc;
    }
    uv_timer_start(&cl->discover, reg_cluster_discover, 0, DISCOVER_MS);
    /* A third of the failure timeout, as client agents: one lost beat does not fail it. */
    uint64_t beat_ms = (uint64_t)(cx->cfg->failure_timeout_ns / DURATION_MS / 3);
    uv_timer_start(&cl->beat, reg_cluster_beat, beat_ms, beat_ms > 100 ? beat_ms : 100);
    log_info("cluster: server %s, replication on %s, expecting %d servers", cx->cfg->node_name,
             addr, cx->cfg->bootstrap_expect);
    return 0;
}

static void cluster_closed_one(struct reg_cluster *cl)
{
    if (--cl->closes_pending == 0)
        free(cl);
}

static void on_repl_closed(void *arg)
{
    cluster_closed_one(arg);
}

static void on_cluster_handle_closed(uv_handle_t *h)
{
    cluster_closed_one(h->data);
}

void reg_cluster_stop(struct reg_cluster_ctx *cx)
{
    struct reg_cluster *cl = cx->replicated;

    if (!cl)
        return;
    cl->stopping = true;
    drain_paused(cl, fail_paused);
    if (cl->open) {
        batch_free(cl->open, -ECANCELED);
        cl->open = NULL;
    }
    cx->state->journal = NULL;
    cx->state->journal_data = NULL;
    cl->closes_pending = 5;
    reg_repl_close(cl->repl, on_repl_closed, cl);
    uv_close((uv_handle_t *)&cl->paused_deadline, on_cluster_handle_closed);
    uv_close((uv_handle_t *)&cl->flush, on_cluster_handle_closed);
    uv_close((uv_handle_t *)&cl->discover, on_cluster_handle_closed);
    uv_close((uv_handle_t *)&cl->beat, on_cluster_handle_closed);
    cx->replicated = NULL;
}
