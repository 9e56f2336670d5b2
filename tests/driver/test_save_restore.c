// SPDX-License-Identifier: MIT
/* Servicing in one process: the emulator keeps running while the driver
 * objects of its controller are saved, destroyed and rebuilt. Commands are
 * really outstanding at save time (emulator DELAY faults), some complete
 * during the blackout; every request completes exactly once with its data,
 * nothing is re-issued (emulator command counts), and restore sends no
 * IDENTIFY and creates no queue. Bad saved states are refused without the
 * device seeing anything. The pool is handed over as after exec (a second
 * pool handle on a dup of the pool fd). */
#include "sr_test.h"

/* ---- in flight across a keep-alive servicing ---- */

struct io_plan {
	unsigned nqp;	     /* qpairs */
	unsigned per_qp;     /* requests per qpair */
	unsigned blackout;   /* ms */
	unsigned delay_fast; /* first commands complete after this (us)... */
	unsigned nfast;
	unsigned delay_slow; /* ...the rest after this */
	bool twice;	     /* two servicings back to back */
};

static void inflight(const struct io_plan *pl)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct nvmk_ns *ns[2];
	struct nvmk_qpair *qp[4] = {0};
	uint16_t qid[4];
	struct nvmk_dma_buf wbuf, rbuf, pre;
	unsigned ids[64], n = 0, nrd = 0, rd_seed[64], rd_off[64];
	const size_t big = 256 * 1024; /* above MDTS (128 KiB): split in two */
	struct counts c0, c1;
	unsigned cmds_w = 0, cmds_r = 0;

	tcfg_default(&cfg, "emu-save");
	cfg.nr_ns = 2;
	cfg.ns[1] = cfg.ns[0];
	cfg.ns[1].nsid = 2;
	cfg.ns[1].lba_shift = 12;
	cfg.ns[1].nblocks = 8192;
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns[0]), 0);
	assert_int_equal(nvmk_ns_open(s.ctrl, 2, NVMK_NS_SHARED, &ns[1]), 0);
	for (unsigned i = 0; i < pl->nqp; i++) {
		struct nvmk_qpair_opts qo = {.mode = i % 2 ? NVMK_CPL_POLL : NVMK_CPL_INTERRUPT,
					     .flags = i == 2 ? NVMK_QPAIR_SHARED : 0};

		assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp[i]), 0);
		qid[i] = nvmk_qpair_id(qp[i]);
	}
	dbuf_alloc(&s, 64 * big, &wbuf);
	dbuf_alloc(&s, 64 * big, &rbuf);
	dbuf_alloc(&s, 64 * 4096, &pre);
	/* data the reads in flight will return: written before, synchronously */
	for (unsigned i = 0; i < pl->nqp * pl->per_qp; i++) {
		pattern((char *)pre.mem.vaddr + i * 4096, 4096, 1000 + i);
		assert_int_equal(nvmk_ns_write(ns[i % 2], NULL, (char *)pre.mem.vaddr + i * 4096,
					       i % 2 ? 4000 + i : 60000 + 8 * i, i % 2 ? 1 : 8),
				 0);
	}
	c0 = counts(&s);
	if (pl->delay_fast)
		nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
								   .qid = NVMK_FAULT_ANY_QID,
								   .opcode = NVMK_FAULT_ANY_OPC,
								   .count = pl->nfast,
								   .delay_us = pl->delay_fast});
	if (pl->delay_slow)
		nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
								   .qid = NVMK_FAULT_ANY_QID,
								   .opcode = NVMK_FAULT_ANY_OPC,
								   .delay_us = pl->delay_slow});
	/* writes (some split) and reads on every qpair and both namespaces */
	for (unsigned q = 0; q < pl->nqp; q++)
		for (unsigned k = 0; k < pl->per_qp; k++) {
			unsigned i = q * pl->per_qp + k;
			unsigned id = req_new();
			bool split = (k % 3) == 0;
			size_t bytes = split ? big : 8192;
			struct nvmk_ns *tns = ns[i % 2];
			unsigned shift = i % 2 ? 12 : 9;
			uint64_t slba = (uint64_t)i * (big >> shift);

			pattern((char *)wbuf.mem.vaddr + i * big, bytes, i);
			assert_int_equal(nvmk_ns_submit_write(tns, qp[q], &wbuf, i * big, slba,
							      (uint32_t)(bytes >> shift), 0, req_cb,
							      (void *)(uintptr_t)id),
					 0);
			ids[n++] = id;
			cmds_w += split ? 2 : 1;
			id = req_new();
			rd_off[nrd] = i % 2 ? 4000 + i : 60000 + 8 * i;
			rd_seed[nrd] = 1000 + i;
			assert_int_equal(nvmk_ns_submit_read(tns, qp[q], &rbuf, i * 4096,
							     rd_off[nrd], i % 2 ? 1 : 8, 0, req_cb,
							     (void *)(uintptr_t)id),
					 0);
			nrd++;
			ids[n++] = id;
			cmds_r++;
		}
	for (unsigned q = 0; q < pl->nqp; q++)
		if (pl->delay_slow || pl->delay_fast)
			assert_true(nvmk_qpair_outstanding(qp[q]) > 0);

	/* servicing */
	atomic_store(&resolved, 0);
	assert_int_equal(service(&s, true, pl->blackout), 0);
	if (pl->twice)
		assert_int_equal(service(&s, true, pl->blackout / 2), 0);
	c1 = counts(&s);
	/* restore asked no IDENTIFY and created no queue */
	assert_int_equal(c1.identify, c0.identify);
	assert_int_equal(c1.create_sq, c0.create_sq);
	assert_int_equal(c1.create_cq, c0.create_cq);
	if (pl->delay_slow || pl->delay_fast)
		assert_true(atomic_load(&resolved) > 0);

	/* the same qpairs and namespaces come back */
	for (unsigned q = 0; q < pl->nqp; q++) {
		qp[q] = nvmk_ctrl_restored_qpair(s.ctrl, qid[q]);
		assert_non_null(qp[q]);
		assert_int_equal(nvmk_qpair_id(qp[q]), qid[q]);
		assert_null(nvmk_ctrl_restored_qpair(s.ctrl, qid[q])); /* handed back once */
	}
	ns[0] = nvmk_ctrl_restored_ns(s.ctrl, 1);
	ns[1] = nvmk_ctrl_restored_ns(s.ctrl, 2);
	assert_non_null(ns[0]);
	assert_non_null(ns[1]);
	assert_null(nvmk_ctrl_restored_ns(s.ctrl, 1));

	wait_all(qp, pl->nqp, ids, n);
	nvmk_emu_fault_clear(s.emu);
	/* nothing was re-issued: exactly the commands submitted reached the device */
	c1 = counts(&s);
	assert_int_equal(c1.writes - c0.writes, cmds_w);
	assert_int_equal(c1.reads - c0.reads, cmds_r);
	/* reads in flight returned the right data */
	for (unsigned r = 0; r < nrd; r++) {
		unsigned i = rd_seed[r] - 1000;
		char exp[4096];

		pattern(exp, 4096, 1000 + i);
		assert_memory_equal((char *)rbuf.mem.vaddr + i * 4096, exp, 4096);
	}
	/* writes in flight landed: read back through the restored handles */
	char *back = malloc(big), *exp = malloc(big);
	for (unsigned i = 0; i < pl->nqp * pl->per_qp; i++) {
		unsigned shift = i % 2 ? 12 : 9;
		size_t bytes = (i % pl->per_qp) % 3 == 0 ? big : 8192;

		assert_int_equal(nvmk_ns_read(ns[i % 2], NULL, back, (uint64_t)i * (big >> shift),
					      (uint32_t)(bytes >> shift)),
				 0);
		pattern(exp, bytes, i);
		assert_memory_equal(back, exp, bytes);
	}
	free(back);
	free(exp);
	/* and new I/O works on the restored qpairs */
	for (unsigned q = 0; q < pl->nqp; q++) {
		unsigned id = req_new();

		assert_int_equal(nvmk_ns_submit_read(ns[0], qp[q], &rbuf, 0, 0, 1, 0, req_cb,
						     (void *)(uintptr_t)id),
				 0);
		wait_all(&qp[q], 1, &id, 1);
	}
	assert_int_equal(counts(&s).create_sq, c0.create_sq); /* get_qpair's came back too */
	for (unsigned q = 0; q < pl->nqp; q++)
		nvmk_qpair_destroy(qp[q]);
	nvmk_ctrl_dma_free(s.ctrl, &wbuf);
	nvmk_ctrl_dma_free(s.ctrl, &rbuf);
	nvmk_ctrl_dma_free(s.ctrl, &pre);
	nvmk_ns_close(ns[0]);
	nvmk_ns_close(ns[1]);
	senv_close(&s);
}

