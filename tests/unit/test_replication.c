/*
 * The replicated log (registry/cluster/replication.h) on a real loop, a real directory and the
 * real engine: its snapshots are serialised by a forked child, so the loop goes on while the
 * state is written out, and a server restarted from such a snapshot gets the state as it stood
 * when the snapshot was asked for; its connections to other servers send without delay.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "registry/cluster/replication.h"
#include "run_until.h"
#include "scratch.h"

#define THRESHOLD   8     /* entries between snapshots */
#define WAIT_MS     20000 /* bound on every wait: generous, the machine may be busy */
#define SERVER_ID   7
#define FAIL_MARKER "fail-snapshots" /* while this file exists, the snapshot writer dies */

/* One test's world: a directory, a loop, and a server's state (a count of applied entries). */
struct world {
    char raft_dir[600];
    char fail_path[600];
    char address[32];
    uv_loop_t loop;
    struct reg_repl *repl;
    uint64_t applied;        /* the state: entries applied (or restored) */
    long restored_pid;       /* the PID a restored snapshot was written by, 0 when none */
    int restored_nice;       /* the niceness it was written at */
    uint64_t restored_count; /* the count it held */
    bool leader;
    bool in_flight; /* the state shows changes not yet committed: no snapshot of it */
    unsigned done;  /* proposals completed */
    int last_status;
    bool closed;
};

/* ---- the state machine ------------------------------------------------------------------- */

static int fsm_apply(const void *data, size_t len, bool own, void *ctx)
{
    struct world *w = ctx;

    w->applied++;
    return 0;
}

/* Runs where the engine's snapshot is serialised: records which process that was, and its
 * niceness. */
static void fsm_snapshot(struct buf *out, void *ctx)
{
    struct world *w = ctx;

    if (access(w->fail_path, F_OK) == 0)
        raise(SIGKILL); /* a writer that dies: killed, out of memory */
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    buf_printf(out, "%ld %" PRIu64 " %d\n", (long)getpid(), w->applied, errno ? 0 : nice);
}

static bool fsm_snapshot_ready(void *ctx)
{
    struct world *w = ctx;

    return !w->in_flight;
}

static int fsm_restore(const void *data, size_t len, void *ctx)
{
    struct world *w = ctx;
    char text[64];

    if (len == 0 || len >= sizeof(text))
        return -EINVAL;
    memcpy(text, data, len);
    text[len] = '\0';
    if (sscanf(text, "%ld %" SCNu64 " %d", &w->restored_pid, &w->restored_count,
               &w->restored_nice) != 3)
        return -EINVAL;
    w->applied = w->restored_count;
    return 0;
}

static void fsm_leadership(bool leader, bool lost, void *ctx)
{
    struct world *w = ctx;

    w->leader = leader;
}

static const struct reg_repl_fsm test_fsm = {
    .apply = fsm_apply,
    .snapshot = fsm_snapshot,
    .snapshot_ready = fsm_snapshot_ready,
    .restore = fsm_restore,
    .leadership = fsm_leadership,
};

/* ---- fixture ----------------------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int setup(void **state)
{
    struct world *w = xcalloc(1, sizeof(*w));

    assert_int_equal(scratch_make("test_replication"), 0);
    snprintf(w->raft_dir, sizeof(w->raft_dir), "%s/raft", scratch_dir);
    snprintf(w->fail_path, sizeof(w->fail_path), "%s/%s", scratch_dir, FAIL_MARKER);
    snprintf(w->address, sizeof(w->address), "127.0.0.1:%d", free_port());
    assert_int_equal(uv_loop_init(&w->loop), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;

    assert_int_equal(uv_loop_close(&w->loop), 0);
    assert_int_equal(scratch_remove(), 0);
    free(w);
    return 0;
}

/* Opens and starts a server of peers (n of them, the first itself); it may not lead. */
static void server_open(struct world *w, const struct reg_repl_server *peers, size_t n)
{
    struct reg_repl_config cfg = {
        .dir = w->raft_dir,
        .id = SERVER_ID,
        .address = w->address,
        .election_timeout_ms = 200,
        .heartbeat_timeout_ms = 50,
        .snapshot_threshold = THRESHOLD,
        .fsm = &test_fsm,
        .ctx = w,
    };
    struct err e;

    w->leader = false;
    assert_int_equal(reg_repl_open(&w->repl, &w->loop, &cfg, &e), 0);
    assert_int_equal(reg_repl_start(w->repl, peers, n, &e), 0);
}

