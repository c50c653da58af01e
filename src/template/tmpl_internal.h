/*
 * Inside the template language: tokens (lex.c), the tree (parse.c), the evaluator's state
 * (eval.c) shared with the function table (funcs.c, funcs_data.c) and value helpers (value.c).
 */
#ifndef MESH_TEMPLATE_TMPL_INTERNAL_H
#define MESH_TEMPLATE_TMPL_INTERNAL_H

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "template/tmpl.h"

/* ---- tokens ------------------------------------------------------------------------------ */

enum tmpl_tok_kind {
    TOK_TEXT,    /* text outside actions (after trimming) */
    TOK_LEFT,    /* {{ */
    TOK_RIGHT,   /* }} */
    TOK_IDENT,   /* a keyword or a function name */
    TOK_FIELD,   /* .Name (text without the dot) */
    TOK_DOT,     /* . */
    TOK_VAR,     /* $ or $name (text with the dollar) */
    TOK_STRING,  /* "quoted" or `raw`; text is the decoded value */
    TOK_NUMBER,  /* text is the literal */
    TOK_PIPE,    /* | */
    TOK_LPAREN,  /* ( */
    TOK_RPAREN,  /* ) */
    TOK_DECLARE, /* := */
    TOK_ASSIGN,  /* = */
    TOK_COMMA,   /* , */
    TOK_EOF,
};

struct tmpl_tok {
    enum tmpl_tok_kind kind;
    char *text; /* owned; NUL-terminated, may hold NULs for TEXT and STRING (see len) */
    size_t len;
    int line, col;
    bool space_before; /* separated from the previous token by spaces */
};

struct tmpl_toks {
    struct tmpl_tok *v;
    size_t n;
};

/* Splits a template into tokens. 0, or -EINVAL with e set to "name:line:col: message". */
int tmpl_lex(const char *name, const char *text, size_t len, struct tmpl_toks *out, struct err *e);
void tmpl_toks_free(struct tmpl_toks *t);

/* ---- the tree ---------------------------------------------------------------------------- */

enum tmpl_node_kind {
    NODE_LIST,     /* kids: the items */
    NODE_TEXT,     /* text, len */
    NODE_ACTION,   /* pipe: printed unless it declares variables */
    NODE_IF,       /* pipe, list, else_list (an "else if" is an IF inside else_list) */
    NODE_RANGE,    /* pipe (with 1 or 2 declared variables), list, else_list */
    NODE_WITH,     /* pipe, list, else_list */
    NODE_TEMPLATE, /* text: the defined template's name; pipe (NULL: nil) gives its dot */
    NODE_BREAK,    /* {{break}}, {{continue}}: only inside a range's list (checked at parse) */
    NODE_CONTINUE,
    NODE_PIPE,   /* kids: commands; decl/ndecl variables, assign when "=" */
    NODE_CMD,    /* kids: operands */
    NODE_IDENT,  /* text: a function name; for scratch, fields[0] names the method called */
    NODE_FIELD,  /* fields: .A.B on dot */
    NODE_VAR,    /* text: "$x"; fields: $x.A.B */
    NODE_DOT,    /* . */
    NODE_CHAIN,  /* pipe in parentheses; fields after it */
    NODE_STRING, /* text, len */
    NODE_NUMBER, /* value: an integer or real */
    NODE_BOOL,   /* value */
    NODE_NIL,
};

struct tmpl_node {
    enum tmpl_node_kind kind;
    int line, col;
    char *text;
    size_t len;
    char **fields;
    size_t nfields;
    json_t *value;
    struct tmpl_node **kids;
    size_t nkids;
    struct tmpl_node *pipe, *list, *else_list;
    char **decl;
    size_t ndecl;
    bool assign;
};

/* A named template from {{define "name"}} or {{block "name" PIPE}}: runs with fresh variables. */
struct tmpl_define {
    char *name;
    struct tmpl_node *list;
};

struct tmpl {
    char *name;
    struct tmpl_node *root;
    struct tmpl_define *defs; /* distinct names; every {{template}} names one (parse checks) */
    size_t ndefs;
};

/* The definition called name, or NULL. */
const struct tmpl_define *tmpl_define_find(const struct tmpl *t, const char *name);

