/* SPDX-License-Identifier: MIT */
/*
 * Device backing: how the driver reaches one NVMe controller.
 *
 * One small vtable with four concerns:
 *  - BAR0 register access: @bar0 is a mapped pointer when the backing has one
 *    (VFIO mmap); the driver then uses plain volatile loads/stores on the fast
 *    path. Otherwise (emulator, vfio-user, VFIO without mmap) it calls ops.
 *  - DMA memory: blocks from the DMA layer (ephemeral or private pool) mapped
 *    into the device's address space; the device address (IOVA) of any byte of
 *    a mapped block can be looked up.
 *  - Interrupts: MSI-X vectors signalled on eventfds the backing owns.
 *  - Identity and lifecycle: a name, a function reset, destroy.
 *
 * Implementations: local (in-process emulator), vfio (type1 and no-IOMMU),
 * vfio-user client.
 *
 * Threading: register accessors and nvmk_backing_iova() may be called from
 * any thread concurrently. dma_map/dma_unmap and irq setup are control-path
 * calls; the caller serialises them per backing.
 */
#ifndef NVMEKEEP_BACKING_H
#define NVMEKEEP_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/dma.h"

struct nvmk_backing;
struct nvmk_emu;

/* A mapped DMA block: the memory plus where the device sees it. */
struct nvmk_dma_buf {
	struct nvmk_dma_mem mem;
	uint64_t iova;       /* device address of mem.vaddr when @page_iova is NULL */
	uint64_t *page_iova; /* per-4KiB-page device addresses (no-IOMMU), else NULL */
};

/** nvmk_dma_buf_iova - device address of byte @off of @buf. */
static inline uint64_t nvmk_dma_buf_iova(const struct nvmk_dma_buf *buf, size_t off)
{
	if (!buf->page_iova)
		return buf->iova + off;
	return buf->page_iova[off >> NVMK_DMA_PAGE_SHIFT] + (off & (NVMK_DMA_PAGE_SIZE - 1));
}

/*
 * What a device that outlived its previous driver reports about itself
 * (a --persist vfio-user server after its client crashed): the previous
 * driver's DMA maps, queues and held commands, from the device's side. The
 * driver adopts the controller from it (nvmk_ctrl_adopt) instead of
 * resetting it. Everything in it comes from the device: validated by the
 * backing's parser, and again by the driver before use.
 */
struct nvmk_dev_view_map {
	uint64_t iova, size;
	uint64_t offset; /* in the backing's pool file (@pool), else meaningless */
	bool pool;	 /* in the file of the backing's pool (struct nvmk_backing.pool) */
};
struct nvmk_dev_view_sq {
	uint16_t qid, cqid;
	uint32_t size, head, tail; /* tail: the latest doorbell value */
	uint64_t base;
};
struct nvmk_dev_view_cq {
	uint16_t qid, iv;
	bool ien;
	uint8_t phase;		   /* phase tag the device writes at @tail */
	uint32_t size, head, tail; /* head: the latest doorbell value */
	uint64_t base;
};
struct nvmk_dev_view_cmd {
	uint16_t sqid, cid;
	uint8_t opc;
	bool aer;
	bool hung; /* held by the device until aborted (never completes by itself) */
};
struct nvmk_dev_view {
	uint32_t aqa;
	uint64_t asq, acq;
	uint64_t dbbuf_shadow, dbbuf_eventidx; /* 0: shadow doorbells off */
	uint16_t nsq_granted, ncq_granted; /* 1's based; 0: never set */
	unsigned nmaps, nsq, ncq, ncmd;
	const struct nvmk_dev_view_map *maps;
	const struct nvmk_dev_view_sq *sqs;
	const struct nvmk_dev_view_cq *cqs;
	const struct nvmk_dev_view_cmd *cmds;
};

struct nvmk_backing_ops {
	const char *kind; /* "local", "vfio", "vfio-user" */
	uint32_t (*read32)(struct nvmk_backing *b, uint32_t off);
	uint64_t (*read64)(struct nvmk_backing *b, uint32_t off);
	void (*write32)(struct nvmk_backing *b, uint32_t off, uint32_t val);
	void (*write64)(struct nvmk_backing *b, uint32_t off, uint64_t val);

