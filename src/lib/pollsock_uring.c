/*
 * The io_uring backend of pollsock: one ring per loop, driven by libuv.
 *
 * The loop still sleeps in libuv's epoll_wait, with the ring's fd in its set (a uv_poll_t).
 * The ring is set up with COOP_TASKRUN: completions are posted when this thread next leaves
 * the kernel, which the wake-up from epoll_wait does, so the usual loop turn reads them from
 * shared memory and makes one io_uring_enter, in a uv_prepare_t just before the loop sleeps
 * again, that submits every send, re-armed recv and cancel the turn queued. (DEFER_TASKRUN
 * would post them only inside io_uring_enter, and on this kernel a ring fd set up that way
 * never became readable to epoll: the loop slept through its completions.)
 *
 * Receives are multishot recvs picking buffers of BUF_SIZE from a per-ring pool (a provided
 * buffer ring). A buffer holds one arrival until pollsock_recv has copied it all out, then goes
 * back to the pool. Reading off cancels the socket's recv, so a paused socket holds at most
 * what arrived before (as the kernel's socket buffer held it before). When the pool runs dry
 * a recv ends with ENOBUFS; that socket then waits for readable with a one-shot poll and its
 * owner's pollsock_recv reads with recv() itself until nothing is left, then the multishot
 * recv is re-armed: no socket depends on another giving buffers back.
 *
 * Sends: a write is copied into the socket's chunks and one send is in flight at a time (in
 * order, the rest of a short send first). Past POLLSOCK_SEND_BOUND unsent bytes the write is
 * not copied: it waits, borrowed, behind the queue and its callback follows, exactly as a
 * write the kernel took only in part.
 *
 * A completion names its socket and operation in user_data (the pointer's low bits). A socket
 * counts its operations in flight; its close cancels them all by fd, and the close callback
 * runs when the last has ended, so the owner's struct outlives every completion.
 *
 * A close first sends what the queue holds. pollsock_write returned 1 for those bytes, which
 * on the epoll backend means the kernel has them, and the kernel sends what it has after a
 * close: an owner that writes a response and closes at once (a client that shut its side
 * down) must not lose its tail here either. Reading is cancelled at once; the queue gets
 * POLLSOCK_CLOSE_FLUSH_MS to go, so a peer that never reads cannot keep the owner's struct.
 * At shutdown (pollsock_loop_stop) that bound shrinks, for the flushes under way too, which the
 * ring lists for it: a process that exits would lose the queue anyway, and a peer that never
 * reads must not hold the exit 5 s.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/pollsock_uring.h"

#define RING_ENTRIES 1024
#define BUF_COUNT    256 /* the pool: 1 MiB per ring */
#define BUF_SIZE     4096
#define BGID         0
#define CHUNK_SIZE   (16 * 1024 - 64)
#define CHUNKS_KEPT  64 /* free send chunks kept for reuse */
#define PUMP_ROUNDS  8  /* submit-and-reap rounds per loop turn, at most */
#define RING_FLAGS   (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER)

enum op { OP_NONE, OP_RECV, OP_SEND, OP_CONNECT, OP_POLL, OP_TIMEOUT };
#define OP_MASK 7u

struct pollsock_chunk {
    struct pollsock_chunk *next;
    uint32_t len, sent;
    char data[CHUNK_SIZE];
};

struct rx_buf {
    uint32_t len;
    int next; /* the next buffer of the same socket, -1: none */
};

struct pollsock_ring {
    struct io_uring ring;
    uv_loop_t *loop;
    uv_poll_t wake;     /* the ring's fd readable: completions are there */
    uv_prepare_t flush; /* submits and reaps before the loop sleeps */
    uv_idle_t busy;     /* keeps the turn from sleeping while input waits for its owner */
    struct io_uring_buf_ring *br;
    char *pool;
    struct rx_buf bufs[BUF_COUNT];
    unsigned held; /* buffers out of the pool, in sockets' queues */
    unsigned live; /* sockets open or closing */
    struct pollsock *ready, *closed;
    struct pollsock_chunk *free_chunks;
    unsigned nfree_chunks;
    int handles;                         /* of wake, flush, busy: not yet closed */
    struct list_node flushing;           /* closing sockets sending their queue (ps->flush_link) */
    bool stopping;                       /* pollsock_loop_stop: flushes get stop_flush at most */
    struct __kernel_timespec stop_flush; /* read by the kernel when a timeout is submitted */
};