static void test_idle(void **state)
{
	(void)state;
	inflight(&(struct io_plan){.nqp = 1, .per_qp = 1, .blackout = 0});
}

static void test_one_in_flight(void **state)
{
	(void)state;
	inflight(&(struct io_plan){.nqp = 1, .per_qp = 1, .blackout = 5, .delay_slow = 50000});
}

static void test_many_in_flight(void **state)
{
	(void)state;
	/* the first few complete during the blackout, the rest after restore */
	inflight(&(struct io_plan){.nqp = 3,
				   .per_qp = 6,
				   .blackout = 60,
				   .delay_fast = 10000,
				   .nfast = 8,
				   .delay_slow = 120000});
}

static void test_back_to_back(void **state)
{
	(void)state;
	inflight(&(struct io_plan){.nqp = 2,
				   .per_qp = 4,
				   .blackout = 40,
				   .delay_fast = 5000,
				   .nfast = 4,
				   .delay_slow = 100000,
				   .twice = true});
}

/* ---- a full SQ ---- */

static void test_full_sq(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_INTERRUPT, .depth = 8};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	unsigned ids[16], n = 0;
	uint16_t qid;
	struct counts c0;

	(void)state;
	tcfg_default(&cfg, "emu-full");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 16 * 4096, &d);
	c0 = counts(&s);
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							   .qid = qid,
							   .opcode = NVMK_FAULT_ANY_OPC,
							   .delay_us = 80000});
	for (;;) {
		unsigned id = req_new();

		pattern((char *)d.mem.vaddr + n * 4096, 4096, 77 + n);
		int rc = nvmk_ns_submit_write(ns, qp, &d, n * 4096, 100 + 8 * n, 8, 0, req_cb,
					      (void *)(uintptr_t)id);
		if (rc == -EAGAIN)
			break;
		assert_int_equal(rc, 0);
		ids[n++] = id;
	}
	assert_int_equal(n, 7); /* depth 8: 7 commands fill it */
	assert_int_equal(service(&s, true, 20), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(qp);
	assert_non_null(ns);
	/* still full until completions are processed */
	wait_all(&qp, 1, ids, n);
	assert_int_equal(counts(&s).writes - c0.writes, 7);
	nvmk_emu_fault_clear(s.emu);
	for (unsigned i = 0; i < n; i++) {
		char back[4096], exp[4096];

		assert_int_equal(nvmk_ns_read(ns, NULL, back, 100 + 8 * i, 8), 0);
		pattern(exp, 4096, 77 + i);
		assert_memory_equal(back, exp, 4096);
	}
	assert_int_equal(counts(&s).identify, c0.identify);
	nvmk_qpair_destroy(qp);
	nvmk_ctrl_dma_free(s.ctrl, &d);
	nvmk_ns_close(ns);
	senv_close(&s);
}

