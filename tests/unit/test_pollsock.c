/*
 * Sockets on readiness (lib/pollsock.c) on a real loop, against the other end of a socketpair
 * or a loopback listener: reads into the caller's buffer, pausing, EOF ending the reads by
 * itself, a write the kernel takes only in part finishing once the peer reads, a write to a
 * closed peer failing, connects that succeed and fail, and the write side shut down.
 *
 * Every test runs twice, on the epoll backend and on the io_uring one (skipped where this
 * kernel or a seccomp filter refuses io_uring); the io_uring run adds its own: the send
 * queue's bound, a shutdown after queued bytes, a close with operations in flight, a close
 * whose queue a peer never takes, the bounds a shutdown puts on such closes, and more sockets
 * with input than the buffer pool holds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/pollsock.h"
#include "run_until.h"

struct probe {
    struct pollsock ps;
    char got[256];
    size_t ngot;
    int reads;    /* read_cb calls */
    ssize_t last; /* what the last pollsock_recv returned */
    int done;     /* write or connect callbacks */
    int status;   /* of the last one */
    int closed;
    bool close_at_eof;     /* on_read closes ps when it reads EOF */
    int registered_at_eof; /* whether ps's fd was in the loop's epoll set then (-1: no EOF) */
};

static void on_closed(uv_handle_t *h);

static bool uring; /* the backend of the group running */

static void loop_open(uv_loop_t *loop)
{
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(pollsock_loop_init(loop), 0);
}

static void loop_finish(uv_loop_t *loop)
{
    pollsock_loop_close(loop);
    assert_int_equal(uv_loop_close(loop), 0);
}

static int use_epoll(void **state)
{
    const char *why;
    (void)state;
    uring = false;
    return pollsock_use(POLLSOCK_EPOLL, &why) == POLLSOCK_EPOLL ? 0 : -1;
}

static int use_uring(void **state)
{
    const char *why;
    (void)state;
    uring = true;
    return pollsock_use(POLLSOCK_URING, &why) == POLLSOCK_URING ? 0 : -1;
}

/* Whether fd is in the epoll set of loop, as the kernel lists it in the set's fdinfo. */
static bool registered(uv_loop_t *loop, int fd)
{
    char path[64], line[256];
    bool found = false;
    int tfd;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", uv_backend_fd(loop));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd;
    fclose(f);
    return found;
}

static void on_read(struct pollsock *ps)
{
    struct probe *p = ps->data;

    p->reads++;
    p->last = pollsock_recv(ps, p->got + p->ngot, sizeof(p->got) - 1 - p->ngot);
    if (p->last > 0)
        p->ngot += (size_t)p->last;
    if (p->last != UV_EOF)
        return;
    p->registered_at_eof = registered(ps->poll.loop, ps->fd);
    if (p->close_at_eof)
        pollsock_close(ps, on_closed);
}

static void on_done(struct pollsock *ps, int status)
{
    struct probe *p = ps->data;

    p->done++;
    p->status = status;
}

static void on_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    p->closed++;
}

/* p serves sv[0] of a fresh socketpair on loop; sv[1] is the test's, non-blocking. */
static void open_pair(uv_loop_t *loop, struct probe *p, int sv[2])
{
    memset(p, 0, sizeof(*p));
    p->registered_at_eof = -1;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(pollsock_open(&p->ps, loop, sv[0], on_read), 0);
    p->ps.data = p;
}

static void close_probe(uv_loop_t *loop, struct probe *p)
{
    pollsock_close(&p->ps, on_closed);
    pollsock_close(&p->ps, on_closed); /* idempotent */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(p->closed, 1);
    loop_finish(loop);
}

static void test_reads_pause_and_end_at_eof(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    assert_int_equal(send(sv[1], "abc", 3, 0), 3);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.reads, 0); /* reading is off until turned on */

    pollsock_read(&p.ps, true);
    RUN_UNTIL(&loop, p.ngot == 3);
    assert_memory_equal(p.got, "abc", 3);

    pollsock_read(&p.ps, false);
    int reads = p.reads;
    assert_int_equal(send(sv[1], "de", 2, 0), 2);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.reads, reads); /* paused: the bytes wait in the socket */
    pollsock_read(&p.ps, true);
    RUN_UNTIL(&loop, p.ngot == 5);
    assert_memory_equal(p.got, "abcde", 5);

    close(sv[1]);
    RUN_UNTIL(&loop, p.last == UV_EOF);
    assert_true(p.ps.eof);
    assert_int_equal(p.ps.events, 0); /* nothing more is read: no wake-up at EOF forever */
    assert_false(registered(&loop, p.ps.fd));
    if (uring)
        assert_false(p.ps.recv_armed);
    reads = p.reads;
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.reads, reads);
    close_probe(&loop, &p);
}

