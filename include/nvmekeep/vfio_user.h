/* SPDX-License-Identifier: MIT */
/*
 * vfio-user wire format, shared by the server (tools/nvmekeep-emu) and the
 * client backing (src/backing/vfio_user.c).
 *
 * Written from the protocol text, QEMU docs/interop/vfio-user.rst ("vfio-user
 * Protocol Specification"); section names below refer to it. All fields are
 * in host byte order (the spec: "all data is in the endianness of the host").
 *
 * The layer has three parts:
 *  - message layouts with their sizes pinned,
 *  - validators/decoders: pure functions over received bytes that return
 *    -EINVAL/-EPROTO/-E2BIG with a reason, never trusting a size field
 *    (the fuzz target fuzz/fuzz_vfio_user.c drives them),
 *  - socket helpers: one message (header + payload + SCM_RIGHTS fds) per call.
 */
#ifndef NVMEKEEP_VFIO_USER_H
#define NVMEKEEP_VFIO_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol version we speak: 0.1, the version QEMU's client and the
 * reference server negotiate. "Version" section: the major must match, the
 * reply's minor is <= the proposed one. */
#define NVMK_VFU_MAJOR 0
#define NVMK_VFU_MINOR 1

/* "Commands" table. */
enum nvmk_vfu_cmd {
	NVMK_VFU_VERSION = 1,
	NVMK_VFU_DMA_MAP = 2,
	NVMK_VFU_DMA_UNMAP = 3,
	NVMK_VFU_DEVICE_GET_INFO = 4,
	NVMK_VFU_DEVICE_GET_REGION_INFO = 5,
	NVMK_VFU_DEVICE_GET_REGION_IO_FDS = 6,
	NVMK_VFU_DEVICE_GET_IRQ_INFO = 7,
	NVMK_VFU_DEVICE_SET_IRQS = 8,
	NVMK_VFU_REGION_READ = 9,
	NVMK_VFU_REGION_WRITE = 10,
	NVMK_VFU_DMA_READ = 11,
	NVMK_VFU_DMA_WRITE = 12,
	NVMK_VFU_DEVICE_RESET = 13,
	NVMK_VFU_REGION_WRITE_MULTI = 15,
	NVMK_VFU_DEVICE_FEATURE = 16,
	NVMK_VFU_MIG_DATA_READ = 17,
	NVMK_VFU_MIG_DATA_WRITE = 18,
};

/* "Header": flags bits. */
#define NVMK_VFU_F_TYPE_MASK  0xfu
#define NVMK_VFU_F_TYPE_CMD   0x0u
#define NVMK_VFU_F_TYPE_REPLY 0x1u
#define NVMK_VFU_F_NO_REPLY   (1u << 4)
#define NVMK_VFU_F_ERROR      (1u << 5)

struct nvmk_vfu_hdr {
	uint16_t msg_id;
	uint16_t cmd;
	uint32_t size; /* whole message, header included */
	uint32_t flags;
	uint32_t error; /* errno in an error reply */
};
_Static_assert(sizeof(struct nvmk_vfu_hdr) == 16, "vfio-user header is 16 bytes");

/* VFIO_USER_VERSION request and reply (JSON capabilities follow, NUL terminated). */
struct nvmk_vfu_version {
	uint16_t major;
	uint16_t minor;
};
_Static_assert(sizeof(struct nvmk_vfu_version) == 4, "version payload head");

/* VFIO_USER_DMA_MAP: flags bits. */
#define NVMK_VFU_DMA_READ_OK  (1u << 0)
#define NVMK_VFU_DMA_WRITE_OK (1u << 1)
struct nvmk_vfu_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset; /* in the passed fd, 0 without one */
	uint64_t addr;	 /* DMA address (IOVA) */
	uint64_t size;
};
_Static_assert(sizeof(struct nvmk_vfu_dma_map) == 32, "DMA_MAP is 32 bytes");

struct nvmk_vfu_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
};
_Static_assert(sizeof(struct nvmk_vfu_dma_unmap) == 24, "DMA_UNMAP is 24 bytes");

/* VFIO_USER_DEVICE_GET_INFO (struct vfio_device_info). */
#define NVMK_VFU_DEV_FLAG_RESET (1u << 0)
#define NVMK_VFU_DEV_FLAG_PCI	(1u << 1)
struct nvmk_vfu_device_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
};
_Static_assert(sizeof(struct nvmk_vfu_device_info) == 16, "device info is 16 bytes");

