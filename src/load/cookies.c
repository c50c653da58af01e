/* A virtual user's cookie jar (see cookies.h), after RFC 6265 sections 5.1 to 5.4. */
#include "load/cookies.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"

/* ---- dates (RFC 6265 5.1.1) --------------------------------------------------------------- */

static bool date_delimiter(unsigned char c)
{
    return c == 0x09 || (c >= 0x20 && c <= 0x2F) || (c >= 0x3B && c <= 0x40) ||
           (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

/* Digits at s[0..n): their count (up to max) and value; the rest must not be digits. */
static size_t digits(const char *s, size_t n, size_t max, int *v)
{
    size_t i = 0;

    *v = 0;
    while (i < n && isdigit((unsigned char)s[i]) && i < max)
        *v = *v * 10 + (s[i++] - '0');
    return i < n && isdigit((unsigned char)s[i]) ? 0 : i;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t load_cookie_date(const char *s, size_t len)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    int hour = -1, min = 0, sec = 0, day = -1, month = -1, year = -1;
    size_t i = 0;

    while (i < len) {
        size_t start, n, k;
        int v;

        while (i < len && date_delimiter((unsigned char)s[i]))
            i++;
        for (start = i; i < len && !date_delimiter((unsigned char)s[i]); i++)
            ;
        if (start == i)
            break;
        n = i - start;
        /* a time may run on through ':' (a delimiter): hh:mm:ss */
        if (hour < 0 && (k = digits(s + start, len - start, 2, &v)) > 0 && start + k < len &&
            s[start + k] == ':') {
            const char *p = s + start + k + 1;
            size_t left = len - start - k - 1, k2 = digits(p, left, 2, &min), k3;

            if (k2 > 0 && k2 < left && p[k2] == ':' &&
                (k3 = digits(p + k2 + 1, left - k2 - 1, 2, &sec)) > 0) {
                hour = v;
                i = (size_t)(p + k2 + 1 + k3 - s);
                continue;
            }
        }
        if (day < 0 && n <= 2 && digits(s + start, n, 2, &v) == n) {
            day = v;
        } else if (month < 0 && n >= 3 && !isdigit((unsigned char)s[start])) {
            for (int m = 0; m < 12; m++)
                if (strncasecmp(s + start, months + 3 * m, 3) == 0)
                    month = m + 1;
        } else if (year < 0 && n >= 2 && n <= 4 && digits(s + start, n, 4, &v) == n) {
            year = v;
        }
    }
    if (year >= 70 && year <= 99)
        year += 1900;
    else if (year >= 0 && year <= 69)
        year += 2000;
    if (hour < 0 || day < 1 || day > 31 || month < 0 || year < 1601 || hour > 23 || min > 59 ||
        sec > 59)
        return -1;
    return (days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec) * 1000;
}

/* ---- the jar ----------------------------------------------------------------------------- */

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static void cookie_free(struct load_cookie *c)
{
    free(c->name);
    free(c->value);
    free(c->domain);
    free(c->path);
    c->name = c->value = c->domain = c->path = NULL;
}

/* The last cookie fills slot i; the slot it leaves holds no pointers. */
static void jar_remove(struct load_jar *j, size_t i)
{
    cookie_free(&j->c[i]);
    j->c[i] = j->c[--j->n];
    j->c[j->n] = (struct load_cookie){0};
}

/* The directory of a request path, as a cookie's default path (RFC 6265 5.1.4). */
static char *default_path(const char *path)
{
    size_t n = strcspn(path, "?#");
    const char *last;

    if (n == 0 || path[0] != '/')
        return xstrdup("/");
    last = memrchr(path, '/', n);
    return last == path ? xstrdup("/") : xstrndup(path, (size_t)(last - path));
}

static bool is_ip(const char *host)
{
    return strspn(host, "0123456789.") == strlen(host) || strchr(host, ':') != NULL;
}

static bool domain_match(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);

    if (strcasecmp(host, domain) == 0)
        return true;
    return h > d && host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0 && !is_ip(host);
}

static bool path_match(const char *req, const char *cookie)
{
    size_t rn = strcspn(req, "?#"), cn = strlen(cookie);

    if (cn > rn || strncmp(req, cookie, cn) != 0)
        return false;
    return cn == rn || cookie[cn - 1] == '/' || req[cn] == '/';
}

/* One attribute (name[=value]) of a Set-Cookie line into c; false when it refuses the cookie. */
static bool attribute(struct load_cookie *c, const char *a, size_t n,
                      const struct load_jar_url *url, int64_t now_ms, bool *has_max_age)
{
    const char *eq = memchr(a, '=', n), *v = eq ? eq + 1 : a + n;
    size_t kn = eq ? (size_t)(eq - a) : n, vn = (size_t)(a + n - v);

    trim(&a, &kn);
    trim(&v, &vn);
    if (kn == 7 && strncasecmp(a, "expires", 7) == 0 && !*has_max_age) {
        int64_t t = load_cookie_date(v, vn);

        if (t >= 0)
            c->expires_ms = t;
    } else if (kn == 7 && strncasecmp(a, "max-age", 7) == 0 && vn > 0 &&
               (isdigit((unsigned char)v[0]) || v[0] == '-')) {
        char num[24];
        long long s;

        if (vn >= sizeof(num))
            vn = sizeof(num) - 1;
        memcpy(num, v, vn);
        num[vn] = '\0';
        s = strtoll(num, NULL, 10);
        *has_max_age = true;
        c->expires_ms = s <= 0 ? 0 : now_ms + (s > 400LL * 86400 ? 400LL * 86400 : s) * 1000;
    } else if (kn == 6 && strncasecmp(a, "domain", 6) == 0 && vn > 0) {
        if (v[0] == '.')
            v++, vn--;
        free(c->domain);
        c->domain = xstrndup(v, vn);
        for (char *p = c->domain; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        c->host_only = false;
        if (!domain_match(url->host, c->domain))
            return false;
    } else if (kn == 4 && strncasecmp(a, "path", 4) == 0 && vn > 0 && v[0] == '/') {
        free(c->path);
        c->path = xstrndup(v, vn);
    } else if (kn == 6 && strncasecmp(a, "secure", 6) == 0) {
        c->secure = true;
    }
    return true;
}

/* Keeps c (stolen) in the jar, replacing its namesake; an expired c only deletes. */
static void jar_keep(struct load_jar *j, struct load_cookie *c, int64_t now_ms)
{
    size_t oldest = 0;

    for (size_t i = 0; i < j->n; i++) {
        struct load_cookie *o = &j->c[i];

        if (strcmp(o->name, c->name) == 0 && strcasecmp(o->domain, c->domain) == 0 &&
            strcmp(o->path, c->path) == 0) {
            c->order = o->order; /* the old creation time stays (RFC 6265 5.3 step 11) */
            jar_remove(j, i);
            break;
        }
    }
    if (c->expires_ms >= 0 && c->expires_ms <= now_ms) {
        cookie_free(c);
        return;
    }
    if (j->n == LOAD_JAR_MAX) {
        for (size_t i = 1; i < j->n; i++)
            if (j->c[i].order < j->c[oldest].order)
                oldest = i;
        jar_remove(j, oldest);
    }
    if (!j->c)
        j->c = xcalloc(LOAD_JAR_MAX, sizeof(*j->c));
    j->c[j->n++] = *c;
}

int load_jar_set(struct load_jar *j, const char *line, size_t len, const struct load_jar_url *url,
                 int64_t now_ms)
{
    size_t pair = strcspn(line, ";"), nn, vn;
    const char *eq, *name = line, *value;
    struct load_cookie c = {.expires_ms = -1, .host_only = true};
    bool has_max_age = false;

    if (pair > len)
        pair = len;
    eq = memchr(line, '=', pair);
    if (!eq)
        return -1; /* tough-cookie refuses a cookie without a name, as browsers may not */
    nn = (size_t)(eq - line);
    value = eq + 1;
    vn = pair - nn - 1;
    trim(&name, &nn);
    trim(&value, &vn);
    if (nn == 0 || nn + vn > LOAD_JAR_MAX_COOKIE)
        return -1;
    c.name = xstrndup(name, nn);
    c.value = xstrndup(value, vn);
    c.domain = xstrdup(url->host);
    for (char *p = c.domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c.path = NULL;
    for (size_t at = pair; at < len;) {
        size_t n = strcspn(line + at + 1, ";");

        if (at + 1 + n > len)
            n = len - at - 1;
        if (!attribute(&c, line + at + 1, n, url, now_ms, &has_max_age)) {
            cookie_free(&c);
            return -1;
        }
        at += 1 + n;
    }
    if (!c.path)
        c.path = default_path(url->path);
    c.order = j->next_order++;
    jar_keep(j, &c, now_ms);
    return 0;
}

static int by_path_then_age(const void *a, const void *b)
{
    const struct load_cookie *x = *(const struct load_cookie *const *)a;
    const struct load_cookie *y = *(const struct load_cookie *const *)b;
    size_t xl = strlen(x->path), yl = strlen(y->path);

    if (xl != yl)
        return xl > yl ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

void load_jar_header(struct load_jar *j, const struct load_jar_url *url, int64_t now_ms,
                     struct buf *out)
{
    const struct load_cookie *pick[LOAD_JAR_MAX];
    size_t n = 0;

    for (size_t i = 0; i < j->n;) {
        const struct load_cookie *c = &j->c[i];

        if (c->expires_ms >= 0 && c->expires_ms <= now_ms) {
            jar_remove(j, i);
            continue;
        }
        if ((c->host_only ? strcasecmp(url->host, c->domain) == 0
                          : domain_match(url->host, c->domain)) &&
            path_match(url->path, c->path) && (!c->secure || url->https))
            pick[n++] = c;
        i++;
    }
    if (n > 1)
        qsort(pick, n, sizeof(*pick), by_path_then_age);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s=%s", i ? "; " : "", pick[i]->name, pick[i]->value);
}

void load_jar_free(struct load_jar *j)
{
    for (size_t i = 0; i < j->n; i++)
        cookie_free(&j->c[i]);
    free(j->c);
    memset(j, 0, sizeof(*j));
}
