/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: the Admin Command Set (NVMe Base 2.0, chapter 5):
 * Identify, Get/Set Features, queue creation and deletion, Get Log Page,
 * Asynchronous Event Request, Abort, Doorbell Buffer Config.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define FIX_MQES 63 /* 64 entries at most */

struct fix {
	struct host *h;
	struct nvme_id_ctrl id;
};

/* Three namespaces given out of order, with holes: NSIDs 5, 2, 9. */
static void fixture_config(struct nvmk_emu_config *cfg, const char *name)
{
	host_config(cfg, name);
	cfg->mqes = FIX_MQES;
	cfg->nr_ns = 3;
	cfg->ns[0] = (struct nvmk_emu_ns_config){.nsid = 5, .nblocks = 8192, .lba_shift = 9};
	cfg->ns[1] = (struct nvmk_emu_ns_config){.nsid = 2, .nblocks = 1024, .lba_shift = 12};
	cfg->ns[2] = (struct nvmk_emu_ns_config){.nsid = 9, .nblocks = 100, .lba_shift = 9};
}

static int setup(void **state)
{
	struct nvmk_emu_config cfg;
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	fixture_config(&cfg, "admin");
	f->h = host_create(&cfg);
	if (!f->h || host_enable(f->h, 32) ||
	    host_identify(f->h, NVME_ID_CNS_CTRL, 0, &f->id) != 0) {
		host_destroy(f->h);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	host_destroy(f->h);
	free(f);
	return host_destroy_all(NULL);
}

static struct host *H(void **state)
{
	return ((struct fix *)*state)->h;
}

/* ASCII field, left justified, space padded (Base 2.0 1.5 / Figure 275). */
static void assert_padded(const char *field, size_t n, const char *want)
{
	size_t i, len = strlen(want);

	assert_true(len <= n);
	assert_memory_equal(field, want, len);
	for (i = len; i < n; i++)
		assert_int_equal(field[i], ' ');
}

static void assert_printable(const char *field, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_true(field[i] >= 0x20 && field[i] <= 0x7e);
}

/* Wait until the controller has fetched @n more commands of @opc. */
static void wait_fetched(struct host *h, bool admin, uint8_t opc, uint64_t before, uint64_t n)
{
	uint64_t deadline = host_now_ms() + HOST_TIMEOUT_MS;

	while (nvmk_emu_cmd_count(h->emu, admin, opc) < before + n) {
		if (host_now_ms() > deadline)
			fail_msg("controller did not fetch opcode 0x%02x", opc);
		host_sleep_ms(1);
	}
}

/* ---- Identify (Base 2.0 5.17) ---- */

static void test_identify_ctrl(void **state)
{
	struct fix *f = *state;
	struct nvme_id_ctrl *id = &f->id;
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id2;
	struct host *h;

	assert_padded(id->sn, sizeof(id->sn), "NVMKTEST0001");
	assert_padded(id->mn, sizeof(id->mn), "nvmekeep conformance target");
	assert_printable(id->fr, sizeof(id->fr));
	assert_int_equal(id->mdts, 5); /* the default */
	assert_int_equal(id->nn, NVMK_EMU_MAX_NS);
	assert_int_equal(id->aerl, 3);
	assert_int_equal(id->acl, 3);
	assert_int_equal(id->ver, host_rd32(f->h, NVME_REG_VS));
	/* Base 2.0 Figure 275: SQES/CQES required sizes are 64 and 16 bytes */
	assert_int_equal(NVME_ID_QES_MIN(id->sqes), 6);
	assert_true(NVME_ID_QES_MAX(id->sqes) >= 6);
	assert_int_equal(NVME_ID_QES_MIN(id->cqes), 4);
	assert_true(NVME_ID_QES_MAX(id->cqes) >= 4);
	assert_true(id->oacs & NVME_OACS_DBBUF);
	assert_true(id->vwc & NVME_VWC_PRESENT);
	/* what the I/O tests rely on is advertised */
	assert_true(id->oncs & NVME_ONCS_COMPARE);
	assert_true(id->oncs & NVME_ONCS_DSM);
	assert_true(id->oncs & NVME_ONCS_WRITE_ZEROES);
	assert_true(id->oncs & NVME_ONCS_RESERVATIONS);
	assert_true(id->oaes & NVME_OAES_NS_ATTR);
	if (id->ver >= NVME_VS(1, 4, 0))
		assert_int_equal(id->cntrltype, 1); /* I/O controller */

	/* Every field that comes from the configuration follows it. */
	host_config(&cfg, "admin-id2");
	cfg.serial = "ABCDEFGHIJKLMNOPQRST";			/* exactly 20 */
	cfg.model = "0123456789012345678901234567890123456789"; /* exactly 40 */
	cfg.mdts = 7;
	cfg.max_namespaces = 8;
	cfg.aerl = 5;
	cfg.acl = 1;
	cfg.no_dbbuf = true;
	cfg.no_vwc = true;
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_enable(h, 8), 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id2));
	assert_memory_equal(id2.sn, "ABCDEFGHIJKLMNOPQRST", 20);
	assert_memory_equal(id2.mn, "0123456789012345678901234567890123456789", 40);
	assert_int_equal(id2.mdts, 7);
	assert_int_equal(id2.nn, 8);
	assert_int_equal(id2.aerl, 5);
	assert_int_equal(id2.acl, 1);
	assert_int_equal(id2.oacs & NVME_OACS_DBBUF, 0);
	assert_int_equal(id2.vwc & NVME_VWC_PRESENT, 0);
	host_destroy(h);
}

