/* SPDX-License-Identifier: MIT */
/*
 * spec.h: layouts are pinned by _Static_assert at compile time; this checks
 * the helpers that compute register offsets and pack/unpack fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nvmekeep/spec.h"

static void test_doorbell_offsets(void **state)
{
	(void)state;
	/* Base 2.0 3.1.3.21: SQ0TDBL at 1000h, CQ0HDBL at 1000h + (4 << DSTRD) */
	assert_int_equal(nvme_sq_doorbell(0, 0), 0x1000);
	assert_int_equal(nvme_cq_doorbell(0, 0), 0x1004);
	assert_int_equal(nvme_sq_doorbell(1, 0), 0x1008);
	assert_int_equal(nvme_cq_doorbell(1, 0), 0x100c);
	assert_int_equal(nvme_sq_doorbell(3, 2), 0x1000 + 6 * 16);
	assert_int_equal(nvme_cq_doorbell(3, 2), 0x1000 + 7 * 16);
	assert_int_equal(nvme_cq_doorbell(65535, 0), 0x1000 + 131071 * 4);
}

static void test_cap_fields(void **state)
{
	uint64_t cap = NVME_CAP_SET_MQES(1023) | NVME_CAP_SET_CQR(1) | NVME_CAP_SET_TO(30) |
		       NVME_CAP_SET_DSTRD(3) | NVME_CAP_SET_CSS(NVME_CAP_CSS_NVM) |
		       NVME_CAP_SET_MPSMIN(1) | NVME_CAP_SET_MPSMAX(4);

	(void)state;
	assert_int_equal(NVME_CAP_MQES(cap), 1023);
	assert_int_equal(NVME_CAP_CQR(cap), 1);
	assert_int_equal(NVME_CAP_TO(cap), 30);
	assert_int_equal(NVME_CAP_DSTRD(cap), 3);
	assert_int_equal(NVME_CAP_CSS(cap), NVME_CAP_CSS_NVM);
	assert_int_equal(NVME_CAP_MPSMIN(cap), 1);
	assert_int_equal(NVME_CAP_MPSMAX(cap), 4);
	/* all-ones (surprise removal) decodes to maximal fields, never traps */
	assert_int_equal(NVME_CAP_MQES(~0ull), 0xffff);
}

static void test_cc_and_status(void **state)
{
	uint32_t cc = NVME_CC_EN | NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4) |
		      NVME_CC_SET_SHN(NVME_CC_SHN_NORMAL);
	uint16_t phase_and_sf = (uint16_t)(NVME_SF(NVME_SCT_GENERIC, NVME_SC_LBA_RANGE) << 1 | 1);

	(void)state;
	assert_int_equal(cc, 0x00464001);
	assert_int_equal(NVME_CC_IOSQES(cc), 6);
	assert_int_equal(NVME_CC_SHN(cc), NVME_CC_SHN_NORMAL);
	assert_int_equal(NVME_CQE_PHASE(phase_and_sf), 1);
	assert_int_equal(NVME_SF_SC(NVME_CQE_SF(phase_and_sf)), NVME_SC_LBA_RANGE);
	assert_int_equal(NVME_SF_SCT(NVME_CQE_SF(phase_and_sf)), NVME_SCT_GENERIC);
	assert_int_equal(NVME_SF_SCT(NVME_SF(NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID)), 1);
	assert_int_equal(NVME_AQA(31, 63), (63u << 16) | 31u);
}

static void test_aer_and_numd(void **state)
{
	uint32_t dw0 = NVME_AER_DW0(NVME_AER_TYPE_NOTICE, NVME_AER_NOTICE_NS_CHANGED,
				    NVME_LOG_CHANGED_NS);

	(void)state;
	assert_int_equal(dw0, 0x00040002);
	assert_int_equal(NVME_AER_DW0_LID(dw0), NVME_LOG_CHANGED_NS);
	/* a 4 KiB log is 1024 dwords: NUMD 0's based = 1023 in NUMDL */
	assert_int_equal(NVME_LOG_CDW10(NVME_LOG_CHANGED_NS, 1023, 0), (1023u << 16) | 4u);
	assert_int_equal(NVME_LOG_CDW11(0x12345), 0x1);
	assert_int_equal(NVME_FLBAS_INDEX(0x61), 0x31);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doorbell_offsets),
		cmocka_unit_test(test_cap_fields),
		cmocka_unit_test(test_cc_and_status),
		cmocka_unit_test(test_aer_and_numd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
