/*
 * The stats and admin server of `mesh lb`, end to end on one loop: a backend built by hand
 * with known counters, lb_stats listening on a free loopback port, and the project's HTTP
 * client fetching the HTML page, the CSV, the JSON, /metrics and the admin API.
 */
#include <netinet/in.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/http_client.h"
#include "lb/stats.h"

#define CSV_PREFIX                                                                                 \
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"     \
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"   \
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"   \
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"       \
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"       \
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"   \
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"  \
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"    \
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"  \
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"               \
    "agg_check_status,-,"

struct reply {
    int done;
    int status;
    char *body;
    char *www_auth;
    char *allow;
};

struct fx {
    uv_loop_t loop;
    struct lb_config cfg;
    struct lb_backend b;
    struct lb_counters fe;
    struct lb_server *srv[2];
    struct lb_stats *stats;
    struct http_client *client;
    struct reply r;
};

static struct fx fx;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static char *header_copy(const struct http_client_response *res, const char *name)
{
    size_t len;
    const char *v = http_client_header(res, name, &len);
    return v ? strndup(v, len) : NULL;
}

static void on_reply(int status, const struct http_client_response *res, void *data)
{
    struct reply *r = data;

    r->done = 1;
    r->status = status < 0 ? status : res->status;
    if (status < 0)
        return;
    r->body = strndup(res->body, res->body_len);
    r->www_auth = header_copy(res, "WWW-Authenticate");
    r->allow = header_copy(res, "Allow");
}

static void reply_clear(struct reply *r)
{
    free(r->body);
    free(r->www_auth);
    free(r->allow);
    memset(r, 0, sizeof(*r));
}

