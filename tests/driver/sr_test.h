/* SPDX-License-Identifier: MIT */
/* Helpers shared by the save/restore tests: requests whose cb_arg is an id
 * (the saved token) and a resolver that maps it back; an emulator behind the
 * local backing with a private pool; a servicing in one process (the pool
 * handed over on a dup of its fd, as after exec); saved states re-encoded
 * with one change. Every function is static and may go unused in a file. */
#ifndef NVMK_SR_TEST_H
#define NVMK_SR_TEST_H

#include <errno.h>
#include <stdatomic.h>

#include "ctrl_state.pb-c.h"
#include "drv_test.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- requests: cb_arg is an id, the saved token; the resolver maps it back ---- */

#define MAXREQ 512

struct treq {
	int done;
	int err;
};

static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;
static struct treq reqs[MAXREQ];
static unsigned next_req = 1;

static void req_reset(void)
{
	pthread_mutex_lock(&req_lock);
	memset(reqs, 0, sizeof(reqs));
	next_req = 1;
	pthread_mutex_unlock(&req_lock);
}

static void req_cb(void *arg, const struct nvmk_cpl *cpl)
{
	uintptr_t id = (uintptr_t)arg;

	pthread_mutex_lock(&req_lock);
	if (id < MAXREQ) {
		reqs[id].done++;
		reqs[id].err = cpl->err;
	}
	pthread_mutex_unlock(&req_lock);
}

static unsigned req_new(void)
{
	unsigned id;

	pthread_mutex_lock(&req_lock);
	id = next_req++;
	pthread_mutex_unlock(&req_lock);
	assert_true(id < MAXREQ);
	return id;
}

static int req_done(unsigned id)
{
	pthread_mutex_lock(&req_lock);
	int d = reqs[id].done;
	pthread_mutex_unlock(&req_lock);
	return d;
}

static atomic_uint resolved;

static int resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	if (token == 0 || token >= MAXREQ)
		return -1;
	*cb = req_cb;
	*cb_arg = (void *)(uintptr_t)token;
	atomic_fetch_add(&resolved, 1);
	return 0;
}

/* ---- environment: emulator + local backing + private pool ---- */

struct senv {
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_ctrl *ctrl;
	struct nvmk_dma_pool *pool;
	struct nvmk_restore_opts ro;
};

static struct nvmk_ctrl_opts sopts(void)
{
	struct nvmk_ctrl_opts o;

	topts_default(&o);
	o.io_timeout_ms = 10000; /* delays below never time out */
	o.admin_timeout_ms = 5000;
	return o;
}

static void senv_open(struct senv *s, struct nvmk_emu_config *cfg, const struct nvmk_ctrl_opts *o)
{
	memset(s, 0, sizeof(*s));
	tlog_reset();
	req_reset();
	assert_int_equal(tenv_backing_create(cfg, &s->b, &s->emu), 0);
	assert_int_equal(nvmk_dma_pool_create(4096, 0, &s->pool), 0);
	s->b->pool = s->pool;
	assert_int_equal(nvmk_ctrl_open(s->b, o, &s->ctrl), 0);
	s->ro.resolve = resolve;
	s->ro.resolve_ctx = s;
}

static void senv_close(struct senv *s)
{
	nvmk_ctrl_close(s->ctrl);
	tenv_backing_destroy(s->b);
	nvmk_dma_pool_destroy(s->pool);
}

/* Data buffers of the requests: ephemeral memory (the caller's, it stays
 * mapped across an in-process servicing). */
static void dbuf_alloc(struct senv *s, size_t size, struct nvmk_dma_buf *d)
{
	struct nvmk_dma_pool *p = s->b->pool;

	s->b->pool = NULL;
	assert_int_equal(nvmk_ctrl_dma_alloc(s->ctrl, size, d), 0);
	s->b->pool = p;
}

static void pattern(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 151u + i * 13u + (i >> 9));
}

struct counts {
	uint64_t identify, create_sq, create_cq, reads, writes;
};

static struct counts counts(struct senv *s)
{
	return (struct counts){
	    nvmk_emu_cmd_count(s->emu, true, NVME_ADM_IDENTIFY),
	    nvmk_emu_cmd_count(s->emu, true, NVME_ADM_CREATE_SQ),
	    nvmk_emu_cmd_count(s->emu, true, NVME_ADM_CREATE_CQ),
	    nvmk_emu_cmd_count(s->emu, false, NVME_CMD_READ),
	    nvmk_emu_cmd_count(s->emu, false, NVME_CMD_WRITE),
	};
}

