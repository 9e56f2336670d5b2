/* SPDX-License-Identifier: MIT */
/*
 * NVMe specification structures, registers, opcodes and status codes.
 *
 * Everything here follows the NVM Express Base Specification, Revision 2.0
 * ("Base 2.0") and the NVM Command Set Specification 1.0 ("NVM-CS 1.0").
 * All multi-byte fields are little endian on the wire; nvmekeep only builds
 * for little-endian hosts (asserted below), so structures are used in place.
 *
 * Every structure carries _Static_assert checks on its size and on the
 * offsets that the driver and the emulator depend on.
 */
#ifndef NVMEKEEP_SPEC_H
#define NVMEKEEP_SPEC_H

#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "nvmekeep uses NVMe structures in place: little-endian hosts only");

#define NVME_STATIC_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " size")
#define NVME_STATIC_OFF(type, field, off)                                                          \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " offset")

/* ------------------------------------------------------------------------ */
/* Controller registers (Base 2.0, 3.1.3 "Controller Properties")           */
/* ------------------------------------------------------------------------ */

enum nvme_reg {
	NVME_REG_CAP = 0x00,     /* Controller Capabilities, 64 bit */
	NVME_REG_VS = 0x08,      /* Version */
	NVME_REG_INTMS = 0x0c,   /* Interrupt Mask Set */
	NVME_REG_INTMC = 0x10,   /* Interrupt Mask Clear */
	NVME_REG_CC = 0x14,      /* Controller Configuration */
	NVME_REG_CSTS = 0x1c,    /* Controller Status */
	NVME_REG_NSSR = 0x20,    /* NVM Subsystem Reset */
	NVME_REG_AQA = 0x24,     /* Admin Queue Attributes */
	NVME_REG_ASQ = 0x28,     /* Admin SQ Base Address, 64 bit */
	NVME_REG_ACQ = 0x30,     /* Admin CQ Base Address, 64 bit */
	NVME_REG_CMBLOC = 0x38,  /* Controller Memory Buffer Location */
	NVME_REG_CMBSZ = 0x3c,   /* Controller Memory Buffer Size */
	NVME_REG_BPINFO = 0x40,  /* Boot Partition Information */
	NVME_REG_CRTO = 0x68,    /* Controller Ready Timeouts */
	NVME_REG_DBS = 0x1000,   /* first doorbell (SQ0TDBL) */
};

/* CAP, Base 2.0 3.1.3.1 */
#define NVME_CAP_MQES(cap) ((uint32_t)((cap) & 0xffff)) /* 0's based */
#define NVME_CAP_CQR(cap) ((uint32_t)(((cap) >> 16) & 0x1))
#define NVME_CAP_AMS(cap) ((uint32_t)(((cap) >> 17) & 0x3))
#define NVME_CAP_TO(cap) ((uint32_t)(((cap) >> 24) & 0xff)) /* 500 ms units */
#define NVME_CAP_DSTRD(cap) ((uint32_t)(((cap) >> 32) & 0xf))
#define NVME_CAP_NSSRS(cap) ((uint32_t)(((cap) >> 36) & 0x1))
#define NVME_CAP_CSS(cap) ((uint32_t)(((cap) >> 37) & 0xff))
#define NVME_CAP_BPS(cap) ((uint32_t)(((cap) >> 45) & 0x1))
#define NVME_CAP_MPSMIN(cap) ((uint32_t)(((cap) >> 48) & 0xf))
#define NVME_CAP_MPSMAX(cap) ((uint32_t)(((cap) >> 52) & 0xf))
#define NVME_CAP_CMBS(cap) ((uint32_t)(((cap) >> 57) & 0x1))

#define NVME_CAP_SET_MQES(v) ((uint64_t)((v) & 0xffff))
#define NVME_CAP_SET_CQR(v) ((uint64_t)((v) & 0x1) << 16)
#define NVME_CAP_SET_TO(v) ((uint64_t)((v) & 0xff) << 24)
#define NVME_CAP_SET_DSTRD(v) ((uint64_t)((v) & 0xf) << 32)
#define NVME_CAP_SET_CSS(v) ((uint64_t)((v) & 0xff) << 37)
#define NVME_CAP_SET_MPSMIN(v) ((uint64_t)((v) & 0xf) << 48)
#define NVME_CAP_SET_MPSMAX(v) ((uint64_t)((v) & 0xf) << 52)

/* CAP.CSS bits, Base 2.0 3.1.3.1 */
#define NVME_CAP_CSS_NVM (1u << 0)
#define NVME_CAP_CSS_IOCS (1u << 6)
#define NVME_CAP_CSS_ADMIN_ONLY (1u << 7)

/* VS, Base 2.0 3.1.3.2 */
#define NVME_VS(mjr, mnr, ter) (((uint32_t)(mjr) << 16) | ((uint32_t)(mnr) << 8) | (uint32_t)(ter))
#define NVME_VS_MJR(vs) ((vs) >> 16)
#define NVME_VS_MNR(vs) (((vs) >> 8) & 0xff)

/* CC, Base 2.0 3.1.3.5 */
#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS(cc) (((cc) >> 4) & 0x7)
#define NVME_CC_MPS(cc) (((cc) >> 7) & 0xf)
#define NVME_CC_AMS(cc) (((cc) >> 11) & 0x7)
#define NVME_CC_SHN(cc) (((cc) >> 14) & 0x3)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xf)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xf)
#define NVME_CC_SET_CSS(v) (((uint32_t)(v) & 0x7) << 4)
#define NVME_CC_SET_MPS(v) (((uint32_t)(v) & 0xf) << 7)
#define NVME_CC_SET_AMS(v) (((uint32_t)(v) & 0x7) << 11)
#define NVME_CC_SET_SHN(v) (((uint32_t)(v) & 0x3) << 14)
#define NVME_CC_SET_IOSQES(v) (((uint32_t)(v) & 0xf) << 16)
#define NVME_CC_SET_IOCQES(v) (((uint32_t)(v) & 0xf) << 20)
#define NVME_CC_SHN_MASK (0x3u << 14)

enum nvme_cc_shn {
	NVME_CC_SHN_NONE = 0,
	NVME_CC_SHN_NORMAL = 1,
	NVME_CC_SHN_ABRUPT = 2,
};

