#include <stdio.h>

#include "cli/cli.h"

int cli_version(int argc, char **argv)
{
    printf("mesh v%s\n", MESH_VERSION);
    return 0;
}
