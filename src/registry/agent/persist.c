/*
 * Registry persistence: snapshot.json plus journal.log in one data directory.
 *
 * Every line of both files is `<len> <crc32 as 8 lowercase hex> <compact JSON>\n`, and each file
 * starts with the header record {"meshkit":"registry","version":1}. Records are written with
 * write(2) on the loop thread as they are committed (so a kill -9 loses nothing that was
 * acknowledged) and made durable by one fdatasync per batch, run on libuv's threadpool.
 *
 * Invariant: the journal on disk is always a gap-free sequence of records. When a write or an
 * fdatasync fails, the journal stops taking records (they stay in memory) until a snapshot of
 * the whole state has been written, which covers everything that was dropped.
 *
 * Opening uses blocking file I/O on the loop thread, before the agent serves anything.
 * Compaction writes the snapshot in a forked child (below) so the loop goes on serving; only the
 * repair of a broken journal writes a snapshot in place, on the loop.
 */
#include "registry/agent/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/file.h"
#include "lib/fork_worker.h"
#include "lib/json.h"
#include "lib/buf.h"
#include "lib/crc32.h"
#include "lib/log.h"

#define PERSIST_VERSION     1
#define PERSIST_HEADER_JSON "{\"meshkit\":\"registry\",\"version\":1}"
#define PERSIST_HEADER_BASE                                                                        \
    "{\"meshkit\":\"registry\",\"version\":1,\"snapshot_index\":%" PRIu64 "}"
#define PERSIST_MAX_RECORD     (256u << 20) /* a longer length field is corruption */
#define PERSIST_COMPACT_MIN    (1u << 20)   /* journal bytes before compaction is considered */
#define PERSIST_COMPACT_FACTOR 4            /* ... and journal > factor x snapshot bytes */
#define PERSIST_RETRY_MS       5000         /* between snapshot attempts after a failed write */

struct reg_persist {
    uv_loop_t *loop;
    struct reg_state *st;
    char *journal_path;
    char *snapshot_path;
    char *tmp_path;
    char *dir;
    int jfd;                 /* journal.log, O_APPEND */
    uint64_t journal_size;   /* bytes in journal.log, header included */
    uint64_t snapshot_size;  /* bytes of the current snapshot.json, 0 when there is none */
    uint64_t snapshot_index; /* state index the snapshot covers; older journal records skip */
    struct buf line;         /* reused encoding buffer */
    uv_fs_t sync_req;
    bool sync_running; /* sync_req is in flight */
    bool sync_wanted;  /* records were written after the running sync started */
    bool closing;      /* closed while a sync ran: sync_done frees */
    int sync_fd;       /* the descriptor sync_req flushes */
    int stale_fd;      /* a replaced journal's descriptor, closed when its sync completes */
    bool broken;       /* the journal takes no records until a snapshot succeeds */
    int broken_err;    /* -errno of the failure that broke it */
    uint64_t dropped;  /* records not written while broken */
    uint64_t lost;     /* records not written since open (never reset): reg_persist_unwritten */
    uv_timer_t *retry_timer; /* while broken: the next snapshot attempt */
    /* A background compaction: the forked child writing the snapshot, the state index and
     * the journal size at the fork, and the timer polling for the child's end. */
    pid_t child;
    uint64_t child_index;
    uint64_t child_journal_size;
    uv_timer_t *child_timer;
};

/* ---- line format ------------------------------------------------------------------------- */

/* Appends one record line for len bytes of JSON. */
static void line_append(struct buf *b, const char *json, size_t len)
{
    buf_printf(b, "%zu %08" PRIx32 " ", len, crc32_compute(json, len));
    buf_append(b, json, len);
    buf_append(b, "\n", 1);
}

/*
 * The first line of a file. A journal that continues a snapshot names the snapshot's index
 * (base), so that a journal whose snapshot went missing is told apart from a complete history.
 */
