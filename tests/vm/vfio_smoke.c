/* SPDX-License-Identifier: MIT */
/*
 * vfio_smoke - the VFIO backing against a real (QEMU-emulated) NVMe
 * controller bound to vfio-pci, inside the test VM (tests/vm/run.sh).
 *
 *   vfio_smoke [ADDR...]      default: every NVMe function bound to vfio-pci
 *
 * Per controller: open through nvmk_backing_vfio_open(), enable it with raw
 * register writes and an admin queue in DMA memory mapped by the backing,
 * IDENTIFY Controller, MSI-X on the vector-0 eventfd, an I/O queue pair
 * (interrupts on vector 1), write + read back + compare one 4 KiB block on
 * every active namespace, then a function reset.
 * Handover (first controller, two generations: the adopted backing is handed
 * over once more): set everything up again, leave a WRITE in
 * flight, export the fds and execve() this program; the new image adopts the
 * device without a reset, checks CSTS.RDY, reaps the in-flight WRITE,
 * runs IDENTIFY on the same admin queue and a read-back I/O.
 * Output: "PASS <case>" / "FAIL <case>" lines and "N passed, M failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/memfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"

#define VM_PROG ""
#include "vm_report.h"

#define QDEPTH	       32u
#define BLOCK_SIZE     (64u * 1024)
#define SMOKE_MAGIC    0x4e564b53u
#define CMD_TIMEOUT_MS 5000
#define TEST_LBA       2048u /* byte offset 1 MiB at 512 B blocks */

/* 4 KiB pages of the DMA block */
enum { PG_ASQ, PG_ACQ, PG_IDBUF, PG_IOSQ, PG_IOCQ, PG_WBUF, PG_RBUF, PG_STATE, PG_COUNT };

struct queue {
	uint16_t qid, tail, head, phase, next_cid;
	uint32_t pg_sq, pg_cq;
};

/* Everything the new image needs after a handover; lives in PG_STATE. */
struct state {
	uint32_t magic;
	uint32_t dstrd;
	struct queue admin, io;
	uint32_t nsid, lba_shift;
	uint16_t inflight_cid;
	uint8_t pattern;
	uint64_t asq_iova;
	int passed, failed;
	char mode[16];
	char serial[24];
};

struct ctrl {
	struct nvmk_backing *b;
	struct nvmk_dma_buf dma;
	bool huge;
	struct state *st;
};

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *page(struct ctrl *c, unsigned pg)
{
	return (uint8_t *)c->dma.mem.vaddr + (size_t)pg * NVMK_DMA_PAGE_SIZE;
}

static uint64_t page_iova(struct ctrl *c, unsigned pg)
{
	return nvmk_dma_buf_iova(&c->dma, (size_t)pg * NVMK_DMA_PAGE_SIZE);
}

static uint32_t sq_db(struct ctrl *c, uint16_t qid)
{
	return NVME_REG_DBS + (2u * qid) * (4u << c->st->dstrd);
}

static uint32_t cq_db(struct ctrl *c, uint16_t qid)
{
	return NVME_REG_DBS + (2u * qid + 1) * (4u << c->st->dstrd);
}

static uint16_t submit(struct ctrl *c, struct queue *q, struct nvme_sqe *sqe)
{
	struct nvme_sqe *sq = page(c, q->pg_sq);

	sqe->cid = q->next_cid++;
	sq[q->tail] = *sqe;
	q->tail = (uint16_t)((q->tail + 1) % QDEPTH);
	/* The SQE must be in memory before the doorbell tells the device to fetch it. */
	__sync_synchronize();
	nvmk_backing_write32(c->b, sq_db(c, q->qid), q->tail);
	return sqe->cid;
}

