#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/net.h"

static void check_addr(const char *host, int port, int family, const char *want_name)
{
    struct sockaddr_storage ss;
    char name[80];

    assert_int_equal(net_parse_addr(host, port, &ss), 0);
    assert_int_equal(ss.ss_family, family);
    net_addr_name((struct sockaddr *)&ss, name, sizeof(name));
    assert_string_equal(name, want_name);
}

static void test_parse_addr(void **state)
{
    check_addr("127.0.0.1", 8500, AF_INET, "127.0.0.1:8500");
    check_addr("0.0.0.0", 0, AF_INET, "0.0.0.0:0");
    check_addr("10.1.2.3", 65535, AF_INET, "10.1.2.3:65535");
    check_addr("::1", 80, AF_INET6, "[::1]:80");
    check_addr("[::1]", 8080, AF_INET6, "[::1]:8080");
    check_addr("[2001:db8::5]", 443, AF_INET6, "[2001:db8::5]:443");
    check_addr("::", 1, AF_INET6, "[::]:1");
    check_addr("::ffff:1.2.3.4", 9, AF_INET6, "[::ffff:1.2.3.4]:9");

    struct sockaddr_storage ss;
    assert_int_equal(net_parse_addr("127.0.0.1", 8500, &ss), 0);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    assert_int_equal(ntohs(in->sin_port), 8500);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);

    static const char *const bad[] = {
        "",     "localhost", "1.2.3",  "1.2.3.4.5", "256.1.1.1", "1.2.3.4:80", "[1.2.3.4", "::1]",
        "[::1", "[]",        "[:::1]", "::g",       "1.2.3.4 ",  " 1.2.3.4",   "[[::1]]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (net_parse_addr(bad[i], 80, &ss) == 0)
            print_error("accepted: \"%s\"\n", bad[i]);
        assert_int_equal(net_parse_addr(bad[i], 80, &ss), UV_EINVAL);
    }
    /* A bracketed string too long for any address is rejected, not overflowed. */
    char big[200];
    memset(big, '1', sizeof(big) - 1);
    big[0] = '[';
    big[sizeof(big) - 2] = ']';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(net_parse_addr(big, 80, &ss), UV_EINVAL);
}

static void test_addr_name(void **state)
{
    struct sockaddr_storage ss = {0};
    char name[80];

    ss.ss_family = AF_UNIX;
    net_addr_name((struct sockaddr *)&ss, name, sizeof(name));
    assert_string_equal(name, "?");
    /* Truncation keeps a terminated string. */
    net_parse_addr("127.0.0.1", 8500, &ss);
    net_addr_name((struct sockaddr *)&ss, name, 6);
    assert_string_equal(name, "127.0");
}

static void check_split(const char *s, int def, const char *want_host, int want_port)
{
    char host[64] = "junk";
    int port = -7;

    assert_int_equal(net_split_host_port(s, host, sizeof(host), &port, def), 0);
    assert_string_equal(host, want_host);
    assert_int_equal(port, want_port);
}

static void test_split_host_port(void **state)
{
    check_split("127.0.0.1:8500", 1, "127.0.0.1", 8500);
    check_split("localhost:80", 1, "localhost", 80);
    check_split("localhost", 8500, "localhost", 8500);
    check_split("[::1]:8080", 1, "::1", 8080);
    check_split("[::1]", 443, "::1", 443);
    check_split("[fe80::1%eth0]:1", 2, "fe80::1%eth0", 1);
    check_split(":8500", 1, "", 8500); /* Go's listen form: every address */
    check_split("h:65535", 1, "h", 65535);
    check_split("h:1", 9, "h", 1);

    static const char *const bad[] = {"h:",
                                      "h:0",
                                      "h:65536",
                                      "h:-1",
                                      "h:80x",
                                      "h:x80",
                                      "::1",
                                      "a:b:80",
                                      "[::1",
                                      "[::1]x",
                                      "[::1]:",
                                      "[::1]:0",
                                      "h:99999999999999999999",
                                      "h: 80",
                                      "h:+80",
                                      "h:\t80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[64];
        int port = -7;
        if (net_split_host_port(bad[i], host, sizeof(host), &port, 1) == 0)
            print_error("accepted: \"%s\"\n", bad[i]);
        assert_int_equal(net_split_host_port(bad[i], host, sizeof(host), &port, 1), -EINVAL);
    }

    /* Host longer than the caller's buffer. */
    char small[4];
    int port;
    assert_int_equal(net_split_host_port("abcd:80", small, sizeof(small), &port, 1), -EINVAL);
    assert_int_equal(net_split_host_port("abc:80", small, sizeof(small), &port, 1), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(net_split_host_port("[::12]:80", small, sizeof(small), &port, 1), -EINVAL);
    assert_int_equal(net_split_host_port("[::1]:80", small, sizeof(small), &port, 1), 0);
    assert_string_equal(small, "::1");
}

/* The backlog is net.core.somaxconn, what the kernel grants at most. */
static void test_listen_backlog(void **state)
{
    (void)state;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int want = SOMAXCONN;
    if (f) {
        assert_int_equal(fscanf(f, "%d", &want), 1);
        fclose(f);
    }
    assert_int_equal(net_listen_backlog(), want);
    assert_int_equal(net_listen_backlog(), want); /* cached */
}

/* A loopback address with the port of fd (0: any port). */
static struct sockaddr_storage loopback_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(net_parse_addr("127.0.0.1", 0, &ss), 0);
    if (fd >= 0)
        assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss;
}

