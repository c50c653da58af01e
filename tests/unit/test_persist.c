#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/log.h"
#include "registry/agent/persist.h"
#include "registry/state/state.h"

/* One test's world: a data directory, a loop, and the state persisted into it. */
struct world {
    char dir[512];
    uv_loop_t loop;
    struct reg_state st;
    struct reg_persist *p;
};

static const unsigned char binary_value[] = {0x00, 0xff, 0x10, '\n', 0x00, 0x80, '"', '\\', 0x7f};

/* ---- fixture ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct world *w = xcalloc(1, sizeof(*w));
    const char *base = getenv("MESH_TEST_TMPDIR");

    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    assert_true(snprintf(w->dir, sizeof(w->dir), "%s/persist-XXXXXX", base) < (int)sizeof(w->dir));
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    *state = w;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct world *w = *state;

    assert_int_equal(uv_loop_close(&w->loop), 0);
    nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(w);
    return 0;
}

static char *path_in(struct world *w, const char *name)
{
    return xasprintf("%s/%s", w->dir, name);
}

static off_t file_size(struct world *w, const char *name)
{
    char *path = path_in(w, name);
    struct stat sb;
    int rc = stat(path, &sb);

    free(path);
    return rc == 0 ? sb.st_size : -1;
}

/* Opens persistence over a fresh state; the open must succeed. */
static void world_open(struct world *w)
{
    struct err e = {{0}};

    reg_state_init(&w->st);
    int rc = reg_persist_open(&w->p, &w->loop, w->dir, &w->st, &e);
    if (rc != 0)
        fail_msg("reg_persist_open: %d %s", rc, e.msg);
    assert_true(w->st.journal != NULL);
}

/* Lets the background syncs finish, closes, and frees the state. */
static void world_close(struct world *w)
{
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    reg_persist_close(w->p);
    w->p = NULL;
    assert_null(w->st.journal);
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    reg_state_free(&w->st);
}

/* ---- state helpers ----------------------------------------------------------------------- */

static void collect(const json_t *record, void *data)
{
    json_array_append(data, (json_t *)record);
}

/* Every entity with every field and index, in a fixed order, plus the table indexes. */
static json_t *dump(const struct reg_state *st)
{
    json_t *a = json_array();
    reg_state_dump(st, collect, a);
    return a;
}

