/*
 * ACL tokens on client agents. A client agent holds no tokens or policies: it asks a server
 * what a token may do (GET /v1/internal/mesh/acl/resolve with the token) and keeps the answer
 * for 30 s, as Consul's token_ttl. When no server answers, an expired answer is still used
 * (Consul's default down_policy, extend-cache); a token never resolved is then refused.
 */
#ifndef MESH_REGISTRY_ACL_CLIENT_H
#define MESH_REGISTRY_ACL_CLIENT_H

#include "registry/state/acl.h"

struct reg_api_call;
struct reg_agent;
struct reg_acl_cache;

struct reg_acl_cache *reg_acl_cache_new(struct reg_agent *a);
/* Cancels fetches in flight (their calls are answered 500) and frees the cache. */
void reg_acl_cache_free(struct reg_acl_cache *ac);

#define REG_ACL_CACHE_STALE 1

/*
 * Fills authz for secret (NULL or "": anonymous) from the cache. Returns 0; REG_ACL_CACHE_STALE
 * when authz is filled from an answer older than the TTL (usable, but fetch again when you
 * can); -ENOENT for a token the servers do not know; or -EAGAIN when nothing is cached (fetch
 * first). authz borrows the cache's rules: valid until the cache next stores that token.
 */
int reg_acl_cache_lookup(struct reg_acl_cache *ac, const char *secret, struct reg_acl_authz *authz);

/*
 * Asks a server about secret, then calls resume(c); on failure with nothing cached, answers c
 * itself (403 "ACL not found"). The call is taken over until then; if its client goes away,
 * the call is freed and resume is not called.
 */
void reg_acl_cache_fetch(struct reg_acl_cache *ac, struct reg_api_call *c, const char *secret,
                         void (*resume)(struct reg_api_call *c));

#endif