static void test_identify_ns(void **state)
{
	struct host *h = H(state);
	struct nvme_id_ns ns;
	unsigned idx;

	assert_ok(host_identify(h, NVME_ID_CNS_NS, 5, &ns));
	assert_int_equal(ns.nsze, 8192);
	assert_int_equal(ns.ncap, 8192);
	assert_true(ns.nuse <= ns.ncap);
	idx = NVME_FLBAS_INDEX(ns.flbas);
	assert_true(idx <= ns.nlbaf);
	assert_int_equal(ns.lbaf[idx].lbads, 9);
	assert_int_equal(ns.lbaf[idx].ms, 0);
	/* the I/O tests expect deallocated blocks to read as zeroes: then
	 * DLFEAT must say so (NVM-CS 1.0 Figure 97) */
	assert_int_equal(ns.dlfeat & 0x7, NVME_DLFEAT_READ_ZEROES);

	assert_ok(host_identify(h, NVME_ID_CNS_NS, 2, &ns));
	assert_int_equal(ns.nsze, 1024);
	idx = NVME_FLBAS_INDEX(ns.flbas);
	assert_int_equal(ns.lbaf[idx].lbads, 12);

	assert_ok(host_identify(h, NVME_ID_CNS_NS, 9, &ns));
	assert_int_equal(ns.nsze, 100);

	/* Inactive but valid NSID: a zero filled structure (Base 2.0 5.17.2.1). */
	memset(&ns, 0xa5, sizeof(ns));
	assert_ok(host_identify(h, NVME_ID_CNS_NS, 3, &ns));
	assert_true(host_all_zero(&ns, sizeof(ns)));
	assert_ok(host_identify(h, NVME_ID_CNS_NS, NVMK_EMU_MAX_NS, &ns));
	assert_true(host_all_zero(&ns, sizeof(ns)));

	/* Invalid NSIDs: 0 and above NN. */
	assert_sf(host_identify(h, NVME_ID_CNS_NS, 0, &ns), NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
	assert_sf(host_identify(h, NVME_ID_CNS_NS, NVMK_EMU_MAX_NS + 1, &ns), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_NS);
}

static void test_identify_active_list(void **state)
{
	struct host *h = H(state);
	struct nvme_ns_list l;

	/* CNS 02h: active NSIDs greater than CDW1.NSID, ascending, zero filled */
	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0, &l));
	assert_int_equal(l.nsid[0], 2);
	assert_int_equal(l.nsid[1], 5);
	assert_int_equal(l.nsid[2], 9);
	assert_true(host_all_zero(&l.nsid[3], sizeof(l) - 3 * 4));

	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 2, &l));
	assert_int_equal(l.nsid[0], 5);
	assert_int_equal(l.nsid[1], 9);
	assert_int_equal(l.nsid[2], 0);

	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 6, &l));
	assert_int_equal(l.nsid[0], 9);
	assert_int_equal(l.nsid[1], 0);

	assert_ok(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 9, &l));
	assert_true(host_all_zero(&l, sizeof(l)));

	/* FFFFFFFEh and FFFFFFFFh are invalid for CNS 02h (Base 2.0 5.17.2.2) */
	assert_sf(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0xfffffffe, &l), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_NS);
	assert_sf(host_identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0xffffffff, &l), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_NS);
}

struct ns_ids {
	bool eui, nguid, uuid, csi;
	uint8_t eui64[8], nguid_v[16], csi_v;
};

/* Walk a CNS 03h list; every descriptor must be well formed. */
static void parse_desc_list(const uint8_t *buf, struct ns_ids *ids)
{
	size_t off = 0;

	memset(ids, 0, sizeof(*ids));
	while (off + 4 <= NVME_IDENTIFY_DATA_SIZE) {
		const struct nvme_ns_id_desc *d = (const void *)(buf + off);

		if (d->nidt == 0 && d->nidl == 0)
			break; /* end of list */
		assert_true(off + 4 + d->nidl <= NVME_IDENTIFY_DATA_SIZE);
		switch (d->nidt) {
		case NVME_NIDT_EUI64:
			assert_int_equal(d->nidl, NVME_NIDL_EUI64);
			assert_false(ids->eui);
			ids->eui = true;
			memcpy(ids->eui64, buf + off + 4, 8);
			break;
		case NVME_NIDT_NGUID:
			assert_int_equal(d->nidl, NVME_NIDL_NGUID);
			assert_false(ids->nguid);
			ids->nguid = true;
			memcpy(ids->nguid_v, buf + off + 4, 16);
			break;
		case NVME_NIDT_UUID:
			assert_int_equal(d->nidl, NVME_NIDL_UUID);
			ids->uuid = true;
			break;
		case NVME_NIDT_CSI:
			assert_int_equal(d->nidl, NVME_NIDL_CSI);
			ids->csi = true;
			ids->csi_v = buf[off + 4];
			break;
		default:
			fail_msg("unknown NIDT %u at offset %zu", d->nidt, off);
		}
		off += 4 + d->nidl;
	}
	/* what follows the last descriptor is zero */
	assert_true(host_all_zero(buf + off, NVME_IDENTIFY_DATA_SIZE - off));
}

static void test_identify_ns_desc_list(void **state)
{
	struct host *h = H(state);
	uint8_t buf[NVME_IDENTIFY_DATA_SIZE];
	struct nvme_id_ns ns;
	struct ns_ids a, b;

	assert_ok(host_identify(h, NVME_ID_CNS_NS_DESC_LIST, 5, buf));
	parse_desc_list(buf, &a);
	/* at least one globally unique identifier (Base 2.0 4.5.1) */
	assert_true(a.eui || a.nguid || a.uuid);
	if (a.csi)
		assert_int_equal(a.csi_v, NVME_CSI_NVM);
	/* the same values as in Identify Namespace */
	assert_ok(host_identify(h, NVME_ID_CNS_NS, 5, &ns));
	if (a.eui)
		assert_memory_equal(a.eui64, ns.eui64, 8);
	if (a.nguid)
		assert_memory_equal(a.nguid_v, ns.nguid, 16);

	assert_ok(host_identify(h, NVME_ID_CNS_NS_DESC_LIST, 2, buf));
	parse_desc_list(buf, &b);
	/* unique per namespace */
	if (a.nguid && b.nguid)
		assert_memory_not_equal(a.nguid_v, b.nguid_v, 16);
	if (a.eui && b.eui)
		assert_memory_not_equal(a.eui64, b.eui64, 8);

	/* Stable: asking again gives the same identifiers. */
	assert_ok(host_identify(h, NVME_ID_CNS_NS_DESC_LIST, 5, buf));
	parse_desc_list(buf, &b);
	if (a.nguid)
		assert_memory_equal(a.nguid_v, b.nguid_v, 16);

	assert_sf(host_identify(h, NVME_ID_CNS_NS_DESC_LIST, 0, buf), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_NS);
	assert_sf(host_identify(h, NVME_ID_CNS_NS_DESC_LIST, NVMK_EMU_MAX_NS + 1, buf),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_NS);
}

static void test_identify_invalid_cns(void **state)
{
	struct host *h = H(state);
	uint8_t buf[NVME_IDENTIFY_DATA_SIZE];

	/* reserved CNS values (Base 2.0 Figure 273) */
	assert_sf(host_identify(h, 0x0e, 0, buf), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_identify(h, 0xff, 0, buf), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	/* the controller is still fine */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, buf));
}

