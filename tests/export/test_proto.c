// SPDX-License-Identifier: MIT
/*
 * NBD wire protocol functions (src/export/proto.c) on hand-made bytes: every
 * decoder's refusals, the request checks one by one, and the encoders'
 * layouts (proto.md "Values").
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nvmekeep/export.h"

static void test_opt_hdr(void **state)
{
	uint8_t b[16];
	struct nvmk_nbd_opt_hdr h;

	(void)state;
	nvmk_nbd_put64(b, NVMK_NBD_OPTS_MAGIC);
	nvmk_nbd_put32(b + 8, NVMK_NBD_OPT_GO);
	nvmk_nbd_put32(b + 12, 1234);
	assert_int_equal(nvmk_nbd_opt_hdr_decode(b, &h), 0);
	assert_int_equal(h.option, NVMK_NBD_OPT_GO);
	assert_int_equal(h.length, 1234);
	b[0] ^= 1;
	assert_int_equal(nvmk_nbd_opt_hdr_decode(b, &h), -EPROTO);
}

static size_t info_req(uint8_t *b, const char *name, uint16_t n, const uint16_t *types)
{
	size_t l = strlen(name);

	nvmk_nbd_put32(b, (uint32_t)l);
	memcpy(b + 4, name, l);
	nvmk_nbd_put16(b + 4 + l, n);
	for (uint16_t i = 0; i < n; i++)
		nvmk_nbd_put16(b + 6 + l + 2u * i, types[i]);
	return 6 + l + 2u * n;
}

static void test_info_req(void **state)
{
	uint16_t types[] = {NVMK_NBD_INFO_NAME, NVMK_NBD_INFO_BLOCK_SIZE};
	struct nvmk_nbd_info_req q;
	uint8_t b[128];
	size_t n;

	(void)state;
	n = info_req(b, "emu/1", 2, types);
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n, &q), 0);
	assert_int_equal(q.name_len, 5);
	assert_memory_equal(q.name, "emu/1", 5);
	assert_int_equal(q.ninfo, 2);
	assert_int_equal(q.info[1], NVMK_NBD_INFO_BLOCK_SIZE);
	/* one byte short, one byte long, truncated header, name longer than data */
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n - 1, &q), -EINVAL);
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n + 1, &q), -EINVAL);
	assert_int_equal(nvmk_nbd_info_req_parse(b, 5, &q), -EINVAL);
	nvmk_nbd_put32(b, 0xffffffffu);
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n, &q), -EINVAL);
	/* NUL inside the name */
	n = info_req(b, "em", 0, NULL);
	b[5] = 0;
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n, &q), -EINVAL);
	/* empty name, no requests */
	n = info_req(b, "", 0, NULL);
	assert_int_equal(nvmk_nbd_info_req_parse(b, (uint32_t)n, &q), 0);
	assert_int_equal(q.name_len, 0);
}

static size_t meta_req(uint8_t *b, const char *name, unsigned nq, const char **q)
{
	size_t l = strlen(name), off;

	nvmk_nbd_put32(b, (uint32_t)l);
	memcpy(b + 4, name, l);
	nvmk_nbd_put32(b + 4 + l, nq);
	off = 8 + l;
	for (unsigned i = 0; i < nq; i++) {
		nvmk_nbd_put32(b + off, (uint32_t)strlen(q[i]));
		memcpy(b + off + 4, q[i], strlen(q[i]));
		off += 4 + strlen(q[i]);
	}
	return off;
}

