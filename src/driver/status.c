// SPDX-License-Identifier: MIT
/*
 * NVMe status field -> negative errno (the table in driver.h) and status
 * strings for log lines ("LBA Out of Range (0/80h)"). Status codes from
 * Base 2.0 Figures 94-97 and NVM-CS 1.0 Figures 27-29.
 */
#include <errno.h>
#include <stdio.h>

#include "driver/drv.h"

int nvmk_status_to_errno(uint16_t sf)
{
	unsigned sct = NVME_SF_SCT(sf), sc = NVME_SF_SC(sf);

	if (sct == NVME_SCT_GENERIC && sc == NVME_SC_SUCCESS)
		return 0;
	switch (sct) {
	case NVME_SCT_GENERIC:
		switch (sc) {
		case NVME_SC_INVALID_OPCODE:
			return -EOPNOTSUPP;
		case NVME_SC_INVALID_FIELD:
		case NVME_SC_PRP_INVALID_OFFSET:
			return -EINVAL;
		case NVME_SC_ABORT_REQ:
		case NVME_SC_ABORT_SQ_DELETED:
			return -ECANCELED;
		case NVME_SC_INVALID_NS:
			return -ENODEV;
		case NVME_SC_OP_DENIED:
			return -EACCES;
		case NVME_SC_SANITIZE_IN_PROGRESS:
		case NVME_SC_FORMAT_IN_PROGRESS:
			return -EBUSY;
		case NVME_SC_NS_WRITE_PROTECTED:
			return -EROFS;
		case NVME_SC_CMD_INTERRUPTED:
		case NVME_SC_TRANSIENT_TRANSPORT:
		case NVME_SC_NS_NOT_READY:
			return -EAGAIN;
		case NVME_SC_LBA_RANGE:
			return -ERANGE;
		case NVME_SC_CAP_EXCEEDED:
			return -ENOSPC;
		case NVME_SC_RESERVATION_CONFLICT:
			return -EBADE;
		default:
			return -EIO;
		}
	case NVME_SCT_CMD_SPECIFIC:
		switch (sc) {
		case NVME_SC_CQ_INVALID:
		case NVME_SC_QID_INVALID:
		case NVME_SC_QUEUE_SIZE:
		case NVME_SC_INVALID_VECTOR:
		case NVME_SC_INVALID_LOG_PAGE:
		case NVME_SC_INVALID_FORMAT:
		case NVME_SC_INVALID_QUEUE_DELETION:
		case NVME_SC_CONFLICTING_ATTRS:
			return -EINVAL;
		case NVME_SC_ABORT_LIMIT:
		case NVME_SC_AER_LIMIT:
			return -EBUSY;
		case NVME_SC_READ_ONLY:
			return -EROFS;
		case NVME_SC_CMD_SIZE_LIMIT:
			return -E2BIG;
		default:
			return -EIO;
		}
	case NVME_SCT_MEDIA:
		switch (sc) {
		case NVME_SC_COMPARE_FAILED:
			return -EILSEQ;
		case NVME_SC_ACCESS_DENIED:
			return -EACCES;
		default:
			return -EIO;
		}
	case NVME_SCT_PATH:
		switch (sc) {
		case NVME_SC_ANA_TRANSITION:
			return -EAGAIN;
		case NVME_SC_HOST_ABORTED_CMD:
			return -ECANCELED;
		default:
			return -EIO;
		}
	default:
		return -EIO;
	}
}

struct status_name {
	uint16_t sf;
	const char *name;
};

