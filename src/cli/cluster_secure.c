/*
 * `mesh up -secure`: the original's encrypted agents. Before anything starts, `up` makes under
 * RUN/tls a CA and certificates with `mesh tls` (as an operator would by hand), a management
 * token (RUN/tls/token, mode 0600), and per node an agent config (RUN/<node>/secure.json, 0600)
 * that serves the API over HTTPS only, requires client certificates (verify_incoming), talks
 * TLS to the server (verify_outgoing) and turns ACLs on with default deny.
 *
 * One server certificate serves every agent (its names: server.dc1.consul, localhost and every
 * node address) and one client certificate every other process: mesh lb, mesh template, the
 * webapps and the CLI. Those reach the agents through lib/consul_client.h's MESH_* variables,
 * which cluster_secure_env sets for every process a command of this cluster starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/uuid.h"

#define TLS_TIMEOUT_MS 30000

void cluster_secure_path(const struct cluster_state *s, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/" CLUSTER_TLS_DIR "/%s", s->run_dir, file);
}

/* Runs `mesh tls ARGS...` in dir (it writes its files in the current directory), quietly. */
static int run_tls(const struct cluster_state *s, const char *dir, const char *const *args,
                   struct err *e)
{
    char *argv[16];
    size_t k = 0;
    int status;
    pid_t pid;

    argv[k++] = (char *)s->mesh;
    argv[k++] = "tls";
    for (; *args && k + 1 < ARRAY_LEN(argv); args++)
        argv[k++] = (char *)*args;
    argv[k] = NULL;
    fflush(NULL);
    if ((pid = fork()) < 0)
        return err_set(e, "fork: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (chdir(dir) < 0 || null < 0 || dup2(null, STDOUT_FILENO) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 10) {
        if (waited >= TLS_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return err_set(e, "mesh tls %s %s: timed out", args[0], args[1]);
        }
        cluster_sleep_ms(10);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(e, "mesh tls %s %s (in %s) failed with status %d", argv[2], argv[3], dir,
                       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

/* The CA, the agents' server certificate (with every node's address) and the client one. */
static int make_certs(const struct cluster_state *s, const char *dir, struct err *e)
{
    const char *ca[] = {"ca", "create", NULL};
    const char *client[] = {"cert", "create", "-client", NULL};
    const char *server[8 + 2 * CLUSTER_MAX_NODES] = {"cert", "create", "-server"};
    size_t k = 3;
    int rc;

    for (size_t i = 0; i < s->n_nodes; i++) {
        if (strcmp(s->nodes[i].addr, "127.0.0.1") == 0)
            continue; /* in every certificate already */
        server[k++] = "-additional-ipaddress";
        server[k++] = s->nodes[i].addr;
        if (!s->netns)
            break; /* on loopback they all share one address */
    }
    server[k] = NULL;
    if ((rc = run_tls(s, dir, ca, e)) < 0 || (rc = run_tls(s, dir, server, e)) < 0 ||
        (rc = run_tls(s, dir, client, e)) < 0)
        return rc;
    return 0;
}

/* RUN/<node>/secure.json: HTTPS only, client certificates required, ACLs deny by default. */
static int write_agent_config(const struct cluster_state *s, const struct cluster_node *n,
                              const char *token, struct err *e)
{
    char ca[PATH_MAX + 64], cert[PATH_MAX + 64], key[PATH_MAX + 64], path[PATH_MAX + 64];
    json_t *tokens = json_pack("{s:s}", "agent", token);
    int rc;

    if (n->server)
        json_object_set_new(tokens, "initial_management", json_string(token));
    cluster_secure_path(s, CLUSTER_TLS_CA, ca, sizeof(ca));
    cluster_secure_path(s, CLUSTER_TLS_SERVER_CERT, cert, sizeof(cert));
    cluster_secure_path(s, CLUSTER_TLS_SERVER_KEY, key, sizeof(key));
    json_t *doc = json_pack("{s:{s:{s:s, s:s, s:s, s:b, s:b}}, s:{s:b, s:s, s:o}}", "tls",
                            "defaults", "ca_file", ca, "cert_file", cert, "key_file", key,
                            "verify_incoming", 1, "verify_outgoing", 1, "acl", "enabled", 1,
                            "default_policy", "deny", "tokens", tokens);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_MESH_REAL_PRECISION);
    cluster_path(s, n, CLUSTER_SECURE_CONFIG, path, sizeof(path));
    /* It holds the management token: as private as the token file. */
    rc = file_replace(path, text, strlen(text), 0600, 0, e);
    free(text);
    json_decref(doc);
    return rc;
}

int cluster_secure_setup(const struct cluster_state *s, char *token, size_t len, struct err *e)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 64];
    int rc;

    if (len < UUID_STR_LEN + 1)
        return err_set(e, "token buffer too small");
    cluster_secure_path(s, "", dir, sizeof(dir));
    /* A fresh CA and token for each up: the old ones are gone with the old cluster. */
    if ((rc = cluster_rm_tree(dir)) < 0 || (rc = mkdir(dir, 0700) < 0 ? -errno : 0) < 0)
        return err_set(e, "%s: %s", dir, strerror(-rc));
    if ((rc = make_certs(s, dir, e)) < 0)
        return rc;
    uuid_v4(token);
    cluster_secure_path(s, CLUSTER_TLS_TOKEN, path, sizeof(path));
    char line[UUID_STR_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", token);
    if ((rc = file_replace(path, line, strlen(line), 0600, 0, e)) < 0)
        return rc;
    for (size_t i = 0; i < s->n_nodes; i++) {
        if ((rc = write_agent_config(s, &s->nodes[i], token, e)) < 0)
            return rc;
    }
    return 0;
}

/* Sets MESH_<name> and CONSUL_<name> (the consul CLI and other Consul clients read the second). */
static void set_both(const char *name, const char *value)
{
    char var[64];

    snprintf(var, sizeof(var), "MESH_%s", name);
    setenv(var, value, 1);
    snprintf(var, sizeof(var), "CONSUL_%s", name);
    setenv(var, value, 1);
}

void cluster_secure_env(const struct cluster_state *s)
{
    static const struct {
        const char *name, *file;
    } files[] = {
        {"CACERT", CLUSTER_TLS_CA},
        {"CLIENT_CERT", CLUSTER_TLS_CLIENT_CERT},
        {"CLIENT_KEY", CLUSTER_TLS_CLIENT_KEY},
        {"HTTP_TOKEN_FILE", CLUSTER_TLS_TOKEN},
    };
    /* A token or server name of the caller's would beat ours (lib/consul_client.h). */
    static const char *const drop[] = {"MESH_HTTP_TOKEN", "CONSUL_HTTP_TOKEN",
                                       "MESH_TLS_SERVER_NAME", "CONSUL_TLS_SERVER_NAME"};
    char path[PATH_MAX + 64];

    if (!s->secure)
        return;
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        cluster_secure_path(s, files[i].file, path, sizeof(path));
        set_both(files[i].name, path);
    }
    for (size_t i = 0; i < ARRAY_LEN(drop); i++)
        unsetenv(drop[i]);
    set_both("HTTP_SSL", "true"); /* every bare host:port of ours is HTTPS */
}
