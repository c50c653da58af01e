/*
 * A connected non-blocking socket read and written by its owner on readiness: a uv_poll_t
 * over the fd, recv into the owner's own buffer, send/sendmsg for writes, and a wait for
 * writable only when the kernel takes less than was offered.
 *
 * Why not uv_stream_t: libuv reads a stream with read(), which passes the VFS layer before
 * the socket (recv goes to the socket directly), and every read is a round trip through an
 * alloc and a read callback. Here the owner is told "readable" and calls pollsock_recv with
 * its buffer; a proxy forwarding small messages both ways saves both.
 *
 * The fd stays registered with the loop's epoll for as long as what it waits for does not
 * change: reading on (the steady state of a keep-alive connection) costs no epoll_ctl per
 * message. Changing the set (pausing reads for backpressure, waiting for writable after a
 * short send, a connect) re-registers the fd, which costs libuv's uv_poll_start two
 * epoll_ctl; so does opening (uv_poll_init checks the fd with an add and a delete). Changes
 * made in the socket's own callbacks are registered once, when they return, and not at all
 * when the owner closes there (the usual end: EOF read, then close).
 *
 * Like a uv stream, reading stops by itself at EOF or an error. Everything runs on the loop's
 * thread. The owner embeds the struct; it must stay allocated until the close callback.
 *
 * Two backends serve this one interface, chosen once per process (pollsock_use):
 * - epoll: the readiness path above, one system call per recv and per send.
 * - io_uring (lib/pollsock_uring.c), on the loops that called pollsock_loop_init: a multishot
 *   recv per socket fills buffers from a per-loop pool, pollsock_recv copies out of them with
 *   no system call, and a write is copied into the socket's send queue and sent with the
 *   loop turn's other operations in one io_uring_enter. On a VM where a system call costs a
 *   microsecond, that is most of what the epoll path spends beyond the TCP work itself.
 *   What the owner sees differs in two ways only: pollsock_write returns 1 once the bytes are
 *   queued (up to POLLSOCK_SEND_BOUND unsent; past it the write waits, as a short send did),
 *   and an error of a queued send surfaces at the next write or as the peer's reset on recv.
 *   A close still sends the queue first, as the kernel sends what it took before a close
 *   (for up to POLLSOCK_CLOSE_FLUSH_MS), and drops a waiting write's rest, as epoll does.
 */
#ifndef MESH_LIB_POLLSOCK_H
#define MESH_LIB_POLLSOCK_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/list.h"

#define POLLSOCK_MAX_BUFS 4 /* buffers of one pollsock_write */
/* io_uring: the unsent bytes a socket queues before a write waits (backpressure, memory) */
#define POLLSOCK_SEND_BOUND (16 * 1024)
/* io_uring: how long a close waits for the peer to take what the send queue holds */
#define POLLSOCK_CLOSE_FLUSH_MS 5000

struct pollsock;
struct pollsock_ring;
struct pollsock_chunk;

enum pollsock_backend { POLLSOCK_AUTO, POLLSOCK_EPOLL, POLLSOCK_URING };

/* ps is readable (data, EOF or an error waits): the owner calls pollsock_recv. */
typedef void (*pollsock_read_cb)(struct pollsock *ps);
/* A connect or a write that was waiting ended: 0 or a negative uv error. */
typedef void (*pollsock_status_cb)(struct pollsock *ps, int status);

struct pollsock {
    uv_poll_t poll; /* its data points at the pollsock until pollsock_close */
    int fd;         /* owned: closed by pollsock_close */
    int events;     /* UV_READABLE | UV_WRITABLE registered with the loop now */
    bool reading;   /* the owner wants read_cb */
    bool eof;       /* EOF or an error was read: reading is over */
    bool connecting, closing;
    bool in_io; /* in pollsock_io: what it waits for is registered at the end */
    pollsock_read_cb read_cb;
    pollsock_status_cb connect_cb, write_cb;
    uv_buf_t wbufs[POLLSOCK_MAX_BUFS]; /* the unsent rest of a write (borrowed, see write) */
    unsigned nwbufs;                   /* 0: no write waiting */
    void *data;                        /* the owner's */

    /* io_uring backend only (ring != NULL); see lib/pollsock_uring.c */
    struct pollsock_ring *ring;
    struct pollsock *next_ready, *next_closed; /* the ring's lists */
    int inflight;                              /* operations whose last completion is due */
    int rx_end;                                /* 0, or UV_EOF / the error after the data */
    int werr;                                  /* a queued send's error, for the next write */
    int rx_head, rx_tail;                      /* received buffers (ids), -1: none */
    unsigned rx_off;                           /* bytes of rx_head already taken */
    bool recv_armed, recv_cancel, poll_armed, poke, send_inflight, shut_wanted, on_ready;
    bool flushing;                              /* closing, with the send queue still going out */
    struct list_node flush_link;                /* in the ring's flushing list while flushing */
    struct pollsock_chunk *out_head, *out_tail; /* the send queue, out_head in flight */
    size_t unsent;
    uv_close_cb close_cb;
    struct msghdr wmsg;           /* the waiting write's sendmsg */
    struct sockaddr_storage peer; /* a connect's address, read by the kernel */
};

