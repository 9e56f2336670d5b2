// SPDX-License-Identifier: MIT
/* Batched submission (nvmk_qpair_batch_begin/_end): one SQ tail doorbell per
 * batch, counted by wrapping the local backing's register write; every submit
 * path (contiguous, iovec, PRP list, split) inside a batch; queue depth above
 * the batch size with data verified; a batch on a SHARED qpair used by two
 * threads; nesting and misuse. Shadow doorbells are off: every doorbell the
 * driver gives the device is a register write. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "drv_test.h"
#include "nvmekeep/spec.h"

#define QID_NONE 0xffffu

static struct nvmk_backing_ops counting_ops;
static const struct nvmk_backing_ops *local_ops;
static atomic_uint sq_db_writes; /* SQ tail doorbell writes of counted_qid */
static _Atomic uint16_t counted_qid = QID_NONE;

static void counting_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	/* CAP.DSTRD = 0 (tcfg_default): SQ y tail at 1000h + 8y (Base 2.0 3.1.4.21) */
	if (off == NVME_REG_DBS + 8u * atomic_load(&counted_qid))
		atomic_fetch_add(&sq_db_writes, 1);
	local_ops->write32(b, off, val);
}

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;
};

static int setup_with(void **state, uint32_t qp_flags, uint32_t depth)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = depth, .flags = qp_flags};

	tlog_reset();
	tcfg_default(&cfg, "emu-batch");
	cfg.mdts = 3; /* 32 KiB: a 64 KiB read is split */
	cfg.ns[0].nblocks = (16u << 20) >> 9;
	topts_default(&o);
	o.dbbuf = NVMK_DBBUF_OFF;
	o.io_timeout_ms = 5000;
	if (nvmk_backing_local_create(&cfg, &f->t.b, &f->t.emu))
		return -1;
	/* wrap the register write before the controller caches it per queue */
	local_ops = f->t.b->ops;
	counting_ops = *local_ops;
	counting_ops.write32 = counting_write32;
	f->t.b->ops = &counting_ops;
	if (nvmk_ctrl_open(f->t.b, &o, &f->t.ctrl))
		return -1;
	if (nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns) || nvmk_qpair_create(f->t.ctrl, &qo, &f->qp) ||
	    nvmk_ctrl_dma_alloc(f->t.ctrl, 1u << 20, &f->buf))
		return -1;
	atomic_store(&counted_qid, nvmk_qpair_id(f->qp));
	atomic_store(&sq_db_writes, 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0, 128);
}

static int setup_shared(void **state)
{
	return setup_with(state, NVMK_QPAIR_SHARED, 128);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	atomic_store(&counted_qid, QID_NONE);
	nvmk_ctrl_dma_free(f->t.ctrl, &f->buf);
	nvmk_qpair_destroy(f->qp);
	nvmk_ns_close(f->ns);
	nvmk_ctrl_close(f->t.ctrl);
	nvmk_backing_destroy(f->t.b);
	free(f);
	return 0;
}

struct count {
	atomic_uint done;
	atomic_uint failed;
};

static void on_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct count *c = arg;

	if (cpl->err)
		atomic_fetch_add(&c->failed, 1);
	atomic_fetch_add(&c->done, 1);
}

/* Process completions until @c->done reaches @want (5 s bound: a batch
 * never rung would leave them outstanding). */
static void wait_done(struct nvmk_qpair *qp, struct count *c, unsigned want)
{
	for (int i = 0; i < 50000 && atomic_load(&c->done) < want; i++) {
		int n = nvmk_qpair_wait(qp, 100);

		assert_true(n >= 0 || n == -ETIMEDOUT);
	}
	assert_int_equal(atomic_load(&c->done), want);
	assert_int_equal(atomic_load(&c->failed), 0);
}

/* 32 submissions of four kinds in one batch: no doorbell until the end,
 * exactly one at the end, and every command completes. */
static void test_one_doorbell_per_batch(void **state)
{
	struct fixture *f = *state;
	uint8_t *va = f->buf.mem.vaddr;
	struct count c = {0};
	unsigned n = 0;

	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	for (unsigned i = 0; i < 8; i++, n++) /* contiguous, one page */
		assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &f->buf, i * 4096u, i * 8u, 8, 0,
						     on_done, &c),
				 0);
	for (unsigned i = 0; i < 8; i++, n++) /* three pages: PRP list */
		assert_int_equal(nvmk_ns_submit_write(f->ns, f->qp, &f->buf, 65536u + i * 12288u,
						      100u + i * 24u, 24, 0, on_done, &c),
				 0);
	for (unsigned i = 0; i < 8; i++, n++) { /* iovec: two whole pages */
		struct iovec iov[2] = {{va + 262144u + i * 8192u, 4096},
				       {va + 262144u + i * 8192u + 4096u, 4096}};

		assert_int_equal(
		    nvmk_ns_submit_readv(f->ns, f->qp, iov, 2, 400u + i * 16u, 16, 0, on_done, &c),
		    0);
	}
	for (unsigned i = 0; i < 8; i++, n++) /* 64 KiB above MDTS (32 KiB): split in two */
		assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &f->buf, 393216u + i * 65536u,
						     1000u + i * 128u, 128, 0, on_done, &c),
				 0);
	/* requests, not commands: the 8 split reads count once each (issue 14) */
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 32u);
	assert_int_equal(atomic_load(&sq_db_writes), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, n);
	/* processing rang nothing more: nothing was left unrung */
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	/* an empty batch rings nothing */
	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
}

