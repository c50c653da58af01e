/*
 * ACLs, Consul's model (a subset): policies hold rules written in HCL or JSON
 * (`key_prefix "app/" { policy = "write" }`, `operator = "read"`), tokens link policies, and an
 * authorizer built from a token answers "may this token read/write that resource?".
 *
 * Rule precedence, as Consul's radix-tree authorizer: an exact rule beats any prefix rule, the
 * longest matching prefix beats shorter ones, and among rules for the same name (from several
 * policies) deny wins, else the most permissive. When no rule matches, the agent's default
 * policy (allow or deny) decides, except for `acl`, which only explicit rules or a management
 * token grant. Names compare case-sensitively.
 *
 * The HTTP side (a call's token, its authorizer, Consul's 403 texts) is api/api_acl.h.
 */
#ifndef MESH_REGISTRY_ACL_H
#define MESH_REGISTRY_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lib/buf.h"
#include "lib/err.h"

enum reg_acl_resource {
    REG_ACL_RES_NONE = 0, /* no permission needed */
    REG_ACL_RES_AGENT,
    REG_ACL_RES_NODE,
    REG_ACL_RES_SERVICE,
    REG_ACL_RES_KEY,
    REG_ACL_RES_SESSION,
    REG_ACL_RES_EVENT,
    REG_ACL_RES_OPERATOR, /* unnamed */
    REG_ACL_RES_ACL,      /* unnamed */
    /* count sentinel */
    REG_ACL_RES_COUNT
};

enum reg_acl_access {
    REG_ACL_ACCESS_READ = 0,
    REG_ACL_ACCESS_LIST, /* key only */
    REG_ACL_ACCESS_WRITE,
};

/* A rule's policy. Ordered by permissiveness, except deny, which wins any tie. */
enum reg_acl_level {
    REG_ACL_LEVEL_UNSET = 0,
    REG_ACL_LEVEL_DENY,
    REG_ACL_LEVEL_READ,
    REG_ACL_LEVEL_LIST,
    REG_ACL_LEVEL_WRITE,
};

struct reg_acl_rule {
    enum reg_acl_resource res;
    bool prefix; /* key_prefix, service_prefix, ...; unnamed resources are prefix "" */
    char *name;  /* owned */
    enum reg_acl_level level;
};

struct reg_acl_rules {
    struct reg_acl_rule *v; /* owned */
    size_t n;
};

/*
 * Parses a policy's Rules (HCL subset or JSON; empty text is no rules) into out, which the
 * caller frees with reg_acl_rules_free even on failure. Returns 0, or -EINVAL with e set.
 */
int reg_acl_rules_parse(const char *text, struct reg_acl_rules *out, struct err *e);
void reg_acl_rules_free(struct reg_acl_rules *r);

/* "key", "service", ... as in permission names ("key:write"). */
const char *reg_acl_resource_name(enum reg_acl_resource res);
const char *reg_acl_access_name(enum reg_acl_access acc);

/* What one resolved token may do. Pointers are borrowed from the state they came from. */
struct reg_acl_authz {
    bool enabled;       /* false: everything is allowed */
    bool management;    /* a global-management token: everything is allowed */
    bool default_allow; /* the agent's acl.default_policy */
    const char *accessor_id;
    const struct reg_acl_rules **rules; /* heap array of borrowed rule sets */
    size_t nrules;
};

/* The decision for one request; name is ignored for unnamed resources (operator, acl). */
bool reg_acl_allowed(const struct reg_acl_authz *a, enum reg_acl_resource res, const char *name,
                     enum reg_acl_access acc);
/* As reg_acl_allowed, for every name that starts with prefix: a recursive delete needs write on
 * all of them, so a rule under the prefix that grants less refuses it (Consul's
 * KeyWritePrefix). */
bool reg_acl_allowed_subtree(const struct reg_acl_authz *a, enum reg_acl_resource res,
                             const char *prefix, enum reg_acl_access acc);
/* Frees the rules array (not the rule sets) and zeroes a. */
void reg_acl_authz_free(struct reg_acl_authz *a);

/* Consul's text: Permission denied: token with AccessorID '<id>' lacks permission 'key:write'
 * on "foo" (no 'on ...' for unnamed resources). Appends to out. */
void reg_acl_denied_text(const struct reg_acl_authz *a, enum reg_acl_resource res, const char *name,
                         enum reg_acl_access acc, struct buf *out);

/* The current time as Consul prints CreateTime (RFC 3339, nanoseconds, UTC). */
void reg_acl_now_rfc3339(char out[40]);

/* ---- resolution against the replicated state (acl.c) ---- */

struct reg_state;

/* What the agent's configuration says about ACLs: the only settings resolution depends on. */
struct reg_acl_settings {
    bool enabled;                   /* false: everything is allowed */
    bool default_allow;             /* acl.default_policy is not "deny" */
    const char *initial_management; /* the secret of the bootstrap token, may be NULL; borrowed */
};

/*
 * Builds the authorizer of secret (NULL or "": the anonymous token) into a (freed first).
 * With ACLs disabled, a allows everything. Returns 0, or -ENOENT for an unknown secret
 * ("ACL not found"); a then denies everything.
 */
int reg_acl_resolve(const struct reg_state *st, const struct reg_acl_settings *set,
                    const char *secret, struct reg_acl_authz *a);

/*
 * Creates the built-in objects when ACLs are enabled and they are missing: the
 * global-management policy, the anonymous token, and the initial management token of the
 * settings. Writes go through the state (journaled). Idempotent.
 */
void reg_acl_state_ensure(struct reg_state *st, const struct reg_acl_settings *set);

#endif
