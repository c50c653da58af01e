/*
 * Readiness and state notifications for systemd's Type=notify services, without libsystemd:
 * one datagram to the unix socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace), as sd_notify(3) documents. Outside systemd ($NOTIFY_SOCKET unset) every call is
 * a no-op, so components call them unconditionally.
 */
#ifndef MESH_LIB_SD_NOTIFY_H
#define MESH_LIB_SD_NOTIFY_H

/*
 * Sends `state` ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1", "STATUS=...").
 * Returns 0 when sent or when there is no socket to send to, or -errno (the caller logs; a
 * lost notification must not stop a service that works).
 */
int sd_notify_send(const char *state);

/* READY=1 with a STATUS line. */
int sd_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC, as systemd 253's Type=notify-reload wants; then call ready. */
int sd_notify_reloading(void);
int sd_notify_stopping(void);

#endif
