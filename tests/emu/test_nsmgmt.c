/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: namespace changes made on the emulator side
 * (nvmk_emu_ns_add/remove/resize) as a host sees them: the Namespace
 * Attribute Changed notice (NVMe Base 2.0 5.2, 5.27.1.7, 8.11), the Changed
 * Namespace List log (5.16.1.5), Identify, and I/O. Plus the per-opcode
 * command counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static int setup(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;

	host_config(&cfg, "nsmgmt");
	cfg.ns[0].nblocks = 4096;
	h = host_create(&cfg);
	if (!h)
		return -1;
	if (host_bringup(h) || host_create_qpair(h, 1, 16, -1)) {
		host_destroy(h);
		return -1;
	}
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	host_destroy(*state);
	return host_destroy_all(NULL);
}

static uint16_t submit_aer(struct host *h)
{
	struct nvme_sqe sqe;
	int cid;

	host_sqe(&sqe, NVME_ADM_ASYNC_EVENT, 0);
	cid = host_submit(h, 0, &sqe);
	assert_true(cid >= 0);
	return (uint16_t)cid;
}

/* The AER completes with a Namespace Attribute Changed notice. */
static void expect_ns_notice(struct host *h, uint16_t cid)
{
	struct nvme_cqe cqe;

	assert_ok(host_wait(h, 0, cid, &cqe, HOST_TIMEOUT_MS));
	assert_int_equal(NVME_AER_DW0_TYPE(cqe.dw0), NVME_AER_TYPE_NOTICE);
	assert_int_equal(NVME_AER_DW0_INFO(cqe.dw0), NVME_AER_NOTICE_NS_CHANGED);
	assert_int_equal(NVME_AER_DW0_LID(cqe.dw0), NVME_LOG_CHANGED_NS);
}

static void expect_no_completion(struct host *h, uint16_t cid)
{
	assert_int_equal(host_wait(h, 0, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
}

static void set_aec(struct host *h, uint32_t bits)
{
	assert_ok(host_set_features(h, NVME_FEAT_ASYNC_EVENT, bits, NULL));
}

static void read_changed(struct host *h, struct nvme_changed_ns_log *l)
{
	memset(l, 0xa5, sizeof(*l));
	assert_ok(host_get_log(h, NVME_LOG_CHANGED_NS, NVME_NSID_ALL, l, sizeof(*l), false));
}

static bool has_nsid(const struct nvme_changed_ns_log *l, uint32_t nsid)
{
	unsigned i;

	for (i = 0; i < NVME_NS_LIST_MAX && l->nsid[i]; i++)
		if (l->nsid[i] == nsid)
			return true;
	return false;
}

static unsigned count_nsids(const struct nvme_changed_ns_log *l)
{
	unsigned i;

	for (i = 0; i < NVME_NS_LIST_MAX && l->nsid[i]; i++)
		;
	/* entries after the first zero are zero too */
	assert_true(host_all_zero(&l->nsid[i], (NVME_NS_LIST_MAX - i) * 4));
	return i;
}

static int io(struct host *h, uint8_t opc, uint32_t nsid, uint64_t lba)
{
	struct host_buf b;
	int sf;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	host_fill(b.va, 4096, nsid * 1000 + lba);
	sf = host_rw(h, 1, opc, nsid, lba, 1, 0, b.iova, 4096, NULL);
	host_buf_free(h, &b);
	return sf;
}

static void add_ns(struct host *h, uint32_t nsid, uint64_t nblocks, uint8_t shift)
{
	struct nvmk_emu_ns_config ns = {.nsid = nsid, .nblocks = nblocks, .lba_shift = shift};

	assert_int_equal(nvmk_emu_ns_add(h->emu, &ns), 0);
}

static void test_add_raises_notice(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	struct nvme_id_ns ns;
	struct nvme_ns_list al;
	uint16_t cid;

	assert_non_null(l);
	set_aec(h, NVME_AEC_NS_ATTR);
	cid = submit_aer(h);
	expect_no_completion(h, cid); /* nothing happened yet */
	add_ns(h, 3, 1000, 12);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_int_equal(count_nsids(l), 1);
	assert_int_equal(l->nsid[0], 3);
	/* reading the log cleared it */
	read_changed(h, l);
	assert_int_equal(count_nsids(l), 0);

	assert_ok(host_identify(h, NVME_ID_CNS_NS, 3, &ns));
	assert_int_equal(ns.nsze, 1000);
	assert_int_equal(ns.lbaf[NVME_FLBAS_INDEX(ns.flbas)].lbads, 12);
	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0, &al));
	assert_int_equal(al.nsid[0], 1);
	assert_int_equal(al.nsid[1], 3);
	assert_int_equal(al.nsid[2], 0);
	assert_ok(io(h, NVME_CMD_WRITE, 3, 999));
	assert_ok(io(h, NVME_CMD_READ, 3, 999));
	assert_sf(io(h, NVME_CMD_READ, 3, 1000), NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	free(l);
}

static void test_resize(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	struct nvme_id_ns ns;
	uint16_t cid;

	assert_non_null(l);
	set_aec(h, NVME_AEC_NS_ATTR);
	assert_sf(io(h, NVME_CMD_WRITE, 1, 5000), NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	assert_ok(io(h, NVME_CMD_WRITE, 1, 100));

	/* grow */
	cid = submit_aer(h);
	assert_int_equal(nvmk_emu_ns_resize(h->emu, 1, 8192), 0);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_true(has_nsid(l, 1));
	assert_ok(host_identify(h, NVME_ID_CNS_NS, 1, &ns));
	assert_int_equal(ns.nsze, 8192);
	assert_ok(io(h, NVME_CMD_WRITE, 1, 5000));
	assert_ok(io(h, NVME_CMD_READ, 1, 8191));
	/* data below the old size survived */
	{
		struct host_buf b;

		assert_int_equal(host_buf_alloc(h, &b, 512), 0);
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 100, 1, 0, b.iova, 512, NULL));
		assert_int_equal(host_check_fill(b.va, 512, 1000 + 100), -1);
		host_buf_free(h, &b);
	}

	/* shrink */
	cid = submit_aer(h);
	assert_int_equal(nvmk_emu_ns_resize(h->emu, 1, 2048), 0);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_true(has_nsid(l, 1));
	assert_ok(host_identify(h, NVME_ID_CNS_NS, 1, &ns));
	assert_int_equal(ns.nsze, 2048);
	assert_sf(io(h, NVME_CMD_READ, 1, 2048), NVME_SCT_GENERIC, NVME_SC_LBA_RANGE);
	assert_ok(io(h, NVME_CMD_READ, 1, 2047));
	free(l);
}

