// SPDX-License-Identifier: MIT
/*
 * Manager tests: emulated devices used from several client threads, load
 * once, failure isolation, shutdown, status (struct and JSON), private pool
 * per configuration, and save/restore of all devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "manager/mgr_state.pb-c.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/kernel_ns.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"

#define NS_BLOCKS (1u << 14) /* 8 MiB of 512 B blocks per device */
#define BLK	  512u

/* ---- log capture ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[128 * 1024];

static void log_sink(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	pthread_mutex_lock(&log_lock);
	size_t n = strlen(log_buf), l = strlen(line);
	if (n + l + 2 < sizeof(log_buf)) {
		memcpy(log_buf + n, line, l);
		log_buf[n + l] = '\n';
		log_buf[n + l + 1] = 0;
	}
	pthread_mutex_unlock(&log_lock);
	if (getenv("NVMK_TEST_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

static int setup(void **state)
{
	(void)state;
	pthread_mutex_lock(&log_lock);
	log_buf[0] = 0;
	pthread_mutex_unlock(&log_lock);
	nvmk_log_set_sink(log_sink, NULL);
	nvmk_log_set_level(NVMK_LOG_INFO);
	return 0;
}

static bool log_has(const char *s)
{
	pthread_mutex_lock(&log_lock);
	bool r = strstr(log_buf, s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

/* ---- fake environment ---- */

static const char *env_keep_alive, *env_pool;

static const char *fake_getenv(const char *name)
{
	if (strcmp(name, "OPENHCL_NVME_KEEP_ALIVE") == 0)
		return env_keep_alive;
	if (strcmp(name, "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG") == 0)
		return env_pool;
	return NULL;
}

static void load_config(struct nvmk_config *cfg, const char *keep_alive, const char *pool)
{
	struct nvmk_config_facts facts = {
	    .host_keep_alive = true, .pool_present = pool != NULL, .cpus = 2};

	env_keep_alive = keep_alive;
	env_pool = pool ? pool : "off";
	assert_int_equal(nvmk_config_load(fake_getenv, &facts, cfg), 0);
}

/* ---- devices ---- */

static void emu_spec(struct nvmk_mgr_device_spec *s, const char *id)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->kind = NVMK_MGR_BACKING_EMU;
	nvmk_emu_config_default(&s->emu);
	s->emu.ns[0].nblocks = NS_BLOCKS;
	s->emu.max_io_queues = 8;
	s->emu.msix_vectors = 9;
	s->emu.cap_to = 1; /* 500 ms: a device that never gets ready fails fast */
	s->ctrl_opts.admin_timeout_ms = 2000;
	s->ctrl_opts.io_timeout_ms = 2000;
	s->ctrl_opts.health_check_ms = 20;
	s->ctrl_opts.shutdown_timeout_ms = 1000;
	s->ctrl_opts.max_io_queues = 4;
	/* the emulator loses a shadow tail racing a pending MMIO doorbell of the
	 * same round (see tests/driver/drv_test.h): use doorbell registers */
	s->ctrl_opts.dbbuf = NVMK_DBBUF_OFF;
}

static struct nvmk_mgr *new_mgr(const char *keep_alive, const char *pool)
{
	struct nvmk_config cfg;
	struct nvmk_mgr *mgr = NULL;

	load_config(&cfg, keep_alive, pool);
	assert_int_equal(nvmk_mgr_create(&cfg, NULL, &mgr), 0);
	return mgr;
}

static void add_emu(struct nvmk_mgr *mgr, const char *id)
{
	struct nvmk_mgr_device_spec s;

	emu_spec(&s, id);
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
}

/* Block contents: who wrote it (device, thread, lba, round). */
static void fill(uint8_t *buf, unsigned nblk, unsigned dev, unsigned thr, uint64_t lba,
		 unsigned round)
{
	for (unsigned b = 0; b < nblk; b++)
		for (unsigned i = 0; i < BLK; i += 8) {
			uint64_t v = ((uint64_t)dev << 56) ^ ((uint64_t)thr << 48) ^
				     ((lba + b) << 16) ^ ((uint64_t)round << 8) ^ i;
			memcpy(buf + b * BLK + i, &v, 8);
		}
}

/* ---- parallel clients, load once ---- */

#define NDEV 3
#define NTHR 4
static const char *dev_ids[NDEV] = {"emu0", "emu1", "emu2"};

struct client {
	struct nvmk_mgr *mgr;
	unsigned thr;
	int err;	   /* first failure */
	unsigned verified; /* blocks read back correct */
	struct nvmk_ns *ns[NDEV];
};

static void *client_thread(void *arg)
{
	struct client *c = arg;
	uint8_t *wbuf = malloc(8 * BLK), *rbuf = malloc(8 * BLK);

	for (unsigned d = 0; d < NDEV && !c->err; d++)
		c->err = nvmk_mgr_get_namespace(c->mgr, dev_ids[d], 1, &c->ns[d]);
	for (unsigned round = 0; round < 8 && !c->err; round++)
		for (unsigned d = 0; d < NDEV && !c->err; d++) {
			/* each thread owns a region of each namespace */
			uint64_t lba = (uint64_t)c->thr * 1024 + round * 8;

			fill(wbuf, 8, d, c->thr, lba, round);
			c->err = nvmk_ns_write(c->ns[d], NULL, wbuf, lba, 8);
			if (!c->err)
				c->err = nvmk_ns_read(c->ns[d], NULL, rbuf, lba, 8);
			if (!c->err && memcmp(wbuf, rbuf, 8 * BLK) != 0)
				c->err = -EILSEQ;
			if (!c->err)
				c->verified += 8;
		}
	free(wbuf);
	free(rbuf);
	return NULL;
}

static void test_parallel_clients_load_once(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("disabled", NULL);
	struct client cl[NTHR];
	pthread_t th[NTHR];
	uint64_t ident[NDEV];
	struct nvmk_ns *first[NDEV];

	(void)state;
	for (unsigned d = 0; d < NDEV; d++)
		add_emu(mgr, dev_ids[d]);
	/* nothing is brought up before the first request */
	for (unsigned d = 0; d < NDEV; d++)
		assert_null(nvmk_mgr_device_emu(mgr, dev_ids[d]));
	/* emu0 and emu1 are loaded here; emu2's first load is raced by the clients */
	for (unsigned d = 0; d < NDEV - 1; d++) {
		assert_int_equal(nvmk_mgr_get_namespace(mgr, dev_ids[d], 1, &first[d]), 0);
		ident[d] = nvmk_emu_cmd_count(nvmk_mgr_device_emu(mgr, dev_ids[d]), true,
					      NVME_ADM_IDENTIFY);
		assert_true(ident[d] >= 2); /* controller + namespace */
	}
	for (unsigned t = 0; t < NTHR; t++) {
		cl[t] = (struct client){.mgr = mgr, .thr = t};
		assert_int_equal(pthread_create(&th[t], NULL, client_thread, &cl[t]), 0);
	}
	for (unsigned t = 0; t < NTHR; t++)
		pthread_join(th[t], NULL);
	/* the racing first loads of emu2 brought it up once (same commands as
	 * emu0's single load), and all got one handle */
	first[NDEV - 1] = cl[0].ns[NDEV - 1];
	ident[NDEV - 1] = ident[0];
	for (unsigned t = 0; t < NTHR; t++) {
		assert_int_equal(cl[t].err, 0);
		assert_int_equal(cl[t].verified, 8 * 8 * NDEV);
		for (unsigned d = 0; d < NDEV; d++)
			assert_ptr_equal(cl[t].ns[d], first[d]); /* one shared handle */
	}
	/* loaded once: no further Identify, no reset, for all the gets */
	for (unsigned d = 0; d < NDEV; d++) {
		struct nvmk_emu *emu = nvmk_mgr_device_emu(mgr, dev_ids[d]);

		assert_int_equal(nvmk_emu_cmd_count(emu, true, NVME_ADM_IDENTIFY), ident[d]);
		assert_int_equal(nvmk_emu_reset_count(emu), 0);
	}
	/* every thread's data is still there (no thread overwrote another's) */
	{
		uint8_t *wbuf = malloc(8 * BLK), *rbuf = malloc(8 * BLK);

		for (unsigned t = 0; t < NTHR; t++)
			for (unsigned d = 0; d < NDEV; d++) {
				uint64_t lba = (uint64_t)t * 1024 + 7 * 8;

				fill(wbuf, 8, d, t, lba, 7);
				assert_int_equal(nvmk_ns_read(first[d], NULL, rbuf, lba, 8), 0);
				assert_memory_equal(wbuf, rbuf, 8 * BLK);
			}
		free(wbuf);
		free(rbuf);
	}
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "nope", 1, &first[0]), -ENOENT);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 7, &first[0]), -ENODEV);
	nvmk_mgr_destroy(mgr);
}