/* ---- a namespace resized during the blackout: the event is not lost ---- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nvmk_event ev_seen;
static int ev_n;

static void ev_cb(void *ctx, struct nvmk_ctrl *ctrl, const struct nvmk_event *ev)
{
	(void)ctx;
	(void)ctrl;
	pthread_mutex_lock(&ev_lock);
	if (ev->type == NVMK_EVENT_NS_RESIZED) {
		ev_seen = *ev;
		ev_n++;
	}
	pthread_mutex_unlock(&ev_lock);
}

static void test_resize_during_blackout(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_ns_info info;
	struct nvmk_event got = {0};
	int n = 0;

	(void)state;
	tcfg_default(&cfg, "emu-resize");
	senv_open(&s, &cfg, &o);
	s.ro.event_cb = ev_cb;
	ev_n = 0;
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	void *blob;
	size_t len;
	struct nvmk_dma_pool *np, *old = s.pool;

	assert_int_equal(nvmk_ctrl_save(s.ctrl, NULL, &blob, &len), 0);
	/* quiesced: submissions and queue creation are refused, nothing is sent */
	uint64_t w0 = nvmk_emu_cmd_count(s.emu, false, NVME_CMD_WRITE);
	struct nvmk_qpair *qx;
	char wb[512] = "late";
	assert_int_equal(nvmk_ns_write(ns, NULL, wb, 7, 1), -EAGAIN);
	assert_int_equal(nvmk_qpair_create(s.ctrl, NULL, &qx), -EAGAIN);
	assert_int_equal(nvmk_emu_cmd_count(s.emu, false, NVME_CMD_WRITE), w0);
	nvmk_ctrl_detach(s.ctrl);
	/* the AER completes while nobody listens */
	assert_int_equal(nvmk_emu_ns_resize(s.emu, 1, 1u << 17), 0);
	tsleep_ms(30);
	assert_int_equal(nvmk_dma_pool_open(dup(nvmk_dma_pool_fd(s.pool)), &np), 0);
	s.pool = s.b->pool = np;
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	free(blob);
	assert_int_equal(nvmk_dma_pool_finish_restore(np), 0);
	nvmk_dma_pool_destroy(old);
	for (int i = 0; i < 300 && !n; i++) {
		pthread_mutex_lock(&ev_lock);
		n = ev_n;
		got = ev_seen;
		pthread_mutex_unlock(&ev_lock);
		tsleep_ms(10);
	}
	assert_int_equal(n, 1);
	assert_int_equal(got.nsid, 1);
	assert_int_equal(got.old_nblocks, 1u << 16);
	assert_int_equal(got.new_nblocks, 1u << 17);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(ns);
	nvmk_ns_info(ns, &info);
	assert_int_equal(info.nblocks, 1u << 17);
	char buf[512] = "end";
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, (1u << 17) - 1, 1), 0);
	nvmk_ns_close(ns);
	senv_close(&s);
}