/* CSTS, Base 2.0 3.1.3.6 */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST(csts) (((csts) >> 2) & 0x3)
#define NVME_CSTS_SET_SHST(v) (((uint32_t)(v) & 0x3) << 2)
#define NVME_CSTS_SHST_MASK (0x3u << 2)
#define NVME_CSTS_NSSRO (1u << 4)
#define NVME_CSTS_PP (1u << 5)

enum nvme_csts_shst {
	NVME_SHST_NORMAL = 0,
	NVME_SHST_OCCURRING = 1,
	NVME_SHST_COMPLETE = 2,
};

/* AQA, Base 2.0 3.1.3.8: both sizes are 0's based, 12 bits */
#define NVME_AQA_ASQS(aqa) ((aqa) & 0xfff)
#define NVME_AQA_ACQS(aqa) (((aqa) >> 16) & 0xfff)
#define NVME_AQA(asqs, acqs) (((uint32_t)(acqs) & 0xfff) << 16 | ((uint32_t)(asqs) & 0xfff))

/* Smallest admin queue the spec allows: ASQS/ACQS of 1 (two entries). */
#define NVME_AQ_MIN_ENTRIES 2
#define NVME_AQ_MAX_ENTRIES 4096

/* Doorbells, Base 2.0 3.1.3.21/22: SQyTDBL at 1000h + (2y * (4 << DSTRD)) */
static inline uint32_t nvme_sq_doorbell(uint16_t qid, uint32_t dstrd)
{
	return NVME_REG_DBS + (2u * qid) * (4u << dstrd);
}

static inline uint32_t nvme_cq_doorbell(uint16_t qid, uint32_t dstrd)
{
	return NVME_REG_DBS + (2u * qid + 1u) * (4u << dstrd);
}

/* Memory page size: 2 ^ (12 + MPS) */
#define NVME_MPS_SHIFT_BASE 12

/* ------------------------------------------------------------------------ */
/* Submission and completion queue entries (Base 2.0, 4.2 and 4.6)          */
/* ------------------------------------------------------------------------ */

/* Submission Queue Entry, Base 2.0 Figure 88 (common command format). */
struct nvme_sqe {
	uint8_t opc;     /* opcode */
	uint8_t flags;   /* FUSE bits 1:0, PSDT bits 7:6 */
	uint16_t cid;    /* command identifier */
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};
NVME_STATIC_SIZE(struct nvme_sqe, 64);
NVME_STATIC_OFF(struct nvme_sqe, cid, 2);
NVME_STATIC_OFF(struct nvme_sqe, nsid, 4);
NVME_STATIC_OFF(struct nvme_sqe, mptr, 16);
NVME_STATIC_OFF(struct nvme_sqe, prp1, 24);
NVME_STATIC_OFF(struct nvme_sqe, prp2, 32);
NVME_STATIC_OFF(struct nvme_sqe, cdw10, 40);
NVME_STATIC_OFF(struct nvme_sqe, cdw15, 60);

#define NVME_SQE_FUSE(flags) ((flags) & 0x3)
#define NVME_SQE_PSDT(flags) (((flags) >> 6) & 0x3)
#define NVME_SQES_LOG2 6

/* Completion Queue Entry, Base 2.0 Figure 90. */
struct nvme_cqe {
	uint32_t dw0;    /* command specific */
	uint32_t dw1;    /* command specific */
	uint16_t sqhd;   /* SQ head pointer */
	uint16_t sqid;   /* SQ identifier */
	uint16_t cid;    /* command identifier */
	uint16_t status; /* bit 0 phase tag, bits 15:1 status field */
};
NVME_STATIC_SIZE(struct nvme_cqe, 16);
NVME_STATIC_OFF(struct nvme_cqe, sqhd, 8);
NVME_STATIC_OFF(struct nvme_cqe, sqid, 10);
NVME_STATIC_OFF(struct nvme_cqe, cid, 12);
NVME_STATIC_OFF(struct nvme_cqe, status, 14);

#define NVME_CQES_LOG2 4

/*
 * Status field as kept by nvmekeep: the 15-bit status field of the CQE
 * (Base 2.0 Figure 92) shifted down by one, i.e. without the phase tag:
 *   bits 7:0 SC, bits 10:8 SCT, bits 12:11 CRD, bit 13 M, bit 14 DNR.
 */
#define NVME_CQE_PHASE(status) ((status) & 0x1)
#define NVME_CQE_SF(status) ((uint16_t)((status) >> 1))
#define NVME_SF_SC(sf) ((sf) & 0xff)
#define NVME_SF_SCT(sf) (((sf) >> 8) & 0x7)
#define NVME_SF_CRD(sf) (((sf) >> 11) & 0x3)
#define NVME_SF_MORE (1u << 13)
#define NVME_SF_DNR (1u << 14)
#define NVME_SF(sct, sc) ((uint16_t)((((sct) & 0x7) << 8) | ((sc) & 0xff)))
#define NVME_SF_SUCCESS 0

/* Status Code Type, Base 2.0 Figure 93 */
enum nvme_sct {
	NVME_SCT_GENERIC = 0x0,
	NVME_SCT_CMD_SPECIFIC = 0x1,
	NVME_SCT_MEDIA = 0x2,
	NVME_SCT_PATH = 0x3,
	NVME_SCT_VENDOR = 0x7,
};

