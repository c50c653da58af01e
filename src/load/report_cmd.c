/*
 * `mesh load report REPORT.json [-o REPORT.html]`: the HTML page for a report written by
 * `mesh load run --output` or by `artillery run --output` (whose own `artillery report` is gone
 * since 2.0.22). Flags may come before or after the file, as with artillery's commands.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/alloc.h"
#include "lib/flags.h"
#include "load/report_html.h"

#define REPORT_USAGE                                                                               \
    "mesh load report [options] REPORT.json\n\n"                                                   \
    "  Writes one self-contained HTML page (summary, charts over time, spread per instance,\n"     \
    "  phases and events) from a report of `mesh load run --output` or `artillery run\n"           \
    "  --output`. Default output: REPORT.html next to the input."

/* "x.json" -> "x.html"; anything else gets ".html" appended. Heap string. */
static char *report_default_output(const char *input)
{
    size_t n = strlen(input);

    if (n > 5 && strcmp(input + n - 5, ".json") == 0)
        return xasprintf("%.*s.html", (int)(n - 5), input);
    return xasprintf("%s.html", input);
}

/*
 * A report of a long run is large (a timeline entry per second, Artillery's histograms per
 * period): past the 16 MiB that configuration files get, up to this.
 */
#define REPORT_MAX_BYTES (512u << 20)

/* Reads a report: "path: strerror", or "path:line: message" for bad JSON. Caller owns *out. */
static int report_load(const char *path, json_t **out, struct err *e)
{
    struct stat st;
    json_error_t je;

    if (stat(path, &st) < 0)
        return err_set(e, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size > REPORT_MAX_BYTES)
        return err_set(e, "%s: not a regular file of at most %u MiB", path, REPORT_MAX_BYTES >> 20);
    *out = json_load_file(path, 0, &je);
    if (!*out)
        return err_set(e, "%s:%d: %s", path, je.line > 0 ? je.line : 1, je.text);
    return 0;
}

/* Flags, then at most one positional, then flags again. Returns 0, 1 (help) or -1 (error). */
static int report_parse(struct flag *flags, size_t n, int argc, char **argv, const char **input)
{
    struct err e = {{0}};
    int i = 1, first, rc;

    while (i < argc) {
        rc = flags_parse(flags, n, argc - i, argv + i, &first, &e);
        if (rc == FLAGS_HELP)
            return 1;
        if (rc < 0) {
            fprintf(stderr, "%s\n", e.msg);
            return -1;
        }
        i += first;
        if (i >= argc)
            break;
        if (*input) {
            fprintf(stderr, "mesh load report: one report file expected, got \"%s\" and \"%s\"\n",
                    *input, argv[i]);
            return -1;
        }
        *input = argv[i++];
    }
    if (!*input) {
        fprintf(stderr, "mesh load report: missing REPORT.json\n");
        return -1;
    }
    return 0;
}

int load_report_main(int argc, char **argv)
{
    char *output = NULL;
    const char *input = NULL;
    struct flag flags[] = {
        {.name = "o", .type = FLAG_STRING, .ptr = &output, .help = "Write the page to this file."},
        {.name = "output", .type = FLAG_STRING, .ptr = &output, .help = "Same as -o."},
    };
    json_t *report = NULL;
    struct err e = {{0}};
    int rc = report_parse(flags, ARRAY_LEN(flags), argc, argv, &input);

    if (rc != 0) {
        flags_usage(rc > 0 ? stdout : stderr, REPORT_USAGE, flags, ARRAY_LEN(flags));
        rc = rc > 0 ? 0 : 1;
        goto out;
    }
    if (!output)
        output = report_default_output(input);
    if (report_load(input, &report, &e) < 0) {
        fprintf(stderr, "mesh load report: %s\n", e.msg);
        rc = 1;
        goto out;
    }
    rc = load_report_html_write(report, output, &e);
    if (rc < 0) {
        /* -EINVAL: the input is not a report (I/O errors already name the output file). */
        if (rc == -EINVAL)
            err_prefix(&e, "%s", input);
        fprintf(stderr, "mesh load report: %s\n", e.msg);
        rc = 1;
        goto out;
    }
    printf("Report written to %s\n", output);
out:
    json_decref(report);
    free(output);
    return rc;
}
