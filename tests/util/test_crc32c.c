/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nvmekeep/crc32c.h"

static void test_check_value(void **state)
{
	(void)state;
	/* the catalogue check value of CRC-32C (iSCSI) */
	assert_int_equal(nvmk_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(nvmk_crc32c(0, "", 0), 0);
	/* 32 bytes of zeroes, RFC 3720 B.4 */
	{
		uint8_t z[32] = {0};

		assert_int_equal(nvmk_crc32c(0, z, sizeof(z)), 0x8a9136aau);
	}
}

static void test_incremental(void **state)
{
	const char *a = "nvmekeep saved ", *b = "state";

	(void)state;
	assert_int_equal(nvmk_crc32c(nvmk_crc32c(0, a, strlen(a)), b, strlen(b)),
			 nvmk_crc32c(0, "nvmekeep saved state", 20));
}

/* Bitwise, independent of both the table and the SSE4.2 path. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

/* Every alignment and the head/body/tail split of the 8-byte path. */
static void test_lengths_and_alignments(void **state)
{
	static uint8_t buf[600];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131u + (i >> 3));
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len + off <= sizeof(buf); len += len < 40 ? 1 : 37)
			assert_int_equal(nvmk_crc32c(0, buf + off, len),
					 crc32c_bitwise(buf + off, len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_value),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_lengths_and_alignments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
