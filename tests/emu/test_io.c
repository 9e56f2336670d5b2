/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: the NVM Command Set I/O commands (NVM-CS 1.0,
 * chapter 3) and data pointers (NVMe Base 2.0 4.1.1, PRPs), over RAM, file
 * and null namespaces.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

#define NS512	    1 /* 1 GiB of 512 B blocks (the default namespace) */
#define NS4K	    2 /* 64 MiB of 4 KiB blocks */
#define NS4K_BLOCKS 16384u
#define CANARY	    0xcc

struct fix {
	struct host *h;
	struct nvme_id_ctrl id;
	uint64_t nsze512;
};

static int fix_start(void **state, struct nvmk_emu_config *cfg)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct nvme_id_ns ns;

	if (!f)
		return -1;
	f->h = host_create(cfg);
	if (!f->h || host_bringup(f->h) || host_identify(f->h, NVME_ID_CNS_CTRL, 0, &f->id) ||
	    host_create_qpair(f->h, 1, 64, -1) || host_create_qpair(f->h, 2, 4, -1))
		goto fail;
	if (host_identify(f->h, NVME_ID_CNS_NS, 1, &ns))
		goto fail;
	f->nsze512 = ns.nsze;
	*state = f;
	return 0;
fail:
	host_destroy(f->h);
	free(f);
	return -1;
}

static int setup(void **state)
{
	struct nvmk_emu_config cfg;

	host_config(&cfg, "io");
	cfg.nr_ns = 2;
	cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = NS512, .nblocks = 2u << 20, .lba_shift = 9};
	cfg.ns[1] =
	    (struct nvmk_emu_ns_config){.nsid = NS4K, .nblocks = NS4K_BLOCKS, .lba_shift = 12};
	return fix_start(state, &cfg);
}

/* MDTS 0 (no limit): for transfers that need chained PRP list pages. */
static int setup_nomdts(void **state)
{
	struct nvmk_emu_config cfg;

	host_config(&cfg, "io-nomdts");
	cfg.mdts = 0;
	cfg.nr_ns = 1;
	cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = NS512, .nblocks = 1u << 20, .lba_shift = 9};
	return fix_start(state, &cfg);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	host_destroy(f->h);
	free(f);
	return host_destroy_all(NULL);
}

static struct host *H(void **state)
{
	return ((struct fix *)*state)->h;
}

/* A command with a data pointer built for [iova, iova+len), list at @list_off. */
static int rw_prp(struct host *h, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba,
		  uint32_t nlb, uint32_t flags, uint64_t iova, size_t len, size_t list_off)
{
	struct nvme_sqe sqe;
	struct host_prp p;
	int sf;

	assert_int_equal(host_prp_build(h, &p, iova, len, list_off), 0);
	host_sqe(&sqe, opc, nsid);
	sqe.cdw10 = (uint32_t)slba;
	sqe.cdw11 = (uint32_t)(slba >> 32);
	sqe.cdw12 = ((nlb - 1) & 0xffff) | flags;
	sqe.prp1 = p.prp1;
	sqe.prp2 = p.prp2;
	sf = host_cmd(h, qid, &sqe, NULL);
	if (sf >= 0)
		host_prp_free(h, &p);
	return sf;
}

