// SPDX-License-Identifier: MIT
/*
 * The driver over vfio-user against an nvmekeep-emu process: I/O on several
 * queue pairs (mmap'd and trapped doorbells, polled and interrupt mode),
 * controller reset, faults injected through the control socket, a server
 * that dies under I/O, a client killed mid-I/O and a new one reconnecting to
 * a --persist server, and the errors a user gets for a bad socket.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"
#include "nvmekeep/vfio_user.h"
#include "vfu_test.h"

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

/* write then read back 64 KiB at @slba through @qp */
static void rw_verify(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba, unsigned seed)
{
	static unsigned char wbuf[65536], rbuf[65536];

	pattern(wbuf, sizeof(wbuf), seed);
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(nvmk_ns_write(ns, qp, wbuf, slba, sizeof(wbuf) / 512), 0);
	assert_int_equal(nvmk_ns_read(ns, qp, rbuf, slba, sizeof(rbuf) / 512), 0);
	assert_memory_equal(wbuf, rbuf, sizeof(wbuf));
}

static void io_session(bool trap_doorbells)
{
	struct nvmk_vfio_user_opts vo = {.no_doorbell_mmap = trap_doorbells};
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp[3];
	struct tsrv t;

	assert_int_equal(tsrv_start(&t, "--ns", "ram:64M", "--ns", "null:1G:4096", NULL), 0);
	assert_int_equal(nvmk_backing_vfio_user_open(t.sock, &vo, &b), 0);
	assert_true(nvmk_backing_is_vfio_user(b));
	assert_string_equal(b->ops->kind, "vfio-user");
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	for (unsigned i = 0; i < 3; i++) {
		struct nvmk_qpair_opts qo = {.mode = i == 1 ? NVMK_CPL_POLL : NVMK_CPL_INTERRUPT};

		assert_int_equal(nvmk_qpair_create(ctrl, &qo, &qp[i]), 0);
	}
	for (unsigned r = 0; r < 4; r++)
		for (unsigned i = 0; i < 3; i++)
			rw_verify(ns, qp[i], (r * 3 + i) * 256, r * 3 + i + 1);
	/* the device saw it: enable, queue creation, writes, mapped memory */
	assert_int_equal(tsrv_stat(&t, "cc_enables"), 1);
	assert_true(tsrv_stat(&t, "admin.0x05") >= 3); /* Create I/O CQ */
	assert_true(tsrv_stat(&t, "io.0x01") >= 12);   /* Write */
	assert_true(tsrv_stat(&t, "mapped_dma_bytes") > 0);
	assert_int_equal(tsrv_stat(&t, "client.connected"), 1);
	{
		/* one client at a time: a second one is told so */
		struct nvmk_backing *b2 = NULL;

		assert_int_equal(nvmk_backing_vfio_user_open(t.sock, NULL, &b2), -EBUSY);
		assert_null(b2);
	}
	for (unsigned i = 0; i < 3; i++)
		nvmk_qpair_destroy(qp[i]);

	/* a controller reset and the data is still there */
	assert_int_equal(nvmk_ctrl_reset(ctrl), 0);
	assert_int_equal(tsrv_stat(&t, "cc_enables"), 2);
	{
		static unsigned char w[65536], r[65536];
		struct nvmk_qpair *q = nvmk_ctrl_get_qpair(ctrl);

		assert_non_null(q);
		pattern(w, sizeof(w), 1);
		assert_int_equal(nvmk_ns_read(ns, q, r, 0, sizeof(r) / 512), 0);
		assert_memory_equal(w, r, sizeof(w));
		/* queue re-created after the reset: first doorbell values repeat */
		rw_verify(ns, q, 4096, 77);
	}
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	assert_int_equal(tsrv_wait_stat(&t, "client.connected", 0), 0);
	assert_int_equal(tsrv_wait_stat(&t, "dma_maps", 0), 0);
	assert_int_equal(tsrv_stop(&t), 0);
}

static void test_io_mmap_doorbells(void **state)
{
	(void)state;
	io_session(false);
}

