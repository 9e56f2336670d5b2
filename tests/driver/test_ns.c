// SPDX-License-Identifier: MIT
/* Namespaces: resize / removal / addition notices reach the event callback,
 * I/O on a removed namespace fails -ENODEV without reaching the device, and
 * reservations between two controllers of one subsystem (different host
 * IDs), in interrupt and in polling mode. */
#include <errno.h>

#include "drv_test.h"

struct events {
	pthread_mutex_t lock;
	struct nvmk_event ev[32];
	int n;
};

static void ev_cb(void *ctx, struct nvmk_ctrl *ctrl, const struct nvmk_event *ev)
{
	struct events *e = ctx;

	(void)ctrl;
	pthread_mutex_lock(&e->lock);
	if (e->n < 32)
		e->ev[e->n++] = *ev;
	pthread_mutex_unlock(&e->lock);
}

static int ev_wait(struct events *e, enum nvmk_event_type type, uint32_t nsid,
		   struct nvmk_event *out)
{
	for (int i = 0; i < 300; i++) {
		pthread_mutex_lock(&e->lock);
		for (int j = 0; j < e->n; j++)
			if (e->ev[j].type == type && e->ev[j].nsid == nsid) {
				*out = e->ev[j];
				pthread_mutex_unlock(&e->lock);
				return 0;
			}
		pthread_mutex_unlock(&e->lock);
		tsleep_ms(10);
	}
	return -ETIMEDOUT;
}

static void ns_events(enum nvmk_cpl_mode mode)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct events e = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct nvmk_event got;
	struct nvmk_ns_info info;
	struct nvmk_ns *ns;
	struct tenv t;
	char buf[4096] = "data";

	tlog_reset();
	tcfg_default(&cfg, "emu-ns");
	cfg.nr_ns = 2;
	cfg.ns[1] = cfg.ns[0];
	cfg.ns[1].nsid = 2;
	topts_default(&o);
	o.cpl_mode = mode;
	o.event_cb = ev_cb;
	o.event_ctx = &e;
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	assert_int_equal(nvmk_ns_open(t.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0);

	/* resize: the owner hears old and new size, info follows */
	assert_int_equal(nvmk_emu_ns_resize(t.emu, 1, 1u << 17), 0);
	assert_int_equal(ev_wait(&e, NVMK_EVENT_NS_RESIZED, 1, &got), 0);
	assert_int_equal(got.old_nblocks, 1u << 16);
	assert_int_equal(got.new_nblocks, 1u << 17);
	nvmk_ns_info(ns, &info);
	assert_int_equal(info.nblocks, 1u << 17);
	/* the new blocks are usable */
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, (1u << 17) - 1, 1), 0);

	/* removal of another namespace, then of ours */
	assert_int_equal(nvmk_emu_ns_remove(t.emu, 2), 0);
	assert_int_equal(ev_wait(&e, NVMK_EVENT_NS_REMOVED, 2, &got), 0);
	uint64_t reads = nvmk_emu_cmd_count(t.emu, false, NVME_CMD_READ);
	assert_int_equal(nvmk_emu_ns_remove(t.emu, 1), 0);
	assert_int_equal(ev_wait(&e, NVMK_EVENT_NS_REMOVED, 1, &got), 0);
	nvmk_ns_info(ns, &info);
	assert_true(info.removed);
	assert_int_equal(nvmk_ns_read(ns, NULL, buf, 0, 1), -ENODEV);
	struct nvmk_dma_buf d;
	assert_int_equal(nvmk_ctrl_dma_alloc(t.ctrl, 4096, &d), 0);
	assert_int_equal(nvmk_ns_submit_read(ns, nvmk_ctrl_get_qpair(t.ctrl), &d, 0, 0, 1, 0,
					     (nvmk_cpl_fn)abort, NULL),
			 -ENODEV);
	/* ...without touching the device */
	assert_int_equal(nvmk_emu_cmd_count(t.emu, false, NVME_CMD_READ), reads);
	nvmk_ctrl_dma_free(t.ctrl, &d);

	/* a namespace that appears is reported as added */
	struct nvmk_emu_ns_config nc = cfg.ns[0];
	nc.nsid = 3;
	assert_int_equal(nvmk_emu_ns_add(t.emu, &nc), 0);
	assert_int_equal(ev_wait(&e, NVMK_EVENT_NS_ADDED, 3, &got), 0);
	assert_int_equal(got.new_nblocks, nc.nblocks);
	struct nvmk_ns *ns3;
	assert_int_equal(nvmk_ns_open(t.ctrl, 3, 0, &ns3), 0);
	assert_int_equal(nvmk_ns_write(ns3, NULL, buf, 1, 1), 0);
	nvmk_ns_close(ns3);
	nvmk_ns_close(ns);
	tenv_close(&t);
}

