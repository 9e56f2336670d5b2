// SPDX-License-Identifier: MIT
/*
 * Reservations (src/emu/reservation.c) against Base 2.0 8.19 / NVM-CS 1.0
 * 3.2.4 - 3.2.7 (same text in Base 2.2 8.1.22 and 7.5 - 7.8). Every check
 * asserts the exact status field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "emu/reservation.h"

#define OK	 NVME_SF_SUCCESS
#define CONFLICT NVME_SF(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT)
#define INVALID	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD)
#define HOSTID	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_HOSTID_INCONSISTENT)

enum { WE = 1, EA, WERO, EARO, WEAR, EAAR };

static struct emu_resv_host host64(uint16_t cntlid, uint64_t id)
{
	struct emu_resv_host h;

	memset(&h, 0, sizeof(h));
	h.cntlid = cntlid;
	memcpy(h.hostid, &id, 8);
	return h;
}

static struct emu_resv_host host128(uint16_t cntlid, uint64_t lo, uint64_t hi)
{
	struct emu_resv_host h;

	memset(&h, 0, sizeof(h));
	h.cntlid = cntlid;
	memcpy(h.hostid, &lo, 8);
	memcpy(h.hostid + 8, &hi, 8);
	h.hostid_ext = true;
	return h;
}

static uint16_t reg(struct emu_resv *r, const struct emu_resv_host *h, unsigned action, bool iekey,
		    uint64_t crkey, uint64_t nrkey)
{
	struct nvme_resv_register_data d = {.crkey = crkey, .nrkey = nrkey};

	return emu_resv_register(r, h, NVME_RESV_CDW10(action, iekey, 0), &d);
}

static uint16_t reg_cptpl(struct emu_resv *r, const struct emu_resv_host *h, unsigned cptpl,
			  uint64_t nrkey)
{
	struct nvme_resv_register_data d = {.crkey = 0, .nrkey = nrkey};

	return emu_resv_register(r, h, NVME_RESV_CDW10(0, false, 0) | (uint32_t)cptpl << 30, &d);
}

static uint16_t acq(struct emu_resv *r, const struct emu_resv_host *h, unsigned action,
		    unsigned rtype, uint64_t crkey, uint64_t prkey, bool *aborted)
{
	struct nvme_resv_acquire_data d = {.crkey = crkey, .prkey = prkey};

	return emu_resv_acquire(r, h, NVME_RESV_CDW10(action, false, rtype), &d, aborted);
}

static uint16_t rel(struct emu_resv *r, const struct emu_resv_host *h, unsigned action,
		    unsigned rtype, uint64_t crkey)
{
	return emu_resv_release(r, h, NVME_RESV_CDW10(action, false, rtype), crkey);
}

/* A parsed Reservation Report. */
struct report {
	uint32_t gen;
	uint8_t rtype;
	unsigned nr;
	uint8_t ptpls;
	struct {
		uint16_t cntlid;
		uint8_t rcsts;
		uint64_t rkey;
		uint8_t hostid[16];
	} e[8];
};

static uint16_t report(struct emu_resv *r, const struct emu_resv_host *h, bool eds,
		       struct report *out)
{
	uint8_t buf[4096];
	struct nvme_resv_status st;
	uint16_t sf;

	memset(out, 0, sizeof(*out));
	memset(buf, 0xcc, sizeof(buf));
	sf = emu_resv_report(r, h, eds, buf, sizeof(buf));
	if (sf)
		return sf;
	memcpy(&st, buf, sizeof(st));
	out->gen = st.gen;
	out->rtype = st.rtype;
	out->nr = st.regctl[0] | st.regctl[1] << 8;
	out->ptpls = st.ptpls;
	for (unsigned i = 0; i < out->nr && i < 8; i++) {
		if (eds) {
			struct nvme_resv_ctrl_ext e;

			memcpy(&e, buf + 64 + 64 * i, sizeof(e));
			out->e[i].cntlid = e.cntlid;
			out->e[i].rcsts = e.rcsts;
			out->e[i].rkey = e.rkey;
			memcpy(out->e[i].hostid, e.hostid, 16);
		} else {
			struct nvme_resv_ctrl e;

			memcpy(&e, buf + 24 + 24 * i, sizeof(e));
			out->e[i].cntlid = e.cntlid;
			out->e[i].rcsts = e.rcsts;
			out->e[i].rkey = e.rkey;
			memcpy(out->e[i].hostid, &e.hostid, 8);
		}
	}
	return OK;
}