static void test_remove(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	struct nvme_id_ns ns;
	struct nvme_ns_list al;
	uint16_t cid;

	assert_non_null(l);
	set_aec(h, NVME_AEC_NS_ATTR);
	cid = submit_aer(h);
	add_ns(h, 7, 64, 9);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_ok(io(h, NVME_CMD_WRITE, 7, 1));

	cid = submit_aer(h);
	assert_int_equal(nvmk_emu_ns_remove(h->emu, 7), 0);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_int_equal(count_nsids(l), 1);
	assert_int_equal(l->nsid[0], 7);
	/* gone: I/O is Invalid Namespace, Identify is zero filled */
	assert_sf(io(h, NVME_CMD_READ, 7, 1), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	assert_sf(io(h, NVME_CMD_WRITE, 7, 1), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	memset(&ns, 0xa5, sizeof(ns));
	assert_ok(host_identify(h, NVME_ID_CNS_NS, 7, &ns));
	assert_true(host_all_zero(&ns, sizeof(ns)));
	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0, &al));
	assert_int_equal(al.nsid[0], 1);
	assert_int_equal(al.nsid[1], 0);
	/* and the ID can come back, empty */
	cid = submit_aer(h);
	add_ns(h, 7, 64, 9);
	expect_ns_notice(h, cid);
	{
		struct host_buf b;

		assert_int_equal(host_buf_alloc(h, &b, 512), 0);
		memset(b.va, 0xa5, 512);
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 7, 1, 1, 0, b.iova, 512, NULL));
		assert_true(host_all_zero(b.va, 512));
		host_buf_free(h, &b);
	}
	free(l);
}

/* Async Event Configuration bit 8 off: no notice, the log still records. */
static void test_disabled_no_notice(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	uint16_t cid;

	assert_non_null(l);
	set_aec(h, 0);
	cid = submit_aer(h);
	add_ns(h, 4, 100, 9);
	assert_int_equal(nvmk_emu_ns_resize(h->emu, 1, 5000), 0);
	expect_no_completion(h, cid);
	read_changed(h, l);
	assert_true(has_nsid(l, 4));
	assert_true(has_nsid(l, 1));
	free(l);
}

/* An event with no AER outstanding waits for the next AER. */
static void test_event_queued_until_aer(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	struct nvme_id_ctrl id;

	assert_non_null(l);
	set_aec(h, NVME_AEC_NS_ATTR);
	add_ns(h, 5, 100, 9);
	/* let the controller get past the change */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	expect_ns_notice(h, submit_aer(h));
	read_changed(h, l);
	assert_true(has_nsid(l, 5));
	free(l);
}

