/* SPDX-License-Identifier: MIT */
/*
 * What makes a restore safe (issue 14), shared by ctrl.c, save.c and
 * restore.c:
 *  - owner.c: one controller per device in a process (struct
 *    nvmk_backing.ctrl_owner); across processes the VFIO group file is the
 *    lock (the kernel lets one process open it, the successor inherits it).
 *  - generation.c: the saved-state generation kept in the DMA pool's slot
 *    table, so that only the latest saved state restores, once.
 *  - restore_probe.c: after a keep-alive restore, one admin command finds a
 *    device that was reset and enabled again behind the saved state.
 */
#ifndef NVMK_DRV_SERVICING_H
#define NVMK_DRV_SERVICING_H

#include <stdbool.h>
#include <stdint.h>

#include "driver/drv.h"

/*
 * drv_owner_claim - make @ctrl the owner of its backing. Called before the
 * first register access of an open or restore.
 * Return: 0, or -EBUSY (another controller drives the device; logged).
 */
int drv_owner_claim(struct nvmk_ctrl *ctrl, const char *what);
/* drv_owner_release - drop the ownership, if @ctrl holds it (close, detach, failures). */
void drv_owner_release(struct nvmk_ctrl *ctrl);
/* drv_owner_busy - whether some controller owns @b (logs the refusal of @what). */
int drv_owner_busy(struct nvmk_backing *b, const char *what);

/*
 * Generations. A save takes the next generation (drv_gen_next), puts it in
 * the state and, once the state exists, records it as the latest
 * (drv_gen_record). A restore checks the state's generation against the
 * record before touching anything (drv_gen_check) and marks it restored at
 * its point of no return (drv_gen_consume). A fresh bring-up makes every
 * earlier state stale (drv_gen_invalidate). Without a pool nothing is
 * recorded and nothing is checked (keep-alive off on ephemeral memory: such
 * a state replays nothing, its restore is a bring-up).
 */
uint64_t drv_gen_next(struct nvmk_backing *b); /* 0 without a pool */
int drv_gen_record(struct nvmk_backing *b, uint64_t gen);
int drv_gen_check(struct nvmk_backing *b, bool has_gen, uint64_t gen, bool keep_alive);
int drv_gen_consume(struct nvmk_backing *b, bool has_gen, uint64_t gen);
void drv_gen_invalidate(struct nvmk_backing *b);

/*
 * drv_restore_probe - is the device still running the restored admin queue?
 * One Get Features (Number of Queues) at the restored tail, bounded by
 * DRV_RESTORE_PROBE_MS. Admin lock held, admin thread not started.
 * Return: 0 (the completion came where and as expected), 1 (the device was
 * reset behind the state: no completion, or one that does not fit), or a
 * negative errno when the device is gone or failed.
 */
#define DRV_RESTORE_PROBE_MS 1000u

/*
 * drv_adopt_abandon - the backing offers a previous driver's controller to
 * adopt (nvmk_backing_device_view) but a bring-up is wanted: reset the
 * function, drop the view (the previous driver's maps nobody took back are
 * unmapped) and give that driver's pool blocks back (adopt.c).
 */
void drv_adopt_abandon(struct nvmk_backing *b);
int drv_restore_probe(struct nvmk_ctrl *ctrl);

#endif /* NVMK_DRV_SERVICING_H */
