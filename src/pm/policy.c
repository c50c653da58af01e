/* Restart policy, /proc parsing and formats: pure functions (see policy.h). */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "pm/policy.h"

static const char *const status_names[PM_STATUS_COUNT] = {
    [PM_ONLINE] = "online",   [PM_LAUNCHING] = "launching", [PM_STOPPING] = "stopping",
    [PM_STOPPED] = "stopped", [PM_ERRORED] = "errored",     [PM_WAITING] = "waiting restart",
};

const char *pm_status_name(enum pm_status s)
{
    return (unsigned)s < PM_STATUS_COUNT ? status_names[s] : "unknown";
}

bool pm_status_parse(const char *s, enum pm_status *out)
{
    for (int i = 0; i < PM_STATUS_COUNT; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum pm_status)i;
            return true;
        }
    }
    return false;
}

bool pm_backoff_next(struct pm_backoff *b, const struct pm_policy *p, int64_t uptime_ms,
                     int64_t *delay_ms)
{
    if (uptime_ms > PM_BACKOFF_RESET_MS)
        b->delay_ms = 0;
    /* PM2 compares the count with max_restarts after counting this exit: the max_restarts-th
     * unstable exit in a row is final (3 allows 2 restarts), and 0 restarts nothing. */
    if (uptime_ms < p->min_uptime_ms)
        b->unstable++;
    else
        b->unstable = 0;
    if (b->unstable >= p->max_restarts)
        return false;
    if (p->exp_backoff_ms <= 0) {
        b->delay_ms = p->restart_delay_ms;
    } else if (b->delay_ms <= 0) {
        b->delay_ms = p->exp_backoff_ms; /* not capped: PM2 caps only the growth */
    } else {
        double next = (double)b->delay_ms * PM_BACKOFF_FACTOR;
        b->delay_ms = next > PM_BACKOFF_CAP_MS ? PM_BACKOFF_CAP_MS : (int64_t)next;
    }
    *delay_ms = b->delay_ms;
    return true;
}

int pm_parse_exit_codes(const char *s, struct pm_exit_codes *c)
{
    const char *p = s;

    do {
        int code = 0;
        const char *start = p;
        for (; *p >= '0' && *p <= '9' && p - start < 3; p++)
            code = code * 10 + (*p - '0');
        if (p == start || code > 255 || (*p != ',' && *p != '\0'))
            return -EINVAL;
        pm_exit_codes_add(c, code);
    } while (*p++ == ',');
    return 0;
}

int pm_rotate_name(const char *path, int k, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s.%d", path, k);

    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int pm_parse_memory(const char *s, int64_t *bytes)
{
    int64_t n = 0;
    int64_t unit = 1;
    size_t k = 0;

    for (; s[k] >= '0' && s[k] <= '9'; k++) {
        n = n * 10 + (s[k] - '0');
        if (n > PM_MEMORY_MAX)
            return -EINVAL;
    }
    if (k == 0)
        return -EINVAL;
    switch (s[k]) {
    case '\0':
        break;
    case 'K':
        unit = 1024;
        break;
    case 'M':
        unit = 1024 * 1024;
        break;
    case 'G':
        unit = 1024 * 1024 * 1024;
        break;
    default:
        return -EINVAL;
    }
    if (unit > 1 && s[k + 1] != '\0')
        return -EINVAL;
    if (n > PM_MEMORY_MAX / unit)
        return -EINVAL;
    *bytes = n * unit;
    return 0;
}

void pm_format_uptime(int64_t ms, char *out, size_t outlen)
{
    int64_t s = ms > 0 ? ms / 1000 : 0;

    if (s < 60)
        snprintf(out, outlen, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, outlen, "%lldm", (long long)(s / 60));
    else if (s < 86400)
        snprintf(out, outlen, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, outlen, "%lldD", (long long)(s / 86400));
}

bool pm_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64 || name[0] == '-' || name[0] == '.' || strcmp(name, "all") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* One component (comp, clen bytes) of rel, ending at rel + end. */
static bool component_ignored(const char *rel, size_t end, const char *comp, size_t clen,
                              char *const *patterns, size_t npatterns)
{
    char name[NAME_MAX + 1], prefix[PATH_MAX];

    if (clen >= sizeof(name) || end >= sizeof(prefix))
        return false;
    memcpy(name, comp, clen);
    name[clen] = '\0';
    if (npatterns == 0)
        return name[0] == '.' || strcmp(name, "node_modules") == 0;
    memcpy(prefix, rel, end);
    prefix[end] = '\0';
    for (size_t k = 0; k < npatterns; k++) {
        const char *pat = patterns[k];
        if (strchr(pat, '/') ? fnmatch(pat, prefix, FNM_PATHNAME) == 0 : fnmatch(pat, name, 0) == 0)
            return true;
    }
    return false;
}

bool pm_watch_ignored(const char *rel, char *const *patterns, size_t npatterns)
{
    const char *p = rel;

    while (*p) {
        size_t len = strcspn(p, "/");
        if (len > 0 && component_ignored(rel, (size_t)(p - rel) + len, p, len, patterns, npatterns))
            return true;
        p += len;
        p += *p == '/';
    }
    return false;
}
