/*
 * bench-watch-floor: the least any server can do to answer parked watchers, as a reference for
 * bench/registry's wake-up figures. It speaks just enough HTTP/1.1 for bench-watchers: a GET of
 * /v1/kv/... parks (nothing is parsed past the method and path), a PUT answers every parked GET
 * with a fixed ~330-byte answer (meshkit's has more header fields, about 430 bytes) and then the
 * PUT itself; anything else is answered 200 at once (the bench's readiness probe). No
 * rendering, no bookkeeping, no allocation: what is left is the kernel's cost of a loopback TCP
 * send per watcher, waking the reader included.
 *
 * How the answers go out is the -mode, each a question about that floor:
 *
 *   write    one write() per watcher on the one thread: the floor itself. A server answering N
 *            watchers on one thread cannot beat it on the same machine.
 *   uring    every send an IORING_OP_SEND, all submitted by one io_uring_enter (up to RING_SIZE
 *            at a time): what saving the system-call entries is worth. Little: the kernel still
 *            runs each send's whole TCP path, the delivery to the reader included, inline.
 *   threads  the first half written by this thread and the second half by a helper thread at
 *            the same moment: whether a second core's worth of sending helps. Not on a machine
 *            whose cores the reading client needs too, and the two senders contend in the
 *            kernel.
 *
 * Usage: bench-watch-floor [-mode write|uring|threads] PORT. Listens on 127.0.0.1:PORT until
 * killed. A request must arrive in one read (the bench's do); every connection gets one fd slot
 * of at most MAX_FDS.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS   65536
#define RING_SIZE 16384 /* sends per io_uring_enter; 10,000 watchers take one */

enum floor_mode { MODE_WRITE, MODE_URING, MODE_THREADS };

static enum floor_mode mode;
static char answer[512];
static size_t answer_len;
static int parked[MAX_FDS]; /* fds of parked GETs, in arrival order */
static int nparked;
static unsigned char is_parked[MAX_FDS];

static struct io_uring ring; /* -mode uring */

static struct { /* -mode threads: the helper's share of one wake-up */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int from, to;     /* parked[from..to) */
    unsigned posted;  /* wake-ups handed to the helper */
    unsigned written; /* wake-ups it has finished */
} helper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void build_answer(void)
{
    static const char body[] = "[{\"LockIndex\":0,\"Key\":\"watched\",\"Flags\":0,\"Value\":"
                               "\"di0xNzk2NTU0MDk4MzE0NzgwMDAw\",\"CreateIndex\":6,"
                               "\"ModifyIndex\":7}]";
    int n = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 00:00:00 GMT\r\n"
                     "Content-Type: application/json\r\nX-Consul-Default-ACL-Policy: allow\r\n"
                     "X-Consul-Index: 7\r\nX-Consul-KnownLeader: true\r\n"
                     "X-Consul-LastContact: 0\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof(body) - 1, body);
    if (n < 0 || (size_t)n >= sizeof(answer))
        abort();
    answer_len = (size_t)n;
}

static void send_answer(int fd)
{
    if (write(fd, answer, answer_len) != (ssize_t)answer_len)
        perror("bench-watch-floor: write"); /* a full socket: never with the bench's answers */
}

static void write_range(int from, int to)
{
    for (int i = from; i < to; i++)
        send_answer(parked[i]);
}

/* -mode uring: the sends of parked[from..to), at most RING_SIZE, in one io_uring_enter. */
static void send_batch_uring(int from, int to)
{
    struct io_uring_cqe *cqe;

    for (int i = from; i < to; i++)
        io_uring_prep_send(io_uring_get_sqe(&ring), parked[i], answer, answer_len, MSG_NOSIGNAL);
    int rc = io_uring_submit_and_wait(&ring, (unsigned)(to - from));
    if (rc != to - from)
        fprintf(stderr, "bench-watch-floor: io_uring_enter submitted %d of %d\n", rc, to - from);
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
        if (cqe->res != (int)answer_len)
            fprintf(stderr, "bench-watch-floor: send: %d\n", cqe->res);
        io_uring_cqe_seen(&ring, cqe);
    }
}

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&helper.mu);
    for (;;) {
        while (helper.written == helper.posted)
            pthread_cond_wait(&helper.cv, &helper.mu);
        int from = helper.from, to = helper.to;
        pthread_mutex_unlock(&helper.mu);
        write_range(from, to);
        pthread_mutex_lock(&helper.mu);
        helper.written++;
        pthread_cond_broadcast(&helper.cv);
    }
    return NULL;
}

