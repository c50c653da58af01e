/*
 * How much of a YAML document may come from aliases: go-yaml v2's budget, shared by the
 * parsers of scenario files and of consul-template's parseYAML. An alias does not copy its
 * anchor's value (both parsers share it), but whatever walks the result later does: a
 * "billion laughs" document of a few hundred bytes expands to billions of nodes there.
 */
#ifndef MESH_LIB_YAML_BUDGET_H
#define MESH_LIB_YAML_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * decoded: nodes read so far, each alias counted as the nodes its anchor stands for;
 * aliased: how many of them came through aliases. True once aliases make up more than 99% of
 * a small document (400,000 nodes or fewer), falling to 10% at 4,000,000: such a document is
 * refused ("document contains excessive aliasing", go-yaml's words) rather than expanded.
 */
bool yaml_aliasing_excessive(size_t decoded, size_t aliased);

#endif
