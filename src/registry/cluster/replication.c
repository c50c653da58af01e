/*
 * The registry's replicated log on canonical raft 0.15 with its libuv I/O back end.
 *
 * Entries are framed here: 8 bytes of the proposing process's incarnation (random per start, so
 * a server knows its own proposals when they come back through apply), 8 bytes of payload
 * length, the payload, then zero padding to a multiple of 8 bytes, which raft_uv 0.15 requires
 * of every entry (it asserts, and aborts, otherwise). Entry and snapshot buffers handed to the
 * engine come from raft_malloc, as it frees them with raft_free.
 *
 * 0.15 has no state-change callback, so a timer polls raft_state(). On becoming leader the
 * server issues a barrier and serves writes only once it completes: the barrier commits an entry
 * of the new term, which is the Raft paper's no-op rule (0.17 added it to the engine itself).
 */
#include "registry/cluster/replication.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/file.h"
#include "lib/fork_worker.h"
#include "lib/log.h"
#include "registry/cluster/open_segment.h"

#define REPL_POLL_MS           50
#define REPL_FRAME_HDR         16
#define REPL_SNAPSHOT_RETRY_MS 1000 /* after a snapshot writer failed */
#define SNAPSHOT_NICE          10   /* the snapshot writer's niceness: below the loops' */
#define REPL_METADATA_SIZE     32   /* metadata1/2: format, version, term, vote (8 bytes each) */

struct reg_repl {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    const struct reg_repl_fsm *app;
    void *ctx;
    char *dir;
    char *address;
    uint64_t incarnation;
    unsigned threshold; /* entries between snapshots */
    uv_timer_t poll;
    bool started;
    bool was_leader;   /* the role seen by the last poll */
    bool leader_ready; /* the barrier of this term completed */
    bool barrier_running;
    uint64_t barrier_term;
    uint64_t leader_id;  /* the leader the last poll saw (0: none), for leader_changed */
    unsigned in_flight;  /* own proposals not completed */
    uint64_t contact_at; /* engine time (ms) a leader was last heard from, or the start */
    /* The snapshot in progress (see fsm_snapshot); the engine takes one at a time. */
    bool snap_taking;            /* asked for and serialised (or being), not yet finalized */
    bool snap_nudged;            /* a barrier is out to bring the engine to ask for one */
    pid_t snap_child;            /* the process serialising it, 0 when none */
    int snap_fd;                 /* the read end of its pipe, -1 when none */
    int snap_error;              /* 0 or -errno, set by fsm_snapshot_async */
    int snap_failed;             /* why the last snapshot was not stored (-errno), 0 if it was */
    struct buf snap_data;        /* its data */
    struct raft_buffer snap_buf; /* the engine's view of snap_data */
    uint64_t snap_index;         /* the index it is taken at */
    uint64_t snap_started;       /* engine time (ms) it was asked for */
    uint64_t snap_retry_at;      /* engine time (ms) before which no snapshot is started */
    bool closing;
    void (*close_done)(void *arg);
    void *close_arg;
};

/* One proposal, barrier or membership change in flight. */
struct repl_req {
    struct reg_repl *repl;
    reg_repl_done_cb cb;
    void *arg;
    union {
        struct raft_apply apply;
        struct raft_barrier barrier;
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
};

/* ---- helpers ----------------------------------------------------------------------------- */

bool reg_repl_address_valid(const char *s)
{
    char host[INET_ADDRSTRLEN];
    struct in_addr in;
    const char *colon = strrchr(s, ':');
    char *end;

    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    long port = strtol(colon + 1, &end, 10);
    return inet_pton(AF_INET, host, &in) == 1 && colon[1] && *end == '\0' && port > 0 &&
           port < 65536;
}

uint64_t reg_repl_id_for(const char *node_name)
{
    /* FNV-1a: stable across builds and hosts, unlike any engine-internal digest. */
    uint64_t h = 14695981039346656037ull;

    for (const unsigned char *p = (const unsigned char *)node_name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ? h : 1;
}

static int from_raft(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
        return -ENOTCONN;
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
        return -ECANCELED;
    case RAFT_NOMEM:
        return -ENOMEM;
    case RAFT_CANTCHANGE:
        return -EBUSY;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return -EEXIST;
    case RAFT_NOTFOUND:
        return -ENOENT;
    default:
        return -EIO;
    }
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* What the engine's directory holds, for refusing a half-lost one and for naming files. */
struct repl_dir {
    bool metadata;               /* metadata1 or metadata2 whole: the term and the vote */
    char log_file[NAME_MAX + 1]; /* a segment or snapshot file, "" when there is none */
    char snapshot[NAME_MAX + 1]; /* the newest snapshot's data file, "" when there is none */
};

/* Snapshots are named snapshot-TERM-INDEX-MS: the newest has the highest of the three. */
static bool snapshot_newer(const char *name, const char *than)
{
    unsigned long long a[3] = {0}, b[3] = {0};

    if (!than[0])
        return true;
    sscanf(name, "snapshot-%llu-%llu-%llu", &a[0], &a[1], &a[2]);
    sscanf(than, "snapshot-%llu-%llu-%llu", &b[0], &b[1], &b[2]);
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return false;
}

static void scan_dir(const char *dir, struct repl_dir *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct stat sb;
    char path[4096];

    memset(out, 0, sizeof(*out));
    while (d && (de = readdir(d))) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (strcmp(n, "metadata1") == 0 || strcmp(n, "metadata2") == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, n);
            /* The engine takes one cut short for absent (a crash while it was created). */
            out->metadata |= stat(path, &sb) == 0 && sb.st_size == REPL_METADATA_SIZE;
            continue;
        }
        bool snapshot = strncmp(n, "snapshot-", 9) == 0;
        bool segment = strncmp(n, "open-", 5) == 0 || (n[0] >= '0' && n[0] <= '9');
        if ((snapshot || segment) && !out->log_file[0])
            snprintf(out->log_file, sizeof(out->log_file), "%s", n);
        if (snapshot && (len < 5 || strcmp(n + len - 5, ".meta") != 0) &&
            snapshot_newer(n, out->snapshot))
            snprintf(out->snapshot, sizeof(out->snapshot), "%s", n);
    }
    if (d)
        closedir(d);
}

