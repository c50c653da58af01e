/* Sockets read and written on readiness, over a uv_poll_t each. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/bug.h"
#include "lib/pollsock.h"
#include "lib/pollsock_uring.h"

/* libuv lays uv_buf_t out as struct iovec on Unix, so that writes can pass it to the kernel. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not a struct iovec");

static void pollsock_io(uv_poll_t *h, int status, int events);

/* What ps waits for now. */
static int wanted(const struct pollsock *ps)
{
    int ev = 0;

    if (ps->reading && !ps->eof)
        ev |= UV_READABLE;
    if (ps->connecting || ps->nwbufs > 0)
        ev |= UV_WRITABLE;
    return ev;
}

/*
 * Registers what ps waits for when that changed: the only place that touches the epoll set.
 * Inside ps's own callback it waits for the callback's end (pollsock_io), so that what the
 * owner does there costs one registration at most, and none when it closes: an owner that
 * reads EOF and closes pays for no epoll_ctl of its own before the one of the close.
 */
static void update(struct pollsock *ps)
{
    int ev = wanted(ps);

    if (ps->closing || ps->in_io || ev == ps->events)
        return;
    ps->events = ev;
    if (ev == 0) {
        uv_poll_stop(&ps->poll);
        return;
    }
    int rc = uv_poll_start(&ps->poll, ev, pollsock_io);
    MESH_BUG_ON(rc < 0); /* only for a second handle on the fd, which cannot be */
}

/* One send or sendmsg: bytes taken (0 when none could be), or a negative uv error. */
static ssize_t send_bufs(int fd, const uv_buf_t *bufs, unsigned n)
{
    ssize_t r;

    do {
        if (n == 1) {
            r = send(fd, bufs[0].base, bufs[0].len, MSG_NOSIGNAL);
        } else {
            struct msghdr mh = {.msg_iov = (struct iovec *)bufs, .msg_iovlen = n};
            r = sendmsg(fd, &mh, MSG_NOSIGNAL);
        }
    } while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uv_translate_sys_error(errno);
}

void pollsock_wbufs_advance(struct pollsock *ps, size_t done)
{
    unsigned i = 0;

    while (i < ps->nwbufs && done >= ps->wbufs[i].len)
        done -= ps->wbufs[i++].len;
    ps->nwbufs -= i;
    memmove(ps->wbufs, ps->wbufs + i, ps->nwbufs * sizeof(ps->wbufs[0]));
    if (ps->nwbufs > 0) {
        ps->wbufs[0].base += done;
        ps->wbufs[0].len -= done;
    }
}

static void connect_done(struct pollsock *ps)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(ps->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    ps->connecting = false;
    ps->connect_cb(ps, err ? uv_translate_sys_error(err) : 0);
}

/* The socket took more: send the rest of the waiting write, and say when it is all gone. */
static void write_more(struct pollsock *ps)
{
    ssize_t r = send_bufs(ps->fd, ps->wbufs, ps->nwbufs);

    if (r >= 0) {
        pollsock_wbufs_advance(ps, (size_t)r);
        if (ps->nwbufs > 0)
            return;
    }
    ps->nwbufs = 0;
    ps->write_cb(ps, r < 0 ? (int)r : 0);
}

