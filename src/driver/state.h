/* SPDX-License-Identifier: MIT */
/*
 * Saved controller state: the protobuf-c messages of ctrl_state.proto, the
 * envelope (format version + CRC32C) and the validator that refuses a state
 * before anything acts on it. Used by save.c and restore.c only.
 */
#ifndef NVMK_DRV_STATE_H
#define NVMK_DRV_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ctrl_state.pb-c.h"

/* CRC32C (Castagnoli, reflected 0x82F63B78), as iSCSI and ext4 use it. */
uint32_t drv_crc32c(const void *buf, size_t len);

/* Serialise @st into an envelope of the current format. *@blob is malloc'ed. */
int drv_state_pack(const Nvmk__CtrlState *st, void **blob, size_t *len);

/*
 * Decode and validate: envelope, version, checksum, payload, then every
 * field for internal consistency (nothing about the device: the caller
 * checks that). On success *@out is the state (free with
 * nvmk__ctrl_state__free_unpacked(*out, NULL)). @err receives the reason.
 * Return: 0, -EBADMSG, -EPROTONOSUPPORT, -ENOMEM.
 */
int drv_state_unpack(const void *blob, size_t len, Nvmk__CtrlState **out, char *err, size_t errlen);

/* Tracker geometry the driver derives from a queue depth (queue.c does the same). */
void drv_state_trk_geometry(uint32_t depth, uint32_t *ntrk, uint8_t *shift, uint16_t *mask);

#endif /* NVMK_DRV_STATE_H */