/* VFIO_USER_DEVICE_GET_REGION_INFO (struct vfio_region_info). */
#define NVMK_VFU_REGION_FLAG_READ  (1u << 0)
#define NVMK_VFU_REGION_FLAG_WRITE (1u << 1)
#define NVMK_VFU_REGION_FLAG_MMAP  (1u << 2)
#define NVMK_VFU_REGION_FLAG_CAPS  (1u << 3)
struct nvmk_vfu_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset;
	uint64_t size;
	uint64_t offset;
};
_Static_assert(sizeof(struct nvmk_vfu_region_info) == 32, "region info is 32 bytes");

/* Region capabilities ("VFIO cap header format", sparse mmap). */
#define NVMK_VFU_CAP_SPARSE_MMAP 1
struct nvmk_vfu_cap_hdr {
	uint16_t id;
	uint16_t version;
	uint32_t next;
};
struct nvmk_vfu_sparse_area {
	uint64_t offset;
	uint64_t size;
};
struct nvmk_vfu_cap_sparse {
	struct nvmk_vfu_cap_hdr hdr;
	uint32_t nr_areas;
	uint32_t reserved;
	/* struct nvmk_vfu_sparse_area areas[nr_areas] */
};
_Static_assert(sizeof(struct nvmk_vfu_cap_sparse) == 16, "sparse mmap cap head");
_Static_assert(sizeof(struct nvmk_vfu_sparse_area) == 16, "sparse area");

/* PCI region and interrupt indexes (the VFIO PCI ones). */
enum {
	NVMK_VFU_PCI_BAR0 = 0,
	NVMK_VFU_PCI_BAR4 = 4,
	NVMK_VFU_PCI_ROM = 6,
	NVMK_VFU_PCI_CONFIG = 7,
	NVMK_VFU_PCI_VGA = 8,
	NVMK_VFU_PCI_NUM_REGIONS = 9,
};
enum {
	NVMK_VFU_IRQ_INTX = 0,
	NVMK_VFU_IRQ_MSI = 1,
	NVMK_VFU_IRQ_MSIX = 2,
	NVMK_VFU_IRQ_ERR = 3,
	NVMK_VFU_IRQ_REQ = 4,
	NVMK_VFU_NUM_IRQS = 5,
};

/* VFIO_USER_DEVICE_GET_IRQ_INFO (struct vfio_irq_info). */
#define NVMK_VFU_IRQ_INFO_EVENTFD  (1u << 0)
#define NVMK_VFU_IRQ_INFO_MASKABLE (1u << 1)
struct nvmk_vfu_irq_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
};
_Static_assert(sizeof(struct nvmk_vfu_irq_info) == 16, "irq info is 16 bytes");

/* VFIO_USER_DEVICE_SET_IRQS (struct vfio_irq_set). */
#define NVMK_VFU_IRQ_DATA_NONE	    (1u << 0)
#define NVMK_VFU_IRQ_DATA_BOOL	    (1u << 1)
#define NVMK_VFU_IRQ_DATA_EVENTFD   (1u << 2)
#define NVMK_VFU_IRQ_ACTION_MASK    (1u << 3)
#define NVMK_VFU_IRQ_ACTION_UNMASK  (1u << 4)
#define NVMK_VFU_IRQ_ACTION_TRIGGER (1u << 5)
#define NVMK_VFU_IRQ_DATA_TYPES	    0x7u
#define NVMK_VFU_IRQ_ACTIONS	    0x38u
struct nvmk_vfu_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	/* uint8_t data[count] with DATA_BOOL */
};
_Static_assert(sizeof(struct nvmk_vfu_irq_set) == 20, "irq set is 20 bytes");

/* VFIO_USER_REGION_READ/WRITE head (data follows for write requests and read replies). */
struct nvmk_vfu_region_rw {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
};
_Static_assert(sizeof(struct nvmk_vfu_region_rw) == 16, "region access head");

/* VFIO_USER_DMA_READ/WRITE head (data follows for write requests and read replies).
 * The DMA_WRITE reply carries address (8) and a 4-byte count: 12 bytes. */
struct nvmk_vfu_dma_rw {
	uint64_t addr;
	uint64_t count;
};
_Static_assert(sizeof(struct nvmk_vfu_dma_rw) == 16, "DMA access head");
#define NVMK_VFU_DMA_WRITE_REPLY_SIZE 12

/* ---- capabilities ("Version" section) ---- */

/* Defaults when a capability is absent. */
#define NVMK_VFU_DEFAULT_MAX_FDS      1
#define NVMK_VFU_DEFAULT_MAX_XFER     (1u << 20)
#define NVMK_VFU_DEFAULT_MAX_DMA_MAPS 65535
#define NVMK_VFU_DEFAULT_PGSIZES      4096
/* What we accept of a peer's values (anything larger is a lie or a DoS). */
#define NVMK_VFU_LIMIT_MAX_FDS	253 /* SCM_MAX_FD */
#define NVMK_VFU_LIMIT_MAX_XFER (16u << 20)
/* Largest message we read: header + a region/DMA head + one transfer. */
#define NVMK_VFU_MSG_MAX(xfer) (sizeof(struct nvmk_vfu_hdr) + 16 + (size_t)(xfer))
/* The VERSION JSON we accept, bytes. */
#define NVMK_VFU_JSON_MAX 4096