	/* Make @buf->mem visible to the device; fill @buf->iova / @buf->page_iova. */
	int (*dma_map)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
	/* Remove the device's access; the memory itself stays. */
	void (*dma_unmap)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
	/* Servicing: make the device address @buf->iova (mapped by a predecessor,
	 * possibly still mapped to an old host address) reach @buf->mem now, without
	 * a window where it reaches nothing (VFIO_DMA_MAP_FLAG_VADDR for type1).
	 * May be NULL: the backing cannot keep a device alive across a restore. */
	int (*dma_remap)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

	/* Number of MSI-X vectors the function offers. */
	unsigned (*irq_count)(struct nvmk_backing *b);
	/* Enable vectors [0, nvec); eventfds are created and owned by the backing. */
	int (*irq_enable)(struct nvmk_backing *b, unsigned nvec);
	void (*irq_disable)(struct nvmk_backing *b);
	/* The eventfd of @vector, or -1 when not enabled. */
	int (*irq_fd)(struct nvmk_backing *b, unsigned vector);

	/* Function level reset (or the closest the backing has). */
	int (*reset)(struct nvmk_backing *b);
	/* The device's view of a previous driver's controller when the backing
	 * attached without a reset to adopt it, else NULL (may be NULL). */
	const struct nvmk_dev_view *(*device_view)(struct nvmk_backing *b);
	/* The adoption is over (done or given up): the view goes, and the
	 * previous driver's maps nobody took back (dma_remap) are unmapped. */
	void (*device_view_done)(struct nvmk_backing *b);
	void (*destroy)(struct nvmk_backing *b);
};

struct nvmk_backing {
	const struct nvmk_backing_ops *ops;
	char name[64];             /* device id: PCI address or emulator name */
	volatile uint8_t *bar0;    /* mapped BAR0, or NULL: use ops */
	size_t bar0_size;
	struct nvmk_dma_pool *pool; /* DMA source for nvmk_backing_dma_alloc (NULL = ephemeral) */
	/* The driver's controller on this device (nvmk_ctrl_open/_restore set it,
	 * close/detach clear it), NULL when none: one owner per device in a
	 * process. Across processes the VFIO group file is the lock (the kernel
	 * lets one process open it; a successor inherits the open fd). Backings
	 * start it NULL (zeroed allocation); only the driver writes it. */
	void *ctrl_owner;
};

/* ---- register access: fast path through the mapping when there is one ---- */

static inline uint32_t nvmk_backing_read32(struct nvmk_backing *b, uint32_t off)
{
	if (b->bar0)
		return *(volatile uint32_t *)(b->bar0 + off);
	return b->ops->read32(b, off);
}

static inline void nvmk_backing_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	if (b->bar0)
		*(volatile uint32_t *)(b->bar0 + off) = val;
	else
		b->ops->write32(b, off, val);
}

/* 64-bit registers (CAP, ASQ, ACQ). Base 2.0 3.1.3 allows a controller to
 * see them as two 32-bit accesses, low dword first; backings decide. */
static inline uint64_t nvmk_backing_read64(struct nvmk_backing *b, uint32_t off)
{
	return b->ops->read64(b, off);
}

static inline void nvmk_backing_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	b->ops->write64(b, off, val);
}

/* ---- DMA ---- */

/**
 * nvmk_backing_dma_alloc - allocate DMA memory from the backing's source and
 * map it for the device.
 * @owner/@tag: see nvmk_dma_alloc (pool bookkeeping); @owner may be NULL to
 *              use the backing's name.
 * Return: 0 or negative errno; nothing is left allocated on failure.
 */
int nvmk_backing_dma_alloc(struct nvmk_backing *b, size_t size, const char *tag,
			   struct nvmk_dma_buf *buf);
