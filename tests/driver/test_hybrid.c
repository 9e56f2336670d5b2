// SPDX-License-Identifier: MIT
/* Hybrid polling (nvmk_qpair_opts.hybrid_poll_us): an interrupt-mode qpair
 * whose wait polls a bounded time before sleeping completes every command,
 * whether the completion comes within the poll time or after it (the
 * emulator holds some commands back); the options it refuses are named.
 * Nothing here measures time. */
#include <errno.h>

#include "drv_test.h"
#include "nvmekeep/spec.h"

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
	struct nvmk_dma_buf buf;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;

	tlog_reset();
	tcfg_default(&cfg, "emu-hybrid");
	topts_default(&o);
	o.io_timeout_ms = 5000;
	if (tenv_open(&f->t, &cfg, &o) || nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns) ||
	    nvmk_ctrl_dma_alloc(f->t.ctrl, 65536, &f->buf))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_ctrl_dma_free(f->t.ctrl, &f->buf);
	nvmk_ns_close(f->ns);
	tenv_close(&f->t);
	free(f);
	return 0;
}

static void on_done(void *arg, const struct nvmk_cpl *cpl)
{
	int *c = arg;

	if (cpl->err)
		*c = -1000;
	else
		(*c)++;
}

/* Every wait returns completions; some commands are delayed by the emulator
 * past the poll time (the wait then sleeps on the interrupt). */
static void test_hybrid_completes(void **state)
{
	struct fixture *f = *state;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_INTERRUPT, .hybrid_poll_us = 5};
	/* after 50 reads, the next 30 complete 2 ms late */
	struct nvmk_emu_fault rule = {.kind = NVMK_FAULT_DELAY,
				      .qid = NVMK_FAULT_ANY_QID,
				      .opcode = NVME_CMD_READ,
				      .skip = 50,
				      .count = 30,
				      .delay_us = 2000};
	struct nvmk_qpair *qp;
	int done = 0;

	assert_int_equal(nvmk_qpair_create(f->t.ctrl, &qo, &qp), 0);
	int id = nvmk_emu_fault_add(f->t.emu, &rule);

	assert_true(id >= 0);
	for (int i = 0; i < 100; i++) {
		int want = done + 1 + (i & 3);

		for (int k = 0; k <= (i & 3); k++)
			assert_int_equal(nvmk_ns_submit_read(f->ns, qp, &f->buf, (size_t)k * 4096u,
							     (uint64_t)(i * 8 + k), 8, 0, on_done,
							     &done),
					 0);
		while (done >= 0 && done < want)
			assert_true(nvmk_qpair_wait(qp, 5000) > 0);
		assert_int_equal(done, want);
	}
	assert_int_equal(nvmk_emu_fault_hits(f->t.emu, id), 30); /* the late ones came too */
	nvmk_qpair_destroy(qp);
}

static void test_hybrid_refused(void **state)
{
	struct fixture *f = *state;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .hybrid_poll_us = 10};
	struct nvmk_qpair *qp = NULL;

	assert_int_equal(nvmk_qpair_create(f->t.ctrl, &qo, &qp), -EINVAL);
	assert_true(tlog_has("hybrid_poll_us needs interrupt mode"));
	qo.mode = NVMK_CPL_INTERRUPT;
	qo.hybrid_poll_us = NVMK_HYBRID_POLL_MAX_US + 1;
	assert_int_equal(nvmk_qpair_create(f->t.ctrl, &qo, &qp), -EINVAL);
	assert_true(tlog_has("too large (accepted 0..1000000)"));
	assert_null(qp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hybrid_completes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hybrid_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