/* Generic Command Status, Base 2.0 Figure 94 (and NVM-CS 1.0 Figure 27) */
enum nvme_sc_generic {
	NVME_SC_SUCCESS = 0x00,
	NVME_SC_INVALID_OPCODE = 0x01,
	NVME_SC_INVALID_FIELD = 0x02,
	NVME_SC_CID_CONFLICT = 0x03,
	NVME_SC_DATA_XFER_ERROR = 0x04,
	NVME_SC_POWER_LOSS = 0x05,
	NVME_SC_INTERNAL = 0x06,
	NVME_SC_ABORT_REQ = 0x07,
	NVME_SC_ABORT_SQ_DELETED = 0x08,
	NVME_SC_FUSED_FAIL = 0x09,
	NVME_SC_FUSED_MISSING = 0x0a,
	NVME_SC_INVALID_NS = 0x0b,
	NVME_SC_CMD_SEQ_ERROR = 0x0c,
	NVME_SC_SGL_INVALID_LAST = 0x0d,
	NVME_SC_SGL_INVALID_COUNT = 0x0e,
	NVME_SC_SGL_INVALID_DATA = 0x0f,
	NVME_SC_SGL_INVALID_METADATA = 0x10,
	NVME_SC_SGL_INVALID_TYPE = 0x11,
	NVME_SC_CMB_INVALID_USE = 0x12,
	NVME_SC_PRP_INVALID_OFFSET = 0x13,
	NVME_SC_ATOMIC_WU_EXCEEDED = 0x14,
	NVME_SC_OP_DENIED = 0x15,
	NVME_SC_SGL_INVALID_OFFSET = 0x16,
	NVME_SC_HOSTID_INCONSISTENT = 0x18,
	NVME_SC_KA_EXPIRED = 0x19,
	NVME_SC_KA_INVALID = 0x1a,
	NVME_SC_ABORT_PREEMPT = 0x1b,
	NVME_SC_SANITIZE_FAILED = 0x1c,
	NVME_SC_SANITIZE_IN_PROGRESS = 0x1d,
	NVME_SC_NS_WRITE_PROTECTED = 0x20,
	NVME_SC_CMD_INTERRUPTED = 0x21,
	NVME_SC_TRANSIENT_TRANSPORT = 0x22,
	/* NVM command set specific, generic type (NVM-CS 1.0 Figure 27) */
	NVME_SC_LBA_RANGE = 0x80,
	NVME_SC_CAP_EXCEEDED = 0x81,
	NVME_SC_NS_NOT_READY = 0x82,
	NVME_SC_RESERVATION_CONFLICT = 0x83,
	NVME_SC_FORMAT_IN_PROGRESS = 0x84,
};

/* Command Specific Status, Base 2.0 Figure 95 and NVM-CS 1.0 Figure 28 */
enum nvme_sc_cmd_specific {
	NVME_SC_CQ_INVALID = 0x00,
	NVME_SC_QID_INVALID = 0x01,
	NVME_SC_QUEUE_SIZE = 0x02,
	NVME_SC_ABORT_LIMIT = 0x03,
	NVME_SC_AER_LIMIT = 0x05,
	NVME_SC_INVALID_FW_SLOT = 0x06,
	NVME_SC_INVALID_FW_IMAGE = 0x07,
	NVME_SC_INVALID_VECTOR = 0x08,
	NVME_SC_INVALID_LOG_PAGE = 0x09,
	NVME_SC_INVALID_FORMAT = 0x0a,
	NVME_SC_INVALID_QUEUE_DELETION = 0x0c,
	NVME_SC_FEATURE_NOT_SAVEABLE = 0x0d,
	NVME_SC_FEATURE_NOT_CHANGEABLE = 0x0e,
	NVME_SC_FEATURE_NOT_PER_NS = 0x0f,
	NVME_SC_NS_INSUFFICIENT_CAP = 0x15,
	NVME_SC_NS_ID_UNAVAILABLE = 0x16,
	NVME_SC_NS_ALREADY_ATTACHED = 0x18,
	NVME_SC_NS_IS_PRIVATE = 0x19,
	NVME_SC_NS_NOT_ATTACHED = 0x1a,
	/* NVM command set, NVM-CS 1.0 Figure 28 */
	NVME_SC_CONFLICTING_ATTRS = 0x80,
	NVME_SC_INVALID_PI = 0x81,
	NVME_SC_READ_ONLY = 0x82,
	NVME_SC_CMD_SIZE_LIMIT = 0x83,
};

/* Media and Data Integrity Errors, Base 2.0 Figure 96 / NVM-CS 1.0 Figure 29 */
enum nvme_sc_media {
	NVME_SC_WRITE_FAULT = 0x80,
	NVME_SC_READ_ERROR = 0x81,
	NVME_SC_GUARD_CHECK = 0x82,
	NVME_SC_APPTAG_CHECK = 0x83,
	NVME_SC_REFTAG_CHECK = 0x84,
	NVME_SC_COMPARE_FAILED = 0x85,
	NVME_SC_ACCESS_DENIED = 0x86,
	NVME_SC_UNWRITTEN_BLOCK = 0x87,
};

/* Path Related Status, Base 2.0 Figure 97 */
enum nvme_sc_path {
	NVME_SC_INTERNAL_PATH_ERROR = 0x00,
	NVME_SC_ANA_PERSISTENT_LOSS = 0x01,
	NVME_SC_ANA_INACCESSIBLE = 0x02,
	NVME_SC_ANA_TRANSITION = 0x03,
	NVME_SC_CTRL_PATH_ERROR = 0x60,
	NVME_SC_HOST_PATH_ERROR = 0x70,
	NVME_SC_HOST_ABORTED_CMD = 0x71,
};

/* ------------------------------------------------------------------------ */
/* Opcodes                                                                  */
/* ------------------------------------------------------------------------ */

/* Admin Command Set, Base 2.0 Figure 138 */
enum nvme_admin_opcode {
	NVME_ADM_DELETE_SQ = 0x00,
	NVME_ADM_CREATE_SQ = 0x01,
	NVME_ADM_GET_LOG_PAGE = 0x02,
	NVME_ADM_DELETE_CQ = 0x04,
	NVME_ADM_CREATE_CQ = 0x05,
	NVME_ADM_IDENTIFY = 0x06,
	NVME_ADM_ABORT = 0x08,
	NVME_ADM_SET_FEATURES = 0x09,
	NVME_ADM_GET_FEATURES = 0x0a,
	NVME_ADM_ASYNC_EVENT = 0x0c,
	NVME_ADM_NS_MGMT = 0x0d,
	NVME_ADM_FW_COMMIT = 0x10,
	NVME_ADM_FW_DOWNLOAD = 0x11,
	NVME_ADM_DEV_SELF_TEST = 0x14,
	NVME_ADM_NS_ATTACH = 0x15,
	NVME_ADM_KEEP_ALIVE = 0x18,
	NVME_ADM_DIRECTIVE_SEND = 0x19,
	NVME_ADM_DIRECTIVE_RECV = 0x1a,
	NVME_ADM_VIRT_MGMT = 0x1c,
	NVME_ADM_DBBUF_CONFIG = 0x7c,
	NVME_ADM_FORMAT_NVM = 0x80,
	NVME_ADM_SECURITY_SEND = 0x81,
	NVME_ADM_SECURITY_RECV = 0x82,
	NVME_ADM_SANITIZE = 0x84,
	NVME_ADM_GET_LBA_STATUS = 0x86,
};

