/*
** crc32: the CRC-32 of IEEE 802.3 (polynomial 0xEDB88320 reflected), the
** same value as zlib's crc32() and the `crc32` of PNG, gzip and zip.
** Used to check model files (nlp/model.h).
*/
#ifndef NLP_CRC32_H
#define NLP_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*
** Continues a CRC over n more bytes: start with crc = 0, feed the result of
** one call into the next.  nlp_crc32(0, "123456789", 9) == 0xCBF43926.
*/
uint32_t nlp_crc32(uint32_t crc, const void *buf, size_t n);

/*
** Continues a CRC over n 32-bit values taken as little-endian bytes, so a
** check of an id array is the same on every machine.
*/
uint32_t nlp_crc32_le32(uint32_t crc, const int32_t *v, size_t n);

#endif
