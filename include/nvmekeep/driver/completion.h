/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: completions of commands, and how an NVMe status maps to
 * the errno a caller sees. Part of nvmekeep/driver.h (include that).
 *
 * ---------------------------------------------------------------------------
 * Completion, errors and status
 * ---------------------------------------------------------------------------
 *  A completion carries a negative errno and the NVMe status field (without
 *  the phase tag, see NVME_CQE_SF in spec.h). The mapping, applied whatever
 *  the DNR/More/CRD bits are (nvmk_status_to_errno):
 *
 *   status (SCT/SC)                                  err
 *   0/00 Success                                     0
 *   0/01 Invalid Opcode                              -EOPNOTSUPP
 *   0/02 Invalid Field, 0/13 PRP Offset Invalid      -EINVAL
 *   0/07 Abort Requested, 0/08 Aborted SQ Deletion   -ECANCELED (-ETIMEDOUT when
 *                                                    the driver aborted it)
 *   0/0B Invalid Namespace                           -ENODEV
 *   0/15 Operation Denied, 2/86 Access Denied        -EACCES
 *   0/1D Sanitize In Progress, 0/84 Format In Prog.  -EBUSY
 *   0/20 NS Write Protected, 1/82 Read Only          -EROFS
 *   0/21 Interrupted, 0/22 Transient Transport,
 *   0/82 NS Not Ready, 3/03 ANA Transition           -EAGAIN
 *   0/80 LBA Out of Range                            -ERANGE
 *   0/81 Capacity Exceeded                           -ENOSPC
 *   0/83 Reservation Conflict                        -EBADE (as Linux' block
 *                                                    layer reports it)
 *   1/00-02,08,09,0A,0C Invalid queue/vector/log/format, 1/80 Conflicting Attributes
 *                                                    -EINVAL
 *   1/03 Abort Limit, 1/05 AER Limit                 -EBUSY
 *   1/83 Command Size Limit Exceeded                 -E2BIG
 *   2/85 Compare Failure                             -EILSEQ
 *   3/71 Host Aborted Command                        -ECANCELED
 *   anything else (data transfer, internal, media)   -EIO
 *
 *  Errors the driver produces itself keep status = 3/71 (Host Aborted
 *  Command, Base 2.0 Figure 97) so "0" always means the device said success:
 *   -ETIMEDOUT  the command timed out, or was lost by the controller reset
 *               that recovery performed (recovery fails, it never retries;
 *               callers retry).
 *   -EIO        the controller failed: fatal status (CSTS.CFS) or it sent an
 *               invalid completion (bad CID, phase, SQ head, duplicate).
 *   -ENODEV     the controller was removed (registers read all ones), or the
 *               namespace was removed (then the device is not touched).
 *   -ECANCELED  the qpair was destroyed with the command outstanding.
 *  Every submitted command completes exactly once. A submit function that
 *  returns an error has not queued anything and will not call the callback.
 *  Once the controller failed, every call that needs the device (submit,
 *  process, wait, the synchronous wrappers, qpair create, namespace open,
 *  admin commands, reset) returns nvmk_ctrl_failed()'s error (-EIO or
 *  -ENODEV) without blocking, and nvmk_ctrl_get_qpair returns NULL.
 */
#ifndef NVMEKEEP_DRIVER_COMPLETION_H
#define NVMEKEEP_DRIVER_COMPLETION_H

#include <stddef.h>
#include <stdint.h>

struct nvmk_cpl {
	int err;	 /* 0 or negative errno (table above) */
	uint16_t status; /* NVMe status field without phase; 0 = success */
	uint32_t dw0;	 /* command specific (CQE DW0) */
};

typedef void (*nvmk_cpl_fn)(void *cb_arg, const struct nvmk_cpl *cpl);

/** nvmk_status_to_errno - the errno of an NVMe status field (table above). */
int nvmk_status_to_errno(uint16_t status);
/**
 * nvmk_status_str - a log string for a status field, e.g.
 * "LBA Out of Range (0/80h)". Writes into @buf (at least 64 bytes) and
 * returns it.
 */
const char *nvmk_status_str(uint16_t status, char *buf, size_t len);
/** nvmk_last_status - the NVMe status of the last synchronous wrapper call of
 *  the calling thread (nvmk_ns_read, ..., admin passthrough). */
uint16_t nvmk_last_status(void);

#endif /* NVMEKEEP_DRIVER_COMPLETION_H */