/* Base 2.0 5.2.1: after a notice, that event type is masked until the host
 * reads its log page; changes meanwhile are in the log; the next change
 * after the read is reported again. */
static void test_masked_until_log_read(void **state)
{
	struct host *h = *state;
	struct nvme_changed_ns_log *l = malloc(sizeof(*l));
	uint16_t cid;

	assert_non_null(l);
	set_aec(h, NVME_AEC_NS_ATTR);
	cid = submit_aer(h);
	add_ns(h, 3, 10, 9);
	expect_ns_notice(h, cid);
	cid = submit_aer(h);
	add_ns(h, 4, 10, 9);
	expect_no_completion(h, cid); /* masked: the log was not read */
	read_changed(h, l);
	assert_true(has_nsid(l, 3));
	assert_true(has_nsid(l, 4));
	assert_int_equal(count_nsids(l), 2);
	/* unmasked by the read */
	assert_int_equal(nvmk_emu_ns_resize(h->emu, 3, 20), 0);
	expect_ns_notice(h, cid);
	read_changed(h, l);
	assert_int_equal(count_nsids(l), 1);
	assert_int_equal(l->nsid[0], 3);
	free(l);
}

static void test_api_errors(void **state)
{
	struct host *h = *state;
	struct nvmk_emu_ns_config ns = {.nsid = 1, .nblocks = 10, .lba_shift = 9};

	assert_true(nvmk_emu_ns_add(h->emu, &ns) < 0); /* exists */
	ns.nsid = 0;
	assert_true(nvmk_emu_ns_add(h->emu, &ns) < 0);
	ns.nsid = NVMK_EMU_MAX_NS + 1; /* above NN */
	assert_true(nvmk_emu_ns_add(h->emu, &ns) < 0);
	ns.nsid = 2;
	ns.lba_shift = 10;
	assert_true(nvmk_emu_ns_add(h->emu, &ns) < 0);
	ns.lba_shift = 9;
	ns.nblocks = 0;
	assert_true(nvmk_emu_ns_add(h->emu, &ns) < 0);
	assert_true(nvmk_emu_ns_remove(h->emu, 2) < 0);
	assert_true(nvmk_emu_ns_remove(h->emu, 0) < 0);
	assert_true(nvmk_emu_ns_resize(h->emu, 2, 100) < 0);
	assert_true(nvmk_emu_ns_resize(h->emu, 1, 0) < 0);
	/* nothing changed */
	{
		struct nvme_ns_list al;
		struct nvme_id_ns idns;

		assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0, &al));
		assert_int_equal(al.nsid[0], 1);
		assert_int_equal(al.nsid[1], 0);
		assert_ok(host_identify(h, NVME_ID_CNS_NS, 1, &idns));
		assert_int_equal(idns.nsze, 4096);
	}
}

static void test_cmd_counters(void **state)
{
	struct host *h = *state;
	uint8_t log[512];
	struct nvme_id_ctrl id;
	uint64_t a_id, a_log, io_read, io_write;
	unsigned i;

	a_id = nvmk_emu_cmd_count(h->emu, true, NVME_ADM_IDENTIFY);
	a_log = nvmk_emu_cmd_count(h->emu, true, NVME_ADM_GET_LOG_PAGE);
	io_read = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ);
	io_write = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_WRITE);
	for (i = 0; i < 4; i++)
		assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	/* Get Log Page and Read share opcode 02h: counted apart */
	for (i = 0; i < 3; i++)
		assert_ok(host_get_log(h, NVME_LOG_SMART, NVME_NSID_ALL, log, sizeof(log), false));
	for (i = 0; i < 5; i++)
		assert_ok(io(h, NVME_CMD_READ, 1, i));
	for (i = 0; i < 2; i++)
		assert_ok(io(h, NVME_CMD_WRITE, 1, i));
	/* failed commands are fetched too */
	assert_sf(io(h, NVME_CMD_READ, 9, 0), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, true, NVME_ADM_IDENTIFY), a_id + 4);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, true, NVME_ADM_GET_LOG_PAGE), a_log + 3);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ), io_read + 6);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_WRITE), io_write + 2);
	/* I/O opcode 01h (Write) is not admin 01h (Create I/O SQ) */
	assert_int_equal(nvmk_emu_cmd_count(h->emu, true, NVME_ADM_CREATE_SQ), 1);
	/* an opcode never sent */
	assert_int_equal(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_COMPARE), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_add_raises_notice),
	    T(test_resize),
	    T(test_remove),
	    T(test_disabled_no_notice),
	    T(test_event_queued_until_aer),
	    T(test_masked_until_log_read),
	    T(test_api_errors),
	    T(test_cmd_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