/* ---- the FSM the engine drives ------------------------------------------------------------ */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct reg_repl *r = fsm->data;
    const unsigned char *p = buf->base;

    *result = NULL;
    if (buf->len < REPL_FRAME_HDR || get64(p + 8) > buf->len - REPL_FRAME_HDR) {
        log_error("replication: malformed entry of %zu bytes", buf->len);
        return RAFT_MALFORMED;
    }
    bool own = get64(p) == r->incarnation;
    int rc = r->app->apply(p + REPL_FRAME_HDR, (size_t)get64(p + 8), own, r->ctx);
    return rc == 0 ? 0 : RAFT_MALFORMED;
}

/*
 * Snapshots: the engine asks for one every snapshot_threshold entries, on the loop. Serialising
 * the whole state there stalled every client for as long as it took (10 to 200 ms at a few
 * thousand keys on a busy machine, and growing with the state). With the FSM's version 3 the
 * engine splits the work: fsm_snapshot on the loop only forks a child (lib/fork_worker.h) that
 * serialises the state as it stood at that moment into a pipe; fsm_snapshot_async, on the
 * threadpool, reads the pipe to its end and waits for the child; the engine then compresses and
 * writes the snapshot on the threadpool too, and fsm_snapshot_finalize, back on the loop, reaps
 * the child and frees the data. The worker waits for the child without reaping it, so its PID
 * stays its own until finalize: reg_repl_close may kill it meanwhile. When no child can be
 * forked, the snapshot is serialised on the loop as before.
 */
static int snapshot_in_child(int fd, void *arg)
{
    struct reg_repl *r = arg;
    struct buf b = BUF_INIT;

    /*
     * Serialising the whole state is CPU work that can wait; the servers' loops, which every
     * commit waits on, cannot. Where they share cores with it (three servers on one host, or a
     * server on one core), the child gives way to them.
     */
    (void)setpriority(PRIO_PROCESS, 0, SNAPSHOT_NICE);
    r->app->snapshot(&b, r->ctx);
    return file_write_all(fd, b.data, b.len); /* the child exits: nothing to free */
}

/*
 * Whether index falls in this server's share of the snapshot period. Every server of a cluster
 * applies the same entries, so with one threshold they all snapshot at the same index, and the
 * fork, the serialising child, the compression and the snapshot's fsyncs then slow both
 * followers at once: a commit needs one of them, so every write waited for the quicker of two
 * stalled servers (the replicated p99, docs/benchmarks.md). The voters, ranked by ID, share the
 * period out: of n, the k-th snapshots only at an index whose place in the period is in its
 * k-th n-th of it, so none starts at an index another does, save when it must (fsm_snapshot).
 */
static bool snapshot_turn(const struct reg_repl *r, uint64_t index)
{
    const struct raft_configuration *c = &r->raft.configuration;
    unsigned n = 0, rank = 0;

    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER)
            continue;
        n++;
        rank += c->servers[i].id < r->raft.id;
    }
    if (n <= 1 || r->threshold < n)
        return true;
    return (index % r->threshold) * n / r->threshold == rank;
}

