/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, as iSCSI and ext4 use
 * it): the checksum of every saved state and of the DMA pool's slot table.
 * Public so that programs that save their own state next to ours (the
 * daemon's service state) check it the same way.
 */
#ifndef NVMEKEEP_CRC32C_H
#define NVMEKEEP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * nvmk_crc32c - extend @crc over @len bytes at @buf.
 * Start with 0; nvmk_crc32c(nvmk_crc32c(0, a, n), b, m) equals the CRC of a
 * followed by b. The check value of "123456789" is 0xE3069283.
 */
uint32_t nvmk_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* NVMEKEEP_CRC32C_H */