/* NVM Command Set, NVM-CS 1.0 Figure 17 */
enum nvme_nvm_opcode {
	NVME_CMD_FLUSH = 0x00,
	NVME_CMD_WRITE = 0x01,
	NVME_CMD_READ = 0x02,
	NVME_CMD_WRITE_UNCOR = 0x04,
	NVME_CMD_COMPARE = 0x05,
	NVME_CMD_WRITE_ZEROES = 0x08,
	NVME_CMD_DSM = 0x09,
	NVME_CMD_VERIFY = 0x0c,
	NVME_CMD_RESV_REGISTER = 0x0d,
	NVME_CMD_RESV_REPORT = 0x0e,
	NVME_CMD_RESV_ACQUIRE = 0x11,
	NVME_CMD_RESV_RELEASE = 0x15,
	NVME_CMD_COPY = 0x19,
};

/* Bits 1:0 of an opcode give the data transfer direction (Base 2.0 Figure 87). */
#define NVME_OPC_XFER(opc) ((opc) & 0x3)
enum nvme_xfer {
	NVME_XFER_NONE = 0,
	NVME_XFER_HOST_TO_CTRL = 1,
	NVME_XFER_CTRL_TO_HOST = 2,
	NVME_XFER_BIDIR = 3,
};

/* ------------------------------------------------------------------------ */
/* Admin command fields                                                     */
/* ------------------------------------------------------------------------ */

/* Create I/O CQ / SQ, Base 2.0 5.4 and 5.5 */
#define NVME_CDW10_QID(cdw10) ((uint16_t)((cdw10) & 0xffff))
#define NVME_CDW10_QSIZE(cdw10) ((uint16_t)((cdw10) >> 16)) /* 0's based */
#define NVME_CREATE_Q_CDW10(qid, qsize0) (((uint32_t)(qsize0) << 16) | (uint16_t)(qid))
#define NVME_CQ_FLAGS_PC (1u << 0)  /* physically contiguous */
#define NVME_CQ_FLAGS_IEN (1u << 1) /* interrupts enabled */
#define NVME_CQ_CDW11_IV(cdw11) ((uint16_t)((cdw11) >> 16))
#define NVME_SQ_FLAGS_PC (1u << 0)
#define NVME_SQ_CDW11_QPRIO(cdw11) (((cdw11) >> 1) & 0x3)
#define NVME_SQ_CDW11_CQID(cdw11) ((uint16_t)((cdw11) >> 16))

/* Identify, Base 2.0 5.17: CNS values (Figure 273) */
enum nvme_identify_cns {
	NVME_ID_CNS_NS = 0x00,
	NVME_ID_CNS_CTRL = 0x01,
	NVME_ID_CNS_NS_ACTIVE_LIST = 0x02,
	NVME_ID_CNS_NS_DESC_LIST = 0x03,
	NVME_ID_CNS_CSI_NS = 0x05,
	NVME_ID_CNS_CSI_CTRL = 0x06,
	NVME_ID_CNS_CSI_NS_ACTIVE_LIST = 0x07,
	NVME_ID_CNS_NS_ALLOCATED_LIST = 0x10,
	NVME_ID_CNS_NS_ALLOCATED = 0x11,
	NVME_ID_CNS_CTRL_LIST_NS = 0x12,
	NVME_ID_CNS_CTRL_LIST = 0x13,
};
#define NVME_IDENTIFY_DATA_SIZE 4096
#define NVME_ID_CDW10_CNS(cdw10) ((cdw10) & 0xff)
#define NVME_ID_CDW10_CNTID(cdw10) ((uint16_t)((cdw10) >> 16))

/* Get Log Page, Base 2.0 5.16 */
enum nvme_log_id {
	NVME_LOG_ERROR = 0x01,
	NVME_LOG_SMART = 0x02,
	NVME_LOG_FW_SLOT = 0x03,
	NVME_LOG_CHANGED_NS = 0x04,
	NVME_LOG_CMD_EFFECTS = 0x05,
	NVME_LOG_RESERVATION = 0x80,
};
#define NVME_LOG_CDW10_LID(cdw10) ((cdw10) & 0xff)
#define NVME_LOG_CDW10_LSP(cdw10) (((cdw10) >> 8) & 0x7f)
#define NVME_LOG_CDW10_RAE (1u << 15)
#define NVME_LOG_CDW10_NUMDL(cdw10) ((cdw10) >> 16)
#define NVME_LOG_CDW11_NUMDU(cdw11) ((cdw11) & 0xffff)
/* Number of dwords (0's based) split over CDW10/CDW11 */
#define NVME_LOG_CDW10(lid, numd0, rae)                                                            \
	(((uint32_t)(numd0) & 0xffff) << 16 | ((rae) ? NVME_LOG_CDW10_RAE : 0) | ((lid) & 0xff))
#define NVME_LOG_CDW11(numd0) (((uint32_t)(numd0) >> 16) & 0xffff)