/* The index of the newest snapshot this server has or is taking: its log grows from there. */
static uint64_t snapshot_base(const struct reg_repl *r)
{
    return r->snap_taking ? r->snap_index : r->raft.log.snapshot.last_index;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct reg_repl *r = fsm->data;
    uint64_t applied = raft_last_applied(&r->raft);
    int fds[2], rc;

    MESH_BUG_ON(r->snap_child > 0 || r->snap_fd >= 0 || r->snap_taking);
    if (r->io.time(&r->io) < r->snap_retry_at || !r->app->snapshot_ready(r->ctx))
        return RAFT_BUSY; /* the engine asks again after its next applied entry */
    /*
     * Out of its turn, a server takes its snapshot only when it must: a leader whose full log
     * stopped its writes (no entry will bring its turn), or a server three thresholds past
     * its last one, whose applies skip its share of the period (a follower catching up). A
     * snapshot that ran past its turn waits for the next one, a threshold later.
     */
    bool must = r->leader_ready ? reg_repl_log_full(r)
                                : applied - snapshot_base(r) >= 3 * (uint64_t)r->threshold;
    if (!must && !snapshot_turn(r, applied))
        return RAFT_BUSY;
    buf_reset(&r->snap_data);
    r->snap_buf = (struct raft_buffer){0};
    r->snap_error = 0;
    r->snap_index = applied;
    r->snap_started = r->io.time(&r->io);
    r->snap_taking = true;
    *bufs = &r->snap_buf;
    *n_bufs = 1;
    rc = pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
    if (rc == 0) {
        pid_t pid = fork_worker(fds[1], snapshot_in_child, r);
        close(fds[1]);
        if (pid > 0) {
            r->snap_child = pid;
            r->snap_fd = fds[0];
            return 0;
        }
        close(fds[0]);
        rc = (int)pid;
    }
    log_warn("replication: no process to write the snapshot (%s); writing it on the loop",
             strerror(-rc));
    r->app->snapshot(&r->snap_data, r->ctx);
    r->snap_buf.base = r->snap_data.data;
    r->snap_buf.len = r->snap_data.len;
    return 0;
}

/* On the threadpool: the child's output, once it exited 0. Touches only the snap_* fields. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct reg_repl *r = fsm->data;
    siginfo_t info = {0};
    int rc;

    if (r->snap_fd < 0)
        return 0; /* serialised on the loop already */
    rc = file_read_stream(r->snap_fd, &r->snap_data);
    while (waitid(P_PID, (id_t)r->snap_child, &info, WEXITED | WNOWAIT) < 0)
        if (errno != EINTR) {
            rc = rc < 0 ? rc : -errno;
            break;
        }
    if (rc == 0 && (info.si_code != CLD_EXITED || info.si_status != 0))
        rc = -ECHILD;
    r->snap_error = rc;
    if (rc < 0)
        return RAFT_IOERR;
    r->snap_buf.base = r->snap_data.data;
    r->snap_buf.len = r->snap_data.len;
    return 0;
}

/*
 * Why the engine could not store a snapshot in dir, as far as the directory tells: 0.15 keeps
 * its own reason (the failed write's errno) to itself.
 */
static int store_error(const char *dir)
{
    struct statvfs vfs;

    if (statvfs(dir, &vfs) < 0)
        return -errno;
    if (vfs.f_flag & ST_RDONLY)
        return -EROFS;
    if (vfs.f_bavail == 0)
        return -ENOSPC;
    if (access(dir, W_OK) < 0)
        return -errno;
    return -EIO;
}

/* On the loop, after every snapshot the engine asked for, written or not. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct reg_repl *r = fsm->data;
    bool stored = r->raft.log.snapshot.last_index == r->snap_index; /* the engine's mark of it */

    if (r->snap_child > 0) {
        /* Still running only when the engine dropped the snapshot before its async step. */
        kill(r->snap_child, SIGKILL);
        while (waitpid(r->snap_child, NULL, 0) < 0 && errno == EINTR)
            ;
        r->snap_child = 0;
    }
    if (r->snap_fd >= 0) {
        close(r->snap_fd);
        r->snap_fd = -1;
    }
    if (r->snap_error < 0 && !r->closing) {
        log_error("replication: the snapshot writer failed (%s); retrying in %d ms",
                  r->snap_error == -ECHILD ? "it did not exit cleanly" : strerror(-r->snap_error),
                  REPL_SNAPSHOT_RETRY_MS);
        r->snap_retry_at = r->io.time(&r->io) + REPL_SNAPSHOT_RETRY_MS;
        r->snap_failed = r->snap_error;
    } else if (!stored && !r->closing) {
        /* A full or read-only disk: retried at once, it would fork and fail after every
         * applied entry, and never empty a full log (reg_repl_log_full) either way. */
        r->snap_failed = store_error(r->dir);
        log_error("replication: the snapshot at index %" PRIu64 " could not be written to %s "
                  "(%s); retrying in %d ms",
                  r->snap_index, r->dir, strerror(-r->snap_failed), REPL_SNAPSHOT_RETRY_MS);
        r->snap_retry_at = r->io.time(&r->io) + REPL_SNAPSHOT_RETRY_MS;
    } else if (stored) {
        r->snap_failed = 0;
        log_debug("replication: snapshot at index %" PRIu64 " (%zu bytes) taken in %" PRIu64 " ms",
                  r->snap_index, r->snap_data.len, (uint64_t)r->io.time(&r->io) - r->snap_started);
    }
    buf_free(&r->snap_data); /* the size of the state: not kept between snapshots */
    r->snap_buf = (struct raft_buffer){0};
    r->snap_taking = false;
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct reg_repl *r = fsm->data;
    int rc = r->app->restore(buf->base, buf->len, r->ctx);

    if (rc == 0)
        raft_free(buf->base); /* on success the buffer is ours */
    return rc == 0 ? 0 : RAFT_MALFORMED;
}

