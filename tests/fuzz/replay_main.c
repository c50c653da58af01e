/*
 * Corpus replay driver: runs LLVMFuzzerTestOneInput on every regular file of a directory, in
 * name order, so each build checks the committed corpus without libFuzzer. Linked only into
 * the replay_<target> binaries; the libFuzzer build supplies its own main.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the whole file at path into a fresh buffer; -errno on failure. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!f)
        return -1;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            p = xrealloc(p, cap);
        }
        size_t got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    *data = p;
    *size = n;
    return rc;
}

int main(int argc, char **argv)
{
    char **names = NULL;
    size_t count = 0, cap = 0, replayed = 0;
    struct dirent *de;
    DIR *dir;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[count++] = xstrdup(de->d_name);
    }
    closedir(dir);
    if (count)
        qsort(names, count, sizeof(*names), name_cmp);

    for (size_t i = 0; i < count; i++) {
        size_t plen = strlen(argv[1]) + strlen(names[i]) + 2;
        char *path = xmalloc(plen);
        struct stat st;
        uint8_t *data = NULL;
        size_t size = 0;

        snprintf(path, plen, "%s/%s", argv[1], names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (read_file(path, &data, &size) != 0) {
                fprintf(stderr, "%s: read failed\n", path);
                free(data);
                free(path);
                goto out;
            }
            LLVMFuzzerTestOneInput(data, size);
            replayed++;
        }
        free(data);
        free(path);
    }
    printf("replayed %zu inputs\n", replayed);
    if (replayed == 0)
        fprintf(stderr, "%s: no inputs\n", argv[1]);
    else
        rc = 0;
out:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
}
