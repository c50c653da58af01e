/*
 * Fuzz target for users' regular expressions (lib/re): the input is a pattern, as a ?filter=
 * "matches", an event filter or a template sends it. It must compile within the bounds or be
 * refused with a reason, never take the process's memory or time; and the one-pass search
 * used for yes/no matches (REG_NOSUB) must agree with glibc's own search on every subject.
 */
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/re.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const subjects[] = {
    "", "web-1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "node1\nnode2", "a b\tc", "v12.3",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pattern = xstrndup((const char *)data, size);
    regex_t yes_no, groups;
    struct err e = {{0}};

    int rc = re_compile(&yes_no, pattern, REG_NOSUB, &e);
    if (rc < 0 && (rc != -EINVAL || !e.msg[0]))
        abort(); /* a refusal always says why */
    if (rc == 0) {
        if (re_compile(&groups, pattern, 0, &e) != 0)
            abort(); /* the same pattern, with groups kept */
        for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
            regmatch_t m[1];
            bool a = regexec(&yes_no, subjects[i], 0, NULL, 0) == 0;
            bool b = regexec(&groups, subjects[i], 1, m, 0) == 0;
            if (a != b)
                abort();
        }
        regfree(&groups);
        regfree(&yes_no);
    }
    free(pattern);
    return 0;
}