static void header_append(struct buf *b, uint64_t base)
{
    char json[128];

    if (base == 0) {
        line_append(b, PERSIST_HEADER_JSON, strlen(PERSIST_HEADER_JSON));
        return;
    }
    int n = snprintf(json, sizeof(json), PERSIST_HEADER_BASE, base);
    MESH_BUG_ON(n < 0 || (size_t)n >= sizeof(json));
    line_append(b, json, (size_t)n);
}

/* Lower case only: the checksum is written so, and anything else is damage. */
static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Parses one line at p[0..n). Returns the bytes it spans with *json / *json_len set, -2 when
 * the data ends before the line does (a torn write), or -1 when it is malformed or its checksum
 * does not match.
 */
static long line_parse(const char *p, size_t n, const char **json, size_t *json_len)
{
    size_t i = 0, len = 0;
    uint32_t crc = 0;

    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        len = len * 10 + (size_t)(p[i] - '0');
        if (i >= 10 || len > PERSIST_MAX_RECORD)
            return -1;
    }
    if (i == n)
        return -2;
    if (i == 0 || p[i++] != ' ')
        return -1;
    for (int k = 0; k < 8; k++, i++) {
        if (i == n)
            return -2;
        int d = hex_digit(p[i]);
        if (d < 0)
            return -1;
        crc = crc << 4 | (uint32_t)d;
    }
    if (i == n)
        return -2;
    if (p[i++] != ' ')
        return -1;
    if (n - i < len + 1)
        return -2;
    if (p[i + len] != '\n' || crc32_compute(p + i, len) != crc)
        return -1;
    *json = p + i;
    *json_len = len;
    return (long)(i + len + 1);
}

/* ---- file helpers ------------------------------------------------------------------------ */

/* Makes the directory's entries (a created or renamed file) durable. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Where reading a file's records stopped. */
struct scan {
    const char *name; /* file name for messages */
    size_t good;      /* end offset of the last whole, applied record */
    bool torn;        /* stopped at an incomplete or corrupt line before the end */
    uint64_t skipped; /* records already covered by the snapshot */
    uint64_t applied;
    bool ends_with_index; /* the last record was {"op":"index"} (a complete snapshot) */
    uint64_t last_index;
};

/*
 * Checks the header line and reads its snapshot index into *base (0 when it names none).
 * Returns its length, 0 when the file holds nothing but a prefix of a header (a crash while
 * creating it), or -EINVAL with e set when it is not our file.
 */
static long header_check(const char *name, const char *data, size_t len, uint64_t *base,
                         struct err *e)
{
    struct buf want = BUF_INIT;
    const char *json;
    size_t json_len;
    long n = line_parse(data, len, &json, &json_len);
    long rc = n;

    *base = 0;
    header_append(&want, 0);
    if (n == -2 && len < want.len && memcmp(data, want.data, len) == 0) {
        rc = 0;
        goto out;
    }
    json_t *h = n > 0 ? json_loadb(json, json_len, 0, NULL) : NULL;
    const char *magic = json_string_value(json_object_get(h, "meshkit"));
    json_int_t version = json_integer_value(json_object_get(h, "version"));
    if (!magic || strcmp(magic, "registry") != 0)
        rc = err_set(e, "%s: not a meshkit registry file (bad header line)", name);
    else if (version != PERSIST_VERSION)
        rc = err_set(e, "%s: format version %lld is not supported (this build reads %d)", name,
                     (long long)version, PERSIST_VERSION);
    else
        *base = (uint64_t)json_integer_value(json_object_get(h, "snapshot_index"));
    json_decref(h);
out:
    buf_free(&want);
    return rc;
}

/* Applies one record's JSON. Returns 0 or -EINVAL with e set. */
static int record_apply(struct reg_persist *p, struct scan *sc, const char *json, size_t len,
                        struct err *e)
{
    json_error_t jerr;
    json_t *r = json_loadb(json, len, 0, &jerr);
    int rc = 0;

