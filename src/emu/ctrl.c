/* SPDX-License-Identifier: MIT */
/*
 * Emulated controller lifetime: configuration defaults and validation,
 * the NVM subsystem shared between controllers, create/destroy, and the
 * worker thread that runs the controller state machine and the queues.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emu/emu_internal.h"

void nvmk_emu_config_default(struct nvmk_emu_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->name = "emu";
	cfg->serial = "NVMKEMU0001";
	cfg->model = "nvmekeep emulated controller";
	cfg->mqes = 1023;
	cfg->mdts = 5;
	cfg->max_io_queues = 64;
	cfg->msix_vectors = 65;
	cfg->dstrd = 0;
	cfg->mpsmin = 0;
	cfg->mpsmax = 4;
	cfg->cap_to = 20;
	cfg->aerl = 3;
	cfg->acl = 3;
	cfg->max_namespaces = NVMK_EMU_MAX_NS;
	cfg->nr_ns = 1;
	cfg->ns[0].nsid = 1;
	cfg->ns[0].nblocks = (1ull << 30) >> 9;
	cfg->ns[0].lba_shift = 9;
	cfg->ns[0].backing = NVMK_EMU_BACK_RAM;
}

const char *nvmk_emu_name(const struct nvmk_emu *emu)
{
	return emu->name;
}

/* ---- configuration validation ---- */

#define CFG_BAD(name, ...)                                                                         \
	do {                                                                                       \
		nvmk_err(name, NVMK_LOG_NOQ, __VA_ARGS__);                                         \
		return -EINVAL;                                                                    \
	} while (0)

static int emu_cfg_validate(const struct nvmk_emu_config *cfg, const char *name)
{
	uint32_t maxns = cfg->max_namespaces ? cfg->max_namespaces : NVMK_EMU_MAX_NS;

	if (!cfg->dma)
		CFG_BAD(name, "config: dma callback is NULL (required)");
	/* CAP.MQES: any 16-bit value. 0 is invalid per Base 2.0 3.1.3.1 but may be
	 * configured on purpose (emu.h) to emulate a broken device: every I/O
	 * queue creation then fails with Invalid Queue Size. */
	if (cfg->max_io_queues < 1 || cfg->max_io_queues > 65534)
		CFG_BAD(name, "config: max_io_queues %u out of range (accepted 1..65534)",
			cfg->max_io_queues);
	/* MSI-X table size is 1..2048 (PCI MSI-X capability). */
	if (cfg->msix_vectors < 1 || cfg->msix_vectors > 2048)
		CFG_BAD(name, "config: msix_vectors %u out of range (accepted 1..2048)",
			cfg->msix_vectors);
	if (cfg->dstrd > 15)
		CFG_BAD(name, "config: dstrd %u out of range (accepted 0..15)", cfg->dstrd);
	if (cfg->mpsmin > 15 || cfg->mpsmax > 15 || cfg->mpsmin > cfg->mpsmax)
		CFG_BAD(name, "config: mpsmin %u / mpsmax %u invalid (accepted 0..15, min <= max)",
			cfg->mpsmin, cfg->mpsmax);
	/* MDTS is a power of two of MPSMIN pages; keep the byte count representable. */
	if (cfg->mdts > 20)
		CFG_BAD(name, "config: mdts %u out of range (accepted 0..20)", cfg->mdts);
	if (cfg->serial && strlen(cfg->serial) > 20)
		CFG_BAD(name, "config: serial longer than 20 characters");
	if (cfg->model && strlen(cfg->model) > 40)
		CFG_BAD(name, "config: model longer than 40 characters");
	if (maxns > NVMK_EMU_MAX_NS)
		CFG_BAD(name, "config: max_namespaces %u out of range (accepted 0..%u)",
			cfg->max_namespaces, NVMK_EMU_MAX_NS);
	if (cfg->nr_ns > maxns)
		CFG_BAD(name, "config: nr_ns %u exceeds max_namespaces %u", cfg->nr_ns, maxns);
	if (cfg->subsystem_of && cfg->nr_ns)
		CFG_BAD(name, "config: nr_ns must be 0 with subsystem_of (namespaces are shared)");
	for (unsigned i = 0; i < cfg->nr_ns; i++) {
		const struct nvmk_emu_ns_config *n = &cfg->ns[i];

		if (n->nsid < 1 || n->nsid > maxns)
			CFG_BAD(name, "config: ns[%u].nsid %u out of range (accepted 1..%u)", i,
				n->nsid, maxns);
		if (n->lba_shift != 9 && n->lba_shift != 12)
			CFG_BAD(name, "config: ns[%u].lba_shift %u invalid (accepted 9, 12)", i,
				n->lba_shift);
		if (n->nblocks < 1)
			CFG_BAD(name, "config: ns[%u].nblocks 0 (accepted >= 1)", i);
		if (n->backing > NVMK_EMU_BACK_NULL)
			CFG_BAD(name,
				"config: ns[%u].backing %d invalid (accepted RAM, FILE, NULL)", i,
				n->backing);
		if (n->backing == NVMK_EMU_BACK_FILE && !n->path)
			CFG_BAD(name, "config: ns[%u] FILE backing needs a path", i);
		for (unsigned j = 0; j < i; j++)
			if (cfg->ns[j].nsid == n->nsid)
				CFG_BAD(name, "config: duplicate nsid %u (ns[%u] and ns[%u])",
					n->nsid, j, i);
	}
	return 0;
}

