#include "lib/net.h"

#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/procfs.h"

static int read_somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int v = 0;

    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v > 0 ? v : SOMAXCONN;
}

int net_listen_backlog(void)
{
    static _Atomic int cached; /* 0 until read; two threads reading it at once agree */
    int v = atomic_load_explicit(&cached, memory_order_relaxed);

    if (v == 0) {
        v = read_somaxconn();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

int net_parse_addr(const char *host, int port, struct sockaddr_storage *out)
{
    char tmp[64];
    size_t n = strlen(host);

    memset(out, 0, sizeof(*out));
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(tmp)) {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        host = tmp;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return UV_EINVAL;
}

void net_addr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(out, n, "%s:%d", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%d", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, n, "?");
    }
}

void net_peer_name(const uv_tcp_t *tcp, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0)
        net_addr_name((struct sockaddr *)&ss, out, n);
    else
        snprintf(out, n, "?");
}

int net_split_host_port(const char *s, char *host, size_t host_len, int *port, int default_port)
{
    const char *colon;
    size_t hn;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end)
            return -EINVAL;
        hn = (size_t)(end - s - 1);
        if (hn >= host_len)
            return -EINVAL;
        memcpy(host, s + 1, hn);
        host[hn] = '\0';
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1] != '\0')
            return -EINVAL;
    } else {
        colon = strrchr(s, ':');
        hn = colon ? (size_t)(colon - s) : strlen(s);
        if (hn >= host_len || (colon && strchr(s, ':') != colon))
            return -EINVAL;
        memcpy(host, s, hn);
        host[hn] = '\0';
    }
    if (!colon) {
        *port = default_port;
        return 0;
    }
    /* Digits only: strtol alone would also take leading whitespace and a sign. */
    if (colon[1] < '0' || colon[1] > '9')
        return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

int net_try_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n)
{
    uv_os_fd_t fd;
    ssize_t r;

    if (s->write_queue_size != 0 || uv_fileno((uv_handle_t *)s, &fd) != 0)
        return uv_try_write(s, bufs, n);
    do {
        if (n == 1) {
            r = send(fd, bufs[0].base, bufs[0].len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            /* libuv's uv_buf_t is laid out as struct iovec on Unix, for this very use */
            struct msghdr mh = {.msg_iov = (struct iovec *)bufs, .msg_iovlen = n};
            r = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    } while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r > INT_MAX ? INT_MAX : (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return UV_EAGAIN;
    if (errno == ENOTSOCK)
        return uv_try_write(s, bufs, n);
    return uv_translate_sys_error(errno);
}

int net_listen_shared(const struct sockaddr_storage *sa, struct err *e)
{
    socklen_t len =
        sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    char name[INET6_ADDRSTRLEN + 8];
    int one = 1;
    int rc;
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0) {
        rc = -errno;
        goto err;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)sa, len) < 0 || listen(fd, net_listen_backlog()) < 0) {
        rc = -errno;
        close(fd);
        goto err;
    }
    return fd;

err:
    net_addr_name((const struct sockaddr *)sa, name, sizeof(name));
    err_setf(e, "listen %s: %s", name, uv_strerror(rc));
    return rc;
}

int net_listen_hand_over(int fd)
{
    struct sock_filter second[] = {BPF_STMT(BPF_RET | BPF_K, 1)};
    struct sock_fprog prog = {.len = 1, .filter = second};

    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        return -errno;
    return 0;
}

/* Whether table (a /proc/net/tcp file) lists a listener on port other than inode `own`. */
static bool table_has_peer(const char *table, int port, uint64_t own)
{
    char line[512];
    FILE *f = fopen(table, "re");
    bool found = false;
    uint64_t inode;
    int p, st;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        found = procfs_parse_net_line(line, &p, &st, &inode) == 0 && p == port && st == 0x0A &&
                inode && inode != own;
    }
    fclose(f);
    return found;
}

bool net_listen_has_peer(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct stat st;
    int port;

    if (fstat(fd, &st) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    else
        return false;
    return table_has_peer("/proc/net/tcp", port, (uint64_t)st.st_ino) ||
           table_has_peer("/proc/net/tcp6", port, (uint64_t)st.st_ino);
}
