/*
 * CRC-32 as zlib, PNG and Ethernet compute it (reflected polynomial 0xEDB88320, initial value
 * and final XOR 0xFFFFFFFF), so a value can be checked with any standard tool. Used to detect
 * torn or corrupt records in the registry's journal; it is not a defence against tampering.
 */
#ifndef MESH_LIB_CRC32_H
#define MESH_LIB_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC over len more bytes of data: start with crc = 0 and feed the result of one
 * call into the next, so crc32_update(crc32_update(0, a, n), b, m) equals the CRC of a then b.
 */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

/* The CRC-32 of len bytes of data (crc32_update from 0). */
uint32_t crc32_compute(const void *data, size_t len);

#endif
