/* SPDX-License-Identifier: MIT */
/*
 * DMA for the VFIO backing.
 *
 * type1: every block is mapped with VFIO_IOMMU_MAP_DMA at an IOVA taken by a
 * bump allocator from the ranges the kernel reports as usable
 * (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: reserved regions such as the MSI
 * window are holes). IOVA space is never reused: 2^39+ bytes of it outlast
 * any realistic number of queue/buffer allocations of one process.
 *
 * no-IOMMU: the device sees physical addresses. Blocks are mlock()ed and
 * resolved page by page through /proc/self/pagemap (needs CAP_SYS_ADMIN, or
 * the PFNs read as 0). Limits: mlock keeps pages resident but does not stop
 * the kernel from *migrating* normal pages (compaction, NUMA balancing), so
 * a 4 KiB-page block can change physical address under a running device.
 * hugetlb pages are not moved by compaction: hugetlb memfds are strongly
 * preferred (opts.require_hugepages enforces them).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_internal.h"

#define HUGETLBFS_MAGIC_NR 0x958458f6u
#define PM_PRESENT	   (1ull << 63)
#define PM_SWAPPED	   (1ull << 62)
#define PM_PFN_MASK	   ((1ull << 55) - 1)
/* The first MiB stays unused so that a zero or tiny bogus address written
 * by a confused device never hits a mapping. */
#define IOVA_FLOOR (1ull << 20)
#define SZ_2M	   (2ull << 20)

int vfio_pagemap_entry_phys(uint64_t entry, uint64_t *phys)
{
	if (!(entry & PM_PRESENT) || (entry & PM_SWAPPED))
		return -EFAULT;
	/* Without CAP_SYS_ADMIN the kernel reports present pages with PFN 0. */
	if (!(entry & PM_PFN_MASK))
		return -EPERM;
	*phys = (entry & PM_PFN_MASK) << NVMK_DMA_PAGE_SHIFT;
	return 0;
}

int vfio_pagemap_resolve(int pmfd, const void *va, size_t npages, uint64_t *out)
{
	uint64_t first = (uintptr_t)va >> NVMK_DMA_PAGE_SHIFT;
	size_t done = 0;

	if ((uintptr_t)va & (NVMK_DMA_PAGE_SIZE - 1))
		return -EINVAL;
	while (done < npages) {
		uint64_t ent[512];
		size_t chunk = npages - done < 512 ? npages - done : 512, i;
		ssize_t n = pread(pmfd, ent, chunk * 8, (off_t)((first + done) * 8));

		if (n < 0)
			return -errno;
		if ((size_t)n != chunk * 8)
			return -EIO;
		for (i = 0; i < chunk; i++) {
			int err = vfio_pagemap_entry_phys(ent[i], &out[done + i]);

			if (err)
				return err;
		}
		done += chunk;
	}
	return 0;
}

int vfio_iova_ranges_parse(const void *info_buf, size_t len, struct vfio_iova_span *out,
			   unsigned max, unsigned *n)
{
	const uint8_t *base = info_buf;
	struct vfio_iommu_type1_info info;
	uint32_t off;
	unsigned hops = 0;

	*n = 0;
	if (len < sizeof(info))
		return -ENOENT;
	memcpy(&info, base, sizeof(info));
	if (!(info.flags & VFIO_IOMMU_INFO_CAPS))
		return -ENOENT;
	/* Capabilities may be only 4-byte aligned in the kernel's answer
	 * (UBSan caught it on 6.1) while they hold u64 fields: every access
	 * goes through memcpy. */
	off = info.cap_offset;
	while (off && hops++ < 64) {
		struct vfio_iommu_type1_info_cap_iova_range c;
		struct vfio_info_cap_header h;
		uint32_t i;

		if (off < sizeof(info) || off > len || len - off < sizeof(h))
			return -EINVAL;
		memcpy(&h, base + off, sizeof(h));
		if (h.id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			off = h.next;
			continue;
		}
		if (len - off < sizeof(c))
			return -EINVAL;
		memcpy(&c, base + off, sizeof(c));
		if ((len - off - sizeof(c)) / sizeof(c.iova_ranges[0]) < c.nr_iovas)
			return -EINVAL;
		for (i = 0; i < c.nr_iovas && *n < max; i++) {
			struct vfio_iova_range r;

			memcpy(&r, base + off + sizeof(c) + i * sizeof(r), sizeof(r));
			if (r.end < r.start)
				continue;
			out[*n].start = r.start;
			out[*n].end = r.end;
			(*n)++;
		}
		return *n ? 0 : -ENOENT;
	}
	return -ENOENT;
}