static _Thread_local struct pollsock_ring *this_ring;

/* Read by the kernel when a close's flush deadline is submitted; never written. */
static struct __kernel_timespec close_flush_deadline = {
    .tv_sec = POLLSOCK_CLOSE_FLUSH_MS / 1000,
    .tv_nsec = (POLLSOCK_CLOSE_FLUSH_MS % 1000) * 1000000LL,
};

static uint64_t ud_of(struct pollsock *ps, enum op op)
{
    return (uint64_t)(uintptr_t)ps | op;
}

/* ---- the pool ------------------------------------------------------------------------------ */

static void buf_give_back(struct pollsock_ring *r, int bid)
{
    io_uring_buf_ring_add(r->br, r->pool + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(r->br, 1);
    r->held--;
}

/* Returns every buffer ps still holds. */
static void rx_drop(struct pollsock *ps)
{
    while (ps->rx_head >= 0) {
        int bid = ps->rx_head;
        ps->rx_head = ps->ring->bufs[bid].next;
        buf_give_back(ps->ring, bid);
    }
    ps->rx_tail = -1;
    ps->rx_off = 0;
}

static struct pollsock_chunk *chunk_get(struct pollsock_ring *r)
{
    struct pollsock_chunk *c = r->free_chunks;

    if (c) {
        r->free_chunks = c->next;
        r->nfree_chunks--;
    } else {
        c = xmalloc(sizeof(*c));
    }
    c->next = NULL;
    c->len = c->sent = 0;
    return c;
}

static void chunk_put(struct pollsock_ring *r, struct pollsock_chunk *c)
{
    if (r->nfree_chunks >= CHUNKS_KEPT) {
        free(c);
        return;
    }
    c->next = r->free_chunks;
    r->free_chunks = c;
    r->nfree_chunks++;
}

/* Empties the send queue (no send may be reading from it any more). */
static void chunks_drop(struct pollsock *ps)
{
    while (ps->out_head) {
        struct pollsock_chunk *c = ps->out_head;
        ps->out_head = c->next;
        chunk_put(ps->ring, c);
    }
    ps->out_tail = NULL;
    ps->unsent = 0;
}

/* ---- submission ------------------------------------------------------------------------------ */

static struct io_uring_sqe *sqe_get(struct pollsock_ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

    if (!sqe) { /* the queue is full: hand it to the kernel and take a fresh entry */
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    MESH_BUG_ON(!sqe); /* cannot be: the submit emptied the queue */
    return sqe;
}

static void arm_recv(struct pollsock *ps)
{
    struct io_uring_sqe *sqe = sqe_get(ps->ring);

    io_uring_prep_recv_multishot(sqe, ps->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud_of(ps, OP_RECV));
    ps->recv_armed = true;
    ps->inflight++;
}

/* Cancels the operation op of ps; its own completion follows with -ECANCELED. */
static void cancel_op(struct pollsock *ps, enum op op)
{
    struct io_uring_sqe *sqe = sqe_get(ps->ring);

    io_uring_prep_cancel64(sqe, ud_of(ps, op), 0);
    io_uring_sqe_set_data64(sqe, 0);
}

static void arm_poll(struct pollsock *ps)
{
    struct io_uring_sqe *sqe = sqe_get(ps->ring);

    io_uring_prep_poll_add(sqe, ps->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud_of(ps, OP_POLL));
    ps->poll_armed = true;
    ps->inflight++;
}

static bool has_input(const struct pollsock *ps)
{
    return ps->rx_head >= 0 || ps->rx_end != 0 || ps->poke;
}

static void mark_ready(struct pollsock *ps)
{
    if (ps->on_ready)
        return;
    ps->on_ready = true;
    ps->next_ready = ps->ring->ready;
    ps->ring->ready = ps;
}

/*
 * What the owner's wish to read needs now: input waiting is dispatched, an idle socket gets
 * its recv (or, with the pool low, its poll), a paused one loses its recv.
 */
static void sync_reading(struct pollsock *ps)
{
    struct pollsock_ring *r = ps->ring;

    if (ps->closing)
        return;
    if (!ps->reading || ps->eof) {
        if (ps->recv_armed && !ps->recv_cancel) {
            cancel_op(ps, OP_RECV);
            ps->recv_cancel = true;
        }
        return;
    }
    if (has_input(ps)) {
        mark_ready(ps);
        return;
    }
    if (ps->recv_armed || ps->poll_armed || ps->rx_end)
        return;
    if (r->held < BUF_COUNT * 3 / 4)
        arm_recv(ps);
    else
        arm_poll(ps);
}

static void start_send(struct pollsock *ps)
{
    struct io_uring_sqe *sqe;

    if (ps->send_inflight || (ps->closing && !ps->flushing))
        return;
    if (ps->out_head) {
        struct pollsock_chunk *c = ps->out_head;
        sqe = sqe_get(ps->ring);
        io_uring_prep_send(sqe, ps->fd, c->data + c->sent, c->len - c->sent, MSG_NOSIGNAL);
    } else if (ps->nwbufs > 0) {
        ps->wmsg = (struct msghdr){.msg_iov = (struct iovec *)ps->wbufs, .msg_iovlen = ps->nwbufs};
        sqe = sqe_get(ps->ring);
        io_uring_prep_sendmsg(sqe, ps->fd, &ps->wmsg, MSG_NOSIGNAL);
    } else {
        if (ps->shut_wanted) {
            ps->shut_wanted = false;
            shutdown(ps->fd, SHUT_WR); /* an error shows as the peer's EOF or reset */
        }
        return;
    }
    io_uring_sqe_set_data64(sqe, ud_of(ps, OP_SEND));
    ps->send_inflight = true;
    ps->inflight++;
}

/* ---- completions ----------------------------------------------------------------------------- */

static void on_recv(struct pollsock *ps, int res, unsigned flags)
{
    struct pollsock_ring *r = ps->ring;

    if (flags & IORING_CQE_F_BUFFER) {
        int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
        r->held++;
        if (res <= 0 || ps->closing || ps->eof) {
            buf_give_back(r, bid);
        } else {
            r->bufs[bid] = (struct rx_buf){.len = (uint32_t)res, .next = -1};
            if (ps->rx_tail >= 0)
                r->bufs[ps->rx_tail].next = bid;
            else
                ps->rx_head = bid;
            ps->rx_tail = bid;
        }
    }
    if (!(flags & IORING_CQE_F_MORE)) { /* the multishot recv has ended */
        ps->recv_armed = ps->recv_cancel = false;
        ps->inflight--;
        if (res == 0)
            ps->rx_end = UV_EOF;
        else if (res < 0 && res != -ECANCELED && res != -ENOBUFS)
            ps->rx_end = res; /* uv errors are negated errnos on Unix */
        if (res == -ENOBUFS && !ps->closing)
            arm_poll(ps);
    }
    if (!ps->closing)
        sync_reading(ps);
}

/* ps's flush is over (the close ends once its operations in flight have). */
static void flush_end(struct pollsock *ps)
{
    ps->flushing = false;
    list_remove(&ps->flush_link);
}

/* The flush deadline passed (or shutdown cut it): what is left is dropped. */
static void flush_cut(struct pollsock *ps)
{
    struct io_uring_sqe *sqe = sqe_get(ps->ring);

    flush_end(ps);
    io_uring_prep_cancel_fd(sqe, ps->fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, 0);
}

/* Takes back ps's flush deadline before it passes: the close ends once it has gone. */
static void deadline_remove(struct pollsock *ps)
{
    struct io_uring_sqe *sqe = sqe_get(ps->ring);

    io_uring_prep_timeout_remove(sqe, ud_of(ps, OP_TIMEOUT), 0);
    io_uring_sqe_set_data64(sqe, 0);
}

/* A close's queue has gone (or failed): its deadline is taken back, then the close ends. */
static void flush_done(struct pollsock *ps)
{
    flush_end(ps);
    deadline_remove(ps);
}

static void on_send(struct pollsock *ps, int res)
{
    struct pollsock_ring *r = ps->ring;

    ps->send_inflight = false;
    ps->inflight--;
    if (ps->closing && !ps->flushing) {
        chunks_drop(ps); /* the kernel is done with the chunk it was reading from */
        return;
    }
    if (res < 0) {
        ps->werr = res;
        ps->shut_wanted = false;
        chunks_drop(ps);
        if (ps->flushing) {
            flush_done(ps);
            return;
        }
        if (ps->nwbufs > 0) {
            ps->nwbufs = 0;
            ps->write_cb(ps, res);
        }
        return;
    }
    if (ps->out_head) {
        struct pollsock_chunk *c = ps->out_head;
        c->sent += (uint32_t)res;
        ps->unsent -= (size_t)res;
        if (c->sent == c->len) {
            ps->out_head = c->next;
            if (!ps->out_head)
                ps->out_tail = NULL;
            chunk_put(r, c);
        }
    } else {
        pollsock_wbufs_advance(ps, (size_t)res);
        if (ps->nwbufs == 0)
            ps->write_cb(ps, 0);
    }
    if (ps->flushing && !ps->out_head) {
        flush_done(ps);
        return;
    }
    start_send(ps);
}

static void complete(struct pollsock_ring *r, const struct io_uring_cqe *cqe)
{
    struct pollsock *ps = (struct pollsock *)(uintptr_t)(cqe->user_data & ~(uint64_t)OP_MASK);
    enum op op = (enum op)(cqe->user_data & OP_MASK);

    if (!ps) /* a cancel's own completion */
        return;
    /* a close from the callbacks below lists ps itself once nothing is in flight */
    bool was_closing = ps->closing;
    switch (op) {
    case OP_RECV:
        on_recv(ps, cqe->res, cqe->flags);
        break;
    case OP_SEND:
        on_send(ps, cqe->res);
        break;
    case OP_CONNECT:
        ps->inflight--;
        ps->connecting = false;
        if (!ps->closing) {
            ps->connect_cb(ps, cqe->res < 0 ? cqe->res : 0);
            if (!ps->closing) {
                start_send(ps);
                sync_reading(ps);
            }
        }
        break;
    case OP_POLL:
        ps->inflight--;
        ps->poll_armed = false;
        if (!ps->closing) {
            ps->poke = true;
            sync_reading(ps);
        }
        break;
    case OP_TIMEOUT: /* a close's flush deadline: passed, or taken back by flush_done */
        ps->inflight--;
        if (ps->flushing) /* the peer did not take the rest in time: it is dropped */
            flush_cut(ps);
        break;
    default:
        MESH_BUG_ON(true);
        return;
    }
    if (was_closing && ps->inflight == 0) {
        ps->next_closed = r->closed;
        r->closed = ps;
    }
}

/* The read callbacks of the sockets whose input waits. */
static void dispatch(struct pollsock_ring *r)
{
    struct pollsock *list = r->ready;

    r->ready = NULL;
    while (list) {
        struct pollsock *ps = list;
        list = ps->next_ready;
        ps->on_ready = false;
        if (ps->closing || !ps->reading || ps->eof || !has_input(ps))
            continue;
        ps->read_cb(ps);
        sync_reading(ps);
    }
}

/* The close callbacks of the sockets whose last operation has ended. */
static void finish_closes(struct pollsock_ring *r)
{
    while (r->closed) {
        struct pollsock *ps = r->closed;
        r->closed = ps->next_closed;
        close(ps->fd);
        ps->fd = -1;
        r->live--;
        ps->close_cb((uv_handle_t *)&ps->poll);
    }
    if (r->live == 0)
        uv_unref((uv_handle_t *)&r->wake);
}

static void reap(struct pollsock_ring *r)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        struct io_uring_cqe copy = *cqe;
        io_uring_cqe_seen(&r->ring, cqe);
        complete(r, &copy);
    }
}