/* Wait for the completion of @cid; returns the status field or -ETIMEDOUT. */
static int wait_cid(struct ctrl *c, struct queue *q, uint16_t cid, struct nvme_cqe *out)
{
	volatile struct nvme_cqe *cq = page(c, q->pg_cq);
	uint64_t end = now_ms() + CMD_TIMEOUT_MS;

	while (now_ms() < end) {
		struct nvme_cqe e;

		if (NVME_CQE_PHASE(cq[q->head].status) != q->phase) {
			usleep(50);
			continue;
		}
		/* Read the entry only after its phase bit said it is new (a full
		 * barrier: -fsanitize=thread refuses atomic_thread_fence). */
		__sync_synchronize();
		memcpy(&e, (const void *)&cq[q->head], sizeof(e));
		if (++q->head == QDEPTH) {
			q->head = 0;
			q->phase ^= 1;
		}
		nvmk_backing_write32(c->b, cq_db(c, q->qid), q->head);
		if (e.cid == cid) {
			if (out)
				*out = e;
			return NVME_CQE_SF(e.status);
		}
		printf("  note: completion of cid %u while waiting for %u\n", e.cid, cid);
	}
	return -ETIMEDOUT;
}

static int run_cmd(struct ctrl *c, struct queue *q, struct nvme_sqe *sqe, struct nvme_cqe *out)
{
	return wait_cid(c, q, submit(c, q, sqe), out);
}