void tmpl_node_free(struct tmpl_node *n);

/* ---- evaluation -------------------------------------------------------------------------- */

struct tmpl_var {
    char *name; /* borrowed from the tree */
    json_t *val;
};

struct tmpl_eval {
    const struct tmpl *t;
    const struct smap *store;
    struct tmpl_used *used;
    struct buf *out;
    struct tmpl_var *vars;
    size_t nvars, capvars;
    size_t var_base;          /* variables below belong to the caller of the running {{template}} */
    enum tmpl_node_kind jump; /* NODE_BREAK or NODE_CONTINUE while EVAL_JUMP unwinds */
    const struct tmpl_node *at; /* the node being evaluated, for error positions */
    struct err *e;
    unsigned depth;
    size_t iterations; /* range iterations so far, bounded */
    json_t *scratch;   /* scratch's values for this render (funcs_scratch.c); owned, or NULL */
    /* byPort's maps made in this render, whose keys are Go ints: "%p" -> the map (held, so
     * that no other map takes its address while the render runs); owned, or NULL */
    json_t *int_keyed;
    /* the registry's maps this render read whose missing keys have a zero value
     * (tmpl_dep_map_zeros): "%p" -> [the map, its zero value], held the same way; or NULL */
    json_t *map_zeros;
};

/* Sets the error at the current node: "name:line:col: message". */
void tmpl_report(struct tmpl_eval *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * tmpl_report, evaluating to -EINVAL. A macro so that the negative value shows at each call site:
 * callers leave *out unset on it, and the analyzer does not follow variadic calls to see that.
 */
#define tmpl_fail(ev, ...) (tmpl_report((ev), __VA_ARGS__), -EINVAL)

/*
 * A function: args are borrowed (any may be NULL for nil); *out receives a new reference (or
 * NULL for nil). 0 or -EINVAL through tmpl_fail.
 */
typedef int (*tmpl_fn)(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out);

/*
 * A function and what it takes. types has one letter per argument, checked before the call so
 * that functions read their arguments without testing them again: 's' string, 'i' integer, 'l'
 * list or nil, '.' anything; its last letter stands for the arguments after it. A mismatch is
 * Go's "wrong type for value; expected string; got int".
 */
struct tmpl_func {
    const char *name;
    tmpl_fn fn;
    int min_args, max_args; /* max -1: variadic */
    const char *types;
};

/* The function called name, or NULL. "and" and "or" are here but evaluated lazily by eval.c. */
const struct tmpl_func *tmpl_func_find(const char *name);
/* The entry of table (n entries) called name, or NULL: how each function file finds its own. */
const struct tmpl_func *tmpl_func_lookup(const struct tmpl_func *table, size_t n, const char *name);
/* 0 when f takes nargs arguments, else -EINVAL: "wrong number of args for join: want 2 got 0". */
int tmpl_func_check_count(struct tmpl_eval *ev, const struct tmpl_func *f, size_t nargs);
/* Calls f on args (borrowed) once their count and types are what it takes; 0 or -EINVAL. */
int tmpl_func_call(struct tmpl_eval *ev, const struct tmpl_func *f, json_t *const *args,
                   size_t nargs, json_t **out);
/* Whether name is one of consul-template's functions that this renderer does not have. */
bool tmpl_func_unsupported(const char *name);
/* The data functions' table (funcs_data.c), the regex functions' (funcs_regex.c), the
 * conversions' (funcs_conv.c), the formatters' (funcs_format.c), toYAML/parseYAML's
 * (funcs_yaml.c) and toTOML's (funcs_toml.c), searched by tmpl_func_find. */
const struct tmpl_func *tmpl_data_func_find(const char *name);
const struct tmpl_func *tmpl_regex_func_find(const char *name);
const struct tmpl_func *tmpl_conv_func_find(const char *name);
const struct tmpl_func *tmpl_format_func_find(const char *name);
const struct tmpl_func *tmpl_yaml_func_find(const char *name);
const struct tmpl_func *tmpl_toml_func_find(const char *name);
/* writeToFile (write_file.c). */
const struct tmpl_func *tmpl_write_func_find(const char *name);
/* Go's html, js and urlquery (funcs_escape.c). */
const struct tmpl_func *tmpl_escape_func_find(const char *name);
/* Marks obj (a map a function made, its keys decimal integers) as keyed by Go ints: range
 * visits it in numeric order, with integer keys. */
void tmpl_mark_int_keyed(struct tmpl_eval *ev, json_t *obj);

/* The value of a key missing from obj (a new reference): the zero value of its Go element type
 * when obj is one of the registry's typed maps ("" for map[string]string), else NULL, Go's nil
 * interface. */
json_t *tmpl_missing_key(const struct tmpl_eval *ev, const json_t *obj);

/* The method of scratch called name (scratch.Set ...), or NULL. */
const struct tmpl_func *tmpl_scratch_method_find(const char *name);

/*
 * The store's data for a dependency parsed from a function's argument; records the dependency
 * in ev->used. *data is borrowed: NULL when not fetched yet, which counts as missing (even for
 * keyOrDefault and keyExists: the file waits for the first answer rather than being written
 * with defaults and rewritten a moment later). 0 or -EINVAL (a malformed argument).
 */
int tmpl_eval_dep(struct tmpl_eval *ev, enum tmpl_dep_kind kind, const char *arg, json_t **data);

/*
 * executeTemplate: runs the definition called name with dot (borrowed) as {{ template }} does,
 * into a new string *out instead of the output. 0 or -EINVAL (no such definition, or its
 * error).
 */
int tmpl_eval_execute(struct tmpl_eval *ev, const char *name, json_t *dot, json_t **out);

/* ---- values (value.c) -------------------------------------------------------------------- */

/* Go's truth: false, 0, nil and empty strings, lists and maps are false. */
bool tmpl_truth(const json_t *v);
/* Appends v as Go's fmt %v prints it (nil as "<no value>"). */
void tmpl_print(struct buf *out, const json_t *v);
/* Go's strings.TrimSpace over ASCII: moves *s and shortens *n past the spaces around it. */
void tmpl_trim_space(const char **s, size_t *n);
/* The Go type name used in error messages: string, int, float64, bool, []interface {}, ... */
const char *tmpl_type_name(const json_t *v);
/* Go's strconv.Quote of s. */
void tmpl_quote(struct buf *out, const char *s, size_t len);
/*
 * Go's fmt.Sprintf for the verbs templates use (%s %d %v %q %f %x %b %c %U %t %T %% with flags,
 * width and precision); a mismatched verb prints "%!d(string=abc)" as Go does.
 */
void tmpl_sprintf(struct buf *out, const char *fmt, size_t fmtlen, json_t *const *args,
                  size_t nargs);
/* Go's strconv.ParseInt(s, base, 64) without underscores (funcs_yaml.c): an optional sign,
 * then digits; base 0 reads a 0x, 0o, 0b or 0 prefix. */
bool tmpl_go_parse_int(const char *s, size_t n, int base, long long *out);
/* Go's fmt.Sprint of args (fmt.Sprintln with ln: spaces between all, a newline after). */
void tmpl_sprint(struct buf *out, json_t *const *args, size_t nargs, bool ln);
/* Go's unicode.IsPrint (unicode_tables.c, generated): letters, marks, numbers, punctuation,
 * symbols and the ASCII space. */
bool tmpl_unicode_is_print(uint32_t r);
/*
 * What a rune above ASCII is to toTitle's word breaking (unicode_tables.c, generated): a cased
 * letter (starts or continues a word), another word rune (continues one: digits, marks, uncased
 * letters), a mid-word rune (once between letters) or a break.
 */
enum tmpl_word_class { TMPL_WORD_BREAK, TMPL_WORD_LETTER, TMPL_WORD_NEUTRAL, TMPL_WORD_MID };
enum tmpl_word_class tmpl_unicode_word_class(uint32_t r);
/* Sorted keys of an object (pointers borrowed from it); *n receives the count. Free the array. */
const char **tmpl_sorted_keys(const json_t *obj, size_t *n);
/*
 * Re-inserts obj's members in key order, and with deep those of every object below it (through
 * arrays too), so that it is written as Go writes a map: encoding/json sorts map keys. For maps
 * a function builds; the registry's objects are structs, whose order is their fields'.
 */
void tmpl_sort_map(json_t *obj, bool deep);

#endif