/* Features, Base 2.0 5.27.1 Figure 317 */
enum nvme_feature_id {
	NVME_FEAT_ARBITRATION = 0x01,
	NVME_FEAT_POWER_MGMT = 0x02,
	NVME_FEAT_LBA_RANGE = 0x03,
	NVME_FEAT_TEMP_THRESH = 0x04,
	NVME_FEAT_ERR_RECOVERY = 0x05,
	NVME_FEAT_VOLATILE_WC = 0x06,
	NVME_FEAT_NUM_QUEUES = 0x07,
	NVME_FEAT_IRQ_COALESCE = 0x08,
	NVME_FEAT_IRQ_CONFIG = 0x09,
	NVME_FEAT_WRITE_ATOMIC = 0x0a,
	NVME_FEAT_ASYNC_EVENT = 0x0b,
	NVME_FEAT_AUTO_PST = 0x0c,
	NVME_FEAT_HOST_MEM_BUF = 0x0d,
	NVME_FEAT_TIMESTAMP = 0x0e,
	NVME_FEAT_KATO = 0x0f,
	NVME_FEAT_HOST_ID = 0x81,
	NVME_FEAT_RESV_MASK = 0x82,
	NVME_FEAT_RESV_PERSIST = 0x83,
};
#define NVME_FEAT_CDW10_FID(cdw10) ((cdw10) & 0xff)
#define NVME_FEAT_CDW10_SV (1u << 31)
#define NVME_FEAT_CDW10_SEL(cdw10) (((cdw10) >> 8) & 0x7)
/* Number of Queues (Base 2.0 5.27.1.5): NSQR 15:0, NCQR 31:16, both 0's based */
#define NVME_FEAT_NUMQ(nsq0, ncq0) (((uint32_t)(ncq0) << 16) | ((uint32_t)(nsq0) & 0xffff))
#define NVME_FEAT_NUMQ_NSQ(v) ((uint16_t)((v) & 0xffff))
#define NVME_FEAT_NUMQ_NCQ(v) ((uint16_t)((v) >> 16))
/* Volatile Write Cache: WCE bit 0 */
#define NVME_FEAT_VWC_WCE (1u << 0)
/* Interrupt Coalescing: THR 7:0 (0's based), TIME 15:8 (100 us units) */
#define NVME_FEAT_IRQC_THR(v) ((v) & 0xff)
#define NVME_FEAT_IRQC_TIME(v) (((v) >> 8) & 0xff)
/* Host Identifier: EXHID bit 0 of CDW11 selects the 128-bit form */
#define NVME_FEAT_HOSTID_EXHID (1u << 0)

/* Asynchronous Event Configuration (Base 2.0 5.27.1.7) bits */
#define NVME_AEC_SMART_MASK 0xffu
#define NVME_AEC_NS_ATTR (1u << 8)
#define NVME_AEC_FW_ACTIVATION (1u << 9)
#define NVME_AEC_TELEMETRY (1u << 10)
#define NVME_AEC_ANA_CHANGE (1u << 11)

/* Asynchronous Event Request completion DW0, Base 2.0 5.2 Figure 146 */
enum nvme_aer_type {
	NVME_AER_TYPE_ERROR = 0,
	NVME_AER_TYPE_SMART = 1,
	NVME_AER_TYPE_NOTICE = 2,
	NVME_AER_TYPE_IOCS = 6,
	NVME_AER_TYPE_VENDOR = 7,
};
enum nvme_aer_notice {
	NVME_AER_NOTICE_NS_CHANGED = 0x00,
	NVME_AER_NOTICE_FW_ACTIVATION = 0x01,
	NVME_AER_NOTICE_TELEMETRY = 0x02,
	NVME_AER_NOTICE_ANA = 0x03,
};
#define NVME_AER_DW0(type, info, lid)                                                              \
	(((uint32_t)(lid) & 0xff) << 16 | ((uint32_t)(info) & 0xff) << 8 | ((uint32_t)(type) & 0x7))
#define NVME_AER_DW0_TYPE(dw0) ((dw0) & 0x7)
#define NVME_AER_DW0_INFO(dw0) (((dw0) >> 8) & 0xff)
#define NVME_AER_DW0_LID(dw0) (((dw0) >> 16) & 0xff)

/* Abort, Base 2.0 5.1: CDW10 SQID 15:0, CID 31:16; DW0 bit 0 = 1 if not aborted */
#define NVME_ABORT_CDW10(sqid, cid) (((uint32_t)(cid) << 16) | (uint16_t)(sqid))
#define NVME_ABORT_DW0_NOT_ABORTED (1u << 0)

/* ------------------------------------------------------------------------ */
/* NVM command fields (NVM-CS 1.0, 3.2)                                     */
/* ------------------------------------------------------------------------ */

/* Read / Write / Compare / Write Zeroes CDW12 */
#define NVME_RW_NLB(cdw12) ((cdw12) & 0xffff) /* 0's based */
#define NVME_RW_DEAC (1u << 25)               /* Write Zeroes: deallocate */
#define NVME_RW_FUA (1u << 30)
#define NVME_RW_LR (1u << 31)
#define NVME_RW_PRINFO(cdw12) (((cdw12) >> 26) & 0xf)
#define NVME_MAX_NLB 65536u

/* Dataset Management, NVM-CS 1.0 3.2.3 */
#define NVME_DSM_NR(cdw10) ((cdw10) & 0xff) /* 0's based number of ranges */
#define NVME_DSM_IDR (1u << 0)
#define NVME_DSM_IDW (1u << 1)
#define NVME_DSM_AD (1u << 2)
#define NVME_DSM_MAX_RANGES 256

struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb; /* NOT 0's based */
	uint64_t slba;
};
NVME_STATIC_SIZE(struct nvme_dsm_range, 16);
NVME_STATIC_OFF(struct nvme_dsm_range, slba, 8);

/* ------------------------------------------------------------------------ */
/* Reservations (Base 2.0 8.19, NVM-CS 1.0 3.2.4 - 3.2.7)                   */
/* ------------------------------------------------------------------------ */

enum nvme_resv_type {
	NVME_RESV_WRITE_EXCLUSIVE = 1,
	NVME_RESV_EXCLUSIVE_ACCESS = 2,
	NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY = 3,
	NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY = 4,
	NVME_RESV_WRITE_EXCLUSIVE_ALL_REG = 5,
	NVME_RESV_EXCLUSIVE_ACCESS_ALL_REG = 6,
};

/* Reservation Register CDW10 */
enum nvme_resv_register_action {
	NVME_RESV_REG_REGISTER = 0,
	NVME_RESV_REG_UNREGISTER = 1,
	NVME_RESV_REG_REPLACE = 2,
};
#define NVME_RESV_REG_RREGA(cdw10) ((cdw10) & 0x7)
#define NVME_RESV_IEKEY (1u << 3)
#define NVME_RESV_REG_CPTPL(cdw10) (((cdw10) >> 30) & 0x3)