/* Wait up to @ms for the eventfd of @vector; return the count read (0 = none). */
static uint64_t irq_wait(struct ctrl *c, unsigned vector, int ms)
{
	int fd = c->b->ops->irq_fd(c->b, vector);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t cnt = 0;

	if (fd < 0)
		return 0;
	if (poll(&p, 1, ms) == 1 && read(fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		cnt = 0;
	return cnt;
}

static int wait_rdy(struct ctrl *c, uint32_t want)
{
	uint64_t to = NVME_CAP_TO(nvmk_backing_read64(c->b, NVME_REG_CAP)) * 500ull + 1000;
	uint64_t end = now_ms() + to;

	while ((nvmk_backing_read32(c->b, NVME_REG_CSTS) & NVME_CSTS_RDY) != want) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(200);
	}
	return 0;
}

static int dma_get(struct ctrl *c, bool want_huge)
{
	int err;

	memset(&c->dma, 0, sizeof(c->dma));
	c->huge = false;
	if (want_huge) {
		/* hugetlb memfd: what no-IOMMU mode should use (pages stay put). */
		size_t sz = 2u << 20;
		int fd = memfd_create("smoke-huge", MFD_HUGETLB | MFD_HUGE_2MB | MFD_CLOEXEC);
		void *va = MAP_FAILED;

		if (fd >= 0 && ftruncate(fd, (off_t)sz) == 0)
			va = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
				  0);
		if (va != MAP_FAILED) {
			c->dma.mem.vaddr = va;
			c->dma.mem.size = sz;
			c->dma.mem.fd = fd;
			c->huge = true;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	if (!c->huge) {
		err = nvmk_dma_alloc_ephemeral(BLOCK_SIZE, NVMK_DMA_POPULATE, &c->dma.mem);
		if (err)
			return err;
	}
	err = c->b->ops->dma_map(c->b, &c->dma);
	if (err) {
		if (c->huge) {
			munmap(c->dma.mem.vaddr, c->dma.mem.size);
			close(c->dma.mem.fd);
		} else {
			nvmk_dma_free(&c->dma.mem);
		}
		return err;
	}
	c->st = page(c, PG_STATE);
	return 0;
}

static void dma_put(struct ctrl *c)
{
	c->b->ops->dma_unmap(c->b, &c->dma);
	if (c->huge) {
		munmap(c->dma.mem.vaddr, c->dma.mem.size);
		close(c->dma.mem.fd);
	} else {
		nvmk_dma_free(&c->dma.mem);
	}
}

static int enable(struct ctrl *c)
{
	uint64_t cap = nvmk_backing_read64(c->b, NVME_REG_CAP);
	struct state *st = c->st;

	memset(st, 0, sizeof(*st));
	st->magic = SMOKE_MAGIC;
	st->dstrd = NVME_CAP_DSTRD(cap);
	snprintf(st->mode, sizeof(st->mode), "%s", g_mode);
	st->admin = (struct queue){.qid = 0, .phase = 1, .pg_sq = PG_ASQ, .pg_cq = PG_ACQ};
	st->io = (struct queue){.qid = 1, .phase = 1, .pg_sq = PG_IOSQ, .pg_cq = PG_IOCQ};
	/* Base 2.0, 3.5.1: disable, wait RDY=0, program the admin queue, enable. */
	if (nvmk_backing_read32(c->b, NVME_REG_CC) & NVME_CC_EN) {
		nvmk_backing_write32(c->b, NVME_REG_CC, 0);
		if (wait_rdy(c, 0))
			return -ETIMEDOUT;
	}
	nvmk_backing_write32(c->b, NVME_REG_AQA, (QDEPTH - 1) << 16 | (QDEPTH - 1));
	nvmk_backing_write64(c->b, NVME_REG_ASQ, page_iova(c, PG_ASQ));
	nvmk_backing_write64(c->b, NVME_REG_ACQ, page_iova(c, PG_ACQ));
	st->asq_iova = page_iova(c, PG_ASQ);
	nvmk_backing_write32(c->b, NVME_REG_CC,
			     NVME_CC_SET_IOCQES(NVME_CQES_LOG2) |
				 NVME_CC_SET_IOSQES(NVME_SQES_LOG2) | NVME_CC_EN);
	return wait_rdy(c, NVME_CSTS_RDY);
}

static int identify(struct ctrl *c, uint32_t cns, uint32_t nsid)
{
	struct nvme_sqe sqe = {.opc = NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns};

	memset(page(c, PG_IDBUF), 0, NVMK_DMA_PAGE_SIZE);
	sqe.prp1 = page_iova(c, PG_IDBUF);
	return run_cmd(c, &c->st->admin, &sqe, NULL);
}

static int create_io_queues(struct ctrl *c)
{
	struct nvme_sqe cq = {.opc = NVME_ADM_CREATE_CQ};
	struct nvme_sqe sq = {.opc = NVME_ADM_CREATE_SQ};
	struct nvme_sqe nq = {.opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07 /* Number of Queues */};
	int sc;

	sc = run_cmd(c, &c->st->admin, &nq, NULL);
	if (sc)
		return sc;
	/* Base 2.0, 5.4: QID 1, size, physically contiguous, interrupts on vector 1. */
	cq.prp1 = page_iova(c, PG_IOCQ);
	cq.cdw10 = (QDEPTH - 1) << 16 | 1;
	cq.cdw11 = 1u << 16 | 1u << 1 | 1u;
	sc = run_cmd(c, &c->st->admin, &cq, NULL);
	if (sc)
		return sc;
	/* Base 2.0, 5.5: QID 1 on CQ 1, physically contiguous. */
	sq.prp1 = page_iova(c, PG_IOSQ);
	sq.cdw10 = (QDEPTH - 1) << 16 | 1;
	sq.cdw11 = 1u << 16 | 1u;
	return run_cmd(c, &c->st->admin, &sq, NULL);
}

/* LBA data size of @nsid from Identify Namespace (NVM-CS 1.0, 4.1.5.1). */
static int ns_lba_shift(struct ctrl *c, uint32_t nsid, uint32_t *shift)
{
	const uint8_t *id = page(c, PG_IDBUF);
	uint64_t nsze;
	uint32_t lbaf;

	if (identify(c, 0, nsid))
		return -EIO;
	memcpy(&nsze, id, 8);
	if (!nsze)
		return -ENOENT; /* inactive namespace */
	memcpy(&lbaf, id + 128 + 4 * (id[26] & 0xf), 4);
	*shift = (lbaf >> 16) & 0xff;
	if (*shift < 9 || *shift > 12)
		return -EINVAL;
	return 0;
}

static struct nvme_sqe rw_cmd(struct ctrl *c, uint8_t opc, unsigned pg)
{
	uint32_t nlb = (NVMK_DMA_PAGE_SIZE >> c->st->lba_shift) - 1;

	return (struct nvme_sqe){.opc = opc,
				 .nsid = c->st->nsid,
				 .prp1 = page_iova(c, pg),
				 .cdw10 = TEST_LBA,
				 .cdw12 = nlb};
}

static void fill(struct ctrl *c, uint8_t seed)
{
	uint8_t *w = page(c, PG_WBUF);

	for (unsigned i = 0; i < NVMK_DMA_PAGE_SIZE; i++)
		w[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

/* Read back TEST_LBA and compare with the write buffer. */
static bool read_verify(struct ctrl *c, int *sc)
{
	struct nvme_sqe rd = rw_cmd(c, NVME_CMD_READ, PG_RBUF);

	memset(page(c, PG_RBUF), 0, NVMK_DMA_PAGE_SIZE);
	*sc = run_cmd(c, &c->st->io, &rd, NULL);
	return *sc == 0 && !memcmp(page(c, PG_RBUF), page(c, PG_WBUF), NVMK_DMA_PAGE_SIZE);
}

static bool write_read(struct ctrl *c, uint8_t seed, int *sc)
{
	struct nvme_sqe wr = rw_cmd(c, NVME_CMD_WRITE, PG_WBUF);

	fill(c, seed);
	*sc = run_cmd(c, &c->st->io, &wr, NULL);
	if (*sc)
		return false;
	return read_verify(c, sc);
}

/* Bring-up shared by the basic and the handover cases. */
static bool bring_up(struct ctrl *c, const char *addr, bool huge)
{
	int err = dma_get(c, huge);

	result(!err, "%s dma-map (%s pages, ASQ at %#" PRIx64 ")", addr,
	       huge ? (c->huge ? "2MiB hugetlb" : "4KiB, no hugepages") : "4KiB",
	       err ? 0 : page_iova(c, PG_ASQ));
	if (err)
		return false;
	err = c->b->ops->irq_enable(c->b, 2);
	result(!err, "%s msix-enable (2 of %u vectors)", addr, c->b->ops->irq_count(c->b));
	if (err)
		return false;
	err = enable(c);
	result(!err, "%s enable (CSTS.RDY=1)", addr);
	return !err;
}

static void basic_cases(const char *addr, bool no_mmap)
{
	struct nvmk_vfio_opts opts = {.no_bar0_mmap = no_mmap};
	struct ctrl c = {0};
	uint32_t nn, nsid;
	int err, sc;

	err = nvmk_backing_vfio_open(addr, &opts, &c.b);
	result(!err && !c.b->bar0 == no_mmap, "%s open (%s, BAR0 %s)", addr,
	       err ? strerror(-err) : c.b->ops->kind,
	       err	   ? "-"
	       : c.b->bar0 ? "mmap"
			   : "pread/pwrite fallback");
	if (err)
		return;
	{
		/* The layer's generic helpers on top of this backing. */
		struct nvmk_dma_buf g;
		uint64_t iova = 0;
		size_t contig = 0;

		err = nvmk_backing_dma_alloc(c.b, 3 * NVMK_DMA_PAGE_SIZE, "smoke", &g);
		if (!err) {
			err = nvmk_backing_iova(c.b, (uint8_t *)g.mem.vaddr + 4106, &iova, &contig);
			err = err ? err
				  : (iova == nvmk_dma_buf_iova(&g, 4106) && contig >= 4096 - 10
					 ? 0
					 : -EIO);
			nvmk_backing_dma_free(c.b, &g);
		}
		result(!err, "%s backing-dma-alloc + iova lookup (%#" PRIx64 ")", addr, iova);
	}
	if (!bring_up(&c, addr, false))
		goto out;

	irq_wait(&c, 0, 0);
	sc = identify(&c, 1, 0);
	{
		const uint8_t *id = page(&c, PG_IDBUF);
		char sn[21], mn[41];

		memcpy(sn, id + 4, 20);
		sn[20] = 0;
		memcpy(mn, id + 24, 40);
		mn[40] = 0;
		memcpy(&nn, id + 516, 4);
		result(sc == 0 && sn[0] != 0,
		       "%s identify-controller (sc %d, sn '%.20s', mn '%.40s', "
		       "nn %u)",
		       addr, sc, sn, mn, nn);
	}
	result(irq_wait(&c, 0, 2000) > 0, "%s msix-admin-vector0", addr);

	sc = create_io_queues(&c);
	result(sc == 0, "%s create-io-queues (sc %d)", addr, sc);
	if (sc)
		goto disable;
	irq_wait(&c, 1, 0);
	for (nsid = 1; nsid <= nn && nsid <= 16; nsid++) {
		c.st->nsid = nsid;
		if (ns_lba_shift(&c, nsid, &c.st->lba_shift))
			continue;
		result(write_read(&c, (uint8_t)(nsid * 31), &sc),
		       "%s io-write-read-verify ns%u (lba %u B, sc %d)", addr, nsid,
		       1u << c.st->lba_shift, sc);
	}
	result(irq_wait(&c, 1, 2000) > 0, "%s msix-io-vector1", addr);
disable:
	err = c.b->ops->reset(c.b);
	result(!err && !(nvmk_backing_read32(c.b, NVME_REG_CSTS) & NVME_CSTS_RDY) &&
		   !(nvmk_backing_read32(c.b, NVME_REG_CC) & NVME_CC_EN),
	       "%s reset (VFIO_DEVICE_RESET -> CC.EN=0, CSTS.RDY=0)", addr);
	dma_put(&c);
out:
	nvmk_backing_destroy(c.b);
}

/* ---- misconfiguration cases, each in a child process (they drop privileges) ---- */

static char g_log[4096];

static void capture(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "  log: %s\n", line);
	strncat(g_log, line, sizeof(g_log) - strlen(g_log) - 1);
}

/* Child: run @fn, exit 0 when it returned true. Parent: one result line. */
static void in_child(const char *name, const char *addr, bool (*fn)(const char *))
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		g_log[0] = '\0';
		nvmk_log_set_sink(capture, NULL);
		_exit(fn(addr) ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
	result(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s", addr, name);
}

static bool case_permission_denied(const char *addr)
{
	struct nvmk_backing *b = NULL;
	int err;

	if (setgid(65534) || setuid(65534))
		return false;
	err = nvmk_backing_vfio_open(addr, NULL, &b);
	return err == -EACCES && !b && strstr(g_log, "permission denied");
}

static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return false;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, d) == 0;
}

static bool case_memlock_too_low(const char *addr)
{
	struct rlimit rl = {64 << 10, 64 << 10};
	struct nvmk_backing *b = NULL;
	struct nvmk_dma_buf buf = {0};
	bool ok;
	int err;

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || !drop_ipc_lock())
		return false;
	if (nvmk_backing_vfio_open(addr, NULL, &b))
		return false;
	if (nvmk_dma_alloc_ephemeral(2u << 20, NVMK_DMA_POPULATE, &buf.mem))
		return false;
	err = b->ops->dma_map(b, &buf);
	ok = (err == -ENOMEM || err == -EPERM || err == -EAGAIN) &&
	     strstr(g_log, "RLIMIT_MEMLOCK is 65536 bytes") &&
	     strstr(g_log, "pinning 2097152 bytes");
	b->ops->destroy(b);
	nvmk_dma_free(&buf.mem);
	return ok;
}

static bool case_require_hugepages(const char *addr)
{
	struct nvmk_vfio_opts o = {.require_hugepages = true};
	struct nvmk_backing *b = NULL;
	struct nvmk_dma_buf buf = {0};
	bool ok;
	int err;

	if (nvmk_backing_vfio_open(addr, &o, &b))
		return false;
	if (nvmk_dma_alloc_ephemeral(64u << 10, NVMK_DMA_POPULATE, &buf.mem))
		return false;
	err = b->ops->dma_map(b, &buf);
	ok = err == -ENOMEM && strstr(g_log, "nr_hugepages");
	b->ops->destroy(b);
	nvmk_dma_free(&buf.mem);
	return ok;
}

/*
 * Two functions in one IOMMU group (behind a PCIe-to-PCI bridge): hand one
 * back to the kernel nvme driver with `nvmekeep setup`'s unbind, check that
 * opening the other is refused as "not viable" naming the culprit, then bind
 * it to vfio-pci again.
 */
static void group_cases(void)
{
	struct nvmk_pci_func f[16];
	struct nvmk_backing *b = NULL;
	size_t n = 0, i, j;
	char want[64];
	int err;

	err = nvmk_pci_list_nvme(NULL, f, 16, &n);
	result(!err && n >= 2, "setup-list (%zu NVMe functions)", n);
	for (i = 0; i < n && i < 16; i++)
		for (j = i + 1; j < n && j < 16; j++)
			if (f[i].iommu_group[0] && !strcmp(f[i].iommu_group, f[j].iommu_group) &&
			    !strcmp(f[i].driver, "vfio-pci") && !strcmp(f[j].driver, "vfio-pci"))
				goto found;
	printf("SKIP %s group-not-viable: no two NVMe functions share an IOMMU group\n", g_mode);
	return;
found:
	err = nvmk_pci_unbind_to_nvme(NULL, NULL, f[j].addr, false);
	result(!err, "%s setup-unbind-to-nvme (group %s)", f[j].addr, f[j].iommu_group);
	if (err)
		return;
	g_log[0] = '\0';
	nvmk_log_set_sink(capture, NULL);
	err = nvmk_backing_vfio_open(f[i].addr, NULL, &b);
	nvmk_log_set_sink(NULL, NULL);
	snprintf(want, sizeof(want), "%s (driver nvme)", f[j].addr);
	result(err == -EBUSY && !b && strstr(g_log, "is not viable") && strstr(g_log, want),
	       "%s error-group-not-viable (%d)", f[i].addr, err);
	if (b)
		nvmk_backing_destroy(b);
	err = nvmk_pci_bind_vfio(NULL, NULL, f[j].addr, false);
	result(!err, "%s setup-bind-vfio", f[j].addr);
}

static void error_cases(const char *addr, bool noiommu)
{
	in_child("error-permission-denied (uid 65534)", addr, case_permission_denied);
	in_child("error-rlimit-memlock-too-low (64 KiB, no CAP_IPC_LOCK)", addr,
		 case_memlock_too_low);
	if (noiommu)
		in_child("error-no-hugepages (require_hugepages, 4 KiB block)", addr,
			 case_require_hugepages);
}

/*
 * Leave a WRITE in flight, export the backing and execve() this program as
 * generation @gen. Returns only on failure (the export is undone).
 */
static void handover_exec(struct ctrl *c, const char *addr, int gen)
{
	static char hostr[8192], a1[8300];
	struct nvmk_vfio_handover ho;
	char a2[64], a3[32];
	struct nvme_sqe wr;
	int err;

	/* A WRITE the device completes while we are inside execve. */
	c->st->pattern = (uint8_t)(0xa5 + gen);
	fill(c, c->st->pattern);
	wr = rw_cmd(c, NVME_CMD_WRITE, PG_WBUF);
	c->st->inflight_cid = submit(c, &c->st->io, &wr);

	err = nvmk_backing_vfio_export_fds(c->b, &ho);
	if (!err)
		err = nvmk_vfio_handover_format(&ho, hostr, sizeof(hostr)) < 0 ? -ENOSPC : 0;
	result(!err, "%s handover%d-export (%u maps, %u vectors)", addr, gen, ho.nmaps, ho.nirqs);
	if (err) {
		wait_cid(c, &c->st->io, c->st->inflight_cid, NULL);
		nvmk_backing_vfio_export_abort(c->b, &ho);
		return;
	}
	c->st->passed = g_passed;
	c->st->failed = g_failed;
	snprintf(a1, sizeof(a1), "--resume=%s", hostr);
	snprintf(a2, sizeof(a2), "--mode=%s", g_mode);
	snprintf(a3, sizeof(a3), "--gen=%d", gen);
	fflush(stdout);
	{
		char *argv[] = {(char *)"vfio_smoke", a1, a2, a3, NULL};

		execv("/proc/self/exe", argv);
	}
	result(false, "%s handover%d-execve (%s)", addr, gen, strerror(errno));
	wait_cid(c, &c->st->io, c->st->inflight_cid, NULL);
	nvmk_backing_vfio_export_abort(c->b, &ho);
}

/* Stage A of the handover case: ends in execve, or returns on failure. */
static void handover_stage_a(const char *addr)
{
	struct ctrl c = {0};
	int err;

	err = nvmk_backing_vfio_open(addr, NULL, &c.b);
	if (err) {
		result(false, "%s handover-open (%s)", addr, strerror(-err));
		return;
	}
	err = nvmk_backing_vfio_handover_supported(c.b);
	result(!err, "%s handover-supported", addr);
	if (err || !bring_up(&c, addr, true) || create_io_queues(&c)) {
		result(false, "%s handover-setup", addr);
		c.b->ops->destroy(c.b);
		return;
	}
	identify(&c, 1, 0);
	memcpy(c.st->serial, (uint8_t *)page(&c, PG_IDBUF) + 4, 20);
	c.st->nsid = 1;
	if (ns_lba_shift(&c, 1, &c.st->lba_shift)) {
		result(false, "%s handover-ns1", addr);
		c.b->ops->destroy(c.b);
		return;
	}
	handover_exec(&c, addr, 1);
	c.b->ops->destroy(c.b);
}

/*
 * Stage B: the new program image of generation @gen. Generation 1 hands
 * over once more (a backing that was itself adopted), generation 2 ends.
 * Returns the process exit status.
 */
static int handover_stage_b(const char *hostr, int gen)
{
	struct nvmk_vfio_handover ho;
	struct ctrl c = {0};
	struct nvme_cqe cqe;
	const char *addr = "?";
	int err, sc;

	err = nvmk_vfio_handover_parse(hostr, &ho);
	if (err || ho.nmaps != 1) {
		result(false, "handover-parse '%s'", hostr);
		goto done;
	}
	addr = ho.pci_addr;
	err = nvmk_backing_vfio_adopt(&ho, NULL, &c.b);
	result(!err, "%s handover%d-adopt", addr, gen);
	if (err)
		goto done;
	/* The memfd again, at a new virtual address. */
	c.dma.mem.size = ho.maps[0].size;
	c.dma.mem.fd = ho.maps[0].fd;
	c.dma.mem.fd_offset = ho.maps[0].fd_offset;
	c.dma.mem.vaddr = mmap(NULL, c.dma.mem.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       c.dma.mem.fd, (off_t)c.dma.mem.fd_offset);
	if (c.dma.mem.vaddr == MAP_FAILED) {
		result(false, "%s handover%d-remap-memfd (%s)", addr, gen, strerror(errno));
		goto done;
	}
	c.st = page(&c, PG_STATE);
	if (c.st->magic != SMOKE_MAGIC) {
		result(false, "%s handover%d-state", addr, gen);
		goto done;
	}
	g_passed += c.st->passed;
	g_failed += c.st->failed;
	err = c.b->ops->dma_map(c.b, &c.dma);
	result(!err && page_iova(&c, PG_ASQ) == c.st->asq_iova,
	       "%s handover%d-dma-reattach (same device address %#" PRIx64 ")", addr, gen,
	       err ? 0 : page_iova(&c, PG_ASQ));
	if (err)
		goto done;
	result(c.b->ops->irq_enable(c.b, 2) == 0 && c.b->ops->irq_fd(c.b, 1) == ho.irq_fds[1],
	       "%s handover%d-msix-inherited", addr, gen);
	{
		uint32_t cc = nvmk_backing_read32(c.b, NVME_REG_CC);
		uint32_t csts = nvmk_backing_read32(c.b, NVME_REG_CSTS);

		result((cc & NVME_CC_EN) && (csts & NVME_CSTS_RDY) && !(csts & NVME_CSTS_CFS) &&
			   nvmk_backing_read64(c.b, NVME_REG_ASQ) == c.st->asq_iova,
		       "%s handover%d-no-reset (CC.EN=%u CSTS.RDY=%u, ASQ unchanged)", addr, gen,
		       cc & NVME_CC_EN, csts & NVME_CSTS_RDY);
	}
	sc = wait_cid(&c, &c.st->io, c.st->inflight_cid, &cqe);
	result(sc == 0, "%s handover%d-inflight-write-completed (cid %u, sc %d)", addr, gen,
	       c.st->inflight_cid, sc);
	irq_wait(&c, 0, 0);
	sc = identify(&c, 1, 0);
	result(sc == 0 && !memcmp((uint8_t *)page(&c, PG_IDBUF) + 4, c.st->serial, 20),
	       "%s handover%d-admin-identify (same admin queue, sc %d)", addr, gen, sc);
	result(irq_wait(&c, 0, 2000) > 0, "%s handover%d-msix-admin-eventfd", addr, gen);
	result(read_verify(&c, &sc),
	       "%s handover%d-io-read-verify (data of the in-flight write, sc %d)", addr, gen, sc);
	result(write_read(&c, 0x3c, &sc), "%s handover%d-io-write-read-verify (sc %d)", addr, gen,
	       sc);
	if (gen < 2) {
		handover_exec(&c, addr, gen + 1);
		goto done; /* exec failed */
	}
	err = c.b->ops->reset(c.b);
	result(!err, "%s handover%d-final-reset", addr, gen);
	c.b->ops->dma_unmap(c.b, &c.dma);
	munmap(c.dma.mem.vaddr, c.dma.mem.size);
	close(c.dma.mem.fd);
done:
	if (c.b)
		c.b->ops->destroy(c.b);
	printf("%d passed, %d failed\n", g_passed, g_failed);
	return g_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct nvmk_pci_func funcs[16];
	const char *addrs[16];
	size_t n = 0, i;
	int argi = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	nvmk_log_set_level(NVMK_LOG_WARN);
	if (argc > 2 && !strncmp(argv[2], "--mode=", 7))
		g_mode = argv[2] + 7;
	if (argc > 1 && !strncmp(argv[1], "--resume=", 9))
		return handover_stage_b(argv[1] + 9, argc > 3 && !strncmp(argv[3], "--gen=", 6)
							 ? atoi(argv[3] + 6)
							 : 1);

	if (argi < argc) {
		for (; argi < argc && n < 16; argi++)
			addrs[n++] = argv[argi];
	} else {
		size_t total = 0;

		if (nvmk_pci_list_nvme(NULL, funcs, 16, &total) == 0)
			for (i = 0; i < total && i < 16; i++)
				if (!strcmp(funcs[i].driver, "vfio-pci"))
					addrs[n++] = funcs[i].addr;
	}
	if (!n) {
		printf("FAIL no NVMe function bound to vfio-pci\n0 passed, 1 failed\n");
		return 1;
	}
	bool noiommu = false;
	{
		struct nvmk_backing *b = NULL;

		if (nvmk_backing_vfio_open(addrs[0], NULL, &b) == 0) {
			noiommu = nvmk_backing_vfio_is_noiommu(b);
			b->ops->destroy(b);
		}
		g_mode = noiommu ? "noiommu" : "type1";
	}
	/* Error path on real sysfs: a function that does not exist. */
	{
		struct nvmk_backing *b = NULL;
		int err = nvmk_backing_vfio_open("0000:00:1f.7", NULL, &b);

		result(err == -ENODEV && !b, "open-missing-function (%d)", err);
	}
	error_cases(addrs[0], noiommu);
	group_cases();
	for (i = 0; i < n; i++)
		basic_cases(addrs[i], i == 1); /* the second one without BAR0 mmap */
	handover_stage_a(addrs[0]);
	/* Only reached when the handover could not exec. */
	printf("%d passed, %d failed\n", g_passed, g_failed);
	return 1;
}