/* ---- a thread that had no queue gets one after restore ---- */

struct thr {
	struct nvmk_ns *ns;
	int rc;
	uint16_t qid;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	char buf[512], back[512];

	pattern(buf, sizeof(buf), 9);
	t->rc = nvmk_ns_write(t->ns, NULL, buf, 5, 1);
	if (!t->rc)
		t->rc = nvmk_ns_read(t->ns, NULL, back, 5, 1);
	if (!t->rc && memcmp(buf, back, sizeof(buf)))
		t->rc = -EILSEQ;
	t->qid = nvmk_qpair_id(nvmk_ctrl_get_qpair(nvmk_ns_ctrl(t->ns)));
	return NULL;
}

static void test_new_thread_after_restore(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct thr t = {0};
	pthread_t th;
	struct nvmk_ns *ns;
	char buf[512] = "main";
	uint16_t main_qid;
	struct counts c0;

	(void)state;
	tcfg_default(&cfg, "emu-thr");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, NVMK_NS_SHARED, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0); /* this thread's qpair */
	main_qid = nvmk_qpair_id(nvmk_ctrl_get_qpair(s.ctrl));
	assert_int_equal(service(&s, true, 0), 0);
	c0 = counts(&s);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(ns);
	/* this thread gets its restored queue back, without a creation */
	assert_int_equal(nvmk_qpair_id(nvmk_ctrl_get_qpair(s.ctrl)), main_qid);
	assert_int_equal(counts(&s).create_sq, c0.create_sq);
	t.ns = ns;
	assert_int_equal(pthread_create(&th, NULL, thr_main, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.rc, 0);
	assert_int_not_equal(t.qid, main_qid);
	assert_int_equal(counts(&s).create_sq, c0.create_sq + 1);
	nvmk_ns_close(ns);
	senv_close(&s);
}

