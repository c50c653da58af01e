/*
 * What this build is: the project version (MESH_VERSION, a compile definition) and the commit
 * it was built from, written by CMake at configure time into one generated file, so a new
 * commit recompiles that file alone.
 */
#ifndef MESH_LIB_VERSION_INFO_H
#define MESH_LIB_VERSION_INFO_H

/* "0123456789ab" (12 hex digits, with "-dirty" when the tree had changes), or "unknown" when
 * the source was not a git checkout (a release tarball: set MESH_COMMIT in the environment). */
extern const char mesh_commit[];

#endif