static void test_meta_req(void **state)
{
	const char *full[] = {"base:allocation"}, *ns[] = {"base:"},
		   *other[] = {"qemu:dirty-bitmap:x", "x-foo:bar"};
	struct nvmk_nbd_meta_req q;
	uint8_t b[256];
	size_t n;

	(void)state;
	n = meta_req(b, "emu/1", 1, full);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, false, &q), 0);
	assert_true(q.base_allocation);
	/* "base:" lists, but does not select */
	n = meta_req(b, "emu/1", 1, ns);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, true, &q), 0);
	assert_true(q.base_allocation);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, false, &q), 0);
	assert_false(q.base_allocation);
	/* no query: LIST lists everything, SET selects nothing */
	n = meta_req(b, "", 0, NULL);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, true, &q), 0);
	assert_true(q.base_allocation);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, false, &q), 0);
	assert_false(q.base_allocation);
	n = meta_req(b, "emu/1", 2, other);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, true, &q), 0);
	assert_false(q.base_allocation);
	/* malformed: trailing byte, truncated query, query count beyond data */
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n + 1, true, &q), -EINVAL);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n - 1, true, &q), -EINVAL);
	n = meta_req(b, "e", 0, NULL);
	nvmk_nbd_put32(b + 5, 1000000);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, (uint32_t)n, true, &q), -EINVAL);
	assert_int_equal(nvmk_nbd_meta_req_parse(b, 7, true, &q), -EINVAL);
}

static void test_export_name(void **state)
{
	char dev[64];
	uint32_t nsid;

	(void)state;
	assert_int_equal(nvmk_nbd_export_name_parse("emu/1", 5, dev, sizeof(dev), &nsid), 0);
	assert_string_equal(dev, "emu");
	assert_int_equal(nsid, 1);
	assert_int_equal(nvmk_nbd_export_name_parse("/dev/nvme0n1/7", 14, dev, sizeof(dev), &nsid),
			 0);
	assert_string_equal(dev, "/dev/nvme0n1");
	assert_int_equal(nsid, 7);
	assert_int_equal(nvmk_nbd_export_name_parse("0000:00:03.0/4294967294", 23, dev,
						    sizeof(dev), &nsid),
			 0);
	const char *bad[] = {"emu", "emu/", "/1", "emu/0", "emu/01", "emu/x", "emu/4294967295",
			     "emu/99999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(nvmk_nbd_export_name_parse(bad[i], strlen(bad[i]), dev,
							    sizeof(dev), &nsid),
				 -EINVAL);
	assert_int_equal(nvmk_nbd_export_name_parse("emu/1", 5, dev, 3, &nsid), -EINVAL);
	assert_int_equal(nvmk_nbd_export_name_parse("e\0/1", 4, dev, sizeof(dev), &nsid), -EINVAL);
}

static void put_req(uint8_t *b, uint16_t flags, uint16_t type, uint64_t off, uint32_t len)
{
	nvmk_nbd_put32(b, NVMK_NBD_REQ_MAGIC);
	nvmk_nbd_put16(b + 4, flags);
	nvmk_nbd_put16(b + 6, type);
	nvmk_nbd_put64(b + 8, 0x1122334455667788ull);
	nvmk_nbd_put64(b + 16, off);
	nvmk_nbd_put32(b + 24, len);
}

static uint32_t check(uint16_t flags, uint16_t type, uint64_t off, uint32_t len,
		      const struct nvmk_nbd_limits *lim)
{
	struct nvmk_nbd_request r;
	uint8_t b[28];

	put_req(b, flags, type, off, len);
	assert_int_equal(nvmk_nbd_request_decode(b, &r), 0);
	assert_int_equal(r.handle, 0x1122334455667788ull);
	return nvmk_nbd_request_check(&r, lim);
}