/* ---- subsystem ---- */

static void subsys_put(struct emu_subsys *s)
{
	/* acq_rel: the last dropper must see every other user's writes before freeing. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 1; i <= NVMK_EMU_MAX_NS; i++) {
		emu_ns_destroy(s->ns[i]);
		emu_resv_destroy(s->resv[i]);
	}
	pthread_rwlock_destroy(&s->ns_lock);
	pthread_mutex_destroy(&s->ctrl_lock);
	free(s);
}

static int subsys_create(const struct nvmk_emu_config *cfg, const char *name,
			 struct emu_subsys **out)
{
	struct emu_subsys *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t ra;
	int rc;

	if (!s)
		return -ENOMEM;

	atomic_init(&s->refs, 1);
	/* Writer preference: namespace changes must not starve behind a stream of
	 * commands from several controllers' workers. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->ns_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->ctrl_lock, NULL);
	s->max_ns = cfg->max_namespaces ? cfg->max_namespaces : NVMK_EMU_MAX_NS;
	snprintf(s->serial, sizeof(s->serial), "%s", cfg->serial ? cfg->serial : "");
	snprintf(s->model, sizeof(s->model), "%s", cfg->model ? cfg->model : "");
	snprintf(s->nqn, sizeof(s->nqn), "nqn.2026-11.io.nvmekeep:emu:%s", s->serial);
	s->next_cntlid = 1;
	for (unsigned i = 0; i < cfg->nr_ns; i++) {
		uint32_t nsid = cfg->ns[i].nsid;

		rc = emu_ns_create(&cfg->ns[i], name, &s->ns[nsid]);
		if (!rc)
			rc = emu_resv_create(&s->resv[nsid]);
		if (rc) {
			nvmk_err(name, NVMK_LOG_NOQ, "cannot create namespace %u: %d", nsid, rc);
			subsys_put(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

/* ---- worker ---- */

void emu_fatal(struct nvmk_emu *emu, int qid, const char *why)
{
	if (!atomic_exchange(&emu->fatal, true))
		nvmk_err(emu->name, qid, "controller fatal status (CSTS.CFS): %s", why);
	/* Release: CFS becomes visible after everything the worker wrote before it. */
	atomic_fetch_or_explicit(&emu->csts, NVME_CSTS_CFS, memory_order_release);
}

void nvmk_emu_set_fatal(struct nvmk_emu *emu)
{
	emu_fatal(emu, NVMK_LOG_NOQ, "requested by nvmk_emu_set_fatal");
	emu_kick(emu);
}

void nvmk_emu_surprise_remove(struct nvmk_emu *emu)
{
	if (!atomic_exchange(&emu->removed, true))
		nvmk_warn(emu->name, NVMK_LOG_NOQ, "surprise removal");
	emu_kick(emu);
}

uint64_t nvmk_emu_cmd_count(struct nvmk_emu *emu, bool admin, uint8_t opcode)
{
	return atomic_load_explicit(&emu->cmd_count[admin ? 1 : 0][opcode], memory_order_relaxed);
}

uint64_t nvmk_emu_reset_count(struct nvmk_emu *emu)
{
	return atomic_load_explicit(&emu->resets, memory_order_relaxed);
}

/* Controller Level Reset (Base 2.0 3.7.2): delete every I/O queue, drop all
 * outstanding commands without completing them, return features to their
 * defaults. Namespaces and their data are untouched. */
static void emu_ctrl_reset(struct nvmk_emu *emu)
{
	emu_queues_reset(emu);
	emu_features_reset(emu);
	emu_aer_reset(emu);
	emu->enabled = false;
	emu->shn_pending = false;
	atomic_store(&emu->fatal, false);
	atomic_fetch_add_explicit(&emu->resets, 1, memory_order_relaxed);
}

/* CC.EN 0 -> 1 (Base 2.0 3.5.1): validate what the host configured; an
 * invalid setup is reported with CSTS.CFS, as controllers commonly do. */
static void emu_ctrl_enable(struct nvmk_emu *emu, uint64_t now)
{
	uint32_t cc = atomic_load(&emu->cc);
	uint32_t aqa = atomic_load(&emu->aqa);
	uint64_t asq = atomic_load(&emu->asq), acq = atomic_load(&emu->acq);
	uint32_t mps = NVME_CC_MPS(cc);
	uint32_t ps = 1u << (NVME_MPS_SHIFT_BASE + mps);
	const char *bad = NULL;

	emu->enabled = true;
	if (mps < emu->cfg.mpsmin || mps > emu->cfg.mpsmax)
		bad = "CC.MPS outside CAP.MPSMIN..MPSMAX";
	else if (NVME_CC_CSS(cc) != 0)
		bad = "CC.CSS selects a command set other than NVM";
	else if (NVME_CC_AMS(cc) != 0)
		bad = "CC.AMS selects an unsupported arbitration mechanism";
	else if (NVME_AQA_ASQS(aqa) + 1 < NVME_AQ_MIN_ENTRIES ||
		 NVME_AQA_ACQS(aqa) + 1 < NVME_AQ_MIN_ENTRIES)
		bad = "AQA admin queue smaller than 2 entries";
	else if ((asq & (ps - 1)) || (acq & (ps - 1)) || !asq || !acq)
		bad = "ASQ/ACQ not memory-page aligned";
	if (bad) {
		/* Under reg_lock: if the host has already cleared EN again, this
		 * enable is void and its CFS must not outlive the reset. */
		pthread_mutex_lock(&emu->reg_lock);
		if (!atomic_load(&emu->reset_req))
			emu_fatal(emu, 0, bad);
		pthread_mutex_unlock(&emu->reg_lock);
		return;
	}
	emu->page_size = ps;
	emu->page_shift = NVME_MPS_SHIFT_BASE + mps;
	emu->max_xfer = emu->cfg.mdts
			    ? (uint64_t)1 << (NVME_MPS_SHIFT_BASE + emu->cfg.mpsmin + emu->cfg.mdts)
			    : 0;
	/* The admin queues exist from enable on (Base 2.0 3.5.1 step 4). */
	emu->sqs[0] = (struct emu_sq){
	    .valid = true, .qid = 0, .cqid = 0, .size = NVME_AQA_ASQS(aqa) + 1, .base = asq};
	emu->cqs[0] = (struct emu_cq){.valid = true,
				      .qid = 0,
				      .size = NVME_AQA_ACQS(aqa) + 1,
				      .base = acq,
				      .phase = 1,
				      .ien = true,
				      .iv = 0,
				      .nr_sq = 1};
	atomic_store(emu_sq_db(emu, 0), 0);
	atomic_store(emu_cq_db(emu, 0), 0);
	emu_db_page_zero(emu, 0);
	emu_db_page_zero(emu, 1);
	if (emu->cfg.rdy_never) {
		nvmk_warn(emu->name, NVMK_LOG_NOQ, "configured never to become ready");
		return;
	}
	emu->ready_pending = true;
	emu->rdy_deadline = now + (uint64_t)emu->cfg.rdy_delay_ms * 1000000ull;
}

/* Follow CC changes and timed status transitions; returns the next deadline. */
static uint64_t emu_ctrl_step(struct nvmk_emu *emu, uint64_t now)
{
	uint64_t next = 0;

	if (atomic_exchange(&emu->reset_req, false)) {
		nvmk_debug(emu->name, NVMK_LOG_NOQ, "controller reset (CC.EN 1 -> 0)");
		emu_ctrl_reset(emu);
		/* RDY follows EN after the configured delay; CFS and SHST clear now. */
		atomic_fetch_and(&emu->csts, ~(NVME_CSTS_CFS | NVME_CSTS_SHST_MASK));
		emu->ready_pending = true;
		emu->rdy_deadline = now + (uint64_t)emu->cfg.rdy_delay_ms * 1000000ull;
	}
	uint32_t cc = atomic_load(&emu->cc);
	if ((cc & NVME_CC_EN) && !emu->enabled) {
		if (atomic_load(&emu->csts) & NVME_CSTS_RDY) {
			/* EN went 1->0->1 faster than RDY could follow: finish the reset's
			 * RDY drop first (Base 2.0 3.5.2: RDY must reach 0). */
			atomic_fetch_and(&emu->csts, ~NVME_CSTS_RDY);
		}
		emu_ctrl_enable(emu, now);
	}
	if (emu->ready_pending) {
		if (now >= emu->rdy_deadline) {
			emu->ready_pending = false;
			if (emu->enabled && (atomic_load(&emu->cc) & NVME_CC_EN))
				atomic_fetch_or(&emu->csts, NVME_CSTS_RDY);
			else
				atomic_fetch_and(&emu->csts, ~NVME_CSTS_RDY);
		} else {
			next = emu->rdy_deadline;
		}
	}
	if (atomic_exchange(&emu->shn_req, false) && emu->enabled && !emu->shn_pending) {
		/* Base 2.0 3.6.1/3.6.2: shutdown processing, then SHST complete. */
		atomic_store(&emu->csts, (atomic_load(&emu->csts) & ~NVME_CSTS_SHST_MASK) |
					     NVME_CSTS_SET_SHST(NVME_SHST_OCCURRING));
		emu->shn_pending = true;
		emu->shn_deadline = now + (uint64_t)emu->cfg.shn_delay_ms * 1000000ull;
	}
	if (emu->shn_pending) {
		if (now >= emu->shn_deadline) {
			emu->shn_pending = false;
			atomic_store(&emu->csts, (atomic_load(&emu->csts) & ~NVME_CSTS_SHST_MASK) |
						     NVME_CSTS_SET_SHST(NVME_SHST_COMPLETE));
		} else if (!next || emu->shn_deadline < next) {
			next = emu->shn_deadline;
		}
	}
	return next;
}

void emu_keep_alive_restart(struct nvmk_emu *emu)
{
	emu->ka_deadline = emu->feat_kato ? emu_now_ns() + emu->feat_kato * 1000000ull : 0;
}

/*
 * Keep Alive Timer (Base 2.0 3.9): if no Keep Alive command arrived within
 * KATO, record an Error Information entry with Keep Alive Timer Expired (not
 * tied to a command: SQID and CID FFFFh) and, on PCIe, set CSTS.CFS and stop
 * processing commands. Not while a shutdown is under way or complete: the
 * host has stopped using the controller on purpose. Returns the deadline to
 * wake up for (0 = none).
 */
static uint64_t emu_keep_alive_check(struct nvmk_emu *emu)
{
	if (!emu->ka_deadline || (atomic_load(&emu->csts) & NVME_CSTS_SHST_MASK))
		return 0;
	if (emu_now_ns() < emu->ka_deadline)
		return emu->ka_deadline;
	emu->ka_deadline = 0;
	emu_errlog_record(emu, 0xffff, 0xffff, NVME_SF(NVME_SCT_GENERIC, NVME_SC_KA_EXPIRED), 0);
	emu_fatal(emu, 0, "keep alive timer expired (no Keep Alive command within KATO)");
	return 0;
}

/*
 * One pass of the worker: registers, held commands, every queue, events.
 * Returns -1 when paused or removed (nothing may be touched: the caller
 * waits with *@next), else whether it did some work; *@next gets the
 * deadline to wake up for (0 = none).
 */
static int emu_pass(struct nvmk_emu *emu, uint64_t now, uint64_t *next)
{
	uint64_t n2;
	bool busy = false;

	/* a snapshot is taken, and a pause holds, between two commands */
	if (emu_snap_step(emu)) {
		*next = now + 1000000ull;
		return -1;
	}
	if (atomic_load(&emu->removed)) {
		*next = 0;
		return -1;
	}
	*next = emu_ctrl_step(emu, now);
	/* Stores to the doorbell page since the last pass: reports those to
	 * queues that do not exist; the queues read their own values. */
	if (emu_db_page(emu))
		emu_db_page_scan(emu);
	if (emu->enabled && !atomic_load(&emu->fatal) &&
	    (atomic_load(&emu->csts) & NVME_CSTS_RDY)) {
		emu_irq_batch_begin(); /* one interrupt per vector per pass */
		emu_preempt_run(emu);
		n2 = emu_pending_run(emu, now);
		if (n2 && (!*next || n2 < *next))
			*next = n2;
		busy |= emu_queues_process(emu);
		busy |= emu_aer_deliver(emu);
		emu_irq_batch_end(emu);
		/* After the commands: a Keep Alive already in the SQ counts. */
		n2 = emu_keep_alive_check(emu);
		if (n2 && (!*next || n2 < *next))
			*next = n2;
	}
	/* With shadow doorbells the host may skip MMIO writes for CQ heads;
	 * look again within a millisecond rather than rely on a kick. */
	if (emu->dbbuf_shadow && emu->enabled && !emu->cfg.no_shadow_poll) {
		uint64_t poll = emu_now_ns() + 1000000ull;

		if (!*next || poll < *next)
			*next = poll;
	}
	return busy;
}

static void *emu_worker(void *arg)
{
	struct nvmk_emu *emu = arg;
	/* inline execution (inline.c): a pass excludes doorbell writers that
	 * run commands; the lock is not held while the worker waits */
	bool locked = emu->cfg.inline_io;

	while (!atomic_load(&emu->stop)) {
		uint64_t now = emu_now_ns();
		uint64_t next;
		int busy;

		if (locked)
			pthread_mutex_lock(&emu->exec_lock);
		busy = emu_pass(emu, now, &next);
		if (locked)
			pthread_mutex_unlock(&emu->exec_lock);
		if (busy > 0)
			emu->last_busy_ns = now;
		else
			emu_wait(emu, next);
	}
	return NULL;
}

static void emu_free(struct nvmk_emu *emu)
{
	struct emu_cmd *c;

	while ((c = emu->pending)) {
		emu->pending = c->next;
		free(c);
	}
	free(emu->db);
	free(emu->db_page_last);
	free(emu->sqs);
	free(emu->cqs);
	free(emu->irq_fd);
	free(emu->irq_masked);
	free(emu->irq_pending);
	free(emu->bounce);
	pthread_mutex_destroy(&emu->reg_lock);
	pthread_mutex_destroy(&emu->irq_lock);
	pthread_mutex_destroy(&emu->aer_lock);
	pthread_mutex_destroy(&emu->fault_lock);
	pthread_mutex_destroy(&emu->exec_lock);
	emu_snap_fini(emu);
	free(emu);
}

int nvmk_emu_create(const struct nvmk_emu_config *cfg, struct nvmk_emu **out)
{
	const char *name = cfg && cfg->name ? cfg->name : "emu";
	struct nvmk_emu *emu;
	unsigned nq;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	rc = emu_cfg_validate(cfg, name);
	if (rc)
		return rc;
	emu = calloc(1, sizeof(*emu));
	if (!emu)
		return -ENOMEM;
	emu->cfg = *cfg;
	snprintf(emu->name, sizeof(emu->name), "%s", name);
	emu->cfg.name = emu->name;
	emu->cfg.nr_ns = 0; /* namespaces now belong to the subsystem */
	if (!emu->cfg.cap_to)
		emu->cfg.cap_to = 1;
	emu->nq = cfg->max_io_queues;
	nq = emu->nq + 1u;
	pthread_mutex_init(&emu->reg_lock, NULL);
	pthread_mutex_init(&emu->irq_lock, NULL);
	pthread_mutex_init(&emu->aer_lock, NULL);
	emu_snap_init(emu);
	pthread_mutex_init(&emu->fault_lock, NULL);
	pthread_mutex_init(&emu->exec_lock, NULL);
	/* Shadow doorbells let the host skip the register writes that run
	 * commands inline: not offered then (include/nvmekeep/emu.h). */
	if (emu->cfg.inline_io) {
		emu->cfg.no_dbbuf = true;
		nvmk_info(emu->name, NVMK_LOG_NOQ,
			  "I/O commands run inline on the doorbell writer's thread "
			  "(no Doorbell Buffer Config)");
	}
	emu->db = calloc(2u * nq, sizeof(*emu->db));
	emu->sqs = calloc(nq, sizeof(*emu->sqs));
	emu->cqs = calloc(nq, sizeof(*emu->cqs));
	emu->irq_fd = malloc(cfg->msix_vectors * sizeof(int));
	emu->irq_masked = calloc(cfg->msix_vectors, sizeof(bool));
	emu->irq_pending = calloc(cfg->msix_vectors, sizeof(bool));
	emu->bounce = malloc(EMU_BOUNCE);
	if (!emu->db || !emu->sqs || !emu->cqs || !emu->irq_fd ||
	    !emu->irq_masked || !emu->irq_pending || !emu->bounce) {
		emu_free(emu);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->msix_vectors; i++)
		emu->irq_fd[i] = -1;

	if (cfg->subsystem_of) {
		struct emu_subsys *s = cfg->subsystem_of->subsys;

		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
		emu->subsys = s;
	} else {
		rc = subsys_create(cfg, emu->name, &emu->subsys);
		if (rc) {
			emu_free(emu);
			return rc;
		}
	}
	pthread_mutex_lock(&emu->subsys->ctrl_lock);
	rc = -ENOSPC;
	for (unsigned i = 0; i < EMU_MAX_CTRLS; i++) {
		if (!emu->subsys->ctrls[i]) {
			emu->subsys->ctrls[i] = emu;
			emu->cntlid = emu->subsys->next_cntlid++;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&emu->subsys->ctrl_lock);
	if (rc) {
		nvmk_err(emu->name, NVMK_LOG_NOQ, "subsystem already has %d controllers",
			 EMU_MAX_CTRLS);
		subsys_put(emu->subsys);
		emu_free(emu);
		return rc;
	}
	emu->host.cntlid = emu->cntlid;
	emu_db_reset(emu);
	emu_regs_init(emu);
	emu_features_reset(emu);

	rc = pthread_create(&emu->worker, NULL, emu_worker, emu);
	if (rc) {
		nvmk_emu_destroy(emu);
		return -rc;
	}
	emu->worker_started = true;
	nvmk_info(emu->name, NVMK_LOG_NOQ, "created: cntlid %u, %u I/O queues, %u vectors",
		  emu->cntlid, emu->nq, cfg->msix_vectors);
	*out = emu;
	return 0;
}

void nvmk_emu_destroy(struct nvmk_emu *emu)
{
	if (!emu)
		return;
	if (emu->worker_started) {
		atomic_store(&emu->stop, true);
		emu_kick(emu);
		pthread_join(emu->worker, NULL);
	}
	pthread_mutex_lock(&emu->subsys->ctrl_lock);
	for (unsigned i = 0; i < EMU_MAX_CTRLS; i++)
		if (emu->subsys->ctrls[i] == emu)
			emu->subsys->ctrls[i] = NULL;
	pthread_mutex_unlock(&emu->subsys->ctrl_lock);
	/* Registrations of a host without an identifier die with its controller. */
	pthread_rwlock_rdlock(&emu->subsys->ns_lock);
	for (unsigned i = 1; i <= NVMK_EMU_MAX_NS; i++)
		if (emu->subsys->resv[i])
			emu_resv_ctrl_gone(emu->subsys->resv[i], emu->cntlid);
	pthread_rwlock_unlock(&emu->subsys->ns_lock);
	subsys_put(emu->subsys);
	emu_free(emu);
}
