/*
 * A scratch directory for one unit-test binary: made under $MESH_TEST_TMPDIR (ctest sets it;
 * /tmp otherwise) and removed with its content at the end. Header-only, static: include it in
 * the test file that needs it.
 */
#ifndef MESH_TESTS_UNIT_SCRATCH_H
#define MESH_TESTS_UNIT_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char scratch_dir[512];

/* Makes <base>/<prefix>.XXXXXX. Returns 0 or -1 (a cmocka group setup's convention). */
static int scratch_make(const char *prefix)
{
    const char *base = getenv("MESH_TEST_TMPDIR");

    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(scratch_dir, sizeof(scratch_dir), "%s/%s.XXXXXX", base, prefix);
    return mkdtemp(scratch_dir) ? 0 : -1;
}

/* Removes the directory and everything in it. Returns 0 or -1. */
__attribute__((unused)) static int scratch_remove(void)
{
    char cmd[600];

    if (!scratch_dir[0])
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch_dir);
    scratch_dir[0] = '\0';
    return system(cmd) == 0 ? 0 : -1;
}

/*
 * Writes text to the file name in the directory and returns its path: a static buffer, one of
 * four in turn, so a path stays valid until four more calls.
 */
__attribute__((unused)) static const char *scratch_write(const char *name, const char *text)
{
    static char paths[4][700];
    static unsigned next;
    char *path = paths[next++ % 4];
    FILE *f;

    snprintf(path, sizeof(paths[0]), "%s/%s", scratch_dir, name);
    f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "scratch_write %s failed\n", path);
        abort();
    }
    return path;
}

#endif
