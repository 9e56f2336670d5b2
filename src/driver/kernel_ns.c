// SPDX-License-Identifier: MIT
/*
 * The kernel namespace path (include/nvmekeep/kernel_ns.h): a struct nvmk_ns
 * whose synchronous I/O goes to a /dev/nvmeXnY block device of the Linux NVMe
 * driver through io_uring: the second implementation of the namespace and
 * queue-pair operations (drv_kernel_io_ops, io_ops.h). The public calls of
 * ns_io.c, ns_sync.c, ns_state.c and qpair.c reach it through the handle's
 * table, from their out-of-line general paths: the NVMe-queue fast-path gate always fails for
 * a kernel qpair and a kernel namespace (see "Asynchronous path" below).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver/drv.h"
#include "driver/io_ops.h"
#include "nvmekeep/kernel_ns.h"

#define KNS_RING_DEPTH	     4
#define KNS_FILE_LBA_SHIFT   9		/* regular files: 512-byte blocks */
#define KNS_DEFAULT_MAX_XFER (1u << 20) /* when sysfs has no max_sectors_kb */

struct drv_kns {
	int fd;
	bool is_blk;
	bool direct; /* O_DIRECT: buffers and lengths aligned to the block size */
	struct io_uring ring;
	pthread_mutex_t lock; /* serialises the ring (one SQE in flight) */
	char name[64];	      /* for the log: "nvme0n1" */
	uint64_t nblocks;
	/* blocks per request the device takes (nvmk_ns_info); the handle's
	 * own max_blocks stays 0, which keeps it off the NVMe-queue fast path */
	uint32_t max_blocks;
};

bool nvmk_ns_is_kernel(const struct nvmk_ns *ns)
{
	return ns && ns->kern;
}

static int read_sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];
	ssize_t n;
	int fd;

	/* *v is defined on every return: a failed open can leave errno 0 as
	 * far as the compiler knows, so "return -errno" may be 0 to it. */
	*v = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno ? -errno : -EIO;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	*v = strtoull(buf, NULL, 0);
	return 0;
}

/*
 * A controller's sysfs directory (/sys/bus/pci/devices/ADDR/nvme/nvmeN or
 * /sys/class/nvme/nvmeN) holds one directory per namespace: "nvmeNnM" (a disk
 * of its own), or "nvmeScNnM" when the namespace sits under a multipath head,
 * whose disk is then "nvmeSnM" (Linux names the head with the subsystem
 * instance and the path with subsystem/controller instances).
 */
static int find_ns_in_ctrl(const char *ctrl_dir, uint32_t nsid, char *path, size_t len)
{
	char f[PATH_MAX + 512];
	struct dirent *n;
	DIR *dn = opendir(ctrl_dir);
	int ret = -ENODEV;

	if (!dn)
		return -ENODEV;
	while ((n = readdir(dn))) {
		unsigned s, ci, m;
		uint64_t id;

		if (strncmp(n->d_name, "nvme", 4) || !strchr(n->d_name + 4, 'n'))
			continue;
		if (snprintf(f, sizeof(f), "%s/%s/nsid", ctrl_dir, n->d_name) >= (int)sizeof(f) ||
		    read_sysfs_u64(f, &id) || id != nsid)
			continue;
		if (sscanf(n->d_name, "nvme%uc%un%u", &s, &ci, &m) == 3)
			ret = snprintf(path, len, "/dev/nvme%un%u", s, m);
		else
			ret = snprintf(path, len, "/dev/%s", n->d_name);
		ret = ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
		break;
	}
	closedir(dn);
	return ret;
}

int nvmk_kns_find_blockdev_at(const char *sysfs_root, const char *dev, uint32_t nsid, char *path,
			      size_t len)
{
	const char *root = sysfs_root && *sysfs_root ? sysfs_root : "/sys";
	char dir[PATH_MAX], sub[PATH_MAX + 256];
	struct nvmk_dev_spec ds;
	struct dirent *c;
	DIR *dc;
	int ret = -ENODEV;

	if (!path || !len || nvmk_dev_spec_parse(dev, &ds, NULL, 0))
		return -EINVAL;
	if (ds.kind == NVMK_DEV_KERNEL_CTRL) {
		snprintf(dir, sizeof(dir), "%s/class/nvme/nvme%u", root, ds.ctrl_instance);
		return find_ns_in_ctrl(dir, nsid, path, len);
	}
	if (ds.kind != NVMK_DEV_PCI)
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s/nvme", root, ds.pci_addr);
	dc = opendir(dir);
	if (!dc)
		return -ENODEV; /* not bound to the nvme driver */
	while (ret == -ENODEV && (c = readdir(dc))) {
		if (strncmp(c->d_name, "nvme", 4))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, c->d_name) >= (int)sizeof(sub))
			continue;
		ret = find_ns_in_ctrl(sub, nsid, path, len);
	}
	closedir(dc);
	return ret;
}

int nvmk_kns_find_blockdev(const char *pci_addr, uint32_t nsid, char *path, size_t len)
{
	struct nvmk_dev_spec ds;

	if (nvmk_dev_spec_parse(pci_addr, &ds, NULL, 0) || ds.kind != NVMK_DEV_PCI)
		return -EINVAL;
	return nvmk_kns_find_blockdev_at(NULL, pci_addr, nsid, path, len);
}