/* One request, run to completion; auth is "user:password" or NULL. */
static struct reply *fetch(const char *method, const char *target, const char *auth,
                           const char *body)
{
    char basic[256] = "";
    struct http_header headers[2];
    size_t n = 0;

    reply_clear(&fx.r);
    if (auth) {
        char *b64 = base64_encode(auth, strlen(auth));
        snprintf(basic, sizeof(basic), "Basic %s", b64);
        free(b64);
        headers[n++] =
            (struct http_header){.name = STR_LIT("Authorization"), .value = str_from(basic)};
        if (body)
            headers[n++] =
                (struct http_header){.name = STR_LIT("Content-Type"),
                                     .value = STR_LIT("application/x-www-form-urlencoded")};
    }
    struct http_client_request req = {.method = method,
                                      .host = "127.0.0.1",
                                      .port = fx.cfg.stats_port,
                                      .target = target,
                                      .headers = headers,
                                      .num_headers = n,
                                      .body = body,
                                      .body_len = body ? strlen(body) : 0,
                                      .timeout_ms = 5000};
    http_client_send(fx.client, &req, on_reply, &fx.r);
    while (!fx.r.done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    return &fx.r;
}

static struct reply *get(const char *target)
{
    return fetch("GET", target, "admin:secret", NULL);
}

/* v counted by two workers: a third by worker 1, the rest by worker 0. */
static void shards_set(struct lb_counters *c, size_t offset, uint64_t v)
{
    atomic_store((lb_counter *)((char *)lb_shard_of(c, 0) + offset), v - v / 3);
    atomic_store((lb_counter *)((char *)lb_shard_of(c, 1) + offset), v / 3);
}

static void counters_set(struct lb_counters *c, uint64_t base)
{
    atomic_store(&c->scur, base + 1);
    atomic_store(&c->smax, base + 2);
    atomic_store(&c->stot, base + 3);
    shards_set(c, offsetof(struct lb_shard, bin), base + 4);
    shards_set(c, offsetof(struct lb_shard, bout), base + 5);
    shards_set(c, offsetof(struct lb_shard, req_tot), base + 3);
    for (int i = 0; i < 6; i++)
        shards_set(c, offsetof(struct lb_shard, hrsp) + (size_t)i * sizeof(lb_counter),
                   base + (i ? 5 + (uint64_t)i : 11));
    atomic_store(&c->ereq, base + 12);
    atomic_store(&c->econ, base + 13);
    atomic_store(&c->eresp, base + 14);
    atomic_store(&c->wretr, base + 15);
    atomic_store(&c->wredis, base + 16);
}

static int setup(void **state)
{
    struct err e = {""};

    alarm(30);
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    fx.cfg.stats_addr = "127.0.0.1";
    fx.cfg.stats_port = free_port();
    fx.cfg.stats_path = "/stats";
    fx.cfg.stats_user = "admin";
    fx.cfg.stats_password = "secret";
    fx.cfg.stats_refresh_s = 5;
    fx.cfg.check = true;
    fx.cfg.check_rise = 2;
    fx.cfg.check_fall = 3;
    fx.cfg.maxconn = 100;
    fx.cfg.workers = 2;
    lb_shards_init(2); /* every counter below is split between two workers */
    lb_counters_init(&fx.fe);
    lb_counters_init(&fx.b.c);

    fx.b.name = "web";
    pthread_mutex_init(&fx.b.lock, NULL);
    atomic_store(&fx.b.registry_ok, 1);
    fx.srv[0] = lb_server_new("127.0.0.1:3000", "srv1", "127.0.0.1", 3000, 100);
    fx.srv[1] = lb_server_new("127.0.0.1:3001", "srv2", "127.0.0.1", 3001, 50);
    counters_set(&fx.fe, 1000);
    counters_set(&fx.b.c, 500);
    counters_set(&fx.srv[0]->c, 100);
    counters_set(&fx.srv[1]->c, 200);
    /* one request of srv1 on each worker: response times 1 and 3 ms */
    struct lb_time_sample t1 = {{0, 0, 1000, 1500}}, t3 = {{0, 0, 3000, 3500}};
    lb_times_record(&lb_shard_of(&fx.srv[0]->c, 0)->times, &t1);
    lb_times_record(&lb_shard_of(&fx.srv[0]->c, 1)->times, &t3);
    snprintf(fx.srv[0]->check_status, sizeof(fx.srv[0]->check_status), "L7OK");
    fx.srv[0]->check_code = 200;
    fx.srv[0]->check_duration_ms = 3;
    lb_server_set_state(fx.srv[1], LB_SRV_DOWN);
    lb_backend_publish(&fx.b, lb_server_set_new(fx.srv, 2));

    assert_int_equal(lb_stats_start(&fx.stats, &fx.loop, &fx.cfg, &fx.b, &fx.fe, &e), 0);
    fx.client = http_client_new(&fx.loop);
    return 0;
}

static int teardown(void **state)
{
    reply_clear(&fx.r);
    http_client_free(fx.client);
    lb_stats_close(fx.stats);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    lb_backend_publish(&fx.b, NULL);
    lb_server_unref(fx.srv[0]);
    lb_server_unref(fx.srv[1]);
    pthread_mutex_destroy(&fx.b.lock);
    lb_counters_close(&fx.fe);
    lb_counters_close(&fx.b.c);
    int rc = uv_loop_close(&fx.loop);
    alarm(0);
    return rc == 0 ? 0 : -1;
}

/* ---- auth --------------------------------------------------------------------------------- */

static void test_auth_required(void **state)
{
    const char *paths[] = {"/stats", "/stats;csv", "/stats;json", "/metrics", "/nope"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct reply *r = fetch("GET", paths[i], NULL, NULL);
        assert_int_equal(r->status, 401);
        assert_non_null(r->www_auth);
        assert_string_equal(r->www_auth, "Basic realm=\"HAProxy Statistics\"");
    }
    assert_int_equal(fetch("GET", "/stats", "admin:wrong", NULL)->status, 401);
    assert_int_equal(fetch("GET", "/stats", "admin:secretx", NULL)->status, 401);
    assert_int_equal(fetch("POST", "/stats/admin/server/srv1?action=drain", NULL, NULL)->status,
                     401);
    assert_int_equal(atomic_load(&fx.srv[0]->state), LB_SRV_UP);
    assert_int_equal(get("/stats")->status, 200);
}

/* ---- CSV ---------------------------------------------------------------------------------- */

/* Splits a line on ',' (our values hold no quotes or commas) into at most max fields. */
static size_t split(char *line, char **out, size_t max)
{
    size_t n = 0;
    char *p = line;

    for (;;) {
        char *c = strchr(p, ',');
        assert_true(n < max);
        out[n++] = p;
        if (!c)
            return n;
        *c = '\0';
        p = c + 1;
    }
}

static int col_index(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    fail_msg("no column %s", name);
    return -1;
}

static void test_csv(void **state)
{
    struct reply *r = get("/stats;csv");
    char *lines[8], *hdr[200], *row[8][200];
    size_t nlines = 0, nhdr;

    assert_int_equal(r->status, 200);
    assert_memory_equal(r->body, CSV_PREFIX, strlen(CSV_PREFIX));
    for (char *p = r->body, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        assert_true(nlines < 8);
        lines[nlines++] = p;
    }
    assert_int_equal(nlines, 5); /* header, FRONTEND, srv1, srv2, BACKEND */
    if (nlines != 5)
        return; /* not reached: a failed assertion jumps out, which clang's analyzer cannot see */
    nhdr = split(lines[0] + 2, hdr, 200);
    assert_int_equal(nhdr, 103 + 1 + 24 + 1); /* static, "-", modules, after the last ',' */
    for (size_t i = 1; i < nlines; i++)
        assert_int_equal(split(lines[i], row[i], 200), nhdr);

    int svname = col_index(hdr, nhdr, "svname"), status = col_index(hdr, nhdr, "status");
    int type = col_index(hdr, nhdr, "type"), stot = col_index(hdr, nhdr, "stot");
    int bin = col_index(hdr, nhdr, "bin"), econ = col_index(hdr, nhdr, "econ");
    int h2 = col_index(hdr, nhdr, "hrsp_2xx"), other = col_index(hdr, nhdr, "hrsp_other");
    int weight = col_index(hdr, nhdr, "weight"), act = col_index(hdr, nhdr, "act");
    int wredis = col_index(hdr, nhdr, "wredis"), chk = col_index(hdr, nhdr, "check_status");
    int sid = col_index(hdr, nhdr, "sid"), addr = col_index(hdr, nhdr, "addr");

    assert_string_equal(row[1][0], "http-in");
    assert_string_equal(row[1][svname], "FRONTEND");
    assert_string_equal(row[1][status], "OPEN");
    assert_string_equal(row[1][type], "0");
    assert_string_equal(row[1][stot], "1003");
    assert_string_equal(row[1][col_index(hdr, nhdr, "ereq")], "1012");
    assert_string_equal(row[1][col_index(hdr, nhdr, "req_tot")], "1003");
    assert_string_equal(row[1][col_index(hdr, nhdr, "slim")], "200");
    assert_string_equal(row[1][econ], ""); /* not a frontend column */

    assert_string_equal(row[2][0], "web");
    assert_string_equal(row[2][svname], "srv1");
    assert_string_equal(row[2][status], "UP");
    assert_string_equal(row[2][type], "2");
    assert_string_equal(row[2][sid], "1");
    assert_string_equal(row[2][stot], "103");
    assert_string_equal(row[2][bin], "104");
    assert_string_equal(row[2][col_index(hdr, nhdr, "bout")], "105");
    assert_string_equal(row[2][econ], "113");
    assert_string_equal(row[2][col_index(hdr, nhdr, "eresp")], "114");
    assert_string_equal(row[2][col_index(hdr, nhdr, "wretr")], "115");
    assert_string_equal(row[2][wredis], "116");
    assert_string_equal(row[2][h2], "107");
    assert_string_equal(row[2][other], "111");
    assert_string_equal(row[2][weight], "100");
    assert_string_equal(row[2][chk], "L7OK");
    assert_string_equal(row[2][col_index(hdr, nhdr, "check_code")], "200");
    assert_string_equal(row[2][col_index(hdr, nhdr, "check_duration")], "3");
    assert_string_equal(row[2][addr], "127.0.0.1:3000");
    /* the two workers' requests together: mean and largest of 1 and 3 ms */
    assert_string_equal(row[2][col_index(hdr, nhdr, "rtime")], "2");
    assert_string_equal(row[2][col_index(hdr, nhdr, "rtime_max")], "3");
    assert_string_equal(row[2][col_index(hdr, nhdr, "-")], "-");

    assert_string_equal(row[3][svname], "srv2");
    assert_string_equal(row[3][status], "DOWN");
    assert_string_equal(row[3][weight], "50");
    assert_string_equal(row[3][sid], "2");
    assert_string_equal(row[3][h2], "207");

    assert_string_equal(row[4][svname], "BACKEND");
    assert_string_equal(row[4][status], "UP");
    assert_string_equal(row[4][type], "1");
    assert_string_equal(row[4][stot], "503");
    assert_string_equal(row[4][act], "1");
    assert_string_equal(row[4][weight], "100"); /* UP servers only */
    assert_string_equal(row[4][col_index(hdr, nhdr, "algo")], "roundrobin");

    /* every server down: the backend is DOWN */
    lb_server_set_state(fx.srv[0], LB_SRV_MAINT);
    r = get("/stats;csv");
    assert_non_null(strstr(r->body, "\nweb,srv1,"));
    assert_non_null(strstr(r->body, ",MAINT,"));
    char *be = strstr(r->body, "\nweb,BACKEND,");
    assert_non_null(be);
    assert_non_null(strstr(be, ",DOWN,"));
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void test_json(void **state)
{
    struct reply *r = get("/stats;json");
    json_error_t err;

    assert_int_equal(r->status, 200);
    json_t *rows = json_loads(r->body, 0, &err);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 4);
    json_t *srv1 = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(srv1, "svname")), "srv1");
    assert_int_equal(json_integer_value(json_object_get(srv1, "stot")), 103);
    assert_string_equal(json_string_value(json_object_get(srv1, "status")), "UP");
    assert_null(json_object_get(srv1, "ereq")); /* empty columns are left out */
    json_decref(rows);
}