static void test_io_trapped_doorbells(void **state)
{
	(void)state;
	io_session(true);
}

/* Faults of the emulator's vocabulary, injected from outside. */
static void test_faults_via_control(void **state)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	static unsigned char buf[4096];
	struct tsrv t;

	(void)state;
	assert_int_equal(tsrv_start(&t, "--ns", "ram:16M", NULL), 0);
	assert_int_equal(nvmk_backing_vfio_user_open(t.sock, NULL, &b), 0);
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	qp = nvmk_ctrl_get_qpair(ctrl);
	assert_non_null(qp);
	assert_int_equal(nvmk_ns_read(ns, qp, buf, 0, 8), 0);

	/* Unrecovered Read Error (SCT 2h, SC 81h) on the next read, once */
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"status\",\"opcode\":2,\"count\":1,"
				"\"status\":641}"));
	assert_int_not_equal(nvmk_ns_read(ns, qp, buf, 0, 8), 0);
	assert_int_equal(nvmk_last_status(), 641);
	assert_int_equal(nvmk_ns_read(ns, qp, buf, 0, 8), 0);

	/* a delayed write still completes */
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"delay\",\"opcode\":1,\"count\":1,"
				"\"delay_us\":50000}"));
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 8, 8), 0);

	/* bad requests are refused with a reason */
	assert_false(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"sparkle\"}"));
	assert_false(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"delay\",\"qid\":-1}"));
	assert_false(tsrv_ok(&t, "not json"));
	assert_false(tsrv_ok(&t, "{\"cmd\":\"reboot\"}"));

	/* controller fatal status: the controller fails for good (driver policy) */
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"fatal-now\"}"));
	for (int i = 0; i < 300 && !nvmk_ctrl_failed(ctrl); i++)
		tsleep_ms(10);
	assert_int_equal(nvmk_ctrl_failed(ctrl), -EIO);
	assert_int_equal(nvmk_ns_read(ns, qp, buf, 0, 8), -EIO);
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"clear\"}"));

	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	assert_int_equal(tsrv_stop(&t), 0);
}

/* ---- server gone: every request completes once, with an error ---- */

#define NREQ 32
static atomic_int done_count[NREQ];
static atomic_int err_count;

static void gone_cb(void *arg, const struct nvmk_cpl *cpl)
{
	uintptr_t i = (uintptr_t)arg;

	atomic_fetch_add(&done_count[i], 1);
	if (cpl->err)
		atomic_fetch_add(&err_count, 1);
}

static void test_server_gone(void **state)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	struct tsrv t;
	int total = 0;

	(void)state;
	assert_int_equal(tsrv_start(&t, "--ns", "ram:16M", NULL), 0);
	assert_int_equal(nvmk_backing_vfio_user_open(t.sock, NULL, &b), 0);
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(ctrl, NULL, &qp), 0);
	assert_int_equal(nvmk_ctrl_dma_alloc(ctrl, NREQ * 4096, &d), 0);
	/* writes held in the device, then the server dies under them */
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"hang\",\"opcode\":1}"));
	for (uintptr_t i = 0; i < NREQ; i++) {
		atomic_store(&done_count[i], 0);
		assert_int_equal(
		    nvmk_ns_submit_write(ns, qp, &d, i * 4096, i * 8, 8, 0, gone_cb, (void *)i), 0);
	}
	atomic_store(&err_count, 0);
	tsleep_ms(50);
	assert_true(tsrv_stop_sig(&t, SIGKILL) != 0);
	for (int i = 0; i < 1000 && total < NREQ; i++) {
		nvmk_qpair_wait(qp, 10);
		total = 0;
		for (int k = 0; k < NREQ; k++)
			total += atomic_load(&done_count[k]);
	}
	for (int k = 0; k < NREQ; k++)
		assert_int_equal(atomic_load(&done_count[k]), 1);
	assert_int_equal(atomic_load(&err_count), NREQ);
	assert_int_not_equal(nvmk_ctrl_failed(ctrl), 0);
	/* later requests fail at once, and completions never come twice */
	assert_int_not_equal(nvmk_ns_write(ns, qp, "x", 0, 1), 0);
	nvmk_qpair_process_completions(qp, 0);
	for (int k = 0; k < NREQ; k++)
		assert_int_equal(atomic_load(&done_count[k]), 1);
	nvmk_qpair_destroy(qp);
	nvmk_ctrl_dma_free(ctrl, &d);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
}

