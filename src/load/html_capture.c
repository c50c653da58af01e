/* Selector captures over a gumbo parse of the body (see html_capture.h). */
#include "load/html_capture.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "load/template.h"

struct load_html {
    GumboOutput *out;
};

/* Scanning tags for the depth estimate. */

struct open_tag {
    char name[16]; /* enough to tell elements apart; longer names are cut */
    size_t len;
};

static bool in_list(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, name, n) == 0)
            return true;
    return false;
}

/* Elements that never hold others, or whose end tag HTML lets a sibling or parent imply (a
 * <p> ends at the next <p>): neither deepens a document that stays cheap to parse. */
static const char *const flat[] = {
    "area",  "base", "basefont", "bgsound", "br",    "col",   "embed",    "frame",
    "hr",    "img",  "input",    "keygen",  "link",  "meta",  "param",    "source",
    "track", "wbr",  "p",        "li",      "dt",    "dd",    "option",   "optgroup",
    "tr",    "td",   "th",       "tbody",   "thead", "tfoot", "colgroup", "caption",
    "rb",    "rt",   "rp",       "rtc",     "html",  "head",  "body",     NULL};
/* Elements a misnested end tag leaves in HTML's list of active formatting elements, which the
 * tree builder opens again at the next text or tag. */
static const char *const formatting[] = {"a",      "b",      "big",  "code", "em",
                                         "font",   "i",      "nobr", "s",    "small",
                                         "strike", "strong", "tt",   "u",    NULL};
/* HTML's special elements (those not in flat) and its scope boundaries: an end tag does not
 * close past them. */
static const char *const special[] = {"address",
                                      "applet",
                                      "article",
                                      "aside",
                                      "blockquote",
                                      "button",
                                      "center",
                                      "details",
                                      "dir",
                                      "div",
                                      "dl",
                                      "fieldset",
                                      "figcaption",
                                      "figure",
                                      "footer",
                                      "form",
                                      "frameset",
                                      "h1",
                                      "h2",
                                      "h3",
                                      "h4",
                                      "h5",
                                      "h6",
                                      "header",
                                      "hgroup",
                                      "listing",
                                      "main",
                                      "marquee",
                                      "menu",
                                      "nav",
                                      "noscript",
                                      "object",
                                      "ol",
                                      "pre",
                                      "section",
                                      "select",
                                      "summary",
                                      "table",
                                      "template",
                                      "ul",
                                      "foreignobject",
                                      "desc",
                                      "mi",
                                      "mo",
                                      "mn",
                                      "ms",
                                      "mtext",
                                      "annotation-xml",
                                      NULL};
/* The scope boundaries among them: the end tag of a special element does not close past
 * these. */
static const char *const boundary[] = {
    "applet", "marquee", "object", "table", "template", "foreignobject",  "desc",
    "mi",     "mo",      "mn",     "ms",    "mtext",    "annotation-xml", NULL};
/* Elements whose content is text up to their end tag. */
static const char *const raw[] = {"script", "style",   "textarea", "title", "xmp",
                                  "iframe", "noembed", "noframes", NULL};

static size_t tag_name(const char *s, size_t i, size_t len, struct open_tag *t)
{
    t->len = 0;
    while (i < len && !strchr(" \t\n\r\f/>", s[i])) {
        if (t->len < sizeof(t->name))
            t->name[t->len++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]);
        i++;
    }
    return i;
}

/* Past the ">" that ends the tag whose attributes start at i (quotes respected); *self_closing
 * tells a "/>". */
static size_t tag_end(const char *s, size_t i, size_t len, bool *self_closing)
{
    char quote = '\0';

    for (; i < len; i++) {
        if (quote) {
            quote = s[i] == quote ? '\0' : quote;
        } else if (s[i] == '"' || s[i] == '\'') {
            quote = s[i];
        } else if (s[i] == '>') {
            *self_closing = i > 0 && s[i - 1] == '/';
            return i + 1;
        }
    }
    return len;
}

/* Past the end tag </name of a raw text element (any case), or len. */
static size_t raw_end(const char *s, size_t i, size_t len, const struct open_tag *t)
{
    for (; i + 2 + t->len <= len; i++)
        if (s[i] == '<' && s[i + 1] == '/' && strncasecmp(s + i + 2, t->name, t->len) == 0)
            return i;
    return len;
}