    if (!json_is_object(r)) {
        rc = err_set(e, "%s: record at offset %zu is not a JSON object: %s", sc->name, sc->good,
                     jerr.text);
        goto out;
    }
    const char *op = json_string_value(json_object_get(r, "op"));
    uint64_t index = (uint64_t)json_integer_value(json_object_get(r, "index"));
    if (index != 0 && index <= p->snapshot_index) {
        /* Written before a compaction whose journal reset did not happen (a crash). */
        sc->skipped++;
        goto out;
    }
    if (reg_state_apply(p->st, r) < 0) {
        rc = err_set(e, "%s: record at offset %zu (op %s, index %" PRIu64 ") cannot be applied",
                     sc->name, sc->good, op ? op : "(none)", index);
        goto out;
    }
    sc->applied++;
    sc->last_index = index;
    sc->ends_with_index = op && strcmp(op, "index") == 0;
out:
    json_decref(r);
    return rc;
}

/*
 * Applies the records of data[start..len). Stops at the first line that is incomplete or fails
 * its checksum (sc->torn); a record that is whole but cannot be applied is an error, because it
 * was written in full and is not an artefact of a crash: dropping it and everything after it
 * would lose acknowledged writes silently.
 */
static int records_apply(struct reg_persist *p, struct scan *sc, const char *data, size_t len,
                         size_t start, struct err *e)
{
    const char *json;
    size_t json_len;

    sc->good = start;
    while (sc->good < len) {
        long n = line_parse(data + sc->good, len - sc->good, &json, &json_len);
        if (n < 0) {
            sc->torn = true;
            return 0;
        }
        int rc = record_apply(p, sc, json, json_len, e);
        if (rc < 0)
            return rc;
        sc->good += (size_t)n;
    }
    return 0;
}

/* Loads snapshot.json if there is one. A snapshot that is not whole is a hard error. */
static int snapshot_load(struct reg_persist *p, struct err *e)
{
    struct buf data = BUF_INIT;
    struct scan sc = {.name = p->snapshot_path};
    int rc, fd = open(p->snapshot_path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        rc = -errno;
        err_set(e, "open %s: %s", p->snapshot_path, strerror(-rc));
        return rc;
    }
    rc = file_read_all(fd, &data);
    if (rc < 0) {
        err_set(e, "read %s: %s", p->snapshot_path, strerror(-rc));
        goto out;
    }
    uint64_t base;
    long h = header_check(p->snapshot_path, data.data ? data.data : "", data.len, &base, e);
    if (h <= 0) {
        rc = h < 0 ? (int)h : err_set(e, "%s: truncated header", p->snapshot_path);
        goto out;
    }
    rc = records_apply(p, &sc, data.data, data.len, (size_t)h, e);
    if (rc == 0 && (sc.torn || !sc.ends_with_index))
        rc = err_set(e,
                     "%s: corrupt or incomplete at offset %zu of %zu; refusing to start without "
                     "it (restore it from a backup, or move the data directory away)",
                     p->snapshot_path, sc.good, data.len);
    if (rc == 0) {
        p->snapshot_size = data.len;
        p->snapshot_index = sc.last_index;
        log_info("%s: loaded %" PRIu64 " records up to index %" PRIu64, p->snapshot_path,
                 sc.applied, sc.last_index);
    }
out:
    close(fd);
    buf_free(&data);
    return rc;
}

/* Cuts the journal to len bytes, durably. */
static int journal_truncate(struct reg_persist *p, uint64_t len)
{
    if (ftruncate(p->jfd, (off_t)len) < 0 || fdatasync(p->jfd) < 0)
        return -errno;
    p->journal_size = len;
    return 0;
}