/* ---- a client killed mid-I/O, a new one reconnects (--persist) ---- */

#define KBLOCKS 512 /* 4 KiB writes, one per slot */

static void writer_child(const char *sock, atomic_uint *acked)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	static unsigned char buf[4096];

	if (nvmk_backing_vfio_user_open(sock, NULL, &b) || nvmk_ctrl_open(b, &o, &ctrl) ||
	    nvmk_ns_open(ctrl, 1, 0, &ns) || !(qp = nvmk_ctrl_get_qpair(ctrl)))
		_exit(2);
	/* forever (until killed): write slot k, then publish it as acknowledged */
	for (unsigned k = 0;; k = (k + 1) % KBLOCKS) {
		pattern(buf, sizeof(buf), k + 1000 * (atomic_load(&acked[KBLOCKS]) + 1));
		if (nvmk_ns_write(ns, qp, buf, (uint64_t)k * 8, 8))
			_exit(3);
		atomic_store(&acked[k], atomic_load(&acked[KBLOCKS]) + 1);
		if (k == KBLOCKS - 1)
			atomic_fetch_add(&acked[KBLOCKS], 1);
	}
}

/*
 * @held: a write is held in the device (delay fault) when the client is
 * killed. The new client has no saved state: it opens with a reset
 * (DEVICE_RESET before any DMA_MAP), so the held write can never complete
 * into its memory; what the write carried may or may not be on the media.
 */