/* ---- Features (Base 2.0 5.27.1) ---- */

static void test_feature_num_queues(void **state)
{
	struct host *h = H(state);
	uint32_t dw0 = 0, get = 0;

	/* 65536 queues cannot be asked for (Base 2.0 5.27.1.5) */
	assert_sf(host_set_features(h, NVME_FEAT_NUM_QUEUES, NVME_FEAT_NUMQ(0xffff, 3), NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_set_features(h, NVME_FEAT_NUM_QUEUES, NVME_FEAT_NUMQ(3, 0xffff), NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);

	assert_ok(host_set_num_queues(h, 4, 4, &dw0));
	/* the allocation is what the controller can do: never above its limit */
	assert_true(NVME_FEAT_NUMQ_NSQ(dw0) < 64);
	assert_true(NVME_FEAT_NUMQ_NCQ(dw0) < 64);
	assert_ok(host_get_features(h, NVME_FEAT_NUM_QUEUES, 0, &get));
	assert_int_equal(get, dw0);

	/* After an I/O queue exists: Command Sequence Error. */
	assert_int_equal(host_create_cq(h, 1, 8, -1), 0);
	assert_sf(host_set_num_queues(h, 2, 2, NULL), NVME_SCT_GENERIC, NVME_SC_CMD_SEQ_ERROR);
	assert_ok(host_get_features(h, NVME_FEAT_NUM_QUEUES, 0, &get));
	assert_int_equal(get, dw0);
}

static void test_feature_volatile_write_cache(void **state)
{
	struct host *h = H(state);
	struct nvmk_emu_config cfg;
	struct host *h2;
	uint32_t v = 0;
	int sf;

	assert_ok(host_set_features(h, NVME_FEAT_VOLATILE_WC, 0, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_VOLATILE_WC, 0, &v));
	assert_int_equal(v & NVME_FEAT_VWC_WCE, 0);
	assert_ok(host_set_features(h, NVME_FEAT_VOLATILE_WC, NVME_FEAT_VWC_WCE, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_VOLATILE_WC, 0, &v));
	assert_int_equal(v & NVME_FEAT_VWC_WCE, NVME_FEAT_VWC_WCE);

	/* No cache: Set Features VWC is refused (Base 2.0 5.27.1.4). */
	fixture_config(&cfg, "admin-novwc");
	cfg.no_vwc = true;
	h2 = host_create(&cfg);
	assert_non_null(h2);
	assert_int_equal(host_enable(h2, 8), 0);
	assert_sf(host_set_features(h2, NVME_FEAT_VOLATILE_WC, NVME_FEAT_VWC_WCE, NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	sf = host_get_features(h2, NVME_FEAT_VOLATILE_WC, 0, &v);
	if (sf == 0)
		assert_int_equal(v & NVME_FEAT_VWC_WCE, 0);
	else
		assert_sf(sf, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	host_destroy(h2);
}

static void test_feature_async_event_config(void **state)
{
	struct host *h = H(state);
	uint32_t v = 0;

	assert_ok(host_set_features(h, NVME_FEAT_ASYNC_EVENT, NVME_AEC_NS_ATTR, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_ASYNC_EVENT, 0, &v));
	assert_true(v & NVME_AEC_NS_ATTR);
	assert_ok(host_set_features(h, NVME_FEAT_ASYNC_EVENT, 0, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_ASYNC_EVENT, 0, &v));
	assert_int_equal(v & NVME_AEC_NS_ATTR, 0);
}

static void test_feature_irq_coalescing(void **state)
{
	struct host *h = H(state);
	uint32_t v = 0;

	assert_ok(host_set_features(h, NVME_FEAT_IRQ_COALESCE, (10u << 8) | 5u, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_IRQ_COALESCE, 0, &v));
	assert_int_equal(NVME_FEAT_IRQC_THR(v), 5);
	assert_int_equal(NVME_FEAT_IRQC_TIME(v), 10);
	assert_ok(host_set_features(h, NVME_FEAT_IRQ_COALESCE, 0, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_IRQ_COALESCE, 0, &v));
	assert_int_equal(v & 0xffff, 0);
}

static void test_feature_arbitration(void **state)
{
	struct host *h = H(state);
	uint32_t v = 0;

	/* Arbitration Burst, bits 2:0 (Base 2.0 5.27.1.1) */
	assert_ok(host_set_features(h, NVME_FEAT_ARBITRATION, 3, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_ARBITRATION, 0, &v));
	assert_int_equal(v & 0x7, 3);
	assert_ok(host_set_features(h, NVME_FEAT_ARBITRATION, 7, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_ARBITRATION, 0, &v));
	assert_int_equal(v & 0x7, 7);
}

static void test_feature_keep_alive(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;
	uint32_t v = 0, gran = f->id.kas * 100u;

	if (f->id.kas == 0) {
		/* Keep Alive not supported: the feature is refused */
		assert_sf(host_set_features(h, NVME_FEAT_KATO, 60000, NULL), NVME_SCT_GENERIC,
			  NVME_SC_INVALID_FIELD);
		return;
	}
	assert_ok(host_set_features(h, NVME_FEAT_KATO, 60000, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_KATO, 0, &v));
	/* rounded up to the KAS granularity (Base 2.0 5.27.1.12) */
	assert_true(v >= 60000 && v < 60000 + gran);
	host_sqe(&sqe, NVME_ADM_KEEP_ALIVE, 0);
	assert_ok(host_admin(h, &sqe, NULL));
	assert_ok(host_set_features(h, NVME_FEAT_KATO, 0, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_KATO, 0, &v));
	assert_int_equal(v, 0);
}

/* Base 2.0 3.9: when the Keep Alive Timer expires (no Keep Alive and no
 * traffic) the controller records an error and sets CSTS.CFS; a reset
 * recovers. Only an eventual outcome is checked, with a wide margin. */
static void test_keep_alive_expiry(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	uint32_t kato = f->id.kas * 100u, csts;

	if (f->id.kas == 0)
		skip();
	if (kato < 500)
		kato = 500;
	assert_ok(host_set_features(h, NVME_FEAT_KATO, kato, NULL));
	/* no command from now on: only register reads */
	assert_int_equal(host_wait_csts(h, NVME_CSTS_CFS, NVME_CSTS_CFS, 2 * kato + 2000, &csts),
			 0);
	assert_int_equal(host_disable(h), 0);
	host_wait_csts(h, NVME_CSTS_CFS, 0, host_rdy_timeout_ms(h), NULL);
	assert_int_equal(host_enable(h, 8), 0);
	/* the timer is off again after the reset (KATO default 0 on PCIe) */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &f->id));
	{
		uint32_t v = 1;

		assert_ok(host_get_features(h, NVME_FEAT_KATO, 0, &v));
		assert_int_equal(v, 0);
	}
}

static void test_feature_host_identifier(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	uint8_t id8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[16];
	uint8_t id16[16] = {0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xaf};
	struct nvme_sqe sqe;

	/* 64-bit form (Base 2.0 5.27.1.25): data buffer, EXHID = 0 */
	host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_HOST_ID;
	assert_ok(host_admin_data(h, &sqe, id8, 8, true, NULL));
	host_sqe(&sqe, NVME_ADM_GET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_HOST_ID;
	memset(got, 0, sizeof(got));
	assert_ok(host_admin_data(h, &sqe, got, 8, false, NULL));
	assert_memory_equal(got, id8, 8);

	/* 128-bit form: only if the controller says it supports it (CTRATT
	 * bit 0); a size it does not support is Invalid Field in Command
	 * (Base 2.0 5.27.1.25) */
	if (!(f->id.ctratt & 1)) {
		host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
		sqe.cdw10 = NVME_FEAT_HOST_ID;
		sqe.cdw11 = NVME_FEAT_HOSTID_EXHID;
		assert_sf(host_admin_data(h, &sqe, id16, 16, true, NULL), NVME_SCT_GENERIC,
			  NVME_SC_INVALID_FIELD);
		return;
	}
	host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_HOST_ID;
	sqe.cdw11 = NVME_FEAT_HOSTID_EXHID;
	assert_ok(host_admin_data(h, &sqe, id16, 16, true, NULL));
	host_sqe(&sqe, NVME_ADM_GET_FEATURES, 0);
	sqe.cdw10 = NVME_FEAT_HOST_ID;
	sqe.cdw11 = NVME_FEAT_HOSTID_EXHID;
	memset(got, 0, sizeof(got));
	assert_ok(host_admin_data(h, &sqe, got, 16, false, NULL));
	assert_memory_equal(got, id16, 16);
}

static void test_feature_invalid_fid(void **state)
{
	struct host *h = H(state);
	uint32_t v;

	assert_sf(host_get_features(h, 0x00, 0, &v), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_set_features(h, 0x00, 0, &v), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	assert_sf(host_get_features(h, 0x5a, 0, &v), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

/* Get Features SEL (Base 2.0 5.15.1, Figure 193) and Set Features SV, when
 * ONCS says Save/Select is supported. */
static int get_feature_sel(struct host *h, uint8_t fid, unsigned sel, uint32_t *dw0)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_GET_FEATURES, 0);
	sqe.cdw10 = fid | (sel << 8);
	sf = host_admin(h, &sqe, &cqe);
	*dw0 = cqe.dw0;
	return sf;
}

static void test_feature_select_and_save(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;
	uint32_t cur, dflt, saved, caps;

	if (!(f->id.oncs & NVME_ONCS_SAVE_SELECT))
		skip();
	assert_ok(host_set_features(h, NVME_FEAT_ARBITRATION, 3, NULL));
	assert_ok(get_feature_sel(h, NVME_FEAT_ARBITRATION, 0, &cur));
	assert_ok(get_feature_sel(h, NVME_FEAT_ARBITRATION, 1, &dflt));
	assert_ok(get_feature_sel(h, NVME_FEAT_ARBITRATION, 2, &saved));
	assert_ok(get_feature_sel(h, NVME_FEAT_ARBITRATION, 3, &caps));
	assert_int_equal(cur & 7, 3);
	/* the Arbitration feature is changeable (it just was changed) */
	assert_true(caps & (1u << 2));
	if (!(caps & 1u)) {
		/* not saveable: "saved" reads the default, and saving is
		 * refused with Feature Identifier Not Saveable */
		assert_int_equal(saved, dflt);
		host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
		sqe.cdw10 = NVME_FEAT_ARBITRATION | NVME_FEAT_CDW10_SV;
		sqe.cdw11 = 3;
		assert_sf(host_admin(h, &sqe, NULL), NVME_SCT_CMD_SPECIFIC,
			  NVME_SC_FEATURE_NOT_SAVEABLE);
	}
	/* SEL 100b..111b are reserved */
	assert_sf(get_feature_sel(h, NVME_FEAT_ARBITRATION, 4, &cur), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_FIELD);
}

/* Power Management (02h) is mandatory: PS within NPSS (Base 2.0 5.27.1.2). */
static void test_feature_power_management(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	uint32_t v = 0xff;

	assert_ok(host_set_features(h, NVME_FEAT_POWER_MGMT, 0, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_POWER_MGMT, 0, &v));
	assert_int_equal(v & 0x1f, 0);
	assert_sf(host_set_features(h, NVME_FEAT_POWER_MGMT, f->id.npss + 1u, NULL),
		  NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
}

/* Temperature Threshold (04h) is mandatory: over and under thresholds of
 * the composite temperature are kept apart (Base 2.0 5.27.1.3). */
static void test_feature_temperature_threshold(void **state)
{
	struct host *h = H(state);
	const uint32_t over = 0, under = 1u << 20;
	uint32_t v = 0;

	assert_ok(host_set_features(h, NVME_FEAT_TEMP_THRESH, over | 350, NULL));
	assert_ok(host_set_features(h, NVME_FEAT_TEMP_THRESH, under | 250, NULL));
	assert_ok(host_get_features(h, NVME_FEAT_TEMP_THRESH, over, &v));
	assert_int_equal(v & 0xffff, 350);
	assert_ok(host_get_features(h, NVME_FEAT_TEMP_THRESH, under, &v));
	assert_int_equal(v & 0xffff, 250);
}

/* Firmware Slot Information (LID 03h) is mandatory, and FRMW must give 1 to
 * 7 slots; the active slot's revision is Identify FR (Base 2.0 5.16.1.4). */
static void test_firmware_slot_log(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	uint8_t log[512];
	unsigned slots = (f->id.frmw >> 1) & 0x7, afi;

	assert_true(slots >= 1 && slots <= 7);
	assert_ok(host_get_log(h, NVME_LOG_FW_SLOT, NVME_NSID_ALL, log, sizeof(log), false));
	afi = log[0] & 0x7;
	assert_true(afi >= 1 && afi <= slots);
	assert_memory_equal(log + 8 * afi, f->id.fr, 8);
}

/* Optional admin commands answer as OACS says: not offered -> Invalid
 * Command Opcode (Base 2.0 Figure 275 OACS, Figure 138). */
static void test_optional_admin_opcodes(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	static const struct {
		uint16_t bit;
		uint8_t opc;
	} opt[] = {
	    {NVME_OACS_SECURITY, NVME_ADM_SECURITY_SEND},
	    {NVME_OACS_SECURITY, NVME_ADM_SECURITY_RECV},
	    {NVME_OACS_FORMAT, NVME_ADM_FORMAT_NVM},
	    {NVME_OACS_FW, NVME_ADM_FW_COMMIT},
	    {NVME_OACS_FW, NVME_ADM_FW_DOWNLOAD},
	    {NVME_OACS_NS_MGMT, NVME_ADM_NS_MGMT},
	    {NVME_OACS_NS_MGMT, NVME_ADM_NS_ATTACH},
	    {NVME_OACS_SELF_TEST, NVME_ADM_DEV_SELF_TEST},
	    {NVME_OACS_DIRECTIVES, NVME_ADM_DIRECTIVE_SEND},
	    {NVME_OACS_DIRECTIVES, NVME_ADM_DIRECTIVE_RECV},
	    {1u << 7, NVME_ADM_VIRT_MGMT},
	};
	struct nvme_sqe sqe;
	unsigned i;

	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		if (f->id.oacs & opt[i].bit)
			continue;
		host_sqe(&sqe, opt[i].opc, 0);
		if (SF_CODE(host_admin(h, &sqe, NULL)) !=
		    NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE))
			fail_msg("admin opcode 0x%02x: OACS bit 0x%x is clear but the command "
				 "is not Invalid Command Opcode",
				 opt[i].opc, opt[i].bit);
	}
}

/* ---- Queue management (Base 2.0 5.3 - 5.6) ---- */

static int create_cq_raw(struct host *h, uint16_t qid, uint16_t qsize0, uint32_t cdw11)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_ADM_CREATE_CQ, 0);
	sqe.prp1 = host_page_alloc(h->arena, 16, 1); /* big enough for 1024 entries */
	sqe.cdw10 = NVME_CREATE_Q_CDW10(qid, qsize0);
	sqe.cdw11 = cdw11;
	return host_admin(h, &sqe, NULL);
}

static int create_sq_raw(struct host *h, uint16_t qid, uint16_t qsize0, uint16_t cqid)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_ADM_CREATE_SQ, 0);
	sqe.prp1 = host_page_alloc(h->arena, 16, 1);
	sqe.cdw10 = NVME_CREATE_Q_CDW10(qid, qsize0);
	sqe.cdw11 = NVME_SQ_FLAGS_PC | ((uint32_t)cqid << 16);
	return host_admin(h, &sqe, NULL);
}