/*
 * Picks the backend for the whole process before any loop is set up: POLLSOCK_AUTO takes
 * io_uring when a ring with what the backend needs can be made here (a container whose
 * seccomp profile blocks io_uring cannot), else epoll. Returns the backend in use, or
 * UV_ENOSYS when POLLSOCK_URING was asked for and cannot be had (why, in *why: static).
 */
int pollsock_use(enum pollsock_backend want, const char **why);

/* "epoll" or "io_uring" */
const char *pollsock_backend_name(enum pollsock_backend b);

/*
 * Called on the thread that runs loop, before its sockets open: with the io_uring backend,
 * loop gets its ring (a no-op with epoll). 0 or a negative uv error (then loop stays on
 * epoll). pollsock_loop_close undoes it once uv_run has returned, before uv_loop_close; it
 * runs loop to finish its own handles' closes.
 */
int pollsock_loop_init(uv_loop_t *loop);
void pollsock_loop_close(uv_loop_t *loop);

/*
 * The owner of loop is shutting down (on loop's thread): with io_uring, a close sends what its
 * send queue holds for at most flush_ms from now on, instead of POLLSOCK_CLOSE_FLUSH_MS, the
 * closes already sending included; 0 drops what is queued at once, as a process that exits
 * loses what it had not given the kernel. A peer that never reads then holds the loop's end
 * flush_ms at most. Callable again with a smaller bound; a no-op with epoll, where a close
 * hands everything to the kernel.
 */
void pollsock_loop_stop(uv_loop_t *loop, unsigned flush_ms);

/*
 * Takes over fd, a connected socket (TCP or UNIX) already in non-blocking mode, and serves
 * it on loop with read_cb for its reads (off until pollsock_read). On failure fd is left to
 * the caller. 0 or a negative uv error.
 */
int pollsock_open(struct pollsock *ps, uv_loop_t *loop, int fd, pollsock_read_cb read_cb);

/*
 * A new non-blocking TCP socket connecting to sa (borrowed), with TCP_NODELAY; cb runs once
 * the connect ends (status < 0 on failure: then close ps). When even the start fails the
 * error is returned and ps holds nothing to close.
 */
int pollsock_connect(struct pollsock *ps, uv_loop_t *loop, const struct sockaddr *sa,
                     pollsock_read_cb read_cb, pollsock_status_cb cb);

/* Turns read_cb on or off; re-registers the fd only when that changes what it waits for. */
void pollsock_read(struct pollsock *ps, bool on);

/*
 * One recv of up to n bytes into p: the count, UV_EAGAIN when nothing is there after all,
 * UV_EOF at the end of the peer's data, or a negative uv error. After EOF or an error ps
 * reads no more.
 */
ssize_t pollsock_recv(struct pollsock *ps, void *p, size_t n);

/*
 * Sends bufs (1 to POLLSOCK_MAX_BUFS of them, one send or sendmsg): 1 when all went now (or,
 * with io_uring, were copied into the send queue), 0 when the rest waits for the socket to
 * become writable (cb follows, with the status of the rest), or a negative uv error. While
 * the rest waits, the bytes of bufs stay the caller's and must not change or move, and no
 * other write may start. bufs itself is copied.
 */
int pollsock_write(struct pollsock *ps, const uv_buf_t *bufs, unsigned n, pollsock_status_cb cb);

/* Whether a write's rest is waiting. */
static inline bool pollsock_write_pending(const struct pollsock *ps)
{
    return ps->nwbufs > 0;
}

/*
 * Shuts the write side down (no write may be waiting): now, or with io_uring once the queued
 * sends are gone. 0 or a negative uv error.
 */
int pollsock_shutdown(struct pollsock *ps);

/*
 * Closes the fd and the handle (idempotent): no callback of ps runs after this call but
 * close_cb, which receives the poll handle with its data set to ps->data once libuv is done
 * with it (as deadline_close, so an owner of several handles counts them in one callback).
 * With io_uring, once the send queue has gone out (see above) and every other operation in
 * flight on the fd has ended (they are cancelled); the handle passed is then only a carrier
 * of data, never initialised.
 */
void pollsock_close(struct pollsock *ps, uv_close_cb close_cb);

#endif