static void pollsock_io(uv_poll_t *h, int status, int events)
{
    struct pollsock *ps = h->data;

    ps->in_io = true;
    if (status < 0) {
        /* POLLERR: libuv stopped the handle. Whatever waits fetches the error itself (the
         * connect's SO_ERROR, the send's or recv's errno), and what is still wanted after
         * that is registered anew below. */
        ps->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (events & UV_WRITABLE) {
        if (ps->connecting)
            connect_done(ps);
        else if (ps->nwbufs > 0)
            write_more(ps);
    }
    if (ps->closing)
        return;
    if ((events & UV_READABLE) && ps->reading && !ps->eof)
        ps->read_cb(ps);
    /* After the callbacks, which may have started the next wait: a connect that ends in the
     * first write and a read costs one re-registration, not two. */
    if (!ps->closing) {
        ps->in_io = false;
        update(ps);
    }
}

/* The backend of this process: decided by pollsock_use, before any loop starts. */
static enum pollsock_backend backend = POLLSOCK_EPOLL;

int pollsock_use(enum pollsock_backend want, const char **why)
{
    *why = "";
    if (want == POLLSOCK_EPOLL) {
        backend = POLLSOCK_EPOLL;
        return backend;
    }
    int rc = psu_probe(why);
    if (rc < 0 && want == POLLSOCK_URING)
        return UV_ENOSYS;
    backend = rc < 0 ? POLLSOCK_EPOLL : POLLSOCK_URING;
    return backend;
}

const char *pollsock_backend_name(enum pollsock_backend b)
{
    return b == POLLSOCK_URING ? "io_uring" : "epoll";
}

int pollsock_loop_init(uv_loop_t *loop)
{
    return backend == POLLSOCK_URING ? psu_loop_init(loop) : 0;
}

void pollsock_loop_close(uv_loop_t *loop)
{
    psu_loop_close(loop);
}

void pollsock_loop_stop(uv_loop_t *loop, unsigned flush_ms)
{
    psu_loop_stop(loop, flush_ms);
}

int pollsock_open(struct pollsock *ps, uv_loop_t *loop, int fd, pollsock_read_cb read_cb)
{
    memset(ps, 0, sizeof(*ps));
    struct pollsock_ring *r = psu_ring_of(loop);
    if (r) {
        ps->fd = fd;
        ps->read_cb = read_cb;
        return psu_open(ps, r);
    }
    int rc = uv_poll_init_socket(loop, &ps->poll, fd);
    if (rc < 0)
        return rc;
    ps->poll.data = ps;
    ps->fd = fd;
    ps->read_cb = read_cb;
    return 0;
}

int pollsock_connect(struct pollsock *ps, uv_loop_t *loop, const struct sockaddr *sa,
                     pollsock_read_cb read_cb, pollsock_status_cb cb)
{
    socklen_t salen =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1, rc;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return uv_translate_sys_error(errno);
    /* small messages go out at once: a proxy writes each whole message in one send */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (psu_ring_of(loop)) {
        pollsock_open(ps, loop, fd, read_cb); /* cannot fail */
        ps->connecting = true;
        ps->connect_cb = cb;
        return psu_connect(ps, sa, salen);
    }
    if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
        rc = uv_translate_sys_error(errno);
        goto err_after_socket;
    }
    rc = pollsock_open(ps, loop, fd, read_cb);
    if (rc < 0)
        goto err_after_socket;
    /* even a connect that completed at once reports through cb, from the loop */
    ps->connecting = true;
    ps->connect_cb = cb;
    update(ps);
    return 0;

err_after_socket:
    close(fd);
    return rc;
}

void pollsock_read(struct pollsock *ps, bool on)
{
    ps->reading = on;
    if (ps->ring)
        psu_read(ps);
    else
        update(ps);
}

ssize_t pollsock_recv(struct pollsock *ps, void *p, size_t n)
{
    ssize_t r;

    if (MESH_BUG_ON(n == 0 || ps->eof || ps->closing))
        return UV_ENOBUFS; /* a read of 0 bytes would look like the peer's EOF */
    if (ps->ring)
        return psu_recv(ps, p, n);
    do {
        r = recv(ps->fd, p, n, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return UV_EAGAIN;
    r = r == 0 ? UV_EOF : uv_translate_sys_error(errno);
    ps->eof = true; /* as a uv stream: nothing follows an EOF or an error */
    update(ps);
    return r;
}

int pollsock_write(struct pollsock *ps, const uv_buf_t *bufs, unsigned n, pollsock_status_cb cb)
{
    if (MESH_BUG_ON(n == 0 || n > POLLSOCK_MAX_BUFS || ps->nwbufs > 0 || ps->connecting ||
                    ps->closing))
        return UV_EINVAL;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (ps->ring)
        return psu_write(ps, bufs, n, total, cb);
    ssize_t r = send_bufs(ps->fd, bufs, n);
    if (r < 0)
        return (int)r;
    if ((size_t)r == total)
        return 1; /* the usual case: nothing to keep */
    memcpy(ps->wbufs, bufs, n * sizeof(bufs[0]));
    ps->nwbufs = n;
    pollsock_wbufs_advance(ps, (size_t)r);
    ps->write_cb = cb;
    update(ps);
    return 0;
}

int pollsock_shutdown(struct pollsock *ps)
{
    if (MESH_BUG_ON(ps->nwbufs > 0 || ps->closing))
        return UV_EINVAL;
    if (ps->ring)
        return psu_shutdown(ps);
    return shutdown(ps->fd, SHUT_WR) < 0 ? uv_translate_sys_error(errno) : 0;
}

void pollsock_close(struct pollsock *ps, uv_close_cb close_cb)
{
    if (ps->closing)
        return;
    ps->closing = true;
    ps->nwbufs = 0;
    if (ps->ring) {
        psu_close(ps, close_cb);
        return;
    }
    ps->poll.data = ps->data;
    /* uv_close takes the fd out of the epoll set, so it may be closed right away */
    uv_close((uv_handle_t *)&ps->poll, close_cb);
    close(ps->fd);
    ps->fd = -1;
}
