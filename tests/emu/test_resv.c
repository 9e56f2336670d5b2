/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: reservations (NVMe Base 2.0 8.19, NVM-CS 1.0
 * 3.2.4 - 3.2.7) across two controllers of one NVM subsystem
 * (nvmk_emu_config.subsystem_of), each with its own Host Identifier (Set
 * Features 81h), driven only through NVMe commands.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define NSID 1
#define KA   0xaaaa0000aaaa0001ull
#define KB   0xbbbb0000bbbb0002ull

struct pair {
	struct host *a, *b;
	struct nvme_id_ctrl ida, idb;
};

static const uint8_t hostid_a[16] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
				     0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x10};
static const uint8_t hostid_b[16] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
				     0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x20};

static int set_hostid(struct host *h, const uint8_t *id, bool ext)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_HOST_ID;
	sqe.cdw11 = ext ? NVME_FEAT_HOSTID_EXHID : 0;
	return host_admin_data(h, &sqe, (void *)id, ext ? 16 : 8, true, NULL);
}

/* 0 started; 1: the 128-bit form was refused (the caller skips); < 0 failed */
static int start_ctrl(struct host *h, const uint8_t *id, bool ext, struct nvme_id_ctrl *idc)
{
	int sf;

	if (host_enable(h, 16) || host_identify(h, NVME_ID_CNS_CTRL, 0, idc))
		return -1;
	/* the Host Identifier is set before any I/O queue exists */
	sf = set_hostid(h, id, ext);
	if (ext && SF_CODE(sf) == NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD))
		return 1; /* no 128-bit host identifiers (Base 2.0 5.27.1.25) */
	if (sf || host_set_num_queues(h, 2, 2, NULL) || host_create_qpair(h, 1, 16, -1))
		return -1;
	return 0;
}

static int pair_setup(void **state, bool ext)
{
	struct nvmk_emu_config cfg;
	struct pair *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -1;
	host_config(&cfg, ext ? "resv-a128" : "resv-a");
	cfg.nr_ns = 1;
	cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = NSID, .nblocks = 65536, .lba_shift = 9};
	p->a = host_create(&cfg);
	if (!p->a)
		goto fail;
	host_config(&cfg, ext ? "resv-b128" : "resv-b");
	cfg.nr_ns = 0;
	cfg.subsystem_of = p->a->emu;
	p->b = host_create(&cfg);
	if (!p->b)
		goto fail;
	rc = start_ctrl(p->a, hostid_a, ext, &p->ida);
	if (rc == 0)
		rc = start_ctrl(p->b, hostid_b, ext, &p->idb);
	if (rc < 0)
		goto fail;
	*state = p;
	if (rc > 0) {
		/* 128-bit form not offered: the test skips itself */
		host_destroy(p->b);
		p->b = NULL;
	}
	return 0;
fail:
	if (p->b)
		host_destroy(p->b);
	if (p->a)
		host_destroy(p->a);
	free(p);
	return -1;
}

static int setup64(void **state)
{
	return pair_setup(state, false);
}

static int setup128(void **state)
{
	return pair_setup(state, true);
}

static int teardown(void **state)
{
	struct pair *p = *state;

	/* B joined A's subsystem: it goes first */
	host_destroy(p->b);
	host_destroy(p->a);
	free(p);
	return host_destroy_all(NULL);
}

/* ---- commands ---- */

static int resv_register(struct host *h, uint32_t rrega, uint64_t crkey, uint64_t nrkey)
{
	struct nvme_resv_register_data d = {.crkey = crkey, .nrkey = nrkey};
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_CMD_RESV_REGISTER, NSID);
	sqe.cdw10 = rrega;
	return host_io_data(h, 1, &sqe, &d, sizeof(d), true, NULL);
}