static void test_request(void **state)
{
	const uint16_t all = NVMK_NBD_FLAG_HAS_FLAGS | NVMK_NBD_FLAG_SEND_FLUSH |
			     NVMK_NBD_FLAG_SEND_FUA | NVMK_NBD_FLAG_SEND_TRIM |
			     NVMK_NBD_FLAG_SEND_WRITE_ZEROES | NVMK_NBD_FLAG_SEND_FAST_ZERO |
			     NVMK_NBD_FLAG_SEND_CACHE | NVMK_NBD_FLAG_SEND_DF;
	struct nvmk_nbd_limits lim = {.size = 1 << 20, .min_block = 512, .max_block = 65536,
				      .tflags = all, .structured = true,
				      .meta_base_allocation = true};
	struct nvmk_nbd_request r;
	uint8_t b[28];

	(void)state;
	put_req(b, 0, 0, 0, 0);
	b[3] ^= 0xff;
	assert_int_equal(nvmk_nbd_request_decode(b, &r), -EPROTO);

	assert_int_equal(check(0, NVMK_NBD_CMD_READ, 0, 4096, &lim), 0);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_FUA, NVMK_NBD_CMD_WRITE, 512, 512, &lim), 0);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_DF, NVMK_NBD_CMD_READ, 0, 512, &lim), 0);
	assert_int_equal(check(0, NVMK_NBD_CMD_FLUSH, 0, 0, &lim), 0);
	assert_int_equal(check(0, NVMK_NBD_CMD_TRIM, 0, 1 << 20, &lim), 0);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_NO_HOLE | NVMK_NBD_CMD_FLAG_FAST_ZERO,
			       NVMK_NBD_CMD_WRITE_ZEROES, 0, 1 << 20, &lim),
			 0);
	assert_int_equal(check(0, NVMK_NBD_CMD_CACHE, 0, 1 << 20, &lim), 0);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_REQ_ONE, NVMK_NBD_CMD_BLOCK_STATUS, 0, 512, &lim),
			 0);
	assert_int_equal(check(0, NVMK_NBD_CMD_DISC, 0, 0, &lim), 0);
	/* the end of the export, exactly */
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, (1 << 20) - 512, 512, &lim), 0);

	/* refusals */
	assert_int_equal(check(0, 9, 0, 0, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(0x20, NVMK_NBD_CMD_READ, 0, 512, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_NO_HOLE, NVMK_NBD_CMD_WRITE, 0, 512, &lim),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_DF, NVMK_NBD_CMD_WRITE, 0, 512, &lim),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_REQ_ONE, NVMK_NBD_CMD_READ, 0, 512, &lim),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, 1 << 20, 512, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_WRITE, 1 << 20, 512, &lim), NVMK_NBD_ENOSPC);
	assert_int_equal(check(0, NVMK_NBD_CMD_WRITE_ZEROES, 0, (1 << 20) + 512, &lim),
			 NVMK_NBD_ENOSPC);
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, UINT64_MAX - 100, 512, &lim),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, 0, 65536 + 512, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_DF, NVMK_NBD_CMD_READ, 0, 65536 + 512, &lim),
			 NVMK_NBD_EOVERFLOW);
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, 100, 512, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_WRITE, 0, 100, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_FLUSH, 0, 512, &lim), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_BLOCK_STATUS, 0, 0, &lim), NVMK_NBD_EINVAL);

	/* what was not offered */
	struct nvmk_nbd_limits ro = lim;

	ro.tflags = NVMK_NBD_FLAG_HAS_FLAGS | NVMK_NBD_FLAG_READ_ONLY;
	ro.structured = false;
	ro.meta_base_allocation = false;
	assert_int_equal(check(0, NVMK_NBD_CMD_WRITE, 0, 512, &ro), NVMK_NBD_EPERM);
	assert_int_equal(check(0, NVMK_NBD_CMD_FLUSH, 0, 0, &ro), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_TRIM, 0, 512, &ro), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_CACHE, 0, 512, &ro), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_WRITE_ZEROES, 0, 512, &ro), NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_FUA, NVMK_NBD_CMD_READ, 0, 512, &ro),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(NVMK_NBD_CMD_FLAG_DF, NVMK_NBD_CMD_READ, 0, 512, &ro),
			 NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_BLOCK_STATUS, 0, 512, &ro), NVMK_NBD_EINVAL);
	assert_int_equal(check(0, NVMK_NBD_CMD_READ, 0, 512, &ro), 0);
}