static void kns_fill_blk_info(struct drv_kns *k, uint8_t lba_shift, const char *base)
{
	char f[PATH_MAX];
	uint64_t v;
	uint64_t max = KNS_DEFAULT_MAX_XFER;

	if (snprintf(f, sizeof(f), "/sys/class/block/%.200s/queue/max_sectors_kb", base) <
		(int)sizeof(f) &&
	    !read_sysfs_u64(f, &v) && v)
		max = v << 10;
	max >>= lba_shift;
	if (max > NVME_MAX_NLB)
		max = NVME_MAX_NLB;
	k->max_blocks = max ? (uint32_t)max : 1;
}

int nvmk_kns_open(const char *dev, uint32_t nsid, struct nvmk_ns **out)
{
	struct nvmk_dev_spec ds;
	char path[PATH_MAX];
	const char *base;
	struct drv_kns *k;
	struct nvmk_ns *ns;
	struct stat st;
	uint64_t bytes = 0, v;
	int lbsz = 0, ret;

	*out = NULL;
	if (!dev || !*dev)
		return -EINVAL;
	/* a PCI function or a controller (/dev/nvmeX) names its namespaces by
	 * NSID; anything else is the path of one (relative paths too) */
	if (nvmk_dev_spec_parse(dev, &ds, NULL, 0))
		ds.kind = NVMK_DEV_PATH;
	if (ds.kind == NVMK_DEV_PCI || ds.kind == NVMK_DEV_KERNEL_CTRL) {
		ret = nvmk_kns_find_blockdev_at(NULL, dev, nsid ? nsid : 1, path, sizeof(path));
		if (ret) {
			nvmk_err(dev, -1, "no block device of namespace %u: %s (%s)",
				 nsid ? nsid : 1,
				 ds.kind == NVMK_DEV_PCI
				     ? "is the function bound to the kernel nvme driver?"
				     : "does the controller have it?",
				 strerror(-ret));
			return ret;
		}
	} else {
		snprintf(path, sizeof(path), "%s", dev);
	}
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	ns = calloc(1, sizeof(*ns));
	k = calloc(1, sizeof(*k));
	if (!ns || !k) {
		free(ns);
		free(k);
		return -ENOMEM;
	}
	snprintf(k->name, sizeof(k->name), "%.63s", base);
	k->fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		ret = -errno;
		nvmk_err(k->name, -1, "cannot open %s: %s", path, strerror(-ret));
		goto err_free;
	}
	if (fstat(k->fd, &st)) {
		ret = -errno;
		goto err_close;
	}
	if (S_ISBLK(st.st_mode)) {
		k->is_blk = true;
		if (ioctl(k->fd, BLKGETSIZE64, &bytes) || ioctl(k->fd, BLKSSZGET, &lbsz)) {
			ret = -errno;
			nvmk_err(k->name, -1, "cannot read the device size: %s", strerror(-ret));
			goto err_close;
		}
		if (lbsz < 512 || (lbsz & (lbsz - 1))) {
			nvmk_err(k->name, -1, "unusable logical block size %d", lbsz);
			ret = -EINVAL;
			goto err_close;
		}
		/* Reopen with O_DIRECT: I/O goes to the device, not the page
		 * cache, as it does on the VFIO path. */
		close(k->fd);
		k->fd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT);
		if (k->fd < 0) {
			ret = -errno;
			nvmk_err(k->name, -1, "cannot open %s with O_DIRECT: %s", path,
				 strerror(-ret));
			goto err_free;
		}
		k->direct = true;
		ns->lba_shift = (uint8_t)__builtin_ctz((unsigned)lbsz);
		ns->nsid = nsid;
		snprintf(path, sizeof(path), "/sys/class/block/%.200s/nsid", k->name);
		if (!read_sysfs_u64(path, &v)) {
			if (nsid && v != nsid) {
				nvmk_err(k->name, -1, "is namespace %" PRIu64 ", not %u", v, nsid);
				ret = -ENODEV;
				goto err_close;
			}
			ns->nsid = (uint32_t)v;
		}
		kns_fill_blk_info(k, ns->lba_shift, k->name);
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
		ns->lba_shift = KNS_FILE_LBA_SHIFT;
		ns->nsid = nsid ? nsid : 1;
		k->max_blocks = KNS_DEFAULT_MAX_XFER >> KNS_FILE_LBA_SHIFT;
	} else {
		nvmk_err(k->name, -1, "%s is neither a block device nor a regular file", path);
		ret = -ENOTBLK;
		goto err_close;
	}
	ret = io_uring_queue_init(KNS_RING_DEPTH, &k->ring, 0);
	if (ret) {
		nvmk_err(k->name, -1, "io_uring is unavailable: %s", strerror(-ret));
		goto err_close;
	}
	pthread_mutex_init(&k->lock, NULL);
	ns->ops = &drv_kernel_io_ops;
	ns->kern = k;
	ns->shared = true;
	k->nblocks = bytes >> ns->lba_shift;
	nvmk_info(k->name, -1, "kernel namespace %u: %" PRIu64 " blocks of %u bytes%s", ns->nsid,
		  k->nblocks, 1u << ns->lba_shift, k->direct ? ", O_DIRECT" : "");
	*out = ns;
	return 0;