/* Active while the turn must not sleep: the loop then polls without waiting, and pump runs. */
static void on_busy(uv_idle_t *h)
{
    (void)h;
}

/*
 * One loop turn's io: what the last epoll_wait's wake-up posted is reaped without a system
 * call, the owners run, and what they queued goes to the kernel in one io_uring_enter, whose
 * completions (sends done at once, mostly) are reaped in the next round.
 */
static void pump(uv_prepare_t *h)
{
    struct pollsock_ring *r = h->data;

    for (int round = 0; round < PUMP_ROUNDS; round++) {
        reap(r);
        dispatch(r);
        finish_closes(r);
        if (io_uring_sq_ready(&r->ring) == 0 && !io_uring_cq_ready(&r->ring))
            break;
        io_uring_submit(&r->ring);
    }
    if (io_uring_sq_ready(&r->ring) > 0)
        io_uring_submit(&r->ring);
    /* input an owner left (its buffer was full) is offered again next turn, without sleeping */
    if (r->ready || r->closed || io_uring_cq_ready(&r->ring))
        uv_idle_start(&r->busy, on_busy);
    else
        uv_idle_stop(&r->busy);
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    /* the completions are reaped in pump, which runs before the loop sleeps again */
    (void)h, (void)status, (void)events;
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int ring_setup(struct io_uring *ring, struct io_uring_buf_ring **br, unsigned nbufs)
{
    struct io_uring_params p = {.flags = RING_FLAGS};
    int rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);

    if (rc < 0)
        return rc;
    if (!(p.features & IORING_FEAT_NODROP)) {
        rc = -ENOSYS; /* completions could be lost when the queue overflows */
        goto err_after_ring;
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 4096, nbufs * sizeof(struct io_uring_buf)) != 0) {
        rc = -ENOMEM;
        goto err_after_ring;
    }
    *br = mem;
    io_uring_buf_ring_init(*br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)mem, .ring_entries = nbufs, .bgid = BGID};
    rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        free(mem);
        goto err_after_ring;
    }
    return 0;