static void assert_dump_equal(const json_t *want, const struct reg_state *st)
{
    json_t *got = dump(st);
    if (!json_equal(want, got)) {
        /* Print the first record that differs, not megabytes of state. */
        size_t i = 0;
        while (i < json_array_size(want) &&
               json_equal(json_array_get(want, i), json_array_get(got, i)))
            i++;
        char *a = json_dumps(json_array_get(want, i), JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(json_array_get(got, i), JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("record %zu differs:\nwant %s\n got %s\n", i, a ? a : "(none)",
                    b ? b : "(none)");
        free(a);
        free(b);
        json_decref(got);
        fail();
    }
    json_decref(got);
}

struct indexes {
    uint64_t index;
    uint64_t table[REG_TABLE_COUNT];
};

static struct indexes indexes_of(const struct reg_state *st)
{
    struct indexes x = {.index = st->index};
    memcpy(x.table, st->table_index, sizeof(x.table));
    return x;
}

static void assert_indexes(const struct indexes *want, const struct reg_state *st)
{
    assert_int_equal(st->index, want->index);
    assert_int_equal(st->table_index[REG_TABLE_CATALOG], want->table[REG_TABLE_CATALOG]);
    assert_int_equal(st->table_index[REG_TABLE_KV], want->table[REG_TABLE_KV]);
}

static struct reg_node *add_node(struct reg_state *st, const char *name, const char *addr)
{
    json_t *meta = json_pack("{s:s}", "rack", "r1");
    struct reg_node_fields f = {.name = name,
                                .id = "6f1c2b7e-0000-4000-8000-000000000001",
                                .address = addr,
                                .datacenter = "dc1",
                                .meta = meta};
    assert_true(reg_node_upsert(st, &f) > 0);
    json_decref(meta);
    return reg_node_get(st, name);
}

static void add_service(struct reg_state *st, struct reg_node *n, const char *id, int port)
{
    char *tags[] = {"primary", "v1"};
    json_t *meta = json_pack("{s:s}", "version", "1.2");
    struct reg_service svc = {.id = (char *)id,
                              .name = "web",
                              .tags = tags,
                              .ntags = 2,
                              .address = "10.0.0.5",
                              .port = port,
                              .meta = meta,
                              .enable_tag_override = true};
    assert_true(reg_service_upsert(st, n, &svc) > 0);
    json_decref(meta);
}

static void add_check(struct reg_state *st, struct reg_node *n, const char *id, const char *sid)
{
    json_t *def = json_pack("{s:s, s:s}", "HTTP", "http://10.0.0.5/health", "Interval", "10s");
    struct reg_check chk = {.id = (char *)id,
                            .name = "web health",
                            .status = REG_CRITICAL,
                            .notes = "n",
                            .output = "",
                            .service_id = (char *)sid,
                            .type = "http",
                            .definition = def,
                            .interval_ns = 10000000000,
                            .timeout_ns = 1000000};
    assert_true(reg_check_upsert(st, n, &chk) > 0);
    json_decref(def);
}

/* A bit of everything: nodes, services, checks with a status change, KV with binary values. */
static void populate(struct reg_state *st)
{
    struct reg_node *web1 = add_node(st, "web1", "10.0.0.5");
    struct reg_node *lb = add_node(st, "LoadBalancer", "10.0.0.2");

    add_service(st, web1, "web-3000", 3000);
    add_service(st, web1, "web-3001", 3001);
    add_service(st, lb, "haproxy", 80);
    add_check(st, web1, "service:web-3000", "web-3000");
    add_check(st, web1, "serfHealth", "");
    assert_true(reg_check_set_status(st, reg_check_get(web1, "service:web-3000"), REG_PASSING,
                                     "HTTP GET: 200 OK") > 0);
    add_service(st, web1, "web-3000", 3100); /* replace: CreateIndex stays */
    assert_true(reg_kv_set(st, "config/web/bin", binary_value, sizeof(binary_value),
                           UINT64_C(0xfedcba9876543210), NULL) > 0);
    assert_true(reg_kv_set(st, "config/web/empty", NULL, 0, 0, NULL) > 0);
    assert_true(reg_kv_set(st, "config/lb/mode", "roundrobin", 10, 7, NULL) > 0);
    assert_true(reg_kv_set(st, "config/lb/mode", "leastconn", 9, 7, NULL) > 0);
    assert_true(reg_kv_set(st, "other", "x", 1, 0, NULL) > 0);
    /* End on a catalog write, so catalog and KV table indexes differ from each other. */
    add_node(st, "web2", "10.0.0.6");
}

/* Spot checks of the populated state that do not go through reg_state_dump. */
static void assert_populated(const struct reg_state *st)
{
    struct reg_node *web1 = reg_node_get(st, "WEB1");
    assert_non_null(web1);
    assert_string_equal(web1->address, "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(web1->meta, "rack")), "r1");
    struct reg_service *s = reg_service_get(web1, "web-3000");
    assert_non_null(s);
    assert_int_equal(s->port, 3100);
    assert_true(s->create_index < s->modify_index);
    assert_int_equal(s->ntags, 2);
    assert_string_equal(s->tags[1], "v1");
    assert_true(s->enable_tag_override);
    struct reg_check *c = reg_check_get(web1, "service:web-3000");
    assert_non_null(c);
    assert_int_equal(c->status, REG_PASSING);
    assert_true(c->create_index < c->modify_index);
    assert_int_equal(c->interval_ns, 10000000000);
    struct reg_kv *kv = reg_kv_get(st, "config/web/bin");
    assert_non_null(kv);
    assert_int_equal(kv->value_len, sizeof(binary_value));
    assert_memory_equal(kv->value, binary_value, sizeof(binary_value));
    assert_int_equal(kv->flags, UINT64_C(0xfedcba9876543210));
    kv = reg_kv_get(st, "config/web/empty");
    assert_non_null(kv);
    assert_int_equal(kv->value_len, 0);
    kv = reg_kv_get(st, "config/lb/mode");
    assert_non_null(kv);
    assert_memory_equal(kv->value, "leastconn", 9);
    assert_true(kv->create_index < kv->modify_index);
    assert_non_null(reg_node_get(st, "loadbalancer"));
}

/* Reopens w->dir into a fresh state and checks it against want. */
static void reopen_and_compare(struct world *w, const json_t *want, const struct indexes *idx)
{
    world_open(w);
    assert_dump_equal(want, &w->st);
    assert_indexes(idx, &w->st);
}

/* ---- file surgery ------------------------------------------------------------------------ */

/* Offset of the start of the journal's last line. */
static off_t last_line_offset(struct world *w)
{
    char *path = path_in(w, "journal.log");
    FILE *f = fopen(path, "rb");
    char line[65536];
    off_t last = 0, pos = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        last = pos;
        pos = ftello(f);
    }
    fclose(f);
    free(path);
    return last;
}

static void truncate_file(struct world *w, const char *name, off_t len)
{
    char *path = path_in(w, name);
    assert_int_equal(truncate(path, len), 0);
    free(path);
}

static void append_file(struct world *w, const char *name, const char *data, size_t len)
{
    char *path = path_in(w, name);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    free(path);
}

static void xor_byte(struct world *w, const char *name, off_t off, unsigned char mask)
{
    char *path = path_in(w, name);
    int fd = open(path, O_RDWR);
    unsigned char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= mask;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
    free(path);
}

static void copy_file(struct world *w, const char *from, const char *to)
{
    char *src = path_in(w, from), *dst = path_in(w, to);
    char buf[65536];
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n;

    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    free(src);
    free(dst);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct world *w = *state;

    world_open(w);
    assert_int_equal(file_size(w, "snapshot.json"), -1);
    populate(&w->st);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    assert_true(idx.table[REG_TABLE_CATALOG] != idx.table[REG_TABLE_KV]);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    assert_populated(&w->st);
    /* Writes continue from the restored index. */
    assert_int_equal(reg_kv_set(&w->st, "after", "1", 1, 0, NULL), idx.index + 1);
    json_decref(want);
    want = dump(&w->st);
    idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    world_close(w);
    json_decref(want);
}

static void test_deletes_survive(void **state)
{
    struct world *w = *state;
    uint64_t cas_wrong = 1;

    world_open(w);
    populate(&w->st);
    struct reg_node *web1 = reg_node_get(&w->st, "web1");
    assert_true(reg_service_delete(&w->st, web1, "web-3000") > 0); /* takes its check along */
    assert_true(reg_check_delete(&w->st, web1, "serfHealth") > 0);
    assert_true(reg_node_delete(&w->st, "loadbalancer") > 0);
    assert_true(reg_kv_delete_tree(&w->st, "config/web/") > 0);
    assert_true(reg_kv_delete(&w->st, "other", NULL) > 0);
    assert_int_equal(reg_kv_delete(&w->st, "config/lb/mode", &cas_wrong), 0);
    assert_true(reg_kv_delete(&w->st, "never-existed", NULL) > 0); /* still a write */
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    web1 = reg_node_get(&w->st, "web1");
    assert_non_null(web1);
    assert_null(reg_service_get(web1, "web-3000"));
    assert_null(reg_check_get(web1, "service:web-3000"));
    assert_null(reg_check_get(web1, "serfHealth"));
    assert_non_null(reg_service_get(web1, "web-3001"));
    assert_null(reg_node_get(&w->st, "loadbalancer"));
    assert_null(reg_kv_get(&w->st, "config/web/bin"));
    assert_null(reg_kv_get(&w->st, "config/web/empty"));
    assert_null(reg_kv_get(&w->st, "other"));
    assert_non_null(reg_kv_get(&w->st, "config/lb/mode"));
    assert_int_equal(w->st.table_index[REG_TABLE_KV], idx.index);
    world_close(w);
    json_decref(want);
}

static void test_compact_then_reopen(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};

    world_open(w);
    populate(&w->st);
    off_t before = file_size(w, "journal.log");
    assert_int_equal(reg_persist_compact(w->p, &e), 0);
    off_t header = file_size(w, "journal.log");
    assert_true(header > 0 && header < 96 && header < before);
    assert_true(file_size(w, "snapshot.json") > header);
    assert_int_equal(file_size(w, "snapshot.json.tmp"), -1);
    /* Records after the snapshot go to the journal, deletes of snapshotted entities included. */
    assert_true(reg_node_delete(&w->st, "web2") > 0);
    assert_true(reg_kv_set(&w->st, "config/web/bin", "new", 3, 0, NULL) > 0);
    assert_true(file_size(w, "journal.log") > header);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    assert_null(reg_node_get(&w->st, "web2"));
    assert_memory_equal(reg_kv_get(&w->st, "config/web/bin")->value, "new", 3);
    world_close(w);
    json_decref(want);
}

/* The snapshot alone must carry each table's index, even when the last write was elsewhere. */
static void test_snapshot_keeps_table_indexes(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};

    world_open(w);
    populate(&w->st);
    assert_true(reg_kv_set(&w->st, "last", "kv", 2, 0, NULL) > 0); /* KV is now ahead */
    assert_int_equal(reg_persist_compact(w->p, &e), 0);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    world_close(w);
    json_decref(want);
}