err_close:
	close(k->fd);
err_free:
	free(k);
	free(ns);
	return ret;
}

static void kns_close(struct nvmk_ns *ns)
{
	struct drv_kns *k = ns->kern;

	io_uring_queue_exit(&k->ring);
	pthread_mutex_destroy(&k->lock);
	close(k->fd);
	free(k);
	free(ns);
}

static void kns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info)
{
	memset(info, 0, sizeof(*info));
	info->nsid = ns->nsid;
	info->lba_shift = ns->lba_shift;
	info->block_size = 1u << ns->lba_shift;
	info->nblocks = ns->kern->nblocks;
	info->capacity = info->nblocks << ns->lba_shift;
	info->max_xfer_blocks = ns->kern->max_blocks;
	/* what the wrappers provide here (via ioctls), NVM-CS 1.0 Figure 97 bits */
	info->oncs = NVME_ONCS_WRITE_ZEROES | NVME_ONCS_DSM | NVME_ONCS_COMPARE;
}

/* One io_uring operation, waited for; res < 0 is a negative errno. */
static int kns_one(struct drv_kns *k, int op, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	sqe = io_uring_get_sqe(&k->ring);
	if (!sqe)
		return -EBUSY; /* cannot happen: one SQE at a time under the lock */
	if (op == IORING_OP_READV)
		io_uring_prep_readv(sqe, k->fd, iov, (unsigned)iovcnt, off);
	else if (op == IORING_OP_WRITEV)
		io_uring_prep_writev(sqe, k->fd, iov, (unsigned)iovcnt, off);
	else
		io_uring_prep_fsync(sqe, k->fd, 0);
	ret = io_uring_submit(&k->ring);
	if (ret < 0)
		return ret;
	do {
		ret = io_uring_wait_cqe(&k->ring, &cqe);
	} while (ret == -EINTR);
	if (ret)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&k->ring, cqe);
	return ret;
}

/* Read or write @len bytes of @iov at @off, resubmitting after short
 * transfers (a block device may return fewer bytes than asked). */
static int kns_rw_full(struct drv_kns *k, bool write, const struct iovec *iov, int iovcnt,
		       uint64_t off, uint64_t len)
{
	struct iovec local[64];
	struct iovec *v = local;
	int n = iovcnt, ret = 0;

	if (iovcnt > (int)(sizeof(local) / sizeof(local[0]))) {
		v = malloc(sizeof(*v) * (size_t)iovcnt);
		if (!v)
			return -ENOMEM;
	}
	memcpy(v, iov, sizeof(*v) * (size_t)iovcnt);
	while (len) {
		struct iovec *cur = v + (iovcnt - n);
		int r = kns_one(k, write ? IORING_OP_WRITEV : IORING_OP_READV, cur, n, off);
		size_t done;

		if (r < 0) {
			ret = r;
			break;
		}
		if (r == 0) { /* end of device/file */
			ret = -ERANGE;
			break;
		}
		done = (size_t)r;
		off += done;
		len -= done;
		while (done && n) {
			if (done >= cur->iov_len) {
				done -= cur->iov_len;
				cur++;
				n--;
			} else {
				cur->iov_base = (char *)cur->iov_base + done;
				cur->iov_len -= done;
				done = 0;
			}
		}
	}
	if (v != local)
		free(v);
	return ret;
}

static bool kns_aligned(const struct nvmk_ns *ns, const struct iovec *iov, int iovcnt)
{
	uintptr_t mask = (1u << ns->lba_shift) - 1;
	int i;

	if (!ns->kern->direct)
		return true;
	for (i = 0; i < iovcnt; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & mask)
			return false;
	return true;
}

static int kns_range(const struct nvmk_ns *ns, uint64_t slba, uint64_t nlb)
{
	if (nlb == 0)
		return -EINVAL;
	if (slba >= ns->kern->nblocks || nlb > ns->kern->nblocks - slba)
		return -ERANGE; /* as LBA Out of Range does on the VFIO path */
	return 0;
}