static const struct status_name status_names[] = {
    {NVME_SF(0, 0x00), "Success"},
    {NVME_SF(0, 0x01), "Invalid Command Opcode"},
    {NVME_SF(0, 0x02), "Invalid Field in Command"},
    {NVME_SF(0, 0x03), "Command ID Conflict"},
    {NVME_SF(0, 0x04), "Data Transfer Error"},
    {NVME_SF(0, 0x05), "Commands Aborted due to Power Loss Notification"},
    {NVME_SF(0, 0x06), "Internal Error"},
    {NVME_SF(0, 0x07), "Command Abort Requested"},
    {NVME_SF(0, 0x08), "Command Aborted due to SQ Deletion"},
    {NVME_SF(0, 0x09), "Command Aborted due to Failed Fused Command"},
    {NVME_SF(0, 0x0a), "Command Aborted due to Missing Fused Command"},
    {NVME_SF(0, 0x0b), "Invalid Namespace or Format"},
    {NVME_SF(0, 0x0c), "Command Sequence Error"},
    {NVME_SF(0, 0x13), "PRP Offset Invalid"},
    {NVME_SF(0, 0x15), "Operation Denied"},
    {NVME_SF(0, 0x1d), "Sanitize In Progress"},
    {NVME_SF(0, 0x20), "Namespace is Write Protected"},
    {NVME_SF(0, 0x21), "Command Interrupted"},
    {NVME_SF(0, 0x22), "Transient Transport Error"},
    {NVME_SF(0, 0x80), "LBA Out of Range"},
    {NVME_SF(0, 0x81), "Capacity Exceeded"},
    {NVME_SF(0, 0x82), "Namespace Not Ready"},
    {NVME_SF(0, 0x83), "Reservation Conflict"},
    {NVME_SF(0, 0x84), "Format In Progress"},
    {NVME_SF(1, 0x00), "Completion Queue Invalid"},
    {NVME_SF(1, 0x01), "Invalid Queue Identifier"},
    {NVME_SF(1, 0x02), "Invalid Queue Size"},
    {NVME_SF(1, 0x03), "Abort Command Limit Exceeded"},
    {NVME_SF(1, 0x05), "Asynchronous Event Request Limit Exceeded"},
    {NVME_SF(1, 0x08), "Invalid Interrupt Vector"},
    {NVME_SF(1, 0x09), "Invalid Log Page"},
    {NVME_SF(1, 0x0a), "Invalid Format"},
    {NVME_SF(1, 0x0c), "Invalid Queue Deletion"},
    {NVME_SF(1, 0x0d), "Feature Identifier Not Saveable"},
    {NVME_SF(1, 0x0e), "Feature Not Changeable"},
    {NVME_SF(1, 0x0f), "Feature Not Namespace Specific"},
    {NVME_SF(1, 0x80), "Conflicting Attributes"},
    {NVME_SF(1, 0x81), "Invalid Protection Information"},
    {NVME_SF(1, 0x82), "Attempted Write to Read Only Range"},
    {NVME_SF(1, 0x83), "Command Size Limit Exceeded"},
    {NVME_SF(2, 0x80), "Write Fault"},
    {NVME_SF(2, 0x81), "Unrecovered Read Error"},
    {NVME_SF(2, 0x82), "End-to-end Guard Check Error"},
    {NVME_SF(2, 0x83), "End-to-end Application Tag Check Error"},
    {NVME_SF(2, 0x84), "End-to-end Reference Tag Check Error"},
    {NVME_SF(2, 0x85), "Compare Failure"},
    {NVME_SF(2, 0x86), "Access Denied"},
    {NVME_SF(2, 0x87), "Deallocated or Unwritten Logical Block"},
    {NVME_SF(3, 0x00), "Internal Path Error"},
    {NVME_SF(3, 0x01), "Asymmetric Access Persistent Loss"},
    {NVME_SF(3, 0x02), "Asymmetric Access Inaccessible"},
    {NVME_SF(3, 0x03), "Asymmetric Access Transition"},
    {NVME_SF(3, 0x60), "Controller Pathing Error"},
    {NVME_SF(3, 0x70), "Host Pathing Error"},
    {NVME_SF(3, 0x71), "Command Aborted By Host"},
};

const char *nvmk_status_str(uint16_t sf, char *buf, size_t len)
{
	uint16_t key = NVME_SF(NVME_SF_SCT(sf), NVME_SF_SC(sf));
	const char *name = "Unknown Status";

	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (status_names[i].sf == key) {
			name = status_names[i].name;
			break;
		}
	snprintf(buf, len, "%s (%x/%02xh)%s", name, NVME_SF_SCT(sf), NVME_SF_SC(sf),
		 (sf & NVME_SF_DNR) ? " DNR" : "");
	return buf;
}

static __thread uint16_t drv_last_status;

uint16_t nvmk_last_status(void)
{
	return drv_last_status;
}

void drv_set_last_status(uint16_t sf)
{
	drv_last_status = sf;
}