/* Reservation Acquire CDW10 */
enum nvme_resv_acquire_action {
	NVME_RESV_ACQ_ACQUIRE = 0,
	NVME_RESV_ACQ_PREEMPT = 1,
	NVME_RESV_ACQ_PREEMPT_ABORT = 2,
};
/* Reservation Release CDW10 */
enum nvme_resv_release_action {
	NVME_RESV_REL_RELEASE = 0,
	NVME_RESV_REL_CLEAR = 1,
};
#define NVME_RESV_ACTION(cdw10) ((cdw10) & 0x7)
#define NVME_RESV_RTYPE(cdw10) (((cdw10) >> 8) & 0xff)
#define NVME_RESV_CDW10(action, iekey, rtype)                                                      \
	(((uint32_t)(rtype) & 0xff) << 8 | ((iekey) ? NVME_RESV_IEKEY : 0) | ((action) & 0x7))

/* Reservation Report CDW11 */
#define NVME_RESV_REPORT_EDS (1u << 0)

/* Reservation Register data structure, NVM-CS 1.0 Figure 54 */
struct nvme_resv_register_data {
	uint64_t crkey;
	uint64_t nrkey;
};
NVME_STATIC_SIZE(struct nvme_resv_register_data, 16);

/* Reservation Acquire data structure, NVM-CS 1.0 Figure 50 */
struct nvme_resv_acquire_data {
	uint64_t crkey;
	uint64_t prkey;
};
NVME_STATIC_SIZE(struct nvme_resv_acquire_data, 16);

/* Reservation Status data structure header, NVM-CS 1.0 Figure 58 */
struct nvme_resv_status {
	uint32_t gen;
	uint8_t rtype;
	uint8_t regctl[2]; /* number of registered controllers, unaligned */
	uint8_t rsvd7[2];
	uint8_t ptpls;
	uint8_t rsvd10[14];
};
NVME_STATIC_SIZE(struct nvme_resv_status, 24);
NVME_STATIC_OFF(struct nvme_resv_status, rtype, 4);
NVME_STATIC_OFF(struct nvme_resv_status, regctl, 5);
NVME_STATIC_OFF(struct nvme_resv_status, ptpls, 9);

/* Registered Controller data structure, NVM-CS 1.0 Figure 59 */
struct nvme_resv_ctrl {
	uint16_t cntlid;
	uint8_t rcsts; /* bit 0: holds the reservation */
	uint8_t rsvd3[5];
	uint64_t hostid;
	uint64_t rkey;
};
NVME_STATIC_SIZE(struct nvme_resv_ctrl, 24);
NVME_STATIC_OFF(struct nvme_resv_ctrl, hostid, 8);
NVME_STATIC_OFF(struct nvme_resv_ctrl, rkey, 16);

/* Extended forms (EDS = 1), NVM-CS 1.0 Figures 60 and 61 */
struct nvme_resv_status_ext {
	struct nvme_resv_status hdr;
	uint8_t rsvd24[40];
};
NVME_STATIC_SIZE(struct nvme_resv_status_ext, 64);

struct nvme_resv_ctrl_ext {
	uint16_t cntlid;
	uint8_t rcsts;
	uint8_t rsvd3[5];
	uint64_t rkey;
	uint8_t hostid[16];
	uint8_t rsvd32[32];
};
NVME_STATIC_SIZE(struct nvme_resv_ctrl_ext, 64);
NVME_STATIC_OFF(struct nvme_resv_ctrl_ext, rkey, 8);
NVME_STATIC_OFF(struct nvme_resv_ctrl_ext, hostid, 16);

#define NVME_RESV_RCSTS_HOLDER (1u << 0)

/* RESCAP bits in Identify Namespace, NVM-CS 1.0 Figure 97 */
#define NVME_RESCAP_PTPL (1u << 0)
#define NVME_RESCAP_WE (1u << 1)
#define NVME_RESCAP_EA (1u << 2)
#define NVME_RESCAP_WERO (1u << 3)
#define NVME_RESCAP_EARO (1u << 4)
#define NVME_RESCAP_WEAR (1u << 5)
#define NVME_RESCAP_EAAR (1u << 6)
#define NVME_RESCAP_IEKEY (1u << 7)

/* ------------------------------------------------------------------------ */
/* Identify data structures                                                 */
/* ------------------------------------------------------------------------ */

/* Power State Descriptor, Base 2.0 Figure 276 */
struct nvme_id_power_state {
	uint16_t mp;
	uint8_t rsvd2;
	uint8_t flags;
	uint32_t enlat;
	uint32_t exlat;
	uint8_t rrt;
	uint8_t rrl;
	uint8_t rwt;
	uint8_t rwl;
	uint16_t idlp;
	uint8_t ips;
	uint8_t rsvd19;
	uint16_t actp;
	uint8_t apws;
	uint8_t rsvd23[9];
};
NVME_STATIC_SIZE(struct nvme_id_power_state, 32);