static bool is_registered(struct emu_resv *r, const struct emu_resv_host *h, uint64_t key)
{
	/* A release with RTYPE 0 changes nothing: a registrant with that key
	 * gets success (not the holder) or Invalid Field (the holder, wrong
	 * type); anyone else gets Reservation Conflict. */
	return rel(r, h, NVME_RESV_REL_RELEASE, 0, key) != CONFLICT;
}

/* The hosts: A (two controllers), B, C, all 64-bit or all 128-bit. */
struct hosts {
	struct emu_resv_host a, a2, b, c;
};

static struct hosts hosts_of(bool ext)
{
	struct hosts hs;

	if (ext) {
		hs.a = host128(1, 0xa1, 0xa2);
		hs.a2 = host128(2, 0xa1, 0xa2);
		hs.b = host128(3, 0xb1, 0xb2);
		hs.c = host128(4, 0xc1, 0xc2);
	} else {
		hs.a = host64(1, 0xaaaa0000);
		hs.a2 = host64(2, 0xaaaa0000);
		hs.b = host64(3, 0xbbbb0000);
		hs.c = host64(4, 0xcccc0000);
	}
	return hs;
}

#define KA 0x1111111111111111ull
#define KB 0x2222222222222222ull
#define KC 0x3333333333333333ull

/* ---- command behaviour by type (Base 2.0 Figure 433/434) ---- */

/* allowed[type][role][0 = read, 1 = write]; role 0 holder, 1 registrant,
 * 2 non-registrant */
static const bool allowed[7][3][2] = {
    [WE] = {{1, 1}, {1, 0}, {1, 0}},   [EA] = {{1, 1}, {0, 0}, {0, 0}},
    [WERO] = {{1, 1}, {1, 1}, {1, 0}}, [EARO] = {{1, 1}, {1, 1}, {0, 0}},
    [WEAR] = {{1, 1}, {1, 1}, {1, 0}}, [EAAR] = {{1, 1}, {1, 1}, {0, 0}},
};

static const uint8_t read_ops[] = {NVME_CMD_READ, NVME_CMD_COMPARE, NVME_CMD_VERIFY};
static const uint8_t write_ops[] = {NVME_CMD_WRITE, NVME_CMD_WRITE_ZEROES, NVME_CMD_DSM,
				    NVME_CMD_FLUSH, NVME_CMD_WRITE_UNCOR,  NVME_CMD_COPY};
static const uint8_t free_ops[] = {NVME_CMD_RESV_REGISTER, NVME_CMD_RESV_REPORT,
				   NVME_CMD_RESV_ACQUIRE, NVME_CMD_RESV_RELEASE, 0x7f};

static void check_role(struct emu_resv *r, const struct emu_resv_host *h, unsigned type,
		       unsigned role)
{
	for (size_t i = 0; i < sizeof(read_ops); i++)
		assert_int_equal(emu_resv_check(r, h, read_ops[i]),
				 allowed[type][role][0] ? OK : CONFLICT);
	for (size_t i = 0; i < sizeof(write_ops); i++)
		assert_int_equal(emu_resv_check(r, h, write_ops[i]),
				 allowed[type][role][1] ? OK : CONFLICT);
	for (size_t i = 0; i < sizeof(free_ops); i++)
		assert_int_equal(emu_resv_check(r, h, free_ops[i]), OK);
}

static void run_type_table(bool ext)
{
	for (unsigned type = WE; type <= EAAR; type++) {
		struct hosts hs = hosts_of(ext);
		struct emu_resv *r;
		struct report rp;

		assert_int_equal(emu_resv_create(&r), 0);
		/* without a reservation everyone may do anything */
		check_role(r, &hs.c, WERO, 0);
		assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
		assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
		assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, type, KA, 0, NULL), OK);

		check_role(r, &hs.a, type, 0);
		check_role(r, &hs.a2, type, 0); /* same host, other controller */
		check_role(r, &hs.b, type, 1);
		check_role(r, &hs.c, type, 2);

		/* in All Registrants types B holds it too */
		assert_int_equal(report(r, &hs.c, ext, &rp), OK);
		assert_int_equal(rp.rtype, type);
		assert_int_equal(rp.nr, 2);
		assert_int_equal(rp.e[0].rcsts, 1);
		assert_int_equal(rp.e[1].rcsts, type >= WEAR ? 1 : 0);

		/* released: everyone may do anything again */
		assert_int_equal(rel(r, &hs.a2, NVME_RESV_REL_RELEASE, type, KA), OK);
		check_role(r, &hs.c, WERO, 0);
		check_role(r, &hs.b, WERO, 0);
		emu_resv_destroy(r);
	}
}

