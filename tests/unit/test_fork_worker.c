/*
 * lib/fork_worker: the child works on the parent's memory as it stood at the fork, holds only
 * the descriptor it was given, and says through its exit status whether the work succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/fork_worker.h"

struct job {
    char text[32]; /* what the child reports: the parent's memory at the fork */
    int other_fd;  /* a descriptor of the parent the child must not hold */
};

/* Writes the job's text and whether other_fd is open in the child. */
static int report(int fd, void *arg)
{
    const struct job *job = arg;
    char line[64];
    int n = snprintf(line, sizeof(line), "%s %s", job->text,
                     fcntl(job->other_fd, F_GETFD) < 0 ? "closed" : "open");

    return file_write_all(fd, line, (size_t)n);
}

static int fail_work(int fd, void *arg)
{
    return -EIO;
}

/* Waits for pid; returns its exit status, or -1 when it did not exit. */
static int exit_status(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_child_sees_the_fork_time_state_and_only_its_descriptor(void **state)
{
    struct job job = {.text = "before"};
    struct buf out = BUF_INIT;
    int fds[2], other[2];

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(other), 0);
    job.other_fd = other[0] > fds[1] ? other[0] : other[1];
    pid_t pid = fork_worker(fds[1], report, &job);
    assert_true(pid > 0);
    snprintf(job.text, sizeof(job.text), "after"); /* the child's copy stays as it was */
    close(fds[1]);
    assert_int_equal(file_read_stream(fds[0], &out), 0);
    assert_int_equal(exit_status(pid), 0);
    assert_string_equal(out.data, "before closed");
    close(fds[0]);
    close(other[0]);
    close(other[1]);
    buf_free(&out);
}

static void test_failed_work_exits_non_zero(void **state)
{
    pid_t pid = fork_worker(-1, fail_work, NULL);

    assert_true(pid > 0);
    assert_int_equal(exit_status(pid), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_sees_the_fork_time_state_and_only_its_descriptor),
        cmocka_unit_test(test_failed_work_exits_non_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