static void test_events_irq(void **state)
{
	(void)state;
	ns_events(NVMK_CPL_INTERRUPT);
}

static void test_events_poll(void **state)
{
	(void)state;
	ns_events(NVMK_CPL_POLL);
}

static void reservations(enum nvmk_cpl_mode mode)
{
	struct nvmk_emu_config ca, cb;
	struct nvmk_ctrl_opts oa, ob;
	struct tenv A, B;
	struct nvmk_ns *na, *nb;
	char buf[512] = "resv";

	tlog_reset();
	tcfg_default(&ca, "emu-subsys-a");
	topts_default(&oa);
	oa.cpl_mode = mode;
	oa.host_id = 0x1111;
	assert_int_equal(tenv_open(&A, &ca, &oa), 0);
	nvmk_emu_config_default(&cb);
	cb.name = "emu-subsys-b";
	cb.nr_ns = 0;
	cb.subsystem_of = A.emu;
	ob = oa;
	ob.host_id = 0x2222;
	assert_int_equal(tenv_open(&B, &cb, &ob), 0);
	assert_int_not_equal(nvmk_ctrl_identify(A.ctrl)->cntlid,
			     nvmk_ctrl_identify(B.ctrl)->cntlid);
	assert_int_equal(nvmk_ns_open(A.ctrl, 1, NVMK_NS_SHARED, &na), 0);
	assert_int_equal(nvmk_ns_open(B.ctrl, 1, NVMK_NS_SHARED, &nb), 0);

	assert_int_equal(nvmk_ns_resv_register(na, NULL, NVME_RESV_REG_REGISTER, 0, 0xA, false), 0);
	assert_int_equal(nvmk_ns_resv_register(nb, NULL, NVME_RESV_REG_REGISTER, 0, 0xB, false), 0);
	assert_int_equal(nvmk_ns_resv_acquire(na, NULL, NVME_RESV_ACQ_ACQUIRE,
					      NVME_RESV_WRITE_EXCLUSIVE, 0xA, 0, false),
			 0);
	/* B may read but not write */
	assert_int_equal(nvmk_ns_write(nb, NULL, buf, 3, 1), -EBADE);
	assert_int_equal(nvmk_last_status() & 0x7ff,
			 NVME_SF(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT));
	assert_int_equal(nvmk_ns_read(nb, NULL, buf, 3, 1), 0);
	assert_int_equal(nvmk_ns_write(na, NULL, buf, 3, 1), 0);
	/* B cannot acquire while A holds it; wrong key is refused */
	assert_int_equal(nvmk_ns_resv_acquire(nb, NULL, NVME_RESV_ACQ_ACQUIRE,
					      NVME_RESV_WRITE_EXCLUSIVE, 0xB, 0, false),
			 -EBADE);
	assert_int_equal(nvmk_ns_resv_release(na, NULL, NVME_RESV_REL_RELEASE,
					      NVME_RESV_WRITE_EXCLUSIVE, 0xBAD, false),
			 -EBADE);

	/* report: two registrants, A (host 0x1111) holds it */
	union {
		struct nvme_resv_status hdr;
		uint8_t raw[24 + 4 * 24];
	} rep;
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(nvmk_ns_resv_report(nb, NULL, &rep, sizeof(rep), false), 0);
	assert_int_equal(rep.hdr.rtype, NVME_RESV_WRITE_EXCLUSIVE);
	assert_int_equal(rep.hdr.regctl[0] | rep.hdr.regctl[1] << 8, 2);
	struct nvme_resv_ctrl *rc = (struct nvme_resv_ctrl *)(rep.raw + 24);
	int holders = 0;
	for (int i = 0; i < 2; i++)
		if (rc[i].rcsts & NVME_RESV_RCSTS_HOLDER) {
			holders++;
			assert_int_equal(rc[i].hostid, 0x1111);
			assert_int_equal(rc[i].rkey, 0xA);
		}
	assert_int_equal(holders, 1);

	/* released: B writes */
	assert_int_equal(nvmk_ns_resv_release(na, NULL, NVME_RESV_REL_RELEASE,
					      NVME_RESV_WRITE_EXCLUSIVE, 0xA, false),
			 0);
	assert_int_equal(nvmk_ns_write(nb, NULL, buf, 3, 1), 0);
	nvmk_ns_close(na);
	nvmk_ns_close(nb);
	tenv_close(&B);
	tenv_close(&A);
}

static void test_resv_irq(void **state)
{
	(void)state;
	reservations(NVMK_CPL_INTERRUPT);
}

static void test_resv_poll(void **state)
{
	(void)state;
	reservations(NVMK_CPL_POLL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_irq),
	    cmocka_unit_test(test_events_poll),
	    cmocka_unit_test(test_resv_irq),
	    cmocka_unit_test(test_resv_poll),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