/* Identify Controller data structure, Base 2.0 Figure 275 */
struct nvme_id_ctrl {
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts; /* 2^mdts units of CAP.MPSMIN, 0 = no limit */
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype;
	uint8_t fguid[16];
	uint16_t crdt1;
	uint16_t crdt2;
	uint16_t crdt3;
	uint8_t rsvd134[119];
	uint8_t nvmsr;
	uint8_t vwci;
	uint8_t mec;
	uint16_t oacs;
	uint8_t acl;  /* 0's based */
	uint8_t aerl; /* 0's based */
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe; /* 0's based */
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint16_t mtfa;
	uint32_t hmpre;
	uint32_t hmmin;
	uint8_t tnvmcap[16];
	uint8_t unvmcap[16];
	uint32_t rpmbs;
	uint16_t edstt;
	uint8_t dsto;
	uint8_t fwug;
	uint16_t kas;
	uint16_t hctma;
	uint16_t mntmt;
	uint16_t mxtmt;
	uint32_t sanicap;
	uint32_t hmminds;
	uint16_t hmmaxd;
	uint16_t nsetidmax;
	uint16_t endgidmax;
	uint8_t anatt;
	uint8_t anacap;
	uint32_t anagrpmax;
	uint32_t nanagrpid;
	uint32_t pels;
	uint16_t domainid;
	uint8_t rsvd358[10];
	uint8_t megcap[16];
	uint8_t rsvd384[128];
	uint8_t sqes;
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn;
	uint16_t oncs;
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc;
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t cdfs;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t maxdna[16];
	uint32_t maxcna;
	uint8_t rsvd564[204];
	char subnqn[256];
	uint8_t rsvd1024[768];
	uint8_t nvmof[256];
	struct nvme_id_power_state psd[32];
	uint8_t vs[1024];
};
NVME_STATIC_SIZE(struct nvme_id_ctrl, 4096);
NVME_STATIC_OFF(struct nvme_id_ctrl, sn, 4);
NVME_STATIC_OFF(struct nvme_id_ctrl, mn, 24);
NVME_STATIC_OFF(struct nvme_id_ctrl, fr, 64);
NVME_STATIC_OFF(struct nvme_id_ctrl, mdts, 77);
NVME_STATIC_OFF(struct nvme_id_ctrl, cntlid, 78);
NVME_STATIC_OFF(struct nvme_id_ctrl, ver, 80);
NVME_STATIC_OFF(struct nvme_id_ctrl, oaes, 92);
NVME_STATIC_OFF(struct nvme_id_ctrl, cntrltype, 111);
NVME_STATIC_OFF(struct nvme_id_ctrl, oacs, 256);
NVME_STATIC_OFF(struct nvme_id_ctrl, acl, 258);
NVME_STATIC_OFF(struct nvme_id_ctrl, aerl, 259);
NVME_STATIC_OFF(struct nvme_id_ctrl, lpa, 261);
NVME_STATIC_OFF(struct nvme_id_ctrl, elpe, 262);
NVME_STATIC_OFF(struct nvme_id_ctrl, tnvmcap, 280);
NVME_STATIC_OFF(struct nvme_id_ctrl, kas, 320);
NVME_STATIC_OFF(struct nvme_id_ctrl, anagrpmax, 344);
NVME_STATIC_OFF(struct nvme_id_ctrl, megcap, 368);
NVME_STATIC_OFF(struct nvme_id_ctrl, sqes, 512);
NVME_STATIC_OFF(struct nvme_id_ctrl, maxcmd, 514);
NVME_STATIC_OFF(struct nvme_id_ctrl, nn, 516);
NVME_STATIC_OFF(struct nvme_id_ctrl, oncs, 520);
NVME_STATIC_OFF(struct nvme_id_ctrl, vwc, 525);
NVME_STATIC_OFF(struct nvme_id_ctrl, sgls, 536);
NVME_STATIC_OFF(struct nvme_id_ctrl, mnan, 540);
NVME_STATIC_OFF(struct nvme_id_ctrl, maxcna, 560);
NVME_STATIC_OFF(struct nvme_id_ctrl, subnqn, 768);
NVME_STATIC_OFF(struct nvme_id_ctrl, psd, 2048);
NVME_STATIC_OFF(struct nvme_id_ctrl, vs, 3072);

/* OACS bits, Base 2.0 Figure 275 */
#define NVME_OACS_SECURITY (1u << 0)
#define NVME_OACS_FORMAT (1u << 1)
#define NVME_OACS_FW (1u << 2)
#define NVME_OACS_NS_MGMT (1u << 3)
#define NVME_OACS_SELF_TEST (1u << 4)
#define NVME_OACS_DIRECTIVES (1u << 5)
#define NVME_OACS_DBBUF (1u << 8)
/* ONCS bits */
#define NVME_ONCS_COMPARE (1u << 0)
#define NVME_ONCS_WRITE_UNCOR (1u << 1)
#define NVME_ONCS_DSM (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)
#define NVME_ONCS_SAVE_SELECT (1u << 4)
#define NVME_ONCS_RESERVATIONS (1u << 5)
#define NVME_ONCS_TIMESTAMP (1u << 6)
#define NVME_ONCS_VERIFY (1u << 7)
/* OAES bits */
#define NVME_OAES_NS_ATTR (1u << 8)
#define NVME_OAES_FW_ACTIVATION (1u << 9)
/* LPA bits */
#define NVME_LPA_SMART_PER_NS (1u << 0)
#define NVME_LPA_CMD_EFFECTS (1u << 1)
#define NVME_LPA_EXTENDED (1u << 2)
/* VWC bits */
#define NVME_VWC_PRESENT (1u << 0)
/* SQES / CQES: bits 3:0 required, 7:4 maximum (log2) */
#define NVME_ID_QES(max, req) ((uint8_t)(((max) & 0xf) << 4 | ((req) & 0xf)))
#define NVME_ID_QES_MIN(v) ((v) & 0xf)
#define NVME_ID_QES_MAX(v) (((v) >> 4) & 0xf)

/* LBA Format data structure, NVM-CS 1.0 Figure 98 */
struct nvme_lbaf {
	uint16_t ms;   /* metadata size */
	uint8_t lbads; /* log2 of the LBA data size */
	uint8_t rp;    /* relative performance, bits 1:0 */
};
NVME_STATIC_SIZE(struct nvme_lbaf, 4);

/* Identify Namespace data structure (NVM), NVM-CS 1.0 Figure 97 */
struct nvme_id_ns {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf; /* 0's based */
	uint8_t flbas;
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat;
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg;
	uint16_t npwa;
	uint16_t npdg;
	uint16_t npda;
	uint16_t nows;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;
	uint8_t rsvd81;
	uint8_t nulbaf;
	uint8_t rsvd83[9];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr;
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct nvme_lbaf lbaf[64];
	uint8_t rsvd384[2688];
	uint8_t vs[1024];
};
NVME_STATIC_SIZE(struct nvme_id_ns, 4096);
NVME_STATIC_OFF(struct nvme_id_ns, nsfeat, 24);
NVME_STATIC_OFF(struct nvme_id_ns, flbas, 26);
NVME_STATIC_OFF(struct nvme_id_ns, nmic, 30);
NVME_STATIC_OFF(struct nvme_id_ns, rescap, 31);
NVME_STATIC_OFF(struct nvme_id_ns, dlfeat, 33);
NVME_STATIC_OFF(struct nvme_id_ns, noiob, 46);
NVME_STATIC_OFF(struct nvme_id_ns, nvmcap, 48);
NVME_STATIC_OFF(struct nvme_id_ns, mcl, 76);
NVME_STATIC_OFF(struct nvme_id_ns, anagrpid, 92);
NVME_STATIC_OFF(struct nvme_id_ns, nguid, 104);
NVME_STATIC_OFF(struct nvme_id_ns, eui64, 120);
NVME_STATIC_OFF(struct nvme_id_ns, lbaf, 128);
NVME_STATIC_OFF(struct nvme_id_ns, vs, 3072);