int vfio_iova_alloc(struct vfio_backing *vb, uint64_t size, uint64_t *iova)
{
	/* 2 MiB alignment for large blocks lets the IOMMU use superpages. */
	uint64_t align = size >= SZ_2M ? SZ_2M : NVMK_DMA_PAGE_SIZE;
	unsigned i;

	if (!size)
		return -EINVAL;
	for (i = 0; i < vb->nranges; i++) {
		uint64_t c = vb->iova_next;

		if (c < vb->ranges[i].start)
			c = vb->ranges[i].start;
		if (c < IOVA_FLOOR)
			c = IOVA_FLOOR;
		c = (c + align - 1) & ~(align - 1);
		if (c < vb->ranges[i].start || c > vb->ranges[i].end ||
		    vb->ranges[i].end - c < size - 1)
			continue;
		*iova = c;
		vb->iova_next = c + size;
		return 0;
	}
	return -ENOSPC;
}

int vfio_dma_setup(struct vfio_backing *vb)
{
	struct vfio_iommu_type1_info probe = {.argsz = sizeof(probe)};
	void *buf;
	int err;

	if (vb->noiommu)
		return 0;
	if (ioctl(vb->container, VFIO_IOMMU_GET_INFO, &probe) < 0) {
		err = -errno;
		nvmk_err(vb->base.name, NVMK_LOG_NOQ, "VFIO_IOMMU_GET_INFO: %s", strerror(-err));
		return err;
	}
	buf = calloc(1, probe.argsz > sizeof(probe) ? probe.argsz : sizeof(probe));
	if (!buf)
		return -ENOMEM;
	((struct vfio_iommu_type1_info *)buf)->argsz = probe.argsz;
	if (ioctl(vb->container, VFIO_IOMMU_GET_INFO, buf) < 0 ||
	    vfio_iova_ranges_parse(buf, probe.argsz, vb->ranges, VFIO_MAX_IOVA_RANGES,
				   &vb->nranges) < 0) {
		/* Kernels before 5.4 do not report ranges: assume the 39-bit
		 * space every IOMMU we run on can address. */
		vb->ranges[0].start = 0;
		vb->ranges[0].end = (1ull << 39) - 1;
		vb->nranges = 1;
		nvmk_info(vb->base.name, NVMK_LOG_NOQ, "no IOVA ranges reported, assuming 39 bits");
	}
	free(buf);
	vb->iova_next = 0;
	return 0;
}

/* Bytes this process has locked (VmLck: mlock and VFIO type1 pins alike). */
static uint64_t locked_bytes(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %llu", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

void vfio_dma_explain_lock_failure(const struct vfio_backing *vb, int err, uint64_t size)
{
	struct rlimit rl;
	char cur[32] = "unlimited";
	uint64_t locked;

	if (err != -ENOMEM && err != -EPERM && err != -EAGAIN) {
		nvmk_err(vb->base.name, NVMK_LOG_NOQ, "pinning %" PRIu64 " bytes of DMA memory: %s",
			 size, strerror(-err));
		return;
	}
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(cur, sizeof(cur), "%llu bytes", (unsigned long long)rl.rlim_cur);
	locked = locked_bytes();
	nvmk_err(vb->base.name, NVMK_LOG_NOQ,
		 "pinning %" PRIu64 " bytes of DMA memory failed (%s): RLIMIT_MEMLOCK is %s, "
		 "%" PRIu64 " bytes are locked already, so at least %" PRIu64 " bytes are needed; "
		 "raise it (ulimit -l, systemd LimitMEMLOCK=, /etc/security/limits.conf) or "
		 "grant CAP_IPC_LOCK",
		 size, strerror(-err), cur, locked, locked + size);
}

static struct vfio_map *map_find_vaddr(struct vfio_backing *vb, const void *vaddr)
{
	unsigned i;

	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++)
		if (vb->maps[i].in_use && !vb->maps[i].pending && vb->maps[i].vaddr == vaddr)
			return &vb->maps[i];
	return NULL;
}

