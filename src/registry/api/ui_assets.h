/*
 * The web UI's static files (src/registry/ui/), compiled into the binary by
 * cmake/embed_ui.cmake: one entry per file with its bytes, content type and a strong ETag (a
 * prefix of the file's SHA-256, quoted), so the agent serves them without touching the disk.
 */
#ifndef MESH_REGISTRY_UI_ASSETS_H
#define MESH_REGISTRY_UI_ASSETS_H

#include <stddef.h>

struct reg_ui_asset {
    const char *name; /* file name under /ui/, e.g. "app.js" */
    const unsigned char *data;
    size_t len;
    const char *content_type;
    const char *etag; /* with its quotes: "\"0123abcd...\"" */
};

extern const struct reg_ui_asset reg_ui_assets[];
extern const size_t reg_ui_assets_count;

#endif
