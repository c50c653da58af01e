/*
 * Fuzz target for mesh load's script reader: YAML (libyaml into jansson, with the line table)
 * and the checks over it, with and without an environment. Whatever the input, it returns 0 or
 * -EINVAL with at least one "t.yml:LINE: " message, and frees everything (ASan checks leaks).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "load/script.h"
#include "fuzz_check.h"

static void one(const char *text, size_t len, const char *env)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;
    struct err e = {""};
    int rc = load_script_parse("t.yml", text, len, env, NULL, &s, &msgs, &e);

    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        CHECK(s.target && s.n_phases > 0 && s.n_scenarios > 0);
        load_script_free(&s);
    } else {
        CHECK(msgs.len > 0 && strncmp(msgs.data, "t.yml:", 6) == 0);
        CHECK(strncmp(e.msg, "t.yml:", 6) == 0);
    }
    buf_free(&msgs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one((const char *)data, size, NULL);
    one((const char *)data, size, "quick");
    return 0;
}
