// SPDX-License-Identifier: MIT
/*
 * A client that crashed without a saved state, and the next one, against an
 * nvmekeep-emu --persist process (docs/vfio-user.md): the writer child is
 * SIGKILLed with writes in flight; a new client adopts the controller with
 * no reset (the server's stats: no CC.EN 0->1, no reset, no queue created or
 * deleted), finds every acknowledged write, and does new I/O. The ways back
 * to a reset: a held command that never completes (drain timeout), a server
 * that keeps no memory (--no-resume-memory), and (test_driver_vfu.c) a
 * client whose queues were in ephemeral memory. The resume blob's parser
 * refuses malformed input.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"
#include "nvmekeep/vfio_user.h"
#include "vfu_test.h"

#define KSLOTS 256 /* 4 KiB slots the writer cycles through */
#define WQD    16  /* writes in flight */
#define BLK4K  8   /* 512-byte blocks per slot */

static struct nvmk_ctrl_opts topts(void)
{
	struct nvmk_ctrl_opts o = {0};

	o.admin_timeout_ms = 5000;
	o.io_timeout_ms = 5000;
	o.health_check_ms = 20;
	o.max_io_queues = 4;
	o.shutdown_timeout_ms = 2000;
	return o;
}

static void pattern(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 151u + i * 13u + (i >> 9));
}

/* ---- the writer (child process) ---- */

struct wslot {
	unsigned k, lap;
};

static struct {
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;
	struct wslot slot[WQD];
	unsigned next_k, lap;
	atomic_uint *acked; /* [KSLOTS] lap acknowledged, [KSLOTS] laps started */
	bool failed;
} w;

static void w_submit(unsigned i);

static void w_done(void *arg, const struct nvmk_cpl *cpl)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	if (cpl->err) {
		w.failed = true;
		return;
	}
	/* acknowledged: published before anything else happens to the slot */
	atomic_store(&w.acked[w.slot[i].k], w.slot[i].lap);
	w_submit(i);
}

static void w_submit(unsigned i)
{
	unsigned k = w.next_k;

	if (++w.next_k == KSLOTS) {
		w.next_k = 0;
		w.lap++;
		atomic_store(&w.acked[KSLOTS], w.lap);
	}
	w.slot[i] = (struct wslot){k, w.lap};
	pattern((uint8_t *)w.buf.mem.vaddr + (size_t)i * 4096, 4096, k + 1000 * w.lap);
	if (nvmk_ns_submit_write(w.ns, w.qp, &w.buf, (size_t)i * 4096, (uint64_t)k * BLK4K, BLK4K,
				 0, w_done, (void *)(uintptr_t)i))
		w.failed = true;
}

/* Queues and data buffers in a private pool, writes kept in flight until killed. */
static void writer_child(const char *sock, atomic_uint *acked)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_dma_pool *pool;
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;

	w.acked = acked;
	w.lap = 1;
	if (nvmk_dma_pool_create(4096, 0, &pool) || nvmk_backing_vfio_user_open(sock, NULL, &b))
		_exit(2);
	b->pool = pool;
	if (nvmk_ctrl_open(b, &o, &ctrl) || nvmk_ns_open(ctrl, 1, 0, &w.ns) ||
	    !(w.qp = nvmk_ctrl_get_qpair(ctrl)) || nvmk_ctrl_dma_alloc(ctrl, WQD * 4096, &w.buf))
		_exit(3);
	atomic_store(&acked[KSLOTS], 1);
	for (unsigned i = 0; i < WQD; i++)
		w_submit(i);
	for (;;) {
		if (w.failed)
			_exit(4);
		nvmk_qpair_process_completions(w.qp, 0);
	}
}

/* ---- the parent ---- */

struct crash {
	struct tsrv t;
	atomic_uint *acked;
	long long cc_enables, resets, fresets, create_sq, create_cq, del_sq, del_cq, set_feat;
};

static void stats_take(struct crash *c)
{
	c->cc_enables = tsrv_stat(&c->t, "cc_enables");
	c->resets = tsrv_stat(&c->t, "resets");
	c->fresets = tsrv_stat(&c->t, "function_resets");
	c->create_sq = tsrv_stat(&c->t, "admin.0x01");
	c->create_cq = tsrv_stat(&c->t, "admin.0x05");
	c->del_sq = tsrv_stat(&c->t, "admin.0x00");
	c->del_cq = tsrv_stat(&c->t, "admin.0x04");
	c->set_feat = tsrv_stat(&c->t, "admin.0x09");
}

