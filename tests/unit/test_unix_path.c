#include <setjmp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/unix_path.h"

/* A socket is bound at path and a client connects to it, both through unix_path. */
static void bind_and_connect(const char *path)
{
    struct unix_path addr;
    struct err e;
    int srv = socket(AF_UNIX, SOCK_STREAM, 0), cli = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_int_equal(unix_path_open(&addr, path, &e), 0);
    assert_true(strlen(addr.sa.sun_path) < sizeof(addr.sa.sun_path));
    assert_int_equal(bind(srv, (struct sockaddr *)&addr.sa, sizeof(addr.sa)), 0);
    assert_int_equal(listen(srv, 1), 0);
    unix_path_close(&addr);
    assert_int_equal(addr.dirfd, -1);

    struct stat st;
    assert_int_equal(stat(path, &st), 0); /* the socket is where the path says */
    assert_true(S_ISSOCK(st.st_mode));

    assert_int_equal(unix_path_open(&addr, path, &e), 0);
    assert_int_equal(connect(cli, (struct sockaddr *)&addr.sa, sizeof(addr.sa)), 0);
    unix_path_close(&addr);
    close(cli);
    close(srv);
    unlink(path);
}

static void test_short_path_is_used_as_is(void **state)
{
    char dir[] = "/tmp/upath.XXXXXX", path[64];
    struct unix_path addr;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    assert_int_equal(unix_path_open(&addr, path, NULL), 0);
    assert_string_equal(addr.sa.sun_path, path);
    assert_int_equal(addr.dirfd, -1);
    bind_and_connect(path);
    rmdir(dir);
}

static void test_long_path_goes_through_its_directory(void **state)
{
    char dir[] = "/tmp/upath.XXXXXX", deep[512], path[600];

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(deep, sizeof(deep), "%s/%0150d", dir, 0); /* one 150-character directory name */
    assert_int_equal(mkdir(deep, 0700), 0);
    snprintf(path, sizeof(path), "%s/pm.sock", deep);
    assert_true(strlen(path) > 108);
    bind_and_connect(path);
    rmdir(deep);
    rmdir(dir);
}

static void test_missing_directory_is_an_error(void **state)
{
    char path[300];
    struct unix_path addr;
    struct err e = {{0}};

    (void)state;
    snprintf(path, sizeof(path), "/nonexistent/%0150d/pm.sock", 0);
    assert_true(unix_path_open(&addr, path, &e) < 0);
    assert_non_null(strstr(e.msg, "/nonexistent/"));
    assert_int_equal(addr.dirfd, -1);
}

static void test_name_too_long_for_any_address(void **state)
{
    char path[300];
    struct unix_path addr;
    struct err e = {{0}};

    (void)state;
    snprintf(path, sizeof(path), "/tmp/%0150d", 0); /* the socket's own name is the long part */
    assert_int_equal(unix_path_open(&addr, path, &e), -ENAMETOOLONG);
    assert_non_null(strstr(e.msg, "too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_path_is_used_as_is),
        cmocka_unit_test(test_long_path_goes_through_its_directory),
        cmocka_unit_test(test_missing_directory_is_an_error),
        cmocka_unit_test(test_name_too_long_for_any_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