/* ---- Prometheus --------------------------------------------------------------------------- */

static void test_prometheus(void **state)
{
    struct reply *r = get("/metrics");
    regex_t re;
    int samples = 0;

    assert_int_equal(r->status, 200);
    assert_int_equal(regcomp(&re,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|"
                             "\\\\.)*\",?)*\\})? -?[0-9]+(\\.[0-9]+)?$",
                             REG_EXTENDED),
                     0);
    char *body = xstrdup(r->body);
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP haproxy_", 15) == 0 ||
                        strncmp(line, "# TYPE haproxy_", 15) == 0);
            continue;
        }
        regmatch_t m[2];
        if (regexec(&re, line, 2, m, 0) != 0)
            fail_msg("bad sample line: %s", line);
        char type_line[160];
        int len = (int)(m[1].rm_eo - m[1].rm_so);
        snprintf(type_line, sizeof(type_line), "# TYPE %.*s ", len, line + m[1].rm_so);
        if (!strstr(r->body, type_line)) {
            /* a histogram's samples are its family name plus _bucket, _sum or _count */
            static const char *const parts[] = {"_bucket", "_sum", "_count"};
            bool found = false;
            for (size_t k = 0; k < ARRAY_LEN(parts) && !found; k++) {
                int plen = (int)strlen(parts[k]);
                if (len <= plen ||
                    strncmp(line + m[1].rm_so + len - plen, parts[k], (size_t)plen) != 0)
                    continue;
                snprintf(type_line, sizeof(type_line), "# TYPE %.*s histogram\n", len - plen,
                         line + m[1].rm_so);
                found = strstr(r->body, type_line) != NULL;
            }
            if (!found)
                fail_msg("no TYPE for %s", line);
        }
        samples++;
    }
    free(body);
    regfree(&re);
    assert_true(samples > 50);
    assert_non_null(
        strstr(r->body, "\nhaproxy_frontend_current_sessions{proxy=\"http-in\"} 1001\n"));
    assert_non_null(
        strstr(r->body, "\nhaproxy_frontend_http_requests_total{proxy=\"http-in\"} 1003\n"));
    assert_non_null(strstr(
        r->body, "\nhaproxy_frontend_http_responses_total{proxy=\"http-in\",code=\"2xx\"} 1007\n"));
    assert_non_null(strstr(r->body, "\nhaproxy_backend_status{proxy=\"web\",state=\"UP\"} 1\n"));
    assert_non_null(
        strstr(r->body, "\nhaproxy_server_current_sessions{proxy=\"web\",server=\"srv1\"} 101\n"));
    assert_non_null(strstr(
        r->body, "\nhaproxy_server_status{proxy=\"web\",server=\"srv2\",state=\"DOWN\"} 1\n"));
    assert_non_null(
        strstr(r->body, "\nhaproxy_server_status{proxy=\"web\",server=\"srv2\",state=\"UP\"} 0\n"));
    assert_non_null(strstr(
        r->body, "\nhaproxy_server_connection_errors_total{proxy=\"web\",server=\"srv1\"} 113\n"));
    assert_non_null(strstr(
        r->body, "\nhaproxy_server_retry_warnings_total{proxy=\"web\",server=\"srv2\"} 215\n"));
    assert_non_null(strstr(r->body, "\nhaproxy_server_http_responses_total{proxy=\"web\","
                                    "server=\"srv1\",code=\"5xx\"} 110\n"));
    assert_non_null(
        strstr(r->body,
               "\nhaproxy_server_check_status{proxy=\"web\",server=\"srv1\",state=\"L7OK\"} 1\n"));
    assert_non_null(strstr(
        r->body, "\nhaproxy_server_check_duration_seconds{proxy=\"web\",server=\"srv1\"} 0.003\n"));
    assert_non_null(strstr(r->body, "# TYPE haproxy_server_sessions_total counter\n"));
}