/* Keep up to 127 commands in flight (queue of 128) in batches of 32, two
 * passes: write a pattern, read it back and compare. One doorbell per batch
 * that submitted anything; a full queue (-EAGAIN) ends a batch early. */
static void run_deep(struct fixture *f, bool write, unsigned total, unsigned *batches)
{
	struct count c = {0};
	unsigned next = 0;

	while (atomic_load(&c.done) < total) {
		unsigned in_batch = 0;

		assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
		while (next < total && in_batch < 32) {
			size_t off = (size_t)(next % 256u) * 4096u;
			int rc = write ? nvmk_ns_submit_write(f->ns, f->qp, &f->buf, off, next * 8u,
							      8, 0, on_done, &c)
				       : nvmk_ns_submit_read(f->ns, f->qp, &f->buf, off, next * 8u,
							     8, 0, on_done, &c);

			if (rc == -EAGAIN)
				break;
			assert_int_equal(rc, 0);
			next++;
			in_batch++;
		}
		assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
		if (in_batch)
			(*batches)++;
		assert_int_equal(atomic_load(&sq_db_writes), *batches);
		assert_true(nvmk_qpair_process_completions(f->qp, 0) >= 0);
		/* queue full, or all submitted: wait for a completion */
		if ((!in_batch || next == total) && atomic_load(&c.done) < total)
			assert_true(nvmk_qpair_wait(f->qp, 5000) > 0);
	}
	assert_int_equal(atomic_load(&c.failed), 0);
}

static void test_queue_depth_above_batch(void **state)
{
	struct fixture *f = *state;
	uint8_t *va = f->buf.mem.vaddr;
	unsigned batches = 0;

	/* slot s of the buffer holds s; a write of LBA group g (8 blocks) comes
	 * from slot g % 256, a read of it goes there again: every slot must read
	 * back its own number */
	for (unsigned s = 0; s < 256; s++)
		memcpy(va + s * 4096u, &s, sizeof(s));
	run_deep(f, true, 1024, &batches);
	memset(va, 0xee, 256 * 4096u);
	run_deep(f, false, 1024, &batches);
	for (unsigned s = 0; s < 256; s++) {
		unsigned v;

		memcpy(&v, va + s * 4096u, sizeof(v));
		assert_int_equal(v, s);
	}
	assert_true(batches >= 2 * 1024 / 32);
}

/* Nesting: only the outermost end rings; misuse is refused and named. */
static void test_nesting_and_misuse(void **state)
{
	struct fixture *f = *state;
	struct count c = {0};
	unsigned depth = 0;
	int rc;

	assert_int_equal(nvmk_qpair_batch_end(f->qp), -EINVAL);
	assert_true(tlog_has("batch end without a batch begin"));
	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &f->buf, 0, 0, 8, 0, on_done, &c), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 1);
	/* too deep */
	while ((rc = nvmk_qpair_batch_begin(f->qp)) == 0)
		depth++;
	assert_int_equal(rc, -EOVERFLOW);
	assert_int_equal(depth, 127u);
	while (depth--)
		assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), -EINVAL);
}

/* Waiting inside a batch: processing rings what was submitted, so the wait
 * finds the completion instead of waiting for a command the device never saw. */
static void test_wait_inside_batch(void **state)
{
	struct fixture *f = *state;
	struct count c = {0};

	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &f->buf, 0, 0, 8, 0, on_done, &c), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 0);
	wait_done(f->qp, &c, 1);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
}

/* Two threads on one SHARED qpair, each submitting batches of 8 reads and
 * processing completions: every command completes, nothing stays unrung.
 * Another thread's processing may ring part of a batch early, so the count
 * is bounded only by the number of batches plus that of the waits. */
struct shared_arg {
	struct fixture *f;
	unsigned id;
	struct count c;
	int err;
};

#define SHARED_BATCHES 50

static void *shared_thread(void *p)
{
	struct shared_arg *a = p;
	struct fixture *f = a->f;
	unsigned submitted = 0;

	for (unsigned b = 0; b < SHARED_BATCHES && !a->err; b++) {
		if (nvmk_qpair_batch_begin(f->qp)) {
			a->err = -1;
			break;
		}
		for (unsigned i = 0; i < 8; i++) {
			int rc =
			    nvmk_ns_submit_read(f->ns, f->qp, &f->buf, (a->id * 8u + i) * 4096u,
						(b * 8u + i) * 8u, 8, 0, on_done, &a->c);

			if (rc == 0)
				submitted++;
			else if (rc != -EAGAIN)
				a->err = rc;
		}
		if (nvmk_qpair_batch_end(f->qp))
			a->err = -2;
		/* wait for this thread's commands (the other thread may reap them) */
		for (int i = 0; i < 5000 && atomic_load(&a->c.done) < submitted; i++)
			(void)nvmk_qpair_wait(f->qp, 1);
		if (atomic_load(&a->c.done) < submitted)
			a->err = -ETIMEDOUT;
	}
	return NULL;
}

static void test_batch_on_shared_qpair(void **state)
{
	struct fixture *f = *state;
	struct shared_arg a[2] = {{.f = f, .id = 0}, {.f = f, .id = 1}};
	pthread_t tid[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, shared_thread, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a[i].err, 0);
		assert_int_equal(atomic_load(&a[i].c.failed), 0);
		assert_true(atomic_load(&a[i].c.done) > 0);
	}
	assert_true(atomic_load(&sq_db_writes) >= 1);
	print_message("shared qpair: %u SQ doorbells for %u batches\n", atomic_load(&sq_db_writes),
		      2u * SHARED_BATCHES);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_doorbell_per_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_depth_above_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nesting_and_misuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_inside_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_on_shared_qpair, setup_shared, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
