/* Step markers for a running test: see marks.h. */
#include "load/marks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/flags.h"

#define MARK_MAX 200 /* bytes of one marker's text */

static const char *marks_dir(void)
{
    const char *d = getenv("XDG_RUNTIME_DIR");

    return d && *d ? d : "/tmp";
}

char *load_marks_path(pid_t pid)
{
    return xasprintf("%s/mesh-load-%ld.marks", marks_dir(), (long)pid);
}

void load_marks_take(const char *path, size_t *off, int64_t t_ms, json_t *events, FILE *out)
{
    char chunk[4096];
    struct buf text = BUF_INIT;
    size_t taken = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    /* bounded: a marker is one short line; a runaway writer cannot make the run read forever */
    while (fd >= 0 && text.len < 64 * 1024 &&
           (n = pread(fd, chunk, sizeof(chunk), (off_t)(*off + text.len))) > 0)
        buf_append(&text, chunk, (size_t)n);
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < text.len;) {
        char *nl = memchr(text.data + i, '\n', text.len - i);
        size_t len;

        if (!nl)
            break; /* a line still being written: next time */
        len = (size_t)(nl - (text.data + i));
        if (len > 0) {
            json_array_append_new(events,
                                  json_pack("{s:I,s:s#}", "t_ms", (json_int_t)t_ms, "name",
                                            text.data + i, (int)(len < MARK_MAX ? len : MARK_MAX)));
            fprintf(out, "[%7.1fs] mark: %.*s\n", (double)t_ms / 1000, (int)len, text.data + i);
            taken++;
        }
        i += len + 1;
        *off += len + 1;
    }
    if (taken == 0) { /* SIGUSR1 by hand */
        char name[32];

        snprintf(name, sizeof(name), "mark %zu", json_array_size(events) + 1);
        json_array_append_new(events,
                              json_pack("{s:I,s:s}", "t_ms", (json_int_t)t_ms, "name", name));
        fprintf(out, "[%7.1fs] mark: %s\n", (double)t_ms / 1000, name);
    }
    fflush(out);
    buf_free(&text);
}

/* The one running `mesh load run` (its marks file and a live pid); 0 when none, -1 when several. */
static pid_t find_run(void)
{
    DIR *d = opendir(marks_dir());
    struct dirent *e;
    pid_t found = 0;
    int n = 0;

    while (d && (e = readdir(d)) != NULL) {
        long pid;
        char tail[16];

        if (sscanf(e->d_name, "mesh-load-%ld.%15s", &pid, tail) != 2 ||
            strcmp(tail, "marks") != 0 || pid <= 0 || kill((pid_t)pid, 0) != 0)
            continue;
        found = (pid_t)pid;
        n++;
    }
    if (d)
        closedir(d);
    return n > 1 ? -1 : found;
}

static const char mark_usage[] =
    "mesh load mark [-pid PID] TEXT\n\n"
    "Drops a step marker into a running `mesh load run`: TEXT is recorded as an event at this\n"
    "moment (meshkit.events in the report JSON, a marked line on the HTML report's charts).\n"
    "Without -pid, the one run of this user that is going on. `kill -USR1 PID` marks too.";

int load_mark_main(int argc, char **argv)
{
    int pid = 0, first = 0, rc;
    struct flag flags[] = {{"pid", FLAG_INT, &pid, "the run's process id", false}};
    struct err e = {""};
    char *path = NULL;
    struct buf line = BUF_INIT;
    int fd = -1, code = 1;

    rc = flags_parse(flags, ARRAY_LEN(flags), argc - 1, argv + 1, &first, &e);
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, mark_usage, flags, ARRAY_LEN(flags));
        return 0;
    }
    if (rc < 0 || first != argc - 2 || !*argv[argc - 1] || strpbrk(argv[argc - 1], "\r\n")) {
        fprintf(stderr, "%s\n", rc < 0 ? e.msg : "mesh load mark: want one line of TEXT");
        flags_usage(stderr, mark_usage, flags, ARRAY_LEN(flags));
        return 2;
    }
    if (pid == 0)
        pid = find_run();
    if (pid <= 0) {
        fprintf(stderr, "mesh load mark: %s\n",
                pid < 0 ? "several runs are going on: say which with -pid"
                        : "no `mesh load run` is going on");
        return 1;
    }
    path = load_marks_path(pid);
    buf_printf(&line, "%s\n", argv[argc - 1]);
    /* one write with O_APPEND: marks sent at once do not interleave */
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || write(fd, line.data, line.len) != (ssize_t)line.len) {
        fprintf(stderr, "mesh load mark: %s: %s\n", path, strerror(errno));
    } else if (kill(pid, SIGUSR1) != 0) {
        fprintf(stderr, "mesh load mark: run %d: %s\n", pid, strerror(errno));
    } else {
        code = 0;
    }
    if (fd >= 0)
        close(fd);
    buf_free(&line);
    free(path);
    return code;
}
