/* /proc parsing and pidfiles that name one process for good (lib/procfs). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd_limit.h"
#include "sleeper.h"
#include "scratch.h"

#include "lib/procfs.h"

static int setup(void **state)
{
    return scratch_make("test_procfs");
}

static int teardown(void **state)
{
    return scratch_remove();
}

static void test_parse_stat(void **state)
{
    const char *text = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 131 0 0 0 17 5 0 0 "
                       "20 0 1 0 987654 12345678 250 18446744073709551615 1 1 0 0 0 0 0\n";
    struct procfs_stat st;

    assert_int_equal(procfs_parse_stat(text, strlen(text), &st), 0);
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.utime, 17);
    assert_int_equal(st.stime, 5);
    assert_int_equal(st.start_time, 987654);
    assert_int_equal(procfs_parse_stat("12 (x) S 1 2", 12, &st), -EINVAL);
    assert_int_equal(procfs_parse_stat("no paren", 8, &st), -EINVAL);
    assert_int_equal(procfs_parse_stat("", 0, &st), -EINVAL);

    uint64_t pages = 0;
    assert_int_equal(procfs_parse_statm("2710 612 480 1 0 152 0\n", 23, &pages), 0);
    assert_int_equal(pages, 612);
    assert_int_equal(procfs_parse_statm("2710", 4, &pages), -EINVAL);
    assert_int_equal(procfs_parse_statm("x y", 3, &pages), -EINVAL);
}

static void test_pidfile_parse(void **state)
{
    pid_t pid;
    uint64_t start;

    assert_int_equal(procfs_pidfile_parse("123 456\n", 8, &pid, &start), 0);
    assert_int_equal(pid, 123);
    assert_int_equal(start, 456);
    /* A bare PID (another tool's pidfile) parses, with no start time to match. */
    assert_int_equal(procfs_pidfile_parse("77\n", 3, &pid, &start), 0);
    assert_int_equal(pid, 77);
    assert_int_equal(start, 0);
    assert_int_equal(procfs_pidfile_parse("", 0, &pid, &start), -EINVAL);
    assert_int_equal(procfs_pidfile_parse("0 5\n", 4, &pid, &start), -EINVAL);
    assert_int_equal(procfs_pidfile_parse("12 x\n", 5, &pid, &start), -EINVAL);
    assert_int_equal(procfs_pidfile_parse("12 5 junk", 9, &pid, &start), -EINVAL);
    assert_int_equal(procfs_pidfile_parse("99999999999 1", 13, &pid, &start), -EINVAL);
}

/* A pidfile names its process while it runs, and nothing once it is gone or when the start
 * time does not match (the PID was reused). */
static void test_pidfile_live(void **state)
{
    char path[600], text[64];
    struct err e;
    pid_t child = sleeper();

    assert_true(child > 0);
    snprintf(path, sizeof(path), "%s/x.pid", scratch_dir);
    uint64_t start = 0;
    assert_int_equal(procfs_pidfile_write(path, child, &e), 0);
    assert_int_equal(procfs_pidfile_live(path, &start), child);
    assert_int_equal(start, procfs_start_time(child));
    assert_true(procfs_start_time(child) > 0);
    assert_true(procfs_is(child, procfs_start_time(child)));
    assert_false(procfs_is(child, 0));

    /* Same PID, another start time: a stranger that got the number. */
    snprintf(text, sizeof(text), "%d %llu\n", (int)child,
             (unsigned long long)procfs_start_time(child) + 1);
    scratch_write("x.pid", text);
    assert_int_equal(procfs_pidfile_live(path, NULL), 0);
    /* A bare PID is never believed. */
    snprintf(text, sizeof(text), "%d\n", (int)child);
    scratch_write("x.pid", text);
    assert_int_equal(procfs_pidfile_live(path, NULL), 0);

    assert_int_equal(procfs_pidfile_write(path, child, &e), 0);
    kill(child, SIGKILL);
    /* A zombie has exited: it is not running. */
    for (int k = 0; k < 1000 && procfs_start_time(child) != 0; k++)
        usleep(1000);
    assert_int_equal(procfs_start_time(child), 0);
    assert_int_equal(procfs_pidfile_live(path, NULL), 0);
    /* Its pidfile can still be written: the start time names the dead child. */
    assert_int_equal(procfs_pidfile_write(path, child, &e), 0);
    assert_int_equal(procfs_pidfile_live(path, NULL), 0);
    waitpid(child, NULL, 0);
    assert_int_equal(procfs_pidfile_write(path, child, &e), -ESRCH);
    assert_non_null(strstr(e.msg, "not running"));

    snprintf(path, sizeof(path), "%s/none.pid", scratch_dir);
    assert_int_equal(procfs_pidfile_live(path, NULL), 0);
}