/* ---- failure isolation ---- */

struct fault_factory {
	struct nvmk_emu_config cfg;
	struct nvmk_emu_fault fault;
	struct nvmk_emu *emu;
	int calls;
};

static int fault_factory_create(void *ctx, const char *id, bool restoring,
				struct nvmk_backing **out)
{
	struct fault_factory *f = ctx;
	int rc;

	(void)restoring;
	f->calls++;
	f->cfg.name = id;
	rc = nvmk_backing_local_create(&f->cfg, out, &f->emu);
	if (rc == 0 && nvmk_emu_fault_add(f->emu, &f->fault) < 0)
		rc = -EINVAL;
	return rc;
}

struct getter {
	struct nvmk_mgr *mgr;
	const char *id;
	int rc;
	struct nvmk_ns *ns;
};

static void *getter_thread(void *arg)
{
	struct getter *g = arg;

	g->rc = nvmk_mgr_get_namespace(g->mgr, g->id, 1, &g->ns);
	return NULL;
}

static void test_failing_device_isolated(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("disabled", NULL);
	struct nvmk_mgr_device_spec s;
	struct fault_factory ff;
	struct getter g[3];
	pthread_t th[3];
	struct nvmk_ns *ns;
	struct nvmk_mgr_status st;
	uint8_t buf[BLK], rbuf[BLK];

	(void)state;
	add_emu(mgr, "good");
	emu_spec(&s, "never-ready");
	s.emu.rdy_never = true;
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	/* a controller that fails Identify Controller with Internal Error */
	emu_spec(&s, "bad-identify");
	memset(&ff, 0, sizeof(ff));
	ff.cfg = s.emu;
	ff.fault = (struct nvmk_emu_fault){.kind = NVMK_FAULT_STATUS,
					   .qid = 0,
					   .opcode = NVME_ADM_IDENTIFY,
					   .status = NVME_SF(NVME_SCT_GENERIC, 0x06)};
	s.kind = NVMK_MGR_BACKING_FACTORY;
	s.factory.create = fault_factory_create;
	s.factory.ctx = &ff;
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), -EEXIST);

	/* all three at once: the broken ones do not hold the good one back */
	g[0] = (struct getter){.mgr = mgr, .id = "never-ready"};
	g[1] = (struct getter){.mgr = mgr, .id = "bad-identify"};
	g[2] = (struct getter){.mgr = mgr, .id = "good"};
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, getter_thread, &g[i]), 0);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(g[0].rc, -ETIMEDOUT);
	assert_true(g[1].rc < 0);
	assert_int_equal(g[2].rc, 0);
	assert_true(log_has("never-ready"));

	/* every later caller gets the same error; the device is not retried */
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "never-ready", 1, &ns), g[0].rc);
	assert_int_equal(nvmk_mgr_load(mgr, "bad-identify"), g[1].rc);
	assert_int_equal(ff.calls, 1);

	/* the good device works */
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(nvmk_ns_write(g[2].ns, NULL, buf, 3, 1), 0);
	assert_int_equal(nvmk_ns_read(g[2].ns, NULL, rbuf, 3, 1), 0);
	assert_memory_equal(buf, rbuf, BLK);

	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	assert_int_equal(st.ndevices, 3);
	assert_string_equal(st.devices[0].id, "good");
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_READY);
	assert_int_equal(st.devices[1].state, NVMK_MGR_DEV_FAILED);
	assert_int_equal(st.devices[1].err, g[0].rc);
	assert_int_equal(st.devices[2].state, NVMK_MGR_DEV_FAILED);
	assert_int_equal(st.devices[2].err, g[1].rc);
	assert_string_equal(st.devices[2].kind, "local");
	nvmk_mgr_status_free(&st);

	/* a device that fails later (fatal status) is reported and stays alone */
	add_emu(mgr, "dies-later");
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "dies-later", 1, &ns), 0);
	nvmk_emu_set_fatal(nvmk_mgr_device_emu(mgr, "dies-later"));
	for (int i = 0; i < 200; i++) {
		if (nvmk_mgr_get_namespace(mgr, "dies-later", 1, &ns) == -EIO)
			break;
		usleep(10000);
	}
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "dies-later", 1, &ns), -EIO);
	assert_int_equal(nvmk_ns_read(g[2].ns, NULL, rbuf, 3, 1), 0);
	assert_memory_equal(buf, rbuf, BLK);
	assert_int_equal(nvmk_mgr_shutdown(mgr), 0);
	nvmk_mgr_destroy(mgr);
}

/* ---- shutdown ---- */

static void test_shutdown(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("disabled", NULL);
	struct nvmk_mgr_device_spec s;
	struct nvmk_ns *ns;
	struct nvmk_mgr_status st;
	uint8_t buf[BLK];

	(void)state;
	for (unsigned d = 0; d < NDEV; d++)
		add_emu(mgr, dev_ids[d]);
	for (unsigned d = 0; d < 2; d++) { /* emu2 never loaded */
		assert_int_equal(nvmk_mgr_get_namespace(mgr, dev_ids[d], 1, &ns), 0);
		memset(buf, (int)d, sizeof(buf));
		assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0);
		assert_true(nvmk_emu_reg_read32(nvmk_mgr_device_emu(mgr, dev_ids[d]), NVME_REG_CC) &
			    NVME_CC_EN);
	}
	assert_int_equal(nvmk_mgr_shutdown(mgr), 0);
	for (unsigned d = 0; d < 2; d++) {
		struct nvmk_emu *emu = nvmk_mgr_device_emu(mgr, dev_ids[d]);

		assert_non_null(emu);
		assert_int_equal(nvmk_emu_reg_read32(emu, NVME_REG_CC) & NVME_CC_EN, 0);
		/* normal shutdown was asked for before disabling (Base 2.0 3.6.1) */
		assert_int_equal(nvmk_emu_cmd_count(emu, true, NVME_ADM_DELETE_SQ),
				 nvmk_emu_cmd_count(emu, true, NVME_ADM_CREATE_SQ));
	}
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), -ESHUTDOWN);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu2", 1, &ns), -ESHUTDOWN);
	assert_int_equal(nvmk_mgr_load(mgr, "emu1"), -ESHUTDOWN);
	emu_spec(&s, "late");
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), -ESHUTDOWN);
	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	assert_true(st.shutting_down);
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_SHUTDOWN);
	assert_int_equal(st.devices[2].state, NVMK_MGR_DEV_SHUTDOWN);
	assert_int_equal(st.devices[0].nqueues, 0);
	nvmk_mgr_status_free(&st);
	assert_int_equal(nvmk_mgr_shutdown(mgr), 0); /* idempotent */
	nvmk_mgr_destroy(mgr);
}

/* ---- status JSON, pool ---- */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void test_status_json(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("disabled", NULL);
	struct nvmk_ns *ns;
	json_object *root, *devs, *d0, *d1, *qs;
	char *json = NULL;
	uint8_t buf[BLK] = {0};

	(void)state;
	add_emu(mgr, "emu0");
	add_emu(mgr, "emu1");
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, buf, 0, 1), 0);
	assert_int_equal(nvmk_mgr_status_json(mgr, &json), 0);
	root = json_tokener_parse(json);
	assert_non_null(root);
	assert_false(json_object_get_boolean(jget(root, "shutting_down")));
	assert_false(json_object_get_boolean(jget(jget(root, "keep_alive"), "enabled")));
	assert_string_equal(json_object_get_string(jget(jget(root, "keep_alive"), "mode")),
			    "disabled");
	assert_null(jget(root, "pool")); /* no pool configured: null */
	devs = jget(root, "devices");
	assert_int_equal(json_object_array_length(devs), 2);
	d0 = json_object_array_get_idx(devs, 0);
	d1 = json_object_array_get_idx(devs, 1);
	assert_string_equal(json_object_get_string(jget(d0, "id")), "emu0");
	assert_string_equal(json_object_get_string(jget(d0, "state")), "ready");
	assert_string_equal(json_object_get_string(jget(d0, "kind")), "emu");
	assert_int_equal(json_object_get_int(jget(d0, "error")), 0);
	assert_true(json_object_get_int(jget(d0, "io_queues_granted")) >= 1);
	qs = jget(d0, "queues");
	/* this thread's qpair (exclusive: outstanding not read, null) and the
	 * shared one kept for threads that find no queue of their own (0) */
	assert_int_equal(json_object_array_length(qs), 2);
	for (size_t i = 0; i < 2; i++) {
		struct json_object *q = json_object_array_get_idx(qs, i);

		assert_true(json_object_get_int(jget(q, "qid")) >= 1);
		if (json_object_get_boolean(jget(q, "shared")))
			assert_int_equal(json_object_get_int(jget(q, "outstanding")), 0);
		else
			assert_null(jget(q, "outstanding"));
	}
	assert_int_equal(json_object_array_length(jget(d0, "namespaces")), 1);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(jget(d0, "namespaces"), 0)),
			 1);
	assert_string_equal(json_object_get_string(jget(d1, "state")), "registered");
	assert_int_equal(json_object_array_length(jget(d1, "queues")), 0);
	json_object_put(root);
	free(json);
	nvmk_mgr_destroy(mgr);
}