static void test_maybe_compact_threshold(void **state)
{
    struct world *w = *state;
    static unsigned char big[60000];
    char key[32];

    world_open(w);
    populate(&w->st);
    reg_persist_maybe_compact(w->p); /* far below 1 MiB: nothing happens */
    assert_int_equal(file_size(w, "snapshot.json"), -1);
    for (int i = 0; i < 20; i++) {
        memset(big, 'a' + i, sizeof(big));
        snprintf(key, sizeof(key), "big/%02d", i);
        assert_true(reg_kv_set(&w->st, key, big, sizeof(big), 0, NULL) > 0);
        uv_run(&w->loop, UV_RUN_NOWAIT);
    }
    assert_true(file_size(w, "journal.log") > (1 << 20));
    reg_persist_maybe_compact(w->p);
    /* The snapshot is written by a child process; writes go on meanwhile and stay in the
     * journal's tail. */
    assert_true(reg_kv_set(&w->st, "during", "x", 1, 0, NULL) > 0);
    for (int i = 0; i < 500 && file_size(w, "journal.log") > (1 << 20); i++) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    off_t snap = file_size(w, "snapshot.json");
    assert_true(snap > (1 << 20));
    assert_true(file_size(w, "journal.log") < 256); /* the header and the "during" record */
    /* Next threshold is 4 x the snapshot: one more big value does not compact again. */
    assert_true(reg_kv_set(&w->st, "big/00", big, sizeof(big), 1, NULL) > 0);
    reg_persist_maybe_compact(w->p);
    assert_int_equal(file_size(w, "snapshot.json"), snap);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    assert_int_equal(reg_kv_get(&w->st, "big/19")->value_len, sizeof(big));
    assert_int_equal(reg_kv_get(&w->st, "big/19")->value[0], 'a' + 19);
    world_close(w);
    json_decref(want);
}