/* The synchronous wrappers: @qp is not used (the handle's own ring). */
static int kns_sync_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb)
{
	struct drv_kns *k = ns->kern;
	uint64_t len = 0, off = slba << ns->lba_shift, o;
	struct iovec bv;
	void *bounce = NULL;
	int i, ret;

	(void)qp;
	if (!iov || iovcnt <= 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len != ((uint64_t)nlb << ns->lba_shift))
		return -EINVAL;
	ret = kns_range(ns, slba, nlb);
	if (ret)
		return ret;
	if (opc != NVME_CMD_READ && opc != NVME_CMD_WRITE && opc != NVME_CMD_COMPARE)
		return -EOPNOTSUPP;

	/* Compare reads into a bounce buffer and compares, and an unaligned
	 * buffer cannot go to an O_DIRECT descriptor: both bounce. */
	if (opc == NVME_CMD_COMPARE || !kns_aligned(ns, iov, iovcnt)) {
		if (posix_memalign(&bounce, 4096, len))
			return -ENOMEM;
		if (opc == NVME_CMD_WRITE) {
			for (i = 0, o = 0; i < iovcnt; o += iov[i].iov_len, i++)
				memcpy((char *)bounce + o, iov[i].iov_base, iov[i].iov_len);
		}
		bv = (struct iovec){bounce, len};
	}
	pthread_mutex_lock(&k->lock);
	ret = kns_rw_full(k, opc == NVME_CMD_WRITE, bounce ? &bv : iov, bounce ? 1 : iovcnt, off,
			  len);
	pthread_mutex_unlock(&k->lock);
	if (!ret && bounce && opc != NVME_CMD_WRITE) {
		for (i = 0, o = 0; i < iovcnt && !ret; o += iov[i].iov_len, i++) {
			if (opc == NVME_CMD_READ)
				memcpy(iov[i].iov_base, (char *)bounce + o, iov[i].iov_len);
			else if (memcmp(iov[i].iov_base, (char *)bounce + o, iov[i].iov_len))
				ret = -EILSEQ; /* as Compare Failure (2/85h) */
		}
	}
	if (ret && ret != -EILSEQ)
		nvmk_err(k->name, -1, "%s of %u blocks at %" PRIu64 " failed: %s",
			 opc == NVME_CMD_WRITE ? "write" : "read", nlb, slba, strerror(-ret));
	free(bounce);
	return ret;
}

static int kns_sync_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	struct drv_kns *k = ns->kern;
	int ret;

	(void)qp;
	pthread_mutex_lock(&k->lock);
	ret = kns_one(k, IORING_OP_FSYNC, NULL, 0, 0);
	pthread_mutex_unlock(&k->lock);
	if (ret < 0)
		nvmk_err(k->name, -1, "flush failed: %s", strerror(-ret));
	return ret < 0 ? ret : 0;
}

/* Zero or discard one byte range: ioctls on a block device (Linux 6.1 has
 * no io_uring opcode for them), fallocate on a regular file. */
static int kns_zero_range(struct drv_kns *k, bool discard, uint64_t off, uint64_t len)
{
	uint64_t r[2] = {off, len};
	int ret;

	if (k->is_blk)
		ret = ioctl(k->fd, discard ? BLKDISCARD : BLKZEROOUT, r);
	else
		ret = fallocate(k->fd,
				discard ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
					: FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				(off_t)off, (off_t)len);
	return ret ? -errno : 0;
}

/* NVMK_IO_DEAC is ignored (kernel_ns.h) */
static int kns_sync_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				 uint64_t nlb, uint32_t io_flags)
{
	int ret = kns_range(ns, slba, nlb);

	(void)qp;
	(void)io_flags;
	if (ret)
		return ret;
	ret = kns_zero_range(ns->kern, false, slba << ns->lba_shift, nlb << ns->lba_shift);
	if (ret)
		nvmk_err(ns->kern->name, -1,
			 "write zeroes of %" PRIu64 " blocks at %" PRIu64 " failed: %s", nlb, slba,
			 strerror(-ret));
	return ret;
}