static void test_pool_per_config(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("host,privatepool", "1024");
	struct nvmk_mgr_status st;
	struct nvmk_ns *ns;
	json_object *root, *pool;
	char *json = NULL;
	uint64_t used_before;

	(void)state;
	assert_true(nvmk_mgr_config(mgr)->keep_alive.enabled);
	assert_non_null(nvmk_mgr_pool(mgr));
	add_emu(mgr, "emu0");
	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	assert_true(st.pool_present);
	assert_true(st.pool.total_pages >= 1024);
	used_before = st.pool.used_pages;
	nvmk_mgr_status_free(&st);
	/* the device's queues come from the pool */
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), 0);
	assert_non_null(nvmk_ctrl_get_qpair(nvmk_ns_ctrl(ns)));
	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	assert_true(st.pool.used_pages > used_before);
	nvmk_mgr_status_free(&st);
	assert_int_equal(nvmk_mgr_status_json(mgr, &json), 0);
	root = json_tokener_parse(json);
	pool = jget(root, "pool");
	assert_non_null(pool);
	assert_true(json_object_get_int64(jget(pool, "pages")) >= 1024);
	assert_true(json_object_get_int64(jget(pool, "used_pages")) > 0);
	assert_int_equal(json_object_get_int64(jget(pool, "leaked_pages")), 0);
	json_object_put(root);
	free(json);
	nvmk_mgr_destroy(mgr);

	/* pool off: none */
	mgr = new_mgr("disabled", "off");
	assert_null(nvmk_mgr_pool(mgr));
	nvmk_mgr_destroy(mgr);
}

static void test_create_from_env(void **state)
{
	struct nvmk_mgr_device_spec specs[2];
	struct nvmk_mgr *mgr = NULL;
	struct nvmk_ns *ns;

	(void)state;
	emu_spec(&specs[0], "emu0");
	emu_spec(&specs[1], "emu1");
	/* unset keep-alive is inferred: every backing can hand over, and the pool
	 * exists only after step 1 sized and created it */
	env_keep_alive = NULL;
	env_pool = "512";
	assert_int_equal(nvmk_mgr_create_from_env(fake_getenv, specs, 2, &mgr), 0);
	assert_non_null(nvmk_mgr_pool(mgr));
	assert_string_equal(nvmk_mgr_config(mgr)->keep_alive.mode, "host,privatepool");
	assert_true(nvmk_mgr_config(mgr)->keep_alive.enabled);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu1", 1, &ns), 0);
	nvmk_mgr_destroy(mgr);

	env_pool = "off";
	assert_int_equal(nvmk_mgr_create_from_env(fake_getenv, specs, 2, &mgr), 0);
	assert_null(nvmk_mgr_pool(mgr));
	assert_string_equal(nvmk_mgr_config(mgr)->keep_alive.mode, "host,noprivatepool");
	assert_false(nvmk_mgr_config(mgr)->keep_alive.enabled);
	nvmk_mgr_destroy(mgr);

	/* a factory backing that cannot hand over: "nohost" */
	specs[1].kind = NVMK_MGR_BACKING_FACTORY;
	specs[1].factory.create = fault_factory_create;
	specs[1].factory.keep_alive_capable = false;
	env_pool = "512";
	assert_int_equal(nvmk_mgr_create_from_env(fake_getenv, specs, 2, &mgr), 0);
	assert_string_equal(nvmk_mgr_config(mgr)->keep_alive.mode, "nohost,privatepool");
	assert_false(nvmk_mgr_config(mgr)->keep_alive.enabled);
	nvmk_mgr_destroy(mgr);
}

/* ---- save / restore ---- */

/*
 * A device whose backing moves from the old manager to the new one, as an
 * inherited device fd would across exec: the factory creates it the first
 * time and hands over the taken backing when the successor asks.
 */
struct handover {
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b; /* taken from the predecessor, or NULL */
	struct nvmk_emu *emu;
	int creates;
	int restoring_calls;
};

static int handover_create(void *ctx, const char *id, bool restoring, struct nvmk_backing **out)
{
	struct handover *h = ctx;

	if (restoring)
		h->restoring_calls++;
	if (h->b) {
		*out = h->b;
		h->b = NULL;
		return 0;
	}
	h->creates++;
	h->cfg.name = id;
	return nvmk_backing_local_create(&h->cfg, out, &h->emu);
}

static void handover_spec(struct nvmk_mgr_device_spec *s, const char *id, struct handover *h)
{
	emu_spec(s, id);
	h->cfg = s->emu;
	s->kind = NVMK_MGR_BACKING_FACTORY;
	s->factory.create = handover_create;
	s->factory.ctx = h;
	s->factory.keep_alive_capable = true;
}

#define SR_DEVS 3
#define SR_REQS 24 /* per device: half writes, half reads */
#define SR_NLB	8  /* blocks per request */
static const char *sr_ids[SR_DEVS] = {"nvme-a", "nvme-b", "nvme-c"};

/* Requests are named by a token (their cb_arg), which is what crosses the
 * save: the resolver maps it back. */
struct sr_req {
	unsigned dev;
	unsigned idx;
	bool write;
	uint64_t lba;
	size_t off; /* in the device's client buffer */
	int completions;
	int err;
	bool data_ok;
};

static struct sr_req sr_reqs[SR_DEVS * SR_REQS];
static pthread_mutex_t sr_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *_Atomic sr_buf[SR_DEVS]; /* where each device's client buffer is mapped now */

static void sr_cb(void *arg, const struct nvmk_cpl *cpl)
{
	uintptr_t token = (uintptr_t)arg;
	struct sr_req *r;
	uint8_t *want;

	if (token == 0 || token > SR_DEVS * SR_REQS)
		return;
	r = &sr_reqs[token - 1];
	want = malloc(SR_NLB * BLK);
	pthread_mutex_lock(&sr_lock);
	r->completions++;
	r->err = cpl->err;
	if (!r->write) {
		/* a read sees what the setup wrote there */
		fill(want, SR_NLB, r->dev, 99, r->lba, 0);
		r->data_ok = memcmp(want, sr_buf[r->dev] + r->off, SR_NLB * BLK) == 0;
	}
	pthread_mutex_unlock(&sr_lock);
	free(want);
}

static int sr_resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	if (token == 0 || token > SR_DEVS * SR_REQS)
		return -ENOENT;
	*cb = sr_cb;
	*cb_arg = (void *)(uintptr_t)token;
	return 0;
}

struct sr_client {
	struct nvmk_mgr *mgr;
	unsigned dev;
	uint16_t qid;
	int err;
};

/* Before the save: set up data, then leave SR_REQS requests in flight (the
 * emulator delays them) and stop without processing. */
static void *sr_submit_thread(void *arg)
{
	struct sr_client *c = arg;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_INTERRUPT};
	struct nvmk_dma_buf buf;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	uint8_t *tmp = malloc(SR_NLB * BLK);
	char tag[16];

	c->err = nvmk_mgr_get_namespace(c->mgr, sr_ids[c->dev], 1, &ns);
	snprintf(tag, sizeof(tag), "io%u", c->dev);
	if (!c->err)
		c->err =
		    nvmk_mgr_dma_alloc(c->mgr, sr_ids[c->dev], tag, SR_REQS * SR_NLB * BLK, &buf);
	if (!c->err)
		c->err = nvmk_mgr_create_qpair(c->mgr, sr_ids[c->dev], &qo, &qp);
	if (c->err)
		goto out;
	c->qid = nvmk_qpair_id(qp);
	sr_buf[c->dev] = buf.mem.vaddr;
	for (unsigned i = 0; i < SR_REQS && !c->err; i++) {
		struct sr_req *r = &sr_reqs[c->dev * SR_REQS + i];

		*r = (struct sr_req){.dev = c->dev,
				     .idx = i,
				     .write = i % 2 == 0,
				     .lba = 4096 + (uint64_t)i * SR_NLB,
				     .off = i * SR_NLB * BLK};
		/* what reads must find, written synchronously first */
		fill(tmp, SR_NLB, c->dev, 99, r->lba, 0);
		if (!r->write)
			c->err = nvmk_ns_write(ns, qp, tmp, r->lba, SR_NLB);
	}
	for (unsigned i = 0; i < SR_REQS && !c->err; i++) {
		struct sr_req *r = &sr_reqs[c->dev * SR_REQS + i];
		void *token = (void *)(uintptr_t)(c->dev * SR_REQS + i + 1);

		if (r->write) {
			fill((uint8_t *)buf.mem.vaddr + r->off, SR_NLB, c->dev, 1, r->lba, 1);
			c->err = nvmk_ns_submit_write(ns, qp, &buf, r->off, r->lba, SR_NLB, 0,
						      sr_cb, token);
		} else {
			c->err = nvmk_ns_submit_read(ns, qp, &buf, r->off, r->lba, SR_NLB, 0, sr_cb,
						     token);
		}
	}