static int resv_acquire(struct host *h, uint32_t racqa, uint8_t rtype, uint64_t crkey,
			uint64_t prkey)
{
	struct nvme_resv_acquire_data d = {.crkey = crkey, .prkey = prkey};
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_CMD_RESV_ACQUIRE, NSID);
	sqe.cdw10 = NVME_RESV_CDW10(racqa, false, rtype);
	return host_io_data(h, 1, &sqe, &d, sizeof(d), true, NULL);
}

static int resv_release(struct host *h, uint32_t rrela, uint8_t rtype, uint64_t crkey)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_CMD_RESV_RELEASE, NSID);
	sqe.cdw10 = NVME_RESV_CDW10(rrela, false, rtype);
	return host_io_data(h, 1, &sqe, &crkey, sizeof(crkey), true, NULL);
}

static int resv_report(struct host *h, bool eds, void *buf, size_t len)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_CMD_RESV_REPORT, NSID);
	sqe.cdw10 = (uint32_t)(len / 4 - 1); /* NUMD, 0's based */
	sqe.cdw11 = eds ? NVME_RESV_REPORT_EDS : 0;
	return host_io_data(h, 1, &sqe, buf, len, false, NULL);
}

static int io(struct host *h, uint8_t opc, uint64_t lba)
{
	struct host_buf b;
	int sf;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	host_fill(b.va, 512, lba);
	sf = host_rw(h, 1, opc, NSID, lba, 1, 0, b.iova, 512, NULL);
	host_buf_free(h, &b);
	return sf;
}

#define assert_conflict(sf) assert_sf(sf, NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT)

struct report {
	uint32_t gen;
	uint8_t rtype;
	unsigned regctl;
	struct {
		uint16_t cntlid;
		bool holder;
		uint64_t rkey;
		uint8_t hostid[16];
	} c[8];
};

static void get_report(struct host *h, bool eds, struct report *r)
{
	uint8_t buf[4096];
	const struct nvme_resv_status *hdr = (const void *)buf;
	size_t hlen = eds ? sizeof(struct nvme_resv_status_ext) : sizeof(struct nvme_resv_status);
	unsigned i;

	memset(buf, 0xee, sizeof(buf));
	memset(r, 0, sizeof(*r));
	assert_ok(resv_report(h, eds, buf, sizeof(buf)));
	r->gen = hdr->gen;
	r->rtype = hdr->rtype;
	r->regctl = hdr->regctl[0] | hdr->regctl[1] << 8;
	assert_true(r->regctl <= 8);
	for (i = 0; i < r->regctl; i++) {
		if (eds) {
			const struct nvme_resv_ctrl_ext *e =
			    (const void *)(buf + hlen + i * sizeof(*e));

			r->c[i].cntlid = e->cntlid;
			r->c[i].holder = e->rcsts & NVME_RESV_RCSTS_HOLDER;
			r->c[i].rkey = e->rkey;
			memcpy(r->c[i].hostid, e->hostid, 16);
		} else {
			const struct nvme_resv_ctrl *e =
			    (const void *)(buf + hlen + i * sizeof(*e));

			r->c[i].cntlid = e->cntlid;
			r->c[i].holder = e->rcsts & NVME_RESV_RCSTS_HOLDER;
			r->c[i].rkey = e->rkey;
			memcpy(r->c[i].hostid, &e->hostid, 8);
		}
	}
}

/* The entry of controller @cntlid in @r, or fail. */
static unsigned entry_of(const struct report *r, uint16_t cntlid)
{
	unsigned i;

	for (i = 0; i < r->regctl; i++)
		if (r->c[i].cntlid == cntlid)
			return i;
	fail_msg("controller %u not in the reservation report", cntlid);
	return 0;
}

/* ---- tests ---- */

