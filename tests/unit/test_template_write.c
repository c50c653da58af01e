/*
 * writeToFile: a render records each write (path, owner, mode, flags, content) and prints
 * nothing; its arguments fail as consul-template's do; and a recorded write is made as
 * consul-template makes it: the directory created, the file truncated or appended to, its mode
 * set exactly, a symbolic link as the file or as its directory refused.
 */
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
#include "template/tmpl.h"
#include "tmpl_expect.h"

/* Renders src (which must not fail) and returns what it recorded; *out gets the output. */
static struct tmpl_used render(const char *src, struct buf *out)
{
    struct smap store = SMAP_INIT;
    struct tmpl_used used;
    struct tmpl *t;
    struct err e;

    if (tmpl_parse("in.ctmpl", src, strlen(src), &t, &e) < 0)
        fail_msg("%s", e.msg);
    if (tmpl_render(t, &store, out, &used, &e) < 0)
        fail_msg("%s", e.msg);
    tmpl_free(t);
    return used;
}

static void test_render_records(void **state)
{
    struct buf out = BUF_INIT;
    struct tmpl_used u =
        render("a{{ \"x\" | writeToFile \"/d/f\" \"root\" \"wheel\" \"4750\" "
               "\"append,newline\" }}b{{ writeToFile \"g\" \"\" \"\" \"644\" \"y\" }}",
               &out);

    assert_string_equal(out.data, "ab");
    assert_int_equal(u.nwrites, 2);
    assert_string_equal(u.writes[0].path, "/d/f");
    assert_string_equal(u.writes[0].user, "root");
    assert_string_equal(u.writes[0].group, "wheel");
    assert_int_equal(u.writes[0].mode, 0750); /* Go's FileMode drops the setuid bit's 04000 */
    assert_true(u.writes[0].append);
    assert_int_equal(u.writes[0].len, 2);
    assert_memory_equal(u.writes[0].content, "x\n", 2);
    assert_string_equal(u.writes[0].where, "in.ctmpl:1:11");
    assert_false(u.writes[1].append);
    assert_int_equal(u.writes[1].mode, 0644);
    assert_string_equal(u.writes[1].content, "y");
    tmpl_used_free(&u);
    buf_free(&out);
}

static void test_argument_errors(void **state)
{
    expect("{{ writeToFile \"p\" \"\" \"\" \"0x1\" \"c\" }}",
           "!in.ctmpl:1:4: error calling writeToFile: strconv.ParseUint: parsing \"0x1\": invalid "
           "syntax");
    expect("{{ writeToFile \"p\" \"\" \"\" \"8\" \"c\" }}",
           "!in.ctmpl:1:4: error calling writeToFile: strconv.ParseUint: parsing \"8\": invalid "
           "syntax");
    expect("{{ writeToFile \"p\" \"\" \"\" \"77777777777\" \"c\" }}",
           "!in.ctmpl:1:4: error calling writeToFile: strconv.ParseUint: parsing \"77777777777\": "
           "value out of range");
    expect("{{ writeToFile \"p\" \"\" \"\" \"0644\" }}",
           "!in.ctmpl:1:4: error calling writeToFile: runtime error: index out of range [-1]");
    expect("{{ writeToFile \"p\" \"\" \"\" }}",
           "!in.ctmpl:1:4: wrong number of args for writeToFile: want at least 4 got 3");
    expect("{{ writeToFile \"p\" \"\" \"\" \"0644\" 1 }}",
           "!in.ctmpl:1:4: wrong type for value; expected string; got int");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[256];
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    return xstrndup(buf, n);
}

static void apply_ok(const char *path, const char *content, unsigned mode, bool append)
{
    struct tmpl_file_write w = {
        (char *)path, "", "", mode, append, (char *)content, strlen(content), "in.ctmpl:1:1"};
    struct err e;

    if (tmpl_file_write_apply(&w, &e) < 0)
        fail_msg("%s", e.msg);
}

static void test_apply(void **state)
{
    char dir[] = "/tmp/mesh-write-XXXXXX";
    struct err e;
    struct stat st;

    assert_non_null(mkdtemp(dir));
    char *f = xasprintf("%s/sub/deeper/f", dir);
    /* the directories are made; the mode is set exactly, whatever the umask */
    mode_t old = umask(077);
    apply_ok(f, "one", 0644, false);
    umask(old);
    char *got = slurp(f);
    assert_string_equal(got, "one");
    free(got);
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    /* truncated, or appended to */
    apply_ok(f, "2", 0600, false);
    apply_ok(f, "3", 0600, true);
    got = slurp(f);
    assert_string_equal(got, "23");
    free(got);
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* a symbolic link as the file, or as its directory, is refused and its target untouched */
    char *link = xasprintf("%s/link", dir), *dirlink = xasprintf("%s/dirlink", dir);
    char *through = xasprintf("%s/dirlink/f", dir);
    assert_int_equal(symlink(f, link), 0);
    struct tmpl_file_write w = {link, "", "", 0644, false, "x", 1, "in.ctmpl:2:3"};
    assert_true(tmpl_file_write_apply(&w, &e) < 0);
    char *want = xasprintf("in.ctmpl:2:3: error calling writeToFile: writeToFile: refusing to "
                           "write to symlink \"%s\"",
                           link);
    assert_string_equal(e.msg, want);
    free(want);
    assert_int_equal(symlink("sub/deeper", dirlink), 0);
    w.path = through;
    assert_true(tmpl_file_write_apply(&w, &e) < 0);
    want = xasprintf("in.ctmpl:2:3: error calling writeToFile: writeToFile: refusing to write "
                     "through symlinked directory in path \"%s\"",
                     through);
    assert_string_equal(e.msg, want);
    free(want);
    got = slurp(f);
    assert_string_equal(got, "23");
    free(got);

    /* an owner that is neither a name nor a number */
    w.path = f;
    w.user = "no-such-user-mesh";
    assert_true(tmpl_file_write_apply(&w, &e) < 0);
    assert_string_equal(e.msg, "in.ctmpl:2:3: error calling writeToFile: user: unknown user "
                               "no-such-user-mesh");
    /* one's own ids, by number, are allowed */
    char uid[24], gid[24];
    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    snprintf(gid, sizeof(gid), "%u", (unsigned)getgid());
    w.user = uid;
    w.group = gid;
    if (tmpl_file_write_apply(&w, &e) < 0)
        fail_msg("%s", e.msg);

    unlink(through);
    unlink(dirlink);
    unlink(link);
    unlink(f);
    char *d = xasprintf("%s/sub/deeper", dir);
    rmdir(d);
    free(d);
    d = xasprintf("%s/sub", dir);
    rmdir(d);
    free(d);
    rmdir(dir);
    free(f);
    free(link);
    free(dirlink);
    free(through);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_records),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