/*
 * Start the server (@extra args), run the writer, let it get going,
 * optionally inject @fault through the control socket, SIGKILL it with
 * writes in flight.
 */
static void crash_writer(struct crash *c, const char *fault, const char *extra)
{
	pid_t pid;
	int st;

	memset(c, 0, sizeof(*c));
	assert_int_equal(tsrv_start(&c->t, "--persist", "--ns", "ram:16M", extra, NULL), 0);
	c->acked = mmap(NULL, (KSLOTS + 1) * sizeof(*c->acked), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(c->acked != MAP_FAILED);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		writer_child(c->t.sock, c->acked);
	/* into its second lap: every slot acknowledged once */
	for (int i = 0; i < 2000 && atomic_load(&c->acked[KSLOTS]) < 2; i++)
		tsleep_ms(5);
	assert_true(atomic_load(&c->acked[KSLOTS]) >= 2);
	if (fault) {
		long long w0 = tsrv_stat(&c->t, "io.0x01");

		assert_true(tsrv_ok(&c->t, fault));
		for (int i = 0; i < 400 && tsrv_stat(&c->t, "io.0x01") <= w0 + 1; i++)
			tsleep_ms(5);
	}
	tsleep_ms(20);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(tsrv_wait_stat(&c->t, "client.connected", 0), 0);
	stats_take(c);
}

/* Every acknowledged write is on the media, or a later write of the slot
 * that was in flight at the kill landed over it: the next lap's, or (when
 * that one hangs in the device and the writer came round again) the one
 * after. Nothing older, nothing else. */
static void verify_ahead(struct crash *c, struct nvmk_ns *ns, struct nvmk_qpair *qp, unsigned ahead)
{
	static unsigned char want[4096], got[4096];
	unsigned checked = 0;

	for (unsigned k = 0; k < KSLOTS; k++) {
		unsigned lap = atomic_load(&c->acked[k]), d;

		if (!lap)
			continue;
		assert_int_equal(nvmk_ns_read(ns, qp, got, (uint64_t)k * BLK4K, BLK4K), 0);
		for (d = 0; d <= ahead; d++) {
			pattern(want, sizeof(want), k + 1000 * (lap + d));
			if (!memcmp(want, got, sizeof(want)))
				break;
		}
		if (d > ahead) {
			pattern(want, sizeof(want), k + 1000 * lap);
			assert_memory_equal(want, got, sizeof(want));
		}
		checked++;
	}
	/* the laps counter moves when slot 0 is submitted again: the last
	 * writes of lap 1 may still have been in flight (a hung one never
	 * completes) */
	assert_true(checked >= KSLOTS - WQD);
}

/* Without a hung write, a slot has at most one write in flight. */
static void verify_acked(struct crash *c, struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	verify_ahead(c, ns, qp, 1);
}

static void new_io(struct nvmk_ctrl *ctrl, struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	static unsigned char wbuf[65536], rbuf[65536];
	struct nvmk_dma_buf d;

	pattern(wbuf, sizeof(wbuf), 77);
	assert_int_equal(nvmk_ns_write(ns, qp, wbuf, 4096, sizeof(wbuf) / 512), 0);
	assert_int_equal(nvmk_ns_read(ns, qp, rbuf, 4096, sizeof(rbuf) / 512), 0);
	assert_memory_equal(wbuf, rbuf, sizeof(wbuf));
	/* pool buffers again (the previous client's were given back) */
	assert_int_equal(nvmk_ctrl_dma_alloc(ctrl, 8192, &d), 0);
	nvmk_ctrl_dma_free(ctrl, &d);
}

static void crash_done(struct crash *c)
{
	munmap(c->acked, (KSLOTS + 1) * sizeof(*c->acked));
	assert_int_equal(tsrv_stop(&c->t), 0);
}

static void test_adopt_after_crash(void **state)
{
	struct nvmk_adopt_opts ao = {.ctrl = topts()};
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	const struct nvmk_dev_view *v;
	struct crash c;

	(void)state;
	crash_writer(&c, NULL, NULL);
	/* the controller was left enabled, the dead client's maps kept */
	assert_int_equal(c.fresets, 1);
	assert_true(tsrv_stat(&c.t, "dma_maps") > 0);

	assert_int_equal(nvmk_backing_vfio_user_open(c.t.sock, NULL, &b), 0);
	v = nvmk_backing_device_view(b);
	assert_non_null(v);
	assert_non_null(b->pool); /* the crashed client's pool, handed back */
	assert_true(v->nsq >= 2); /* admin + the writer's I/O queue */
	assert_int_equal(tsrv_stat(&c.t, "adopted"), 1);
	{
		/* as if a state of generation gen + 1 had been saved and not restored */
		uint64_t gen = 0;
		bool restored = false;

		nvmk_dma_pool_gen_get(b->pool, b->name, &gen, &restored);
		assert_int_equal(nvmk_dma_pool_gen_set(b->pool, b->name, gen + 1, false), 0);
	}
	assert_int_equal(nvmk_ctrl_adopt(b, &ao, &ctrl), 0);
	{
		/* ... it no longer restores over the adopted controller */
		uint64_t gen = 0;
		bool restored = false;

		assert_int_equal(nvmk_dma_pool_gen_get(b->pool, b->name, &gen, &restored), 0);
		assert_true(restored);
	}
	assert_null(nvmk_backing_device_view(b)); /* used up */

	/* no reset, no CC.EN 0->1, no queue created or deleted, no Set Features */
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables);
	assert_int_equal(tsrv_stat(&c.t, "resets"), c.resets);
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets);
	assert_int_equal(tsrv_stat(&c.t, "resume_refused"), 0);

	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	/* the writer's Number of Queues (max_io_queues 4), not one more */
	assert_int_equal(nvmk_ctrl_io_queues(ctrl), 4);
	qp = nvmk_ctrl_get_qpair(ctrl); /* the adopted I/O queue */
	assert_non_null(qp);
	verify_acked(&c, ns, qp);
	new_io(ctrl, ns, qp);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x01"), c.create_sq);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x05"), c.create_cq);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x00"), c.del_sq);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x04"), c.del_cq);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x09"), c.set_feat);
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables);
	assert_int_equal(nvmk_ctrl_failed(ctrl), 0);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	crash_done(&c);
}