struct nvmk_vfu_caps {
	uint32_t max_msg_fds;
	uint32_t max_data_xfer_size;
	uint32_t max_dma_maps;
	uint64_t pgsizes;
};

/** nvmk_vfu_caps_default - the values the spec prescribes when a capability is absent. */
void nvmk_vfu_caps_default(struct nvmk_vfu_caps *c);

/**
 * nvmk_vfu_version_parse - decode a VERSION payload (request or reply).
 * @p/@len:  the payload (after the header)
 * @ver:     receives major/minor
 * @caps:    receives the capabilities, defaults for absent ones
 * @why/@whylen: receives a reason on failure
 * Return: 0, -EINVAL (too short, JSON not NUL-terminated, malformed JSON,
 *         wrong types, values out of range).
 */
int nvmk_vfu_version_parse(const void *p, size_t len, struct nvmk_vfu_version *ver,
			   struct nvmk_vfu_caps *caps, char *why, size_t whylen);

/**
 * nvmk_vfu_version_format - a VERSION payload with @caps as JSON.
 * Return: payload length, or -ENOSPC.
 */
int nvmk_vfu_version_format(uint16_t major, uint16_t minor, const struct nvmk_vfu_caps *caps,
			    void *buf, size_t len);

/**
 * nvmk_vfu_hdr_check - validate a received header.
 * @h:        the header
 * @max_size: largest message this side accepts
 * @want_reply: true for a reply we wait for, false for a command
 * Return: 0, -EPROTO (size below the header, wrong type bits), -E2BIG (size
 *         above @max_size).
 */
int nvmk_vfu_hdr_check(const struct nvmk_vfu_hdr *h, size_t max_size, bool want_reply);

/**
 * nvmk_vfu_cmd_check - validate the payload size and fd count of a command
 * the server receives (@cmd), before it is decoded.
 * @len:  payload bytes (header excluded)
 * @nfds: file descriptors that came with it
 * @max_xfer: the server's max_data_xfer_size
 * Return: 0 or -EINVAL (with a reason in @why).
 */
int nvmk_vfu_cmd_check(uint16_t cmd, const void *payload, size_t len, unsigned nfds,
		       uint32_t max_xfer, char *why, size_t whylen);

/** nvmk_vfu_cmd_name - "DMA_MAP" etc., "unknown" for others. */
const char *nvmk_vfu_cmd_name(uint16_t cmd);

/* ---- socket helpers ---- */

/**
 * nvmk_vfu_send - send one message: @h (size filled in), @payload, @fds.
 * Handles short writes (the socket is blocking). MSG_NOSIGNAL: a gone peer
 * is -EPIPE, never SIGPIPE.
 * Return: 0 or negative errno.
 */
int nvmk_vfu_send(int sock, struct nvmk_vfu_hdr *h, const void *payload, size_t len, const int *fds,
		  unsigned nfds);

/**
 * nvmk_vfu_recv - receive one message into @buf (header first, then payload).
 * @buf/@bufsz: room for the whole message
 * @fds/@maxfds/@nfds: received descriptors (all closed on error, and any
 *                  beyond @maxfds: the message is then refused, -EMFILE)
 * Return: message size, 0 on orderly EOF before any byte, -E2BIG when the
 *         header announces more than @bufsz (the stream cannot be resynced:
 *         the caller should reply with an error and close), -EPROTO for a
 *         size below the header or EOF inside a message, -EMFILE, or
 *         another negative errno.
 */
int nvmk_vfu_recv(int sock, void *buf, size_t bufsz, int *fds, unsigned maxfds, unsigned *nfds);

/* ---- resume state: a --persist server's vendor regions (docs/vfio-user.md) ----
 *
 * Region NVMK_VFU_REGION_RESUME (READ | WRITE): a read-only blob describing
 * what a previous client left in the device -- its DMA maps and the
 * controller's queues and held commands -- and one writable dword at
 * offset 0 (NVMK_VFU_RESUME_CTL_ADOPT: the new client takes the previous
 * client's maps as its own; the controller goes on). Region
 * NVMK_VFU_REGION_MEMORY (MMAP, no READ/WRITE): the memory file of the
 * previous client's admin queue, whose fd comes with the region info reply.
 * Both carry a capability VFIO_REGION_INFO_CAP_TYPE (id 2) with type
 * VFIO_REGION_TYPE_PCI_VENDOR_TYPE | 1de5h and subtype 1 (resume state) or
 * 2 (memory). Size 0 when the server has nothing to offer.
 */