/*
 * Writes the populated state, then one last KV write whose record the test damages with
 * `damage`. Reopening must yield the state before that write, with the journal cut at the
 * record's start; a write after that lands and survives another reopen.
 */
static void check_torn_last_record(struct world *w, void (*damage)(struct world *, off_t))
{
    world_open(w);
    populate(&w->st);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    assert_true(reg_kv_set(&w->st, "config/lb/mode", "random", 6, 0, NULL) > 0);
    world_close(w);
    off_t last = last_line_offset(w);
    assert_true(last > 0);
    damage(w, last);

    reopen_and_compare(w, want, &idx);
    assert_populated(&w->st);
    assert_int_equal(file_size(w, "journal.log"), last);
    assert_true(reg_kv_set(&w->st, "after-crash", "yes", 3, 0, NULL) > 0);
    json_decref(want);
    want = dump(&w->st);
    idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    assert_memory_equal(reg_kv_get(&w->st, "after-crash")->value, "yes", 3);
    world_close(w);
    json_decref(want);
}

static void cut_mid_record(struct world *w, off_t last)
{
    truncate_file(w, "journal.log", file_size(w, "journal.log") - 10);
}

static void cut_in_length_field(struct world *w, off_t last)
{
    truncate_file(w, "journal.log", last + 1);
}