static void test_subsystem_identity(void **state)
{
	struct pair *p = *state;
	struct nvme_id_ns na, nb;

	/* two controllers of one subsystem: distinct CNTLIDs, same namespace */
	assert_int_not_equal(p->ida.cntlid, p->idb.cntlid);
	assert_true(p->ida.cmic & 0x2); /* may have two or more controllers */
	assert_true(p->ida.oncs & NVME_ONCS_RESERVATIONS);
	assert_ok(host_identify(p->a, NVME_ID_CNS_NS, NSID, &na));
	assert_ok(host_identify(p->b, NVME_ID_CNS_NS, NSID, &nb));
	assert_int_equal(na.nsze, 65536);
	assert_int_equal(nb.nsze, 65536);
	assert_true(na.nmic & 1); /* shared namespace */
	assert_true(na.rescap & NVME_RESCAP_WE);
	assert_true(na.rescap & NVME_RESCAP_EA);
	assert_memory_equal(na.nguid, nb.nguid, 16);
	/* one subsystem, one NQN: non-empty, NUL terminated, the same on both
	 * controllers (Base 2.0 Figure 275 SUBNQN, 4.5.1) */
	assert_non_null(memchr(p->ida.subnqn, 0, sizeof(p->ida.subnqn)));
	assert_true(strncmp(p->ida.subnqn, "nqn.", 4) == 0);
	assert_string_equal(p->ida.subnqn, p->idb.subnqn);
	/* data written through one controller is read through the other */
	{
		struct host_buf b;

		assert_int_equal(host_buf_alloc(p->a, &b, 4096), 0);
		host_fill(b.va, 4096, 5);
		assert_ok(host_rw(p->a, 1, NVME_CMD_WRITE, NSID, 50, 8, 0, b.iova, 4096, NULL));
		host_buf_free(p->a, &b);
		assert_int_equal(host_buf_alloc(p->b, &b, 4096), 0);
		assert_ok(host_rw(p->b, 1, NVME_CMD_READ, NSID, 50, 8, 0, b.iova, 4096, NULL));
		assert_int_equal(host_check_fill(b.va, 4096, 5), -1);
		host_buf_free(p->b, &b);
	}
}

static void test_register_and_report(void **state)
{
	struct pair *p = *state;
	struct report r;
	unsigned ia, ib;
	uint32_t g0;

	get_report(p->a, false, &r);
	assert_int_equal(r.regctl, 0);
	assert_int_equal(r.rtype, 0);
	g0 = r.gen;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	/* registering again with the same key is fine, another key is not */
	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_conflict(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA + 1));
	/* replace needs the current key */
	assert_conflict(resv_register(p->b, NVME_RESV_REG_REPLACE, KA, KB + 1));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REPLACE, KB, KB + 1));

	get_report(p->b, false, &r);
	assert_int_equal(r.regctl, 2);
	assert_int_equal(r.rtype, 0);
	assert_true(r.gen > g0);
	ia = entry_of(&r, p->ida.cntlid);
	ib = entry_of(&r, p->idb.cntlid);
	assert_int_equal(r.c[ia].rkey, KA);
	assert_int_equal(r.c[ib].rkey, KB + 1);
	assert_memory_equal(r.c[ia].hostid, hostid_a, 8);
	assert_memory_equal(r.c[ib].hostid, hostid_b, 8);
	assert_false(r.c[ia].holder);
	assert_false(r.c[ib].holder);

	/* unregister needs the current key too */
	assert_conflict(resv_register(p->b, NVME_RESV_REG_UNREGISTER, KB, 0));
	assert_ok(resv_register(p->b, NVME_RESV_REG_UNREGISTER, KB + 1, 0));
	get_report(p->a, false, &r);
	assert_int_equal(r.regctl, 1);
	assert_int_equal(r.c[0].cntlid, p->ida.cntlid);
}