static void test_type_table_64(void **state)
{
	(void)state;
	run_type_table(false);
}

static void test_type_table_128(void **state)
{
	(void)state;
	run_type_table(true);
}

/* ---- Register / Unregister / Replace ---- */

static void test_register_rules(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(emu_resv_generation(r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(emu_resv_generation(r), 1);
	/* again with the same key, on the other controller of the same host */
	assert_int_equal(reg(r, &hs.a2, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(emu_resv_generation(r), 2);
	/* with a different key: conflict, and IEKEY does not help (ignored) */
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KB), CONFLICT);
	assert_int_equal(reg(r, &hs.a2, NVME_RESV_REG_REGISTER, true, KA, KB), CONFLICT);
	assert_int_equal(emu_resv_generation(r), 2);
	/* other hosts may use the same key value */
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KA), OK);

	/* Replace: wrong CRKEY conflicts, right one replaces */
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REPLACE, false, KB, KC), CONFLICT);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REPLACE, false, KA, KC), OK);
	assert_true(is_registered(r, &hs.a2, KC));
	assert_false(is_registered(r, &hs.a2, KA));
	/* IEKEY replaces whatever the current key */
	assert_int_equal(reg(r, &hs.a2, NVME_RESV_REG_REPLACE, true, 0xdead, KB), OK);
	assert_true(is_registered(r, &hs.a, KB));
	/* Replace by a non-registrant: conflict, but with IEKEY it registers */
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REPLACE, false, 0, KC), CONFLICT);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REPLACE, true, 0, KC), OK);
	assert_true(is_registered(r, &hs.c, KC));

	/* Unregister: wrong key conflicts; IEKEY ignores the key */
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_UNREGISTER, false, KA, 0), CONFLICT);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_UNREGISTER, false, KC, 0), OK);
	assert_false(is_registered(r, &hs.c, KC));
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_UNREGISTER, true, 0x999, 0), OK);
	/* a non-registrant cannot unregister, with or without IEKEY */
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_UNREGISTER, false, KA, 0), CONFLICT);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_UNREGISTER, true, KA, 0), CONFLICT);

	/* reserved RREGA values */
	assert_int_equal(reg(r, &hs.b, 3, false, 0, KB), INVALID);
	assert_int_equal(reg(r, &hs.b, 7, false, 0, KB), INVALID);
	emu_resv_destroy(r);
}

static void test_generation(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	uint32_t g;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK); /* 1 */
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK); /* 2 */
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REPLACE, false, KB, KC), OK); /* 3 */
	g = emu_resv_generation(r);
	assert_int_equal(g, 3);
	/* acquire, release and report do not count */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	assert_int_equal(rel(r, &hs.a, NVME_RESV_REL_RELEASE, WE, KA), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	{
		struct report rp;

		assert_int_equal(report(r, &hs.a, false, &rp), OK);
		assert_int_equal(rp.gen, g);
	}
	assert_int_equal(emu_resv_generation(r), g);
	/* failures do not count */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, WE, KC, 0, NULL), CONFLICT);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_UNREGISTER, false, 0, 0), CONFLICT);
	assert_int_equal(emu_resv_generation(r), g);
	/* preempt counts */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, EA, KC, KA, NULL), OK);
	assert_int_equal(emu_resv_generation(r), g + 1);
	/* clear counts */
	assert_int_equal(rel(r, &hs.b, NVME_RESV_REL_CLEAR, 0, KC), OK);
	assert_int_equal(emu_resv_generation(r), g + 2);
	emu_resv_destroy(r);
}

static void test_cptpl(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	/* 11b: persist through power loss, not supported */
	assert_int_equal(reg_cptpl(r, &hs.a, 3, KA), INVALID);
	/* 01b: reserved */
	assert_int_equal(reg_cptpl(r, &hs.a, 1, KA), INVALID);
	assert_false(is_registered(r, &hs.a, KA));
	/* 10b: clear PTPL - it is clear, fine; 00b: no change */
	assert_int_equal(reg_cptpl(r, &hs.a, 2, KA), OK);
	assert_int_equal(reg_cptpl(r, &hs.a, 0, KA), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.ptpls, 0);
	emu_resv_destroy(r);
}

/* ---- Acquire ---- */

