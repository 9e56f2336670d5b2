// SPDX-License-Identifier: MIT
/*
 * raw_loop: the limit of a userspace NVMe polling loop, for bench/vm. It
 * drives the controller itself: enable with one admin queue, create one
 * I/O queue pair (polled, no interrupts), then 4 KiB random reads at a
 * fixed queue depth for SECONDS, writing SQEs straight into the queue and
 * reaping CQEs by phase -- no tracker, no CID generation, no check of a
 * completion beyond its phase and status, one doorbell per side per poll
 * round. What nvmekeep's driver adds on top of this is its own cost.
 *
 * Only the queue work is written here (Base 2.0 3.5.1 initialisation, the
 * Create I/O CQ/SQ commands of 5.4/5.5); BAR0 and DMA memory come from
 * nvmekeep's backing layer (VFIO, no-IOMMU included, or the built-in
 * emulator for a run on the host).
 *
 * Usage: raw_loop PCI_ADDR|emu SECONDS QD
 * Prints: RAW qd=QD iops=IOPS errors=E
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/spec.h"

/* ordering of queue memory against the doorbell stores and CQE loads (TSan
 * builds refuse fences; there the compiler barrier is enough to build) */
#if defined(__SANITIZE_THREAD__)
#define RAW_FENCE(o) __atomic_signal_fence(o)
#else
#define RAW_FENCE(o) __atomic_thread_fence(o)
#endif

#define AQ_DEPTH 32u
/* 64 entries: the SQ is one 4 KiB page (no-IOMMU DMA memory may be made of
 * separate pages; a queue must be contiguous) */
#define IOQ_DEPTH 64u
#define MAX_QD	  63u