static void test_write_exclusive(void **state)
{
	struct pair *p = *state;
	struct report r;
	uint32_t g;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	get_report(p->a, false, &r);
	g = r.gen;

	assert_conflict(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA + 7, 0));
	assert_ok(resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA, 0));
	/* acquiring what one holds already is fine */
	assert_ok(resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA, 0));
	/* the other host cannot acquire */
	assert_conflict(
	    resv_acquire(p->b, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KB, 0));

	get_report(p->b, false, &r);
	assert_int_equal(r.rtype, NVME_RESV_WRITE_EXCLUSIVE);
	assert_true(r.c[entry_of(&r, p->ida.cntlid)].holder);
	assert_false(r.c[entry_of(&r, p->idb.cntlid)].holder);
	assert_int_equal(r.gen, g); /* acquire does not bump the generation */

	/* Write Exclusive: the holder reads and writes, others only read */
	assert_ok(io(p->a, NVME_CMD_WRITE, 1));
	assert_ok(io(p->a, NVME_CMD_READ, 1));
	assert_ok(io(p->b, NVME_CMD_READ, 1));
	assert_conflict(io(p->b, NVME_CMD_WRITE, 1));
	{
		struct nvme_sqe sqe;

		host_sqe(&sqe, NVME_CMD_WRITE_ZEROES, NSID);
		assert_conflict(host_cmd(p->b, 1, &sqe, NULL));
	}

	/* release: wrong type is refused, wrong key conflicts */
	assert_sf(resv_release(p->a, NVME_RESV_REL_RELEASE, NVME_RESV_EXCLUSIVE_ACCESS, KA),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_conflict(resv_release(p->a, NVME_RESV_REL_RELEASE, NVME_RESV_WRITE_EXCLUSIVE, KB));
	/* a registrant that does not hold it: success, nothing happens */
	assert_ok(resv_release(p->b, NVME_RESV_REL_RELEASE, NVME_RESV_WRITE_EXCLUSIVE, KB));
	assert_conflict(io(p->b, NVME_CMD_WRITE, 1));
	assert_ok(resv_release(p->a, NVME_RESV_REL_RELEASE, NVME_RESV_WRITE_EXCLUSIVE, KA));
	get_report(p->a, false, &r);
	assert_int_equal(r.rtype, 0);
	assert_int_equal(r.regctl, 2); /* registrations stay */
	assert_ok(io(p->b, NVME_CMD_WRITE, 1));
}

static void test_exclusive_access_preempt_clear(void **state)
{
	struct pair *p = *state;
	struct report r;
	uint32_t g;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	assert_ok(resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_EXCLUSIVE_ACCESS, KA, 0));
	/* Exclusive Access: the other host can neither read nor write */
	assert_ok(io(p->a, NVME_CMD_WRITE, 2));
	assert_ok(io(p->a, NVME_CMD_READ, 2));
	assert_conflict(io(p->b, NVME_CMD_READ, 2));
	assert_conflict(io(p->b, NVME_CMD_WRITE, 2));
	/* changing the type by acquire is not allowed */
	assert_conflict(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA, 0));

	get_report(p->a, false, &r);
	g = r.gen;
	/* preempt: B takes it over and A's registration goes (Base 2.0 8.19.7) */
	assert_conflict(
	    resv_acquire(p->b, NVME_RESV_ACQ_PREEMPT, NVME_RESV_EXCLUSIVE_ACCESS, KB + 1, KA));
	assert_ok(resv_acquire(p->b, NVME_RESV_ACQ_PREEMPT, NVME_RESV_EXCLUSIVE_ACCESS, KB, KA));
	get_report(p->b, false, &r);
	assert_int_equal(r.rtype, NVME_RESV_EXCLUSIVE_ACCESS);
	assert_int_equal(r.regctl, 1);
	assert_int_equal(r.c[0].cntlid, p->idb.cntlid);
	assert_true(r.c[0].holder);
	assert_true(r.gen > g);
	/* now A is locked out, and its old key is worthless */
	assert_conflict(io(p->a, NVME_CMD_READ, 2));
	assert_conflict(io(p->a, NVME_CMD_WRITE, 2));
	assert_conflict(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_EXCLUSIVE_ACCESS, KA, 0));
	assert_ok(io(p->b, NVME_CMD_WRITE, 2));
	/* A may register again, but is still not the holder */
	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_conflict(io(p->a, NVME_CMD_READ, 2));

	/* clear: needs a registrant's key; drops everything */
	get_report(p->b, false, &r);
	g = r.gen;
	assert_conflict(resv_release(p->b, NVME_RESV_REL_CLEAR, 0, KB + 5));
	assert_ok(resv_release(p->a, NVME_RESV_REL_CLEAR, 0, KA));
	get_report(p->b, false, &r);
	assert_int_equal(r.rtype, 0);
	assert_int_equal(r.regctl, 0);
	assert_true(r.gen > g);
	assert_ok(io(p->a, NVME_CMD_WRITE, 2));
	assert_ok(io(p->b, NVME_CMD_READ, 2));
	/* an unregistered host cannot acquire */
	assert_conflict(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA, 0));
}