static void test_acquire_rules(void **state)
{
	struct hosts hs = hosts_of(false);
	struct nvme_resv_acquire_data d = {.crkey = KA};
	struct emu_resv *r;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	/* a non-registrant cannot acquire */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), CONFLICT);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	/* wrong CRKEY */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KB, 0, NULL), CONFLICT);
	/* IEKEY must not be set (Invalid Field), whatever else */
	assert_int_equal(emu_resv_acquire(r, &hs.a, NVME_RESV_CDW10(0, true, WE), &d, NULL),
			 INVALID);
	/* bad RTYPE / RACQA */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, 0, KA, 0, NULL), INVALID);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, 7, KA, 0, NULL), INVALID);
	assert_int_equal(acq(r, &hs.a, 3, WE, KA, 0, NULL), INVALID);

	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WERO, KA, 0, NULL), OK);
	/* holder, same type (also via its other controller): success */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WERO, KA, 0, NULL), OK);
	assert_int_equal(acq(r, &hs.a2, NVME_RESV_ACQ_ACQUIRE, WERO, KA, 0, NULL), OK);
	/* holder, other type: conflict */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, EA, KA, 0, NULL), CONFLICT);
	/* another registrant: conflict, same type or not */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, WERO, KB, 0, NULL), CONFLICT);
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, WE, KB, 0, NULL), CONFLICT);
	{
		struct report rp;

		assert_int_equal(report(r, &hs.b, false, &rp), OK);
		assert_int_equal(rp.rtype, WERO);
		assert_int_equal(rp.e[0].rcsts, 1);
		assert_int_equal(rp.e[1].rcsts, 0);
	}
	emu_resv_destroy(r);
}

static void test_acquire_all_registrants(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, EAAR, KA, 0, NULL), OK);
	/* B is a holder too: acquiring the same type succeeds, another fails */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, EAAR, KB, 0, NULL), OK);
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, WEAR, KB, 0, NULL), CONFLICT);
	/* a host registering now becomes a holder as well */
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KC), OK);
	assert_int_equal(emu_resv_check(r, &hs.c, NVME_CMD_WRITE), OK);
	emu_resv_destroy(r);
}

/* ---- Unregistering a holder ---- */

static void test_unregister_holder(void **state)
{
	struct hosts hs = hosts_of(false);
	struct report rp;
	struct emu_resv *r;

	(void)state;
	/* single-holder type: unregistering the holder releases it */
	for (unsigned type = WE; type <= EARO; type++) {
		assert_int_equal(emu_resv_create(&r), 0);
		assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
		assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
		assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, type, KA, 0, NULL), OK);
		assert_int_equal(reg(r, &hs.a2, NVME_RESV_REG_UNREGISTER, false, KA, 0), OK);
		assert_int_equal(report(r, &hs.b, false, &rp), OK);
		assert_int_equal(rp.rtype, 0);
		assert_int_equal(rp.nr, 1);
		assert_int_equal(emu_resv_check(r, &hs.c, NVME_CMD_WRITE), OK);
		/* B may now acquire */
		assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_ACQUIRE, type, KB, 0, NULL), OK);
		emu_resv_destroy(r);
	}
	/* all-registrants type: persists while any registrant remains */
	for (unsigned type = WEAR; type <= EAAR; type++) {
		assert_int_equal(emu_resv_create(&r), 0);
		assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
		assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
		assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, type, KA, 0, NULL), OK);
		assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_UNREGISTER, false, KA, 0), OK);
		assert_int_equal(report(r, &hs.b, false, &rp), OK);
		assert_int_equal(rp.rtype, type);
		assert_int_equal(rp.nr, 1);
		assert_int_equal(rp.e[0].rcsts, 1);
		/* A is a non-registrant now: writes conflict */
		assert_int_equal(emu_resv_check(r, &hs.a, NVME_CMD_WRITE), CONFLICT);
		assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_UNREGISTER, false, KB, 0), OK);
		assert_int_equal(report(r, &hs.b, false, &rp), OK);
		assert_int_equal(rp.rtype, 0);
		assert_int_equal(rp.nr, 0);
		assert_int_equal(emu_resv_check(r, &hs.a, NVME_CMD_WRITE), OK);
		emu_resv_destroy(r);
	}
}

/* ---- Preempt ---- */