err_after_ring:
    io_uring_queue_exit(ring);
    return rc;
}

int psu_probe(const char **why)
{
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    int rc = ring_setup(&ring, &br, 1);

    if (rc < 0) {
        *why = rc == -ENOSYS  ? "no io_uring here (kernel, or a seccomp filter)"
               : rc == -EPERM ? "io_uring is disabled (kernel.io_uring_disabled)"
                              : "the ring could not be set up";
        return rc;
    }
    /* the same kernel may lack multishot recv (6.0): a recv on a socketpair tells */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        rc = -errno;
        *why = "socketpair failed";
        goto out;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    close(sv[1]); /* EOF at once: the recv completes with 0, or an error when unsupported */
    struct io_uring_cqe *cqe;
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc >= 0)
        rc = io_uring_peek_cqe(&ring, &cqe);
    if (rc == 0 && cqe->res < 0 && cqe->res != -ENOBUFS) {
        rc = cqe->res;
        *why = "no multishot recv (a kernel before 6.0)";
    }
    close(sv[0]);
out:
    io_uring_unregister_buf_ring(&ring, BGID);
    io_uring_queue_exit(&ring);
    free(br);
    return rc < 0 ? rc : 0;
}

int psu_loop_init(uv_loop_t *loop)
{
    if (MESH_BUG_ON(this_ring != NULL)) /* one ring per thread, as one loop per thread */
        return UV_EBUSY;
    struct pollsock_ring *r = xcalloc_aligned(1, sizeof(*r), 64);
    int rc = ring_setup(&r->ring, &r->br, BUF_COUNT);

    if (rc < 0) {
        free(r);
        return rc;
    }
    r->pool = xcalloc_aligned(BUF_COUNT, BUF_SIZE, 4096);
    for (int i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(r->br, r->pool + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUF_COUNT), i);
    io_uring_buf_ring_advance(r->br, BUF_COUNT);
    r->loop = loop;
    uv_poll_init(loop, &r->wake, r->ring.ring_fd);
    uv_prepare_init(loop, &r->flush);
    uv_idle_init(loop, &r->busy);
    r->wake.data = r->flush.data = r->busy.data = r;
    r->handles = 3;
    list_init(&r->flushing);
    uv_poll_start(&r->wake, UV_READABLE, on_wake);
    uv_prepare_start(&r->flush, pump);
    /* only the sockets keep the loop alive */
    uv_unref((uv_handle_t *)&r->wake);
    uv_unref((uv_handle_t *)&r->flush);
    uv_unref((uv_handle_t *)&r->busy);
    this_ring = r;
    return 0;
}