#define NVMK_VFU_REGION_RESUME	  9
#define NVMK_VFU_REGION_MEMORY	  10
#define NVMK_VFU_NUM_REGIONS_EXT  11
#define NVMK_VFU_CAP_TYPE	  2
#define NVMK_VFU_VENDOR_TYPE	  (0x80000000u | 0x1de5u)
#define NVMK_VFU_SUBTYPE_RESUME	  1
#define NVMK_VFU_SUBTYPE_MEMORY	  2
#define NVMK_VFU_RESUME_MAGIC	  0x524b564eu /* "NVKR" */
#define NVMK_VFU_RESUME_VERSION	  1
#define NVMK_VFU_RESUME_CTL_ADOPT 0x41444f50u /* "ADOP" */
#define NVMK_VFU_RESUME_MAX	  (1u << 20)  /* largest blob a client reads */
#define NVMK_VFU_RESUME_FILE_NONE 0xffffffffu /* map without an fd */

struct nvmk_vfu_cap_type {
	struct nvmk_vfu_cap_hdr hdr;
	uint32_t type;
	uint32_t subtype;
};
_Static_assert(sizeof(struct nvmk_vfu_cap_type) == 16, "type capability");

struct nvmk_vfu_resume_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size; /* sizeof(struct nvmk_vfu_resume_hdr) */
	uint32_t total_size;
	uint32_t nmaps, nsq, ncq, ncmd;
	uint32_t cc, aqa;
	uint16_t nsq_granted, ncq_granted; /* 1's based; 0: never set */
	uint64_t asq, acq;
	uint64_t dbbuf_shadow, dbbuf_eventidx;
};
_Static_assert(sizeof(struct nvmk_vfu_resume_hdr) == 72, "resume header");

struct nvmk_vfu_resume_map {
	uint64_t iova, size;
	uint64_t offset; /* in its file */
	uint32_t file;	 /* 0: the file of region MEMORY; others: other files; FILE_NONE */
	uint32_t flags;	 /* DMA_MAP flags */
};
_Static_assert(sizeof(struct nvmk_vfu_resume_map) == 32, "resume map");

struct nvmk_vfu_resume_sq {
	uint16_t qid, cqid;
	uint32_t size;
	uint64_t base;
	uint32_t head, tail;
};
_Static_assert(sizeof(struct nvmk_vfu_resume_sq) == 24, "resume sq");

struct nvmk_vfu_resume_cq {
	uint16_t qid, iv;
	uint8_t ien, phase;
	uint16_t reserved;
	uint32_t size;
	uint32_t reserved2; /* explicit: base is 8-byte aligned */
	uint64_t base;
	uint32_t head, tail;
};
_Static_assert(sizeof(struct nvmk_vfu_resume_cq) == 32 &&
		   offsetof(struct nvmk_vfu_resume_cq, base) == 16,
	       "resume cq");

struct nvmk_vfu_resume_cmd {
	uint16_t sqid, cid;
	uint8_t opc, kind; /* kind: 0 delayed, 1 hung, 2 AER */
	uint16_t reserved;
};
_Static_assert(sizeof(struct nvmk_vfu_resume_cmd) == 8, "resume cmd");

/* A decoded resume blob; the arrays point into the buffer that was parsed. */
struct nvmk_vfu_resume {
	struct nvmk_vfu_resume_hdr h;
	const struct nvmk_vfu_resume_map *maps;
	const struct nvmk_vfu_resume_sq *sqs;
	const struct nvmk_vfu_resume_cq *cqs;
	const struct nvmk_vfu_resume_cmd *cmds;
};

/**
 * nvmk_vfu_resume_size - bytes of a blob with these counts, or 0 when too large.
 */
size_t nvmk_vfu_resume_size(uint32_t nmaps, uint32_t nsq, uint32_t ncq, uint32_t ncmd);

/**
 * nvmk_vfu_resume_parse - validate a resume blob received from a server.
 * @p/@len: the blob, 8-byte aligned (the arrays of @out point into it)
 * Checks: magic, version, header size, total size = @len = what the counts
 * need, queue ids below 65536 and unique, sizes in [2, 65536], heads and
 * tails inside their queue, phase 0/1, every SQ's CQ listed, an admin SQ and
 * CQ (qid 0) when any queue is listed, command kinds known and their SQ
 * listed, maps 4 KiB aligned, non-empty, without wrap, sorted, not
 * overlapping.
 * Return: 0, or -EINVAL with the reason in @why.
 */
int nvmk_vfu_resume_parse(const void *p, size_t len, struct nvmk_vfu_resume *out, char *why,
			  size_t whylen);

#endif /* NVMEKEEP_VFIO_USER_H */
