/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: interrupts. Each CQ signals the MSI-X vector it was
 * created with (NVMe Base 2.0 5.4, IEN/IV); a masked vector holds its
 * message pending until unmasked (PCI MSI-X Vector Control / Pending Bit);
 * a CQ created with IEN = 0 never signals. Vectors are eventfds (emu.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static int setup(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;

	host_config(&cfg, "msix");
	cfg.msix_vectors = 8;
	cfg.max_io_queues = 7;
	h = host_create(&cfg);
	if (!h)
		return -1;
	if (host_bringup(h)) {
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

/* Submit a 512 B read on @qid and return its CID. */
static uint16_t submit_read(struct host *h, uint16_t qid)
{
	struct nvme_sqe sqe;
	int cid;

	host_sqe(&sqe, NVME_CMD_READ, 1);
	sqe.prp1 = host_page_alloc(h->arena, 1, 1);
	cid = host_submit(h, qid, &sqe);
	assert_true(cid >= 0);
	return (uint16_t)cid;
}

static void do_read(struct host *h, uint16_t qid)
{
	assert_ok(host_wait(h, qid, submit_read(h, qid), NULL, HOST_TIMEOUT_MS));
}

static void test_admin_vector0(void **state)
{
	struct host *h = *state;
	struct nvme_id_ctrl id;

	host_irq_take(h, 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	/* the admin CQ always interrupts on vector 0 (Base 2.0 3.1.3.8 AQA) */
	assert_true(host_irq_wait(h, 0, HOST_TIMEOUT_MS));
}

static void test_vector_per_cq(void **state)
{
	struct host *h = *state;
	uint16_t v;

	assert_int_equal(host_create_qpair(h, 1, 16, 1), 0);
	assert_int_equal(host_create_qpair(h, 2, 16, 2), 0);
	assert_int_equal(host_create_qpair(h, 3, 16, 7), 0); /* the last vector */
	for (v = 0; v < 8; v++)
		host_irq_take(h, v);

	do_read(h, 1);
	assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
	host_sleep_ms(20);
	assert_int_equal(host_irq_take(h, 2), 0);
	assert_int_equal(host_irq_take(h, 7), 0);

	do_read(h, 2);
	assert_true(host_irq_wait(h, 2, HOST_TIMEOUT_MS));
	host_sleep_ms(20);
	assert_int_equal(host_irq_take(h, 1), 0);

	do_read(h, 3);
	assert_true(host_irq_wait(h, 7, HOST_TIMEOUT_MS));
	host_sleep_ms(20);
	assert_int_equal(host_irq_take(h, 1), 0);
	assert_int_equal(host_irq_take(h, 2), 0);
	/* I/O completions do not signal the admin vector */
	assert_int_equal(host_irq_take(h, 0), 0);
}

static void test_shared_vector(void **state)
{
	struct host *h = *state;

	/* two CQs on the same vector: both signal it */
	assert_int_equal(host_create_qpair(h, 1, 16, 3), 0);
	assert_int_equal(host_create_qpair(h, 2, 16, 3), 0);
	host_irq_take(h, 3);
	do_read(h, 1);
	assert_true(host_irq_wait(h, 3, HOST_TIMEOUT_MS));
	do_read(h, 2);
	assert_true(host_irq_wait(h, 3, HOST_TIMEOUT_MS));
}

static void test_masked_vector_pends(void **state)
{
	struct host *h = *state;
	struct nvme_cqe cqe;
	uint16_t cid;

	assert_int_equal(host_create_qpair(h, 1, 16, 1), 0);
	host_irq_take(h, 1);
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 1, true), 0);
	cid = submit_read(h, 1);
	/* the completion is posted... */
	assert_ok(host_wait(h, 1, cid, &cqe, HOST_TIMEOUT_MS));
	/* ...but the message is held while masked */
	host_sleep_ms(HOST_QUIET_MS);
	assert_int_equal(host_irq_take(h, 1), 0);
	/* unmasking sends the pending message */
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 1, false), 0);
	assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
	/* and it does not fire again by itself */
	host_sleep_ms(20);
	assert_int_equal(host_irq_take(h, 1), 0);
	/* unmasked: signals straight away again */
	do_read(h, 1);
	assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
	/* masking one vector does not hold another */
	assert_int_equal(host_create_qpair(h, 2, 16, 2), 0);
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 1, true), 0);
	do_read(h, 2);
	assert_true(host_irq_wait(h, 2, HOST_TIMEOUT_MS));
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 1, false), 0);
}

static void test_no_ien_never_signals(void **state)
{
	struct host *h = *state;
	unsigned i;
	uint16_t v;

	/* IEN = 0 (IV = 0): no vector, not even the admin one, is signalled */
	assert_int_equal(host_create_cq(h, 1, 16, -1), 0);
	assert_int_equal(host_create_sq(h, 1, 1, 16), 0);
	for (v = 0; v < 8; v++)
		host_irq_efd(h, v);
	host_sleep_ms(20);
	for (v = 0; v < 8; v++)
		host_irq_take(h, v);
	for (i = 0; i < 5; i++)
		do_read(h, 1);
	host_sleep_ms(HOST_QUIET_MS);
	for (v = 0; v < 8; v++)
		assert_int_equal(host_irq_take(h, v), 0);
}

static void test_irq_fd_api(void **state)
{
	struct host *h = *state;
	int fd = host_irq_efd(h, 1);

	assert_true(fd >= 0);
	/* vectors beyond the table are refused */
	assert_int_equal(nvmk_emu_set_irq_fd(h->emu, 8, fd), -EINVAL);
	assert_int_equal(nvmk_emu_set_irq_fd(h->emu, 0xffff, fd), -EINVAL);
	/* unbinding: completions still arrive, nothing is signalled */
	assert_int_equal(host_create_qpair(h, 1, 16, 1), 0);
	assert_int_equal(nvmk_emu_set_irq_fd(h->emu, 1, -1), 0);
	host_irq_take(h, 1);
	do_read(h, 1);
	host_sleep_ms(20);
	assert_int_equal(host_irq_take(h, 1), 0);
	/* binding again works */
	assert_int_equal(nvmk_emu_set_irq_fd(h->emu, 1, fd), 0);
	do_read(h, 1);
	assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
}

/* One signal per completion is not required, but every batch of
 * completions must be followed by at least one signal. */
static void test_burst_signals(void **state)
{
	struct host *h = *state;
	uint16_t cid[12];
	unsigned i;

	assert_int_equal(host_create_qpair(h, 1, 32, 5), 0);
	for (i = 0; i < 12; i++)
		cid[i] = submit_read(h, 1);
	for (i = 0; i < 12; i++)
		assert_ok(host_wait(h, 1, cid[i], NULL, HOST_TIMEOUT_MS));
	assert_true(host_irq_wait(h, 5, HOST_TIMEOUT_MS));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_admin_vector0),	 T(test_vector_per_cq),	       T(test_shared_vector),
	    T(test_masked_vector_pends), T(test_no_ien_never_signals), T(test_irq_fd_api),
	    T(test_burst_signals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