/* A write held by the device forever (hang fault): the drain cannot end,
 * the adoption gives up after its bound and the controller is reset. */
static void test_adopt_hung_command_resets(void **state)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct crash c;
	bool adopted = true;

	(void)state;
	crash_writer(&c, "{\"cmd\":\"fault\",\"kind\":\"hang\",\"opcode\":1,\"count\":1}", NULL);
	assert_int_equal(nvmk_backing_vfio_user_open(c.t.sock, NULL, &b), 0);
	assert_non_null(nvmk_backing_device_view(b));
	/* open_or_adopt: adoption (its drain times out), then a reset */
	assert_int_equal(nvmk_ctrl_open_or_adopt(b, &o, &ctrl, &adopted), 0);
	assert_false(adopted);
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets + 1);
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables + 1);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	qp = nvmk_ctrl_get_qpair(ctrl);
	assert_non_null(qp);
	verify_ahead(&c, ns, qp, 2);
	new_io(ctrl, ns, qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	crash_done(&c);
}

/* A server that keeps no memory of its clients offers no pool: reset at open. */
static void test_no_pool_offered_resets(void **state)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct crash c;
	bool adopted = true;

	(void)state;
	crash_writer(&c, NULL, "--no-resume-memory");
	assert_int_equal(tsrv_stat(&c.t, "dma_maps"), 0);
	assert_int_equal(nvmk_backing_vfio_user_open(c.t.sock, NULL, &b), 0);
	assert_null(nvmk_backing_device_view(b));
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets + 1);
	assert_int_equal(nvmk_ctrl_open_or_adopt(b, &o, &ctrl, &adopted), 0);
	assert_false(adopted);
	assert_int_equal(tsrv_stat(&c.t, "adopted"), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	verify_acked(&c, ns, nvmk_ctrl_get_qpair(ctrl));
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	crash_done(&c);
}

