/*
 * Operator commands that talk to an agent over its HTTP API (Consul's), like the consul CLI.
 * Each returns the process exit status. The agent address comes from -http-addr, else
 * MESH_HTTP_ADDR, else CONSUL_HTTP_ADDR, else 127.0.0.1:8500.
 */
#ifndef MESH_CLI_CLI_H
#define MESH_CLI_CLI_H

int cli_members(int argc, char **argv);
/* `mesh operator raft list-peers | remove-peer` (operator.c). */
int cli_operator(int argc, char **argv);
int cli_join(int argc, char **argv);
int cli_rtt(int argc, char **argv);
int cli_catalog(int argc, char **argv);
int cli_kv(int argc, char **argv);
int cli_services(int argc, char **argv);
int cli_version(int argc, char **argv);
/* `mesh man DIR`: man pages for every command, written from their -help (manpage.c). */
int cli_man(int argc, char **argv);
int cli_leave(int argc, char **argv);
int cli_force_leave(int argc, char **argv);
int cli_reload(int argc, char **argv);
/* `mesh tls ca create` / `mesh tls cert create`: files in the current directory. */
int cli_tls(int argc, char **argv);
/* `mesh lock PREFIX CMD...`: runs CMD while holding the lock PREFIX/.lock (as consul lock). */
int cli_lock(int argc, char **argv);

/*
 * The local cluster (cluster_*.c): `mesh up`, `down`, `cleanup` and the operator commands,
 * which read the cluster state `up` leaves in the run directory.
 */
int cli_up(int argc, char **argv);
int cli_down(int argc, char **argv);
int cli_cleanup(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_nodes(int argc, char **argv);
int cli_health(int argc, char **argv);
int cli_lb_status(int argc, char **argv);
/* `mesh services` without a subcommand: the cluster's services and their instances. */
int cli_services_list(int argc, char **argv);
int cli_stop_service(int argc, char **argv);
int cli_start_service(int argc, char **argv);
int cli_reload_service(int argc, char **argv);
int cli_scale_up(int argc, char **argv);
int cli_scale_down(int argc, char **argv);
int cli_kill_node(int argc, char **argv);
int cli_revive_node(int argc, char **argv);
int cli_reload_lb(int argc, char **argv);
int cli_test_lb(int argc, char **argv);
/* `mesh test-load basic|stress|failover`: scenarios/NAME.yml against the cluster's lb. */
int cli_test_load(int argc, char **argv);
/* mesh exec NODE -- CMD: CMD as if on the node (its namespace, its agent's address). */
int cli_exec(int argc, char **argv);

#endif