static void crash_and_reconnect(bool persist, bool held)
{
	struct nvmk_ctrl_opts o = topts();
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	static unsigned char want[4096], got[4096];
	atomic_uint *acked;
	long long resets0;
	struct tsrv t;
	pid_t pid;
	int st;

	if (persist)
		assert_int_equal(tsrv_start(&t, "--persist", "--ns", "ram:16M", NULL), 0);
	else
		assert_int_equal(tsrv_start(&t, "--ns", "ram:16M", NULL), 0);
	acked = mmap(NULL, (KBLOCKS + 1) * sizeof(*acked), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(acked != MAP_FAILED);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		writer_child(t.sock, acked);
	/* let it get well into its second lap, then kill it mid-I/O */
	for (int i = 0; i < 2000 && atomic_load(&acked[KBLOCKS]) < 1; i++)
		tsleep_ms(5);
	tsleep_ms(30);
	if (held) {
		long long w0;

		/* the next write is executed, its completion held for 3 s */
		assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"delay\",\"opcode\":1,"
					"\"count\":1,\"delay_us\":3000000}"));
		/* the child writes one at a time: the next write is the held one */
		w0 = tsrv_stat(&t, "io.0x01");
		for (int i = 0; i < 400 && tsrv_stat(&t, "io.0x01") <= w0; i++)
			tsleep_ms(5);
		tsleep_ms(20);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_true(atomic_load(&acked[KBLOCKS]) >= 1);
	assert_int_equal(tsrv_wait_stat(&t, "client.connected", 0), 0);
	/* the dead client's maps are dropped, or kept (--persist) for a client
	 * that could adopt them */
	if (!persist)
		assert_int_equal(tsrv_wait_stat(&t, "dma_maps", 0), 0);
	else
		assert_true(tsrv_stat(&t, "dma_maps") > 0);
	/* with --persist the controller was left enabled; without, reset */
	resets0 = tsrv_wait_stat(&t, "function_resets", persist ? 1 : 2);
	assert_int_equal(resets0, persist ? 1 : 2);

	/* a new client: every acknowledged write is there */
	assert_int_equal(nvmk_backing_vfio_user_open(t.sock, NULL, &b), 0);
	/* no saved state, and the dead client's queues were in ephemeral
	 * memory (no pool), which cannot be had back: no adoption, a reset at
	 * open, before any memory is mapped; the kept maps are dropped */
	assert_int_equal(tsrv_stat(&t, "function_resets"), resets0 + 1);
	assert_int_equal(tsrv_stat(&t, "adopted"), 0);
	assert_null(nvmk_backing_device_view(b));
	assert_int_equal(tsrv_stat(&t, "dma_maps"), 0);
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_int_equal(tsrv_stat(&t, "resume_refused"), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	qp = nvmk_ctrl_get_qpair(ctrl);
	assert_non_null(qp);
	for (unsigned k = 0; k < KBLOCKS; k++) {
		unsigned lap = atomic_load(&acked[k]);

		if (!lap)
			continue;
		assert_int_equal(nvmk_ns_read(ns, qp, got, (uint64_t)k * 8, 8), 0);
		pattern(want, sizeof(want), k + 1000 * lap);
		if (memcmp(want, got, sizeof(want))) {
			/* the write in flight at the kill may have landed: next lap's data */
			pattern(want, sizeof(want), k + 1000 * (lap + 1));
			assert_memory_equal(want, got, sizeof(want));
		}
	}
	assert_int_equal(tsrv_stat(&t, "connections"), 2);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	munmap(acked, (KBLOCKS + 1) * sizeof(*acked));
	assert_int_equal(tsrv_stop(&t), 0);
}

static void test_client_killed_persist(void **state)
{
	(void)state;
	crash_and_reconnect(true, false);
}

static void test_client_killed_held_write(void **state)
{
	(void)state;
	crash_and_reconnect(true, true);
}

static void test_client_killed_no_persist(void **state)
{
	(void)state;
	crash_and_reconnect(false, false);
}

/* ---- errors a user can act on ---- */

/* A fake server on @path: accepts once, reads a message, answers with @reply
 * bytes (or nothing), closes. */
struct fake {
	int lfd;
	const void *reply;
	size_t len;
	bool echo_header; /* put the received msg_id into the reply header */
};

static void *fake_server(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	uint8_t in[4096];

	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, in, sizeof(in));
	if (f->reply && n >= 16) {
		uint8_t out[256];

		memcpy(out, f->reply, f->len);
		if (f->echo_header)
			memcpy(out, in, 2); /* msg_id */
		if (write(fd, out, f->len) < 0)
			n = -1;
	}
	tsleep_ms(100);
	close(fd);
	return NULL;
}

static int fake_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static int open_against(const char *path, struct fake *f)
{
	struct nvmk_backing *b = NULL;
	pthread_t th;
	int rc;

	f->lfd = fake_listen(path);
	pthread_create(&th, NULL, fake_server, f);
	rc = nvmk_backing_vfio_user_open(path, NULL, &b);
	pthread_join(th, NULL);
	close(f->lfd);
	unlink(path);
	nvmk_backing_destroy(b);
	return rc;
}

static void test_user_errors(void **state)
{
	char dir[] = "/tmp/nvmk-vfu-err-XXXXXX", path[128];
	struct nvmk_backing *b = NULL;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(nvmk_backing_vfio_user_open(path, NULL, &b), -ENOENT);

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(nvmk_backing_vfio_user_open(path, NULL, &b), -ENOTSOCK);
	unlink(path);

	/* a socket nobody listens on any more */
	snprintf(path, sizeof(path), "%s/stale", dir);
	close(fake_listen(path));
	assert_int_equal(nvmk_backing_vfio_user_open(path, NULL, &b), -ECONNREFUSED);
	unlink(path);

	/* something that answers, but not vfio-user */
	{
		static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
		struct fake f = {.reply = junk, .len = sizeof(junk) - 1};

		snprintf(path, sizeof(path), "%s/junk", dir);
		assert_int_equal(open_against(path, &f), -EPROTO);
	}
	/* a vfio-user server that refuses our version */
	{
		struct nvmk_vfu_hdr h = {.cmd = NVMK_VFU_VERSION,
					 .size = 16,
					 .flags = NVMK_VFU_F_TYPE_REPLY | NVMK_VFU_F_ERROR,
					 .error = ENOTSUP};
		struct fake f = {.reply = &h, .len = sizeof(h), .echo_header = true};

		snprintf(path, sizeof(path), "%s/oldver", dir);
		assert_int_equal(open_against(path, &f), -EPROTONOSUPPORT);
	}
	/* one that answers with another major version */
	{
		struct {
			struct nvmk_vfu_hdr h;
			struct nvmk_vfu_version v;
		} r = {{.cmd = NVMK_VFU_VERSION, .size = 20, .flags = NVMK_VFU_F_TYPE_REPLY},
		       {.major = 1, .minor = 0}};
		struct fake f = {.reply = &r, .len = sizeof(r), .echo_header = true};

		snprintf(path, sizeof(path), "%s/v1", dir);
		assert_int_equal(open_against(path, &f), -EPROTONOSUPPORT);
	}
	rmdir(dir);
}

