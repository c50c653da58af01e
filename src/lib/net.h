/* Socket address helpers. */
#ifndef MESH_LIB_NET_H
#define MESH_LIB_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

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
 * What uv_try_write does when nothing is queued on s (one write or writev), as send or sendmsg
 * on the socket: these go straight to the socket layer, where write and writev pass through the
 * VFS first (fdget_pos, vfs_write: a few percent of a small response's CPU time). Bytes
 * written, or a negative uv error (UV_EAGAIN when none could be). bufs are borrowed.
 */
int net_try_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n);

/* Splits "host:port" / "[v6]:port" / "host" (port = default_port) into host and port. 0/-EINVAL. */
int net_split_host_port(const char *s, char *host, size_t host_len, int *port, int default_port);

#endif
