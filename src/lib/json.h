/*
 * JSON helpers on jansson. Consul clients are written in Go, whose decoder matches field names
 * case-insensitively and reports type mismatches as "json: cannot unmarshal <jsontype> into Go
 * struct field <Struct>.<Field> of type <gotype>"; these helpers do the same so that a bad
 * request gets Consul's 400 text.
 */
#ifndef MESH_LIB_JSON_H
#define MESH_LIB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

/*
 * Member of obj whose name equals key ignoring ASCII case (an exact match wins). Also matches
 * with underscores removed on both sides when snake is true ("deregister_critical_service_after"
 * matches "DeregisterCriticalServiceAfter"). Borrowed reference; NULL when absent or obj is not
 * an object.
 */
json_t *json_iget(const json_t *obj, const char *key);
json_t *json_iget_snake(const json_t *obj, const char *key);

/*
 * Name of a value's JSON type as Go prints it: "string", "number", "bool", "array", "object"
 * ("null" for null). v must not be NULL.
 */
const char *json_type_name(const json_t *v);

/*
 * Typed field readers. Each looks up `key` (case-insensitive, snake-case aliases allowed) in obj.
 * Absent or null: returns 0 and leaves *out untouched. Present with the right type: sets *out,
 * returns 0. Wrong type: returns -EINVAL, leaves *out untouched and sets e (may be NULL) to Go's
 * message, e.g. "json: cannot unmarshal string into Go struct field ServiceDefinition.Port of
 * type int": `where` is the text after "field ". The Go type printed is string, bool, int,
 * "map[string]interface {}" (objects), "[]interface {}" (arrays) or time.Duration; a `where`
 * ending in ":<gotype>" overrides it ("ServiceDefinition.Check:structs.CheckType" prints
 * "... field ServiceDefinition.Check of type structs.CheckType"). A non-integral number for an
 * int prints as Go does: "cannot unmarshal number 1.5 into ...". Strings are borrowed from obj.
 */
int json_read_string(const json_t *obj, const char *key, const char *where, const char **out,
                     struct err *e);
int json_read_bool(const json_t *obj, const char *key, const char *where, bool *out, struct err *e);
int json_read_int(const json_t *obj, const char *key, const char *where, int64_t *out,
                  struct err *e);
/* An object or array: type-checked only, returned borrowed. */
int json_read_object(const json_t *obj, const char *key, const char *where, json_t **out,
                     struct err *e);
int json_read_array(const json_t *obj, const char *key, const char *where, json_t **out,
                    struct err *e);
/*
 * A duration written either as a Go duration string ("10s") or as an integer of nanoseconds
 * (taken as is, even negative: range checks are the caller's). A bad string (including a
 * negative one, which duration_parse refuses) gives "time: invalid duration "<s>"" as Go does;
 * a bool, real, object or array gives the type error above with type time.Duration.
 */
int json_read_duration(const json_t *obj, const char *key, const char *where, int64_t *ns,
                       struct err *e);

/*
 * Every JSON writer in meshkit dumps with this flag: 15 significant digits print a value rounded
 * by json_real_round as it was meant (7.041, not jansson's default 17 digits'
 * 7.0409999999999995) and still keep more precision than anything meshkit measures.
 */
#define JSON_MESH_REAL_PRECISION JSON_REAL_PRECISION(15)

/*
 * A JSON real of v rounded to a multiple of unit: 0.001 keeps milliseconds of a value in seconds,
 * 0.1 a tenth of a percentage. A non-finite v gives 0. unit must be positive. New reference.
 */
json_t *json_real_round(double v, double unit);

/*
 * Serialises v (any type) and appends to out: compact like Go's json.Marshal, or with a 2-space
 * indent and a trailing newline when pretty (json.MarshalIndent plus the newline Consul's
 * ?pretty adds). Object members come out in insertion order, reals with
 * JSON_MESH_REAL_PRECISION. A value jansson cannot encode
 * (invalid UTF-8 from a _nocheck constructor, NaN) is written as null.
 */
void json_append(struct buf *out, const json_t *v, bool pretty);

/*
 * A JSON string of s ("" for NULL). Never returns NULL: invalid UTF-8 bytes become U+FFFD, as Go's
 * encoder does, and out-of-memory aborts. The caller owns the new reference.
 */
json_t *json_str_or_empty(const char *s);

/*
 * How deeply arrays and objects nest in JSON text (0 for a scalar), counted without parsing: a
 * cheap check before jansson's parser, which refuses documents deeper than
 * JSON_PARSER_MAX_DEPTH (2048). Brackets inside strings do not count. Works on any bytes; for
 * malformed text the count is what the brackets say.
 */
size_t json_text_depth(const char *text, size_t len);

#endif