/* ---- leadership -------------------------------------------------------------------------- */

static void on_ready_barrier(struct raft_barrier *req, int status)
{
    struct repl_req *q = req->data;
    struct reg_repl *r = q->repl;

    r->barrier_running = false;
    if (status == 0 && raft_state(&r->raft) == RAFT_LEADER &&
        r->raft.current_term == r->barrier_term && !r->closing) {
        r->leader_ready = true;
        log_info("replication: leading term %" PRIu64 " at index %" PRIu64,
                 (uint64_t)r->raft.current_term, (uint64_t)raft_last_applied(&r->raft));
        r->app->leadership(true, false, r->ctx);
    }
    free(q);
}

/*
 * The engine knows when a follower last heard from its leader only while it follows one: a
 * follower whose election timer ran out (a candidate, or cut off) starts counting afresh. The
 * poll keeps the last such moment, so a stale read on a cut-off server says how stale it is.
 * It also tells the state machine when the leader it knows of changed.
 */
static void note_contact(struct reg_repl *r)
{
    raft_id id = 0;
    const char *addr = NULL;

    raft_leader(&r->raft, &id, &addr);
    if (raft_state(&r->raft) == RAFT_LEADER)
        r->contact_at = r->io.time(&r->io);
    else if (raft_state(&r->raft) == RAFT_FOLLOWER && id != 0)
        r->contact_at = r->raft.election_timer_start;
    if (id != r->leader_id) {
        r->leader_id = id;
        if (r->app->leader_changed)
            r->app->leader_changed(id, r->ctx);
    }
}

static void on_poll(uv_timer_t *t)
{
    struct reg_repl *r = t->data;
    bool leader = raft_state(&r->raft) == RAFT_LEADER;

    note_contact(r);

    if (r->was_leader && (!leader || r->raft.current_term != r->barrier_term)) {
        bool was_ready = r->leader_ready;
        r->leader_ready = false;
        r->was_leader = false;
        log_info("replication: no longer leading (term %" PRIu64 ")",
                 (uint64_t)r->raft.current_term);
        if (was_ready)
            r->app->leadership(false, r->in_flight > 0, r->ctx);
    }
    if (leader && !r->was_leader && !r->barrier_running) {
        struct repl_req *q = xcalloc(1, sizeof(*q));
        q->repl = r;
        q->u.barrier.data = q;
        r->barrier_term = r->raft.current_term;
        if (raft_barrier(&r->raft, &q->u.barrier, on_ready_barrier) == 0) {
            r->was_leader = true;
            r->barrier_running = true;
        } else {
            free(q); /* retried on the next poll */
        }
    }
}

/* ---- the transport ----------------------------------------------------------------------- */

/*
 * libraft's TCP transport leaves Nagle's algorithm on, and each direction between two servers is
 * its own connection, on which the receiver never writes: its ACKs go out delayed (40 ms on
 * Linux), and a message sent while the previous one is unacknowledged waits for that ACK. Every
 * such wait held a commit, and every call waiting on it, for 40 ms: the replicated p99. The
 * registry wraps the transport's connect and listen and sets TCP_NODELAY on each connection
 * before the engine sees it. The callbacks it passes on are the engine's own functions, the same
 * for every server in the process, so one copy of each is kept here.
 */
static int (*tcp_connect)(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                          const char *address, raft_uv_connect_cb cb);
static int (*tcp_listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
static raft_uv_connect_cb engine_connected;
static raft_uv_accept_cb engine_accepted;

static void no_delay(struct uv_stream_s *stream)
{
    if (stream && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1); /* a failure leaves the delay: nothing worse */
}

static void on_tcp_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    if (status == 0)
        no_delay(stream);
    engine_connected(req, stream, status);
}

static int transport_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                             const char *address, raft_uv_connect_cb cb)
{
    MESH_BUG_ON(engine_connected && engine_connected != cb);
    engine_connected = cb;
    return tcp_connect(t, req, id, address, on_tcp_connected);
}

static void on_tcp_accepted(struct raft_uv_transport *t, raft_id id, const char *address,
                            struct uv_stream_s *stream)
{
    no_delay(stream);
    engine_accepted(t, id, address, stream);
}

static int transport_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    MESH_BUG_ON(engine_accepted && engine_accepted != cb);
    engine_accepted = cb;
    return tcp_listen(t, on_tcp_accepted);
}

