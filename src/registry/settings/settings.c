#include "registry/settings/settings.h"

#include <string.h>

void reg_settings_acl(const struct reg_settings *s, struct reg_acl_settings *out)
{
    *out = (struct reg_acl_settings){
        .enabled = s->acl_enabled,
        .default_allow = !s->acl_default_policy || strcmp(s->acl_default_policy, "deny") != 0,
        .initial_management = s->acl_initial_management,
    };
}
