/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/crc32c.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_value),
	    cmocka_unit_test(test_incremental),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