static bool all_byte(const uint8_t *p, size_t n, uint8_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/*
 * Write @nlb blocks from a buffer that starts @buf_off bytes into a page,
 * then read them back into a fresh buffer at the same offset, surrounded by
 * canaries: the data must match and nothing around it may be touched.
 */
static void rw_roundtrip(struct host *h, uint16_t qid, uint32_t nsid, unsigned bs, uint64_t slba,
			 uint32_t nlb, size_t buf_off, size_t list_off, uint64_t seed)
{
	size_t len = (size_t)nlb * bs;
	struct host_buf b;

	assert_int_equal(host_buf_alloc(h, &b, buf_off + len + 2 * HOST_PAGE), 0);
	host_fill(b.va + buf_off, len, seed);
	assert_ok(
	    rw_prp(h, qid, NVME_CMD_WRITE, nsid, slba, nlb, 0, b.iova + buf_off, len, list_off));
	memset(b.va, CANARY, b.npages * HOST_PAGE);
	assert_ok(
	    rw_prp(h, qid, NVME_CMD_READ, nsid, slba, nlb, 0, b.iova + buf_off, len, list_off));
	assert_int_equal(host_check_fill(b.va + buf_off, len, seed), -1);
	assert_true(all_byte(b.va, buf_off, CANARY));
	assert_true(all_byte(b.va + buf_off + len, b.npages * HOST_PAGE - buf_off - len, CANARY));
	host_buf_free(h, &b);
}

static void read_blocks(struct host *h, uint32_t nsid, uint64_t slba, uint32_t nlb, unsigned bs,
			void *out)
{
	struct host_buf b;

	assert_int_equal(host_buf_alloc(h, &b, (size_t)nlb * bs), 0);
	memset(b.va, CANARY, (size_t)nlb * bs);
	assert_ok(host_rw(h, 1, NVME_CMD_READ, nsid, slba, nlb, 0, b.iova, (size_t)nlb * bs, NULL));
	memcpy(out, b.va, (size_t)nlb * bs);
	host_buf_free(h, &b);
}

static void write_pattern(struct host *h, uint32_t nsid, uint64_t slba, uint32_t nlb, unsigned bs,
			  uint64_t seed)
{
	struct host_buf b;

	assert_int_equal(host_buf_alloc(h, &b, (size_t)nlb * bs), 0);
	host_fill(b.va, (size_t)nlb * bs, seed);
	assert_ok(
	    host_rw(h, 1, NVME_CMD_WRITE, nsid, slba, nlb, 0, b.iova, (size_t)nlb * bs, NULL));
	host_buf_free(h, &b);
}

/* ---- data path ---- */

static void test_rw_512(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	uint8_t *buf = malloc(64 * 512);

	assert_non_null(buf);
	rw_roundtrip(h, 1, NS512, 512, 0, 1, 0, 0, 1);
	rw_roundtrip(h, 1, NS512, 512, 1000, 8, 0, 0, 2);
	rw_roundtrip(h, 1, NS512, 512, 77777, 64, 0, 0, 3);
	rw_roundtrip(h, 1, NS512, 512, f->nsze512 - 8, 8, 0, 0, 4); /* the last blocks */
	/* blocks are where they were written: neighbours are untouched */
	write_pattern(h, NS512, 2000, 4, 512, 10);
	write_pattern(h, NS512, 2004, 4, 512, 11);
	read_blocks(h, NS512, 2000, 8, 512, buf);
	assert_int_equal(host_check_fill(buf, 2048, 10), -1);
	assert_int_equal(host_check_fill(buf + 2048, 2048, 11), -1);
	/* never written blocks read as zeroes */
	read_blocks(h, NS512, 500000, 64, 512, buf);
	assert_true(host_all_zero(buf, 64 * 512));
	free(buf);
}

static void test_rw_4k(void **state)
{
	struct host *h = H(state);
	uint8_t *buf = malloc(8 * 4096);

	assert_non_null(buf);
	rw_roundtrip(h, 1, NS4K, 4096, 0, 1, 0, 0, 21);
	rw_roundtrip(h, 1, NS4K, 4096, 100, 2, 0, 0, 22);
	rw_roundtrip(h, 1, NS4K, 4096, 3000, 32, 0, 0, 23); /* 128 KiB = MDTS */
	rw_roundtrip(h, 1, NS4K, 4096, NS4K_BLOCKS - 1, 1, 0, 0, 24);
	rw_roundtrip(h, 1, NS4K, 4096, 5000, 3, 512, 0, 25); /* unaligned buffer */
	/* a 4 KiB namespace does not alias the 512 B one */
	write_pattern(h, NS4K, 7, 1, 4096, 26);
	read_blocks(h, NS512, 7 * 8, 8, 512, buf);
	assert_int_not_equal(host_check_fill(buf, 4096, 26), -1);
	read_blocks(h, NS4K, 7, 1, 4096, buf);
	assert_int_equal(host_check_fill(buf, 4096, 26), -1);
	free(buf);
}

static void test_fua(void **state)
{
	struct host *h = H(state);
	struct host_buf b;

	assert_int_equal(host_buf_alloc(h, &b, 8192), 0);
	host_fill(b.va, 8192, 31);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE, NS512, 300, 16, NVME_RW_FUA, b.iova, 8192, NULL));
	memset(b.va, 0, 8192);
	assert_ok(host_rw(h, 1, NVME_CMD_READ, NS512, 300, 16, NVME_RW_FUA, b.iova, 8192, NULL));
	assert_int_equal(host_check_fill(b.va, 8192, 31), -1);
	host_buf_free(h, &b);
}

static void test_flush(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;
	unsigned bcast = (f->id.vwc >> 1) & 0x3;

	write_pattern(h, NS512, 10, 1, 512, 41);
	host_sqe(&sqe, NVME_CMD_FLUSH, NS512);
	assert_ok(host_cmd(h, 1, &sqe, NULL));
	host_sqe(&sqe, NVME_CMD_FLUSH, NS4K);
	assert_ok(host_cmd(h, 1, &sqe, NULL));
	host_sqe(&sqe, NVME_CMD_FLUSH, 3);
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	/* Broadcast flush, as Identify VWC bits 2:1 say (Base 2.0 Figure 275) */
	host_sqe(&sqe, NVME_CMD_FLUSH, NVME_NSID_ALL);
	if (bcast == 3)
		assert_ok(host_cmd(h, 1, &sqe, NULL));
	else if (bcast == 2)
		assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
}

