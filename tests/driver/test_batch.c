// SPDX-License-Identifier: MIT
/* Batched submission (nvmk_qpair_batch_begin/_end): one SQ tail doorbell per
 * batch, counted by wrapping the local backing's register write; every submit
 * path (contiguous, iovec, PRP list, split) inside a batch; queue depth above
 * the batch size with data verified; a batch on a SHARED qpair used by two
 * threads; nesting and misuse. The array call (nvmk_ns_submit_read_batch):
 * one doorbell per array, the general requests inside one, bad input (nothing
 * queued), a full queue (what fits), a removed namespace, a reset, a SHARED
 * qpair. Shadow doorbells are off: every doorbell the
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

/* ---- the array call: nvmk_ns_submit_read_batch / _write_batch ---- */

static int setup_small(void **state)
{
	return setup_with(state, 0, 8); /* 7 commands at most */
}

/* Request i of an array: 4 KiB (8 blocks) at slot @slot of the buffer, LBA
 * group @g. */
static struct nvmk_io_req req4k(struct fixture *f, unsigned slot, unsigned g, struct count *c)
{
	return (struct nvmk_io_req){.buf = &f->buf,
				    .off = (size_t)slot * 4096u,
				    .slba = g * 8u,
				    .nlb = 8,
				    .cb = on_done,
				    .cb_arg = c};
}

static void fill_slots(struct fixture *f, unsigned from, unsigned n, unsigned tag)
{
	uint8_t *va = f->buf.mem.vaddr;

	for (unsigned s = from; s < from + n; s++) {
		unsigned v = s * 1000u + tag;

		memset(va + s * 4096u, 0, 4096);
		memcpy(va + s * 4096u, &v, sizeof(v));
	}
}

static void check_slots(struct fixture *f, unsigned from, unsigned n, unsigned tag)
{
	uint8_t *va = f->buf.mem.vaddr;

	for (unsigned s = from; s < from + n; s++) {
		unsigned v;

		memcpy(&v, va + s * 4096u, sizeof(v));
		assert_int_equal(v, s * 1000u + tag);
	}
}

/* 32 writes in one call, then 32 reads of them into other slots in one
 * call: one SQ doorbell each, every command completes, the data is back. */
static void test_array_one_doorbell(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[32];
	struct count c = {0};

	fill_slots(f, 0, 32, 7);
	for (unsigned i = 0; i < 32; i++)
		reqs[i] = req4k(f, i, 100u + i, &c);
	reqs[5].io_flags = NVMK_IO_FUA;
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs, 32), 32);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 32u);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 32);
	for (unsigned i = 0; i < 32; i++)
		reqs[i].off = (32u + i) * 4096u;
	memset((uint8_t *)f->buf.mem.vaddr + 32u * 4096u, 0xee, 32u * 4096u);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 32), 32);
	assert_int_equal(atomic_load(&sq_db_writes), 2);
	wait_done(f->qp, &c, 64);
	for (unsigned i = 0; i < 32; i++) {
		unsigned v;

		memcpy(&v, (uint8_t *)f->buf.mem.vaddr + (32u + i) * 4096u, sizeof(v));
		assert_int_equal(v, i * 1000u + 7);
	}
	assert_int_equal(atomic_load(&sq_db_writes), 2);
	/* inside an open batch: no doorbell until its end */
	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 4), 4);
	assert_int_equal(atomic_load(&sq_db_writes), 2);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	assert_int_equal(atomic_load(&sq_db_writes), 3);
	wait_done(f->qp, &c, 68);
}

/* Requests the straight loop does not take, in the middle of an array: a
 * 64 KiB read above MDTS (split), a 12 KiB write over three pages (PRP
 * list), a 4 KiB read across a page boundary (PRP2). The whole array goes
 * the general way: all queued in order, one doorbell, data intact. */
static void test_array_general_requests(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[6];
	struct count c = {0};
	uint8_t *va = f->buf.mem.vaddr;

	for (unsigned i = 0; i < 65536u + 12288u; i++)
		va[i] = (uint8_t)(i * 7u + 1u);
	/* writes: 64 KiB (split in two), 12 KiB (PRP list) */
	reqs[0] = req4k(f, 0, 0, &c);
	reqs[0].nlb = 128;
	reqs[1] = req4k(f, 16, 500, &c);
	reqs[1].nlb = 24;
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs, 2), 2);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 2);
	memset(va + 131072u, 0, 262144u);
	/* reads back, with ordinary ones around them and one across a page */
	reqs[0] = req4k(f, 32, 0, &c);			   /* first 4 KiB of the 64 */
	reqs[1] = req4k(f, 40, 0, &c), reqs[1].nlb = 128;  /* all 64 KiB: split */
	reqs[2] = req4k(f, 60, 500, &c), reqs[2].nlb = 24; /* PRP list */
	reqs[3] = req4k(f, 0, 1, &c), reqs[3].off = 32u * 4096u + 2048u + 131072u;
	reqs[4] = req4k(f, 70, 501, &c);
	reqs[5] = req4k(f, 71, 502, &c);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 6), 6);
	assert_int_equal(atomic_load(&sq_db_writes), 2);
	wait_done(f->qp, &c, 8);
	assert_memory_equal(va + 32u * 4096u, va, 4096);
	assert_memory_equal(va + 40u * 4096u, va, 65536);
	assert_memory_equal(va + 60u * 4096u, va + 65536u, 12288);
	assert_memory_equal(va + 32u * 4096u + 2048u + 131072u, va + 4096u, 4096);
	assert_memory_equal(va + 70u * 4096u, va + 65536u + 4096u, 8192);
}