/* Opens and starts the one-server cluster; it leads once its barrier committed. */
static void server_start(struct world *w)
{
    struct reg_repl_server self = {.id = SERVER_ID, .voter = true};

    snprintf(self.address, sizeof(self.address), "%s", w->address);
    server_open(w, &self, 1);
    RUN_UNTIL_MS(&w->loop, w->leader, WAIT_MS);
}

static void on_closed(void *arg)
{
    struct world *w = arg;

    w->closed = true;
}

static void server_stop(struct world *w)
{
    w->closed = false;
    reg_repl_close(w->repl, on_closed, w);
    w->repl = NULL;
    RUN_UNTIL_MS(&w->loop, w->closed, WAIT_MS);
}

static void on_done(int status, void *arg)
{
    struct world *w = arg;

    w->done++;
    w->last_status = status;
}

/* Proposes n entries and waits until every one committed. */
static void propose(struct world *w, unsigned n)
{
    static const char entry[] = "an entry";

    w->done = 0;
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(reg_repl_propose(w->repl, entry, sizeof(entry), on_done, w), 0);
    RUN_UNTIL_MS(&w->loop, w->done >= n, WAIT_MS);
    assert_int_equal(w->last_status, 0);
}

/* How many snapshot data files the directory holds. */
static int snapshots(struct world *w)
{
    DIR *d = opendir(w->raft_dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        n += strncmp(de->d_name, "snapshot-", 9) == 0 && !strstr(de->d_name, ".meta");
    closedir(d);
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

/*
 * The snapshot is serialised by another process (the loop's own would have stalled every
 * client), from the state as it stood when the engine asked for it: restarted from it, the
 * server has that state and then the entries after it. That process gives way to the loops
 * whose cores it shares: it runs at a higher niceness than the server.
 */
static void test_snapshot_is_written_by_a_child(void **state)
{
    struct world *w = *state;

    server_start(w);
    propose(w, THRESHOLD * 3);
    RUN_UNTIL_MS(&w->loop, snapshots(w) > 0, WAIT_MS);
    uint64_t applied = w->applied;
    server_stop(w);

    w->applied = 0;
    server_start(w);
    assert_true(w->restored_pid > 0);
    assert_int_not_equal(w->restored_pid, (long)getpid());
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    assert_true(w->restored_nice > nice || w->restored_nice == 19);
    assert_true(w->restored_count > 0); /* the log's first entries are the engine's own */
    assert_true(w->restored_count <= applied);
    /* The entries after the snapshot are applied on top of it once the server leads again. */
    assert_int_equal(w->applied, applied);
    server_stop(w);
}

/*
 * A snapshot writer that dies takes no snapshot and harms nothing else: entries go on
 * committing, and a writer that works again (after the retry delay) takes the next one.
 */
static void test_a_dead_snapshot_writer_is_retried(void **state)
{
    struct world *w = *state;

    server_start(w);
    scratch_write(FAIL_MARKER, "");
    propose(w, THRESHOLD * 3);
    for (int i = 0; i < 5; i++) /* past the threshold again: the engine asks again */
        propose(w, THRESHOLD);
    assert_int_equal(snapshots(w), 0);

    assert_int_equal(unlink(w->fail_path), 0);
    for (int i = 0; i < WAIT_MS / 200 && snapshots(w) == 0; i++) {
        propose(w, 1); /* the engine asks again after each applied entry */
        usleep(200 * 1000);
    }
    assert_true(snapshots(w) > 0);
    server_stop(w);
}

/*
 * While the state shows changes still in flight no snapshot is taken, however far past the
 * threshold the log runs: a snapshot of it would keep them after a restart even if the
 * cluster never commits them. Once the state is the applied entries' alone, the next applied
 * entry brings the snapshot.
 */
static void test_no_snapshot_while_the_state_shows_entries_in_flight(void **state)
{
    struct world *w = *state;

    server_start(w);
    w->in_flight = true;
    for (int i = 0; i < 4; i++)
        propose(w, THRESHOLD * 2);
    assert_int_equal(snapshots(w), 0);

    w->in_flight = false;
    for (int i = 0; i < WAIT_MS / 200 && snapshots(w) == 0; i++) {
        propose(w, 1);
        usleep(200 * 1000);
    }
    assert_true(snapshots(w) > 0);
    server_stop(w);
}

/*
 * The engine keeps the log since the last snapshot in memory: once it holds twice the threshold
 * past the newest snapshot the log is full, and a leader's state machine stops making entries
 * (cluster.c). With nothing in flight the engine would not ask for the snapshot, as it asks
 * only after an applied entry: a nudge (a barrier) brings it, and the log is no longer full.
 */
static void test_a_full_log_is_emptied_by_a_nudged_snapshot(void **state)
{
    struct world *w = *state;

    server_start(w);
    assert_false(reg_repl_log_full(w->repl));
    w->in_flight = true; /* no snapshot of this state: the log fills */
    propose(w, THRESHOLD * 2);
    assert_true(reg_repl_log_full(w->repl));
    assert_int_equal(snapshots(w), 0);

    w->in_flight = false;
    reg_repl_snapshot_nudge(w->repl);
    RUN_UNTIL_MS(&w->loop, snapshots(w) > 0 && !reg_repl_log_full(w->repl), WAIT_MS);
    assert_true(snapshots(w) > 0);
    assert_false(reg_repl_log_full(w->repl));
    server_stop(w);
}

static int port_of(int fd, bool peer)
{
    struct sockaddr_in sa = {0}; /* the analyzer cannot see that rc == 0 means it was filled */
    socklen_t len = sizeof(sa);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
                  : getsockname(fd, (struct sockaddr *)&sa, &len);

    return rc == 0 && sa.sin_family == AF_INET ? ntohs(sa.sin_port) : -1;
}

/* TCP_NODELAY of this process's socket connected to peer_port (-1 when there is none). */
static int no_delay_towards(int peer_port, int except_fd)
{
    for (int fd = 3; fd < 1024; fd++) {
        int on = 0;
        socklen_t len = sizeof(on);
        if (fd != except_fd && port_of(fd, true) == peer_port &&
            getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0)
            return on;
    }
    return -1;
}

/* A listening socket on a free loopback port; its port in *port. */
static int listener(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    *port = port_of(fd, false);
    return fd;
}

static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) == 1;
}