static void test_preempt_holder_key(void **state)
{
	struct hosts hs = hosts_of(false);
	struct nvme_resv_acquire_data d = {.crkey = KB, .prkey = KA};
	struct emu_resv_host victims[4];
	struct emu_resv *r;
	struct report rp;
	bool aborted = true;
	unsigned nr = 99;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	/* C registered with the same key as the holder: also unregistered */
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, EA, KA, 0, NULL), OK);
	assert_int_equal(emu_resv_check(r, &hs.b, NVME_CMD_READ), CONFLICT);

	/* a plain Preempt never asks for aborts */
	assert_int_equal(emu_resv_acquire_ex(r, &hs.b,
					     NVME_RESV_CDW10(NVME_RESV_ACQ_PREEMPT, false, WE), &d,
					     &aborted, victims, 4, &nr),
			 OK);
	assert_false(aborted);
	assert_int_equal(nr, 2);
	assert_true(emu_resv_host_matches(&victims[0], &hs.a) ||
		    emu_resv_host_matches(&victims[1], &hs.a));
	assert_true(emu_resv_host_matches(&victims[0], &hs.a2) ||
		    emu_resv_host_matches(&victims[1], &hs.a2));
	assert_true(emu_resv_host_matches(&victims[0], &hs.c) ||
		    emu_resv_host_matches(&victims[1], &hs.c));
	assert_false(emu_resv_host_matches(&victims[0], &hs.b));
	assert_false(emu_resv_host_matches(&victims[1], &hs.b));

	assert_int_equal(report(r, &hs.b, false, &rp), OK);
	assert_int_equal(rp.rtype, WE);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].cntlid, 3);
	assert_int_equal(rp.e[0].rcsts, 1);
	assert_int_equal(rp.e[0].rkey, KB);
	assert_false(is_registered(r, &hs.a, KA));
	assert_false(is_registered(r, &hs.c, KA));
	assert_int_equal(emu_resv_check(r, &hs.a, NVME_CMD_WRITE), CONFLICT);
	assert_int_equal(emu_resv_check(r, &hs.b, NVME_CMD_WRITE), OK);
	emu_resv_destroy(r);
}

static void test_preempt_and_abort(void **state)
{
	struct hosts hs = hosts_of(true);
	struct emu_resv *r;
	bool aborted = false;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT_ABORT, WERO, KB, KA, &aborted), OK);
	assert_true(aborted);
	/* preempting nobody (B preempts itself) asks for no abort */
	aborted = true;
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT_ABORT, EA, KB, KB, &aborted), OK);
	assert_false(aborted);
	/* a wrong CRKEY fails before anything happens */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_PREEMPT_ABORT, EA, KA, KB, &aborted),
			 CONFLICT);
	assert_false(aborted);
	emu_resv_destroy(r);
}

static void test_preempt_self_changes_type(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	assert_int_equal(acq(r, &hs.a2, NVME_RESV_ACQ_PREEMPT, EA, KA, KA, NULL), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, EA);
	assert_int_equal(rp.nr, 2); /* A keeps its registration, B untouched */
	assert_true(is_registered(r, &hs.a, KA));
	assert_int_equal(emu_resv_check(r, &hs.b, NVME_CMD_READ), CONFLICT);
	emu_resv_destroy(r);
}

static void test_preempt_other_key(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KC), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WERO, KA, 0, NULL), OK);
	/* B preempts C's registration: the reservation stays with A */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, WE, KB, KC, NULL), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, WERO);
	assert_int_equal(rp.nr, 2);
	assert_false(is_registered(r, &hs.c, KC));
	assert_int_equal(emu_resv_check(r, &hs.c, NVME_CMD_WRITE), CONFLICT);
	/* a key nobody has: conflict */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, WE, KB, 0x4242, NULL), CONFLICT);
	/* PRKEY 0, not the holder's key: Invalid Field */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, WE, KB, 0, NULL), INVALID);
	/* unless the holder's key is 0: then it is a preempt of the holder */
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REPLACE, false, KA, 0), OK);
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, WE, KB, 0, NULL), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, WE);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].rcsts, 1);
	assert_int_equal(rp.e[0].rkey, KB);
	/* a non-registrant cannot preempt */
	assert_int_equal(acq(r, &hs.c, NVME_RESV_ACQ_PREEMPT, WE, KC, KB, NULL), CONFLICT);
	emu_resv_destroy(r);
}

static void test_preempt_no_reservation(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	/* no reservation: registrants with PRKEY go, no reservation appears */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_PREEMPT, WE, KA, KB, NULL), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, 0);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].rkey, KA);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_PREEMPT, WE, KA, KC, NULL), CONFLICT);
	emu_resv_destroy(r);
}