/* Preempt and Abort (RACQA 010b, Base 2.0 8.19.7): the preempted host's
 * outstanding commands end with Command Aborted due to Preempt and Abort. A
 * write of A is held outstanding by a HANG rule on A's controller. */
static void test_preempt_and_abort(void **state)
{
	struct pair *p = *state;
	struct nvmk_emu_fault f = {
	    .kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVME_CMD_WRITE, .count = 1};
	uint64_t before, deadline, buf;
	struct nvme_sqe sqe;
	struct report r;
	int cid;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	assert_ok(resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KA, 0));
	assert_true(nvmk_emu_fault_add(p->a->emu, &f) >= 0);
	before = nvmk_emu_cmd_count(p->a->emu, false, NVME_CMD_WRITE);
	buf = host_page_alloc(p->a->arena, 1, 1);
	host_sqe(&sqe, NVME_CMD_WRITE, NSID);
	sqe.cdw10 = 7;
	sqe.prp1 = buf;
	cid = host_submit(p->a, 1, &sqe);
	assert_true(cid >= 0);
	deadline = host_now_ms() + HOST_TIMEOUT_MS;
	while (nvmk_emu_cmd_count(p->a->emu, false, NVME_CMD_WRITE) == before) {
		assert_true(host_now_ms() < deadline);
		host_sleep_ms(1);
	}
	assert_int_equal(host_wait(p->a, 1, (uint16_t)cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);

	assert_ok(
	    resv_acquire(p->b, NVME_RESV_ACQ_PREEMPT_ABORT, NVME_RESV_WRITE_EXCLUSIVE, KB, KA));
	assert_sf(host_wait(p->a, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_GENERIC,
		  NVME_SC_ABORT_PREEMPT);
	get_report(p->b, false, &r);
	assert_int_equal(r.regctl, 1);
	assert_int_equal(r.c[0].cntlid, p->idb.cntlid);
	assert_true(r.c[0].holder);
	assert_conflict(io(p->a, NVME_CMD_WRITE, 7));
	assert_ok(io(p->b, NVME_CMD_WRITE, 7));
	assert_ok(resv_release(p->b, NVME_RESV_REL_CLEAR, 0, KB));
}

static void test_registrants_only_types(void **state)
{
	struct pair *p = *state;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	/* Write Exclusive - Registrants Only: every registrant may write */
	assert_ok(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY, KA, 0));
	assert_ok(io(p->b, NVME_CMD_WRITE, 3));
	assert_ok(resv_register(p->b, NVME_RESV_REG_UNREGISTER, KB, 0));
	assert_conflict(io(p->b, NVME_CMD_WRITE, 3));
	assert_ok(io(p->b, NVME_CMD_READ, 3));
	assert_ok(
	    resv_release(p->a, NVME_RESV_REL_RELEASE, NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY, KA));
	/* Exclusive Access - Registrants Only: non-registrants cannot read */
	assert_ok(
	    resv_acquire(p->a, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY, KA, 0));
	assert_conflict(io(p->b, NVME_CMD_READ, 3));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	assert_ok(io(p->b, NVME_CMD_READ, 3));
	assert_ok(io(p->b, NVME_CMD_WRITE, 3));
	assert_ok(resv_release(p->a, NVME_RESV_REL_CLEAR, 0, KA));
}