/* An inherited mapping of the same memfd range, waiting to be re-attached. */
static struct vfio_map *map_find_pending(struct vfio_backing *vb, const struct stat *st,
					 uint64_t fd_offset, uint64_t size)
{
	unsigned i;

	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++) {
		struct vfio_map *m = &vb->maps[i];

		if (m->in_use && m->pending && m->st_dev == st->st_dev && m->st_ino == st->st_ino &&
		    m->fd_offset == fd_offset && m->size == size)
			return m;
	}
	return NULL;
}

static struct vfio_map *map_slot(struct vfio_backing *vb)
{
	unsigned i;

	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++)
		if (!vb->maps[i].in_use)
			return &vb->maps[i];
	return NULL;
}

static int type1_map(struct vfio_backing *vb, struct vfio_map *m, bool vaddr_only)
{
	struct vfio_iommu_type1_dma_map dm = {
	    .argsz = sizeof(dm),
	    .flags = vaddr_only ? VFIO_DMA_MAP_FLAG_VADDR
				: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
	    .vaddr = (uintptr_t)m->vaddr,
	    .iova = m->iova,
	    .size = m->size,
	};

	if (ioctl(vb->container, VFIO_IOMMU_MAP_DMA, &dm) < 0)
		return -errno;
	return 0;
}

/*
 * The raw system calls: sanitizer runtimes replace mlock()/munlock() with
 * no-ops, and no-IOMMU mode depends on mlock both pinning and faulting in
 * the pages before pagemap is read.
 */
static int lock_pages(void *va, size_t len)
{
	return (int)syscall(SYS_mlock, va, len);
}

static void unlock_pages(void *va, size_t len)
{
	syscall(SYS_munlock, va, len);
}

static int noiommu_pin(struct vfio_backing *vb, struct vfio_map *m, int memfd)
{
	size_t npages = m->size >> NVMK_DMA_PAGE_SHIFT;
	struct statfs sfs;
	int pm, err;

	if (fstatfs(memfd, &sfs) == 0 && (uint32_t)sfs.f_type != HUGETLBFS_MAGIC_NR) {
		if (vb->require_huge) {
			nvmk_err(
			    vb->base.name, NVMK_LOG_NOQ,
			    "no-IOMMU mode needs hugetlb DMA memory (normal pages can be "
			    "migrated under the device) but this block is not hugetlb: reserve "
			    "huge pages (echo N > /proc/sys/vm/nr_hugepages) so the DMA layer "
			    "can allocate them");
			return -ENOMEM;
		}
		if (!vb->warned_small_pages) {
			vb->warned_small_pages = true;
			nvmk_warn(vb->base.name, NVMK_LOG_NOQ,
				  "no-IOMMU DMA on normal 4 KiB pages: mlocked, but compaction may "
				  "still migrate them; prefer hugetlb (vm.nr_hugepages)");
		}
	}
	if (lock_pages(m->vaddr, m->size) < 0) {
		err = -errno;
		vfio_dma_explain_lock_failure(vb, err, m->size);
		return err;
	}
	m->page_iova = calloc(npages, sizeof(uint64_t));
	if (!m->page_iova) {
		unlock_pages(m->vaddr, m->size);
		return -ENOMEM;
	}
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	err = pm < 0 ? -errno : vfio_pagemap_resolve(pm, m->vaddr, npages, m->page_iova);
	if (pm >= 0)
		close(pm);
	if (err) {
		if (err == -EPERM)
			nvmk_err(vb->base.name, NVMK_LOG_NOQ,
				 "/proc/self/pagemap hides physical addresses: no-IOMMU DMA needs "
				 "CAP_SYS_ADMIN (run as root)");
		else
			nvmk_err(vb->base.name, NVMK_LOG_NOQ, "resolving physical addresses: %s",
				 strerror(-err));
		free(m->page_iova);
		m->page_iova = NULL;
		unlock_pages(m->vaddr, m->size);
		return err;
	}
	m->iova = m->page_iova[0];
	return 0;
}

/* Re-attach an inherited block (@m, pending) at its old device address to
 * @buf's new host address. */