static void test_preempt_all_registrants(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;
	bool aborted = false;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KC), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WEAR, KA, 0, NULL), OK);
	/* non-zero PRKEY: only that registrant goes, the reservation stays */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, EA, KB, KC, NULL), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, WEAR);
	assert_int_equal(rp.nr, 2);
	/* non-zero PRKEY nobody has: conflict */
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT, EA, KB, KC, NULL), CONFLICT);
	/* PRKEY 0: everyone else is unregistered, B gets a new EA reservation */
	assert_int_equal(reg(r, &hs.c, NVME_RESV_REG_REGISTER, false, 0, KC), OK);
	assert_int_equal(acq(r, &hs.b, NVME_RESV_ACQ_PREEMPT_ABORT, EA, KB, 0, &aborted), OK);
	assert_true(aborted);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, EA);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].rkey, KB);
	assert_int_equal(rp.e[0].rcsts, 1);
	assert_int_equal(emu_resv_check(r, &hs.a, NVME_CMD_READ), CONFLICT);
	assert_int_equal(emu_resv_check(r, &hs.b, NVME_CMD_WRITE), OK);
	emu_resv_destroy(r);
}

/* ---- Release / Clear ---- */

static void test_release_rules(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	/* non-registrant: conflict */
	assert_int_equal(rel(r, &hs.a, NVME_RESV_REL_RELEASE, WE, KA), CONFLICT);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	/* no reservation: success, no effect */
	assert_int_equal(rel(r, &hs.a, NVME_RESV_REL_RELEASE, WE, KA), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, EARO, KA, 0, NULL), OK);
	/* wrong key: conflict */
	assert_int_equal(rel(r, &hs.a, NVME_RESV_REL_RELEASE, EARO, KB), CONFLICT);
	/* IEKEY: Invalid Field */
	assert_int_equal(emu_resv_release(r, &hs.a, NVME_RESV_CDW10(0, true, EARO), KA), INVALID);
	/* reserved RRELA */
	assert_int_equal(rel(r, &hs.a, 2, EARO, KA), INVALID);
	/* not the holder: success, no effect */
	assert_int_equal(rel(r, &hs.b, NVME_RESV_REL_RELEASE, EARO, KB), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, EARO);
	/* wrong type: Invalid Field, reservation stays */
	assert_int_equal(rel(r, &hs.a, NVME_RESV_REL_RELEASE, EA, KA), INVALID);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, EARO);
	/* right type from the other controller of the holder host */
	assert_int_equal(rel(r, &hs.a2, NVME_RESV_REL_RELEASE, EARO, KA), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, 0);
	assert_int_equal(rp.nr, 2); /* registrations stay */

	/* All Registrants: a release by any registrant ends it */
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, WEAR, KA, 0, NULL), OK);
	assert_int_equal(rel(r, &hs.b, NVME_RESV_REL_RELEASE, WEAR, KB), OK);
	assert_int_equal(report(r, &hs.a, false, &rp), OK);
	assert_int_equal(rp.rtype, 0);
	emu_resv_destroy(r);
}