static void test_listen_shared(void **state)
{
    struct err e = {{0}};
    struct sockaddr_storage any = loopback_of(-1);
    int a = net_listen_shared(&any, &e);
    assert_true(a >= 0);
    struct sockaddr_storage same = loopback_of(a);
    int b = net_listen_shared(&same, &e);
    assert_true(b >= 0); /* SO_REUSEPORT: a second listener on the same port */
    assert_false(net_listen_has_peer(-1));
    assert_true(net_listen_has_peer(a));
    assert_true(net_listen_has_peer(b));
    close(b);
    assert_false(net_listen_has_peer(a));

    /* A socket bound without SO_REUSEPORT keeps the port to itself. */
    int plain = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage free_port = loopback_of(-1);
    socklen_t len = sizeof(struct sockaddr_in);
    assert_int_equal(bind(plain, (struct sockaddr *)&free_port, len), 0);
    assert_int_equal(listen(plain, 1), 0);
    struct sockaddr_storage taken = loopback_of(plain);
    char want[64];
    net_addr_name((struct sockaddr *)&taken, want, sizeof(want));
    assert_int_equal(net_listen_shared(&taken, &e), -EADDRINUSE);
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, "address already in use"));
    close(plain);
    close(a);
}

/* Connects to ss and returns the socket (the handshake completes in the kernel's queue). */
static int connect_to(const struct sockaddr_storage *ss)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)ss, sizeof(struct sockaddr_in)), 0);
    return fd;
}

/* Connections waiting in fd's accept queue, taken and closed. */
static int accept_all(int fd)
{
    int n = 0, c;

    while ((c = accept(fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    assert_int_equal(errno, EAGAIN);
    return n;
}

static void test_listen_hand_over(void **state)
{
    enum { CONNS = 32 };
    struct err e = {{0}};
    struct sockaddr_storage any = loopback_of(-1);
    int old = net_listen_shared(&any, &e);
    assert_true(old >= 0);
    struct sockaddr_storage port = loopback_of(old);
    int clients[CONNS];

    /* Alone in its group, a listener that hands over keeps every connection. */
    assert_int_equal(net_listen_hand_over(old), 0);
    for (int i = 0; i < CONNS; i++)
        clients[i] = connect_to(&port);
    assert_int_equal(accept_all(old), CONNS);
    for (int i = 0; i < CONNS; i++)
        close(clients[i]);

    /* With a successor, every new connection goes to it (the kernel's hash would have given
     * the old listener about half of them: the chance that it gives none is 2^-32). */
    int successor = net_listen_shared(&port, &e);
    assert_true(successor >= 0);
    for (int i = 0; i < CONNS; i++)
        clients[i] = connect_to(&port);
    assert_int_equal(accept_all(old), 0);
    assert_int_equal(accept_all(successor), CONNS);
    for (int i = 0; i < CONNS; i++)
        close(clients[i]);

    /* Once the old listener is gone, the successor alone takes them. */
    close(old);
    for (int i = 0; i < CONNS; i++)
        clients[i] = connect_to(&port);
    assert_int_equal(accept_all(successor), CONNS);
    for (int i = 0; i < CONNS; i++)
        close(clients[i]);
    close(successor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),      cmocka_unit_test(test_addr_name),
        cmocka_unit_test(test_split_host_port), cmocka_unit_test(test_listen_backlog),
        cmocka_unit_test(test_listen_shared),   cmocka_unit_test(test_listen_hand_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