struct raw {
	struct nvmk_backing *b;
	uint32_t dstrd_shift;
	struct nvmk_dma_buf asq, acq, sq, cq, data, idbuf;
	uint32_t a_tail, a_head, a_phase;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "raw_loop: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static uint32_t db_off(const struct raw *r, unsigned qid, bool cq)
{
	return NVME_REG_DBS + ((2u * qid + (cq ? 1u : 0u)) << r->dstrd_shift);
}

/* Wait for CSTS.RDY == @rdy, bounded by CAP.TO (500 ms units). */
static void wait_rdy(struct raw *r, uint32_t rdy, uint64_t cap)
{
	uint64_t end = now_ns() + (((cap >> 24) & 0xff) + 1) * 500000000ull;

	while ((nvmk_backing_read32(r->b, NVME_REG_CSTS) & NVME_CSTS_RDY) != rdy) {
		if (now_ns() > end)
			die("CSTS.RDY did not change", ETIMEDOUT);
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

/* One admin command, polled to its completion (5 s bound). */
static void admin(struct raw *r, struct nvme_sqe *c)
{
	struct nvme_sqe *sq = r->asq.mem.vaddr;
	volatile struct nvme_cqe *cq = r->acq.mem.vaddr;
	uint64_t end = now_ns() + 5000000000ull;

	c->cid = (uint16_t)r->a_tail;
	sq[r->a_tail] = *c;
	r->a_tail = (r->a_tail + 1) % AQ_DEPTH;
	RAW_FENCE(__ATOMIC_RELEASE);
	nvmk_backing_write32(r->b, db_off(r, 0, false), r->a_tail);
	while ((cq[r->a_head].status & 1u) == r->a_phase)
		if (now_ns() > end)
			die("admin command timed out", ETIMEDOUT);
	RAW_FENCE(__ATOMIC_ACQUIRE);
	uint16_t st = cq[r->a_head].status >> 1;
	r->a_head = (r->a_head + 1) % AQ_DEPTH;
	if (r->a_head == 0)
		r->a_phase ^= 1u;
	nvmk_backing_write32(r->b, db_off(r, 0, true), r->a_head);
	if (st) {
		fprintf(stderr, "raw_loop: admin opcode %02xh failed, status %04xh\n", c->opc, st);
		exit(1);
	}
}

static void alloc(struct raw *r, size_t len, const char *tag, struct nvmk_dma_buf *buf)
{
	int rc = nvmk_backing_dma_alloc(r->b, len, tag, buf);

	if (rc)
		die("DMA allocation", rc);
	memset(buf->mem.vaddr, 0, len);
}

int main(int argc, char **argv)
{
	struct raw r = {0};
	struct nvme_sqe c;
	uint64_t cap, nsze, blocks_4k, n = 0, errors = 0, seed = 88172645463325252ull;
	unsigned secs, qd, lbads;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: raw_loop PCI_ADDR|emu SECONDS QD\n");
		return 2;
	}
	secs = (unsigned)strtoul(argv[2], NULL, 0);
	qd = (unsigned)strtoul(argv[3], NULL, 0);
	if (qd < 1 || qd > MAX_QD || secs < 1)
		die("QD must be 1..63 and SECONDS >= 1", EINVAL);
	if (strcmp(argv[1], "emu") == 0) {
		struct nvmk_emu_config cfg;

		nvmk_emu_config_default(&cfg);
		cfg.name = "raw-emu";
		cfg.nr_ns = 1;
		cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = 1,
							.nblocks = 1ull << 24,
							.lba_shift = 12,
							.backing = NVMK_EMU_BACK_NULL};
		cfg.no_dbbuf = true;
		rc = nvmk_backing_local_create(&cfg, &r.b, NULL);
	} else {
		rc = nvmk_backing_vfio_open(argv[1], NULL, &r.b);
	}
	if (rc)
		die("opening the device", rc);

	/* Base 2.0 3.5.1: disable, admin queue registers, enable */
	cap = nvmk_backing_read64(r.b, NVME_REG_CAP);
	r.dstrd_shift = 2u + (uint32_t)((cap >> 32) & 0xf);
	nvmk_backing_write32(r.b, NVME_REG_CC, 0);
	wait_rdy(&r, 0, cap);
	alloc(&r, 4096, "raw.asq", &r.asq);
	alloc(&r, 4096, "raw.acq", &r.acq);
	alloc(&r, 4096, "raw.sq", &r.sq);
	alloc(&r, 4096, "raw.cq", &r.cq);
	alloc(&r, MAX_QD * 4096u, "raw.data", &r.data);
	alloc(&r, 4096, "raw.id", &r.idbuf);
	nvmk_backing_write32(r.b, NVME_REG_AQA, (AQ_DEPTH - 1u) << 16 | (AQ_DEPTH - 1u));
	nvmk_backing_write64(r.b, NVME_REG_ASQ, nvmk_dma_buf_iova(&r.asq, 0));
	nvmk_backing_write64(r.b, NVME_REG_ACQ, nvmk_dma_buf_iova(&r.acq, 0));
	/* IOCQES 4 (16 B), IOSQES 6 (64 B), MPS 4 KiB, NVM command set, EN */
	nvmk_backing_write32(r.b, NVME_REG_CC, 4u << 20 | 6u << 16 | 1u);
	wait_rdy(&r, NVME_CSTS_RDY, cap);
	r.a_phase = 0; /* entries are new while their phase tag is 1 on the first pass */

	/* Identify Namespace 1 (CNS 0): size and LBA format */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_IDENTIFY;
	c.nsid = 1;
	c.prp1 = nvmk_dma_buf_iova(&r.idbuf, 0);
	c.cdw10 = 0;
	admin(&r, &c);
	const uint8_t *id = r.idbuf.mem.vaddr;
	memcpy(&nsze, id, sizeof(nsze));
	lbads = (id[128 + 4 * (id[26] & 0xf) + 2]);
	if (lbads < 9 || lbads > 12)
		die("LBA size not 512 B..4 KiB", EINVAL);
	blocks_4k = nsze >> (12 - lbads);
	if (blocks_4k < 2)
		die("namespace too small", EINVAL);

	/* Number of Queues: one pair (0's based) */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_SET_FEATURES;
	c.cdw10 = 0x07;
	admin(&r, &c);
	/* Create I/O CQ 1 (physically contiguous, no interrupts), then SQ 1 */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_CQ;
	c.prp1 = nvmk_dma_buf_iova(&r.cq, 0);
	c.cdw10 = (IOQ_DEPTH - 1u) << 16 | 1u;
	c.cdw11 = 1u;
	admin(&r, &c);
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_SQ;
	c.prp1 = nvmk_dma_buf_iova(&r.sq, 0);
	c.cdw10 = (IOQ_DEPTH - 1u) << 16 | 1u;
	c.cdw11 = 1u << 16 | 1u;
	admin(&r, &c);

	/* The loop: nothing but the queues. */
	struct nvme_sqe *sq = r.sq.mem.vaddr;
	volatile struct nvme_cqe *cq = r.cq.mem.vaddr;
	volatile uint32_t *sq_db = NULL, *cq_db = NULL;
	uint32_t tail = 0, head = 0, phase = 1, nlb0 = (4096u >> lbads) - 1u;
	uint64_t start, end, t, slot_iova[IOQ_DEPTH] = {0};

	if (r.b->bar0) {
		sq_db = (volatile uint32_t *)(r.b->bar0 + db_off(&r, 1, false));
		cq_db = (volatile uint32_t *)(r.b->bar0 + db_off(&r, 1, true));
	}
	for (unsigned i = 0; i < qd; i++) /* one page per slot: a PRP1 each */
		slot_iova[i] = nvmk_dma_buf_iova(&r.data, (size_t)i * 4096u);
	for (unsigned i = 0; i < qd; i++) {
		struct nvme_sqe *s = &sq[tail];

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		memset(s, 0, sizeof(*s));
		s->opc = NVME_CMD_READ;
		s->cid = (uint16_t)i;
		s->nsid = 1;
		s->prp1 = slot_iova[i];
		s->cdw10 = (uint32_t)((seed % blocks_4k) << (12 - lbads));
		s->cdw11 = (uint32_t)((seed % blocks_4k) << (12 - lbads) >> 32);
		s->cdw12 = nlb0;
		tail++;
	}
	RAW_FENCE(__ATOMIC_RELEASE);
	start = now_ns();
	end = start + (uint64_t)secs * 1000000000ull;
	if (sq_db)
		*sq_db = tail;
	else
		nvmk_backing_write32(r.b, db_off(&r, 1, false), tail);
	for (unsigned k = 0;; k++) {
		unsigned got = 0;

		while ((cq[head].status & 1u) == phase) {
			uint16_t cid;
			uint64_t lba;

			RAW_FENCE(__ATOMIC_ACQUIRE); /* the phase tag before the rest */
			cid = cq[head].cid;

			errors += (cq[head].status >> 1) != 0;
			if (++head == IOQ_DEPTH) {
				head = 0;
				phase ^= 1u;
			}
			/* the same slot of the data buffer, a new random LBA */
			struct nvme_sqe *s = &sq[tail];
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			lba = (seed % blocks_4k) << (12 - lbads);
			s->opc = NVME_CMD_READ;
			s->cid = cid;
			s->nsid = 1;
			/* masked: in bounds whatever CID the device sent */
			s->prp1 = slot_iova[cid & (IOQ_DEPTH - 1u)];
			s->cdw10 = (uint32_t)lba;
			s->cdw11 = (uint32_t)(lba >> 32);
			s->cdw12 = nlb0;
			if (++tail == IOQ_DEPTH)
				tail = 0;
			got++;
		}
		if (got) {
			n += got;
			RAW_FENCE(__ATOMIC_RELEASE);
			if (cq_db) {
				*cq_db = head;
				*sq_db = tail;
			} else {
				nvmk_backing_write32(r.b, db_off(&r, 1, true), head);
				nvmk_backing_write32(r.b, db_off(&r, 1, false), tail);
			}
		}
		if ((k & 255) == 0 && now_ns() >= end)
			break;
	}
	t = now_ns() - start;
	printf("RAW qd=%u iops=%.0f errors=%llu\n", qd, (double)n * 1e9 / (double)t,
	       (unsigned long long)errors);
	/* leave the controller disabled for whoever comes next (commands still
	 * at the device are dropped with it, Base 2.0 3.7.2) */
	nvmk_backing_write32(r.b, NVME_REG_CC, 0);
	wait_rdy(&r, 0, cap);
	nvmk_backing_dma_free(r.b, &r.idbuf);
	nvmk_backing_dma_free(r.b, &r.data);
	nvmk_backing_dma_free(r.b, &r.cq);
	nvmk_backing_dma_free(r.b, &r.sq);
	nvmk_backing_dma_free(r.b, &r.acq);
	nvmk_backing_dma_free(r.b, &r.asq);
	nvmk_backing_destroy(r.b);
	return errors ? 1 : 0;
}
