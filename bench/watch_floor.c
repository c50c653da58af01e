/*
 * bench-watch-floor: the least any server can do to answer parked watchers, as a reference for
 * bench/registry's wake-up figures. It speaks just enough HTTP/1.1 for bench-watchers: a GET of
 * /v1/kv/... parks (nothing is parsed past the method and path), a PUT answers every parked GET
 * with one write() each of a fixed ~330-byte answer (the size of meshkit's) and then the PUT
 * itself; anything else is answered 200 at once (the bench's readiness probe). No rendering, no
 * bookkeeping, no allocation: what is left is the kernel's cost of a loopback TCP send per
 * watcher, waking the reader included. A server answering N watchers on one thread cannot beat
 * this on the same machine.
 *
 * Usage: bench-watch-floor PORT. Listens on 127.0.0.1:PORT until killed. A request must arrive
 * in one read (the bench's do); every connection gets one fd slot of at most MAX_FDS.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

static char answer[512];
static size_t answer_len;
static int parked[MAX_FDS]; /* fds of parked GETs, in arrival order */
static int nparked;
static unsigned char is_parked[MAX_FDS];

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

/* Answers every parked GET: the loop this program exists to time. */
static void wake_all(void)
{
    for (int i = 0; i < nparked; i++) {
        send_answer(parked[i]);
        is_parked[parked[i]] = 0;
    }
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

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;

    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    build_answer();
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
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