/** nvmk_backing_dma_free - unmap and free a block from nvmk_backing_dma_alloc. */
void nvmk_backing_dma_free(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

/**
 * nvmk_backing_dma_reclaim - servicing: take back a pool block by its tag
 * (nvmk_dma_reclaim with the backing's name as owner) and make its saved
 * device address @iova reach it (ops->dma_remap).
 * Return: 0, -EOPNOTSUPP (no pool, or the backing has no dma_remap), or the
 * error of nvmk_dma_reclaim / dma_remap (the block then stays reclaimed, so
 * it is not reported leaked, and is left to the device).
 */
int nvmk_backing_dma_reclaim(struct nvmk_backing *b, const char *tag, uint64_t iova,
			     struct nvmk_dma_buf *buf);
/**
 * nvmk_backing_dma_unclaim - servicing: undo nvmk_backing_dma_reclaim after a
 * refused restore: the host record is dropped and the pool block waits to be
 * reclaimed again (nvmk_dma_unclaim); the device keeps its mapping.
 */
void nvmk_backing_dma_unclaim(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
/**
 * nvmk_backing_dma_forget - servicing: drop the host-side record of a block
 * from nvmk_backing_dma_alloc without unmapping or freeing it: the device
 * keeps using it and a successor reclaims it by its tag.
 */
void nvmk_backing_dma_forget(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

/**
 * nvmk_backing_iova - device address of @vaddr, which must lie inside a block
 * mapped through @b, together with the number of bytes from @vaddr that are
 * contiguous in device address space (at least to the end of its page).
 * Return: 0, or -EFAULT when @vaddr is not inside any mapped block.
 */
int nvmk_backing_iova(struct nvmk_backing *b, const void *vaddr, uint64_t *iova, size_t *contig);

/** nvmk_backing_of - the backing a block from nvmk_backing_dma_alloc that
 *  contains @vaddr was mapped through, or NULL. */
struct nvmk_backing *nvmk_backing_of(const void *vaddr);

/* ---- construction ---- */

/**
 * nvmk_backing_local_create - a backing over an in-process emulated
 * controller. The backing creates the emulator from @cfg (its dma callback
 * and context are supplied by the backing) and owns it.
 * @emu_out: optional, receives the emulator for fault injection in tests.
 */
struct nvmk_emu_config;
int nvmk_backing_local_create(const struct nvmk_emu_config *cfg, struct nvmk_backing **out,
			      struct nvmk_emu **emu_out);

/** nvmk_backing_destroy - release everything the backing holds. NULL is a no-op. */
void nvmk_backing_destroy(struct nvmk_backing *b);

/* ---- VFIO (type1 IOMMU and no-IOMMU) ---- */

/*
 * Options of nvmk_backing_vfio_open(). A zeroed struct (or NULL) is the
 * default: real /sys and /dev, reset at open, hugetlb preferred not required.
 */
struct nvmk_vfio_opts {
	const char *sysfs_root; /* NULL = "/sys" (tests point it at a fake tree) */
	const char *dev_root;   /* NULL = "/dev" */
	bool no_reset;          /* skip VFIO_DEVICE_RESET at open */
	bool require_hugepages; /* no-IOMMU: refuse DMA blocks that are not hugetlb */
	bool no_bar0_mmap;      /* use pread/pwrite on the device fd (tests the fallback) */
};

/**
 * nvmk_backing_vfio_open - open the PCI function @pci_addr through VFIO.
 * @pci_addr: "DDDD:BB:DD.F" (lower-case hex), bound to vfio-pci
 * @opts:     options, or NULL for defaults
 * @out:      the backing on success
 *
 * Finds the IOMMU group in sysfs, uses a type1v2 container or the no-IOMMU
 * group (/dev/vfio/noiommu-N), opens the device, maps BAR0 (pread/pwrite on
 * the device fd when mmap is refused), enables bus mastering and resets the
 * function. Every failure logs what is wrong and how to fix it.
 *
 * Return: 0; -EINVAL (malformed address), -ENODEV (no such function, or no
 *         IOMMU group), -EBUSY (not bound to vfio-pci, group not viable),
 *         -EACCES/-EPERM (permissions), -ENOTSUP (no IOMMU and no no-IOMMU
 *         mode), or another negative errno from the kernel.
 */
int nvmk_backing_vfio_open(const char *pci_addr, const struct nvmk_vfio_opts *opts,
			   struct nvmk_backing **out);

/** nvmk_backing_is_vfio - whether @b was made by nvmk_backing_vfio_open/_adopt. */
bool nvmk_backing_is_vfio(const struct nvmk_backing *b);
/** nvmk_backing_vfio_is_noiommu - whether @b (a VFIO backing) runs without an IOMMU. */
bool nvmk_backing_vfio_is_noiommu(const struct nvmk_backing *b);

/*
 * Handover across execve without a reset. The device file stays open (a
 * close, or the last unmap of BAR0, releases and so resets the function),
 * MSI-X stays routed to the same eventfds, DMA memory stays pinned: type1
 * keeps the IOMMU mapping and only invalidates its virtual address
 * (VFIO_DMA_UNMAP_FLAG_VADDR); no-IOMMU keeps the physical pages of the
 * memfds (which the successor re-maps and mlocks).
 */
#define NVMK_VFIO_MAX_IRQS 64
#define NVMK_VFIO_MAX_MAPS 256

struct nvmk_vfio_handover_map {
	uint64_t iova;      /* type1 device address; 0 for no-IOMMU */
	uint64_t size;
	int fd;             /* memfd holding the block (inherited) */
	uint64_t fd_offset;
};

struct nvmk_vfio_handover {
	char pci_addr[16];
	bool noiommu;
	int container_fd, group_fd, device_fd;
	unsigned nirqs;
	int irq_fds[NVMK_VFIO_MAX_IRQS];
	unsigned nmaps;
	struct nvmk_vfio_handover_map maps[NVMK_VFIO_MAX_MAPS];
};

/**
 * nvmk_backing_vfio_handover_supported - whether @b can be handed over.
 * Return: 0; -ENOTSUP with a log line saying why (type1 without
 *         VFIO_UPDATE_VADDR, or not a VFIO backing).
 */
int nvmk_backing_vfio_handover_supported(struct nvmk_backing *b);

/**
 * nvmk_backing_vfio_export_fds - prepare @b for execve and describe it.
 * Clears FD_CLOEXEC on the container, group, device, eventfd and memfd fds;
 * type1: unmaps the virtual address of every DMA mapping (the IOMMU mapping
 * and pins stay). After this the backing must not be used for DMA mapping
 * and must not be destroyed (which would unmap and close): exec, or call
 * nvmk_backing_vfio_export_abort().
 * Return: 0 or negative errno (-ENOTSUP: see handover_supported).
 */
int nvmk_backing_vfio_export_fds(struct nvmk_backing *b, struct nvmk_vfio_handover *ho);
/** nvmk_backing_vfio_export_abort - undo an export that did not lead to exec. */
int nvmk_backing_vfio_export_abort(struct nvmk_backing *b, const struct nvmk_vfio_handover *ho);

/** nvmk_vfio_handover_format - @ho as one printable string (argv/env); Return: length or -ENOSPC. */
int nvmk_vfio_handover_format(const struct nvmk_vfio_handover *ho, char *buf, size_t len);
/** nvmk_vfio_handover_parse - inverse of nvmk_vfio_handover_format. Return: 0 or -EINVAL. */
int nvmk_vfio_handover_parse(const char *s, struct nvmk_vfio_handover *ho);

/**
 * nvmk_backing_vfio_adopt - re-attach to a function from inherited fds,
 * without any reset, bus-master or MSI-X change. BAR0 is mapped again.
 * DMA blocks of @ho->maps come back with ops->dma_map() on a buffer whose
 * memfd (same file) and fd_offset/size match an entry: type1 re-registers
 * the new virtual address at the same IOVA (VFIO_DMA_MAP_FLAG_VADDR), so the
 * resulting iova equals the saved one. irq_enable() with at most the
 * inherited vector count reuses the inherited eventfds.
 * Return: 0 or negative errno; the inherited fds are not closed on failure.
 */
int nvmk_backing_vfio_adopt(const struct nvmk_vfio_handover *ho, const struct nvmk_vfio_opts *opts,
			    struct nvmk_backing **out);

/* ---- vfio-user client (a device served by another process, e.g. nvmekeep-emu) ---- */

/* Options of nvmk_backing_vfio_user_open(); zeroed (or NULL) = defaults. */
struct nvmk_vfio_user_opts {
	bool no_reset;		/* skip DEVICE_RESET at open (re-attach to a live controller) */
	bool no_adopt;		/* a controller left enabled by a crashed client: reset it,
				 * even when the server keeps that client's memory */
	bool no_doorbell_mmap;	/* trap doorbells too (REGION_WRITE), e.g. to measure the cost */
	unsigned timeout_ms;	/* reply timeout per request, 0 = 10 s */
};

/**
 * nvmk_backing_vfio_user_open - connect to the vfio-user server at @path.
 * @path: the server's UNIX socket
 * @opts: options, or NULL
 * @out:  the backing on success; its name is "vfio-user:@path" (cut to fit)
 *
 * Negotiates the version, checks that the function is an NVMe controller
 * (class 010802h), maps the doorbells when the server offers them as a
 * sparse-mmap area, enables bus mastering and resets the function -- except
 * when a client that crashed left the controller enabled and a --persist
 * server hands back that client's private pool and the controller's queue
 * state (docs/vfio-user.md): then nothing is reset, the pool becomes the
 * backing's (struct nvmk_backing.pool, owned by the backing), the previous
 * client's maps are the backing's, and ops->device_view says what the
 * device holds, for nvmk_ctrl_adopt(). Which way it went is logged. Device
 * addresses are handed out from 4 GiB up (never equal to host addresses);
 * every DMA block is shared with the server through its memfd.
 *
 * Return: 0; -ENOENT (no socket at @path), -ENOTSOCK (@path is not a
 *         socket), -ECONNREFUSED (nobody listens: stale socket), -EPROTO (not
 *         a vfio-user server, or it answered nonsense), -EPROTONOSUPPORT
 *         (version mismatch), -ENODEV (not an NVMe function), -EBUSY (another
 *         client is attached), -ETIMEDOUT;
 *         each with a log line saying what to do.
 * After the server goes away, register reads return all ones (as a
 * surprise-removed PCI function) and every request fails with -ENODEV.
 */
int nvmk_backing_vfio_user_open(const char *path, const struct nvmk_vfio_user_opts *opts,
				struct nvmk_backing **out);

/** nvmk_backing_device_view - ops->device_view, or NULL when the backing has none. */
static inline const struct nvmk_dev_view *nvmk_backing_device_view(struct nvmk_backing *b)
{
	return b && b->ops->device_view ? b->ops->device_view(b) : NULL;
}

/** nvmk_backing_is_vfio_user - whether @b was made by nvmk_backing_vfio_user_open/_adopt. */
bool nvmk_backing_is_vfio_user(const struct nvmk_backing *b);

/** nvmk_backing_vfio_user_spec_path - "vfio-user:PATH" -> PATH, or NULL if @spec is not one. */
const char *nvmk_backing_vfio_user_spec_path(const char *spec);

/*
 * Handover across execve without a reset (the servicing path). The server
 * never sees it: the connection (socket fd), the MSI-X eventfds and the
 * memfds of the DMA blocks stay open in the successor, and the server's DMA
 * maps stay in place. The successor re-attaches with
 * nvmk_backing_vfio_user_adopt(): it maps the doorbells again and takes the
 * DMA maps back with dma_remap (nvmk_backing_dma_reclaim) at their saved
 * IOVAs, with no message to the server.
 */
#define NVMK_VFIO_USER_MAX_IRQS 64
#define NVMK_VFIO_USER_MAX_MAPS 256

struct nvmk_vfio_user_handover {
	char path[108];	   /* the server's socket (for log lines and a later reconnect) */
	int sock_fd;	   /* the connected socket */
	uint16_t next_msg_id;
	uint64_t next_iova; /* device addresses below this may be in use */
	unsigned nirqs;
	int irq_fds[NVMK_VFIO_USER_MAX_IRQS];
	unsigned nmaps;
	struct nvmk_vfio_handover_map maps[NVMK_VFIO_USER_MAX_MAPS]; /* iova, size, memfd, offset */
};

/**
 * nvmk_backing_vfio_user_export_fds - prepare @b for execve and describe it.
 * Clears FD_CLOEXEC on the socket, the eventfds and the memfds of mapped
 * blocks. Afterwards @b must not map DMA nor be destroyed (closing the socket
 * would look like a client crash to the server): exec, or call
 * nvmk_backing_vfio_user_export_abort().
 * Return: 0, -ENOSPC (more maps or vectors than the handover holds), -ENODEV
 *         (server gone), or another negative errno.
 */
int nvmk_backing_vfio_user_export_fds(struct nvmk_backing *b, struct nvmk_vfio_user_handover *ho);
/** nvmk_backing_vfio_user_export_abort - undo an export that did not lead to exec. */
int nvmk_backing_vfio_user_export_abort(struct nvmk_backing *b,
					const struct nvmk_vfio_user_handover *ho);
/**
 * nvmk_vfio_user_handover_format - @ho as one printable string for argv/env:
 * "vfu1;sock=FD;msgid=N;iova=HEX;irqs=FD,...;maps=IOVA:SIZE:FD:OFF,...;path=PATH"
 * (hex without 0x for the 64-bit values; the path comes last and may hold ';').
 * Return: length, or -ENOSPC.
 */
int nvmk_vfio_user_handover_format(const struct nvmk_vfio_user_handover *ho, char *buf,
				   size_t len);
/** nvmk_vfio_user_handover_parse - inverse of _format, strict. Return: 0 or -EINVAL. */
int nvmk_vfio_user_handover_parse(const char *s, struct nvmk_vfio_user_handover *ho);
/**
 * nvmk_backing_vfio_user_adopt - re-attach to the connection of @ho without
 * any message that changes the device (no reset, no SET_IRQS, no DMA_MAP):
 * region information is read again and the doorbells mmap'd again.
 * irq_enable() with at most @ho->nirqs vectors reuses the inherited
 * eventfds; dma_remap of a block at a saved IOVA reuses the server's map.
 * Return: 0 or negative errno; the inherited fds are not closed on failure.
 */
int nvmk_backing_vfio_user_adopt(const struct nvmk_vfio_user_handover *ho,
				 const struct nvmk_vfio_user_opts *opts, struct nvmk_backing **out);

/* ---- PCI setup (the CLI's `nvmekeep setup`) ---- */

struct nvmk_pci_func {
	char addr[16];      /* DDDD:BB:DD.F */
	uint16_t vendor, device;
	char driver[32];    /* bound driver, "" when none */
	char iommu_group[16]; /* "" when none */
};

/**
 * nvmk_pci_list_nvme - the NVMe functions (class 0x010802) in sysfs.
 * @sysfs_root: NULL = "/sys"
 * @out/@max:   array to fill; @n receives the number found (may exceed @max)
 * Return: 0 or negative errno.
 */
int nvmk_pci_list_nvme(const char *sysfs_root, struct nvmk_pci_func *out, size_t max, size_t *n);

/* Options of nvmk_pci_setup_bind / _unbind. Zeroed: real /sys and /proc,
 * no force, act. */
struct nvmk_pci_setup_opts {
	const char *sysfs_root; /* NULL = "/sys" */
	const char *proc_root;  /* NULL = "/proc" (mounts, swaps, PID/fd) */
	bool force;             /* act even when the function is in use (data may be lost) */
	bool dry_run;           /* check everything, say what would be done, change nothing */
	char *report;           /* optional: the steps done (or that would be), "; " separated */
	size_t report_len;
};

/**
 * nvmk_pci_setup_bind - hand NVMe function @addr to vfio-pci
 * (driver_override, unbind, drivers_probe).
 *
 * Only a function of class 010802h (NVMe) is touched, with or without
 * force. While on nvme, a function is in use when a namespace or one of its
 * partitions is mounted or used as swap, has a holder (LVM, device mapper,
 * MD: /sys/block/X/holders), or a process has the block device or the
 * controller's character device open (/proc/PID/fd): refused unless forced.
 * Return: 0 (done, or nothing to do, or dry run), -EINVAL (malformed address,
 * or not an NVMe controller), -ENODEV (no such function, driver not loaded),
 * -EBUSY (in use), -EIO (did not bind), or the errno of a sysfs write.
 */
int nvmk_pci_setup_bind(const char *addr, const struct nvmk_pci_setup_opts *opts);
/** nvmk_pci_setup_unbind - give NVMe function @addr back to the kernel nvme
 *  driver. In use (refused unless forced): a process has its VFIO group file
 *  open. Return: as nvmk_pci_setup_bind. */
int nvmk_pci_setup_unbind(const char *addr, const struct nvmk_pci_setup_opts *opts);
/** nvmk_pci_is_nvme - whether @addr is a PCI function of class 010802h. */
bool nvmk_pci_is_nvme(const char *sysfs_root, const char *addr);

/** nvmk_pci_bind_vfio - nvmk_pci_setup_bind with @force and the roots (NULL = real). */
int nvmk_pci_bind_vfio(const char *sysfs_root, const char *proc_root, const char *addr, bool force);
/** nvmk_pci_unbind_to_nvme - nvmk_pci_setup_unbind with @force and the roots. */
int nvmk_pci_unbind_to_nvme(const char *sysfs_root, const char *proc_root, const char *addr,
			    bool force);
/** nvmk_pci_addr_valid - whether @addr is a well-formed "DDDD:BB:DD.F". */
bool nvmk_pci_addr_valid(const char *addr);

/* ---- Device strings: what a name means (the one parser of them) ---- */

/* The forms of a device string, as every program takes it. */
enum nvmk_dev_kind {
	NVMK_DEV_EMU = 1,     /* "emu" (built-in emulated controller) or "emu:FILE" */
	NVMK_DEV_PCI,	      /* a PCI function "DDDD:BB:DD.F" or "BB:DD.F" */
	NVMK_DEV_VFIO_USER,   /* "vfio-user:SOCKET": a vfio-user server */
	NVMK_DEV_KERNEL_NS,   /* "/dev/nvmeXnY": a namespace of the kernel nvme driver */
	NVMK_DEV_KERNEL_CTRL, /* "/dev/nvmeX": a controller of the kernel nvme driver */
	NVMK_DEV_PATH,	      /* another absolute path: block device or file, kernel path */
};

/* A parsed device string. @arg points into the parsed string. */
struct nvmk_dev_spec {
	enum nvmk_dev_kind kind;
	const char *arg;      /* EMU: FILE or NULL; VFIO_USER: SOCKET; KERNEL_*, PATH: the path */
	char pci_addr[16];    /* PCI: "dddd:bb:dd.f", lower case, domain filled in */
	unsigned ctrl_instance; /* KERNEL_NS, KERNEL_CTRL: X of /dev/nvmeX */
	unsigned ns_instance;   /* KERNEL_NS: Y of /dev/nvmeXnY (the kernel's name, not the NSID) */
};

/**
 * nvmk_dev_spec_parse - what device string @str means.
 * @str:     "emu", "emu:FILE", "DDDD:BB:DD.F", "BB:DD.F", "vfio-user:SOCKET",
 *           "/dev/nvmeXnY", "/dev/nvmeX", or another absolute path
 * @out:     the form and its parts (pointers into @str)
 * @why:     optional: on failure, what is wrong ("a FILE must follow the
 *           colon", "not a PCI address: ..."); nvmk_dev_spec_forms() says
 *           what is accepted
 * Only the string is looked at: whether the device exists is the opener's
 * business. Which driver serves a PCI function: nvmk_mgr_dev_driver.
 * Return: 0 or -EINVAL (malformed: @why says why).
 */
int nvmk_dev_spec_parse(const char *str, struct nvmk_dev_spec *out, char *why, size_t why_len);

/** nvmk_dev_spec_forms - the accepted forms, for an error message ("'emu', 'emu:FILE', ..."). */
const char *nvmk_dev_spec_forms(void);

/** nvmk_dev_spec_is_kernel - whether @s names a kernel device or path (KERNEL_NS, KERNEL_CTRL, PATH). */
bool nvmk_dev_spec_is_kernel(const struct nvmk_dev_spec *s);

/**
 * nvmk_pci_bound_driver - the driver PCI function @addr is bound to.
 * @sysfs_root: NULL = "/sys"
 * @buf:        the driver's name ("nvme", "vfio-pci"), "" when none
 * Return: 0, -EINVAL (malformed address), -ENODEV (no such function).
 */
int nvmk_pci_bound_driver(const char *sysfs_root, const char *addr, char *buf, size_t len);

#endif /* NVMEKEEP_BACKING_H */