static void test_write_zeroes(void **state)
{
	struct host *h = H(state);
	uint8_t buf[16 * 512];

	/* without DEAC */
	write_pattern(h, NS512, 100, 16, 512, 51);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE_ZEROES, NS512, 104, 8, 0, 0, 0, NULL));
	read_blocks(h, NS512, 100, 16, 512, buf);
	assert_int_equal(host_check_fill(buf, 4 * 512, 51), -1);
	assert_true(host_all_zero(buf + 4 * 512, 8 * 512));
	/* blocks 12..15 of the pattern are still there */
	{
		uint8_t ref[16 * 512];

		host_fill(ref, sizeof(ref), 51);
		assert_memory_equal(buf + 12 * 512, ref + 12 * 512, 4 * 512);
	}
	/* with DEAC: deallocated, and reads zeroes (DLFEAT 001b) */
	write_pattern(h, NS512, 200, 16, 512, 52);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE_ZEROES, NS512, 200, 16, NVME_RW_DEAC, 0, 0, NULL));
	read_blocks(h, NS512, 200, 16, 512, buf);
	assert_true(host_all_zero(buf, sizeof(buf)));
	/* on the 4 KiB namespace */
	write_pattern(h, NS4K, 40, 2, 4096, 53);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE_ZEROES, NS4K, 41, 1, 0, 0, 0, NULL));
	{
		uint8_t b4[2 * 4096];

		read_blocks(h, NS4K, 40, 2, 4096, b4);
		assert_int_equal(host_check_fill(b4, 4096, 53), -1);
		assert_true(host_all_zero(b4 + 4096, 4096));
	}
	/* range checks apply */
	assert_sf(host_rw(h, 1, NVME_CMD_WRITE_ZEROES, NS4K, NS4K_BLOCKS - 1, 2, 0, 0, 0, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
}

static void test_dsm_deallocate(void **state)
{
	struct host *h = H(state);
	struct nvme_dsm_range r[3];
	struct nvme_sqe sqe;
	uint8_t *buf = malloc(64 * 512), ref[64 * 512];
	unsigned i;

	assert_non_null(buf);
	write_pattern(h, NS512, 1000, 64, 512, 61);
	host_fill(ref, sizeof(ref), 61);
	/* three ranges inside 1000..1063: 1002+3, 1010+10, 1060+4 */
	r[0] = (struct nvme_dsm_range){.nlb = 3, .slba = 1002};
	r[1] = (struct nvme_dsm_range){.nlb = 10, .slba = 1010};
	r[2] = (struct nvme_dsm_range){.nlb = 4, .slba = 1060};
	host_sqe(&sqe, NVME_CMD_DSM, NS512);
	sqe.cdw10 = 2; /* NR, 0's based */
	sqe.cdw11 = NVME_DSM_AD;
	assert_ok(host_io_data(h, 1, &sqe, r, sizeof(r), true, NULL));
	read_blocks(h, NS512, 1000, 64, 512, buf);
	for (i = 0; i < 64; i++) {
		uint64_t lba = 1000 + i;
		bool gone =
		    (lba >= 1002 && lba < 1005) || (lba >= 1010 && lba < 1020) || lba >= 1060;

		if (gone)
			assert_true(host_all_zero(buf + i * 512, 512));
		else
			assert_memory_equal(buf + i * 512, ref + i * 512, 512);
	}

	/* attributes only (no AD): a hint, data unchanged */
	write_pattern(h, NS512, 3000, 4, 512, 62);
	r[0] = (struct nvme_dsm_range){.cattr = 1, .nlb = 4, .slba = 3000};
	host_sqe(&sqe, NVME_CMD_DSM, NS512);
	sqe.cdw10 = 0;
	sqe.cdw11 = NVME_DSM_IDR | NVME_DSM_IDW;
	assert_ok(host_io_data(h, 1, &sqe, r, sizeof(r[0]), true, NULL));
	read_blocks(h, NS512, 3000, 4, 512, buf);
	assert_int_equal(host_check_fill(buf, 2048, 62), -1);

	/* a range beyond the namespace: LBA Out of Range */
	r[0] = (struct nvme_dsm_range){.nlb = 2, .slba = ((struct fix *)*state)->nsze512 - 1};
	host_sqe(&sqe, NVME_CMD_DSM, NS512);
	sqe.cdw10 = 0;
	sqe.cdw11 = NVME_DSM_AD;
	assert_sf(host_io_data(h, 1, &sqe, r, sizeof(r[0]), true, NULL), NVME_SCT_GENERIC,
		  NVME_SC_LBA_RANGE);
	free(buf);
}

static void test_compare(void **state)
{
	struct host *h = H(state);
	struct host_buf b;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	write_pattern(h, NS512, 400, 8, 512, 71);
	host_fill(b.va, 4096, 71);
	assert_ok(host_rw(h, 1, NVME_CMD_COMPARE, NS512, 400, 8, 0, b.iova, 4096, NULL));
	b.va[4095] ^= 1; /* the very last byte differs */
	assert_sf(host_rw(h, 1, NVME_CMD_COMPARE, NS512, 400, 8, 0, b.iova, 4096, NULL),
		  NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED);
	/* on the 4 KiB namespace, first byte differs */
	write_pattern(h, NS4K, 9, 1, 4096, 72);
	host_fill(b.va, 4096, 72);
	assert_ok(host_rw(h, 1, NVME_CMD_COMPARE, NS4K, 9, 1, 0, b.iova, 4096, NULL));
	b.va[0] ^= 0x80;
	assert_sf(host_rw(h, 1, NVME_CMD_COMPARE, NS4K, 9, 1, 0, b.iova, 4096, NULL),
		  NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED);
	/* compare does not write */
	{
		uint8_t back[4096];

		read_blocks(h, NS4K, 9, 1, 4096, back);
		assert_int_equal(host_check_fill(back, 4096, 72), -1);
	}
	host_buf_free(h, &b);
}

/* ---- errors ---- */

static void test_lba_out_of_range(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct host_buf b;
	uint64_t n = f->nsze512;

	assert_int_equal(host_buf_alloc(h, &b, 8192), 0);
	assert_sf(host_rw(h, 1, NVME_CMD_READ, NS512, n - 1, 2, 0, b.iova, 1024, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	assert_sf(host_rw(h, 1, NVME_CMD_READ, NS512, n, 1, 0, b.iova, 512, NULL), NVME_SCT_GENERIC,
		  NVME_SC_LBA_RANGE);
	assert_sf(host_rw(h, 1, NVME_CMD_WRITE, NS512, n, 1, 0, b.iova, 512, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	/* SLBA + NLB wraps around 2^64: still out of range */
	assert_sf(host_rw(h, 1, NVME_CMD_READ, NS512, UINT64_MAX, 2, 0, b.iova, 1024, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	assert_sf(host_rw(h, 1, NVME_CMD_WRITE, NS4K, NS4K_BLOCKS, 1, 0, b.iova, 4096, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	assert_sf(host_rw(h, 1, NVME_CMD_COMPARE, NS4K, NS4K_BLOCKS - 1, 2, 0, b.iova, 8192, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	/* the last block itself is fine */
	assert_ok(host_rw(h, 1, NVME_CMD_READ, NS512, n - 1, 1, 0, b.iova, 512, NULL));
	host_buf_free(h, &b);
}

static void test_invalid_namespace(void **state)
{
	struct host *h = H(state);
	struct host_buf b;
	static const uint32_t bad[] = {
	    0, 3, NVMK_EMU_MAX_NS, NVMK_EMU_MAX_NS + 1, 0xfffffffe, NVME_NSID_ALL};
	unsigned i;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_sf(host_rw(h, 1, NVME_CMD_READ, bad[i], 0, 1, 0, b.iova, 512, NULL),
			  NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
		assert_sf(host_rw(h, 1, NVME_CMD_WRITE, bad[i], 0, 1, 0, b.iova, 512, NULL),
			  NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	}
	host_buf_free(h, &b);
}

/* Base 2.0 Figure 275 MDTS: a larger transfer is Invalid Field in Command. */
static void test_mdts(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	size_t max = (size_t)HOST_PAGE << f->id.mdts; /* MPSMIN is 4 KiB here */
	struct host_buf b;

	assert_int_equal(f->id.mdts, 5);
	assert_int_equal(host_buf_alloc(h, &b, max + 4096), 0);
	assert_ok(
	    host_rw(h, 1, NVME_CMD_READ, NS512, 0, (uint32_t)(max / 512), 0, b.iova, max, NULL));
	assert_sf(host_rw(h, 1, NVME_CMD_READ, NS512, 0, (uint32_t)(max / 512) + 1, 0, b.iova,
			  max + 512, NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_rw(h, 1, NVME_CMD_WRITE, NS512, 0, (uint32_t)(max / 512) + 1, 0, b.iova,
			  max + 512, NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_rw(h, 1, NVME_CMD_READ, NS4K, 0, (uint32_t)(max / 4096) + 1, 0, b.iova,
			  max + 4096, NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	host_buf_free(h, &b);
}

/* Base 2.0 4.1.1: only the first PRP entry may have an offset. */
static void test_prp_offset_invalid(void **state)
{
	struct host *h = H(state);
	struct nvme_sqe sqe;
	uint64_t data = host_page_alloc(h->arena, 4, 1), list = host_page_alloc(h->arena, 1, 1);
	uint64_t *l = host_va(h->arena, list);

	/* two pages: PRP2 is a data pointer and must be page aligned */
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.cdw12 = 15; /* 16 blocks = 8 KiB */
	sqe.prp1 = data;
	sqe.prp2 = data + HOST_PAGE + 0x100;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET);
	/* three pages: the second list entry has an offset */
	l[0] = data + HOST_PAGE;
	l[1] = data + 2 * HOST_PAGE + 0x200;
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.cdw12 = 23; /* 24 blocks = 12 KiB */
	sqe.prp1 = data;
	sqe.prp2 = list;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET);
	/* the first list entry with an offset is just as wrong */
	l[0] = data + HOST_PAGE + 8;
	l[1] = data + 2 * HOST_PAGE;
	host_sqe(&sqe, NVME_CMD_WRITE, NS512);
	sqe.cdw12 = 23;
	sqe.prp1 = data;
	sqe.prp2 = list;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET);
}

/* emu.h: an address the DMA callback refuses fails the command with Data
 * Transfer Error, and nothing else happens. */
static void test_dma_outside_arena(void **state)
{
	struct host *h = H(state);
	struct nvme_sqe sqe;
	uint64_t data = host_page_alloc(h->arena, 4, 1), list = host_page_alloc(h->arena, 1, 1);
	uint64_t *l = host_va(h->arena, list);
	uint64_t faults = host_arena_dma_faults(h->arena);
	static const uint64_t bad[] = {HOST_IOVA_BASE - HOST_PAGE, HOST_IOVA_BASE + HOST_ARENA_SIZE,
				       0x1000, 0xfffffffffffff000ull};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		host_sqe(&sqe, NVME_CMD_READ, NS512);
		sqe.prp1 = bad[i];
		assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
		host_sqe(&sqe, NVME_CMD_WRITE, NS512);
		sqe.prp1 = bad[i];
		assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
	}
	/* the last page of the arena plus the first one after it */
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.cdw12 = 15;
	sqe.prp1 = HOST_IOVA_BASE + HOST_ARENA_SIZE - HOST_PAGE;
	sqe.prp2 = HOST_IOVA_BASE + HOST_ARENA_SIZE;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
	/* a PRP list outside the arena */
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.cdw12 = 23;
	sqe.prp1 = data;
	sqe.prp2 = HOST_IOVA_BASE + HOST_ARENA_SIZE + HOST_PAGE;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
	/* a list entry outside the arena */
	l[0] = data + HOST_PAGE;
	l[1] = HOST_IOVA_BASE - 2 * HOST_PAGE;
	host_sqe(&sqe, NVME_CMD_WRITE, NS512);
	sqe.cdw12 = 23;
	sqe.prp1 = data;
	sqe.prp2 = list;
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
	/* Identify into nowhere, on the admin queue */
	host_sqe(&sqe, NVME_ADM_IDENTIFY, 0);
	sqe.cdw10 = NVME_ID_CNS_CTRL;
	sqe.prp1 = HOST_IOVA_BASE + HOST_ARENA_SIZE;
	assert_sf(host_admin(h, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);
	assert_true(host_arena_dma_faults(h->arena) > faults);
	/* and the queues still work */
	rw_roundtrip(h, 1, NS512, 512, 9, 1, 0, 0, 81);
}

/* ---- PRP boundaries (Base 2.0 4.1.1) ---- */

static void test_prp_first_entry_offset(void **state)
{
	struct host *h = H(state);

	rw_roundtrip(h, 1, NS512, 512, 10, 1, 0xe00, 0, 91);   /* inside one page, no PRP2 */
	rw_roundtrip(h, 1, NS512, 512, 20, 1, 0xf00, 0, 92);   /* 256 B + 256 B: PRP2 data */
	rw_roundtrip(h, 1, NS512, 512, 30, 8, 0x200, 0, 93);   /* 4 KiB over 2 pages */
	rw_roundtrip(h, 1, NS512, 512, 40, 16, 0x200, 0, 94);  /* 8 KiB over 3 pages: list */
	rw_roundtrip(h, 1, NS512, 512, 60, 255, 0x004, 0, 95); /* dword offset, 33 pages */
	rw_roundtrip(h, 1, NS4K, 4096, 11, 4, 0x800, 0, 96);
}

static void test_prp_page_counts(void **state)
{
	struct host *h = H(state);

	rw_roundtrip(h, 1, NS512, 512, 100, 8, 0, 0, 101);   /* 1 page: PRP2 unused */
	rw_roundtrip(h, 1, NS512, 512, 200, 16, 0, 0, 102);  /* 2 pages: PRP2 is data */
	rw_roundtrip(h, 1, NS512, 512, 300, 24, 0, 0, 103);  /* 3 pages: PRP2 is a list */
	rw_roundtrip(h, 1, NS512, 512, 400, 256, 0, 0, 104); /* 32 pages (MDTS) */
	rw_roundtrip(h, 1, NS512, 512, 700, 9, 0, 0, 105);   /* 1 page + 512 B */
}

/* A PRP List pointer may have an offset (Base 2.0 4.1.1 Figure 86): the
 * entries then run to the end of that page, whose last entry chains on. */
static void test_prp_list_with_offset(void **state)
{
	struct host *h = H(state);

	rw_roundtrip(h, 1, NS512, 512, 1000, 24, 0, 0x100, 111);	  /* 2 entries, fits */
	rw_roundtrip(h, 1, NS512, 512, 1100, 40, 0, HOST_PAGE - 16, 112); /* 2 slots: chain */
	rw_roundtrip(h, 1, NS512, 512, 1200, 24, 0, HOST_PAGE - 16, 113); /* 2 slots: exact */
	rw_roundtrip(h, 1, NS512, 512, 1300, 32, 0, HOST_PAGE - 8, 114);  /* 1 slot: chain */
	rw_roundtrip(h, 1, NS512, 512, 1400, 256, 0x10, HOST_PAGE - 64, 115);
}

/* Lists longer than one page: PRP2 -> list page whose last entry points to
 * the next list page, except when it is the transfer's last entry. */
static void test_prp_chained_lists(void **state)
{
	struct host *h = H(state);
	const unsigned b_per_page = HOST_PAGE / 512;

	assert_int_equal(((struct fix *)*state)->id.mdts, 0);
	/* 513 pages: 512 list entries, exactly one full list page, no chain */
	rw_roundtrip(h, 1, NS512, 512, 0, 513 * b_per_page, 0, 0, 121);
	/* 514 pages: 513 entries, 511 + chain, then 2 */
	rw_roundtrip(h, 1, NS512, 512, 10000, 514 * b_per_page, 0, 0, 122);
	/* 1024 pages: 1023 entries = 511 + chain, 511 + chain... */
	rw_roundtrip(h, 1, NS512, 512, 20000, 1024 * b_per_page, 0, 0, 123);
	/* 1100 pages with an unaligned start: 1100 entries, 3 list pages */
	rw_roundtrip(h, 1, NS512, 512, 40000, 1100 * b_per_page, 0x600, 0, 124);
	/* the biggest single command: NLB 65536 (32 MiB) */
	rw_roundtrip(h, 1, NS512, 512, 100000, 65536, 0, 0, 125);
}

/* ---- queues ---- */

static void test_queue_wrap(void **state)
{
	struct host *h = H(state);
	unsigned i;

	/* qid 2 has 4 entries: 3 usable slots, many wraps */
	for (i = 0; i < 12; i++)
		rw_roundtrip(h, 2, NS512, 512, 5000 + i, 1, 0, 0, 130 + i);
}

static void test_many_outstanding(void **state)
{
	struct host *h = H(state);
	struct host_buf b;
	struct nvme_sqe sqe;
	int cid[48];
	unsigned i;

	assert_int_equal(host_buf_alloc(h, &b, 48 * 4096), 0);
	for (i = 0; i < 48; i++)
		host_fill(b.va + i * 4096, 4096, 140 + i);
	/* submit 48 writes without waiting, then collect them */
	for (i = 0; i < 48; i++) {
		host_sqe(&sqe, NVME_CMD_WRITE, NS512);
		sqe.cdw10 = 6000 + i * 8;
		sqe.cdw12 = 7;
		sqe.prp1 = b.iova + i * 4096;
		cid[i] = host_submit(h, 1, &sqe);
		assert_true(cid[i] >= 0);
	}
	for (i = 0; i < 48; i++)
		assert_ok(host_wait(h, 1, (uint16_t)cid[i], NULL, HOST_TIMEOUT_MS));
	memset(b.va, 0, 48 * 4096);
	for (i = 0; i < 48; i++) {
		host_sqe(&sqe, NVME_CMD_READ, NS512);
		sqe.cdw10 = 6000 + i * 8;
		sqe.cdw12 = 7;
		sqe.prp1 = b.iova + i * 4096;
		cid[i] = host_submit(h, 1, &sqe);
		assert_true(cid[i] >= 0);
	}
	for (i = 0; i < 48; i++) {
		assert_ok(host_wait(h, 1, (uint16_t)cid[i], NULL, HOST_TIMEOUT_MS));
		assert_int_equal(host_check_fill(b.va + i * 4096, 4096, 140 + i), -1);
	}
	host_buf_free(h, &b);
}

/* DSM with the most ranges allowed (256, NR = 255): a whole page of them. */
static void test_dsm_max_ranges(void **state)
{
	struct host *h = H(state);
	struct nvme_dsm_range *r = calloc(NVME_DSM_MAX_RANGES, sizeof(*r));
	uint8_t *buf = malloc(512 * 512);
	struct nvme_sqe sqe;
	unsigned i;

	assert_non_null(r);
	assert_non_null(buf);
	/* two writes: 512 blocks is more than MDTS */
	write_pattern(h, NS512, 20000, 256, 512, 171);
	write_pattern(h, NS512, 20256, 256, 512, 173);
	for (i = 0; i < NVME_DSM_MAX_RANGES; i++)
		r[i] = (struct nvme_dsm_range){.nlb = 1, .slba = 20000 + 2 * i};
	host_sqe(&sqe, NVME_CMD_DSM, NS512);
	sqe.cdw10 = NVME_DSM_MAX_RANGES - 1;
	sqe.cdw11 = NVME_DSM_AD;
	assert_ok(host_io_data(h, 1, &sqe, r, NVME_DSM_MAX_RANGES * sizeof(*r), true, NULL));
	read_blocks(h, NS512, 20000, 256, 512, buf);
	read_blocks(h, NS512, 20256, 256, 512, buf + 256 * 512);
	{
		uint8_t *ref = malloc(512 * 512);

		assert_non_null(ref);
		host_fill(ref, 256 * 512, 171);
		host_fill(ref + 256 * 512, 256 * 512, 173);
		for (i = 0; i < 512; i++) {
			if (i % 2 == 0)
				assert_true(host_all_zero(buf + i * 512, 512));
			else
				assert_memory_equal(buf + i * 512, ref + i * 512, 512);
		}
		free(ref);
	}
	free(buf);
	free(r);
}

/* Optional NVM commands answer as ONCS says (NVM-CS 1.0 Figure 17, Base 2.0
 * Figure 275): not offered -> Invalid Command Opcode. */
static void test_optional_io_opcodes(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	static const struct {
		uint16_t bit;
		uint8_t opc;
	} opt[] = {
	    {NVME_ONCS_COMPARE, NVME_CMD_COMPARE},
	    {NVME_ONCS_WRITE_UNCOR, NVME_CMD_WRITE_UNCOR},
	    {NVME_ONCS_DSM, NVME_CMD_DSM},
	    {NVME_ONCS_WRITE_ZEROES, NVME_CMD_WRITE_ZEROES},
	    {NVME_ONCS_RESERVATIONS, NVME_CMD_RESV_REGISTER},
	    {NVME_ONCS_RESERVATIONS, NVME_CMD_RESV_REPORT},
	    {NVME_ONCS_RESERVATIONS, NVME_CMD_RESV_ACQUIRE},
	    {NVME_ONCS_RESERVATIONS, NVME_CMD_RESV_RELEASE},
	    {NVME_ONCS_VERIFY, NVME_CMD_VERIFY},
	    {1u << 8, NVME_CMD_COPY},
	};
	struct nvme_sqe sqe;
	unsigned i;

	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		if (f->id.oncs & opt[i].bit)
			continue;
		host_sqe(&sqe, opt[i].opc, NS512);
		sqe.prp1 = host_page_alloc(h->arena, 1, 1);
		if (SF_CODE(host_cmd(h, 1, &sqe, NULL)) !=
		    NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE))
			fail_msg("I/O opcode 0x%02x: ONCS bit 0x%x is clear but the command is "
				 "not Invalid Command Opcode",
				 opt[i].opc, opt[i].bit);
	}
	/* offered ones that need no setup work */
	if (f->id.oncs & NVME_ONCS_VERIFY)
		assert_ok(host_rw(h, 1, NVME_CMD_VERIFY, NS512, 0, 8, 0, 0, 0, NULL));
	if (f->id.oncs & NVME_ONCS_WRITE_UNCOR) {
		assert_ok(host_rw(h, 1, NVME_CMD_WRITE_UNCOR, NS512, 90000, 1, 0, 0, 0, NULL));
		rw_roundtrip(h, 1, NS512, 512, 90001, 1, 0, 0, 172); /* neighbour unaffected */
		{
			struct host_buf b;

			assert_int_equal(host_buf_alloc(h, &b, 512), 0);
			assert_sf(
			    host_rw(h, 1, NVME_CMD_READ, NS512, 90000, 1, 0, b.iova, 512, NULL),
			    NVME_SCT_MEDIA, NVME_SC_READ_ERROR);
			host_buf_free(h, &b);
		}
	}
}

/* Base 2.0 4.6 (CQ full): the controller never posts into a full CQ (tail
 * + 1 == head); completions wait until the host frees entries. A 4-entry CQ
 * under a 16-entry SQ: 10 commands, at most 3 entries posted until the host
 * reads; then all 10 arrive, each exactly once. */
static void test_cq_full_backpressure(void **state)
{
	struct host *h = H(state);
	struct nvme_sqe sqe;
	struct nvme_cqe raw[4], cqe;
	uint64_t deadline, buf = host_page_alloc(h->arena, 1, 1);
	bool seen[10] = {false};
	int cid[10];
	unsigned i, k;

	assert_int_equal(host_create_cq(h, 3, 4, -1), 0);
	assert_int_equal(host_create_sq(h, 3, 3, 16), 0);
	for (i = 0; i < 10; i++) {
		host_sqe(&sqe, NVME_CMD_READ, NS512);
		sqe.cdw10 = i;
		sqe.prp1 = buf;
		cid[i] = host_submit(h, 3, &sqe);
		assert_true(cid[i] >= 0);
	}
	/* three entries appear... */
	deadline = host_now_ms() + HOST_TIMEOUT_MS;
	do {
		host_cq_raw(h, 3, 2, &raw[2]);
		assert_true(host_now_ms() < deadline);
	} while (NVME_CQE_PHASE(raw[2].status) != 1);
	/* ...and nothing more while the CQ is full */
	host_sleep_ms(HOST_QUIET_MS);
	for (k = 0; k < 4; k++)
		host_cq_raw(h, 3, k, &raw[k]);
	for (k = 0; k < 3; k++)
		assert_int_equal(NVME_CQE_PHASE(raw[k].status), 1);
	assert_true(host_all_zero(&raw[3], sizeof(raw[3])));
	/* consuming them lets the rest through */
	for (i = 0; i < 10; i++) {
		assert_int_equal(host_cq_next(h, 3, &cqe, HOST_TIMEOUT_MS), 0);
		assert_int_equal(cqe.sqid, 3);
		assert_ok(NVME_CQE_SF(cqe.status));
		for (k = 0; k < 10; k++)
			if (cid[k] == cqe.cid)
				break;
		assert_true(k < 10);
		assert_false(seen[k]);
		seen[k] = true;
	}
	assert_int_equal(host_cq_next(h, 3, &cqe, 50), -ETIMEDOUT);
}

/* Fused operations are not offered (Identify FUSES = 0): a command marked
 * as part of a fused pair is refused (Base 2.0 4.2, Figure 88 FUSE). */
static void test_fused_refused(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;

	if (f->id.fuses & 1)
		skip();
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.flags = 0x1; /* first command of a fused operation */
	sqe.prp1 = host_page_alloc(h->arena, 1, 1);
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

/* SGLs are not offered (Identify SGLS = 0): PSDT other than 00b is refused. */
static void test_sgl_refused(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;

	if (f->id.sgls & 0x3)
		skip();
	host_sqe(&sqe, NVME_CMD_READ, NS512);
	sqe.flags = 1u << 6; /* PSDT 01b */
	sqe.prp1 = host_page_alloc(h->arena, 1, 1);
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

/* ---- other backings ---- */

static void test_file_namespace(void **state)
{
	struct nvmk_emu_config cfg;
	char dir[] = "/tmp/nvmk-emu-io-XXXXXX", path[64], path2[80];
	uint8_t disk[4096], before[512];
	struct host *h;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ns1.img", dir);
	snprintf(path2, sizeof(path2), "%s/ns2.img", dir);
	/* a pre-existing file: its content is the namespace's */
	fd = open(path2, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	host_fill(before, sizeof(before), 151);
	assert_int_equal(pwrite(fd, before, sizeof(before), 3 * 512), 512);
	close(fd);

	host_config(&cfg, "io-file");
	cfg.nr_ns = 2;
	cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = 1,
						.nblocks = 4096,
						.lba_shift = 9,
						.backing = NVMK_EMU_BACK_FILE,
						.path = path};
	cfg.ns[1] = (struct nvmk_emu_ns_config){
	    .nsid = 2, .nblocks = 64, .lba_shift = 9, .backing = NVMK_EMU_BACK_FILE, .path = path2};
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	/* created with the namespace's size */
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size >= 4096ull * 512);

	rw_roundtrip(h, 1, 1, 512, 0, 8, 0, 0, 152);
	rw_roundtrip(h, 1, 1, 512, 4088, 8, 0, 0, 153);
	{
		struct nvme_sqe sqe;

		host_sqe(&sqe, NVME_CMD_FLUSH, 1);
		assert_ok(host_cmd(h, 1, &sqe, NULL));
	}
	/* the data is in the file, at LBA * block size */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, disk, 4096, 0), 4096);
	assert_int_equal(host_check_fill(disk, 4096, 152), -1);
	assert_int_equal(pread(fd, disk, 4096, 4088ull * 512), 4096);
	assert_int_equal(host_check_fill(disk, 4096, 153), -1);
	close(fd);
	/* and what was in a file before is read back */
	{
		uint8_t got[512];

		read_blocks(h, 2, 3, 1, 512, got);
		assert_memory_equal(got, before, 512);
	}
	host_destroy(h);
	unlink(path);
	unlink(path2);
	rmdir(dir);
}

static void test_null_namespace(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	struct host_buf b;
	struct nvme_sqe sqe;

	(void)state;
	host_config(&cfg, "io-null");
	cfg.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1, .nblocks = 1ull << 30, .lba_shift = 12, .backing = NVMK_EMU_BACK_NULL};
	cfg.nr_ns = 1;
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_int_equal(host_buf_alloc(h, &b, 32768), 0);
	host_fill(b.va, 32768, 161);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE, 1, 123456, 8, 0, b.iova, 32768, NULL));
	memset(b.va, CANARY, 32768);
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 123456, 8, 0, b.iova, 32768, NULL));
	assert_true(host_all_zero(b.va, 32768));
	host_sqe(&sqe, NVME_CMD_FLUSH, 1);
	assert_ok(host_cmd(h, 1, &sqe, NULL));
	assert_sf(host_rw(h, 1, NVME_CMD_READ, 1, 1ull << 30, 1, 0, b.iova, 4096, NULL),
		  NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	host_buf_free(h, &b);
	host_destroy(h);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_rw_512),
	    T(test_rw_4k),
	    T(test_fua),
	    T(test_flush),
	    T(test_write_zeroes),
	    T(test_dsm_deallocate),
	    T(test_compare),
	    T(test_lba_out_of_range),
	    T(test_invalid_namespace),
	    T(test_mdts),
	    T(test_prp_offset_invalid),
	    T(test_dma_outside_arena),
	    T(test_prp_first_entry_offset),
	    T(test_prp_page_counts),
	    T(test_prp_list_with_offset),
	    cmocka_unit_test_setup_teardown(test_prp_chained_lists, setup_nomdts, teardown),
	    T(test_queue_wrap),
	    T(test_many_outstanding),
	    T(test_sgl_refused),
	    T(test_cq_full_backpressure),
	    T(test_dsm_max_ranges),
	    T(test_optional_io_opcodes),
	    T(test_fused_refused),
	    cmocka_unit_test_teardown(test_file_namespace, host_destroy_all),
	    cmocka_unit_test_teardown(test_null_namespace, host_destroy_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