/* ---- keep-alive off: drain, shut down, bring up again ---- */

static void test_keep_alive_off(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	unsigned ids[4];
	uint16_t qid;
	struct counts c0;
	void *blob;
	size_t len;

	(void)state;
	tcfg_default(&cfg, "emu-off");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 4 * 4096, &d);
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							   .qid = qid,
							   .opcode = NVMK_FAULT_ANY_OPC,
							   .count = 3,
							   .delay_us = 30000});
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_HANG,
							   .qid = qid,
							   .opcode = NVMK_FAULT_ANY_OPC,
							   .count = 1});
	for (unsigned i = 0; i < 4; i++) {
		ids[i] = req_new();
		pattern((char *)d.mem.vaddr + i * 4096, 4096, 300 + i);
		assert_int_equal(nvmk_ns_submit_write(ns, qp, &d, i * 4096, 200 + 8 * i, 8, 0,
						      req_cb, (void *)(uintptr_t)ids[i]),
				 0);
	}
	c0 = counts(&s);
	struct nvmk_save_opts so = {.keep_alive = false, .drain_timeout_ms = 300};
	assert_int_equal(nvmk_ctrl_save(s.ctrl, &so, &blob, &len), 0);
	/* drained: three completed normally, the hung one failed -ETIMEDOUT */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(req_done(ids[i]), 1);
		assert_int_equal(reqs[ids[i]].err, 0);
	}
	assert_int_equal(req_done(ids[3]), 1);
	assert_int_equal(reqs[ids[3]].err, -ETIMEDOUT);
	/* shut down: CC.EN = 0 */
	assert_int_equal(nvmk_emu_reg_read32(s.emu, NVME_REG_CC) & NVME_CC_EN, 0);
	nvmk_ctrl_detach(s.ctrl);
	nvmk_emu_fault_clear(s.emu);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	free(blob);
	/* a bring-up: identify and queue creation are expected here */
	assert_true(counts(&s).identify > c0.identify);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(qp);
	assert_non_null(ns);
	for (unsigned i = 0; i < 3; i++) {
		char back[4096], exp[4096];

		assert_int_equal(nvmk_ns_read(ns, qp, back, 200 + 8 * i, 8), 0);
		pattern(exp, 4096, 300 + i);
		assert_memory_equal(back, exp, 4096);
	}
	nvmk_qpair_destroy(qp);
	nvmk_ctrl_dma_free(s.ctrl, &d);
	nvmk_ns_close(ns);
	senv_close(&s);
}

/* ---- bad saved states are refused and change nothing ---- */