static void drop_newline(struct world *w, off_t last)
{
    truncate_file(w, "journal.log", file_size(w, "journal.log") - 1);
}

static void flip_json_byte(struct world *w, off_t last)
{
    /* The JSON ends two bytes before the end: `...}` then `\n`. Flip a byte inside it. */
    xor_byte(w, "journal.log", file_size(w, "journal.log") - 6, 0x01);
}

static void flip_checksum(struct world *w, off_t last)
{
    char *path = path_in(w, "journal.log");
    FILE *f = fopen(path, "rb");
    char line[256];

    assert_non_null(f);
    assert_int_equal(fseeko(f, last, SEEK_SET), 0);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    free(path);
    off_t crc_at = last + (off_t)(strchr(line, ' ') - line) + 1;
    xor_byte(w, "journal.log", crc_at, 0x01); /* mismatch, or not hex */
}

static void test_torn_mid_record(void **state)
{
    check_torn_last_record(*state, cut_mid_record);
}

static void test_torn_in_length(void **state)
{
    check_torn_last_record(*state, cut_in_length_field);
}

static void test_torn_newline(void **state)
{
    check_torn_last_record(*state, drop_newline);
}

static void test_flipped_json_byte(void **state)
{
    check_torn_last_record(*state, flip_json_byte);
}

static void test_flipped_checksum(void **state)
{
    check_torn_last_record(*state, flip_checksum);
}

static void test_garbage_appended(void **state)
{
    struct world *w = *state;
    static const char garbage[] = "12 00000000 {\"op\":\"kv\"}\n\0\0\0\0garbage";

    world_open(w);
    populate(&w->st);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);
    off_t size = file_size(w, "journal.log");
    append_file(w, "journal.log", garbage, sizeof(garbage) - 1);

    reopen_and_compare(w, want, &idx);
    assert_int_equal(file_size(w, "journal.log"), size);
    assert_true(reg_kv_set(&w->st, "after-garbage", "1", 1, 0, NULL) > 0);
    json_decref(want);
    want = dump(&w->st);
    idx = indexes_of(&w->st);
    world_close(w);

    reopen_and_compare(w, want, &idx);
    world_close(w);
    json_decref(want);
}

/* Expects the open to fail with a message naming `file`. */
static void assert_open_fails(struct world *w, const char *file)
{
    struct err e = {{0}};
    struct reg_persist *p = (struct reg_persist *)&e; /* must be reset to NULL */

    reg_state_init(&w->st);
    assert_true(reg_persist_open(&p, &w->loop, w->dir, &w->st, &e) < 0);
    assert_null(p);
    assert_null(w->st.journal);
    if (!strstr(e.msg, file))
        fail_msg("message does not name %s: %s", file, e.msg);
    reg_state_free(&w->st);
}