/* Refuse @reqs[0..n-1] with @err, queue nothing, name request @idx. */
static void expect_refused(struct fixture *f, const struct nvmk_io_req *reqs, unsigned n, int err,
			   unsigned idx, const char *why)
{
	char msg[96];
	unsigned before = atomic_load(&sq_db_writes);

	tlog_reset();
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, n), err);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0u);
	assert_int_equal(atomic_load(&sq_db_writes), before);
	snprintf(msg, sizeof(msg), "request %u of %u refused: %s", idx, n, why);
	if (!tlog_has(msg))
		fail_msg("log has no \"%s\"", msg);
}

/* Bad input: nothing queued, the request and the rule named; the same
 * array fixed is then queued whole (no tracker leaked). */
static void test_array_bad_input(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[127];
	struct count c = {0};

	for (unsigned i = 0; i < 127; i++)
		reqs[i] = req4k(f, i % 256u, i, &c);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 0), -EINVAL);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, NULL, 4), -EINVAL);
	assert_int_equal(nvmk_ns_submit_read_batch(NULL, f->qp, reqs, 4), -EINVAL);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, NULL, reqs, 4), -EINVAL);
	/* out of the buffer (1 MiB) in the middle */
	reqs[60].off = (1u << 20) - 2048u;
	expect_refused(f, reqs, 127, -EINVAL, 60, "range outside the buffer");
	reqs[60].off = SIZE_MAX - 1024u; /* off + len wraps */
	expect_refused(f, reqs, 127, -EINVAL, 60, "range outside the buffer");
	reqs[60] = req4k(f, 60, 60, &c);
	reqs[61].nlb = 0;
	expect_refused(f, reqs, 127, -EINVAL, 61, "nlb 0");
	reqs[61].nlb = 8;
	reqs[126].buf = NULL;
	expect_refused(f, reqs, 127, -EINVAL, 126, "no buffer");
	reqs[126].buf = &f->buf;
	reqs[1].cb = NULL;
	expect_refused(f, reqs, 127, -EINVAL, 1, "no callback");
	reqs[1].cb = on_done;
	reqs[0].io_flags = NVMK_IO_DEAC;
	expect_refused(f, reqs, 127, -EINVAL, 0, "unknown io_flags");
	reqs[0].io_flags = 0;
	reqs[3].off = 4096u * 3u + 2u;
	expect_refused(f, reqs, 127, -EINVAL, 3, "data not dword aligned");
	reqs[3].off = 4096u * 3u;
	/* a split into more commands than the queue holds: 128 x 32 KiB */
	reqs[9].off = 0;
	reqs[9].nlb = 128u * 64u;
	reqs[9].buf = &f->buf;
	{
		struct nvmk_dma_buf big;

		assert_int_equal(nvmk_ctrl_dma_alloc(f->t.ctrl, 4u << 20, &big), 0);
		reqs[9].buf = &big;
		expect_refused(f, reqs, 127, -E2BIG, 9, "split into more commands");
		nvmk_ctrl_dma_free(f->t.ctrl, &big);
	}
	reqs[9] = req4k(f, 9, 9, &c);
	assert_int_equal(atomic_load(&c.done), 0u);
	/* fixed: all 127 fit (the queue's every tracker is free) */
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 127), 127);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 127);
}

/* A queue of 8 (7 commands): an array of 10 queues 7 and says so, one
 * doorbell; the next call finds it full (-EAGAIN, nothing queued); after
 * the completions the rest goes in. An invalid request past the point where
 * the queue fills still refuses the whole array. */