static void ring_handle_closed(uv_handle_t *h)
{
    struct pollsock_ring *r = h->data;
    r->handles--;
}

void psu_loop_close(uv_loop_t *loop)
{
    struct pollsock_ring *r = this_ring;

    if (!r || r->loop != loop)
        return;
    MESH_BUG_ON(r->live != 0); /* every socket closed before the loop ended */
    uv_close((uv_handle_t *)&r->wake, ring_handle_closed);
    uv_close((uv_handle_t *)&r->flush, ring_handle_closed);
    uv_close((uv_handle_t *)&r->busy, ring_handle_closed);
    uv_run(loop, UV_RUN_DEFAULT);
    MESH_BUG_ON(r->handles != 0);
    io_uring_unregister_buf_ring(&r->ring, BGID);
    io_uring_queue_exit(&r->ring);
    while (r->free_chunks) {
        struct pollsock_chunk *c = r->free_chunks;
        r->free_chunks = c->next;
        free(c);
    }
    free(r->br);
    free(r->pool);
    free(r);
    this_ring = NULL;
}

void psu_loop_stop(uv_loop_t *loop, unsigned flush_ms)
{
    struct pollsock_ring *r = psu_ring_of(loop);
    struct pollsock *ps;

    if (!r)
        return;
    r->stopping = true;
    r->stop_flush = (struct __kernel_timespec){.tv_sec = flush_ms / 1000,
                                               .tv_nsec = (flush_ms % 1000) * 1000000LL};
    LIST_FOR_EACH(ps, &r->flushing, flush_link) {
        if (flush_ms == 0) {
            /* the deadline is no operation on ps's fd, so the cut leaves it in flight: the
             * close would wait for it, up to the earlier bound */
            flush_cut(ps); /* leaves the list */
            deadline_remove(ps);
            continue;
        }
        /* from now: a deadline already nearer may move out to flush_ms, never past it */
        struct io_uring_sqe *sqe = sqe_get(r);
        io_uring_prep_timeout_update(sqe, &r->stop_flush, ud_of(ps, OP_TIMEOUT), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }
}

struct pollsock_ring *psu_ring_of(const uv_loop_t *loop)
{
    return this_ring && this_ring->loop == loop ? this_ring : NULL;
}

/* ---- the operations ---------------------------------------------------------------------------
 */

int psu_open(struct pollsock *ps, struct pollsock_ring *r)
{
    ps->ring = r;
    ps->rx_head = ps->rx_tail = -1;
    ps->poll.loop = r->loop; /* for owners that ask the handle for its loop */
    if (r->live++ == 0)
        uv_ref((uv_handle_t *)&r->wake);
    return 0;
}

int psu_connect(struct pollsock *ps, const struct sockaddr *sa, socklen_t salen)
{
    memcpy(&ps->peer, sa, salen); /* the kernel reads it when the connect runs */
    struct io_uring_sqe *sqe = sqe_get(ps->ring);
    io_uring_prep_connect(sqe, ps->fd, (const struct sockaddr *)&ps->peer, salen);
    io_uring_sqe_set_data64(sqe, ud_of(ps, OP_CONNECT));
    ps->inflight++;
    return 0;
}

void psu_read(struct pollsock *ps)
{
    if (!ps->connecting)
        sync_reading(ps);
}

ssize_t psu_recv(struct pollsock *ps, void *p, size_t n)
{
    struct pollsock_ring *r = ps->ring;
    size_t got = 0;

    while (got < n && ps->rx_head >= 0) {
        int bid = ps->rx_head;
        struct rx_buf *b = &r->bufs[bid];
        size_t take = b->len - ps->rx_off;
        if (take > n - got)
            take = n - got;
        memcpy((char *)p + got, r->pool + (size_t)bid * BUF_SIZE + ps->rx_off, take);
        got += take;
        ps->rx_off += (unsigned)take;
        if (ps->rx_off == b->len) {
            ps->rx_head = b->next;
            if (ps->rx_head < 0)
                ps->rx_tail = -1;
            ps->rx_off = 0;
            buf_give_back(r, bid);
        }
    }
    if (got > 0)
        return (ssize_t)got;
    if (ps->rx_end) {
        ps->eof = true;
        return ps->rx_end;
    }
    if (!ps->poke)
        return UV_EAGAIN;
    /* the pool ran dry for this socket: read as the epoll backend does until it is empty */
    ssize_t rc;
    do {
        rc = recv(ps->fd, p, n, 0);
    } while (rc < 0 && errno == EINTR);
    if (rc > 0)
        return rc;
    ps->poke = false;
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return UV_EAGAIN;
    ps->eof = true;
    return rc == 0 ? UV_EOF : uv_translate_sys_error(errno);
}

int psu_write(struct pollsock *ps, const uv_buf_t *bufs, unsigned n, size_t total,
              pollsock_status_cb cb)
{
    struct pollsock_ring *r = ps->ring;

    if (ps->werr)
        return ps->werr;
    if (ps->unsent + total > POLLSOCK_SEND_BOUND) {
        /* not copied: it waits behind the queue, borrowed, and cb says when it went */
        memcpy(ps->wbufs, bufs, n * sizeof(bufs[0]));
        ps->nwbufs = n;
        ps->write_cb = cb;
        start_send(ps);
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *src = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0) {
            struct pollsock_chunk *c = ps->out_tail;
            /* the chunk in flight is the kernel's until its send completes */
            if (!c || c->len == CHUNK_SIZE || (c == ps->out_head && ps->send_inflight)) {
                c = chunk_get(r);
                if (ps->out_tail)
                    ps->out_tail->next = c;
                else
                    ps->out_head = c;
                ps->out_tail = c;
            }
            size_t take = CHUNK_SIZE - c->len < left ? CHUNK_SIZE - c->len : left;
            memcpy(c->data + c->len, src, take);
            c->len += (uint32_t)take;
            src += take;
            left -= take;
        }
    }
    ps->unsent += total;
    if (!ps->connecting)
        start_send(ps);
    return 1;
}