/* Save, detach, hand the pool over (as exec would), wait @blackout_ms while
 * the emulator keeps working, restore. */
static int service(struct senv *s, bool keep_alive, unsigned blackout_ms)
{
	struct nvmk_save_opts so = {.keep_alive = keep_alive, .drain_timeout_ms = 3000};
	struct nvmk_dma_pool *old = NULL, *np;
	void *blob;
	size_t len;
	int rc;

	rc = nvmk_ctrl_save(s->ctrl, &so, &blob, &len);
	if (rc)
		return rc;
	nvmk_ctrl_detach(s->ctrl);
	s->ctrl = NULL;
	if (keep_alive) {
		assert_int_equal(nvmk_dma_pool_open(dup(nvmk_dma_pool_fd(s->pool)), &np), 0);
		old = s->pool;
		s->pool = np;
		s->b->pool = np;
	}
	tsleep_ms(blackout_ms);
	rc = nvmk_ctrl_restore(s->b, blob, len, &s->ro, &s->ctrl);
	free(blob);
	if (rc)
		return rc; /* the old pool mapping stays: the device may use it */
	if (keep_alive) {
		rc = nvmk_dma_pool_finish_restore(s->pool);
		nvmk_dma_pool_destroy(old);
	}
	return rc;
}

static void wait_all(struct nvmk_qpair **qps, unsigned nqp, const unsigned *ids, unsigned n)
{
	for (int iter = 0; iter < 5000; iter++) {
		bool all = true;

		for (unsigned i = 0; i < nqp; i++)
			if (qps[i])
				assert_true(nvmk_qpair_process_completions(qps[i], 0) >= 0);
		for (unsigned i = 0; i < n; i++)
			all &= req_done(ids[i]) > 0;
		if (all)
			break;
		tsleep_ms(1);
	}
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(req_done(ids[i]), 1);
		assert_int_equal(reqs[ids[i]].err, 0);
	}
}
typedef void (*mutate_fn)(Nvmk__CtrlState *st);

/* Pointer fields a mutation replaced, put back before the message is freed. */
static void **undo_slot[8];
static void *undo_old[8];
static int nundo;

#define SET_PTR(field, val)                                                                        \
	do {                                                                                       \
		undo_slot[nundo] = (void **)&(field);                                              \
		undo_old[nundo++] = (void *)(field);                                               \
		(field) = (val);                                                                   \
	} while (0)

/* Re-encode a state with one change, in a valid envelope (so that the
 * validator, not the checksum, has to catch it). */
static void *remake(const void *blob, size_t len, mutate_fn f, uint32_t version, size_t *out_len)
{
	Nvmk__CtrlStateEnvelope *env = nvmk__ctrl_state_envelope__unpack(NULL, len, blob);
	Nvmk__CtrlStateEnvelope ne = NVMK__CTRL_STATE_ENVELOPE__INIT;
	Nvmk__CtrlState *st;
	uint8_t *payload, *out;
	size_t plen;
	uint32_t crc;

	assert_non_null(env);
	st = nvmk__ctrl_state__unpack(NULL, env->payload.len, env->payload.data);
	assert_non_null(st);
	if (f)
		f(st);
	plen = nvmk__ctrl_state__get_packed_size(st);
	payload = malloc(plen + 1);
	nvmk__ctrl_state__pack(st, payload);
	while (nundo > 0) {
		nundo--;
		*undo_slot[nundo] = undo_old[nundo];
	}
	/* CRC32C, bitwise */
	crc = 0xffffffffu;
	for (size_t i = 0; i < plen; i++) {
		crc ^= payload[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	ne.has_version = ne.has_crc32c = ne.has_payload = true;
	ne.version = version;
	ne.crc32c = crc ^ 0xffffffffu;
	ne.payload.data = payload;
	ne.payload.len = plen;
	*out_len = nvmk__ctrl_state_envelope__get_packed_size(&ne);
	out = malloc(*out_len);
	nvmk__ctrl_state_envelope__pack(&ne, out);
	free(payload);
	nvmk__ctrl_state__free_unpacked(st, NULL);
	nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
	return out;
}

/* the saved qpair with the most commands pending */
static Nvmk__Qpair *first_qp(Nvmk__CtrlState *st)
{
	Nvmk__Qpair *best = NULL;

	assert_true(st->n_qpairs > 0);
	for (size_t i = 0; i < st->n_qpairs; i++)
		if (!best || st->qpairs[i]->queue->n_pending > best->queue->n_pending)
			best = st->qpairs[i];
	return best;
}

#pragma GCC diagnostic pop

#endif /* NVMK_SR_TEST_H */