/* EDS = 1 while the hosts use 64-bit identifiers: the extended structure
 * has no room for them to be consistent, Host Identifier Inconsistent
 * Format (NVM-CS 1.0 3.2.6; Linux falls back to EDS = 0 on exactly this). */
static void test_extended_report_64bit_ids(void **state)
{
	struct pair *p = *state;
	uint8_t buf[512];
	struct report r;

	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	assert_sf(resv_report(p->a, true, buf, sizeof(buf)), NVME_SCT_GENERIC,
		  NVME_SC_HOSTID_INCONSISTENT);
	get_report(p->a, false, &r);
	assert_int_equal(r.regctl, 2);
}

/* EDS = 1 with 128-bit host identifiers lists both hosts (NVM-CS 1.0 3.2.6,
 * Figures 60/61), if the controller takes 128-bit identifiers at all. */
static void test_extended_report_128(void **state)
{
	struct pair *p = *state;
	uint8_t buf[512];
	struct report r;
	unsigned ia, ib;

	if (!p->b)
		skip(); /* Set Features 81h with EXHID = 1 was refused */
	assert_ok(resv_register(p->a, NVME_RESV_REG_REGISTER, 0, KA));
	assert_ok(resv_register(p->b, NVME_RESV_REG_REGISTER, 0, KB));
	assert_ok(resv_acquire(p->b, NVME_RESV_ACQ_ACQUIRE, NVME_RESV_WRITE_EXCLUSIVE, KB, 0));
	get_report(p->a, true, &r);
	assert_int_equal(r.regctl, 2);
	assert_int_equal(r.rtype, NVME_RESV_WRITE_EXCLUSIVE);
	ia = entry_of(&r, p->ida.cntlid);
	ib = entry_of(&r, p->idb.cntlid);
	assert_memory_equal(r.c[ia].hostid, hostid_a, 16);
	assert_memory_equal(r.c[ib].hostid, hostid_b, 16);
	assert_int_equal(r.c[ia].rkey, KA);
	assert_int_equal(r.c[ib].rkey, KB);
	assert_false(r.c[ia].holder);
	assert_true(r.c[ib].holder);
	/* 128-bit host identifiers cannot be reported in the standard form
	 * (NVM-CS 1.0 3.2.6) */
	assert_sf(resv_report(p->a, false, buf, sizeof(buf)), NVME_SCT_GENERIC,
		  NVME_SC_HOSTID_INCONSISTENT);
	/* reservations apply the same way */
	assert_conflict(io(p->a, NVME_CMD_WRITE, 4));
	assert_ok(io(p->b, NVME_CMD_WRITE, 4));
	assert_ok(resv_release(p->b, NVME_RESV_REL_CLEAR, 0, KB));
	/* a 64-bit identifier while another controller of the subsystem uses a
	 * 128-bit one: Host Identifier Inconsistent Format (Base 2.0 5.27.1.25) */
	{
		struct nvme_sqe sqe;
		uint8_t id8[8] = {9, 9, 9, 9, 9, 9, 9, 9};

		host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
		sqe.cdw10 = NVME_FEAT_HOST_ID;
		assert_sf(host_admin_data(p->b, &sqe, id8, 8, true, NULL), NVME_SCT_GENERIC,
			  NVME_SC_HOSTID_INCONSISTENT);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_subsystem_identity, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_register_and_report, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_write_exclusive, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_exclusive_access_preempt_clear, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_preempt_and_abort, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_registrants_only_types, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_extended_report_64bit_ids, setup64, teardown),
	    cmocka_unit_test_setup_teardown(test_extended_report_128, setup128, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