static void m_qid_range(Nvmk__CtrlState *st)
{
	first_qp(st)->queue->qid = st->granted + 1;
}
static void m_depth(Nvmk__CtrlState *st)
{
	first_qp(st)->queue->depth = NVME_CAP_MQES(st->cap) + 2;
}
static void m_tail(Nvmk__CtrlState *st)
{
	first_qp(st)->queue->sq_tail = first_qp(st)->queue->depth;
}
static void m_phase(Nvmk__CtrlState *st)
{
	st->admin->cq_phase = 2;
}
static void m_dup_cid(Nvmk__CtrlState *st)
{
	Nvmk__Queue *q = first_qp(st)->queue;

	assert_true(q->n_pending >= 2);
	q->pending[1]->index = q->pending[0]->index;
	q->pending[1]->cid = q->pending[0]->cid;
}
static void m_cid_range(Nvmk__CtrlState *st)
{
	Nvmk__Queue *q = first_qp(st)->queue;

	assert_true(q->n_pending >= 1);
	q->pending[0]->index = q->ntrk;
}
static void m_no_tag(Nvmk__CtrlState *st)
{
	SET_PTR(first_qp(st)->queue->cq->tag, NULL);
}
static void m_dup_tag(Nvmk__CtrlState *st)
{
	SET_PTR(first_qp(st)->queue->cq->tag, first_qp(st)->queue->sq->tag);
}
static void m_dup_qid(Nvmk__CtrlState *st)
{
	assert_true(st->n_qpairs >= 2);
	st->qpairs[1]->queue->qid = st->qpairs[0]->queue->qid;
}
static void m_identify(Nvmk__CtrlState *st)
{
	st->identify_ctrl.len = 100;
}
static void m_no_admin(Nvmk__CtrlState *st)
{
	SET_PTR(st->admin, NULL);
}
static void m_parent(Nvmk__CtrlState *st)
{
	Nvmk__Queue *q = first_qp(st)->queue;

	q->pending[0]->has_parent = true;
	q->pending[0]->parent = q->ntrk; /* not a split request */
}
static void m_trk_cid(Nvmk__CtrlState *st)
{
	Nvmk__Queue *q = first_qp(st)->queue;

	assert_true(q->n_trk_cid > 3);
	q->trk_cid[3] ^= 1; /* index bits no longer match */
}
static void m_same_iova(Nvmk__CtrlState *st)
{
	first_qp(st)->queue->cq->iova = first_qp(st)->queue->sq->iova;
}
/* A state as a binary before field trk_cid was added wrote it. */
static void m_older(Nvmk__CtrlState *st)
{
	st->admin->n_trk_cid = 0;
	for (size_t i = 0; i < st->n_qpairs; i++)
		st->qpairs[i]->queue->n_trk_cid = 0;
}
static void m_name(Nvmk__CtrlState *st)
{
	SET_PTR(st->name, (char *)"other-device");
}