static int kns_sync_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_range *ranges, unsigned nr)
{
	unsigned i;
	int ret;

	(void)qp;
	if (!ranges || nr == 0 || nr > 256)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		ret = kns_range(ns, ranges[i].slba, ranges[i].nlb);
		if (ret)
			return ret;
	}
	for (i = 0; i < nr; i++) {
		ret = kns_zero_range(ns->kern, true, ranges[i].slba << ns->lba_shift,
				     (uint64_t)ranges[i].nlb << ns->lba_shift);
		/* Deallocate is advisory (NVM-CS 1.0 3.2.3.2.1): a device
		 * without discard support is not an error */
		if (ret == -EOPNOTSUPP)
			ret = 0;
		if (ret) {
			nvmk_err(ns->kern->name, -1, "deallocate failed: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Asynchronous path: a kernel queue pair (one io_uring ring)               */
/* ------------------------------------------------------------------------ */

/*
 * A kernel qpair is a struct nvmk_qpair whose fast-path gate always fails:
 * fast_epoch is UINT64_MAX (no 32-bit epoch equals it, as for SHARED qpairs)
 * and ctrl points at drv_kns_ctrl, a never-used controller whose epoch the
 * gate may read. Every submit and process call therefore lands in the
 * out-of-line general paths of ns_io.c/qpair.c, which hand it here through
 * the qpair's table (drv_kernel_io_ops).
 * q.ntrk/q.nbusy are kept so that nvmk_qpair_outstanding works unchanged.
 *
 * Each request owns one slot and has at most one SQE in flight: a short
 * transfer and each further Deallocate range are submitted from the
 * completion of the previous one. So the SQ never overflows (depth entries)
 * and neither does the CQ (2 * depth).
 */
static struct nvmk_ctrl drv_kns_ctrl;

#define KQP_INLINE_IOV 4
#define KQP_MAX_DEPTH  4096

enum kqp_op { KQP_READ, KQP_WRITE, KQP_COMPARE, KQP_FLUSH, KQP_WZ, KQP_DEALLOC };

struct kqp_req {
	struct nvmk_ns *ns;
	nvmk_cpl_fn cb;
	void *cb_arg;
	uint8_t op;
	bool busy;
	/* read/write/compare: the remaining transfer (iov advanced after a
	 * short one), @len bytes left at byte offset @off */
	struct iovec *iov;
	int iovcnt;
	struct iovec iov_inline[KQP_INLINE_IOV];
	struct iovec *iov_heap;
	uint64_t off, len;
	/* bounce (compare, and unaligned buffers on an O_DIRECT descriptor):
	 * the caller's iovec, copied back (read) or compared at completion */
	void *bounce;
	struct iovec *user_iov;
	int user_iovcnt;
	/* write zeroes / deallocate: the ranges left, in bytes */
	uint64_t (*ranges)[2];
	unsigned nr, next;
	uint16_t next_free;
};

struct drv_kqp {
	struct io_uring ring;
	struct kqp_req *req;
	uint32_t depth;
	uint16_t free_head;
	bool shared;
	pthread_mutex_t lock; /* SHARED only, recursive (callbacks may submit) */
};

static void kqp_lock(struct drv_kqp *kq)
{
	if (kq->shared)
		pthread_mutex_lock(&kq->lock);
}

static void kqp_unlock(struct drv_kqp *kq)
{
	if (kq->shared)
		pthread_mutex_unlock(&kq->lock);
}

int nvmk_kns_qpair_create(struct nvmk_ns *ns, const struct nvmk_qpair_opts *opts,
			  struct nvmk_qpair **out)
{
	struct nvmk_qpair_opts o = opts ? *opts : (struct nvmk_qpair_opts){0};
	struct nvmk_qpair *qp;
	struct drv_kqp *kq;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!nvmk_ns_is_kernel(ns))
		return -EINVAL;
	if (o.depth == 0)
		o.depth = 256;
	if (o.depth < 2 || o.depth > KQP_MAX_DEPTH)
		return -EINVAL;
	qp = calloc(1, sizeof(*qp));
	kq = calloc(1, sizeof(*kq));
	if (kq)
		kq->req = calloc(o.depth, sizeof(*kq->req));
	if (!qp || !kq || !kq->req) {
		ret = -ENOMEM;
		goto err;
	}
	ret = io_uring_queue_init(o.depth, &kq->ring, 0);
	if (ret) {
		nvmk_err(ns->kern->name, -1, "io_uring of depth %u: %s", o.depth, strerror(-ret));
		goto err;
	}
	kq->depth = o.depth;
	for (uint32_t i = 0; i < o.depth; i++)
		kq->req[i].next_free = i + 1 < o.depth ? (uint16_t)(i + 1) : DRV_TRK_NONE;
	kq->free_head = 0;
	kq->shared = o.flags & NVMK_QPAIR_SHARED;
	/* recursive: a callback may submit on the queue it completes on */
	if (kq->shared)
		drv_mutex_init_recursive(&kq->lock);
	qp->ops = &drv_kernel_io_ops;
	qp->kern = kq;
	qp->ctrl = &drv_kns_ctrl;
	qp->shared = kq->shared;
	qp->mode = o.mode;
	qp->irq_fd = -1;
	qp->q.name = ns->kern->name;
	qp->q.depth = o.depth;
	qp->q.ntrk = o.depth;
	qp->q.nbusy = 0;
	/* the fast-path gate (drv_qp_fast) must never pass: see above */
	qp->epoch = 0;
	qp->fast_epoch = UINT64_MAX;
	qp->submit_gate = UINT64_MAX;
	*out = qp;
	return 0;
err:
	if (kq)
		free(kq->req);
	free(kq);
	free(qp);
	return ret;
}

/* Queue one SQE for @r's next step; 0 or negative errno (nothing queued). */
static int kqp_prep(struct drv_kqp *kq, struct kqp_req *r)
{
	struct drv_kns *k = r->ns->kern;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&kq->ring);
	int ret;

	if (!sqe) { /* cannot happen: one SQE per slot, SQ of depth entries */
		io_uring_submit(&kq->ring);
		sqe = io_uring_get_sqe(&kq->ring);
		if (!sqe)
			return -EBUSY;
	}
	switch (r->op) {
	case KQP_READ:
	case KQP_COMPARE:
		io_uring_prep_readv(sqe, k->fd, r->iov, (unsigned)r->iovcnt, r->off);
		break;
	case KQP_WRITE:
		io_uring_prep_writev(sqe, k->fd, r->iov, (unsigned)r->iovcnt, r->off);
		break;
	case KQP_FLUSH:
		io_uring_prep_fsync(sqe, k->fd, 0);
		break;
	case KQP_WZ:
	case KQP_DEALLOC:
		/* fallocate works on block devices too (blkdev_fallocate:
		 * ZERO_RANGE = zero-out, PUNCH_HOLE = discard that reads zeroes) */
		io_uring_prep_fallocate(sqe, k->fd,
					r->op == KQP_WZ
					    ? FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
					    : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->ranges[r->next][0], r->ranges[r->next][1]);
		break;
	default:
		return -EINVAL;
	}
	io_uring_sqe_set_data(sqe, r);
	ret = io_uring_submit(&kq->ring);
	return ret < 0 ? ret : 0;
}

static void kqp_free_req(struct nvmk_qpair *qp, struct kqp_req *r)
{
	struct drv_kqp *kq = qp->kern;

	free(r->bounce);
	free(r->iov_heap);
	free(r->ranges);
	r->bounce = NULL;
	r->iov_heap = NULL;
	r->ranges = NULL;
	r->user_iov = NULL; /* kqp_finish: set again only by a bounced transfer */
	r->busy = false;
	r->next_free = kq->free_head;
	kq->free_head = (uint16_t)(r - kq->req);
	qp->q.nbusy--;
}

/*
 * The submit side of every nvmk_ns_submit_* on a kernel namespace (the table
 * calls it from its general paths). @iov: read/write/compare data (any
 * page-aligned memory; bounced when not aligned for O_DIRECT); @ranges:
 * deallocate; @nlb: write zeroes.
 */
static int kns_submit(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		      const struct iovec *iov, int iovcnt, uint64_t slba, uint64_t nlb,
		      const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb, void *cb_arg)
{
	struct drv_kqp *kq;
	struct kqp_req *r;
	uint64_t len = 0;
	int ret;

	if (!ns || !ns->kern || !qp || !qp->kern || !cb)
		return -EINVAL; /* a kernel namespace needs a kernel qpair, and back */
	kq = qp->kern;
	switch (opc) {
	case NVME_CMD_READ:
	case NVME_CMD_WRITE:
	case NVME_CMD_COMPARE:
		if (!iov || iovcnt <= 0 || iovcnt > IOV_MAX)
			return -EINVAL;
		for (int i = 0; i < iovcnt; i++) {
			if (!iov[i].iov_base && iov[i].iov_len)
				return -EINVAL;
			len += iov[i].iov_len;
		}
		if (nlb == 0 || len != nlb << ns->lba_shift)
			return -EINVAL;
		/* fall through */
	case NVME_CMD_WRITE_ZEROES:
		ret = kns_range(ns, slba, nlb);
		if (ret)
			return ret;
		break;
	case NVME_CMD_DSM:
		if (!ranges || nr == 0 || nr > NVME_DSM_MAX_RANGES)
			return -EINVAL;
		for (unsigned i = 0; i < nr; i++) {
			ret = kns_range(ns, ranges[i].slba, ranges[i].nlb);
			if (ret)
				return ret;
		}
		break;
	case NVME_CMD_FLUSH:
		break;
	default:
		return -EOPNOTSUPP;
	}

	kqp_lock(kq);
	if (kq->free_head == DRV_TRK_NONE) {
		kqp_unlock(kq);
		return -EAGAIN;
	}
	r = &kq->req[kq->free_head];
	kq->free_head = r->next_free;
	qp->q.nbusy++;
	r->busy = true;
	r->ns = ns;
	r->cb = cb;
	r->cb_arg = cb_arg;
	r->next = 0;
	r->nr = 0;
	r->off = slba << ns->lba_shift;
	r->len = len;
	ret = 0;
	switch (opc) {
	case NVME_CMD_READ:
	case NVME_CMD_WRITE:
	case NVME_CMD_COMPARE:
		r->op = opc == NVME_CMD_READ	? KQP_READ
			: opc == NVME_CMD_WRITE ? KQP_WRITE
						: KQP_COMPARE;
		r->user_iov = NULL;
		if (opc == NVME_CMD_COMPARE || !kns_aligned(ns, iov, iovcnt)) {
			uint64_t o = 0;

			if (posix_memalign(&r->bounce, 4096, len)) {
				r->bounce = NULL;
				ret = -ENOMEM;
				break;
			}
			if (opc == NVME_CMD_WRITE)
				for (int i = 0; i < iovcnt; o += iov[i].iov_len, i++)
					memcpy((char *)r->bounce + o, iov[i].iov_base,
					       iov[i].iov_len);
			/* the caller's iovec stays valid until completion (its
			 * buffers do), but not necessarily the array: copy it */
			r->iov_heap = malloc(sizeof(*iov) * ((size_t)iovcnt + 1));
			if (!r->iov_heap) {
				ret = -ENOMEM;
				break;
			}
			memcpy(r->iov_heap + 1, iov, sizeof(*iov) * (size_t)iovcnt);
			r->user_iov = r->iov_heap + 1;
			r->user_iovcnt = iovcnt;
			r->iov_heap[0] = (struct iovec){r->bounce, len};
			r->iov = r->iov_heap;
			r->iovcnt = 1;
		} else {
			/* io_uring may read the array when the request is punted
			 * to a worker, after the caller's array is gone */
			if (iovcnt <= KQP_INLINE_IOV) {
				r->iov = r->iov_inline;
			} else {
				r->iov_heap = malloc(sizeof(*iov) * (size_t)iovcnt);
				if (!r->iov_heap) {
					ret = -ENOMEM;
					break;
				}
				r->iov = r->iov_heap;
			}
			memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
			r->iovcnt = iovcnt;
		}
		break;
	case NVME_CMD_FLUSH:
		r->op = KQP_FLUSH;
		break;
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
		r->op = opc == NVME_CMD_DSM ? KQP_DEALLOC : KQP_WZ;
		r->nr = opc == NVME_CMD_DSM ? nr : 1;
		r->ranges = malloc(sizeof(*r->ranges) * r->nr);
		if (!r->ranges) {
			ret = -ENOMEM;
			break;
		}
		if (opc == NVME_CMD_DSM) {
			for (unsigned i = 0; i < nr; i++) {
				r->ranges[i][0] = ranges[i].slba << ns->lba_shift;
				r->ranges[i][1] = (uint64_t)ranges[i].nlb << ns->lba_shift;
			}
		} else {
			r->ranges[0][0] = slba << ns->lba_shift;
			r->ranges[0][1] = nlb << ns->lba_shift;
		}
		break;
	}
	if (!ret)
		ret = kqp_prep(kq, r);
	if (ret) /* nothing queued: the callback will not be called */
		kqp_free_req(qp, r);
	kqp_unlock(kq);
	return ret;
}

/* Advance @r's iovec by @done bytes (after a short transfer). */
static void kqp_advance(struct kqp_req *r, size_t done)
{
	r->off += done;
	r->len -= done;
	while (done && r->iovcnt) {
		if (done >= r->iov->iov_len) {
			done -= r->iov->iov_len;
			r->iov++;
			r->iovcnt--;
		} else {
			r->iov->iov_base = (char *)r->iov->iov_base + done;
			r->iov->iov_len -= done;
			done = 0;
		}
	}
}

/* The final result of @r: compare and bounced reads are finished here. */
static void kqp_finish(struct kqp_req *r, struct nvmk_cpl *cpl)
{
	uint64_t o = 0;

	if (cpl->err || !r->user_iov || r->op == KQP_WRITE)
		return;
	for (int i = 0; i < r->user_iovcnt; o += r->user_iov[i].iov_len, i++) {
		char *b = (char *)r->bounce + o;

		if (r->op == KQP_READ) {
			memcpy(r->user_iov[i].iov_base, b, r->user_iov[i].iov_len);
		} else if (memcmp(r->user_iov[i].iov_base, b, r->user_iov[i].iov_len)) {
			cpl->err = -EILSEQ;
			cpl->status = NVME_SF(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED);
			return;
		}
	}
}

/*
 * One CQE of @r with result @res. Returns true when the request is complete
 * (then @cpl is filled), false when its next step was submitted.
 */
static bool kqp_step(struct drv_kqp *kq, struct kqp_req *r, int res, bool cancel,
		     struct nvmk_cpl *cpl)
{
	*cpl = (struct nvmk_cpl){0};
	if (r->op == KQP_DEALLOC && (res == -EOPNOTSUPP || res == -EINVAL))
		res = 0; /* advisory (NVM-CS 1.0 3.2.3.2.1): no discard is no error */
	if (res < 0) {
		cpl->err = res;
	} else if (r->op <= KQP_COMPARE) {
		if (res == 0 && r->len) {
			cpl->err = -ERANGE; /* end of the device/file (it shrank) */
		} else if ((uint64_t)res < r->len) {
			kqp_advance(r, (size_t)res);
			if (cancel)
				cpl->err = -ECANCELED;
			else if ((cpl->err = kqp_prep(kq, r)) == 0)
				return false;
		}
	} else if (r->op >= KQP_WZ && ++r->next < r->nr) {
		if (cancel)
			cpl->err = -ECANCELED;
		else if ((cpl->err = kqp_prep(kq, r)) == 0)
			return false;
	}
	if (cancel && !cpl->err)
		cpl->err = -ECANCELED;
	if (!cpl->err)
		kqp_finish(r, cpl);
	/* errors the kernel reports carry Host Aborted Command, as errors the
	 * VFIO driver produces itself do (driver.h), so 0 means success */
	if (cpl->err && !cpl->status)
		cpl->status = DRV_SF_HOST_ABORTED;
	if (cpl->err && cpl->err != -EILSEQ && cpl->err != -ECANCELED)
		nvmk_err(r->ns->kern->name, -1, "kernel I/O (op %u) at byte %" PRIu64 " failed: %s",
			 r->op, r->off, strerror(-cpl->err));
	return true;
}

/* Reap up to @max CQEs (0 = all there are); @cancel: complete with -ECANCELED. */
static int kqp_reap(struct nvmk_qpair *qp, unsigned max, bool cancel)
{
	struct drv_kqp *kq = qp->kern;
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&kq->ring, &cqe) == 0) {
		struct kqp_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		struct nvmk_cpl cpl;

		/* seen before the callback: the CQ slot is free for what the
		 * callback submits */
		io_uring_cqe_seen(&kq->ring, cqe);
		if (!r || r < kq->req || r >= kq->req + kq->depth || !r->busy)
			continue; /* not ours (cannot happen): nothing to complete */
		if (!kqp_step(kq, r, res, cancel, &cpl))
			continue;
		nvmk_cpl_fn cb = r->cb;
		void *arg = r->cb_arg;

		kqp_free_req(qp, r);
		cb(arg, &cpl);
		if ((unsigned)++n == max)
			break;
	}
	return n;
}