static void test_encoders(void **state)
{
	uint8_t b[64];

	(void)state;
	assert_int_equal(nvmk_nbd_put_opt_reply(b, 7, NVMK_NBD_REP_ERR_UNKNOWN, 5), 20);
	assert_int_equal(nvmk_nbd_get64(b), NVMK_NBD_REP_MAGIC);
	assert_int_equal(nvmk_nbd_get32(b + 8), 7);
	assert_int_equal(nvmk_nbd_get32(b + 12), 0x80000006u);
	assert_int_equal(nvmk_nbd_get32(b + 16), 5);
	assert_int_equal(nvmk_nbd_put_simple_reply(b, 5, 42), 16);
	assert_int_equal(nvmk_nbd_get32(b), 0x67446698u);
	assert_int_equal(nvmk_nbd_get32(b + 4), 5);
	assert_int_equal(nvmk_nbd_get64(b + 8), 42);
	assert_int_equal(nvmk_nbd_put_chunk(b, 1, 0x8001, 9, 6), 20);
	assert_int_equal(nvmk_nbd_get32(b), 0x668e33efu);
	assert_int_equal(nvmk_nbd_get16(b + 4), 1);
	assert_int_equal(nvmk_nbd_get16(b + 6), 0x8001);
	assert_int_equal(nvmk_nbd_get64(b + 8), 9);
	assert_int_equal(nvmk_nbd_get32(b + 16), 6);
	assert_int_equal(nvmk_nbd_put_info_export(b, 1ull << 40, 0x1234), 12);
	assert_int_equal(nvmk_nbd_get16(b), 0);
	assert_int_equal(nvmk_nbd_get64(b + 2), 1ull << 40);
	assert_int_equal(nvmk_nbd_get16(b + 10), 0x1234);
	assert_int_equal(nvmk_nbd_put_info_block_size(b, 512, 4096, 131072), 14);
	assert_int_equal(nvmk_nbd_get16(b), 3);
	assert_int_equal(nvmk_nbd_get32(b + 2), 512);
	assert_int_equal(nvmk_nbd_get32(b + 6), 4096);
	assert_int_equal(nvmk_nbd_get32(b + 10), 131072);
}

static void test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(nvmk_nbd_errno_from_driver(0), 0);
	assert_int_equal(nvmk_nbd_errno_from_driver(-EROFS), NVMK_NBD_EPERM);
	assert_int_equal(nvmk_nbd_errno_from_driver(-EACCES), NVMK_NBD_EPERM);
	assert_int_equal(nvmk_nbd_errno_from_driver(-ENOSPC), NVMK_NBD_ENOSPC);
	assert_int_equal(nvmk_nbd_errno_from_driver(-ERANGE), NVMK_NBD_EINVAL);
	assert_int_equal(nvmk_nbd_errno_from_driver(-EOPNOTSUPP), NVMK_NBD_ENOTSUP);
	assert_int_equal(nvmk_nbd_errno_from_driver(-E2BIG), NVMK_NBD_EOVERFLOW);
	assert_int_equal(nvmk_nbd_errno_from_driver(-ESHUTDOWN), NVMK_NBD_ESHUTDOWN);
	assert_int_equal(nvmk_nbd_errno_from_driver(-ETIMEDOUT), NVMK_NBD_EIO);
	assert_int_equal(nvmk_nbd_errno_from_driver(-EIO), NVMK_NBD_EIO);
	assert_string_equal(nvmk_nbd_cmd_name(NVMK_NBD_CMD_WRITE_ZEROES), "WRITE_ZEROES");
	assert_string_equal(nvmk_nbd_cmd_name(99), "UNKNOWN");
	assert_string_equal(nvmk_nbd_opt_name(NVMK_NBD_OPT_GO), "GO");
	assert_string_equal(nvmk_nbd_opt_name(99), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_opt_hdr),	cmocka_unit_test(test_info_req),
	    cmocka_unit_test(test_meta_req),	cmocka_unit_test(test_export_name),
	    cmocka_unit_test(test_request),	cmocka_unit_test(test_encoders),
	    cmocka_unit_test(test_errno_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