static int map_reattach(struct vfio_backing *vb, struct vfio_map *m, struct nvmk_dma_buf *buf)
{
	const char *name = vb->base.name;
	int err;

	m->vaddr = buf->mem.vaddr;
	m->fd = buf->mem.fd;
	if (vb->noiommu) {
		uint64_t old = m->iova;

		err = noiommu_pin(vb, m, buf->mem.fd);
		if (!err && old && old != m->iova) {
			nvmk_err(name, NVMK_LOG_NOQ,
				 "inherited DMA block moved from %#" PRIx64 " to %#" PRIx64
				 " during the handover",
				 old, m->iova);
			free(m->page_iova);
			m->page_iova = NULL;
			unlock_pages(m->vaddr, m->size);
			m->iova = old;
			err = -EIO;
		}
	} else {
		err = type1_map(vb, m, true);
		if (err == -ENOMEM || err == -EPERM)
			vfio_dma_explain_lock_failure(vb, err, m->size);
		else if (err)
			nvmk_err(name, NVMK_LOG_NOQ, "VFIO_IOMMU_MAP_DMA(FLAG_VADDR) iova %#" PRIx64 ": %s",
				 m->iova, strerror(-err));
		m->vaddr_valid = !err;
	}
	if (err)
		return err;
	m->pending = false;
	buf->iova = m->iova;
	buf->page_iova = m->page_iova;
	return 0;
}

/*
 * Servicing (ops->dma_remap): the device knows @buf->iova, a block the
 * predecessor mapped and handed over (nvmk_backing_vfio_adopt). Re-attach
 * that inherited mapping: type1 registers the new virtual address for the
 * live IOMMU mapping (VFIO_DMA_MAP_FLAG_VADDR: the device reaches the same
 * pinned pages throughout); no-IOMMU pins the pages again and checks that
 * the block still starts at the physical address the device was given. A
 * block the handover does not list cannot be remapped: the device may be
 * using an address nobody backs (-ENOENT).
 */
int vfio_dma_remap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfio_backing *vb = to_vfio(b);
	struct vfio_map *m;
	struct stat st;

	if (!buf || !buf->mem.vaddr || !buf->mem.size ||
	    (buf->mem.size & (NVMK_DMA_PAGE_SIZE - 1)))
		return -EINVAL;
	if (vb->exported)
		return -EBUSY;
	if (buf->mem.fd < 0 || fstat(buf->mem.fd, &st) < 0) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA block at %p has no memfd", buf->mem.vaddr);
		return -EBADF;
	}
	m = map_find_pending(vb, &st, buf->mem.fd_offset, buf->mem.size);
	if (!m) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "remap of iova %#" PRIx64 ": the handover has no mapping of that block "
			 "(memfd offset %#" PRIx64 ", %" PRIu64 " bytes)",
			 buf->iova, (uint64_t)buf->mem.fd_offset, (uint64_t)buf->mem.size);
		return -ENOENT;
	}
	/* type1: the handover's iova is the device address; no-IOMMU: the
	 * physical address of the first page (0 when not recorded) */
	if (m->iova && m->iova != buf->iova) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "remap of iova %#" PRIx64 ": the inherited mapping of that block is at %#" PRIx64,
			 buf->iova, m->iova);
		return -EINVAL;
	}
	if (!m->iova)
		m->iova = buf->iova;
	return map_reattach(vb, m, buf);
}

int vfio_dma_map(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfio_backing *vb = to_vfio(b);
	struct vfio_map *m;
	struct stat st;
	int err;

	if (!buf || !buf->mem.vaddr || !buf->mem.size ||
	    (buf->mem.size & (NVMK_DMA_PAGE_SIZE - 1)) ||
	    ((uintptr_t)buf->mem.vaddr & (NVMK_DMA_PAGE_SIZE - 1)))
		return -EINVAL;
	if (vb->exported)
		return -EBUSY;
	if (map_find_vaddr(vb, buf->mem.vaddr))
		return -EEXIST;
	if (buf->mem.fd < 0 || fstat(buf->mem.fd, &st) < 0) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA block at %p has no memfd", buf->mem.vaddr);
		return -EBADF;
	}

	m = map_find_pending(vb, &st, buf->mem.fd_offset, buf->mem.size);
	if (m)
		return map_reattach(vb, m, buf);

	m = map_slot(vb);
	if (!m) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "more than %u DMA mappings", NVMK_VFIO_MAX_MAPS);
		return -ENOSPC;
	}
	memset(m, 0, sizeof(*m));
	m->vaddr = buf->mem.vaddr;
	m->size = buf->mem.size;
	m->fd = buf->mem.fd;
	m->fd_offset = buf->mem.fd_offset;
	m->st_dev = st.st_dev;
	m->st_ino = st.st_ino;
	if (vb->noiommu) {
		err = noiommu_pin(vb, m, buf->mem.fd);
	} else {
		err = vfio_iova_alloc(vb, m->size, &m->iova);
		if (err) {
			nvmk_err(b->name, NVMK_LOG_NOQ, "IOVA space exhausted (%" PRIu64 " bytes)",
				 m->size);
			return err;
		}
		err = type1_map(vb, m, false);
		if (err == -ENOMEM || err == -EPERM || err == -EAGAIN)
			vfio_dma_explain_lock_failure(vb, err, m->size);
		else if (err)
			nvmk_err(b->name, NVMK_LOG_NOQ,
				 "VFIO_IOMMU_MAP_DMA %" PRIu64 " bytes at iova %#" PRIx64 ": %s",
				 m->size, m->iova, strerror(-err));
		m->vaddr_valid = !err;
	}
	if (err)
		return err;
	m->in_use = true;
	buf->iova = m->iova;
	buf->page_iova = m->page_iova;
	return 0;
}