static void test_corrupt_snapshot_fails(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};

    world_open(w);
    populate(&w->st);
    assert_int_equal(reg_persist_compact(w->p, &e), 0);
    world_close(w);
    off_t size = file_size(w, "snapshot.json");

    xor_byte(w, "snapshot.json", size / 2, 0x20);
    assert_open_fails(w, "snapshot.json");
    xor_byte(w, "snapshot.json", size / 2, 0x20);
    world_open(w); /* repaired: opens again */
    world_close(w);

    /* Whole lines but the final index record is missing: incomplete, not acceptable. */
    truncate_file(w, "snapshot.json", size);
    char *path = path_in(w, "snapshot.json");
    FILE *f = fopen(path, "rb");
    char line[4096];
    off_t last = 0, pos = 0;
    while (f && fgets(line, sizeof(line), f)) {
        last = pos;
        pos = ftello(f);
    }
    fclose(f);
    free(path);
    truncate_file(w, "snapshot.json", last);
    assert_open_fails(w, "snapshot.json");
}

static void test_foreign_journal_fails(void **state)
{
    struct world *w = *state;
    static const char text[] = "this is not a journal\n";

    append_file(w, "journal.log", text, sizeof(text) - 1);
    assert_open_fails(w, "journal.log");
    assert_int_equal(file_size(w, "journal.log"), (off_t)sizeof(text) - 1); /* left alone */
}

static void test_newer_version_fails(void **state)
{
    struct world *w = *state;
    static const char json[] = "{\"meshkit\":\"registry\",\"version\":2}";
    char line[128];

    /* crc32 of the JSON above, computed independently (python3 zlib.crc32). */
    snprintf(line, sizeof(line), "%zu %08x %s\n", sizeof(json) - 1, 0xd56dbc18u, json);
    append_file(w, "journal.log", line, strlen(line));
    struct err e = {{0}};
    struct reg_persist *p;
    reg_state_init(&w->st);
    assert_true(reg_persist_open(&p, &w->loop, w->dir, &w->st, &e) < 0);
    assert_non_null(strstr(e.msg, "version 2"));
    reg_state_free(&w->st);
}

static void test_torn_header_rewritten(void **state)
{
    struct world *w = *state;

    append_file(w, "journal.log", "34 fe40e", 8); /* a prefix of the real header line */
    world_open(w);
    assert_true(reg_kv_set(&w->st, "k", "v", 1, 0, NULL) > 0);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);
    reopen_and_compare(w, want, &idx);
    world_close(w);
    json_decref(want);
}

/* A crash after the snapshot's rename but before the journal reset leaves old records behind. */
static void test_crash_during_compaction(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};

    world_open(w);
    populate(&w->st);
    assert_true(reg_node_delete(&w->st, "web2") > 0);
    assert_true(reg_kv_delete_tree(&w->st, "config/") > 0);
    assert_true(reg_kv_set(&w->st, "config/new", "1", 1, 0, NULL) > 0);
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    copy_file(w, "journal.log", "journal.old");
    assert_int_equal(reg_persist_compact(w->p, &e), 0);
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);
    copy_file(w, "journal.old", "journal.log");
    /* A leftover temporary file from an even earlier crash is ignored and removed. */
    append_file(w, "snapshot.json.tmp", "half", 4);

    reopen_and_compare(w, want, &idx);
    assert_int_equal(file_size(w, "snapshot.json.tmp"), -1);
    world_close(w);
    json_decref(want);
}

/*
 * One flipped bit in a record with intact records after it is not a torn tail: the open fails,
 * naming the file and the offset, and leaves the journal as it was.
 */