static int kqp_process(struct nvmk_qpair *qp, unsigned max)
{
	int n;

	kqp_lock(qp->kern);
	n = kqp_reap(qp, max, false);
	kqp_unlock(qp->kern);
	return n;
}

static int kqp_wait(struct nvmk_qpair *qp, int timeout_ms)
{
	struct drv_kqp *kq = qp->kern;
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : drv_clock_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct io_uring_cqe *cqe;
		uint64_t now;
		int n = kqp_process(qp, 0);

		if (n != 0)
			return n;
		now = drv_clock_ms();
		if (now >= end)
			return -ETIMEDOUT;
		if (qp->mode == NVMK_CPL_POLL) {
			sched_yield();
			continue;
		}
		/* interrupt mode: sleep in io_uring_enter until a CQE arrives,
		 * in slices of at most 100 ms; 1 ms on a SHARED qpair, whose lock
		 * is held meanwhile (its other users may reap what woke us) */
		uint64_t slice = kq->shared ? 1 : 100;
		uint64_t ms = end - now < slice ? end - now : slice;
		struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)ms * 1000000};

		kqp_lock(kq);
		int r = io_uring_wait_cqe_timeout(&kq->ring, &cqe, &ts);
		kqp_unlock(kq);
		if (r && r != -ETIME && r != -EINTR && r != -EAGAIN)
			return r;
	}
}