/* FLBAS: format index bits 3:0 plus bits 6:5 (upper index bits) */
#define NVME_FLBAS_INDEX(flbas) (((flbas) & 0xf) | ((((flbas) >> 5) & 0x3) << 4))
/* NSFEAT bits */
#define NVME_NSFEAT_THINP (1u << 0)
#define NVME_NSFEAT_DAE (1u << 2) /* deallocated or unwritten error supported */
/* DLFEAT: bits 2:0 = 001b -> deallocated blocks read as zeroes */
#define NVME_DLFEAT_READ_ZEROES 0x1u
#define NVME_DLFEAT_WZ_DEAC (1u << 3)

/* Active Namespace ID list (CNS 02h): up to 1024 NSIDs, ascending, zero filled */
#define NVME_NS_LIST_MAX 1024
struct nvme_ns_list {
	uint32_t nsid[NVME_NS_LIST_MAX];
};
NVME_STATIC_SIZE(struct nvme_ns_list, 4096);

/* Namespace Identification Descriptor, Base 2.0 Figure 279 */
struct nvme_ns_id_desc {
	uint8_t nidt;
	uint8_t nidl;
	uint8_t rsvd2[2];
	/* followed by nidl bytes of identifier */
};
NVME_STATIC_SIZE(struct nvme_ns_id_desc, 4);
enum nvme_nidt {
	NVME_NIDT_EUI64 = 1,
	NVME_NIDT_NGUID = 2,
	NVME_NIDT_UUID = 3,
	NVME_NIDT_CSI = 4,
};
#define NVME_NIDL_EUI64 8
#define NVME_NIDL_NGUID 16
#define NVME_NIDL_UUID 16
#define NVME_NIDL_CSI 1
#define NVME_CSI_NVM 0

/* ------------------------------------------------------------------------ */
/* Log pages                                                                */
/* ------------------------------------------------------------------------ */

/* Error Information log entry, Base 2.0 Figure 205 */
struct nvme_error_log {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* bit 0 phase tag, 15:1 status field as in the CQE */
	uint16_t param_error_location;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vsia;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t cs;
	uint16_t trtype_spec_info;
	uint8_t rsvd42[22];
};
NVME_STATIC_SIZE(struct nvme_error_log, 64);
NVME_STATIC_OFF(struct nvme_error_log, sqid, 8);
NVME_STATIC_OFF(struct nvme_error_log, lba, 16);
NVME_STATIC_OFF(struct nvme_error_log, nsid, 24);
NVME_STATIC_OFF(struct nvme_error_log, cs, 32);

/* SMART / Health Information log, Base 2.0 Figure 207 */
struct nvme_smart_log {
	uint8_t critical_warning;
	uint8_t temperature[2]; /* Kelvin, unaligned */
	uint8_t avail_spare;
	uint8_t spare_thresh;
	uint8_t percent_used;
	uint8_t endu_grp_crit_warn_sumry;
	uint8_t rsvd7[25];
	uint8_t data_units_read[16];
	uint8_t data_units_written[16];
	uint8_t host_reads[16];
	uint8_t host_writes[16];
	uint8_t ctrl_busy_time[16];
	uint8_t power_cycles[16];
	uint8_t power_on_hours[16];
	uint8_t unsafe_shutdowns[16];
	uint8_t media_errors[16];
	uint8_t num_err_log_entries[16];
	uint32_t warning_temp_time;
	uint32_t critical_comp_time;
	uint16_t temp_sensor[8];
	uint32_t thm_temp1_trans_count;
	uint32_t thm_temp2_trans_count;
	uint32_t thm_temp1_total_time;
	uint32_t thm_temp2_total_time;
	uint8_t rsvd232[280];
};
NVME_STATIC_SIZE(struct nvme_smart_log, 512);
NVME_STATIC_OFF(struct nvme_smart_log, data_units_read, 32);
NVME_STATIC_OFF(struct nvme_smart_log, host_reads, 64);
NVME_STATIC_OFF(struct nvme_smart_log, power_on_hours, 128);
NVME_STATIC_OFF(struct nvme_smart_log, num_err_log_entries, 176);
NVME_STATIC_OFF(struct nvme_smart_log, warning_temp_time, 192);
NVME_STATIC_OFF(struct nvme_smart_log, temp_sensor, 200);
NVME_STATIC_OFF(struct nvme_smart_log, rsvd232, 232);

/* Changed Namespace List log (LID 04h), Base 2.0 5.16.1.5: 1024 NSIDs;
 * a first entry of FFFFFFFFh means more than 1024 namespaces changed. */
struct nvme_changed_ns_log {
	uint32_t nsid[NVME_NS_LIST_MAX];
};
NVME_STATIC_SIZE(struct nvme_changed_ns_log, 4096);
#define NVME_CHANGED_NS_OVERFLOW 0xffffffffu

/* ------------------------------------------------------------------------ */
/* PRP (Base 2.0 4.1.1)                                                      */
/* ------------------------------------------------------------------------ */

/* A PRP entry's bits 1:0 are reserved (dword aligned); PRP list entries and
 * PRP2 when it points at a list must have a zero page offset except for the
 * first one (Base 2.0 4.1.1 Figure 86). */
#define NVME_PRP_ALIGN_MASK 0x3ull

/* Shadow doorbell / EventIdx buffers (Base 2.0 5.8): one page each, indexed
 * like the doorbell registers with a stride of 4 << CAP.DSTRD bytes. */
#define NVME_NSID_ALL 0xffffffffu

#endif /* NVMEKEEP_SPEC_H */
