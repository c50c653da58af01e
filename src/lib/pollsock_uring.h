/* The io_uring backend of lib/pollsock.c: internal to it (see pollsock.h for the contract). */
#ifndef MESH_LIB_POLLSOCK_URING_H
#define MESH_LIB_POLLSOCK_URING_H

#include "lib/pollsock.h"

/* Drops the first done bytes of the write waiting in ps->wbufs (both backends). */
void pollsock_wbufs_advance(struct pollsock *ps, size_t done);

/* 0 when a ring with multishot recv and a provided-buffer ring can be set up here. */
int psu_probe(const char **why);

int psu_loop_init(uv_loop_t *loop);
void psu_loop_close(uv_loop_t *loop);
void psu_loop_stop(uv_loop_t *loop, unsigned flush_ms);

/* The ring of loop when this thread set one up for it, else NULL. */
struct pollsock_ring *psu_ring_of(const uv_loop_t *loop);

/* The operations of pollsock.h for a ps served by ring r (ps already zeroed, fd and cbs set). */
int psu_open(struct pollsock *ps, struct pollsock_ring *r);
int psu_connect(struct pollsock *ps, const struct sockaddr *sa, socklen_t salen);
void psu_read(struct pollsock *ps);
ssize_t psu_recv(struct pollsock *ps, void *p, size_t n);
int psu_write(struct pollsock *ps, const uv_buf_t *bufs, unsigned n, size_t total,
              pollsock_status_cb cb);
int psu_shutdown(struct pollsock *ps);
void psu_close(struct pollsock *ps, uv_close_cb close_cb);

#endif