/* A file where the log's directory should be is refused at once, naming it. */
static void test_a_file_at_the_log_directory_is_refused(void **state)
{
    struct world *w = *state;
    struct reg_repl_config cfg = {
        .dir = w->raft_dir, .id = SERVER_ID, .address = w->address, .fsm = &test_fsm, .ctx = w};
    char *want = xasprintf("create %s: %s", w->raft_dir, strerror(ENOTDIR));
    struct err e;
    int fd = open(w->raft_dir, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(reg_repl_open(&w->repl, &w->loop, &cfg, &e), -ENOTDIR);
    assert_null(w->repl);
    assert_string_equal(e.msg, want);
    free(want);
}

/*
 * Replication messages go out at once, both on the connections a server makes and on those it
 * accepts: with Nagle's algorithm on, a message sent while the previous one was unacknowledged
 * waited for the peer's delayed ACK (40 ms), and so did every commit behind it.
 */
static void test_connections_send_without_delay(void **state)
{
    struct world *w = *state;
    struct reg_repl_server peers[2] = {{.id = SERVER_ID, .voter = true}, {.id = 2, .voter = true}};
    int peer_port, self_port = atoi(strrchr(w->address, ':') + 1);
    int peer = listener(&peer_port);

    snprintf(peers[0].address, sizeof(peers[0].address), "%s", w->address);
    snprintf(peers[1].address, sizeof(peers[1].address), "127.0.0.1:%d", peer_port);
    server_open(w, peers, 2);
    /* Outbound: its election asks the other voter (here, the test) for a vote. */
    RUN_UNTIL_MS(&w->loop, readable(peer), WAIT_MS);
    int in = accept4(peer, NULL, NULL, SOCK_CLOEXEC);
    assert_true(in >= 0);
    RUN_UNTIL_MS(&w->loop, no_delay_towards(peer_port, in) == 1, WAIT_MS);

    /* Inbound: a server that connects to it and introduces itself (the engine's handshake:
     * protocol 1, its ID, the length of its address and the address, padded to 8 bytes). */
    int out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)self_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(out, (struct sockaddr *)&sa, sizeof(sa)), 0);
    unsigned char hello[24 + 16] = {0};
    uint64_t head[3] = {1, 2, 16};
    memcpy(hello, head, sizeof(head)); /* little-endian, as the engine writes it on x86 */
    snprintf((char *)hello + 24, 16, "127.0.0.1:%d", peer_port);
    assert_int_equal(write(out, hello, sizeof(hello)), (ssize_t)sizeof(hello));
    RUN_UNTIL_MS(&w->loop, no_delay_towards(port_of(out, false), out) == 1, WAIT_MS);

    close(out);
    close(in);
    close(peer);
    server_stop(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_is_written_by_a_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_snapshot_writer_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_snapshot_while_the_state_shows_entries_in_flight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_log_is_emptied_by_a_nudged_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connections_send_without_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_at_the_log_directory_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