static void kqp_destroy(struct nvmk_qpair *qp)
{
	struct drv_kqp *kq = qp->kern;

	/* The kernel may still be moving data into the requests' buffers:
	 * wait for every CQE (nothing can be freed before), and complete
	 * those requests with -ECANCELED as driver.h says (the I/O may have
	 * happened). */
	kqp_lock(kq);
	while (qp->q.nbusy != 0) {
		struct io_uring_cqe *cqe;

		int w = io_uring_wait_cqe(&kq->ring, &cqe);

		if (w && w != -EINTR)
			break; /* the ring is broken: nothing more will arrive */
		kqp_reap(qp, 0, true);
	}
	kqp_unlock(kq);
	io_uring_queue_exit(&kq->ring);
	if (kq->shared)
		pthread_mutex_destroy(&kq->lock);
	free(kq->req);
	free(kq);
	free(qp);
}

/* io_uring submits per call: there is no doorbell to defer */
static int kqp_batch(struct nvmk_qpair *qp)
{
	(void)qp;
	return 0;
}

/* no eventfd: the caller polls with a short timeout (nvmk_qpair_irq_fd) */
static int kqp_irq_fd(const struct nvmk_qpair *qp)
{
	(void)qp;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* The kernel path's table (io_ops.h)                                       */
/* ------------------------------------------------------------------------ */

/* A struct nvmk_dma_buf as one iovec: only mem.vaddr is used here, so a
 * buffer of any origin works (kernel_ns.h). */
static int kns_submit_rw(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			 const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
			 uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	struct iovec v;
	uint64_t len = (uint64_t)nlb << ns->lba_shift;

	(void)io_flags; /* NVMK_IO_FUA is ignored (kernel_ns.h) */
	if (!buf || !buf->mem.vaddr || off > buf->mem.size || len > buf->mem.size - off)
		return -EINVAL;
	v = (struct iovec){(char *)buf->mem.vaddr + off, len};
	return kns_submit(ns, qp, opc, &v, 1, slba, nlb, NULL, 0, cb, cb_arg);
}

static int kns_submit_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			  const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb,
			  uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	(void)io_flags;
	return kns_submit(ns, qp, opc, iov, iovcnt, slba, nlb, NULL, 0, cb, cb_arg);
}