static void test_clear(void **state)
{
	struct hosts hs = hosts_of(false);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &hs.a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(reg(r, &hs.b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(acq(r, &hs.a, NVME_RESV_ACQ_ACQUIRE, EA, KA, 0, NULL), OK);
	/* non-registrant or wrong key: conflict */
	assert_int_equal(rel(r, &hs.c, NVME_RESV_REL_CLEAR, 0, KC), CONFLICT);
	assert_int_equal(rel(r, &hs.b, NVME_RESV_REL_CLEAR, 0, KA), CONFLICT);
	/* any registrant (not only the holder) may clear */
	assert_int_equal(rel(r, &hs.b, NVME_RESV_REL_CLEAR, 0, KB), OK);
	assert_int_equal(report(r, &hs.c, false, &rp), OK);
	assert_int_equal(rp.rtype, 0);
	assert_int_equal(rp.nr, 0);
	assert_int_equal(emu_resv_check(r, &hs.c, NVME_CMD_WRITE), OK);
	assert_false(is_registered(r, &hs.a, KA));
	emu_resv_destroy(r);
}

/* ---- Report ---- */

static void test_report_formats(void **state)
{
	struct emu_resv_host a = host64(1, 0x0102030405060708ull);
	struct emu_resv_host a2 = host64(7, 0x0102030405060708ull);
	struct emu_resv_host x = host128(5, 0x1111, 0x2222);
	struct emu_resv *r;
	struct report rp;
	uint8_t buf[100];

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &a2, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(acq(r, &a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	/* 64-bit host: EDS = 0 works, EDS = 1 is Host Identifier Inconsistent */
	assert_int_equal(report(r, &a, false, &rp), OK);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.rtype, WE);
	assert_int_equal(rp.gen, 1);
	assert_int_equal(rp.e[0].cntlid, 1); /* lowest controller of host A */
	assert_int_equal(rp.e[0].rcsts, 1);
	assert_int_equal(rp.e[0].rkey, KA);
	assert_memory_equal(rp.e[0].hostid, a.hostid, 8);
	assert_int_equal(report(r, &a, true, &rp), HOSTID);
	/* 128-bit host: EDS = 0 is Host Identifier Inconsistent */
	assert_int_equal(report(r, &x, false, &rp), HOSTID);
	/* and it may not register next to a 64-bit registrant */
	assert_int_equal(reg(r, &x, NVME_RESV_REG_REGISTER, false, 0, KB), HOSTID);
	assert_int_equal(reg(r, &x, NVME_RESV_REG_REPLACE, true, 0, KB), HOSTID);

	/* the data is truncated to the buffer: header only */
	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(emu_resv_report(r, &a, false, buf, 24), OK);
	assert_int_equal(buf[4], WE);
	assert_int_equal(buf[5], 1);
	assert_int_equal(buf[24], 0xcc);
	/* longer than the data: zero padded */
	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(emu_resv_report(r, &a, false, buf, sizeof(buf)), OK);
	for (size_t i = 48; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	emu_resv_destroy(r);

	/* all 128-bit: extended report carries the full identifiers */
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &x, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	assert_int_equal(reg(r, &a, NVME_RESV_REG_REGISTER, false, 0, KA), HOSTID);
	assert_int_equal(report(r, &x, true, &rp), OK);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].cntlid, 5);
	assert_int_equal(rp.e[0].rkey, KB);
	assert_int_equal(rp.e[0].rcsts, 0);
	assert_memory_equal(rp.e[0].hostid, x.hostid, 16);
	/* a 64-bit host asking for a standard report of 128-bit registrants */
	assert_int_equal(report(r, &a, false, &rp), HOSTID);
	emu_resv_destroy(r);
}

/* ---- Host identifiers ---- */

static void test_zero_host_id(void **state)
{
	struct emu_resv_host z1 = host64(1, 0), z2 = host64(2, 0), z1x = host128(1, 0, 0);
	struct emu_resv_host b = host64(3, 0xb);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	/* a controller without a host identifier is a host of its own */
	assert_int_equal(reg(r, &z1, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(acq(r, &z1, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	assert_int_equal(emu_resv_check(r, &z1, NVME_CMD_WRITE), OK);
	/* ... so another zero-identifier controller is a different host */
	assert_int_equal(emu_resv_check(r, &z2, NVME_CMD_WRITE), CONFLICT);
	assert_int_equal(acq(r, &z2, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), CONFLICT);
	/* the zero identifier has no size: either report form is accepted */
	assert_int_equal(report(r, &z1, false, &rp), OK);
	assert_int_equal(report(r, &z1x, true, &rp), OK);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].cntlid, 1);
	assert_int_equal(rp.e[0].rcsts, 1);
	/* a 64-bit host may register next to it */
	assert_int_equal(reg(r, &b, NVME_RESV_REG_REGISTER, false, 0, KB), OK);
	/* the controller goes away: its anonymous registration and the
	 * reservation it held go with it; B's registration stays */
	emu_resv_ctrl_gone(r, 1);
	assert_int_equal(report(r, &b, false, &rp), OK);
	assert_int_equal(rp.rtype, 0);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].rkey, KB);
	emu_resv_destroy(r);
}

static void test_host_id_change_and_ctrl_gone(void **state)
{
	struct emu_resv_host a = host64(1, 0xa), a_new = host64(1, 0xab), a2 = host64(2, 0xa);
	struct emu_resv *r;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	assert_int_equal(reg(r, &a, NVME_RESV_REG_REGISTER, false, 0, KA), OK);
	assert_int_equal(acq(r, &a, NVME_RESV_ACQ_ACQUIRE, WE, KA, 0, NULL), OK);
	/* controller 1 changes its host identifier: it is another host now */
	assert_int_equal(emu_resv_check(r, &a_new, NVME_CMD_WRITE), CONFLICT);
	assert_int_equal(report(r, &a_new, false, &rp), OK);
	/* host A's registration is no longer known on any controller */
	assert_int_equal(rp.e[0].cntlid, 0xffff);
	/* its other controller appears and is the holder */
	assert_int_equal(emu_resv_check(r, &a2, NVME_CMD_WRITE), OK);
	assert_int_equal(rel(r, &a2, NVME_RESV_REL_RELEASE, WE, KA), OK);
	assert_int_equal(report(r, &a2, false, &rp), OK);
	assert_int_equal(rp.e[0].cntlid, 2);
	/* a controller with an identifier going away keeps the registration */
	emu_resv_ctrl_gone(r, 2);
	assert_int_equal(report(r, &a_new, false, &rp), OK);
	assert_int_equal(rp.nr, 1);
	assert_int_equal(rp.e[0].cntlid, 0xffff);
	assert_int_equal(rp.e[0].rkey, KA);
	emu_resv_destroy(r);
}

static void test_bad_arguments(void **state)
{
	struct emu_resv_host a = host64(1, 0xa);
	struct emu_resv *r;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	/* a missing data buffer is a data transfer problem, never a crash */
	assert_int_equal(emu_resv_register(r, &a, 0, NULL),
			 NVME_SF(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR));
	assert_int_equal(emu_resv_acquire(r, &a, NVME_RESV_CDW10(0, false, WE), NULL, NULL),
			 NVME_SF(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR));
	assert_int_equal(emu_resv_report(r, &a, false, NULL, 0), OK);
	emu_resv_destroy(r);
	emu_resv_destroy(NULL);
}

/* ---- threads (suite 'threaded') ---- */

struct worker {
	struct emu_resv *r;
	struct emu_resv_host h;
	unsigned gen_events; /* successful register/unregister commands */
	unsigned acquired;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t key = 0x100 + w->h.cntlid;

	for (int i = 0; i < 2000; i++) {
		if (reg(w->r, &w->h, NVME_RESV_REG_REGISTER, false, 0, key) == OK)
			w->gen_events++;
		if (acq(w->r, &w->h, NVME_RESV_ACQ_ACQUIRE, WE, key, 0, NULL) == OK) {
			/* while we hold Write Exclusive, our writes pass */
			if (emu_resv_check(w->r, &w->h, NVME_CMD_WRITE) == OK)
				w->acquired++;
			rel(w->r, &w->h, NVME_RESV_REL_RELEASE, WE, key);
		}
		(void)emu_resv_check(w->r, &w->h, NVME_CMD_READ);
		if (reg(w->r, &w->h, NVME_RESV_REG_UNREGISTER, false, key, 0) == OK)
			w->gen_events++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct worker w[4];
	pthread_t t[4];
	struct emu_resv *r;
	unsigned total = 0;
	struct report rp;

	(void)state;
	assert_int_equal(emu_resv_create(&r), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.r = r, .h = host64((uint16_t)(i + 1), 0x1000u + i)};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		/* each thread registered and unregistered every round */
		assert_int_equal(w[i].gen_events, 4000);
		total += w[i].gen_events;
	}
	assert_int_equal(emu_resv_generation(r), total);
	assert_int_equal(report(r, &w[0].h, false, &rp), OK);
	assert_int_equal(rp.nr, 0);
	assert_int_equal(rp.rtype, 0);
	emu_resv_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_table_64),
	    cmocka_unit_test(test_type_table_128),
	    cmocka_unit_test(test_register_rules),
	    cmocka_unit_test(test_generation),
	    cmocka_unit_test(test_cptpl),
	    cmocka_unit_test(test_acquire_rules),
	    cmocka_unit_test(test_acquire_all_registrants),
	    cmocka_unit_test(test_unregister_holder),
	    cmocka_unit_test(test_preempt_holder_key),
	    cmocka_unit_test(test_preempt_and_abort),
	    cmocka_unit_test(test_preempt_self_changes_type),
	    cmocka_unit_test(test_preempt_other_key),
	    cmocka_unit_test(test_preempt_no_reservation),
	    cmocka_unit_test(test_preempt_all_registrants),
	    cmocka_unit_test(test_release_rules),
	    cmocka_unit_test(test_clear),
	    cmocka_unit_test(test_report_formats),
	    cmocka_unit_test(test_zero_host_id),
	    cmocka_unit_test(test_host_id_change_and_ctrl_gone),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests_name("emu_reservation", tests, NULL, NULL);
}
