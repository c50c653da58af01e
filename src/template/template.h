/* `mesh template`: consul-template's job (docs/template.md). */
#ifndef MESH_TEMPLATE_TEMPLATE_H
#define MESH_TEMPLATE_TEMPLATE_H

/* argv[0] is "template". Returns the process exit status. */
int template_main(int argc, char **argv);

#endif