static void test_create_queue_errors(void **state)
{
	struct host *h = H(state);
	uint32_t dw0 = 0, pc = NVME_CQ_FLAGS_PC;
	uint16_t nsqa, ncqa;

	assert_ok(host_set_num_queues(h, 4, 4, &dw0));
	nsqa = NVME_FEAT_NUMQ_NSQ(dw0) + 1;
	ncqa = NVME_FEAT_NUMQ_NCQ(dw0) + 1;
	assert_true(nsqa >= 2 && ncqa >= 2);

	/* Invalid Queue Identifier: 0, above the allocation, FFFFh */
	assert_sf(create_cq_raw(h, 0, 7, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(create_cq_raw(h, ncqa + 1, 7, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(create_cq_raw(h, 0xffff, 7, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	/* Invalid Queue Size: 1 entry (QSIZE 0), more than MQES + 1 */
	assert_sf(create_cq_raw(h, 1, 0, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QUEUE_SIZE);
	assert_sf(create_cq_raw(h, 1, FIX_MQES + 1, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QUEUE_SIZE);
	/* Invalid Interrupt Vector: beyond the MSI-X table */
	assert_sf(create_cq_raw(h, 1, 7, pc | NVME_CQ_FLAGS_IEN | (65u << 16)),
		  NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_VECTOR);
	/* CAP.CQR: queues must be physically contiguous (Base 2.0 5.4) */
	if (NVME_CAP_CQR(h->cap))
		assert_sf(create_cq_raw(h, 1, 7, 0), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);

	/* The largest legal queue works; then the QID is in use. */
	assert_ok(create_cq_raw(h, 2, FIX_MQES, pc));
	assert_int_equal(host_create_cq(h, 1, 8, 1), 0);
	assert_sf(create_cq_raw(h, 1, 7, pc), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);

	/* SQ: Completion Queue Invalid for the admin CQ or a CQ that does not exist */
	assert_sf(create_sq_raw(h, 1, 7, 0), NVME_SCT_CMD_SPECIFIC, NVME_SC_CQ_INVALID);
	if (ncqa >= 3)
		assert_sf(create_sq_raw(h, 1, 7, 3), NVME_SCT_CMD_SPECIFIC, NVME_SC_CQ_INVALID);
	assert_sf(create_sq_raw(h, 0, 7, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(create_sq_raw(h, nsqa + 1, 7, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(create_sq_raw(h, 1, 0, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QUEUE_SIZE);
	assert_sf(create_sq_raw(h, 1, FIX_MQES + 1, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QUEUE_SIZE);
	assert_int_equal(host_create_sq(h, 1, 1, 8), 0);
	assert_sf(create_sq_raw(h, 1, 7, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	/* two SQs may share one CQ */
	assert_ok(create_sq_raw(h, 2, 7, 1));
}

static void test_delete_queue_errors(void **state)
{
	struct host *h = H(state);

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	/* Invalid Queue Deletion: a CQ with an SQ still attached (5.5) */
	assert_sf(host_delete_cq(h, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_QUEUE_DELETION);
	/* the admin queue and queues that do not exist: Invalid Queue Identifier */
	assert_sf(host_delete_sq(h, 0), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(host_delete_cq(h, 0), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(host_delete_sq(h, 3), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(host_delete_cq(h, 3), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_sf(host_delete_sq(h, 0xffff), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_ok(host_delete_sq(h, 1));
	assert_sf(host_delete_sq(h, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	assert_ok(host_delete_cq(h, 1));
	assert_sf(host_delete_cq(h, 1), NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID);
	/* and the IDs can be used again */
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
}

/* Base 2.0 5.6: deleting an SQ aborts its outstanding commands with Command
 * Aborted due to SQ Deletion, posted before the Delete completes. */
static void test_sq_delete_aborts_commands(void **state)
{
	struct host *h = H(state);
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVME_CMD_READ};
	uint64_t buf, before;
	int cid[2], i, found = 0;

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	assert_true(nvmk_emu_fault_add(h->emu, &f) >= 0);
	buf = host_page_alloc(h->arena, 1, 1);
	before = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ);
	for (i = 0; i < 2; i++) {
		host_sqe(&sqe, NVME_CMD_READ, 5);
		sqe.prp1 = buf;
		cid[i] = host_submit(h, 1, &sqe);
		assert_true(cid[i] >= 0);
	}
	wait_fetched(h, false, NVME_CMD_READ, before, 2);
	/* hung: nothing completes by itself */
	assert_int_equal(host_wait(h, 1, (uint16_t)cid[0], NULL, HOST_QUIET_MS), -ETIMEDOUT);

	assert_ok(host_delete_sq(h, 1));
	for (i = 0; i < 2; i++) {
		assert_int_equal(host_cq_next(h, 1, &cqe, 100), 0);
		assert_int_equal(cqe.sqid, 1);
		assert_true(cqe.cid == cid[0] || cqe.cid == cid[1]);
		found |= cqe.cid == cid[0] ? 1 : 2;
		assert_sf(NVME_CQE_SF(cqe.status), NVME_SCT_GENERIC, NVME_SC_ABORT_SQ_DELETED);
	}
	assert_int_equal(found, 3);
	assert_ok(host_delete_cq(h, 1));
	nvmk_emu_fault_clear(h->emu);
}

/* ---- Get Log Page (Base 2.0 5.16) ---- */

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void test_log_pages(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	size_t elen = ((size_t)f->id.elpe + 1) * sizeof(struct nvme_error_log);
	struct nvme_error_log *err = calloc(1, elen);
	struct nvme_smart_log smart, smart2;
	struct nvme_changed_ns_log *chg = calloc(1, sizeof(*chg));
	struct nvme_sqe sqe;
	uint8_t tmp[512];
	uint64_t buf;
	unsigned t, i;
	int cid, sf;

	assert_non_null(err);
	assert_non_null(chg);
	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	buf = host_page_alloc(h->arena, 1, 1);

	/* SMART / Health: plausible values, read counters move with reads */
	assert_ok(host_get_log(h, NVME_LOG_SMART, NVME_NSID_ALL, &smart, sizeof(smart), false));
	t = smart.temperature[0] | smart.temperature[1] << 8;
	assert_true(t > 200 && t < 400); /* Kelvin */
	assert_true(smart.avail_spare <= 100);
	for (i = 0; i < 3; i++)
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 5, i, 8, 0, buf, 4096, NULL));
	assert_ok(host_get_log(h, NVME_LOG_SMART, NVME_NSID_ALL, &smart2, sizeof(smart2), false));
	assert_int_equal(le64(smart2.host_reads) - le64(smart.host_reads), 3);
	assert_true(le64(smart2.data_units_read) >= 1);

	/* Changed Namespace List: nothing changed yet */
	memset(chg, 0xa5, sizeof(*chg));
	assert_ok(host_get_log(h, NVME_LOG_CHANGED_NS, NVME_NSID_ALL, chg, sizeof(*chg), false));
	assert_true(host_all_zero(chg, sizeof(*chg)));

	/* Error Information: provoke an error on qid 1, then read the log */
	host_sqe(&sqe, NVME_CMD_READ, 3); /* inactive namespace */
	sqe.prp1 = buf;
	cid = host_submit(h, 1, &sqe);
	assert_true(cid >= 0);
	assert_sf(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_NS);
	assert_ok(host_get_log(h, NVME_LOG_ERROR, NVME_NSID_ALL, err, elen, false));
	if (err[0].error_count) {
		/* newest first: it is ours (Base 2.0 5.16.1.2) */
		assert_int_equal(err[0].sqid, 1);
		assert_int_equal(err[0].cid, cid);
		assert_int_equal(SF_CODE(NVME_CQE_SF(err[0].status)),
				 NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_NS));
		for (i = 1; i < f->id.elpe + 1u; i++)
			if (err[i].error_count)
				assert_true(err[i].error_count < err[i - 1].error_count);
	}

	/* A log page that does not exist (reserved LID): Invalid Log Page */
	sf = host_get_log(h, 0x60, NVME_NSID_ALL, tmp, sizeof(tmp), false);
	assert_sf(sf, NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_LOG_PAGE);
	sf = host_get_log(h, 0xbf, NVME_NSID_ALL, tmp, sizeof(tmp), false);
	assert_sf(sf, NVME_SCT_CMD_SPECIFIC, NVME_SC_INVALID_LOG_PAGE);
	free(err);
	free(chg);
}

/* ---- Asynchronous Event Request (Base 2.0 5.2) ---- */

static void test_aer_limit(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;
	int cid[32], extra;
	unsigned i, n = f->id.aerl + 1u;

	assert_true(n <= 32);
	for (i = 0; i < n; i++) {
		host_sqe(&sqe, NVME_ADM_ASYNC_EVENT, 0);
		cid[i] = host_submit(h, 0, &sqe);
		assert_true(cid[i] >= 0);
	}
	/* AERL + 1 may be outstanding; one more is refused */
	host_sqe(&sqe, NVME_ADM_ASYNC_EVENT, 0);
	extra = host_submit(h, 0, &sqe);
	assert_true(extra >= 0);
	assert_sf(host_wait(h, 0, (uint16_t)extra, NULL, HOST_TIMEOUT_MS), NVME_SCT_CMD_SPECIFIC,
		  NVME_SC_AER_LIMIT);
	/* the earlier ones are still outstanding, and other commands work */
	assert_int_equal(host_wait(h, 0, (uint16_t)cid[0], NULL, 50), -ETIMEDOUT);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &f->id));
}

/* ---- Abort (Base 2.0 5.1) ---- */

static int send_abort(struct host *h, uint16_t sqid, uint16_t cid, uint32_t *dw0)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_ABORT, 0);
	sqe.cdw10 = NVME_ABORT_CDW10(sqid, cid);
	sf = host_admin(h, &sqe, &cqe);
	if (dw0)
		*dw0 = cqe.dw0;
	return sf;
}

static void test_abort_hung_command(void **state)
{
	struct host *h = H(state);
	struct nvmk_emu_fault f = {
	    .kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVME_CMD_READ, .count = 1};
	struct nvme_sqe sqe;
	uint64_t buf, before;
	uint32_t dw0 = 0;
	int cid, rule;

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	rule = nvmk_emu_fault_add(h->emu, &f);
	assert_true(rule >= 0);
	buf = host_page_alloc(h->arena, 1, 1);
	before = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ);
	host_sqe(&sqe, NVME_CMD_READ, 5);
	sqe.prp1 = buf;
	cid = host_submit(h, 1, &sqe);
	assert_true(cid >= 0);
	wait_fetched(h, false, NVME_CMD_READ, before, 1);
	assert_int_equal(host_wait(h, 1, (uint16_t)cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);

	assert_ok(send_abort(h, 1, (uint16_t)cid, &dw0));
	assert_int_equal(dw0 & NVME_ABORT_DW0_NOT_ABORTED, 0);
	assert_sf(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_GENERIC,
		  NVME_SC_ABORT_REQ);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, rule), 1);

	/* A CID that is not outstanding: success, "not aborted" */
	assert_ok(send_abort(h, 1, 0x4242, &dw0));
	assert_int_equal(dw0 & NVME_ABORT_DW0_NOT_ABORTED, NVME_ABORT_DW0_NOT_ABORTED);
	/* the queue works afterwards */
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 5, 0, 1, 0, buf, 512, NULL));
}

/* ACL + 1 Abort commands may be outstanding; the next one gets Abort
 * Command Limit Exceeded (Base 2.0 5.1). Aborts are kept outstanding by a
 * HANG rule on the Abort opcode. */
static void test_abort_limit(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	unsigned n = f->id.acl + 1u, i;
	struct nvmk_emu_fault rule = {
	    .kind = NVMK_FAULT_HANG, .qid = 0, .opcode = NVME_ADM_ABORT, .count = n};
	struct nvme_sqe sqe;
	uint64_t before;
	int cid;

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	assert_true(nvmk_emu_fault_add(h->emu, &rule) >= 0);
	before = nvmk_emu_cmd_count(h->emu, true, NVME_ADM_ABORT);
	for (i = 0; i < n; i++) {
		host_sqe(&sqe, NVME_ADM_ABORT, 0);
		sqe.cdw10 = NVME_ABORT_CDW10(1, 0x100 + i);
		assert_true(host_submit(h, 0, &sqe) >= 0);
	}
	wait_fetched(h, true, NVME_ADM_ABORT, before, n);
	host_sqe(&sqe, NVME_ADM_ABORT, 0);
	sqe.cdw10 = NVME_ABORT_CDW10(1, 0x200);
	cid = host_submit(h, 0, &sqe);
	assert_true(cid >= 0);
	assert_sf(host_wait(h, 0, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_CMD_SPECIFIC,
		  NVME_SC_ABORT_LIMIT);
}

/* ---- Doorbell Buffer Config (Base 2.0 5.8) ---- */

static void dbbuf_io(struct host *h, unsigned rounds)
{
	struct host_buf b;
	unsigned i;

	assert_int_equal(host_buf_alloc(h, &b, 8192), 0);
	for (i = 0; i < rounds; i++) {
		host_fill(b.va, 4096, 1000 + i);
		assert_ok(host_rw(h, 1, NVME_CMD_WRITE, 5, i * 8, 8, 0, b.iova, 4096, NULL));
	}
	for (i = 0; i < rounds; i++) {
		memset(b.va, 0, 4096);
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 5, i * 8, 8, 0, b.iova, 4096, NULL));
		assert_int_equal(host_check_fill(b.va, 4096, 1000 + i), -1);
	}
	host_buf_free(h, &b);
}

static void test_dbbuf_shadow_only(void **state)
{
	struct host *h = H(state);

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_ok(host_dbbuf_config(h, HOST_DB_SHADOW_ONLY));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	h->mmio_doorbell_writes = 0;
	dbbuf_io(h, 20); /* wraps the 8-entry queue several times */
	assert_int_equal(h->mmio_doorbell_writes, 0);
	/* the admin queue still works alongside */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &((struct fix *)*state)->id));
	/* a queue created later starts from a zero shadow value */
	assert_int_equal(host_create_qpair(h, 2, 4, -1), 0);
	{
		struct host_buf b;

		assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
		assert_ok(host_rw(h, 2, NVME_CMD_READ, 5, 0, 1, 0, b.iova, 512, NULL));
		host_buf_free(h, &b);
	}
	assert_int_equal(h->mmio_doorbell_writes, 0);
}

/* The protocol as written: shadow always, MMIO only when EventIdx asks. */
static void test_dbbuf_eventidx(void **state)
{
	struct host *h = H(state);

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_ok(host_dbbuf_config(h, HOST_DB_EVENTIDX));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	dbbuf_io(h, 20);
	print_message("eventidx mode: %llu MMIO doorbell writes for 80 doorbells\n",
		      (unsigned long long)h->mmio_doorbell_writes);
	/* a Controller Reset drops the configuration: plain doorbells work */
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	dbbuf_io(h, 3);
}

static void test_dbbuf_errors(void **state)
{
	struct host *h = H(state);
	struct nvmk_emu_config cfg;
	struct nvme_sqe sqe;
	struct host *h2;
	uint64_t a = host_page_alloc(h->arena, 1, 1), b = host_page_alloc(h->arena, 1, 1);

	/* both buffers must be memory page aligned */
	host_sqe(&sqe, NVME_ADM_DBBUF_CONFIG, 0);
	sqe.prp1 = a + 64;
	sqe.prp2 = b;
	assert_sf(host_admin(h, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
	host_sqe(&sqe, NVME_ADM_DBBUF_CONFIG, 0);
	sqe.prp1 = a;
	sqe.prp2 = b + 8;
	assert_sf(host_admin(h, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);

	/* not offered: the opcode is not supported (OACS bit 8 clear) */
	fixture_config(&cfg, "admin-nodbbuf");
	cfg.no_dbbuf = true;
	h2 = host_create(&cfg);
	assert_non_null(h2);
	assert_int_equal(host_enable(h2, 8), 0);
	assert_sf(host_dbbuf_config(h2, HOST_DB_SHADOW_MMIO), NVME_SCT_GENERIC,
		  NVME_SC_INVALID_OPCODE);
	host_destroy(h2);
}

/* ---- Invalid doorbell writes (Base 2.0 3.1.3.21/22, 5.2 Figure 147) ---- */

/* Post an AER, do @poke, expect an Error event with @info and the Error
 * Information log page, then read that log (RAE = 0) to unmask the type. */
static void expect_error_event(struct host *h, void (*poke)(struct host *), uint8_t info,
			       const char *what)
{
	int sf;

	struct nvme_cqe cqe;
	uint8_t log[64 * 4];
	uint16_t cid;
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_ADM_ASYNC_EVENT, 0);
	cid = (uint16_t)host_submit(h, 0, &sqe);
	poke(h);
	sf = host_wait(h, 0, cid, &cqe, 2000);
	if (sf < 0)
		fail_msg("%s: no Error event (AER still outstanding)", what);
	assert_ok(sf);
	assert_int_equal(NVME_AER_DW0_TYPE(cqe.dw0), NVME_AER_TYPE_ERROR);
	assert_int_equal(NVME_AER_DW0_INFO(cqe.dw0), info);
	assert_int_equal(NVME_AER_DW0_LID(cqe.dw0), NVME_LOG_ERROR);
	assert_ok(host_get_log(h, NVME_LOG_ERROR, NVME_NSID_ALL, log, 64, false));
}

static void poke_bad_sq_tail(struct host *h)
{
	/* SQ 1 has 8 entries: a tail of 200 is not a valid value */
	host_wr32(h, nvme_sq_doorbell(1, h->dstrd), 200);
}

static void poke_bad_cq_head(struct host *h)
{
	host_wr32(h, nvme_cq_doorbell(2, h->dstrd), 9);
}

static void poke_missing_queue(struct host *h)
{
	/* no SQ 3 exists: a write to an invalid doorbell register */
	host_wr32(h, nvme_sq_doorbell(3, h->dstrd), 1);
}

static void test_invalid_doorbell_events(void **state)
{
	struct host *h = H(state);
	struct nvme_id_ctrl id;

	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	assert_int_equal(host_create_qpair(h, 2, 8, -1), 0);
	expect_error_event(h, poke_bad_sq_tail, 0x01,
			   "SQ tail beyond the queue"); /* Invalid Doorbell Write Value */
	expect_error_event(h, poke_bad_cq_head, 0x01, "CQ head beyond the queue");
	expect_error_event(h, poke_missing_queue, 0x00,
			   "doorbell of a queue never created"); /* Write to Invalid Doorbell */
	/* the controller is still alive and the admin queue works */
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
}

/* Admin data pointers follow the same PRP rules: an Identify buffer that
 * starts mid-page needs PRP2 for its second half (Base 2.0 4.1.1). */
static void test_identify_unaligned_buffer(void **state)
{
	struct fix *f = *state;
	struct host *h = f->h;
	struct nvme_sqe sqe;
	uint64_t buf = host_page_alloc(h->arena, 3, 1);
	uint8_t *va = host_va(h->arena, buf);

	memset(va, 0xcc, 3 * HOST_PAGE);
	host_sqe(&sqe, NVME_ADM_IDENTIFY, 0);
	sqe.cdw10 = NVME_ID_CNS_CTRL;
	sqe.prp1 = buf + 0x800;
	sqe.prp2 = buf + HOST_PAGE;
	assert_ok(host_admin(h, &sqe, NULL));
	assert_memory_equal(va + 0x800, &f->id, sizeof(f->id));
	/* nothing written outside the 4 KiB */
	assert_int_equal(va[0x7ff], 0xcc);
	assert_int_equal(va[0x800 + 4096], 0xcc);
}

/* ---- Opcodes ---- */

static void test_invalid_opcodes(void **state)
{
	struct host *h = H(state);
	struct nvme_sqe sqe;
	static const uint8_t admin_bad[] = {0x03, 0x07, 0x0b, 0x3f, 0xc3, 0xff};
	static const uint8_t io_bad[] = {0x03, 0x07, 0x7e, 0xff};
	unsigned i;

	for (i = 0; i < sizeof(admin_bad); i++) {
		host_sqe(&sqe, admin_bad[i], 0);
		assert_sf(host_admin(h, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	}
	assert_ok(host_set_num_queues(h, 4, 4, NULL));
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	for (i = 0; i < sizeof(io_bad); i++) {
		host_sqe(&sqe, io_bad[i], 5);
		assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	}
	/* an admin opcode on an I/O queue: 06h (Identify) is reserved in NVM-CS 1.0 */
	host_sqe(&sqe, NVME_ADM_IDENTIFY, 5);
	assert_sf(host_cmd(h, 1, &sqe, NULL), NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	/* the queues keep working */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &((struct fix *)*state)->id));
}

/* The smallest admin queue (2 entries) wraps many times (phase flips). */
static void test_admin_queue_wrap(void **state)
{
	struct host *h = H(state);
	struct nvme_id_ctrl id;
	unsigned i;

	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_enable(h, 2), 0);
	for (i = 0; i < 9; i++) {
		memset(&id, 0, sizeof(id));
		assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
		assert_padded(id.sn, sizeof(id.sn), "NVMKTEST0001");
	}
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_enable(h, 3), 0); /* odd size too */
	for (i = 0; i < 10; i++)
		assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_identify_ctrl),
	    T(test_identify_ns),
	    T(test_identify_active_list),
	    T(test_identify_ns_desc_list),
	    T(test_identify_invalid_cns),
	    T(test_feature_num_queues),
	    T(test_feature_volatile_write_cache),
	    T(test_feature_async_event_config),
	    T(test_feature_irq_coalescing),
	    T(test_feature_arbitration),
	    T(test_feature_keep_alive),
	    T(test_keep_alive_expiry),
	    T(test_feature_host_identifier),
	    T(test_feature_invalid_fid),
	    T(test_feature_select_and_save),
	    T(test_feature_power_management),
	    T(test_feature_temperature_threshold),
	    T(test_firmware_slot_log),
	    T(test_optional_admin_opcodes),
	    T(test_create_queue_errors),
	    T(test_delete_queue_errors),
	    T(test_sq_delete_aborts_commands),
	    T(test_log_pages),
	    T(test_aer_limit),
	    T(test_abort_hung_command),
	    T(test_abort_limit),
	    T(test_dbbuf_shadow_only),
	    T(test_dbbuf_eventidx),
	    T(test_dbbuf_errors),
	    T(test_invalid_opcodes),
	    T(test_invalid_doorbell_events),
	    T(test_identify_unaligned_buffer),
	    T(test_admin_queue_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
