#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/sd_notify.h"
#include "scratch.h"

/* Binds a datagram socket as systemd's notify socket; `name` starting with '@' is abstract. */
static int bind_notify_socket(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    return fd;
}

static void receive(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
}

static void test_ready_reaches_a_path_socket(void **state)
{
    char path[600], buf[600];

    (void)state;
    snprintf(path, sizeof(path), "%s/notify", scratch_dir);
    int fd = bind_notify_socket(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(sd_notify_ready("serving"), 0);
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "READY=1\nSTATUS=serving");
    assert_int_equal(sd_notify_stopping(), 0);
    receive(fd, buf, sizeof(buf));
    assert_string_equal(buf, "STOPPING=1");
    close(fd);
}

static void test_reloading_carries_a_monotonic_timestamp(void **state)
{
    char name[64], buf[600];

    (void)state;
    snprintf(name, sizeof(name), "@mesh-test-notify-%d", (int)getpid());
    int fd = bind_notify_socket(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(sd_notify_reloading(), 0);
    receive(fd, buf, sizeof(buf));
    unsigned long long usec = 0;
    assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
    assert_true(usec > 0);
    close(fd);
}

static void test_no_socket_is_not_an_error(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sd_notify_ready(NULL), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(sd_notify_ready(NULL), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

static int setup(void **state)
{
    (void)state;
    return scratch_make("sd_notify");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_reaches_a_path_socket),
        cmocka_unit_test(test_reloading_carries_a_monotonic_timestamp),
        cmocka_unit_test(test_no_socket_is_not_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