/* nvmk_ctrl_open on a backing that offers a controller to adopt: a reset,
 * the previous client's pool blocks given back (no tag collides), new I/O. */
static void test_open_over_view_resets(void **state)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct crash c;

	(void)state;
	crash_writer(&c, NULL, NULL);
	assert_int_equal(nvmk_backing_vfio_user_open(c.t.sock, NULL, &b), 0);
	assert_non_null(nvmk_backing_device_view(b));
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_null(nvmk_backing_device_view(b));
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets + 1);
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables + 1);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	qp = nvmk_ctrl_get_qpair(ctrl);
	assert_non_null(qp);
	verify_acked(&c, ns, qp);
	new_io(ctrl, ns, qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	crash_done(&c);
}

/* The caller asks for a reset (no_adopt) although the server keeps memory. */
static void test_no_adopt_option_resets(void **state)
{
	struct nvmk_vfio_user_opts vo = {.no_adopt = true};
	struct nvmk_backing *b;
	struct crash c;

	(void)state;
	crash_writer(&c, NULL, NULL);
	assert_int_equal(nvmk_backing_vfio_user_open(c.t.sock, &vo, &b), 0);
	assert_null(nvmk_backing_device_view(b));
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets + 1);
	assert_int_equal(tsrv_stat(&c.t, "dma_maps"), 0); /* the kept maps went with the reset */
	nvmk_backing_destroy(b);
	crash_done(&c);
}

/* The manager opens "vfio-user:PATH" devices with nvmk_ctrl_open_or_adopt. */
static const char *env_no_pool(const char *name)
{
	return !strcmp(name, "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG") ? "off" : NULL;
}

static void test_manager_adopts(void **state)
{
	struct nvmk_mgr_device_spec spec = {.kind = NVMK_MGR_BACKING_FACTORY};
	struct nvmk_mgr *mgr;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct crash c;
	char id[128];

	(void)state;
	crash_writer(&c, NULL, NULL);
	snprintf(id, sizeof(id), "vfio-user:%s", c.t.sock);
	spec.id = id;
	spec.factory.create = nvmk_mgr_vfio_user_backing;
	spec.ctrl_opts = topts();
	assert_int_equal(nvmk_mgr_create_from_env(env_no_pool, &spec, 1, &mgr), 0);
	assert_int_equal(nvmk_mgr_get_namespace(mgr, id, 1, &ns), 0);
	assert_int_equal(tsrv_stat(&c.t, "adopted"), 1);
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables);
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets);
	assert_int_equal(tsrv_stat(&c.t, "admin.0x01"), c.create_sq);
	assert_int_equal(nvmk_mgr_create_qpair(mgr, id, NULL, &qp), 0);
	verify_acked(&c, ns, qp);
	/* a qpair the manager creates is a new queue on the adopted controller: still no CC.EN */
	assert_int_equal(tsrv_stat(&c.t, "cc_enables"), c.cc_enables);
	nvmk_qpair_destroy(qp);
	assert_int_equal(nvmk_mgr_shutdown(mgr), 0);
	nvmk_mgr_destroy(mgr);
	crash_done(&c);
}

/* ---- the vendor regions, driven by hand ---- */

static uint16_t raw_id = 1;

/* One command; its reply's errno (0 on success), payload into @out, an fd
 * that came with it into @fd (closed when NULL). */
static int raw_cmd(int sock, uint16_t cmd, const void *p, size_t len, void *out, size_t max,
		   int *fd)
{
	static uint8_t buf[NVMK_VFU_MSG_MAX(1 << 20)];
	struct nvmk_vfu_hdr h = {.msg_id = raw_id++, .cmd = cmd, .flags = NVMK_VFU_F_TYPE_CMD};
	int fds[4];
	unsigned nfds = 0;

	if (fd)
		*fd = -1;
	assert_int_equal(nvmk_vfu_send(sock, &h, p, len, NULL, 0), 0);
	assert_true(nvmk_vfu_recv(sock, buf, sizeof(buf), fds, 4, &nfds) > 0);
	memcpy(&h, buf, sizeof(h));
	for (unsigned i = 0; i < nfds; i++) {
		if (fd && i == 0)
			*fd = fds[0];
		else
			close(fds[i]);
	}
	if (h.flags & NVMK_VFU_F_ERROR) {
		assert_int_equal(h.size, 16);
		return (int)h.error;
	}
	if (out)
		memcpy(out, buf + sizeof(h), h.size - sizeof(h) < max ? h.size - sizeof(h) : max);
	return 0;
}