/*
 * The usual end of a connection: the owner reads EOF and closes. The fd stays in the epoll set
 * until the close takes it out, so the EOF costs no epoll_ctl of its own (with Connection:
 * close, one per request).
 */
static void test_an_owner_closing_at_eof_costs_no_reregistration(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    p.close_at_eof = true;
    pollsock_read(&p.ps, true);
    assert_int_equal(send(sv[1], "abc", 3, 0), 3);
    RUN_UNTIL(&loop, p.ngot == 3);
    assert_true(registered(&loop, sv[0]) != uring); /* io_uring: never in the epoll set */
    shutdown(sv[1], SHUT_WR);
    RUN_UNTIL(&loop, p.closed == 1);
    assert_int_equal(p.registered_at_eof, !uring);
    loop_finish(&loop);
    close(sv[1]);
}

/* Reads what sv has (non-blocking) into out, up to cap; how many bytes came. */
static size_t drain(int fd, char *out, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    while (got < cap && (n = recv(fd, out + got, cap - got, 0)) > 0)
        got += (size_t)n;
    return got;
}

static void test_a_short_write_finishes_when_the_peer_reads(void **state)
{
    (void)state;
    enum { HALF = 1 << 20 };
    static char a[HALF], b[HALF], out[2 * HALF];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    for (size_t i = 0; i < HALF; i++) {
        a[i] = (char)('a' + i % 26);
        b[i] = (char)('A' + i % 26);
    }
    uv_buf_t bufs[2] = {uv_buf_init(a, HALF), uv_buf_init(b, HALF)};
    /* 2 MiB is more than a socketpair buffers: the kernel takes a part */
    assert_int_equal(pollsock_write(&p.ps, bufs, 2, on_done), 0);
    assert_true(pollsock_write_pending(&p.ps));
    assert_int_equal(p.ps.events & UV_WRITABLE, uring ? 0 : UV_WRITABLE);

    size_t got = 0;
    for (int turn = 0; turn < 5000 && p.done == 0; turn++) {
        got += drain(sv[1], out + got, sizeof(out) - got);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(p.done, 1);
    assert_int_equal(p.status, 0);
    assert_false(pollsock_write_pending(&p.ps));
    assert_int_equal(p.ps.events, 0); /* writable is no longer waited for */
    for (int turn = 0; turn < 5000 && got < sizeof(out); turn++)
        got += drain(sv[1], out + got, sizeof(out) - got);
    assert_int_equal(got, sizeof(out));
    assert_memory_equal(out, a, HALF); /* in order, nothing lost or repeated */
    assert_memory_equal(out + HALF, b, HALF);

    /* a write the kernel takes whole is done at once, without a callback */
    char x[] = "x";
    uv_buf_t small = uv_buf_init(x, 1);
    assert_int_equal(pollsock_write(&p.ps, &small, 1, on_done), 1);
    assert_int_equal(p.done, 1);
    assert_int_equal(p.ps.events, 0);
    close(sv[1]);
    close_probe(&loop, &p);
}

static void test_a_waiting_write_fails_when_the_peer_goes(void **state)
{
    (void)state;
    enum { SIZE = 4 << 20 };
    static char big[SIZE];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    uv_buf_t buf = uv_buf_init(big, SIZE);
    assert_int_equal(pollsock_write(&p.ps, &buf, 1, on_done), 0);
    close(sv[1]);
    RUN_UNTIL(&loop, p.done == 1);
    assert_true(p.status == UV_EPIPE || p.status == UV_ECONNRESET);
    assert_false(pollsock_write_pending(&p.ps));
    /* and a new write fails at once */
    assert_true(pollsock_write(&p.ps, &buf, 1, on_done) < 0);
    close_probe(&loop, &p);
}

/*
 * Writes the socket took (1) and a close straight after, as an owner closes once it has
 * written a response to a client that shut its side down: the peer still reads every byte,
 * then EOF. (io_uring once dropped all but the first send of the queue here.)
 */
static void test_a_close_sends_what_writes_took(void **state)
{
    (void)state;
    enum { PIECE = 4000, PIECES = POLLSOCK_SEND_BOUND / PIECE }; /* all queued, none waits */
    static char out[PIECE * PIECES], in[PIECE * PIECES + 1];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    pollsock_read(&p.ps, true); /* a recv in flight too: the close cancels it */
    uv_run(&loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char)('a' + i % 23);
    for (int i = 0; i < PIECES; i++) {
        uv_buf_t b = uv_buf_init(out + (size_t)i * PIECE, PIECE);
        assert_int_equal(pollsock_write(&p.ps, &b, 1, on_done), 1);
    }
    pollsock_close(&p.ps, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the close is done */
    assert_int_equal(p.closed, 1);
    size_t got = 0;
    ssize_t n = 1;
    for (int turn = 0; turn < 20000 && n != 0; turn++) {
        n = recv(sv[1], in + got, sizeof(in) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    assert_int_equal(n, 0); /* EOF, after every byte */
    assert_int_equal(got, sizeof(out));
    assert_memory_equal(in, out, sizeof(out));
    assert_int_equal(p.done, 0);
    loop_finish(&loop);
    close(sv[1]);
}

static int listener(struct sockaddr_in *sa)
{
    socklen_t len = sizeof(*sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    return fd;
}

static void test_connect_then_shut_the_write_side(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};
    struct sockaddr_in sa;
    int lfd = listener(&sa);
    char byte;

    assert_int_equal(listen(lfd, 4), 0);
    loop_open(&loop);
    assert_int_equal(pollsock_connect(&p.ps, &loop, (struct sockaddr *)&sa, on_read, on_done), 0);
    p.ps.data = &p;
    RUN_UNTIL(&loop, p.done == 1);
    assert_int_equal(p.status, 0);
    int peer = accept(lfd, NULL, NULL);
    assert_true(peer >= 0);

    pollsock_read(&p.ps, true);
    assert_int_equal(send(peer, "hi", 2, 0), 2);
    RUN_UNTIL(&loop, p.ngot == 2);
    assert_int_equal(pollsock_shutdown(&p.ps), 0);
    assert_int_equal(recv(peer, &byte, 1, 0), 0); /* the peer sees our end of data */
    assert_int_equal(send(peer, "!", 1, 0), 1);   /* and may still answer */
    RUN_UNTIL(&loop, p.ngot == 3);
    close(peer);
    close(lfd);
    close_probe(&loop, &p);
}

static void test_a_refused_connect_fails(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};
    struct sockaddr_in sa;
    int lfd = listener(&sa); /* bound, not listening: connects are refused */

    loop_open(&loop);
    int rc = pollsock_connect(&p.ps, &loop, (struct sockaddr *)&sa, on_read, on_done);
    if (rc < 0) {
        assert_int_equal(rc, UV_ECONNREFUSED); /* refused at once: nothing to close */
        loop_finish(&loop);
    } else {
        p.ps.data = &p;
        RUN_UNTIL(&loop, p.done == 1);
        assert_int_equal(p.status, UV_ECONNREFUSED);
        close_probe(&loop, &p);
    }
    close(lfd);
}

/* ---- io_uring only ------------------------------------------------------------------------- */

/*
 * Writes under the bound are queued and return 1, in order, until the queue holds
 * POLLSOCK_SEND_BOUND unsent bytes; the next write waits (0) and its callback follows once the
 * peer has read. The shutdown asked for meanwhile comes after every queued byte.
 */
static void test_uring_queue_is_bounded_and_shutdown_follows_it(void **state)
{
    (void)state;
    enum { PIECE = 4096, MAX = 8 << 20 };
    static char out[MAX], in[MAX];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    size_t sent = 0;
    int r = 1;
    /* the socketpair fills, then the queue: without a reader, bounded */
    for (int i = 0; i < MAX / PIECE && r == 1; i++) {
        for (int k = 0; k < PIECE; k++)
            out[sent + (size_t)k] = (char)(sent / PIECE + (size_t)k);
        uv_buf_t b = uv_buf_init(out + sent, PIECE);
        r = pollsock_write(&p.ps, &b, 1, on_done);
        assert_true(r >= 0);
        sent += PIECE;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(r, 0); /* the bound was reached well before 8 MiB */
    assert_true(p.ps.unsent <= POLLSOCK_SEND_BOUND);
    assert_true(pollsock_write_pending(&p.ps));
    size_t got = 0;
    for (int turn = 0; turn < 20000 && p.done == 0; turn++) {
        got += drain(sv[1], in + got, sizeof(in) - got);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(p.done, 1);
    assert_int_equal(p.status, 0);
    /* one more queued write, then the shutdown: the peer reads it all, then the end */
    uv_buf_t last = uv_buf_init(out, PIECE);
    assert_int_equal(pollsock_write(&p.ps, &last, 1, on_done), 1);
    assert_int_equal(pollsock_shutdown(&p.ps), 0);
    ssize_t n = 1;
    for (int turn = 0; turn < 20000 && n != 0; turn++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        n = recv(sv[1], in + got, sizeof(in) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    assert_int_equal(n, 0); /* EOF, after every byte */
    assert_int_equal(got, sent + PIECE);
    assert_memory_equal(in, out, sent);
    assert_memory_equal(in + sent, out, PIECE);
    close(sv[1]);
    close_probe(&loop, &p);
}

/*
 * A close while a recv waits and a send is stuck (the peer reads nothing): both are cancelled,
 * and the close callback comes only once they have ended.
 */
static void test_uring_close_waits_for_its_operations(void **state)
{
    (void)state;
    enum { SIZE = 4 << 20 };
    static char big[SIZE];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    pollsock_read(&p.ps, true);
    uv_buf_t b = uv_buf_init(big, SIZE);
    assert_int_equal(pollsock_write(&p.ps, &b, 1, on_done), 0);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(p.ps.inflight == 2); /* the recv and the send */
    pollsock_close(&p.ps, on_closed);
    assert_int_equal(p.closed, 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the close is done */
    assert_int_equal(p.closed, 1);
    assert_int_equal(p.done, 0); /* no write callback after the close */
    loop_finish(&loop);
    close(sv[1]);
}

/*
 * A close whose queue the peer never takes (its socket buffer is already full): the close
 * gives up after POLLSOCK_CLOSE_FLUSH_MS, so such a peer cannot keep the owner's struct.
 */
static void test_uring_close_gives_up_on_a_peer_that_never_reads(void **state)
{
    (void)state;
    static char fill[64 * 1024];
    uv_loop_t loop;
    struct probe p;
    int sv[2];

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    while (send(p.ps.fd, fill, sizeof(fill), MSG_DONTWAIT) > 0)
        ; /* the kernel's buffer is full: what is queued now cannot go */
    uv_buf_t b = uv_buf_init(fill, 1000);
    assert_int_equal(pollsock_write(&p.ps, &b, 1, on_done), 1);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(p.ps.send_inflight);
    pollsock_close(&p.ps, on_closed);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.closed, 0); /* still flushing */
    uv_run(&loop, UV_RUN_DEFAULT); /* the deadline passes, the send is cancelled */
    assert_int_equal(p.closed, 1);
    assert_int_equal(p.done, 0);
    loop_finish(&loop);
    close(sv[1]);
}

/* p's socket with its kernel buffer full and 1000 bytes queued behind it: a close flushes. */
static void fill_and_queue(uv_loop_t *loop, struct probe *p)
{
    static char fill[64 * 1024];

    while (send(p->ps.fd, fill, sizeof(fill), MSG_DONTWAIT) > 0)
        ;
    uv_buf_t b = uv_buf_init(fill, 1000);
    assert_int_equal(pollsock_write(&p->ps, &b, 1, on_done), 1);
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_true(p->ps.send_inflight);
}

/*
 * At shutdown (pollsock_loop_stop) a flush to a peer that never reads lasts the stop's bound,
 * not POLLSOCK_CLOSE_FLUSH_MS: a close under way before the stop and one after it; with a
 * bound of 0 a close drops its queue at once.
 */
static void test_uring_stop_bounds_the_flushes(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe before, after, cut;
    int sv1[2], sv2[2], sv3[2];

    loop_open(&loop);
    open_pair(&loop, &before, sv1);
    open_pair(&loop, &after, sv2);
    open_pair(&loop, &cut, sv3);
    fill_and_queue(&loop, &before);
    fill_and_queue(&loop, &after);
    fill_and_queue(&loop, &cut);
    pollsock_close(&before.ps, on_closed);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(before.closed, 0); /* flushing */
    uint64_t t0 = uv_hrtime();
    pollsock_loop_stop(&loop, 50);
    pollsock_close(&after.ps, on_closed);
    /* the loop stays alive for cut's socket: turns that do not wait, 5 s at most */
    for (int i = 0; i < 5000 && (before.closed == 0 || after.closed == 0); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(before.closed + after.closed, 2);
    /* 50 ms, against the 5 s of a flush before the stop: a wide margin for a slow machine */
    assert_true(uv_hrtime() - t0 < (uint64_t)POLLSOCK_CLOSE_FLUSH_MS * 1000000 / 2);
    pollsock_loop_stop(&loop, 0);
    pollsock_close(&cut.ps, on_closed);
    assert_false(cut.ps.flushing);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(cut.closed, 1);
    assert_int_equal(before.done + after.done + cut.done, 0);
    loop_finish(&loop);
    close(sv1[1]);
    close(sv2[1]);
    close(sv3[1]);
}

/*
 * A stop with a bound, then one with 0 while a close still flushes to a peer that never reads
 * (a drain's stop, then the process's exit): the second drops the queue at once, and the close
 * ends with it rather than when the first stop's deadline passes.
 */
static void test_uring_stop_zero_cuts_a_flush_under_way(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p;
    int sv[2];
    enum { BOUND_MS = 5000 };

    loop_open(&loop);
    open_pair(&loop, &p, sv);
    fill_and_queue(&loop, &p);
    pollsock_close(&p.ps, on_closed);
    pollsock_loop_stop(&loop, BOUND_MS);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(p.closed, 0); /* flushing, for BOUND_MS at most */
    uint64_t t0 = uv_hrtime();
    pollsock_loop_stop(&loop, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(p.closed, 1);
    /* at once, against the bound's 5 s: a wide margin for a slow machine */
    assert_true(uv_hrtime() - t0 < (uint64_t)BOUND_MS * 1000000 * 2 / 5);
    assert_int_equal(p.done, 0);
    loop_finish(&loop);
    close(sv[1]);
}

/*
 * More sockets with input waiting than the pool has buffers, none of it read at first: the
 * ones the pool cannot serve wait for readable instead, and every byte arrives once the owners
 * read.
 */
static bool hungry;
static void on_read_when_hungry(struct pollsock *ps)
{
    if (hungry)
        on_read(ps);
}

static void test_uring_more_sockets_than_buffers(void **state)
{
    (void)state;
    enum { N = 300 }; /* the pool holds 256 */
    static struct probe ps[N];
    static int peer[N];
    uv_loop_t loop;
    int sv[2];

    loop_open(&loop);
    hungry = false;
    for (int i = 0; i < N; i++) {
        open_pair(&loop, &ps[i], sv);
        ps[i].ps.read_cb = on_read_when_hungry;
        peer[i] = sv[1];
        pollsock_read(&ps[i].ps, true);
    }
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* every recv armed */
    for (int i = 0; i < N; i++)
        assert_int_equal(send(peer[i], "z", 1, 0), 1);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    int polled = 0;
    for (int i = 0; i < N; i++)
        polled += ps[i].ps.poll_armed || ps[i].ps.poke;
    assert_true(polled >= N - 256); /* the pool ran dry for these */
    hungry = true;
    int all = 0;
    for (int turn = 0; turn < 5000 && all < N; turn++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        all = 0;
        for (int i = 0; i < N; i++)
            all += ps[i].ngot == 1;
    }
    assert_int_equal(all, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ps[i].got[0], 'z');
        pollsock_close(&ps[i].ps, on_closed);
        close(peer[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++)
        assert_int_equal(ps[i].closed, 1);
    loop_finish(&loop);
}

static int skip_without_uring(void **state)
{
    const char *why;
    (void)state;
    if (pollsock_use(POLLSOCK_AUTO, &why) == POLLSOCK_URING)
        return 0;
    print_message("io_uring unavailable (%s): its group is skipped\n", why);
    return 1;
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_reads_pause_and_end_at_eof),
        cmocka_unit_test(test_an_owner_closing_at_eof_costs_no_reregistration),
        cmocka_unit_test(test_a_short_write_finishes_when_the_peer_reads),
        cmocka_unit_test(test_a_waiting_write_fails_when_the_peer_goes),
        cmocka_unit_test(test_connect_then_shut_the_write_side),
        cmocka_unit_test(test_a_refused_connect_fails),
        cmocka_unit_test(test_a_close_sends_what_writes_took),
    };
    const struct CMUnitTest uring_only[] = {
        cmocka_unit_test(test_uring_queue_is_bounded_and_shutdown_follows_it),
        cmocka_unit_test(test_uring_close_waits_for_its_operations),
        cmocka_unit_test(test_uring_close_gives_up_on_a_peer_that_never_reads),
        cmocka_unit_test(test_uring_stop_bounds_the_flushes),
        cmocka_unit_test(test_uring_stop_zero_cuts_a_flush_under_way),
        cmocka_unit_test(test_uring_more_sockets_than_buffers),
    };
    int failed = cmocka_run_group_tests_name("epoll", both, use_epoll, NULL);
    if (skip_without_uring(NULL) != 0)
        return failed;
    failed += cmocka_run_group_tests_name("io_uring", both, use_uring, NULL);
    failed += cmocka_run_group_tests_name("io_uring only", uring_only, use_uring, NULL);
    return failed;
}