static void test_bad_states(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp[2];
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool *np, *old;
	struct nvmk_ctrl *c = NULL;
	unsigned ids[4];
	void *blob, *bad;
	size_t len, blen;
	char err[256];
	uint32_t cc0;
	struct counts c0;
	static const struct {
		mutate_fn f;
		const char *msg;
	} muts[] = {
	    {m_qid_range, "outside [1,"},
	    {m_depth, "depth"},
	    {m_tail, "beyond depth"},
	    {m_phase, "CQ phase 2"},
	    {m_dup_cid, "saved twice"},
	    {m_cid_range, "outside the"},
	    {m_no_tag, "lacks its tag"},
	    {m_dup_tag, "used twice"},
	    {m_dup_qid, "qid"},
	    {m_identify, "Identify Controller"},
	    {m_no_admin, "queue 0 missing"},
	    {m_parent, "parent"},
	    {m_trk_cid, "tracker 3 has CID"},
	    {m_same_iova, "both at IOVA"},
	};

	(void)state;
	tcfg_default(&cfg, "emu-bad");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp[0]), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp[1]), 0);
	dbuf_alloc(&s, 4 * 4096, &d);
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							   .qid = nvmk_qpair_id(qp[0]),
							   .opcode = NVMK_FAULT_ANY_OPC,
							   .delay_us = 50000});
	uint64_t r0 = nvmk_emu_cmd_count(s.emu, false, NVME_CMD_READ);
	for (unsigned i = 0; i < 4; i++) {
		ids[i] = req_new();
		assert_int_equal(nvmk_ns_submit_read(ns, qp[0], &d, i * 4096, i, 8, 0, req_cb,
						     (void *)(uintptr_t)ids[i]),
				 0);
	}
	/* the device has fetched them (and holds them): later counts are stable */
	for (int i = 0; i < 1000 && nvmk_emu_cmd_count(s.emu, false, NVME_CMD_READ) < r0 + 4; i++)
		tsleep_ms(1);
	assert_int_equal(nvmk_emu_cmd_count(s.emu, false, NVME_CMD_READ), r0 + 4);
	assert_int_equal(nvmk_ctrl_save(s.ctrl, NULL, &blob, &len), 0);
	nvmk_ctrl_detach(s.ctrl);
	s.ctrl = NULL;
	assert_int_equal(nvmk_dma_pool_open(dup(nvmk_dma_pool_fd(s.pool)), &np), 0);
	old = s.pool;
	s.pool = s.b->pool = np;
	assert_int_equal(nvmk_ctrl_state_validate(blob, len, err, sizeof(err)), 0);
	cc0 = nvmk_emu_reg_read32(s.emu, NVME_REG_CC);
	c0 = counts(&s);

	/* truncated */
	for (size_t cut = 0; cut < len; cut += len / 7 + 1) {
		assert_int_not_equal(nvmk_ctrl_restore(s.b, blob, cut, &s.ro, &c), 0);
		assert_int_equal(nvmk_ctrl_state_validate(blob, cut, err, sizeof(err)), -EBADMSG);
	}
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len - 1, &s.ro, &c), -EBADMSG);
	/* a flipped bit anywhere in the payload */
	for (size_t off = len / 4; off < len; off += len / 5) {
		((uint8_t *)blob)[off] ^= 0x10;
		assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &c), -EBADMSG);
		((uint8_t *)blob)[off] ^= 0x10;
	}
	assert_int_equal(nvmk_ctrl_state_validate(blob, len, err, sizeof(err)), 0);
	((uint8_t *)blob)[len - 1] ^= 1;
	assert_int_equal(nvmk_ctrl_state_validate(blob, len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "checksum"));
	((uint8_t *)blob)[len - 1] ^= 1;
	/* a newer format */
	bad = remake(blob, len, NULL, NVMK_CTRL_STATE_VERSION + 2, &blen);
	assert_int_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &c), -EPROTONOSUPPORT);
	assert_int_equal(nvmk_ctrl_state_validate(bad, blen, err, sizeof(err)), -EPROTONOSUPPORT);
	char want[128];
	snprintf(want, sizeof(want),
		 "saved state format %u is newer than this binary's %u: "
		 "downgrade refused",
		 NVMK_CTRL_STATE_VERSION + 2, NVMK_CTRL_STATE_VERSION);
	assert_string_equal(err, want);
	assert_true(tlog_has(want));
	free(bad);
	/* re-encoded unchanged: accepted by the validator (the mutations below
	 * are what is refused) */
	bad = remake(blob, len, NULL, NVMK_CTRL_STATE_VERSION, &blen);
	assert_int_equal(nvmk_ctrl_state_validate(bad, blen, err, sizeof(err)), 0);
	free(bad);
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		bad = remake(blob, len, muts[i].f, NVMK_CTRL_STATE_VERSION, &blen);
		assert_int_equal(nvmk_ctrl_state_validate(bad, blen, err, sizeof(err)), -EBADMSG);
		if (!strstr(err, muts[i].msg))
			fail_msg("mutation %zu: \"%s\" lacks \"%s\"", i, err, muts[i].msg);
		assert_int_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &c), -EBADMSG);
		free(bad);
	}
	/* another device's state */
	bad = remake(blob, len, m_name, NVMK_CTRL_STATE_VERSION, &blen);
	assert_int_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &c), -ENODEV);
	free(bad);
	assert_null(c);
	/* the device saw nothing, its configuration is unchanged, nothing reclaimed */
	struct counts c1 = counts(&s);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	assert_int_equal(nvmk_emu_reg_read32(s.emu, NVME_REG_CC), cc0);
	struct nvmk_dma_pool_stats ps;
	nvmk_dma_pool_get_stats(np, &ps);
	assert_true(ps.unclaimed_slots > 0);

	/* after all that, the state restores and every request completes; in the
	 * form an older binary wrote it (without the later field trk_cid) */
	bad = remake(blob, len, m_older, NVMK_CTRL_STATE_VERSION, &blen);
	assert_int_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &s.ctrl), 0);
	free(bad);
	assert_int_equal(nvmk_dma_pool_finish_restore(np), 0);
	nvmk_dma_pool_destroy(old);
	qp[0] = nvmk_ctrl_restored_qpair(s.ctrl, 1);
	qp[1] = nvmk_ctrl_restored_qpair(s.ctrl, 2);
	wait_all(qp, 2, ids, 4);
	nvmk_emu_fault_clear(s.emu);

	/* a controller that was reset meanwhile is refused: its queues are gone */
	void *blob2;
	size_t len2;
	assert_int_equal(nvmk_ctrl_save(s.ctrl, NULL, &blob2, &len2), 0);
	nvmk_ctrl_detach(s.ctrl);
	s.ctrl = NULL;
	nvmk_emu_reg_write32(s.emu, NVME_REG_CC, 0);
	for (int i = 0; i < 100 && (nvmk_emu_reg_read32(s.emu, NVME_REG_CSTS) & NVME_CSTS_RDY); i++)
		tsleep_ms(2);
	c0 = counts(&s);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob2, len2, &s.ro, &c), -EIO);
	assert_true(tlog_has("controller not running"));
	c1 = counts(&s);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	assert_int_equal(nvmk_emu_reg_read32(s.emu, NVME_REG_CC), 0);
	free(blob2);
	free(blob);
	/* the device is disabled now: its forgotten queue blocks go with the pool */
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
}