/* -mode threads: the second half goes to the helper, the first is written here meanwhile. */
static void wake_threads(void)
{
    int half = nparked / 2;

    pthread_mutex_lock(&helper.mu);
    helper.from = half;
    helper.to = nparked;
    helper.posted++;
    pthread_cond_broadcast(&helper.cv);
    pthread_mutex_unlock(&helper.mu);
    write_range(0, half);
    pthread_mutex_lock(&helper.mu); /* parked[] is not touched again before the helper is done */
    while (helper.written != helper.posted)
        pthread_cond_wait(&helper.cv, &helper.mu);
    pthread_mutex_unlock(&helper.mu);
}

/* Answers every parked GET: the loop this program exists to time. */
static void wake_all(void)
{
    switch (mode) {
    case MODE_WRITE:
        write_range(0, nparked);
        break;
    case MODE_URING:
        for (int i = 0; i < nparked; i += RING_SIZE)
            send_batch_uring(i, nparked - i > RING_SIZE ? i + RING_SIZE : nparked);
        break;
    case MODE_THREADS:
        wake_threads();
        break;
    }
    for (int i = 0; i < nparked; i++)
        is_parked[parked[i]] = 0;
    nparked = 0;
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (!is_parked[fd])
        return;
    is_parked[fd] = 0;
    for (int i = 0; i < nparked; i++) {
        if (parked[i] == fd) {
            parked[i] = parked[--nparked];
            break;
        }
    }
}

static void on_request(int ep, int fd)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);

    if (n <= 0) {
        drop(ep, fd);
        return;
    }
    buf[n] = '\0';
    if (strncmp(buf, "GET /v1/kv/", 11) == 0 && !is_parked[fd]) {
        is_parked[fd] = 1;
        parked[nparked++] = fd;
    } else if (strncmp(buf, "PUT ", 4) == 0) {
        wake_all();
        send_answer(fd);
    } else {
        send_answer(fd);
    }
}

static void on_accept(int ep, int ls)
{
    int one = 1, fd;

    while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (fd >= MAX_FDS) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

/* Sets up what the mode needs before the first connection; 0 or -1 with a message. */
static int mode_init(void)
{
    if (mode == MODE_URING) {
        struct io_uring_params p = {.flags = IORING_SETUP_SUBMIT_ALL};
        int rc = io_uring_queue_init_params(RING_SIZE, &ring, &p);
        if (rc < 0) {
            fprintf(stderr, "bench-watch-floor: io_uring: %s\n", strerror(-rc));
            return -1;
        }
    } else if (mode == MODE_THREADS) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, helper_main, NULL);
        if (rc != 0) {
            fprintf(stderr, "bench-watch-floor: pthread_create: %s\n", strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int parse_args(int argc, char **argv, int *port)
{
    static const char *const names[] = {"write", "uring", "threads"};

    *port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            int k = 0;
            while (k < 3 && strcmp(m, names[k]) != 0)
                k++;
            if (k == 3)
                return -1;
            mode = (enum floor_mode)k;
        } else if (*port == 0 && atoi(argv[i]) > 0 && atoi(argv[i]) <= 65535) {
            *port = atoi(argv[i]);
        } else {
            return -1;
        }
    }
    return *port ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, port;

    if (parse_args(argc, argv, &port) < 0) {
        fprintf(stderr, "usage: %s [-mode write|uring|threads] PORT\n", argv[0]);
        return 2;
    }
    build_answer();
    if (mode_init() < 0)
        return 1;
    sa.sin_port = htons((unsigned short)port);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
    if (ls < 0 || ep < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) {
        perror("bench-watch-floor: listen");
        return 1;
    }
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == ls)
                on_accept(ep, ls);
            else
                on_request(ep, evs[i].data.fd);
        }
    }
}