static void test_corrupt_middle_record_refuses(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};
    struct reg_persist *p;

    world_open(w);
    populate(&w->st);
    assert_true(reg_kv_set(&w->st, "middle", "damaged", 7, 0, NULL) > 0);
    world_close(w);
    off_t middle = last_line_offset(w);
    world_open(w);
    assert_true(reg_kv_set(&w->st, "after/1", "intact", 6, 0, NULL) > 0);
    assert_true(reg_kv_set(&w->st, "after/2", "intact", 6, 0, NULL) > 0);
    world_close(w);
    off_t size = file_size(w, "journal.log");

    xor_byte(w, "journal.log", middle + 20, 0x04);
    reg_state_init(&w->st);
    assert_true(reg_persist_open(&p, &w->loop, w->dir, &w->st, &e) < 0);
    assert_null(p);
    char offset[64];
    snprintf(offset, sizeof(offset), "offset %lld", (long long)middle);
    if (!strstr(e.msg, "journal.log") || !strstr(e.msg, offset) || !strstr(e.msg, "truncate"))
        fail_msg("the message must name the file, the offset and a way out: %s", e.msg);
    reg_state_free(&w->st);
    assert_int_equal(file_size(w, "journal.log"), size); /* nothing destroyed */

    /* The way out the message gives: cut the file there, keeping what precedes the damage. */
    truncate_file(w, "journal.log", middle);
    world_open(w);
    assert_null(reg_kv_get(&w->st, "middle"));
    assert_populated(&w->st);
    world_close(w);
}

/* A journal that continues a snapshot cannot stand alone: without snapshot.json, no start. */
static void test_missing_snapshot_refuses(void **state)
{
    struct world *w = *state;
    struct err e = {{0}};

    world_open(w);
    populate(&w->st);
    assert_int_equal(reg_persist_compact(w->p, &e), 0);
    assert_true(reg_kv_set(&w->st, "after", "snapshot", 8, 0, NULL) > 0);
    world_close(w);
    off_t size = file_size(w, "journal.log");
    char *snap = path_in(w, "snapshot.json");
    char *saved = path_in(w, "snapshot.saved");
    assert_int_equal(rename(snap, saved), 0);

    assert_open_fails(w, "snapshot.json");
    assert_int_equal(file_size(w, "journal.log"), size);
    assert_int_equal(rename(saved, snap), 0); /* restored from the "backup": starts again */
    world_open(w);
    assert_populated(&w->st);
    assert_non_null(reg_kv_get(&w->st, "after"));
    world_close(w);
    free(snap);
    free(saved);
}

/* A journal past the compaction threshold is compacted on open, not after a running period. */
static void test_large_journal_compacted_on_open(void **state)
{
    struct world *w = *state;
    static unsigned char big[60000];
    char key[32];

    world_open(w);
    populate(&w->st);
    for (int i = 0; i < 20; i++) {
        memset(big, 'a' + i, sizeof(big));
        snprintf(key, sizeof(key), "big/%02d", i);
        assert_true(reg_kv_set(&w->st, key, big, sizeof(big), 0, NULL) > 0);
    }
    json_t *want = dump(&w->st);
    struct indexes idx = indexes_of(&w->st);
    world_close(w);
    assert_true(file_size(w, "journal.log") > (1 << 20));
    assert_int_equal(file_size(w, "snapshot.json"), -1);

    world_open(w);
    for (int i = 0; i < 500 && file_size(w, "journal.log") > (1 << 20); i++) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_true(file_size(w, "journal.log") < 256);
    assert_true(file_size(w, "snapshot.json") > (1 << 20));
    world_close(w);
    reopen_and_compare(w, want, &idx);
    world_close(w);
    json_decref(want);
}

static void test_creates_data_dir(void **state)
{
    struct world *w = *state;
    char *base = xstrdup(w->dir);
    struct stat sb;

    assert_true(snprintf(w->dir, sizeof(w->dir), "%s/a/b", base) < (int)sizeof(w->dir));
    world_open(w);
    assert_true(reg_kv_set(&w->st, "k", "v", 1, 0, NULL) > 0);
    world_close(w);
    assert_int_equal(stat(w->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    /* teardown removes the whole tree */
    assert_true(snprintf(w->dir, sizeof(w->dir), "%s", base) < (int)sizeof(w->dir));
    free(base);
}

int main(void)
{
    log_min_level = LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_then_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_keeps_table_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_compact_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_mid_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_in_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_json_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_appended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_journal_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_header_rewritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_during_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creates_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_record_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_snapshot_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_journal_compacted_on_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