int psu_shutdown(struct pollsock *ps)
{
    if (ps->send_inflight || ps->out_head) {
        ps->shut_wanted = true; /* after the queued sends (start_send) */
        return 0;
    }
    return shutdown(ps->fd, SHUT_WR) < 0 ? uv_translate_sys_error(errno) : 0;
}

/* The close of a socket whose queue still holds bytes (see the top of this file). */
static void flush_then_close(struct pollsock *ps)
{
    struct io_uring_sqe *sqe;

    ps->flushing = true;
    list_insert_tail(&ps->ring->flushing, &ps->flush_link);
    if (ps->recv_armed && !ps->recv_cancel) {
        cancel_op(ps, OP_RECV);
        ps->recv_cancel = true;
    }
    if (ps->poll_armed)
        cancel_op(ps, OP_POLL);
    sqe = sqe_get(ps->ring);
    io_uring_prep_timeout(sqe, ps->ring->stopping ? &ps->ring->stop_flush : &close_flush_deadline,
                          0, 0);
    io_uring_sqe_set_data64(sqe, ud_of(ps, OP_TIMEOUT));
    ps->inflight++;
    start_send(ps);
}

void psu_close(struct pollsock *ps, uv_close_cb close_cb)
{
    struct pollsock_ring *r = ps->ring;

    ps->close_cb = close_cb;
    ps->poll.data = ps->data;
    rx_drop(ps);
    ps->shut_wanted = false;
    bool cut = r->stopping && r->stop_flush.tv_sec == 0 && r->stop_flush.tv_nsec == 0;
    if (ps->out_head && !ps->werr && !ps->connecting && !cut) {
        flush_then_close(ps);
        return;
    }
    /* every chunk but the one a send in flight reads from (none when it sends a borrowed write) */
    bool keep = ps->send_inflight && ps->out_head;
    struct pollsock_chunk *c = keep ? ps->out_head->next : ps->out_head;
    while (c) {
        struct pollsock_chunk *next = c->next;
        chunk_put(r, c);
        c = next;
    }
    if (keep)
        ps->out_head->next = NULL;
    else
        ps->out_head = NULL;
    ps->out_tail = ps->out_head;
    if (ps->inflight > 0) {
        struct io_uring_sqe *sqe = sqe_get(r);
        io_uring_prep_cancel_fd(sqe, ps->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, 0);
        return; /* complete() lists ps when the last operation ends */
    }
    ps->next_closed = r->closed;
    r->closed = ps;
    uv_idle_start(&r->busy, on_busy); /* the callback comes this turn */
}