static int kns_submit_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb, void *cb_arg)
{
	return kns_submit(ns, qp, NVME_CMD_FLUSH, NULL, 0, 0, 0, NULL, 0, cb, cb_arg);
}

static int kns_submit_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				   uint64_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	(void)io_flags;
	return kns_submit(ns, qp, NVME_CMD_WRITE_ZEROES, NULL, 0, slba, nlb, NULL, 0, cb, cb_arg);
}

static int kns_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
				 const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
				 void *cb_arg)
{
	return kns_submit(ns, qp, NVME_CMD_DSM, NULL, 0, 0, 0, ranges, nr, cb, cb_arg);
}

/* reservations are not offered on a kernel namespace (kernel_ns.h) */
static int kns_sync_resv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
			 uint32_t cdw11, void *data, size_t len)
{
	(void)ns, (void)qp, (void)opc, (void)cdw10, (void)cdw11, (void)data, (void)len;
	return -EOPNOTSUPP;
}

const struct drv_io_ops drv_kernel_io_ops = {
    .name = "kernel",
    .ns_close = kns_close,
    .ns_info = kns_info,
    .submit_rw = kns_submit_rw,
    .submit_rwv = kns_submit_rwv,
    .submit_flush = kns_submit_flush,
    .submit_write_zeroes = kns_submit_write_zeroes,
    .submit_deallocate = kns_submit_deallocate,
    .sync_rwv = kns_sync_rwv,
    .sync_flush = kns_sync_flush,
    .sync_write_zeroes = kns_sync_write_zeroes,
    .sync_deallocate = kns_sync_deallocate,
    .sync_resv = kns_sync_resv,
    .qp_process = kqp_process,
    .qp_wait = kqp_wait,
    .qp_batch_begin = kqp_batch,
    .qp_batch_end = kqp_batch,
    .qp_irq_fd = kqp_irq_fd,
    .qp_destroy = kqp_destroy,
};