static size_t skip_markup(const char *s, size_t i, size_t len)
{
    const char *end;

    if (i + 4 <= len && memcmp(s + i, "<!--", 4) == 0) {
        end = memmem(s + i + 4, len - i - 4, "-->", 3);
        return end ? (size_t)(end - s) + 3 : len;
    }
    end = memchr(s + i, '>', len - i);
    return end ? (size_t)(end - s) + 1 : len;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_tag(const struct open_tag *t, const char *const *list)
{
    return in_list(t->name, t->len, list);
}

/*
 * The depth after end tag t, erring on the deep side. The tree builder closes the nearest open
 * element of t's name and those above it, unless an element it does not close past is in
 * between (a special element such as <div> for </span> and </b>, whose adoption agency moves
 * rather than closes it; a scope boundary such as <table> for </div>); </form> takes the form
 * out alone; and misnested formatting elements above it stay, as the tree builder opens them
 * again.
 */
static size_t close_tag(struct open_tag *stack, size_t depth, const struct open_tag *t,
                        size_t *foreign)
{
    static const char *const foreign_roots[] = {"svg", "math", NULL};
    const char *const *stops = is_tag(t, special) ? boundary : special;
    size_t k = depth, kept = 0;
    bool stopped = false;

    while (k-- > 0 && !(stack[k].len == t->len && memcmp(stack[k].name, t->name, t->len) == 0))
        stopped = stopped || is_tag(&stack[k], stops);
    if (k == SIZE_MAX || stopped) /* none open, or one in between it does not pass */
        return depth;
    if (t->len == 4 && memcmp(t->name, "form", 4) == 0) {
        memmove(&stack[k], &stack[k + 1], (depth - k - 1) * sizeof(*stack));
        return depth - 1;
    }
    for (size_t j = k; j < depth; j++) {
        if (j > k && is_tag(&stack[j], formatting))
            stack[k + kept++] = stack[j]; /* opened again */
        else
            *foreign -= is_tag(&stack[j], foreign_roots);
    }
    return k + kept;
}

bool load_html_too_costly(const char *s, size_t len, size_t max_depth, size_t max_work)
{
    struct open_tag *stack = xmalloc((max_depth + 1) * sizeof(*stack));
    size_t depth = 0, foreign = 0, i = 0, work = 0;
    bool costly = false;

    while (!costly && i < len) {
        const char *lt = memchr(s + i, '<', len - i);
        struct open_tag t;
        bool closing, self_closing = false;

        /* the tree builder scans the open elements for each tag, and a formatting element's
         * place among them for each character of text */
        work += depth * ((size_t)((lt ? lt : s + len) - (s + i)) / 16 + 1);
        if ((costly = work > max_work) || !lt)
            break;
        i = (size_t)(lt - s);
        if (i + 1 < len && (s[i + 1] == '!' || s[i + 1] == '?')) {
            i = skip_markup(s, i, len);
            continue;
        }
        closing = i + 1 < len && s[i + 1] == '/';
        if (i + 1 + closing >= len || !is_alpha(s[i + 1 + closing])) {
            i++;
            continue;
        }
        i = tag_end(s, tag_name(s, i + 1 + closing, len, &t), len, &self_closing);
        if (closing) {
            depth = close_tag(stack, depth, &t, &foreign);
        } else if (t.len == 9 && memcmp(t.name, "plaintext", 9) == 0) {
            break; /* the rest is text */
        } else if (in_list(t.name, t.len, raw)) {
            i = raw_end(s, i, len, &t);
        } else if (!in_list(t.name, t.len, flat) && !(self_closing && foreign)) {
            /* "/>" ends an element in SVG and MathML only; HTML ignores it */
            foreign += in_list(t.name, t.len, (const char *const[]){"svg", "math", NULL});
            stack[depth++] = t;
            costly = depth > max_depth;
        }
    }
    free(stack);
    return costly;
}

struct load_html *load_html_parse(const char *s, size_t len)
{
    struct load_html *h;

    if (len > LOAD_HTML_MAX_BYTES)
        len = LOAD_HTML_MAX_BYTES;
    if (load_html_too_costly(s, len, LOAD_HTML_MAX_DEPTH, LOAD_HTML_MAX_WORK))
        return NULL;
    h = xmalloc(sizeof(*h));
    h->out = gumbo_parse_with_options(&kGumboDefaultOptions, s, len);
    return h;
}

void load_html_free(struct load_html *h)
{
    if (!h)
        return;
    gumbo_destroy_output(&kGumboDefaultOptions, h->out);
    free(h);
}

const GumboNode *load_html_document(const struct load_html *h)
{
    return h->out->document;
}

/* The text of n's descendants, as domutils' textContent gathers it. */
static void text_of(const GumboNode *n, struct buf *out)
{
    const GumboVector *kids = &n->v.element.children;

    for (unsigned i = 0; i < kids->length; i++) {
        const GumboNode *k = kids->data[i];

        if (k->type == GUMBO_NODE_TEXT || k->type == GUMBO_NODE_WHITESPACE ||
            k->type == GUMBO_NODE_CDATA)
            buf_append_cstr(out, k->v.text.text);
        else if (k->type == GUMBO_NODE_ELEMENT || k->type == GUMBO_NODE_TEMPLATE)
            text_of(k, out);
    }
}

static bool is_boolean_attr(const char *name)
{
    static const char *const names[] = {
        "autofocus", "autoplay", "async", "checked",  "controls", "defer",  "disabled", "hidden",
        "loop",      "multiple", "open",  "readonly", "required", "scoped", "selected", NULL};

    for (const char *const *p = names; *p; p++)
        if (strcasecmp(*p, name) == 0)
            return true;
    return false;
}

/* cheerio's getAttr. */
static json_t *attr_of(const GumboNode *n, const char *name)
{
    const GumboElement *el = &n->v.element;
    const GumboAttribute *type;

    if (!name || !*name) {
        json_t *all = json_object();

        for (unsigned i = 0; i < el->attributes.length; i++) {
            const GumboAttribute *a = el->attributes.data[i];

            json_object_set_new(all, a->name, json_string(a->value));
        }
        return all;
    }
    for (unsigned i = 0; i < el->attributes.length; i++) {
        const GumboAttribute *a = el->attributes.data[i];

        if (strcmp(a->name, name) == 0)
            return json_string(is_boolean_attr(name) ? name : a->value);
    }
    if (strcmp(name, "value") != 0)
        return NULL;
    if (el->tag == GUMBO_TAG_OPTION) {
        struct buf b = BUF_INIT;
        json_t *v;

        text_of(n, &b);
        v = json_stringn(b.data ? b.data : "", b.len);
        buf_free(&b);
        return v;
    }
    type = gumbo_get_attribute(&el->attributes, "type");
    if (el->tag == GUMBO_TAG_INPUT && type &&
        (strcmp(type->value, "radio") == 0 || strcmp(type->value, "checkbox") == 0))
        return json_string("on");
    return NULL;
}

/* JavaScript's ToIntegerOrInfinity, then relative to len, as Array.prototype.slice takes it. */
static size_t slice_at(double d, size_t len)
{
    if (isnan(d))
        d = 0;
    d = trunc(d);
    if (d < 0)
        d = d + (double)len < 0 ? 0 : d + (double)len;
    return d > (double)len ? len : (size_t)d;
}

json_t *load_html_capture(const struct load_html *h, const struct load_sel *sel,
                          const struct load_capture *c, uint64_t *rng)
{
    const GumboNode **els;
    size_t n = load_sel_select(sel, load_html_document(h), &els), start, end;
    double i = 0;
    json_t *v = NULL;

    switch (c->index_kind) {
    case LOAD_INDEX_FIRST:
        break;
    case LOAD_INDEX_LAST:
        i = (double)n - 1;
        break;
    case LOAD_INDEX_RANDOM:
        /* Math.ceil(Math.random() * n - 1): each element alike, -1 (none) without any */
        i = n ? (double)(load_rand(rng) % n) : -1;
        break;
    case LOAD_INDEX_AT:
        i = c->index;
        break;
    }
    start = slice_at(i, n);
    end = slice_at(i + 1, n);
    if (start < end)
        v = attr_of(els[start], c->attr);
    free(els);
    return v;
}
