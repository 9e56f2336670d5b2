// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_ctrl_state.c without libFuzzer, run as a normal
 * test: a real keep-alive state saved from an emulated controller with
 * commands in flight, every truncation of it, single-bit flips at every
 * byte, a few hand-made seeds, and the files named on the command line (a
 * corpus, or crash inputs found by the fuzzer; files named seed-* must be
 * accepted: genuine states, older formats included). With --write-seed FILE it
 * writes the real state as a corpus seed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"
#include "regress_util.h"

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static void noop_cb(void *arg, const struct nvmk_cpl *cpl)
{
	(void)arg;
	(void)cpl;
}

/* A genuine state: controller with one qpair, reads in flight (held). */
static int real_state(void **blob, size_t *len)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = {.max_io_queues = 2, .io_timeout_ms = 10000};
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_dma_pool *pool;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct nvmk_dma_buf d;
	int rc;

	nvmk_emu_config_default(&cfg);
	cfg.name = "fuzz-seed";
	cfg.ns[0].nblocks = 4096;
	if (nvmk_backing_local_create(&cfg, &b, &emu) || nvmk_dma_pool_create(1024, 0, &pool))
		return -1;
	b->pool = pool;
	if (nvmk_ctrl_open(b, &o, &ctrl) || nvmk_ns_open(ctrl, 1, 0, &ns) ||
	    nvmk_qpair_create(ctrl, &qo, &qp) || nvmk_ctrl_dma_alloc(ctrl, 1 << 20, &d))
		return -1;
	nvmk_emu_fault_add(emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_HANG,
							 .qid = nvmk_qpair_id(qp),
							 .opcode = NVMK_FAULT_ANY_OPC});
	/* one plain read and one split across MDTS (a parent with two parts) */
	nvmk_ns_submit_read(ns, qp, &d, 0, 0, 8, 0, noop_cb, (void *)(uintptr_t)1);
	nvmk_ns_submit_read(ns, qp, &d, 4096, 8, 512, 0, noop_cb, (void *)(uintptr_t)2);
	rc = nvmk_ctrl_save(ctrl, NULL, blob, len);
	nvmk_ctrl_detach(ctrl);
	nvmk_backing_destroy(b);
	nvmk_dma_pool_destroy(pool);
	return rc;
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static int run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	size_t n;

	if (regress_read_file(path, buf, sizeof(buf), &n))
		return -1;
	LLVMFuzzerTestOneInput(buf, n);
	/* "seed-*" files are genuine states (older formats included): accepted */
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char err[256];

	if (strncmp(base, "seed-", 5) == 0 && nvmk_ctrl_state_validate(buf, n, err, sizeof(err))) {
		fprintf(stderr, "%s refused: %s\n", path, err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const uint8_t seeds[][12] = {
	    {0},
	    {0x08, 0x01},
	    {0x08, 0x03, 0x15, 0, 0, 0, 0, 0x1a, 0x00},
	    {0x08, 0x01, 0x15, 0xff, 0xff, 0xff, 0xff, 0x1a, 0x02, 0x0a, 0x00},
	    {0x1a, 0x7f},
	};
	char err[256];
	void *blob;
	size_t len;
	uint8_t *m;
	int rc;

	nvmk_log_set_sink(quiet, NULL);
	if (real_state(&blob, &len)) {
		fprintf(stderr, "cannot build a real saved state\n");
		return 1;
	}
	if (nvmk_ctrl_state_validate(blob, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "the real state is refused: %s\n", err);
		return 1;
	}
	if ((rc = regress_write_seed(argc, argv, blob, len)) >= 0) {
		free(blob);
		return rc;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		LLVMFuzzerTestOneInput(seeds[i], sizeof(seeds[i]));
	m = malloc(len);
	for (size_t cut = 0; cut <= len; cut++) {
		memcpy(m, blob, cut);
		LLVMFuzzerTestOneInput(m, cut);
		if (cut < len && nvmk_ctrl_state_validate(m, cut, err, sizeof(err)) == 0) {
			fprintf(stderr, "truncation to %zu of %zu bytes accepted\n", cut, len);
			return 1;
		}
	}
	for (size_t i = 0; i < len; i++) {
		memcpy(m, blob, len);
		m[i] ^= (uint8_t)(1u << (i % 8));
		LLVMFuzzerTestOneInput(m, len);
	}
	/* the same flips with the checksum fixed up: the decoder and the
	 * validator see every mutated payload */
	size_t po = regress_payload_offset(blob, len);
	if (!po) {
		fprintf(stderr, "unexpected envelope layout\n");
		return 1;
	}
	for (size_t i = po; i < len; i++)
		for (unsigned bit = 0; bit < 8; bit += 3) {
			uint32_t c;

			memcpy(m, blob, len);
			m[i] ^= (uint8_t)(1u << bit);
			c = crc32c(m + po, len - po);
			memcpy(m + 3, &c, 4); /* little endian fixed32 */
			LLVMFuzzerTestOneInput(m, len);
		}
	for (int i = 1; i < argc; i++)
		if (run_file(argv[i]))
			return 1;
	free(m);
	free(blob);
	printf("fuzz_ctrl_state regression: %zu-byte real state, %zu truncations, %zu bit flips, "
	       "%d files: ok\n",
	       len, len + 1, len, argc - 1);
	return 0;
}