/* ---- admin -------------------------------------------------------------------------------- */

static void test_admin(void **state)
{
    struct reply *r;

    r = fetch("POST", "/stats/admin/server/srv1?action=drain", "admin:secret", NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "{\"server\":\"srv1\",\"state\":\"DRAIN\",\"weight\":100}\n");
    assert_int_equal(atomic_load(&fx.srv[0]->state), LB_SRV_DRAIN);

    r = fetch("PUT", "/stats/admin/server/srv1?action=maint", "admin:secret", NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(atomic_load(&fx.srv[0]->state), LB_SRV_MAINT);

    r = fetch("POST", "/stats/admin/server/srv1?action=ready", "admin:secret", NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(atomic_load(&fx.srv[0]->state), LB_SRV_UP);

    r = fetch("POST", "/stats/admin/server/srv2?action=weight&weight=42", "admin:secret", NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "{\"server\":\"srv2\",\"state\":\"DOWN\",\"weight\":42}\n");
    assert_int_equal(atomic_load(&fx.srv[1]->weight), 42);

    /* a form body works as the query */
    r = fetch("POST", "/stats/admin/server/srv2", "admin:secret", "action=drain");
    assert_int_equal(r->status, 200);
    assert_int_equal(atomic_load(&fx.srv[1]->state), LB_SRV_DRAIN);

    r = fetch("POST", "/stats/admin/server/srv2?action=weight&weight=257", "admin:secret", NULL);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body, "0 to 256"));
    r = fetch("POST", "/stats/admin/server/srv2?action=weight", "admin:secret", NULL);
    assert_int_equal(r->status, 400);
    assert_int_equal(atomic_load(&fx.srv[1]->weight), 42);
    r = fetch("POST", "/stats/admin/server/srv2?action=explode", "admin:secret", NULL);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body, "drain, maint, ready or weight"));
    r = fetch("POST", "/stats/admin/server/nosuch?action=drain", "admin:secret", NULL);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body, "nosuch"));
    r = fetch("GET", "/stats/admin/server/srv1?action=drain", "admin:secret", NULL);
    assert_int_equal(r->status, 405);
    assert_non_null(r->allow);
    assert_non_null(strstr(r->allow, "POST"));
    assert_non_null(strstr(r->allow, "PUT"));
    assert_int_equal(atomic_load(&fx.srv[0]->state), LB_SRV_UP);

    /* the pages show the change */
    r = get("/stats;csv");
    assert_non_null(strstr(r->body, "\nweb,srv2,"));
    assert_non_null(strstr(strstr(r->body, "\nweb,srv2,"), ",DRAIN,42,"));
}

