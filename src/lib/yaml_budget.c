/* go-yaml v2's alias budget: see yaml_budget.h. */
#include "lib/yaml_budget.h"

bool yaml_aliasing_excessive(size_t decoded, size_t aliased)
{
    double ratio = decoded <= 400000 ? 0.99
                   : decoded >= 4000000
                       ? 0.10
                       : 0.99 - 0.89 * ((double)(decoded - 400000) / (double)(4000000 - 400000));

    return aliased > 100 && decoded > 1000 && (double)aliased / (double)decoded > ratio;
}