out:
	free(tmp);
	return NULL;
}

/* After the restore: take the qpair back, reap every request, check data. */
static void *sr_complete_thread(void *arg)
{
	struct sr_client *c = arg;
	struct nvmk_dma_buf buf;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	uint8_t *want = malloc(SR_NLB * BLK), *got = malloc(SR_NLB * BLK);
	char tag[16];
	unsigned done = 0;

	snprintf(tag, sizeof(tag), "io%u", c->dev);
	c->err = nvmk_mgr_get_namespace(c->mgr, sr_ids[c->dev], 1, &ns);
	if (!c->err)
		c->err = nvmk_mgr_dma_get(c->mgr, sr_ids[c->dev], tag, &buf);
	if (c->err)
		goto out;
	sr_buf[c->dev] = buf.mem.vaddr;
	qp = nvmk_ctrl_restored_qpair(nvmk_ns_ctrl(ns), c->qid);
	if (!qp) {
		c->err = -ENOENT;
		goto out;
	}
	for (int spins = 0; spins < 500; spins++) {
		done = 0;
		pthread_mutex_lock(&sr_lock);
		for (unsigned i = 0; i < SR_REQS; i++)
			done += sr_reqs[c->dev * SR_REQS + i].completions > 0;
		pthread_mutex_unlock(&sr_lock);
		if (done == SR_REQS || nvmk_qpair_outstanding(qp) == 0)
			break;
		int rc = nvmk_qpair_wait(qp, 20);
		if (rc < 0 && rc != -ETIMEDOUT) {
			c->err = rc;
			break;
		}
	}
	/* the writes reached the media */
	for (unsigned i = 0; i < SR_REQS && !c->err; i += 2) {
		struct sr_req *r = &sr_reqs[c->dev * SR_REQS + i];

		fill(want, SR_NLB, c->dev, 1, r->lba, 1);
		c->err = nvmk_ns_read(ns, qp, got, r->lba, SR_NLB);
		if (!c->err && memcmp(want, got, SR_NLB * BLK) != 0)
			c->err = -EILSEQ;
	}
	nvmk_qpair_destroy(qp);
out:
	free(want);
	free(got);
	return NULL;
}

static void sr_run(struct sr_client *cl, unsigned n, void *(*fn)(void *))
{
	pthread_t th[SR_DEVS];

	for (unsigned d = 0; d < n; d++)
		assert_int_equal(pthread_create(&th[d], NULL, fn, &cl[d]), 0);
	for (unsigned d = 0; d < n; d++)
		pthread_join(th[d], NULL);
	for (unsigned d = 0; d < n; d++)
		assert_int_equal(cl[d].err, 0);
}

struct sr_counts {
	uint64_t identify, create_sq, create_cq, resets;
};

static void sr_count(struct nvmk_emu *emu, struct sr_counts *c)
{
	c->identify = nvmk_emu_cmd_count(emu, true, NVME_ADM_IDENTIFY);
	c->create_sq = nvmk_emu_cmd_count(emu, true, NVME_ADM_CREATE_SQ);
	c->create_cq = nvmk_emu_cmd_count(emu, true, NVME_ADM_CREATE_CQ);
	c->resets = nvmk_emu_reset_count(emu);
}

/* The successor manager for @cfg: with keep-alive on the inherited pool
 * (a dup of the predecessor's fd), else a pool of its own per @cfg. */
static struct nvmk_mgr *sr_successor(const struct nvmk_config *cfg, struct nvmk_mgr *old,
				     struct handover *h, unsigned ndev)
{
	struct nvmk_mgr_device_spec s;
	struct nvmk_dma_pool *pool = NULL;
	struct nvmk_mgr *mgr = NULL;

	if (cfg->keep_alive.enabled && nvmk_mgr_pool(old)) {
		int fd = dup(nvmk_dma_pool_fd(nvmk_mgr_pool(old)));

		assert_true(fd >= 0);
		assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	}
	assert_int_equal(nvmk_mgr_create(cfg, pool, &mgr), 0);
	for (unsigned d = 0; d < ndev; d++) {
		handover_spec(&s, sr_ids[d], &h[d]);
		assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	}
	return mgr;
}

struct ka_mode {
	const char *keep_alive;
	const char *pool;
	bool config_on;		/* keep_alive.enabled */
	bool expect_keep_alive; /* the save keeps the devices alive */
};

static const struct ka_mode ka_modes[] = {
    {"host,privatepool", "1024", true, true},
    {"enabled", "1024", true, true},
    {"host,noprivatepool", "off", false, false},
    {"nohost,privatepool", "1024", false, false},
    {"nohost,noprivatepool", "off", false, false},
    {"disabled,host,privatepool", "1024", false, false},
    /* on in the configuration, but no pool to keep the queues in: drains */
    {"host,privatepool", "off", true, false},
};

