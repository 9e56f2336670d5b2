/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nvmekeep/log.h"

struct captured {
	int lines;
	char last[512];
	enum nvmk_log_level level;
};

static void capture(void *ctx, enum nvmk_log_level level, const char *line)
{
	struct captured *c = ctx;

	c->lines++;
	c->level = level;
	strncpy(c->last, line, sizeof(c->last) - 1);
}

static void test_line_names_device_and_queue(void **state)
{
	struct captured c = {0};

	(void)state;
	nvmk_log_set_sink(capture, &c);
	nvmk_log_set_level(NVMK_LOG_INFO);
	nvmk_err("0000:00:03.0", 4, "bad CID %u", 77u);
	assert_int_equal(c.lines, 1);
	assert_string_equal(c.last, "nvmekeep: error: 0000:00:03.0 q4: bad CID 77");
	nvmk_warn("emu0", NVMK_LOG_NOQ, "slow");
	assert_string_equal(c.last, "nvmekeep: warning: emu0: slow");
	nvmk_info(NULL, NVMK_LOG_NOQ, "hello");
	assert_string_equal(c.last, "nvmekeep: info: hello");
	nvmk_log_set_sink(NULL, NULL);
}

static void test_level_filters(void **state)
{
	struct captured c = {0};

	(void)state;
	nvmk_log_set_sink(capture, &c);
	nvmk_log_set_level(NVMK_LOG_WARN);
	nvmk_info("emu0", 1, "hidden");
	nvmk_debug("emu0", 1, "hidden");
	assert_int_equal(c.lines, 0);
	nvmk_warn("emu0", 1, "shown");
	assert_int_equal(c.lines, 1);
	assert_int_equal(c.level, NVMK_LOG_WARN);
	nvmk_log_set_sink(NULL, NULL);
}

static void test_long_line_truncated(void **state)
{
	struct captured c = {0};
	char big[2000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	nvmk_log_set_sink(capture, &c);
	nvmk_err("emu0", NVMK_LOG_NOQ, "%s", big);
	assert_int_equal(c.lines, 1);
	assert_true(strlen(c.last) < 512);
	nvmk_log_set_sink(NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_names_device_and_queue),
		cmocka_unit_test(test_level_filters),
		cmocka_unit_test(test_long_line_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