static void transport_wrap(struct raft_uv_transport *t)
{
    MESH_BUG_ON(tcp_connect && tcp_connect != t->connect);
    tcp_connect = t->connect;
    tcp_listen = t->listen;
    t->connect = transport_connect;
    t->listen = transport_listen;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

int reg_repl_open(struct reg_repl **out, uv_loop_t *loop, const struct reg_repl_config *cfg,
                  struct err *e)
{
    struct reg_repl *r = xcalloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    MESH_BUG_ON(cfg->id == 0 || !cfg->fsm);
    if (!reg_repl_address_valid(cfg->address)) {
        free(r);
        return err_set(e,
                       "replication address %s: must be a numeric IPv4 address and port "
                       "(a.b.c.d:port)",
                       cfg->address);
    }
    if ((rc = file_mkdir_all(cfg->dir, 0700)) < 0) {
        err_set(e, "create %s: %s", cfg->dir, strerror(-rc));
        free(r);
        return rc;
    }
    struct repl_dir d;
    scan_dir(cfg->dir, &d);
    if (!d.metadata && d.log_file[0]) {
        free(r);
        return err_set(
                   e,
                   "%s: a replicated log (%s) without a whole metadata1 or metadata2, which keep "
                   "this server's term and vote (started from it, the server could vote "
                   "twice in one term); move the directory aside and restart: the server "
                   "starts empty and catches up from the others",
                   cfg->dir, d.log_file),
               -EIO;
    }
    if (getrandom(&r->incarnation, sizeof(r->incarnation), 0) != sizeof(r->incarnation))
        abort(); /* no entropy at all: nothing sensible to do */
    r->loop = loop;
    r->app = cfg->fsm;
    r->ctx = cfg->ctx;
    r->dir = xstrdup(cfg->dir);
    r->address = xstrdup(cfg->address);
    r->snap_fd = -1;
    r->fsm.version = 3; /* snapshot_finalize and snapshot_async */
    r->fsm.data = r;
    r->fsm.apply = fsm_apply;
    r->fsm.snapshot = fsm_snapshot;
    r->fsm.restore = fsm_restore;
    r->fsm.snapshot_finalize = fsm_snapshot_finalize;
    r->fsm.snapshot_async = fsm_snapshot_async;
    rc = raft_uv_tcp_init(&r->transport, loop);
    if (rc != 0) {
        err_set(e, "replication transport: %s", raft_strerror(rc));
        goto err_tcp;
    }
    transport_wrap(&r->transport);
    rc = raft_uv_init(&r->io, loop, r->dir, &r->transport);
    if (rc != 0) {
        err_set(e, "replication storage in %s: %s", r->dir, r->io.errmsg);
        goto err_io;
    }
    /*
     * The engine's auto-recovery sets a damaged last segment aside and starts without it: the
     * entries in it, which this server may have counted towards a commit, would be gone
     * without a word. A damaged log stops the server instead, for its operator to decide.
     */
    raft_uv_set_auto_recovery(&r->io, false);
    /*
     * The asynchronous snapshots (fsm_snapshot) need the I/O's async_work, which 0.15's libuv
     * back end has but declares as version 1, so raft_init would refuse the FSM; upstream set
     * it to 2 in 0.17 ("uv: set io version to 2") without any other change.
     */
    MESH_BUG_ON(!r->io.async_work);
    r->io.version = 2;
    rc = raft_init(&r->raft, &r->io, &r->fsm, cfg->id, r->address);
    if (rc != 0) {
        err_set(e, "replication: %s", raft_errmsg(&r->raft));
        goto err_raft;
    }
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000);
    raft_set_heartbeat_timeout(&r->raft,
                               cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 100);
    r->threshold = cfg->snapshot_threshold ? cfg->snapshot_threshold : 16384;
    raft_set_snapshot_threshold(&r->raft, r->threshold);
    raft_set_snapshot_trailing(&r->raft, 128);
    raft_set_pre_vote(&r->raft, true);
    uv_timer_init(loop, &r->poll);
    r->poll.data = r;
    *out = r;
    return 0;

err_raft:
    raft_uv_close(&r->io);
err_io:
    raft_uv_tcp_close(&r->transport);
err_tcp:
    free(r->dir);
    free(r->address);
    free(r);
    return -EIO;
}

bool reg_repl_dir_used(const char *dir)
{
    struct repl_dir d;

    scan_dir(dir, &d);
    return d.metadata || d.log_file[0];
}

bool reg_repl_has_state(const struct reg_repl *r)
{
    struct repl_dir d;

    scan_dir(r->dir, &d);
    return d.metadata;
}

/* The engine cannot start on what dir holds (what names the file and the reason). */
static int refuse_log(struct err *e, const char *dir, const char *what)
{
    return err_set(e,
                   "%s: replication cannot start: %s; nothing was changed. If a file named here "
                   "is damaged, move the directory aside and restart: the server starts empty "
                   "and catches up from the others",
                   dir, what),
           -EIO;
}

#define LZ4F_MAGIC 0x184D2204u

/*
 * Why a snapshot's data (p[len]) is damaged, or NULL when it decompresses to its end with its
 * checksum, or is not compressed (the engine's own checks then apply). libraft 0.15 loops
 * forever, at start and without a word, on a frame that stops short (a file cut short, a
 * changed block size): a call that makes no progress is where this stops.
 */