static void save_restore_mode(const struct ka_mode *m)
{
	struct nvmk_config cfg;
	struct handover h[SR_DEVS];
	struct nvmk_mgr_device_spec s;
	struct nvmk_mgr_restore_opts ro = {.resolve = sr_resolve, .defer_completions = true};
	struct sr_client cl[SR_DEVS];
	struct sr_counts before[SR_DEVS], after;
	struct nvmk_mgr *mgr1 = NULL, *mgr2;
	struct nvmk_mgr_status st;
	struct nvmk_ns *ns;
	void *blob = NULL;
	size_t len = 0;

	setup(NULL);
	memset(h, 0, sizeof(h));
	memset(sr_reqs, 0, sizeof(sr_reqs));
	load_config(&cfg, m->keep_alive, strcmp(m->pool, "off") ? m->pool : NULL);
	assert_int_equal(cfg.keep_alive.enabled, m->config_on);
	assert_int_equal(nvmk_mgr_create(&cfg, NULL, &mgr1), 0);
	for (unsigned d = 0; d < SR_DEVS; d++) {
		handover_spec(&s, sr_ids[d], &h[d]);
		assert_int_equal(nvmk_mgr_add_device(mgr1, &s), 0);
	}
	assert_int_equal(nvmk_mgr_load(mgr1, sr_ids[0]), 0);
	for (unsigned d = 0; d < SR_DEVS; d++) {
		assert_int_equal(nvmk_mgr_load(mgr1, sr_ids[d]), 0);
		/* hold the I/O long enough to be in flight at the save */
		struct nvmk_emu_fault f = {.kind = NVMK_FAULT_DELAY,
					   .qid = NVMK_FAULT_ANY_QID,
					   .opcode = NVMK_FAULT_ANY_OPC,
					   .skip = SR_REQS / 2,
					   .count = SR_REQS,
					   .delay_us = 50000};
		assert_true(nvmk_emu_fault_add(h[d].emu, &f) >= 0);
		cl[d] = (struct sr_client){.mgr = mgr1, .dev = d};
	}
	sr_run(cl, SR_DEVS, sr_submit_thread);
	for (unsigned d = 0; d < SR_DEVS; d++)
		sr_count(h[d].emu, &before[d]);

	assert_int_equal(nvmk_mgr_save(mgr1, &blob, &len), 0);
	assert_int_equal(nvmk_mgr_state_validate(blob, len, NULL, 0), 0);
	assert_int_equal(log_has("no private pool: devices are drained"),
			 m->config_on && !m->expect_keep_alive);
	assert_int_equal(nvmk_mgr_get_namespace(mgr1, sr_ids[0], 1, &ns), -ESHUTDOWN);
	assert_int_equal(nvmk_mgr_save(mgr1, &blob, &len), -ESHUTDOWN);
	assert_int_equal(nvmk_mgr_status(mgr1, &st), 0);
	for (unsigned d = 0; d < SR_DEVS; d++)
		assert_int_equal(st.devices[d].state, NVMK_MGR_DEV_SAVED);
	nvmk_mgr_status_free(&st);
	for (unsigned d = 0; d < SR_DEVS; d++) {
		struct nvmk_emu *emu = h[d].emu;
		uint32_t cc = nvmk_emu_reg_read32(emu, NVME_REG_CC);

		if (m->expect_keep_alive) {
			/* left running, nothing reset, nothing delivered yet: the
			 * requests complete through the resolver after restore */
			assert_true(cc & NVME_CC_EN);
			for (unsigned i = 0; i < SR_REQS; i++)
				assert_int_equal(sr_reqs[d * SR_REQS + i].completions, 0);
			assert_int_equal(nvmk_emu_reset_count(emu), before[d].resets);
		} else {
			/* drained: every request completed once before the shutdown */
			assert_int_equal(cc & NVME_CC_EN, 0);
			for (unsigned i = 0; i < SR_REQS; i++)
				assert_int_equal(sr_reqs[d * SR_REQS + i].completions, 1);
		}
		assert_int_equal(nvmk_mgr_take_backing(mgr1, sr_ids[d], &h[d].b), 0);
	}

	mgr2 = sr_successor(&cfg, mgr1, h, SR_DEVS);
	assert_int_equal(nvmk_mgr_restore(mgr2, blob, len, &ro), 0);
	nvmk_mgr_destroy(mgr1); /* after the restore: its pool mapping is gone now */
	for (unsigned d = 0; d < SR_DEVS; d++) {
		assert_int_equal(h[d].creates, 1); /* the same device throughout */
		assert_int_equal(h[d].restoring_calls, m->expect_keep_alive ? 1 : 0);
		cl[d].mgr = mgr2;
	}
	if (m->expect_keep_alive) {
		for (unsigned d = 0; d < SR_DEVS; d++) {
			sr_count(h[d].emu, &after);
			/* attached, not brought up: no Identify, no queue creation */
			assert_int_equal(after.identify, before[d].identify);
			assert_int_equal(after.create_sq, before[d].create_sq);
			assert_int_equal(after.create_cq, before[d].create_cq);
			assert_int_equal(after.resets, before[d].resets);
		}
	}
	sr_run(cl, SR_DEVS, sr_complete_thread);
	for (unsigned i = 0; i < SR_DEVS * SR_REQS; i++) {
		assert_int_equal(sr_reqs[i].completions, 1);
		assert_int_equal(sr_reqs[i].err, 0);
		if (!sr_reqs[i].write)
			assert_true(sr_reqs[i].data_ok);
	}
	for (unsigned d = 0; d < SR_DEVS; d++) {
		sr_count(h[d].emu, &after);
		if (m->expect_keep_alive) {
			assert_int_equal(after.identify, before[d].identify);
		} else {
			/* a fresh bring-up after the shutdown */
			assert_true(after.identify > before[d].identify);
			assert_true(after.resets > before[d].resets);
		}
	}
	assert_int_equal(nvmk_mgr_status(mgr2, &st), 0);
	for (unsigned d = 0; d < SR_DEVS; d++)
		assert_int_equal(st.devices[d].state, NVMK_MGR_DEV_READY);
	if (st.pool_present)
		assert_int_equal(st.pool.leaked_pages, 0);
	nvmk_mgr_status_free(&st);
	assert_false(log_has("restore leaked"));
	assert_int_equal(nvmk_mgr_shutdown(mgr2), 0);
	for (unsigned d = 0; d < SR_DEVS; d++)
		assert_int_equal(nvmk_emu_reg_read32(h[d].emu, NVME_REG_CC) & NVME_CC_EN, 0);
	nvmk_mgr_destroy(mgr2);
	free(blob);
}

static void test_save_restore_modes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ka_modes) / sizeof(ka_modes[0]); i++) {
		if (getenv("NVMK_TEST_VERBOSE"))
			fprintf(stderr, "mode %s\n", ka_modes[i].keep_alive);
		save_restore_mode(&ka_modes[i]);
	}
}

/* Keep-alive save of @ndev devices with I/O in flight; returns the blob. */
static struct nvmk_mgr *sr_prepare(struct nvmk_config *cfg, struct handover *h, unsigned ndev,
				   struct sr_client *cl, void **blob, size_t *len)
{
	struct nvmk_mgr_device_spec s;
	struct nvmk_mgr *mgr = NULL;

	memset(h, 0, sizeof(*h) * ndev);
	memset(sr_reqs, 0, sizeof(sr_reqs));
	load_config(cfg, "host,privatepool", "1024");
	assert_int_equal(nvmk_mgr_create(cfg, NULL, &mgr), 0);
	for (unsigned d = 0; d < ndev; d++) {
		handover_spec(&s, sr_ids[d], &h[d]);
		assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
		assert_int_equal(nvmk_mgr_load(mgr, sr_ids[d]), 0);
		struct nvmk_emu_fault f = {.kind = NVMK_FAULT_DELAY,
					   .qid = NVMK_FAULT_ANY_QID,
					   .opcode = NVMK_FAULT_ANY_OPC,
					   .skip = SR_REQS / 2,
					   .count = SR_REQS,
					   .delay_us = 50000};
		assert_true(nvmk_emu_fault_add(h[d].emu, &f) >= 0);
		cl[d] = (struct sr_client){.mgr = mgr, .dev = d};
	}
	sr_run(cl, ndev, sr_submit_thread);
	assert_int_equal(nvmk_mgr_save(mgr, blob, len), 0);
	for (unsigned d = 0; d < ndev; d++)
		assert_int_equal(nvmk_mgr_take_backing(mgr, sr_ids[d], &h[d].b), 0);
	return mgr;
}

/* CRC32C, written independently of the library's, to re-seal an edited state. */
static uint32_t test_crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

/* Flip one byte in the middle of device @id's driver state inside @blob and
 * re-seal the manager envelope, so that only that device's state is bad. */
static void corrupt_device_state(void **blob, size_t *len, const char *id)
{
	NvmkMgr__MgrStateEnvelope *env = nvmk_mgr__mgr_state_envelope__unpack(NULL, *len, *blob);
	NvmkMgr__MgrState *st;
	bool found = false;
	uint8_t *payload;
	size_t plen;

	assert_non_null(env);
	st = nvmk_mgr__mgr_state__unpack(NULL, env->payload.len, env->payload.data);
	assert_non_null(st);
	for (size_t i = 0; i < st->n_devices; i++)
		if (strcmp(st->devices[i]->id, id) == 0) {
			ProtobufCBinaryData *b = &st->devices[i]->ctrl_state;

			assert_true(b->len > 16);
			b->data[b->len / 2] ^= 0x5a;
			found = true;
		}
	assert_true(found);
	plen = nvmk_mgr__mgr_state__get_packed_size(st);
	payload = malloc(plen);
	nvmk_mgr__mgr_state__pack(st, payload);
	free(env->payload.data);
	env->payload.data = payload;
	env->payload.len = plen;
	env->crc32c = test_crc32c(payload, plen);
	free(*blob);
	*len = nvmk_mgr__mgr_state_envelope__get_packed_size(env);
	*blob = malloc(*len);
	nvmk_mgr__mgr_state_envelope__pack(env, *blob);
	nvmk_mgr__mgr_state__free_unpacked(st, NULL);
	/* payload was swapped in: free_unpacked frees it */
	nvmk_mgr__mgr_state_envelope__free_unpacked(env, NULL);
}

/*
 * Completions delivered inside nvmk_mgr_restore (not deferred), a keep-alive
 * servicing that resets nothing and sends no admin command but the driver's
 * one probe; then a fresh manager handed the older state is refused and
 * calls back nothing a second time (issue 14: it called back all of them).
 */