/* ---- HTML --------------------------------------------------------------------------------- */

static void test_html(void **state)
{
    struct reply *r = get("/stats");

    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "<meta http-equiv=\"refresh\" content=\"5\">"));
    assert_non_null(strstr(r->body, "prefers-color-scheme"));
    assert_non_null(strstr(r->body, "http-in"));
    assert_non_null(strstr(r->body, "<tr class=\"UP\"><td class=\"n\">srv1 "));
    assert_non_null(strstr(r->body, "<tr class=\"DOWN\"><td class=\"n\">srv2 "));
    assert_non_null(strstr(r->body, "<td>UP</td>"));
    assert_non_null(strstr(r->body, "<td>DOWN</td>"));
    assert_non_null(strstr(r->body, "L7OK/200 in 3ms"));
    assert_non_null(strstr(r->body, "BACKEND"));
    assert_null(strstr(r->body, "no registry"));
    assert_null(strstr(r->body, "src=")); /* self-contained */
    assert_null(strstr(r->body, "stylesheet"));
    /* The only link is an empty icon, so browsers do not fetch /favicon.ico (a 404). */
    assert_non_null(strstr(r->body, "<link rel=\"icon\" href=\"data:,\">"));

    atomic_store(&fx.b.registry_ok, 0);
    r = get("/stats;norefresh");
    assert_non_null(strstr(r->body, "no registry"));
    assert_null(strstr(r->body, "http-equiv=\"refresh\""));

    assert_int_equal(get("/stats;xml")->status, 404);
    assert_int_equal(get("/elsewhere")->status, 404);
    assert_int_equal(fetch("POST", "/stats", "admin:secret", NULL)->status, 405);
}