static void map_release(struct vfio_backing *vb, struct vfio_map *m)
{
	if (vb->noiommu) {
		if (m->page_iova && m->vaddr)
			unlock_pages(m->vaddr, m->size);
	} else {
		struct vfio_iommu_type1_dma_unmap u = {
		    .argsz = sizeof(u),
		    .iova = m->iova,
		    .size = m->size,
		};

		/* Also right for a mapping whose vaddr was invalidated: the
		 * IOMMU entries and the pins go. */
		if (ioctl(vb->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
			nvmk_warn(vb->base.name, NVMK_LOG_NOQ,
				  "VFIO_IOMMU_UNMAP_DMA iova %#" PRIx64 ": %s", m->iova,
				  strerror(errno));
	}
	free(m->page_iova);
	memset(m, 0, sizeof(*m));
}

void vfio_dma_unmap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfio_backing *vb = to_vfio(b);
	struct vfio_map *m;

	if (!buf)
		return;
	m = map_find_vaddr(vb, buf->mem.vaddr);
	if (!m) {
		nvmk_warn(b->name, NVMK_LOG_NOQ, "dma_unmap of unmapped block %p", buf->mem.vaddr);
		return;
	}
	map_release(vb, m);
	buf->page_iova = NULL;
}

void vfio_dma_unmap_all(struct vfio_backing *vb)
{
	unsigned i;

	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++)
		if (vb->maps[i].in_use)
			map_release(vb, &vb->maps[i]);
}

int vfio_dma_vaddr_invalidate(struct vfio_backing *vb)
{
	unsigned i;

	if (vb->noiommu)
		return 0;
	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++) {
		struct vfio_map *m = &vb->maps[i];
		struct vfio_iommu_type1_dma_unmap u = {
		    .argsz = sizeof(u),
		    .flags = VFIO_DMA_UNMAP_FLAG_VADDR,
		    .iova = m->iova,
		    .size = m->size,
		};

		if (!m->in_use || !m->vaddr_valid)
			continue;
		if (ioctl(vb->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0) {
			int err = -errno;

			nvmk_err(vb->base.name, NVMK_LOG_NOQ,
				 "VFIO_IOMMU_UNMAP_DMA(FLAG_VADDR) iova %#" PRIx64 ": %s", m->iova,
				 strerror(-err));
			vfio_dma_vaddr_restore(vb);
			return err;
		}
		m->vaddr_valid = false;
	}
	return 0;
}

int vfio_dma_vaddr_restore(struct vfio_backing *vb)
{
	unsigned i;
	int ret = 0;

	if (vb->noiommu)
		return 0;
	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++) {
		struct vfio_map *m = &vb->maps[i];
		int err;

		if (!m->in_use || m->pending || m->vaddr_valid)
			continue;
		err = type1_map(vb, m, true);
		if (err) {
			nvmk_err(vb->base.name, NVMK_LOG_NOQ,
				 "VFIO_IOMMU_MAP_DMA(FLAG_VADDR) iova %#" PRIx64 ": %s", m->iova,
				 strerror(-err));
			ret = ret ? ret : err;
			continue;
		}
		m->vaddr_valid = true;
	}
	return ret;
}