/* Out of descriptors, a pidfile cannot be read: procfs_pidfile_check says so (-EMFILE) instead of
 * calling a live process gone, which would have its pidfile removed. */
static void test_pidfile_check_tells_gone_from_unreadable(void **state)
{
    char path[600], none[600];
    struct rlimit saved;
    struct err e;
    uint64_t start = 0;
    pid_t pid = 0;
    pid_t child = sleeper();

    assert_true(child > 0);
    snprintf(path, sizeof(path), "%s/check.pid", scratch_dir);
    snprintf(none, sizeof(none), "%s/none.pid", scratch_dir);
    assert_int_equal(procfs_pidfile_write(path, child, &e), 0);
    assert_int_equal(procfs_pidfile_check(path, &pid, &start), 1);
    assert_int_equal(pid, child);
    assert_int_equal(start, procfs_start_time(child));
    assert_int_equal(procfs_pidfile_check(none, &pid, NULL), 0);

    assert_int_equal(fd_limit_spare(0, &saved), 0);
    int rc = procfs_pidfile_check(path, &pid, NULL);
    pid_t live = procfs_pidfile_live(path, NULL);
    assert_int_equal(fd_limit_restore(&saved), 0);
    assert_int_equal(rc, -EMFILE);
    assert_int_equal(live, 0); /* the old answer: cannot tell, so not live */

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_int_equal(procfs_pidfile_check(path, &pid, NULL), 0);
}

static void test_net_line(void **state)
{
    int port, st;
    uint64_t inode;

    assert_int_equal(procfs_parse_net_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
                                           "00:00000000 00000000     0        0 123456 1 "
                                           "0000000000000000 100 0 0 10 0\n",
                                           &port, &st, &inode),
                     0);
    assert_int_equal(port, 8080);
    assert_int_equal(st, 0x0A);
    assert_int_equal(inode, 123456);
    assert_int_equal(procfs_parse_net_line("   1: 00000000000000000000000001000000:2198 "
                                           "00000000000000000000000000000000:0000 07 "
                                           "00000000:00000000 00:00000000 00000000  1000 0 99 2 "
                                           "0000000000000000 0\n",
                                           &port, &st, &inode),
                     0);
    assert_int_equal(port, 8600);
    assert_int_equal(st, 0x07);
    assert_int_equal(inode, 99);
    assert_int_equal(procfs_parse_net_line("  sl  local_address rem_address   st tx_queue rx_queue "
                                           "tr tm->when retrnsmt   uid  timeout inode\n",
                                           &port, &st, &inode),
                     -EINVAL);
    assert_int_equal(procfs_parse_net_line("", &port, &st, &inode), -EINVAL);
}

/* A listener of this very process is named, with its PID; a free port has no owner. */
static void test_port_owner(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    char name[256];
    pid_t pid = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    assert_true(procfs_port_owner(ntohs(sin.sin_port), false, &pid, name, sizeof(name)));
    assert_int_equal(pid, getpid());
    assert_non_null(strstr(name, "test_procfs"));
    /* The same port number over UDP is someone else's business, and free here. */
    assert_false(procfs_port_owner(ntohs(sin.sin_port), true, &pid, name, sizeof(name)));
    assert_int_equal(bind(udp, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_true(procfs_port_owner(ntohs(sin.sin_port), true, &pid, name, sizeof(name)));
    close(fd);
    close(udp);
    assert_false(procfs_port_owner(ntohs(sin.sin_port), false, &pid, name, sizeof(name)));
}

/* Two processes listen on one port (SO_REUSEPORT): each is seen as holding it, a third is not. */
static void test_pid_listens_beside_another(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    int one = 1, ready[2], hold[2];
    char c;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    int port = ntohs(sin.sin_port);
    assert_false(procfs_pid_listens(getpid(), port)); /* bound, not listening yet */
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) { /* a second listener of the port, held until the parent closes hold */
        int cfd = socket(AF_INET, SOCK_STREAM, 0);
        close(fd);
        close(hold[1]);
        if (setsockopt(cfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            bind(cfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(cfd, 1) != 0)
            _exit(1);
        if (write(ready[1], "r", 1) != 1 || read(hold[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_true(procfs_pid_listens(child, port));
    assert_true(procfs_pid_listens(getpid(), port));
    assert_false(procfs_pid_listens(child, port == 65535 ? 1 : port + 1));
    assert_false(procfs_pid_listens(getppid(), port));
    close(hold[1]);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ready[0]);
    close(fd);
    assert_false(procfs_pid_listens(getpid(), port));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_pidfile_parse),
        cmocka_unit_test(test_pidfile_live),
        cmocka_unit_test(test_net_line),
        cmocka_unit_test(test_port_owner),
        cmocka_unit_test(test_pid_listens_beside_another),
        cmocka_unit_test(test_pidfile_check_tells_gone_from_unreadable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