static void test_older_state_refused(void **state)
{
	struct nvmk_mgr_restore_opts ro = {.resolve = sr_resolve, .defer_completions = false};
	struct handover h[2];
	struct sr_client cl[2];
	struct nvmk_config cfg;
	struct nvmk_mgr *mgr1, *mgr2, *mgr3;
	struct nvmk_mgr_status st;
	struct timespec blackout = {0, 150 * 1000000L};
	uint64_t adm[2][256], resets[2];
	void *a = NULL, *b = NULL;
	size_t la = 0, lb = 0;

	(void)state;
	mgr1 = sr_prepare(&cfg, h, 2, cl, &a, &la);
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned k = 0; k < 256; k++)
			adm[d][k] = nvmk_emu_cmd_count(h[d].emu, true, (uint8_t)k);
		resets[d] = nvmk_emu_reset_count(h[d].emu);
	}
	nanosleep(&blackout, NULL); /* the delayed requests finish meanwhile */
	mgr2 = sr_successor(&cfg, mgr1, h, 2);
	assert_int_equal(nvmk_mgr_restore(mgr2, a, la, &ro), 0);
	/* delivered by the restore itself, before any client called in */
	unsigned delivered = 0;
	for (unsigned i = 0; i < 2 * SR_REQS; i++) {
		assert_true(sr_reqs[i].completions <= 1);
		delivered += (unsigned)sr_reqs[i].completions;
	}
	assert_true(delivered > 0);
	for (unsigned d = 0; d < 2; d++) {
		assert_int_equal(nvmk_emu_reset_count(h[d].emu), resets[d]);
		for (unsigned k = 0; k < 256; k++)
			if (nvmk_emu_cmd_count(h[d].emu, true, (uint8_t)k) !=
			    adm[d][k] + (k == NVME_ADM_GET_FEATURES))
				fail_msg("%s: admin opcode 0x%02x count changed", sr_ids[d], k);
	}
	/* reap the rest on the restored qpairs, which stay (and are saved in B
	 * with A's consumed completions still in their rings) */
	for (unsigned d = 0; d < 2; d++) {
		struct nvmk_ns *ns;
		struct nvmk_qpair *qp;
		unsigned done = 0;

		assert_int_equal(nvmk_mgr_get_namespace(mgr2, sr_ids[d], 1, &ns), 0);
		qp = nvmk_ctrl_restored_qpair(nvmk_ns_ctrl(ns), cl[d].qid);
		assert_non_null(qp);
		for (int spins = 0; spins < 500 && done < SR_REQS; spins++) {
			assert_true(nvmk_qpair_process_completions(qp, 0) >= 0);
			done = 0;
			for (unsigned i = 0; i < SR_REQS; i++)
				done += sr_reqs[d * SR_REQS + i].completions > 0;
			if (done < SR_REQS)
				usleep(5000);
		}
	}
	for (unsigned i = 0; i < 2 * SR_REQS; i++) {
		assert_int_equal(sr_reqs[i].completions, 1);
		assert_int_equal(sr_reqs[i].err, 0);
		if (!sr_reqs[i].write)
			assert_true(sr_reqs[i].data_ok);
	}

	/* the successor saves (B); a fresh manager gets the older A */
	assert_int_equal(nvmk_mgr_save(mgr2, &b, &lb), 0);
	for (unsigned d = 0; d < 2; d++)
		assert_int_equal(nvmk_mgr_take_backing(mgr2, sr_ids[d], &h[d].b), 0);
	mgr3 = sr_successor(&cfg, mgr2, h, 2);
	assert_int_equal(nvmk_mgr_restore(mgr3, a, la, &ro), -ESTALE);
	assert_true(log_has("older than the latest save"));
	for (unsigned i = 0; i < 2 * SR_REQS; i++)
		assert_int_equal(sr_reqs[i].completions, 1);
	assert_int_equal(nvmk_mgr_status(mgr3, &st), 0);
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_FAILED);
	assert_int_equal(st.devices[0].err, -ESTALE);
	nvmk_mgr_status_free(&st);
	/* the devices still run B's queues: their memory goes last */
	nvmk_mgr_destroy(mgr3);
	nvmk_mgr_destroy(mgr2);
	nvmk_mgr_destroy(mgr1);
	free(a);
	free(b);
}

static void test_restore_failure_isolated(void **state)
{
	struct nvmk_mgr_restore_opts ro = {.resolve = sr_resolve, .defer_completions = true};
	struct handover h[2];
	struct sr_client cl[2];
	struct nvmk_config cfg;
	struct nvmk_mgr *mgr1, *mgr2;
	struct nvmk_mgr_status st;
	struct nvmk_ns *ns;
	void *blob = NULL;
	size_t len = 0;

	(void)state;
	mgr1 = sr_prepare(&cfg, h, 2, cl, &blob, &len);
	corrupt_device_state(&blob, &len, "nvme-b");
	assert_int_equal(nvmk_mgr_state_validate(blob, len, NULL, 0), 0); /* envelope is fine */

	mgr2 = sr_successor(&cfg, mgr1, h, 2);
	assert_int_equal(nvmk_mgr_restore(mgr2, blob, len, &ro), -EBADMSG);
	assert_true(log_has("nvme-b: restore failed"));
	/* the bad device's blocks are reported, naming it and the tag */
	assert_true(log_has("restore leaked DMA block"));
	assert_true(log_has("of device nvme-b"));
	assert_false(log_has("of device nvme-a"));

	/* the good one restored, and every one of its requests completes once */
	cl[0].mgr = mgr2;
	sr_run(cl, 1, sr_complete_thread);
	for (unsigned i = 0; i < SR_REQS; i++) {
		assert_int_equal(sr_reqs[i].completions, 1);
		assert_int_equal(sr_reqs[i].err, 0);
		if (!sr_reqs[i].write)
			assert_true(sr_reqs[i].data_ok);
	}
	assert_int_equal(nvmk_mgr_status(mgr2, &st), 0);
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_READY);
	assert_int_equal(st.devices[1].state, NVMK_MGR_DEV_FAILED);
	assert_int_equal(st.devices[1].err, -EBADMSG);
	assert_true(st.pool.leaked_pages > 0);
	nvmk_mgr_status_free(&st);
	assert_int_equal(nvmk_mgr_get_namespace(mgr2, "nvme-b", 1, &ns), -EBADMSG);
	assert_int_equal(nvmk_mgr_get_namespace(mgr2, "nvme-a", 1, &ns), 0);
	/* mgr2 owns (and now destroys) nvme-b's running emulator, whose queues
	 * still point into mgr1's pool mapping: mgr1 goes last */
	nvmk_mgr_destroy(mgr2);
	nvmk_mgr_destroy(mgr1);
	free(blob);
}

static void test_restore_leak_unregistered(void **state)
{
	struct nvmk_mgr_restore_opts ro = {.resolve = sr_resolve, .defer_completions = true};
	struct handover h[2];
	struct sr_client cl[2];
	struct nvmk_config cfg;
	struct nvmk_mgr *mgr1, *mgr2;
	void *blob = NULL;
	size_t len = 0;

	(void)state;
	mgr1 = sr_prepare(&cfg, h, 2, cl, &blob, &len);
	/* the successor's configuration lost nvme-b */
	mgr2 = sr_successor(&cfg, mgr1, h, 1);
	assert_int_equal(nvmk_mgr_restore(mgr2, blob, len, &ro), -ENOENT);
	assert_true(log_has("nvme-b: device of the saved state is not registered"));
	assert_true(log_has("restore leaked DMA block"));
	assert_true(log_has("of device nvme-b"));
	assert_false(log_has("of device nvme-a"));
	cl[0].mgr = mgr2;
	sr_run(cl, 1, sr_complete_thread);
	for (unsigned i = 0; i < SR_REQS; i++)
		assert_int_equal(sr_reqs[i].completions, 1);
	nvmk_mgr_destroy(mgr2);
	nvmk_backing_destroy(h[1].b); /* stops nvme-b before its memory goes */
	nvmk_mgr_destroy(mgr1);
	free(blob);
}

static void test_state_refused(void **state)
{
	struct nvmk_mgr_restore_opts ro = {.resolve = sr_resolve, .defer_completions = true};
	NvmkMgr__MgrStateEnvelope *env;
	struct handover h[2];
	struct sr_client cl[2];
	struct nvmk_config cfg;
	struct nvmk_mgr *mgr1, *mgr2;
	void *blob = NULL, *bad;
	size_t len = 0, blen;
	char why[200];

	(void)state;
	mgr1 = sr_prepare(&cfg, h, 2, cl, &blob, &len);
	/* a flipped bit anywhere in the payload: checksum */
	bad = malloc(len);
	memcpy(bad, blob, len);
	((uint8_t *)bad)[len - 3] ^= 1;
	assert_int_equal(nvmk_mgr_state_validate(bad, len, why, sizeof(why)), -EBADMSG);
	assert_int_equal(nvmk_mgr_state_validate(blob, len / 2, NULL, 0), -EBADMSG);
	assert_int_equal(nvmk_mgr_state_validate(NULL, 0, NULL, 0), -EBADMSG);
	free(bad);
	/* a newer format: downgrade refused */
	env = nvmk_mgr__mgr_state_envelope__unpack(NULL, len, blob);
	assert_non_null(env);
	env->version = NVMK_MGR_STATE_VERSION + 1;
	blen = nvmk_mgr__mgr_state_envelope__get_packed_size(env);
	bad = malloc(blen);
	nvmk_mgr__mgr_state_envelope__pack(env, bad);
	nvmk_mgr__mgr_state_envelope__free_unpacked(env, NULL);
	assert_int_equal(nvmk_mgr_state_validate(bad, blen, why, sizeof(why)), -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "downgrade refused"));

	/* a manager already in use cannot restore (a load would have reset a live
	 * device); loads are refused while a restore runs */
	{
		struct nvmk_mgr *used = new_mgr("host,privatepool", "1024");
		struct nvmk_ns *ns;

		add_emu(used, "nvme-a");
		assert_int_equal(nvmk_mgr_get_namespace(used, "nvme-a", 1, &ns), 0);
		assert_int_equal(nvmk_mgr_restore(used, blob, len, &ro), -EINVAL);
		assert_true(log_has("restore needs a new manager"));
		nvmk_mgr_destroy(used);
	}

	/* refused states touch no device: the good state still restores after */
	mgr2 = sr_successor(&cfg, mgr1, h, 2);
	assert_int_equal(nvmk_mgr_restore(mgr2, bad, blen, &ro), -EPROTONOSUPPORT);
	free(bad);
	assert_int_equal(h[0].restoring_calls + h[1].restoring_calls, 0);
	assert_int_equal(nvmk_mgr_restore(mgr2, blob, len, &ro), 0);
	cl[0].mgr = cl[1].mgr = mgr2;
	sr_run(cl, 2, sr_complete_thread);
	for (unsigned i = 0; i < 2 * SR_REQS; i++)
		assert_int_equal(sr_reqs[i].completions, 1);
	nvmk_mgr_destroy(mgr1);
	nvmk_mgr_destroy(mgr2);
	free(blob);
}

