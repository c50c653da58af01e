/* Socket address helpers. */
#ifndef MESH_LIB_NET_H
#define MESH_LIB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "lib/err.h"

/* Parses a numeric IPv4 or IPv6 address (brackets allowed) with port. 0 or UV_EINVAL. */
int net_parse_addr(const char *host, int port, struct sockaddr_storage *out);

/* Formats "ip:port" ("[ip]:port" for IPv6) into out. */
void net_addr_name(const struct sockaddr *sa, char *out, size_t n);

/* The peer's "ip:port", or "?" when unknown. */
void net_peer_name(const uv_tcp_t *tcp, char *out, size_t n);

/*
 * The listen backlog for a server socket: net.core.somaxconn (/proc/sys/net/core/somaxconn),
 * the most the kernel grants, so a burst of new connections waits in the accept queue instead
 * of timing out; SOMAXCONN when the file cannot be read. Read once, then cached (any thread).
 */
int net_listen_backlog(void);

/*
 * A TCP listener on sa, non-blocking and close-on-exec, listening with net_listen_backlog().
 * With SO_REUSEADDR, so that a restart binds while the last connections linger in TIME_WAIT, and
 * SO_REUSEPORT: sockets of one user bound to the same address form a group, and the kernel
 * hashes each new connection to one of them. The lb's workers share its frontend that way, and
 * an app's old and new process share its port while `mesh pm reload` replaces one by the other.
 * Returns the descriptor (the caller's to close) or a negative errno with e set to
 * "listen ADDR:PORT: reason".
 */
int net_listen_shared(const struct sockaddr_storage *sa, struct err *e);

/*
 * For a listener of net_listen_shared whose process is about to close it (it drains, then
 * exits): sends the group's new connections to the listener that joined it last, when there is
 * one. During a reload that is the successor; without the steering, the kernel would keep
 * queueing half of the new connections on this listener, and reset those still queued when it
 * closes. A classic BPF program on the group picks "the second listener" (index 1): the group
 * keeps its listeners in the order they joined, so with two that is the newer one; with one the
 * index is out of range and the kernel hashes as before. The program stays with the group once
 * this listener is gone, which is harmless for the same reason. Returns 0 or a negative errno.
 */
int net_listen_hand_over(int fd);

/*
 * Whether a TCP socket other than fd listens on fd's port in this network namespace (read from
 * /proc/net/tcp and tcp6), as the successor of a reload does. False when that cannot be read.
 */
bool net_listen_has_peer(int fd);

/*
 * What uv_try_write does when nothing is queued on s (one write or writev), as send or sendmsg
 * on the socket: these go straight to the socket layer, where write and writev pass through the
 * VFS first (fdget_pos, vfs_write: a few percent of a small response's CPU time). Bytes
 * written, or a negative uv error (UV_EAGAIN when none could be). bufs are borrowed.
 */
int net_try_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n);

/* Splits "host:port" / "[v6]:port" / "host" (port = default_port) into host and port. 0/-EINVAL. */
int net_split_host_port(const char *s, char *host, size_t host_len, int *port, int default_port);

#endif
