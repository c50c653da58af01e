/*
 * Operator commands that talk to an agent over its HTTP API (Consul's), like the consul CLI.
 * Each returns the process exit status. The agent address comes from -http-addr, else
 * MESH_HTTP_ADDR, else CONSUL_HTTP_ADDR, else 127.0.0.1:8500.
 */
#ifndef MESH_CLI_CLI_H
#define MESH_CLI_CLI_H

int cli_members(int argc, char **argv);
int cli_catalog(int argc, char **argv);
int cli_kv(int argc, char **argv);
int cli_services(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_leave(int argc, char **argv);
int cli_force_leave(int argc, char **argv);
int cli_reload(int argc, char **argv);
/* `mesh tls ca create` / `mesh tls cert create`: files in the current directory. */
int cli_tls(int argc, char **argv);
/* `mesh lock PREFIX CMD...`: runs CMD while holding the lock PREFIX/.lock (as consul lock). */
int cli_lock(int argc, char **argv);

#endif
