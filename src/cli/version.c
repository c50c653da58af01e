/* mesh version: what a bug report needs: the version, the commit and the libraries in use. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#include "cli/cli.h"
#include "lib/version_info.h"

int cli_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
                     strcmp(argv[1], "--help") == 0)) {
        printf("Usage: mesh version\n\n"
               "  Prints the version, the commit it was built from and the versions of the\n"
               "  libraries it runs with (as loaded now, which may be newer than at build).\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "mesh version: unexpected argument \"%s\"\n", argv[1]);
        return 2;
    }
    printf("mesh v%s\n", MESH_VERSION);
    printf("commit: %s\n", mesh_commit);
    printf("libraries: libuv %s, jansson %s, %s, libyaml %s\n", uv_version_string(),
           jansson_version_str(), OpenSSL_version(OPENSSL_VERSION), yaml_get_version_string());
    return 0;
}