/* ---- kernel path (OPENHCL_NVME_VFIO off) ---- */

#define KFILE_BYTES (4u << 20)

struct kdev {
	char file[64];
	char loopdev[32];
	int loop_fd;
	const char *path; /* the loop device, or the file when there is none */
};

/* A 4 MiB file, and a loop device over it when the host allows one. */
static bool kdev_setup(struct kdev *k)
{
	int fd, ctl, n;

	memset(k, 0, sizeof(*k));
	k->loop_fd = -1;
	snprintf(k->file, sizeof(k->file), "mgr-kdev-XXXXXX");
	fd = mkstemp(k->file);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, KFILE_BYTES), 0);
	k->path = k->file;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	n = ctl >= 0 ? ioctl(ctl, LOOP_CTL_GET_FREE) : -1;
	if (ctl >= 0)
		close(ctl);
	if (n >= 0) {
		snprintf(k->loopdev, sizeof(k->loopdev), "/dev/loop%d", n);
		k->loop_fd = open(k->loopdev, O_RDWR | O_CLOEXEC);
		if (k->loop_fd >= 0 && ioctl(k->loop_fd, LOOP_SET_FD, fd) == 0) {
			k->path = k->loopdev;
		} else if (k->loop_fd >= 0) {
			close(k->loop_fd);
			k->loop_fd = -1;
		}
	}
	close(fd);
	if (k->loop_fd < 0)
		fprintf(stderr, "test_manager: loop devices unavailable: kernel path on a "
				"regular file\n");
	/* io_uring may be forbidden (seccomp, io_uring_disabled) */
	struct nvmk_ns *ns;
	int rc = nvmk_kns_open(k->path, 0, &ns);

	if (rc) {
		fprintf(stderr, "test_manager: kernel path unavailable (%d): skipping\n", rc);
		return false;
	}
	nvmk_ns_close(ns);
	return true;
}

static void kdev_teardown(struct kdev *k)
{
	if (k->loop_fd >= 0) {
		ioctl(k->loop_fd, LOOP_CLR_FD, 0);
		close(k->loop_fd);
	}
	unlink(k->file);
}

struct kcb {
	int calls, err;
};

static void kcb_fn(void *arg, const struct nvmk_cpl *cpl)
{
	struct kcb *c = arg;

	c->calls++;
	c->err = cpl->err;
}

static void kernel_spec(struct nvmk_mgr_device_spec *s, const char *id, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->kind = NVMK_MGR_BACKING_KERNEL;
	s->kernel.path = path;
}

/* A device served by the kernel: namespaces, async I/O through a kernel
 * qpair, status "kernel", save (nothing kept alive) and restore (re-open);
 * a PCI factory device with nvme_vfio off becomes a kernel device; a kernel
 * device counts as handover-capable in the keep-alive inference. */
static void test_kernel_device(void **state)
{
	struct nvmk_mgr_device_spec s, specs[2];
	struct nvmk_mgr *mgr, *mgr2 = NULL;
	struct nvmk_mgr_status st;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf db, buf = {0};
	struct nvmk_config cfg;
	struct nvmk_ns *ns;
	struct kdev k;
	struct kcb c = {0};
	json_object *root, *d0;
	char *json = NULL;
	void *blob = NULL, *mem = NULL;
	size_t len = 0;

	(void)state;
	if (!kdev_setup(&k)) {
		kdev_teardown(&k);
		skip();
	}
	load_config(&cfg, "disabled", NULL);
	assert_false(cfg.nvme_vfio.enabled);
	assert_int_equal(nvmk_mgr_create(&cfg, NULL, &mgr), 0);
	kernel_spec(&s, "kdev0", k.path);
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "kdev0", 1, &ns), 0);
	assert_true(nvmk_ns_is_kernel(ns));
	assert_int_equal(nvmk_mgr_dma_alloc(mgr, "kdev0", "b0", 4096, &db), -EOPNOTSUPP);

	/* asynchronous write through a kernel qpair of the manager, read back */
	assert_int_equal(posix_memalign(&mem, 4096, 8192), 0);
	buf.mem.vaddr = mem;
	buf.mem.size = 8192;
	for (unsigned i = 0; i < 4096; i++)
		((uint8_t *)mem)[i] = (uint8_t)(i * 13 + 5);
	assert_int_equal(nvmk_mgr_create_qpair(mgr, "kdev0", NULL, &qp), 0);
	assert_int_equal(nvmk_ns_submit_write(ns, qp, &buf, 0, 40, 8, 0, kcb_fn, &c), 0);
	while (c.calls == 0)
		assert_true(nvmk_qpair_wait(qp, 1000) >= 0 || c.calls);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.err, 0);
	nvmk_qpair_destroy(qp);
	memset((uint8_t *)mem + 4096, 0, 4096);
	assert_int_equal(nvmk_ns_read(ns, NULL, (uint8_t *)mem + 4096, 40, 8), 0);
	assert_memory_equal(mem, (uint8_t *)mem + 4096, 4096);

	/* status: kind "kernel", ready, namespace 1, no queues of a controller */
	assert_int_equal(nvmk_mgr_status_json(mgr, &json), 0);
	root = json_tokener_parse(json);
	assert_non_null(root);
	d0 = json_object_array_get_idx(jget(root, "devices"), 0);
	assert_string_equal(json_object_get_string(jget(d0, "kind")), "kernel");
	assert_string_equal(json_object_get_string(jget(d0, "state")), "ready");
	assert_int_equal(json_object_array_length(jget(d0, "namespaces")), 1);
	json_object_put(root);
	free(json);

	/* save: nothing kept alive; the successor re-opens namespace 1 */
	assert_int_equal(nvmk_mgr_save(mgr, &blob, &len), 0);
	assert_int_equal(nvmk_mgr_state_validate(blob, len, NULL, 0), 0);
	assert_int_equal(nvmk_mgr_create(&cfg, NULL, &mgr2), 0);
	assert_int_equal(nvmk_mgr_add_device(mgr2, &s), 0);
	assert_int_equal(nvmk_mgr_restore(mgr2, blob, len, NULL), 0);
	assert_int_equal(nvmk_mgr_status(mgr2, &st), 0);
	assert_int_equal(st.ndevices, 1);
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_READY);
	assert_string_equal(st.devices[0].kind, "kernel");
	assert_int_equal(st.devices[0].nns, 1); /* re-opened by the restore */
	nvmk_mgr_status_free(&st);
	assert_int_equal(nvmk_mgr_get_namespace(mgr2, "kdev0", 1, &ns), 0);
	memset((uint8_t *)mem + 4096, 0, 4096);
	assert_int_equal(nvmk_ns_read(ns, NULL, (uint8_t *)mem + 4096, 40, 8), 0);
	assert_memory_equal(mem, (uint8_t *)mem + 4096, 4096);
	free(blob);
	nvmk_mgr_destroy(mgr2);
	nvmk_mgr_destroy(mgr);

	/* nvme_vfio off: a factory device with a PCI id is served by the
	 * kernel; this function does not exist, so its namespace fails */
	assert_int_equal(nvmk_mgr_create(&cfg, NULL, &mgr), 0);
	memset(&s, 0, sizeof(s));
	s.id = "0000:ff:1f.7";
	s.kind = NVMK_MGR_BACKING_FACTORY;
	s.factory.create = fault_factory_create;
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	assert_true(log_has("kernel path"));
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "0000:ff:1f.7", 1, &ns), -ENODEV);
	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	assert_string_equal(st.devices[0].kind, "kernel");
	assert_int_equal(st.devices[0].state, NVMK_MGR_DEV_FAILED);
	nvmk_mgr_status_free(&st);
	nvmk_mgr_destroy(mgr);

	/* keep-alive inference: a kernel device does not make it "nohost" */
	emu_spec(&specs[0], "emu0");
	kernel_spec(&specs[1], "kdev0", k.path);
	env_keep_alive = NULL;
	env_pool = "512";
	assert_int_equal(nvmk_mgr_create_from_env(fake_getenv, specs, 2, &mgr), 0);
	assert_string_equal(nvmk_mgr_config(mgr)->keep_alive.mode, "host,privatepool");
	nvmk_mgr_destroy(mgr);

	free(mem);
	kdev_teardown(&k);
}

