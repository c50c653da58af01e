#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/file.h"

static char dir[256];

static int setup(void **state)
{
    const char *base = getenv("MESH_TEST_TMPDIR");
    mkdir(base ? base : "/tmp", 0755);
    snprintf(dir, sizeof(dir), "%s/test_file.XXXXXX", base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t entries(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void read_back(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(file_read_all(fd, out), 0);
    close(fd);
}

static void test_replace_writes_then_replaces_with_the_mode(void **state)
{
    char *path = xasprintf("%s/state.json", dir);
    struct buf got = BUF_INIT;
    struct stat st;
    struct err e;

    assert_int_equal(file_replace(path, "{\"v\": 1}\n", 9, 0600, 0, &e), 0);
    read_back(path, &got);
    assert_string_equal(got.data, "{\"v\": 1}\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a larger file, past one read's worth, replaced whole, synced */
    struct buf big = BUF_INIT;
    for (int i = 0; i < 20000; i++)
        buf_printf(&big, "line %d\n", i);
    assert_int_equal(file_replace(path, big.data, big.len, 0644, FILE_SYNC, &e), 0);
    buf_reset(&got);
    read_back(path, &got);
    assert_int_equal(got.len, big.len);
    assert_memory_equal(got.data, big.data, big.len);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(entries(), 1); /* no temporary file left */
    buf_free(&big);
    buf_free(&got);
    free(path);
}

static void test_failure_names_the_step_and_leaves_nothing(void **state)
{
    char *missing = xasprintf("%s/no/such/dir/out.cfg", dir);
    char *blocked = xasprintf("%s/taken", dir);
    struct err e;

    assert_int_equal(file_replace(missing, "x", 1, 0644, 0, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "create "));
    assert_non_null(strstr(e.msg, "out.cfg: No such file or directory"));
    /* renaming over a directory fails after the write: the temporary file goes */
    assert_int_equal(mkdir(blocked, 0755), 0);
    assert_true(file_replace(blocked, "x", 1, 0644, 0, &e) < 0);
    assert_non_null(strstr(e.msg, "rename "));
    assert_int_equal(entries(), 1);
    free(missing);
    free(blocked);
}

static void test_mkdir_parents_makes_the_missing_directories(void **state)
{
    char *deep = xasprintf("%s/a/b/c/out.cfg", dir);
    char *file = xasprintf("%s/plain", dir);
    char *under_file = xasprintf("%s/plain/x/out.cfg", dir);
    struct stat st;

    assert_int_equal(file_mkdir_parents(deep, 0755), 0);
    /* the directories, not the file itself */
    char *c = xasprintf("%s/a/b/c", dir);
    assert_int_equal(stat(c, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(stat(deep, &st), -1);
    /* again: all there already */
    assert_int_equal(file_mkdir_parents(deep, 0755), 0);
    assert_int_equal(file_replace(deep, "x", 1, 0644, 0, NULL), 0);
    /* no slash: nothing to make */
    assert_int_equal(file_mkdir_parents("out.cfg", 0755), 0);
    /* a file in the way */
    assert_int_equal(file_replace(file, "x", 1, 0644, 0, NULL), 0);
    assert_int_equal(file_mkdir_parents(under_file, 0755), -ENOTDIR);
    /* the file where the last directory should be: mkdir's EEXIST is no directory either */
    char *beside = xasprintf("%s/plain/out.cfg", dir);
    assert_int_equal(file_mkdir_parents(beside, 0755), -ENOTDIR);
    free(beside);
    free(c);
    free(deep);
    free(file);
    free(under_file);
}

static void test_mkdir_all_makes_the_directory_itself(void **state)
{
    char *deep = xasprintf("%s/a/b/c", dir);
    char *slash = xasprintf("%s/a/b/c/", dir);
    char *file = xasprintf("%s/a/plain", dir);
    char *under_file = xasprintf("%s/a/plain/d", dir);
    char *link = xasprintf("%s/link", dir);
    char *via_link = xasprintf("%s/link/e", dir);
    char want[700];
    struct err e;
    struct stat st;

    assert_int_equal(file_mkdir_all(deep, 0700), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700 & ~umask(umask(0)));
    /* there already, also written with a trailing slash */
    assert_int_equal(file_mkdir_all(deep, 0700), 0);
    assert_int_equal(file_mkdir_all(slash, 0700), 0);
    assert_int_equal(file_mkdir_all("", 0700), 0);
    /* a file at the directory or above it */
    assert_int_equal(file_replace(file, "x", 1, 0644, 0, NULL), 0);
    assert_int_equal(file_mkdir_all(file, 0700), -ENOTDIR);
    assert_int_equal(file_mkdir_all(under_file, 0700), -ENOTDIR);
    /* ... and the message names the file in the way, not the directory asked for */
    assert_int_equal(file_mkdir_all_err(under_file, 0700, &e), -ENOTDIR);
    snprintf(want, sizeof(want), "%s: exists and is not a directory", file);
    assert_string_equal(e.msg, want);
    assert_int_equal(file_mkdir_all_err(file, 0700, &e), -ENOTDIR);
    assert_string_equal(e.msg, want);
    /* a symbolic link to a directory is one */
    assert_int_equal(symlink(deep, link), 0);
    assert_int_equal(file_mkdir_all(link, 0700), 0);
    assert_int_equal(file_mkdir_all(via_link, 0700), 0);
    assert_int_equal(stat(via_link, &st), 0);
    free(deep);
    free(slash);
    free(file);
    free(under_file);
    free(link);
    free(via_link);
}

static void test_read_all_reads_from_the_start(void **state)
{
    char *path = xasprintf("%s/journal", dir);
    struct buf got = BUF_INIT;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

    assert_int_equal(file_write_all(fd, "abc", 3), 0);
    assert_int_equal(file_write_all(fd, "def", 3), 0);
    /* the offset is at the end: read_all still reads it all, and does not move it */
    assert_int_equal(file_read_all(fd, &got), 0);
    assert_string_equal(got.data, "abcdef");
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
    close(fd);
    buf_free(&got);
    free(path);
}

/* A pipe has no offsets: what was written is read until the writer closed its end. */
static void test_read_stream_reads_a_pipe_to_its_end(void **state)
{
    struct buf b = BUF_INIT;
    char chunk[100000];
    int fds[2];

    memset(chunk, 'x', sizeof(chunk));
    buf_append(&b, "kept:", 5);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* more than a pipe holds: the reader must drain it as it goes */
        close(fds[0]);
        _exit(file_write_all(fds[1], chunk, sizeof(chunk)) == 0 ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(file_read_stream(fds[0], &b), 0);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(b.len, 5 + sizeof(chunk));
    assert_memory_equal(b.data, "kept:", 5);
    assert_memory_equal(b.data + 5, chunk, sizeof(chunk));
    assert_int_equal(b.data[b.len], '\0');
    buf_free(&b);
}

static void test_write_pid(void **state)
{
    char *path = xasprintf("%s/agent.pid", dir);
    char *want = xasprintf("%d\n", (int)getpid());
    struct buf got = BUF_INIT;
    struct err e;

    assert_int_equal(file_write_pid(path, &e), 0);
    read_back(path, &got);
    assert_string_equal(got.data, want);
    assert_int_equal(entries(), 1); /* no temporary file left */
    free(path);
    path = xasprintf("%s/missing/agent.pid", dir);
    assert_int_equal(file_write_pid(path, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "pid file "));
    assert_non_null(strstr(e.msg, "missing/agent.pid: No such file or directory"));
    buf_free(&got);
    free(want);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replace_writes_then_replaces_with_the_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failure_names_the_step_and_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parents_makes_the_missing_directories, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_all_makes_the_directory_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_all_reads_from_the_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_stream_reads_a_pipe_to_its_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_pid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