static int region_rw(int sock, uint32_t region, uint64_t off, uint32_t count, const void *data)
{
	struct nvmk_vfu_region_rw rw = {off, region, count};
	uint8_t msg[sizeof(rw) + 64];

	memcpy(msg, &rw, sizeof(rw));
	if (data)
		memcpy(msg + sizeof(rw), data, count);
	return raw_cmd(sock, data ? NVMK_VFU_REGION_WRITE : NVMK_VFU_REGION_READ, msg,
		       sizeof(rw) + (data ? count : 0), NULL, 0, NULL);
}

/* Bad uses of RESUME and MEMORY get an error reply, never a crash; the kept
 * state survives them, and a correct ADOPT still works afterwards. */
static void test_resume_region_misuse(void **state)
{
	static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
	uint8_t hello[4 + sizeof(json)] = {0, 0, 1, 0};
	struct nvmk_vfu_region_info ri = {.argsz = 256, .index = NVMK_VFU_REGION_RESUME};
	uint8_t rep[256];
	uint32_t bad = 0x12345678, adopt = NVMK_VFU_RESUME_CTL_ADOPT;
	struct crash c;
	int sock, fd;

	(void)state;
	memcpy(hello + 4, json, sizeof(json));
	crash_writer(&c, NULL, NULL);
	sock = unix_connect(c.t.sock);
	assert_true(sock >= 0);
	assert_int_equal(raw_cmd(sock, NVMK_VFU_VERSION, hello, sizeof(hello), NULL, 0, NULL), 0);
	/* before the region info was asked: no state to read or adopt */
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 8, NULL), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 4, &adopt), EINVAL);
	assert_int_equal(
	    raw_cmd(sock, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), rep, sizeof(rep), &fd),
	    0);
	assert_int_equal(fd, -1);
	memcpy(&ri, rep, sizeof(ri));
	assert_true(ri.size >= sizeof(struct nvmk_vfu_resume_hdr));
	assert_true(ri.cap_offset >= sizeof(ri));
	/* out of bounds, wrong control value, wrong width or offset, MEMORY by message */
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, ri.size, 4, NULL), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, ri.size - 4, 8, NULL), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 4, &bad), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 4, 4, &adopt), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 8, "ADOPADOP"), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_MEMORY, 0, 4, NULL), EINVAL);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_MEMORY, 0, 4, &adopt), EINVAL);
	/* the MEMORY region comes with the fd of the pool file */
	ri = (struct nvmk_vfu_region_info){.argsz = 256, .index = NVMK_VFU_REGION_MEMORY};
	assert_int_equal(
	    raw_cmd(sock, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), rep, sizeof(rep), &fd),
	    0);
	assert_true(fd >= 0);
	close(fd);
	/* a region beyond the vendor ones */
	ri = (struct nvmk_vfu_region_info){.argsz = 256, .index = NVMK_VFU_NUM_REGIONS_EXT};
	assert_int_equal(
	    raw_cmd(sock, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, NULL), EINVAL);
	assert_true(tsrv_stat(&c.t, "protocol_errors") >= 9);
	/* nothing was dropped or reset by the refusals; ADOPT takes the maps */
	assert_int_equal(tsrv_stat(&c.t, "function_resets"), c.fresets);
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 4, &adopt), 0);
	assert_int_equal(tsrv_stat(&c.t, "adopted"), 1);
	/* adopted: the state is gone, a second ADOPT is refused */
	assert_int_equal(region_rw(sock, NVMK_VFU_REGION_RESUME, 0, 4, &adopt), EINVAL);
	close(sock);
	crash_done(&c);
}

/* ---- the resume blob's parser ---- */

struct blob {
	struct nvmk_vfu_resume_hdr h;
	struct nvmk_vfu_resume_map m[2];
	struct nvmk_vfu_resume_sq sq[2];
	struct nvmk_vfu_resume_cq cq[2];
	struct nvmk_vfu_resume_cmd cmd[1];
};