/* ---- remove ---- */

static void log_clear(void)
{
	pthread_mutex_lock(&log_lock);
	log_buf[0] = 0;
	pthread_mutex_unlock(&log_lock);
}

static uint64_t pool_used(struct nvmk_mgr *mgr, unsigned *ndev)
{
	struct nvmk_mgr_status st;
	uint64_t used;

	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	used = st.pool.used_pages;
	if (ndev)
		*ndev = st.ndevices;
	nvmk_mgr_status_free(&st);
	return used;
}

static bool listed(struct nvmk_mgr *mgr, const char *id)
{
	struct nvmk_mgr_status st;
	bool found = false;

	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	for (unsigned i = 0; i < st.ndevices; i++)
		found |= !strcmp(st.devices[i].id, id);
	nvmk_mgr_status_free(&st);
	return found;
}

/* Remove: refused while a client holds a queue pair or a buffer, then clean
 * (pool back to where it was, CC.SHN), re-add works, forced remove. */
static void test_remove_device(void **state)
{
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_mgr *mgr = new_mgr("host,privatepool", "1024");
	struct nvmk_dma_buf buf;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	uint8_t blk[BLK];
	uint64_t base;
	unsigned n;

	(void)state;
	add_emu(mgr, "emu0");
	add_emu(mgr, "emu1");
	base = pool_used(mgr, &n);
	assert_int_equal(n, 2);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), 0);
	memset(blk, 0x5a, sizeof(blk));
	assert_int_equal(nvmk_ns_write(ns, NULL, blk, 0, 1), 0);
	assert_true(pool_used(mgr, NULL) > base);

	/* a client's own queue pair: refused, the device stays usable */
	assert_int_equal(nvmk_mgr_create_qpair(mgr, "emu0", &qo, &qp), 0);
	log_clear();
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu0", false), -EBUSY);
	assert_true(log_has("remove refused: in use (0 client buffers, 1 client queue pairs"));
	assert_true(listed(mgr, "emu0"));
	assert_int_equal(nvmk_ns_read(ns, NULL, blk, 0, 1), 0);
	nvmk_qpair_destroy(qp);
	/* a client buffer: refused too */
	assert_int_equal(nvmk_mgr_dma_alloc(mgr, "emu0", "b0", 8192, &buf), 0);
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu0", false), -EBUSY);
	assert_true(log_has("1 client buffers"));
	assert_int_equal(nvmk_mgr_dma_free(mgr, "emu0", "b0"), 0);

	/* nothing held: removed, shut down cleanly, everything back */
	log_clear();
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu0", false), 0);
	assert_true(log_has("shut down"));
	assert_true(log_has("removed"));
	assert_false(listed(mgr, "emu0"));
	assert_true(listed(mgr, "emu1"));
	assert_int_equal(pool_used(mgr, &n), base);
	assert_int_equal(n, 1);
	assert_null(nvmk_mgr_device_emu(mgr, "emu0"));
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), -ENOENT);
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu0", false), -ENOENT);
	assert_int_equal(nvmk_mgr_remove_device(mgr, NULL, false), -EINVAL);

	/* the same id again: a new device, brought up anew */
	add_emu(mgr, "emu0");
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu0", 1, &ns), 0);
	assert_int_equal(nvmk_ns_write(ns, NULL, blk, 0, 1), 0);
	assert_int_equal(nvmk_emu_cmd_count(nvmk_mgr_device_emu(mgr, "emu0"), true,
					    NVME_ADM_IDENTIFY) > 0,
			 1);

	/* forced: closes the client's queue pair and buffer */
	assert_int_equal(nvmk_mgr_create_qpair(mgr, "emu0", &qo, &qp), 0);
	assert_int_equal(nvmk_mgr_dma_alloc(mgr, "emu0", "b1", 8192, &buf), 0);
	log_clear();
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu0", true), 0);
	assert_true(log_has("forced remove: closing what is in use (1 client buffers, 1 client "
			    "queue pairs"));
	assert_false(listed(mgr, "emu0"));
	assert_int_equal(pool_used(mgr, NULL), base);

	/* an unloaded device goes too */
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu1", false), 0);
	assert_int_equal(pool_used(mgr, &n), base);
	assert_int_equal(n, 0);
	nvmk_mgr_destroy(mgr);
}

/* A save after a remove does not mention the removed device. */
static void test_remove_then_save(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("host,privatepool", "1024");
	struct nvmk_ns *ns;
	void *blob = NULL;
	size_t len = 0;

	(void)state;
	add_emu(mgr, "emu-kept");
	add_emu(mgr, "emu-gone");
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu-kept", 1, &ns), 0);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, "emu-gone", 1, &ns), 0);
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu-gone", false), 0);
	assert_int_equal(nvmk_mgr_save(mgr, &blob, &len), 0);
	assert_int_equal(nvmk_mgr_state_validate(blob, len, NULL, 0), 0);
	assert_non_null(memmem(blob, len, "emu-kept", 8));
	assert_null(memmem(blob, len, "emu-gone", 8));
	/* saved: no remove any more */
	assert_int_equal(nvmk_mgr_remove_device(mgr, "emu-kept", false), -ESHUTDOWN);
	free(blob);
	nvmk_mgr_destroy(mgr);
}

/* Status readers and loads racing removes and re-adds (TSan: the device
 * lives until the last reader lets go). */
static atomic_bool race_stop;
static atomic_int race_bad; /* an unexpected result in a reader (asserted in the main thread) */

static void *status_reader(void *arg)
{
	struct nvmk_mgr *mgr = arg;

	while (!atomic_load(&race_stop)) {
		struct nvmk_mgr_status st;
		char *json = NULL;
		int rc;

		if (nvmk_mgr_status(mgr, &st) == 0)
			nvmk_mgr_status_free(&st);
		else
			atomic_store(&race_bad, -1);
		if (nvmk_mgr_status_json(mgr, &json) == 0)
			free(json);
		else
			atomic_store(&race_bad, -2);
		/* racing a remove: gone (-ENOENT), or shut down under it
		 * (-ESHUTDOWN: the load was queued behind the remove) */
		rc = nvmk_mgr_load(mgr, "emu0");
		if (rc && rc != -ENOENT && rc != -ESHUTDOWN)
			atomic_store(&race_bad, rc);
	}
	return NULL;
}

static void test_remove_races_status(void **state)
{
	struct nvmk_mgr *mgr = new_mgr("disabled", NULL);
	pthread_t t[2];

	(void)state;
	add_emu(mgr, "emu0");
	atomic_store(&race_stop, false);
	atomic_store(&race_bad, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, status_reader, mgr), 0);
	for (int round = 0; round < 10; round++) {
		int rc = nvmk_mgr_remove_device(mgr, "emu0", false);

		assert_true(rc == 0 || rc == -EBUSY);
		if (rc == 0)
			add_emu(mgr, "emu0");
	}
	atomic_store(&race_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&race_bad), 0);
	nvmk_mgr_destroy(mgr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_parallel_clients_load_once, setup),
	    cmocka_unit_test_setup(test_failing_device_isolated, setup),
	    cmocka_unit_test_setup(test_shutdown, setup),
	    cmocka_unit_test_setup(test_status_json, setup),
	    cmocka_unit_test_setup(test_pool_per_config, setup),
	    cmocka_unit_test_setup(test_create_from_env, setup),
	    cmocka_unit_test_setup(test_save_restore_modes, setup),
	    cmocka_unit_test_setup(test_restore_failure_isolated, setup),
	    cmocka_unit_test_setup(test_older_state_refused, setup),
	    cmocka_unit_test_setup(test_restore_leak_unregistered, setup),
	    cmocka_unit_test_setup(test_state_refused, setup),
	    cmocka_unit_test_setup(test_kernel_device, setup),
	    cmocka_unit_test_setup(test_remove_device, setup),
	    cmocka_unit_test_setup(test_remove_then_save, setup),
	    cmocka_unit_test_setup(test_remove_races_status, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