static const char *lz4_frame_damage(const unsigned char *p, size_t len)
{
    unsigned char out[16384];
    const char *why = NULL;
    LZ4F_dctx *ctx;
    size_t off = 0, ret = 1;

    if (len < 4 || (p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) != LZ4F_MAGIC)
        return NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
        abort(); /* out of memory, as x*alloc */
    while (ret != 0 && !why) {
        size_t in = len - off, n = sizeof(out);
        ret = LZ4F_decompress(ctx, out, &n, p + off, &in, NULL);
        if (LZ4F_isError(ret))
            why = LZ4F_getErrorName(ret);
        else if (ret != 0 && in == 0 && n == 0)
            why = "its data ends before its LZ4 frame does";
        off += in;
    }
    LZ4F_freeDecompressionContext(ctx);
    return why;
}

/* Checks the snapshot the engine will load (the newest) before it does. 0 or -EIO. */
static int check_snapshot(const char *dir, struct err *e)
{
    struct repl_dir d;
    struct buf data = BUF_INIT;
    char path[4096], what[NAME_MAX + 128];
    const char *why = NULL;
    int rc = 0, fd;

    scan_dir(dir, &d);
    if (!d.snapshot[0])
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, d.snapshot);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (rc = file_read_all(fd, &data)) < 0)
        why = strerror(fd < 0 ? errno : -rc);
    else
        why = lz4_frame_damage((const unsigned char *)data.data, data.len);
    if (why) {
        snprintf(what, sizeof(what), "snapshot %s: %s", d.snapshot, why);
        rc = refuse_log(e, dir, what);
    }
    if (fd >= 0)
        close(fd);
    buf_free(&data);
    return rc;
}

/*
 * Checks the open segments the engine will load (registry/cluster/open_segment.h): one damaged
 * inside refuses the start; one whose last write was cut short is said, and left to the
 * engine. 0 or -EIO.
 */
static int check_open_segments(const char *dir, struct err *e)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct buf data = BUF_INIT;
    char path[4096], what[NAME_MAX + 128];
    int rc = 0;

    while (rc == 0 && d && (de = readdir(d))) {
        if (strncmp(de->d_name, "open-", 5) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        data.len = 0;
        rc = fd < 0 ? -errno : file_read_all(fd, &data);
        if (fd >= 0)
            close(fd);
        size_t at = 0;
        enum reg_open_segment seg =
            rc < 0 ? REG_OPEN_SEGMENT_INTACT : reg_open_segment_check(data.data, data.len, &at);
        if (rc < 0) {
            snprintf(what, sizeof(what), "%s: %s", de->d_name, strerror(-rc));
            rc = refuse_log(e, dir, what);
        } else if (seg == REG_OPEN_SEGMENT_DAMAGED) {
            snprintf(what, sizeof(what), "%s: a damaged batch at byte %zu, intact ones after it",
                     de->d_name, at);
            rc = refuse_log(e, dir, what);
        } else if (seg == REG_OPEN_SEGMENT_CUT_SHORT) {
            log_warn("replication: %s: the last write was cut short at byte %zu (a crash during "
                     "it): the entries from there are dropped, and the leader sends them again "
                     "if the cluster has them",
                     path, at);
        }
    }
    if (d)
        closedir(d);
    buf_free(&data);
    return rc;
}

int reg_repl_start(struct reg_repl *r, const struct reg_repl_server *servers, size_t n,
                   struct err *e)
{
    int rc = 0;

    MESH_BUG_ON(r->started);
    if (n > 0 && !reg_repl_has_state(r)) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = raft_configuration_add(&conf, servers[i].id, servers[i].address,
                                        servers[i].voter ? RAFT_VOTER : RAFT_SPARE);
        if (rc == 0)
            rc = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        if (rc != 0 && rc != RAFT_CANTBOOTSTRAP)
            return err_set(e, "replication bootstrap: %s", raft_strerror(rc)), -EIO;
    }
    if (check_snapshot(r->dir, e) < 0 || check_open_segments(r->dir, e) < 0)
        return -EIO;
    rc = raft_start(&r->raft);
    if (rc != 0)
        return refuse_log(e, r->dir, raft_errmsg(&r->raft));
    r->started = true;
    r->contact_at = r->io.time(&r->io);
    uv_timer_start(&r->poll, on_poll, REPL_POLL_MS, REPL_POLL_MS);
    return 0;
}

bool reg_repl_started(const struct reg_repl *r)
{
    return r->started;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct reg_repl *r = h->data;
    void (*done)(void *) = r->close_done;
    void *arg = r->close_arg;

    buf_free(&r->snap_data);
    free(r->dir);
    free(r->address);
    free(r);
    if (done)
        done(arg);
}

static void on_raft_closed(struct raft *raft)
{
    struct reg_repl *r = raft->data;

    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    uv_close((uv_handle_t *)&r->poll, on_poll_closed);
}

