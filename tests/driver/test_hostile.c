// SPDX-License-Identifier: MIT
/* A device that lies (issue 11): tests/support/hostile.h. */
#include <errno.h>

#include "drv_test.h"
#include "hostile.h"

int main(void)
{
	const struct CMUnitTest tests[] = {};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