static void test_array_queue_full(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[10];
	struct count c = {0};

	fill_slots(f, 0, 10, 3);
	for (unsigned i = 0; i < 10; i++)
		reqs[i] = req4k(f, i, 200u + i, &c);
	reqs[9].nlb = 0;
	expect_refused(f, reqs, 10, -EINVAL, 9, "nlb 0");
	reqs[9].nlb = 8;
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs, 10), 7);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 7u);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs + 7, 3), -EAGAIN);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 7);
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs + 7, 3), 3);
	wait_done(f->qp, &c, 10);
	/* read all ten back: 7 fit, then 3 */
	memset(f->buf.mem.vaddr, 0, 10u * 4096u);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 10), 7);
	wait_done(f->qp, &c, 17);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs + 7, 3), 3);
	wait_done(f->qp, &c, 20);
	check_slots(f, 0, 10, 3);
	/* general path (a split) on a full queue: what fits, in order */
	reqs[2].nlb = 128; /* 2 parts + parent */
	reqs[2].off = 64u * 4096u;
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 10), 5);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 5u);
	wait_done(f->qp, &c, 25);
}

/* A removed namespace: -ENODEV, nothing reaches the device. */
static void test_array_removed_ns(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[4];
	struct count c = {0};

	for (unsigned i = 0; i < 4; i++)
		reqs[i] = req4k(f, i, i, &c);
	assert_int_equal(tns_remove_wait(f->t.emu, f->ns, 1), 0);
	uint64_t reads = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 4), -ENODEV);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0u);
	assert_int_equal(atomic_load(&sq_db_writes), 0);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ), reads);
	assert_int_equal(atomic_load(&c.done), 0u);
}

/* After a controller reset the next array re-creates the queues (general
 * path) and is queued whole; the one after takes the straight loop. */
static void test_array_after_reset(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_req reqs[8];
	struct count c = {0};

	fill_slots(f, 0, 8, 5);
	for (unsigned i = 0; i < 8; i++)
		reqs[i] = req4k(f, i, 300u + i, &c);
	assert_int_equal(nvmk_ns_submit_write_batch(f->ns, f->qp, reqs, 8), 8);
	wait_done(f->qp, &c, 8);
	assert_int_equal(nvmk_ctrl_reset(f->t.ctrl), 0);
	memset(f->buf.mem.vaddr, 0, 8u * 4096u);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 8), 8);
	wait_done(f->qp, &c, 16);
	check_slots(f, 0, 8, 5);
	memset(f->buf.mem.vaddr, 0, 8u * 4096u);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 8), 8);
	wait_done(f->qp, &c, 24);
	check_slots(f, 0, 8, 5);
}

/* A SHARED qpair, two threads each submitting arrays of 8 and waiting:
 * every array is queued whole or in part (never refused but for a full
 * queue), every command completes, nothing stays unrung. */
static void *shared_array_thread(void *p)
{
	struct shared_arg *a = p;
	struct fixture *f = a->f;
	unsigned submitted = 0;

	for (unsigned b = 0; b < SHARED_BATCHES && !a->err; b++) {
		struct nvmk_io_req reqs[8];
		unsigned done = 0;

		for (unsigned i = 0; i < 8; i++)
			reqs[i] = (struct nvmk_io_req){.buf = &f->buf,
						       .off = (a->id * 8u + i) * 4096u,
						       .slba = (b * 8u + i) * 8u,
						       .nlb = 8,
						       .cb = on_done,
						       .cb_arg = &a->c};
		for (int tries = 0; done < 8 && tries < 5000; tries++) {
			int rc = nvmk_ns_submit_read_batch(f->ns, f->qp, reqs + done, 8 - done);

			if (rc > 0) {
				done += (unsigned)rc;
				submitted += (unsigned)rc;
			} else if (rc != -EAGAIN) {
				a->err = rc;
				break;
			} else {
				(void)nvmk_qpair_wait(f->qp, 1);
			}
		}
		if (done < 8 && !a->err)
			a->err = -EAGAIN;
		for (int i = 0; i < 5000 && atomic_load(&a->c.done) < submitted; i++)
			(void)nvmk_qpair_wait(f->qp, 1);
		if (atomic_load(&a->c.done) < submitted)
			a->err = -ETIMEDOUT;
	}
	return NULL;
}

static void test_array_on_shared_qpair(void **state)
{
	struct fixture *f = *state;
	struct shared_arg a[2] = {{.f = f, .id = 0}, {.f = f, .id = 1}};
	struct nvmk_io_req reqs[16];
	struct count c = {0};
	pthread_t tid[2];

	/* alone first: one doorbell for the array */
	for (unsigned i = 0; i < 16; i++)
		reqs[i] = req4k(f, i, i, &c);
	assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, reqs, 16), 16);
	assert_int_equal(atomic_load(&sq_db_writes), 1);
	wait_done(f->qp, &c, 16);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, shared_array_thread, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a[i].err, 0);
		assert_int_equal(atomic_load(&a[i].c.failed), 0);
		assert_int_equal(atomic_load(&a[i].c.done), 8u * SHARED_BATCHES);
	}
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
	    cmocka_unit_test_setup_teardown(test_array_one_doorbell, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_general_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_queue_full, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_array_removed_ns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_after_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_on_shared_qpair, setup_shared, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