void reg_repl_close(struct reg_repl *r, void (*done)(void *arg), void *arg)
{
    MESH_BUG_ON(r->closing);
    r->closing = true;
    r->close_done = done;
    r->close_arg = arg;
    uv_timer_stop(&r->poll);
    if (r->snap_child > 0) /* not reaped before finalize: the PID is still the child's */
        kill(r->snap_child, SIGKILL);
    raft_close(&r->raft, on_raft_closed);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* A request for the engine; the caller points the union member it uses back at it. */
static struct repl_req *req_new(struct reg_repl *r, reg_repl_done_cb cb, void *arg)
{
    struct repl_req *q = xcalloc(1, sizeof(*q));

    q->repl = r;
    q->cb = cb;
    q->arg = arg;
    return q;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct repl_req *q = req->data;

    q->repl->in_flight--;
    q->cb(from_raft(status), q->arg);
    free(q);
}

int reg_repl_propose(struct reg_repl *r, const void *data, size_t len, reg_repl_done_cb cb,
                     void *arg)
{
    if (!r->leader_ready || r->closing)
        return -ENOTCONN;
    size_t total = (REPL_FRAME_HDR + len + 7) & ~(size_t)7;
    struct raft_buffer b = {.base = raft_calloc(1, total), .len = total};
    if (!b.base)
        abort();
    put64(b.base, r->incarnation);
    put64((unsigned char *)b.base + 8, len);
    memcpy((unsigned char *)b.base + REPL_FRAME_HDR, data, len);
    struct repl_req *q = req_new(r, cb, arg);
    q->u.apply.data = q;
    int rv = raft_apply(&r->raft, &q->u.apply, &b, 1, on_applied);
    if (rv != 0) {
        raft_free(b.base);
        free(q);
        return from_raft(rv);
    }
    r->in_flight++;
    return 0;
}

static void on_barrier(struct raft_barrier *req, int status)
{
    struct repl_req *q = req->data;

    q->cb(from_raft(status), q->arg);
    free(q);
}

int reg_repl_barrier(struct reg_repl *r, reg_repl_done_cb cb, void *arg)
{
    if (!r->leader_ready || r->closing)
        return -ENOTCONN;
    struct repl_req *q = req_new(r, cb, arg);
    q->u.barrier.data = q;
    int rv = raft_barrier(&r->raft, &q->u.barrier, on_barrier);
    if (rv != 0) {
        free(q);
        return from_raft(rv);
    }
    return 0;
}

static void on_change(struct raft_change *req, int status)
{
    struct repl_req *q = req->data;

    q->cb(from_raft(status), q->arg);
    free(q);
}

/* Adding a voter is two changes: raft_add (as a spare), then raft_assign to voter, which the
 * engine does only once the new server has caught up. */
struct add_voter {
    struct reg_repl *repl;
    uint64_t id;
    bool added; /* raft_add put it in the configuration: a failed promotion takes it out */
    reg_repl_done_cb cb;
    void *arg;
};

static void on_rolled_back(int status, void *arg)
{
    uint64_t *id = arg;

    if (status < 0)
        log_warn("replication: server %016" PRIx64 " stays a spare: removing it failed: %s", *id,
                 strerror(-status));
    free(id);
}

/*
 * The join is over. A server that was added but never caught up (an address where no server
 * answers, one that died meanwhile) would stay in the configuration as a spare forever: it is
 * removed again, so a failed join leaves the configuration as it found it.
 */
static void add_voter_finish(struct add_voter *av, int status)
{
    struct reg_repl *r = av->repl;

    if (status < 0 && av->added && !r->closing) {
        uint64_t *id = xmalloc(sizeof(*id));
        *id = av->id;
        log_warn("replication: server %016" PRIx64 " did not catch up (%s); removing it again",
                 av->id, strerror(-status));
        struct repl_req *q = req_new(r, on_rolled_back, id);
        q->u.change.data = q;
        if (raft_remove(&r->raft, &q->u.change, av->id, on_change) != 0) {
            free(q);
            on_rolled_back(-EIO, id);
        }
    }
    av->cb(status, av->arg);
    free(av);
}

static void add_voter_assigned(int status, void *arg)
{
    add_voter_finish(arg, status);
}

static void add_voter_added(int status, void *arg)
{
    struct add_voter *av = arg;
    struct reg_repl *r = av->repl;

    av->added = status == 0;
    if (status == 0 || status == -EEXIST) {
        struct repl_req *q = req_new(r, add_voter_assigned, av);
        q->u.change.data = q;
        int rv = raft_assign(&r->raft, &q->u.change, av->id, RAFT_VOTER, on_change);
        if (rv == 0)
            return;
        free(q);
        status = from_raft(rv);
    }
    add_voter_finish(av, status);
}

int reg_repl_add_voter(struct reg_repl *r, uint64_t id, const char *address, reg_repl_done_cb cb,
                       void *arg)
{
    if (!reg_repl_address_valid(address))
        return -EINVAL;
    if (!r->leader_ready || r->closing)
        return -ENOTCONN;
    struct add_voter *av = xcalloc(1, sizeof(*av));
    av->repl = r;
    av->id = id;
    av->cb = cb;
    av->arg = arg;
    struct repl_req *q = req_new(r, add_voter_added, av);
    q->u.change.data = q;
    int rv = raft_add(&r->raft, &q->u.change, id, address, on_change);
    if (rv == RAFT_DUPLICATEID) { /* already a member (a spare, say): just promote it */
        free(q);
        add_voter_added(-EEXIST, av);
        return 0;
    }
    if (rv != 0) {
        free(q);
        free(av);
        return from_raft(rv);
    }
    return 0;
}

int reg_repl_remove(struct reg_repl *r, uint64_t id, reg_repl_done_cb cb, void *arg)
{
    if (!r->leader_ready || r->closing)
        return -ENOTCONN;
    struct repl_req *q = req_new(r, cb, arg);
    q->u.change.data = q;
    int rv = raft_remove(&r->raft, &q->u.change, id, on_change);
    if (rv != 0) {
        free(q);
        return from_raft(rv);
    }
    return 0;
}

static void on_transferred(struct raft_transfer *req)
{
    struct repl_req *q = req->data;
    int status = raft_state(&q->repl->raft) == RAFT_LEADER ? -EAGAIN : 0;

    q->cb(status, q->arg);
    free(q);
}

int reg_repl_transfer(struct reg_repl *r, reg_repl_done_cb cb, void *arg)
{
    if (raft_state(&r->raft) != RAFT_LEADER || r->closing)
        return -ENOTCONN;
    struct repl_req *q = req_new(r, cb, arg);
    q->u.transfer.data = q;
    int rv = raft_transfer(&r->raft, &q->u.transfer, 0, on_transferred);
    if (rv != 0) {
        free(q);
        return from_raft(rv);
    }
    return 0;
}

bool reg_repl_leader_ready(const struct reg_repl *r)
{
    return r->leader_ready && !r->closing;
}

bool reg_repl_log_full(struct reg_repl *r)
{
    /* After a failure only a stored snapshot makes room: counting each retry as taken would
     * let every failed attempt add its share to the log. */
    uint64_t base = r->snap_failed < 0 ? r->raft.log.snapshot.last_index : snapshot_base(r);

    return r->started && !r->closing &&
           raft_last_index(&r->raft) - base >= 2 * (uint64_t)r->threshold;
}

static void on_nudged(struct raft_barrier *req, int status)
{
    struct repl_req *q = req->data;

    (void)status; /* failed: this server no longer leads, which its state machine hears of */
    q->repl->snap_nudged = false;
    free(q);
}

void reg_repl_snapshot_nudge(struct reg_repl *r)
{
    /* After a failed snapshot, a barrier would only grow the log: the next one may be asked for
     * once the retry delay is over, and a later nudge brings it. */
    if (r->snap_taking || r->snap_nudged || !r->leader_ready || r->closing ||
        r->io.time(&r->io) < r->snap_retry_at)
        return;
    struct repl_req *q = req_new(r, NULL, NULL);
    q->u.barrier.data = q;
    if (raft_barrier(&r->raft, &q->u.barrier, on_nudged) == 0)
        r->snap_nudged = true;
    else
        free(q); /* not leading: nothing to snapshot for */
}

/* ---- status ------------------------------------------------------------------------------ */

void reg_repl_status(const struct reg_repl *r, struct reg_repl_status *out)
{
    struct raft *raft = (struct raft *)&r->raft; /* the accessors take a non-const pointer */
    raft_id leader_id = 0;
    const char *leader_addr = NULL;

    memset(out, 0, sizeof(*out));
    out->id = raft->id;
    if (!r->started)
        return;
    switch (raft_state(raft)) {
    case RAFT_FOLLOWER:
        out->role = REG_REPL_FOLLOWER;
        break;
    case RAFT_CANDIDATE:
        out->role = REG_REPL_CANDIDATE;
        break;
    case RAFT_LEADER:
        out->role = REG_REPL_LEADER;
        break;
    default:
        out->role = REG_REPL_UNAVAILABLE;
    }
    out->leader_ready = r->leader_ready;
    out->term = raft->current_term;
    out->commit_index = raft->commit_index;
    out->applied_index = raft_last_applied(raft);
    out->last_index = raft_last_index(raft);
    out->config_index = raft->configuration_index;
    out->snapshot_index = raft->log.snapshot.last_index;
    out->snapshot_taking = r->snap_taking;
    out->snapshot_failed = r->snap_failed;
    raft_leader(raft, &leader_id, &leader_addr);
    out->leader_id = leader_id;
    if (leader_addr)
        snprintf(out->leader_address, sizeof(out->leader_address), "%s", leader_addr);
    uint64_t now = raft->io->time(raft->io);
    if (out->role == REG_REPL_FOLLOWER && leader_id != 0)
        out->last_contact_ms = now - raft->election_timer_start;
    else if (out->role != REG_REPL_LEADER)
        out->last_contact_ms = now > r->contact_at ? now - r->contact_at : 0;
    for (unsigned i = 0; i < raft->configuration.n && i < REG_REPL_MAX_SERVERS; i++) {
        const struct raft_server *s = &raft->configuration.servers[i];
        struct reg_repl_server *o = &out->servers[out->nservers++];
        o->id = s->id;
        snprintf(o->address, sizeof(o->address), "%s", s->address);
        o->voter = s->role == RAFT_VOTER;
    }
}