static void blob_good(struct blob *b)
{
	memset(b, 0, sizeof(*b));
	b->h = (struct nvmk_vfu_resume_hdr){.magic = NVMK_VFU_RESUME_MAGIC,
					    .version = NVMK_VFU_RESUME_VERSION,
					    .hdr_size = sizeof(b->h),
					    .total_size = sizeof(*b),
					    .nmaps = 2,
					    .nsq = 2,
					    .ncq = 2,
					    .ncmd = 1};
	b->m[0] = (struct nvmk_vfu_resume_map){0x100000000ull, 0x4000, 0, 0, 3};
	b->m[1] = (struct nvmk_vfu_resume_map){0x100005000ull, 0x1000, 0x4000, 1, 3};
	b->sq[0] = (struct nvmk_vfu_resume_sq){0, 0, 32, 0x100000000ull, 1, 2};
	b->sq[1] = (struct nvmk_vfu_resume_sq){1, 1, 64, 0x100001000ull, 0, 0};
	b->cq[0] = (struct nvmk_vfu_resume_cq){.qid = 0, .size = 32, .base = 0x100002000ull};
	b->cq[1] = (struct nvmk_vfu_resume_cq){.qid = 1,
					       .iv = 1,
					       .ien = 1,
					       .phase = 1,
					       .size = 64,
					       .base = 0x100003000ull,
					       .head = 5,
					       .tail = 3};
	b->cmd[0] = (struct nvmk_vfu_resume_cmd){0, 0x41, 0x0c, 2, 0};
}

static int parse(struct blob *b, size_t len)
{
	struct nvmk_vfu_resume r;
	char why[200] = "";
	int rc = nvmk_vfu_resume_parse(b, len, &r, why, sizeof(why));

	if (rc)
		assert_true(why[0] != 0); /* every refusal says why */
	return rc;
}

static void test_resume_parser(void **state)
{
	struct blob b;

	(void)state;
	_Static_assert(sizeof(struct blob) == 72 + 64 + 48 + 64 + 8, "no padding in the test blob");
	blob_good(&b);
	assert_int_equal(parse(&b, sizeof(b)), 0);
	assert_int_equal(parse(&b, sizeof(b) - 1), -EINVAL); /* short */
	assert_int_equal(parse(&b, 10), -EINVAL);
	b.h.magic ^= 1;
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.h.version = 2;
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.h.total_size += 8; /* lying size */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.h.ncmd = 0x7fffffff; /* counts beyond any blob */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.sq[1].tail = 64; /* tail outside the queue */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.cq[1].phase = 2;
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.sq[1].cqid = 7; /* a CQ that is not listed */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.sq[1].qid = 0; /* listed twice */
	b.sq[1].cqid = 0;
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.m[1].iova = 0x100003000ull; /* overlaps map 0 */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.m[0].size = 0x4001; /* unaligned */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.cmd[0].sqid = 1; /* an AER on an I/O queue */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.cmd[0].kind = 3;
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	blob_good(&b);
	b.cq[0].size = 1; /* a queue of one entry */
	assert_int_equal(parse(&b, sizeof(b)), -EINVAL);
	/* unaligned buffer */
	{
		static uint64_t raw[64];

		blob_good(&b);
		memcpy((uint8_t *)raw + 4, &b, sizeof(b));
		assert_int_equal(parse((struct blob *)((uint8_t *)raw + 4), sizeof(b)), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resume_parser),
	    cmocka_unit_test(test_adopt_after_crash),
	    cmocka_unit_test(test_adopt_hung_command_resets),
	    cmocka_unit_test(test_no_pool_offered_resets),
	    cmocka_unit_test(test_no_adopt_option_resets),
	    cmocka_unit_test(test_open_over_view_resets),
	    cmocka_unit_test(test_resume_region_misuse),
	    cmocka_unit_test(test_manager_adopts),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!getenv("NVMK_TEST_VERBOSE"))
		nvmk_log_set_level(getenv("NVMK_TEST_INFO") ? NVMK_LOG_INFO : NVMK_LOG_ERR);
	if (getenv("NVMK_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NVMK_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