/* Writes the header into an empty journal and makes the file's creation durable. */
static int journal_start(struct reg_persist *p)
{
    struct buf h = BUF_INIT;
    int rc;

    header_append(&h, p->snapshot_index);
    rc = file_write_all(p->jfd, h.data, h.len);
    if (rc == 0 && fdatasync(p->jfd) < 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(p->dir);
    if (rc == 0)
        p->journal_size = h.len;
    buf_free(&h);
    return rc;
}

/*
 * True when a whole, checksummed record starts at a line boundary after offset `from`: the damage
 * at `from` is then not a torn tail (a crash leaves nothing valid behind the write it cut) but
 * corruption in the middle of the history, and cutting there would destroy intact records.
 */
static bool valid_record_after(const char *data, size_t len, size_t from)
{
    const char *json;
    size_t json_len;

    for (size_t i = from; i < len; i++) {
        const char *nl = memchr(data + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - data);
        if (i + 1 < len && line_parse(data + i + 1, len - i - 1, &json, &json_len) > 0)
            return true;
    }
    return false;
}

/* Opens journal.log, replays it, and cuts off a torn tail. */
static int journal_load(struct reg_persist *p, struct err *e)
{
    struct buf data = BUF_INIT;
    struct scan sc = {.name = p->journal_path};
    uint64_t base = 0;
    int rc;

    bool existed = access(p->journal_path, F_OK) == 0;
    /* Every start leaves a journal and a compaction only ever renames a new one over it, so a
     * snapshot without one lost the changes made after it: say so rather than drop them. */
    if (!existed && p->snapshot_size)
        return err_set(e,
                       "%s: missing beside %s (index %" PRIu64 "): the changes made after that "
                       "snapshot would be lost; refusing to start (restore it from a backup, or, "
                       "to start from the snapshot alone, create it empty)",
                       p->journal_path, p->snapshot_path, p->snapshot_index);
    p->jfd = open(p->journal_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (p->jfd < 0) {
        rc = -errno;
        err_set(e, "open %s: %s", p->journal_path, strerror(-rc));
        return rc;
    }
    rc = file_read_all(p->jfd, &data);
    if (rc < 0) {
        err_set(e, "read %s: %s", p->journal_path, strerror(-rc));
        goto out;
    }
    long h = header_check(p->journal_path, data.data ? data.data : "", data.len, &base, e);
    if (h < 0) {
        rc = (int)h;
        goto out;
    }
    if (base > p->snapshot_index) {
        rc = err_set(e,
                     "%s continues a snapshot at index %" PRIu64 ", but %s %s; refusing to "
                     "start with only the journal's changes (restore snapshot.json from a "
                     "backup, or move the data directory away to start empty)",
                     p->journal_path, base, p->snapshot_path,
                     p->snapshot_size ? "is older" : "is missing");
        goto out;
    }
    if (h > 0)
        rc = records_apply(p, &sc, data.data, data.len, (size_t)h, e);
    if (rc < 0)
        goto out;
    if (h > 0 && sc.torn && valid_record_after(data.data, data.len, sc.good)) {
        rc = err_set(e,
                     "%s: corrupt record at offset %zu, followed by intact records; refusing "
                     "to start (restore the data directory from a backup, or, to keep only "
                     "what precedes the damage, truncate the file to %zu bytes)",
                     p->journal_path, sc.good, sc.good);
        goto out;
    }
    if (h > 0 && sc.torn) {
        log_warn("%s: torn tail at offset %zu (%zu bytes dropped), truncating", p->journal_path,
                 sc.good, data.len - sc.good);
        rc = journal_truncate(p, sc.good);
    } else if (h == 0 && data.len > 0) {
        log_warn("%s: torn header (%zu bytes), rewriting it", p->journal_path, data.len);
        rc = journal_truncate(p, 0);
    } else if (existed && data.len == 0) {
        /* A crash while a first start created it, or damage: either way, say what is left. */
        log_warn("%s: empty, starting from %s", p->journal_path,
                 p->snapshot_size ? p->snapshot_path : "an empty registry");
    }
    p->journal_size = h > 0 ? sc.good : 0;
    if (rc == 0 && p->journal_size == 0)
        rc = journal_start(p);
    if (rc < 0) {
        err_set(e, "%s: %s", p->journal_path, strerror(-rc));
        goto out;
    }
    log_info("%s: replayed %" PRIu64 " records (%" PRIu64 " already in the snapshot)",
             p->journal_path, sc.applied, sc.skipped);
out:
    buf_free(&data);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void persist_free(struct reg_persist *p)
{
    if (p->jfd >= 0)
        close(p->jfd);
    if (p->stale_fd >= 0)
        close(p->stale_fd);
    free(p->journal_path);
    free(p->snapshot_path);
    free(p->tmp_path);
    free(p->dir);
    buf_free(&p->line);
    free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Stops and frees a heap timer, NULLing the owner's pointer (the memory goes in close_cb). */
static void timer_stop(uv_timer_t **t)
{
    if (!*t)
        return;
    uv_close((uv_handle_t *)*t, on_timer_closed);
    *t = NULL;
}

/* Starts a one-shot or repeating heap timer into *t (which must be stopped). */
static void timer_start(struct reg_persist *p, uv_timer_t **t, uv_timer_cb cb, uint64_t ms,
                        uint64_t repeat)
{
    MESH_BUG_ON(*t != NULL);
    *t = xcalloc(1, sizeof(**t));
    uv_timer_init(p->loop, *t);
    (*t)->data = p;
    uv_timer_start(*t, cb, ms, repeat);
}

/* A broken journal's repair: a snapshot taken in place covers the records it lacks. */
static void on_retry_timer(uv_timer_t *t)
{
    struct reg_persist *p = t->data;
    struct err e;

    timer_stop(&p->retry_timer);
    /* A background snapshot being written shares the temporary file: wait for it. */
    bool busy = p->child > 0 || p->child_timer;
    if (!busy && reg_persist_compact(p, &e) == 0)
        return;
    if (!busy)
        log_error("compaction: %s; retrying in %d ms", e.msg, PERSIST_RETRY_MS);
    timer_start(p, &p->retry_timer, on_retry_timer, PERSIST_RETRY_MS, 0);
}

/* Stops journaling until a snapshot has captured the state again (see the invariant above). */
static void journal_break(struct reg_persist *p, const char *what, int err)
{
    log_error("%s: %s failed: %s; changes are kept in memory only until a snapshot can be "
              "written",
              p->journal_path, what, strerror(-err));
    p->broken = true;
    p->broken_err = err;
    if (!p->retry_timer && !p->closing)
        timer_start(p, &p->retry_timer, on_retry_timer, PERSIST_RETRY_MS, 0);
}

/* A record that did not reach the journal: the API must not acknowledge its change. */
static void record_lost(struct reg_persist *p)
{
    p->dropped++;
    p->lost++;
}

static void reg_sync_start(struct reg_persist *p);

static void sync_done(uv_fs_t *req)
{
    struct reg_persist *p = req->data;
    ssize_t res = req->result;

    uv_fs_req_cleanup(req);
    p->sync_running = false;
    if (p->stale_fd >= 0) { /* the journal was replaced while this flush ran on the old file */
        close(p->stale_fd);
        p->stale_fd = -1;
    }
    if (p->closing) {
        persist_free(p);
        return;
    }
    /* After a failed fdatasync the kernel may have dropped the dirty pages: start over. */
    if (res < 0 && !p->broken)
        journal_break(p, "fdatasync", (int)res);
    if (p->sync_wanted && !p->broken)
        reg_sync_start(p);
}

/* Group commit: one fdatasync in flight; records written meanwhile wait for the next one. */
static void reg_sync_start(struct reg_persist *p)
{
    if (p->sync_running) {
        p->sync_wanted = true;
        return;
    }
    p->sync_wanted = false;
    p->sync_req.data = p;
    p->sync_fd = p->jfd;
    int rc = uv_fs_fdatasync(p->loop, &p->sync_req, p->jfd, sync_done);
    if (rc < 0)
        journal_break(p, "fdatasync", rc);
    else
        p->sync_running = true;
}

/* The st->journal hook: appends one record and schedules its sync. */
static void persist_journal_cb(const json_t *record, void *data)
{
    struct reg_persist *p = data;

    if (p->broken) {
        record_lost(p);
        return;
    }
    char *json = json_dumps(record, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    if (!json) {
        /* Cannot happen for records built by state_journal.c; never leave a gap silently. */
        journal_break(p, "encoding a record", -EINVAL);
        record_lost(p);
        return;
    }
    size_t len = strlen(json);
    if (len > PERSIST_MAX_RECORD) {
        /* Replay would take it for corruption and cut it off with everything after it. */
        free(json);
        journal_break(p, "writing an oversized record", -EFBIG);
        record_lost(p);
        return;
    }
    buf_reset(&p->line);
    line_append(&p->line, json, len);
    free(json);
    int rc = file_write_all(p->jfd, p->line.data, p->line.len);
    if (rc < 0) {
        /* Remove a partial line so a later snapshot can reuse the journal; if even that fails,
         * the next open treats it as a torn tail. */
        if (ftruncate(p->jfd, (off_t)p->journal_size) < 0)
            log_error("%s: ftruncate: %s", p->journal_path, strerror(errno));
        journal_break(p, "write", rc);
        record_lost(p);
        return;
    }
    p->journal_size += p->line.len;
    reg_sync_start(p);
}

uint64_t reg_persist_unwritten(const struct reg_persist *p, int *err)
{
    *err = p->broken_err;
    return p->lost;
}

/* ---- snapshots --------------------------------------------------------------------------- */

static void dump_emit(const json_t *record, void *data)
{
    struct buf *b = data;
    char *json = json_dumps(record, JSON_COMPACT | JSON_MESH_REAL_PRECISION);

    if (!json)
        abort(); /* only on out-of-memory, like x*alloc */
    line_append(b, json, strlen(json));
    free(json);
}

/* Writes the state to snapshot.json via a synced temporary file and an atomic rename. */
static int snapshot_write(struct reg_persist *p, size_t *size, struct err *e)
{
    struct buf b = BUF_INIT;
    const char *step = "open";
    int rc = 0;

    header_append(&b, 0);
    reg_state_dump(p->st, dump_emit, &b);
    int fd = open(p->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto err_open;
    }
    step = "write";
    rc = file_write_all(fd, b.data, b.len);
    if (rc == 0 && fsync(fd) < 0) {
        step = "fsync";
        rc = -errno;
    }
    if (close(fd) < 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    if (rc < 0)
        goto err_written;
    if (rename(p->tmp_path, p->snapshot_path) < 0) {
        step = "rename";
        rc = -errno;
        goto err_written;
    }
    rc = fsync_dir(p->dir);
    if (rc < 0) {
        err_set(e, "fsync %s: %s", p->dir, strerror(-rc));
        goto out;
    }
    *size = b.len;
    goto out;

err_written:
    unlink(p->tmp_path);
err_open:
    err_set(e, "%s %s: %s", step, p->tmp_path, strerror(-rc));
out:
    buf_free(&b);
    return rc;
}

/*
 * Replaces journal.log by a header naming the snapshot at base and the journal's records from
 * offset `from` on (those the snapshot lacks), through a synced temporary file and a rename, so
 * a crash leaves the old journal or the new one. A flush still running on the old descriptor
 * keeps it open until it completes.
 */
static int journal_replace(struct reg_persist *p, uint64_t from, uint64_t base, struct err *e)
{
    uint64_t tail = p->journal_size - from;
    char *tmp = xasprintf("%s.tmp", p->journal_path);
    struct buf b = BUF_INIT;
    int rc = 0, fd = -1;

    header_append(&b, base);
    buf_reserve(&b, (size_t)tail);
    ssize_t n = pread(p->jfd, b.data + b.len, (size_t)tail, (off_t)from);
    if (n != (ssize_t)tail) {
        rc = n < 0 ? -errno : -EIO;
        goto out;
    }
    b.len += (size_t)tail;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || file_write_all(fd, b.data, b.len) < 0 || fdatasync(fd) < 0 ||
        rename(tmp, p->journal_path) < 0) {
        rc = -errno;
        goto out;
    }
    rc = fsync_dir(p->dir);
    if (p->sync_running && p->sync_fd == p->jfd) {
        MESH_BUG_ON(p->stale_fd >= 0);
        p->stale_fd = p->jfd;
    } else {
        close(p->jfd);
    }
    p->jfd = fd;
    fd = -1;
    p->journal_size = b.len;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (rc < 0)
        err_set(e, "replace %s: %s", p->journal_path, strerror(-rc));
    free(tmp);
    buf_free(&b);
    return rc;
}

int reg_persist_compact(struct reg_persist *p, struct err *e)
{
    size_t size = 0;
    uint64_t index = p->st->index;
    int rc = snapshot_write(p, &size, e);

    if (rc < 0)
        return rc;
    p->snapshot_size = size;
    p->snapshot_index = index;
    /* From here the journal's records are all covered by the snapshot (and skipped on replay
     * even if the replacement never happens), so a broken journal is whole again. */
    rc = journal_replace(p, p->journal_size, index, e);
    if (rc < 0)
        return rc;
    if (p->broken)
        log_info("%s: journal resumed after a snapshot (%" PRIu64 " changes were only in memory)",
                 p->journal_path, p->dropped);
    p->broken = false;
    p->broken_err = 0;
    p->dropped = 0;
    timer_stop(&p->retry_timer);
    log_info("%s: snapshot written at index %" PRIu64 " (%zu bytes)", p->snapshot_path, index,
             size);
    return 0;
}

/* ---- background compaction ---------------------------------------------------------------
 *
 * Writing a snapshot of a large state takes long enough (about 1.5 s for 240,000 keys) to stall
 * every client if done on the loop. As Redis's BGSAVE, a forked child writes it from its
 * copy-on-write view of memory while the parent goes on serving and journaling. When the child
 * has renamed the snapshot into place, the parent replaces the journal by the records written
 * since the fork. Until then, and across a crash at any point, replay stays right: records
 * already in a snapshot are skipped by index.
 */

/* Polls for the child's end, then takes its snapshot into use. */
static void on_child_timer(uv_timer_t *t)
{
    struct reg_persist *p = t->data;
    struct err e;
    int status;

    if (p->child > 0) {
        pid_t r = waitpid(p->child, &status, WNOHANG);
        if (r == 0)
            return;
        p->child = 0;
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            log_error("compaction: the snapshot writer failed (status %d); retrying later",
                      r < 0 ? -1 : status);
            timer_stop(&p->child_timer);
            return;
        }
        struct stat sb;
        p->snapshot_index = p->child_index;
        p->snapshot_size = stat(p->snapshot_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    }
    timer_stop(&p->child_timer);
    if (journal_replace(p, p->child_journal_size, p->child_index, &e) < 0) {
        log_error("compaction: %s (the journal stays whole; replay skips what the snapshot "
                  "has)",
                  e.msg);
        return;
    }
    log_info("%s: snapshot written at index %" PRIu64 " (%" PRIu64 " bytes) in the "
             "background",
             p->snapshot_path, p->snapshot_index, p->snapshot_size);
}

/*
 * The forked snapshot writer (lib/fork_worker.h): it holds none of the agent's descriptors, so
 * a restart after the agent was killed can bind while the writer is still busy, and it dies
 * with the agent, whose compaction it was.
 */
static int write_in_child(int fd, void *arg)
{
    struct err e;
    size_t size;

    return snapshot_write(arg, &size, &e);
}

static void compact_in_background(struct reg_persist *p)
{
    struct err e;

    p->child_index = p->st->index;
    p->child_journal_size = p->journal_size;
    pid_t pid = fork_worker(-1, write_in_child, p);
    if (pid < 0) {
        log_warn("compaction: fork: %s; compacting in place", strerror((int)-pid));
        if (reg_persist_compact(p, &e) < 0)
            log_error("compaction: %s", e.msg);
        return;
    }
    p->child = pid;
    timer_start(p, &p->child_timer, on_child_timer, 20, 20);
}

void reg_persist_maybe_compact(struct reg_persist *p)
{
    uint64_t limit = p->snapshot_size * PERSIST_COMPACT_FACTOR;

    if (limit < PERSIST_COMPACT_MIN)
        limit = PERSIST_COMPACT_MIN;
    /* A broken journal is repaired by its retry timer, with a snapshot taken in place. */
    if (p->child > 0 || p->child_timer || p->broken)
        return;
    if (p->journal_size > limit)
        compact_in_background(p);
}

/* ---- open / close ------------------------------------------------------------------------ */

int reg_persist_open(struct reg_persist **out, uv_loop_t *loop, const char *data_dir,
                     struct reg_state *st, struct err *e)
{
    struct reg_persist *p = xcalloc(1, sizeof(*p));
    int rc;

    p->loop = loop;
    p->st = st;
    p->jfd = -1;
    p->stale_fd = -1;
    p->dir = xstrdup(data_dir);
    p->journal_path = xasprintf("%s/journal.log", data_dir);
    p->snapshot_path = xasprintf("%s/snapshot.json", data_dir);
    p->tmp_path = xasprintf("%s/snapshot.json.tmp", data_dir);
    rc = file_mkdir_all(data_dir, 0700);
    if (rc == -ENOTDIR) { /* a file at it (or above): "create" would name the wrong fix */
        err_set(e, "%s: not a directory", data_dir);
        goto err;
    }
    if (rc < 0) {
        err_set(e, "create %s: %s", data_dir, strerror(-rc));
        goto err;
    }
    /* A leftover of a compaction that crashed before its rename: never complete, never used. */
    if (unlink(p->tmp_path) < 0 && errno != ENOENT) {
        rc = -errno;
        err_set(e, "remove %s: %s", p->tmp_path, strerror(errno));
        goto err;
    }
    rc = snapshot_load(p, e);
    if (rc < 0)
        goto err;
    rc = journal_load(p, e);
    if (rc < 0)
        goto err;
    st->journal = persist_journal_cb;
    st->journal_data = p;
    /* A server restarted more often than the compaction check runs would otherwise replay an
     * ever longer journal: a large one is compacted now (in the background). */
    reg_persist_maybe_compact(p);
    *out = p;
    return 0;

err:
    persist_free(p);
    *out = NULL;
    return rc;
}

void reg_persist_close(struct reg_persist *p)
{
    if (!p)
        return;
    if (p->child > 0) { /* its snapshot would be taken into use by nobody: stop it */
        kill(p->child, SIGKILL);
        waitpid(p->child, NULL, 0);
        unlink(p->tmp_path);
        p->child = 0;
    }
    timer_stop(&p->child_timer);
    timer_stop(&p->retry_timer);
    if (p->st->journal_data == p) {
        p->st->journal = NULL;
        p->st->journal_data = NULL;
    }
    if (!p->broken && fdatasync(p->jfd) < 0)
        log_error("%s: fdatasync: %s", p->journal_path, strerror(errno));
    if (p->dropped > 0)
        log_error("%s: closing with %" PRIu64 " changes that were never written (a snapshot "
                  "could not be taken)",
                  p->journal_path, p->dropped);
    if (p->sync_running)
        p->closing = true; /* the fd stays open for the request; sync_done frees */
    else
        persist_free(p);
}
