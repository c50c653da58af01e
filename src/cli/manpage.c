/*
 * mesh man DIR: a man page for mesh and for every command and subcommand, written from the
 * commands' own -help output. -help is printed from the same flag tables the commands parse
 * with, so the pages cannot drift from the flags; this file only translates layout to roff.
 *
 * The help layout it reads (lib/flags.c's flags_usage, and the command lists of `mesh help`,
 * `mesh pm`, `mesh kv` ...):
 *
 *     Usage: mesh pm start NAME [flags] -- CMD ARGS...      synopsis (and "       mesh ..." lines)
 *                                                           description paragraphs, any indent
 *       -i <int>                                            an option: "  -name" [" <type>"]
 *             Number of instances. (default 1)              its help, indented 8
 *     Commands:                                             (or Subcommands:) a command list:
 *         start NAME [flags] -- CMD   start N instances     "    FORM  summary" (2+ spaces)
 *
 * A command list names the pages below: the leading lower-case words of FORM are the command
 * path ("ca create"; "stop|restart|delete" is three commands). Each page is found by running
 * this binary with "PATH -help", so a command whose -help did anything but print help would be
 * run here: every command treats -help first.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/file.h"

#define MAN_MAX_DEPTH      3             /* mesh tls ca create */
#define MAN_MAX_PAGES      200           /* a loop in the command lists cannot run away */
#define MAN_HELP_MAX       (1024 * 1024) /* bytes of one -help output */
#define MAN_HELP_TIMEOUT_S 10            /* a -help that waits for something is a bug: stop it */

struct man_words {
    const char *w[MAN_MAX_DEPTH];
    int n;
};

struct man_run {
    const char *dir;
    const char *exe;            /* the program run for -help: this binary, or another (webapp) */
    const char *prog;           /* its name in pages: "mesh", "webapp" */
    char *pages[MAN_MAX_PAGES]; /* names written so far ("mesh-pm-start") */
    int npages;
    struct err e;
};

/* ---- reading -help ---------------------------------------------------------------------- */

/* Runs the program with words... -help (mesh without words: `mesh help`), output into out. */
static int run_help(const struct man_run *r, const struct man_words *words, struct buf *out,
                    struct err *e)
{
    const char *argv[MAN_MAX_DEPTH + 3];
    int argc = 0;
    int fds[2];

    bool mesh = strcmp(r->prog, "mesh") == 0;
    argv[argc++] = r->prog;
    for (int i = 0; i < words->n; i++)
        argv[argc++] = words->w[i];
    argv[argc++] = words->n || !mesh ? "-help" : "help";
    argv[argc] = NULL;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return err_set(e, "pipe: %s", strerror(errno)), -errno;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return err_set(e, "fork: %s", strerror(errno)), -errno;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        alarm(MAN_HELP_TIMEOUT_S);
        execv(r->exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out->len < MAN_HELP_MAX)
            buf_append(out, chunk, (size_t)n);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status) || strncmp(out->data ? out->data : "", "Usage: ", 7) != 0)
        return err_set(e, "%s %s did not print its usage", r->prog,
                       words->n ? words->w[0] : "-help"),
               -EIO;
    return 0;
}

/* ---- roff ------------------------------------------------------------------------------- */

/* Text for a filled line: backslashes escaped, a leading '.' or '\'' made literal. */
static void roff_text(struct buf *b, const char *s, size_t n)
{
    if (n && (s[0] == '.' || s[0] == '\''))
        buf_append_cstr(b, "\\&");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            buf_append_cstr(b, "\\e");
        else if (s[i] == '-' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '-' || s[i - 1] == '['))
            buf_append_cstr(b, "\\-"); /* an option's dash, not a hyphen */
        else
            buf_append(b, &s[i], 1);
    }
    buf_append_cstr(b, "\n");
}

static size_t indent_of(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    return i;
}

/* ---- one page --------------------------------------------------------------------------- */

struct man_line {
    const char *s;
    size_t n;
};

static bool is_option_line(struct man_line l)
{
    return l.n > 3 && l.s[0] == ' ' && l.s[1] == ' ' && l.s[2] == '-' && l.s[3] != ' ' &&
           l.s[3] != '-';
}