/* ---- rates, time, errors ------------------------------------------------------------------ */

static void on_wait(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void test_rates(void **state)
{
    static uv_timer_t t; /* outlives the frame until its close completes */
    int done = 0;

    lb_shard_add(&lb_shard_of(&fx.srv[0]->c, 0)->req_tot, 4);
    lb_shard_add(&lb_shard_of(&fx.srv[0]->c, 1)->req_tot, 6);
    lb_shard_add(&lb_shard_of(&fx.fe, 1)->req_tot, 25);
    uv_timer_init(&fx.loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_wait, 1300, 0);
    while (!done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(lb_read(&fx.srv[0]->c.rate_last), 10);
    assert_int_equal(lb_read(&fx.srv[0]->c.rate_max), 10);
    assert_int_equal(lb_read(&fx.srv[1]->c.rate_last), 0);
    assert_int_equal(lb_read(&fx.fe.rate_last), 25);
    struct reply *r = get("/stats;json");
    assert_non_null(strstr(r->body, "\"req_rate\": 25"));
}

static void test_human_time(void **state)
{
    char t[32];

    lb_stats_human_time(t, sizeof(t), 5);
    assert_string_equal(t, "5s");
    lb_stats_human_time(t, sizeof(t), 72);
    assert_string_equal(t, "1m12s");
    lb_stats_human_time(t, sizeof(t), 7500);
    assert_string_equal(t, "2h5m");
    lb_stats_human_time(t, sizeof(t), 3 * 86400 + 4 * 3600 + 5);
    assert_string_equal(t, "3d4h");
}

static void test_port_in_use(void **state)
{
    struct lb_stats *other = (struct lb_stats *)&fx; /* must be cleared */
    struct err e = {""};

    assert_true(lb_stats_start(&other, &fx.loop, &fx.cfg, &fx.b, &fx.fe, &e) < 0);
    assert_null(other);
    assert_non_null(strstr(e.msg, "stats"));
    assert_non_null(strstr(e.msg, "address already in use"));
    /* the failed server's handles close on the loop; the good one keeps serving */
    assert_int_equal(get("/stats;csv")->status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rates, setup, teardown),
        cmocka_unit_test(test_human_time),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