/* ---- the pool reports a block nobody reclaimed ---- */

static void test_pool_leak_detected(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct nvmk_dma_buf extra;
	struct nvmk_dma_slot_info info[4];

	(void)state;
	tcfg_default(&cfg, "emu-leak");
	senv_open(&s, &cfg, &o);
	/* a pool block of the device that the controller state does not know */
	assert_int_equal(nvmk_ctrl_dma_alloc(s.ctrl, 4096, &extra), 0);
	assert_int_equal(service(&s, true, 0), -EUCLEAN);
	assert_int_equal(nvmk_dma_pool_leaked(s.pool, info, 4), 1);
	assert_string_equal(info[0].owner, "emu-leak");
	assert_int_equal(strncmp(info[0].tag, "user", 4), 0);
	assert_true(tlog_has("was not reclaimed"));
	/* the controller itself restored fine */
	char buf[512] = "x";
	struct nvmk_ns *ns;
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0);
	nvmk_ns_close(ns);
	/* the block's old mapping is gone with the old pool handle: only drop the record */
	nvmk_backing_dma_forget(s.b, &extra);
	senv_close(&s);
}

/* ---- keep-alive needs a pool ---- */

static void test_no_pool_refused(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct tenv t;
	void *blob;
	size_t len;
	char buf[512] = "y";
	struct nvmk_ns *ns;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-nopool");
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	assert_int_equal(nvmk_ctrl_save(t.ctrl, NULL, &blob, &len), -EOPNOTSUPP);
	/* the controller is still usable */
	assert_int_equal(nvmk_ns_open(t.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0);
	nvmk_ns_close(ns);
	tenv_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_one_in_flight),
	    cmocka_unit_test(test_many_in_flight),
	    cmocka_unit_test(test_back_to_back),
	    cmocka_unit_test(test_full_sq),
	    cmocka_unit_test(test_resize_during_blackout),
	    cmocka_unit_test(test_new_thread_after_restore),
	    cmocka_unit_test(test_keep_alive_off),
	    cmocka_unit_test(test_bad_states),
	    cmocka_unit_test(test_pool_leak_detected),
	    cmocka_unit_test(test_no_pool_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