/* The manager serves "vfio-user:PATH" devices and infers keep-alive "host"
 * for them (with no pool configured: "host,noprivatepool"). */
static const char *env_none(const char *name)
{
	(void)name;
	return NULL;
}

static const char *env_no_pool(const char *name)
{
	return !strcmp(name, "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG") ? "off" : NULL;
}

static void test_manager_device(void **state)
{
	char id[128];
	struct nvmk_mgr_device_spec spec = {.kind = NVMK_MGR_BACKING_FACTORY};
	struct nvmk_mgr *mgr;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	static unsigned char w[4096], r[4096];
	struct tsrv t;
	char *json = NULL;

	(void)state;
	(void)env_none;
	assert_int_equal(tsrv_start(&t, "--ns", "ram:16M", NULL), 0);
	snprintf(id, sizeof(id), "vfio-user:%s", t.sock);
	spec.id = id;
	spec.factory.create = nvmk_mgr_vfio_user_backing;
	spec.ctrl_opts = topts();
	assert_int_equal(nvmk_mgr_create_from_env(env_no_pool, &spec, 1, &mgr), 0);
	assert_string_equal(nvmk_mgr_config(mgr)->keep_alive.mode, "host,noprivatepool");
	assert_int_equal(nvmk_mgr_get_namespace(mgr, id, 1, &ns), 0);
	assert_int_equal(nvmk_mgr_create_qpair(mgr, id, NULL, &qp), 0);
	pattern(w, sizeof(w), 9);
	assert_int_equal(nvmk_ns_write(ns, qp, w, 0, 8), 0);
	assert_int_equal(nvmk_ns_read(ns, qp, r, 0, 8), 0);
	assert_memory_equal(w, r, sizeof(w));
	assert_int_equal(nvmk_mgr_status_json(mgr, &json), 0);
	assert_non_null(strstr(json, "\"vfio-user\""));
	free(json);
	nvmk_qpair_destroy(qp);
	assert_int_equal(nvmk_mgr_shutdown(mgr), 0);
	nvmk_mgr_destroy(mgr);
	assert_int_equal(tsrv_stop(&t), 0);
	/* a bad id is refused by the factory */
	assert_int_equal(
	    nvmk_mgr_vfio_user_backing(NULL, "vfio-user:", false, &(struct nvmk_backing *){0}),
	    -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_io_mmap_doorbells),
	    cmocka_unit_test(test_io_trapped_doorbells),
	    cmocka_unit_test(test_faults_via_control),
	    cmocka_unit_test(test_server_gone),
	    cmocka_unit_test(test_client_killed_persist),
	    cmocka_unit_test(test_client_killed_no_persist),
	    cmocka_unit_test(test_client_killed_held_write),
	    cmocka_unit_test(test_user_errors),
	    cmocka_unit_test(test_manager_device),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!getenv("NVMK_TEST_VERBOSE"))
		nvmk_log_set_level(NVMK_LOG_ERR);
	if (getenv("NVMK_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NVMK_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