static bool is_list_header(struct man_line l)
{
    return (l.n == 9 && memcmp(l.s, "Commands:", 9) == 0) ||
           (l.n == 12 && memcmp(l.s, "Subcommands:", 12) == 0);
}

/* A lower-case command word: "start", "force-leave". */
static bool is_command_word(const char *s, size_t n)
{
    if (n == 0 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void page_name(const struct man_run *r, const struct man_words *w, char *out, size_t size)
{
    size_t at = (size_t)snprintf(out, size, "%s", r->prog);
    for (int i = 0; i < w->n && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, "-%s", w->w[i]);
}

static int write_page(struct man_run *r, const struct man_words *w, const char *summary,
                      struct man_words *children, char children_summary[][160], int *nchildren,
                      char *child_words);

/* Generates the page for w, then the pages of the commands it lists. */
static int generate(struct man_run *r, const struct man_words *w, const char *summary)
{
    char name[128];
    page_name(r, w, name, sizeof(name));
    for (int i = 0; i < r->npages; i++)
        if (strcmp(r->pages[i], name) == 0)
            return 0;
    if (r->npages == MAN_MAX_PAGES)
        return err_set(&r->e, "more than %d pages: a command list loops?", MAN_MAX_PAGES), -E2BIG;
    r->pages[r->npages++] = xstrdup(name);

    struct man_words children[64];
    char summaries[64][160];
    char *words = xcalloc(64, 64 * MAN_MAX_DEPTH); /* storage the children's words point into */
    int n = 0;
    int rc = write_page(r, w, summary, children, summaries, &n, words);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = generate(r, &children[i], summaries[i]);
    free(words);
    return rc;
}

/* Parses "    FORM  summary" of a command list into child pages (up to 64). */
static void add_children(const struct man_words *parent, struct man_line l,
                         struct man_words *children, char summaries[][160], int *n, char *storage)
{
    const char *s = l.s + 4, *end = l.s + l.n;
    /* "NAME = mesh OTHER": an alias, documented by OTHER's page. */
    const char *after = memchr(s, ' ', (size_t)(end - s));
    while (after && after < end && *after == ' ')
        after++;
    if (after && after < end && *after == '=')
        return;
    const char *gap = strstr(s, "  ");
    const char *form_end = gap && gap < end ? gap : end;
    const char *sum = form_end;
    while (sum < end && *sum == ' ')
        sum++;

    /* The command path: leading lower-case words of FORM; the first may hold alternatives. */
    const char *words[MAN_MAX_DEPTH];
    size_t lens[MAN_MAX_DEPTH];
    int nw = 0;
    for (const char *p = s; p < form_end && parent->n + nw < MAN_MAX_DEPTH;) {
        const char *q = memchr(p, ' ', (size_t)(form_end - p));
        size_t len = (size_t)((q ? q : form_end) - p);
        bool ok = true;
        for (const char *a = p; a < p + len;) {
            const char *bar = memchr(a, '|', (size_t)(p + len - a));
            size_t alen = (size_t)((bar ? bar : p + len) - a);
            ok = ok && is_command_word(a, alen) && (nw == 0 || !bar);
            a += alen + (bar ? 1 : 0);
        }
        if (!ok)
            break;
        words[nw] = p;
        lens[nw++] = len;
        p += len + 1;
    }
    if (nw == 0)
        return;
    /* One child per alternative of the first word. */
    for (const char *a = words[0]; a < words[0] + lens[0] && *n < 64;) {
        const char *bar = memchr(a, '|', (size_t)(words[0] + lens[0] - a));
        size_t alen = (size_t)((bar ? bar : words[0] + lens[0]) - a);
        struct man_words *c = &children[*n];
        char *slot = storage + (size_t)*n * 64 * MAN_MAX_DEPTH;
        *c = *parent;
        for (int i = 0; i < nw; i++) {
            const char *wp = i == 0 ? a : words[i];
            size_t wl = i == 0 ? alen : lens[i];
            if (wl >= 64)
                return;
            memcpy(slot + i * 64, wp, wl);
            slot[i * 64 + wl] = '\0';
            c->w[c->n++] = slot + i * 64;
        }
        snprintf(summaries[*n], 160, "%.*s", (int)(end - sum), sum);
        bool dup = false;
        for (int k = 0; k < *n && !dup; k++) {
            dup = children[k].n == c->n;
            for (int m = 0; dup && m < c->n; m++)
                dup = strcmp(children[k].w[m], c->w[m]) == 0;
        }
        if (!dup)
            (*n)++;
        a += alen + (bar ? 1 : 0);
    }
}

static int write_page(struct man_run *r, const struct man_words *w, const char *summary,
                      struct man_words *children, char summaries[][160], int *nchildren,
                      char *child_words)
{
    struct buf help = {0}, page = {0};
    struct man_line lines[2048];
    size_t nlines = 0;
    char name[128], upper[128], path[1024];
    int rc = run_help(r, w, &help, &r->e);
    if (rc < 0)
        goto out;

    for (const char *p = help.data, *end = help.data + help.len; p < end && nlines < 2048;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        while (len && p[len - 1] == ' ')
            len--;
        lines[nlines++] = (struct man_line){p, len};
        p = nl ? nl + 1 : end;
    }

    page_name(r, w, name, sizeof(name));
    for (size_t i = 0; i <= strlen(name); i++)
        upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    buf_printf(&page, ".\\\" Generated by `mesh man` from `%s%s%s -help`; do not edit.\n", r->prog,
               w->n ? " " : "", w->n ? w->w[0] : "");
    buf_printf(&page, ".TH %s 1 \"\" \"meshkit %s\" \"meshkit manual\"\n.SH NAME\n", upper,
               MESH_VERSION);
    buf_printf(&page, "%s \\- ", name);
    roff_text(&page, summary, strlen(summary));

    size_t i = 0;
    buf_append_cstr(&page, ".SH SYNOPSIS\n.nf\n");
    for (; i < nlines && (i == 0 || (lines[i].n > 7 && indent_of(lines[i].s, lines[i].n) == 7));
         i++) {
        const char *s = lines[i].s + 7; /* "Usage: " or its 7-space continuation */
        roff_text(&page, s, lines[i].n - 7);
    }
    buf_append_cstr(&page, ".fi\n");

    enum { DESCRIPTION, OPTIONS, COMMANDS, NOTES } section = DESCRIPTION;
    bool opened[4] = {false};
    static const char *const titles[] = {"DESCRIPTION", "OPTIONS", "COMMANDS", "NOTES"};
    bool in_nofill = false, pending_pp = false;
    for (; i < nlines; i++) {
        struct man_line l = lines[i];
        size_t ind = indent_of(l.s, l.n);
        if (l.n == 0) {
            pending_pp = opened[section];
            continue;
        }
        if (is_option_line(l))
            section = OPTIONS;
        else if (is_list_header(l)) {
            section = COMMANDS;
            continue;
        } else if (ind == 0 && l.n >= 4 && memcmp(l.s, "Run '", 5) == 0)
            continue; /* "Run 'mesh X -help' ...": SEE ALSO says it */
        else if (section == OPTIONS && ind < 8)
            section = NOTES;
        else if (section == COMMANDS && ind == 0 && l.s[l.n - 1] != ':')
            section = NOTES;
        if (in_nofill && (ind < 6 || section != DESCRIPTION)) {
            buf_append_cstr(&page, ".fi\n.RE\n");
            in_nofill = false;
        }
        if (!opened[section]) {
            buf_printf(&page, ".SH %s\n", titles[section]);
            opened[section] = true;
        } else if (pending_pp && section != OPTIONS) {
            buf_append_cstr(&page, ".PP\n");
        }
        pending_pp = false;
        switch (section) {
        case OPTIONS:
            if (is_option_line(l)) {
                buf_append_cstr(&page, ".TP\n.B ");
                roff_text(&page, l.s + 2, l.n - 2);
            } else {
                roff_text(&page, l.s + ind, l.n - ind);
            }
            break;
        case COMMANDS:
            if (ind == 0) { /* a group heading, as in `mesh help` */
                buf_append_cstr(&page, ".SS ");
                roff_text(&page, l.s, l.n);
                break;
            }
            add_children(w, l, children, summaries, nchildren, child_words);
            {
                const char *gap = strstr(l.s + ind, "  ");
                size_t form = gap && gap < l.s + l.n ? (size_t)(gap - l.s) - ind : l.n - ind;
                size_t sum = gap && gap < l.s + l.n ? indent_of(gap, (size_t)(l.s + l.n - gap)) : 0;
                buf_append_cstr(&page, ".TP\n.B ");
                roff_text(&page, l.s + ind, form);
                if (gap && gap < l.s + l.n)
                    roff_text(&page, gap + sum, (size_t)(l.s + l.n - gap) - sum);
            }
            break;
        default:
            if (ind >= 6 && !in_nofill) { /* an example block, kept as printed */
                buf_append_cstr(&page, ".RS\n.nf\n");
                in_nofill = true;
            }
            roff_text(&page, l.s + (in_nofill ? 6 : ind), l.n - (in_nofill ? 6 : ind));
        }
    }
    if (in_nofill)
        buf_append_cstr(&page, ".fi\n.RE\n");

    buf_append_cstr(&page, ".SH SEE ALSO\n");
    struct man_words parent = *w;
    bool first = true;
    if (parent.n > 0) {
        char pname[128];
        parent.n--;
        page_name(r, &parent, pname, sizeof(pname));
        buf_printf(&page, "%s(1)", pname);
        first = false;
    }
    for (int k = 0; k < *nchildren; k++) {
        char cname[128];
        page_name(r, &children[k], cname, sizeof(cname));
        buf_printf(&page, "%s%s(1)", first ? "" : ", ", cname);
        first = false;
    }
    buf_printf(&page, "%sthe documentation in /usr/share/doc/meshkit\n", first ? "" : ",\n");

    snprintf(path, sizeof(path), "%s/%s.1", r->dir, name);
    if ((rc = file_mkdir_parents(path, 0755)) < 0) {
        err_set(&r->e, "mkdir %s: %s", r->dir, strerror(-rc));
        goto out;
    }
    rc = file_replace(path, page.data, page.len, 0644, 0, &r->e);
out:
    buf_free(&help);
    buf_free(&page);
    return rc;
}

/* Other programs that ship beside mesh, with their page's one-line summary. */
static const struct {
    const char *prog;
    const char *summary;
} other_programs[] = {
    {"webapp", "the example web service, which registers itself with its local agent"},
};

int cli_man(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(
            argc >= 2 ? stdout : stderr,
            "Usage: mesh man DIR [PROGRAM...]\n\n"
            "  Writes a man page for mesh and for each of its commands and subcommands into\n"
            "  DIR (mesh.1, mesh-agent.1, mesh-pm-start.1, ...), from their -help; and one for\n"
            "  each PROGRAM given by path that meshkit ships (webapp).\n");
        return argc >= 2 ? 0 : 2;
    }
    struct man_run r = {.dir = argv[1], .exe = "/proc/self/exe", .prog = "mesh", .e = {""}};
    struct man_words top = {.n = 0};
    int rc = generate(&r, &top, "service discovery, load balancing, supervision, load testing");
    for (int i = 2; rc == 0 && i < argc; i++) {
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        const char *summary = NULL;
        for (size_t k = 0; k < sizeof(other_programs) / sizeof(other_programs[0]); k++)
            if (strcmp(other_programs[k].prog, base) == 0)
                summary = other_programs[k].summary;
        if (!summary) {
            err_set(&r.e, "%s: not a program meshkit ships", argv[i]);
            rc = -EINVAL;
            break;
        }
        r.exe = argv[i];
        r.prog = base;
        rc = generate(&r, &top, summary);
    }
    if (rc < 0)
        fprintf(stderr, "mesh man: %s\n", r.e.msg);
    else
        printf("%d pages written to %s\n", r.npages, r.dir);
    for (int i = 0; i < r.npages; i++)
        free(r.pages[i]);
    return rc < 0 ? 1 : 0;
}
