// SPDX-License-Identifier: MIT
/*
 * Servicing over vfio-user across a real process boundary: the controller
 * lives in an nvmekeep-emu process, the driver is saved in this process with
 * writes in flight (held by a delay fault) and restored in a new one
 * (fork + exec of this binary with --child), which must
 *  - get every in-flight write's completion, exactly once, on its original
 *    request (token),
 *  - find the data on the device,
 *  - send no IDENTIFY, create no queue and not enable the controller again
 *    (the emulator's stats, read through its control socket).
 * Two ways across:
 *  - reconnect: the old process closes its connection to a --persist server
 *    (which quiesces and keeps the controller), the new one connects and
 *    maps the same memory at the same IOVAs;
 *  - handover: the connection itself, the eventfds and the memfds are
 *    inherited across exec (nvmk_backing_vfio_user_export_fds / _adopt), with
 *    a server without --persist: a disconnect would have reset it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"
#include "vfu_test.h"

#define NINFLIGHT 8
#define DATA_TAG  "tdata"

static char self_path[4096];

static void pattern(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 151u + i * 13u + (i >> 9));
}

static atomic_int done[NINFLIGHT + 1], errs;

static void req_cb(void *arg, const struct nvmk_cpl *cpl)
{
	uintptr_t id = (uintptr_t)arg;

	if (id >= 1 && id <= NINFLIGHT)
		atomic_fetch_add(&done[id], 1);
	if (cpl->err)
		atomic_fetch_add(&errs, 1);
}

static int resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	if (token < 1 || token > NINFLIGHT)
		return -1;
	*cb = req_cb;
	*cb_arg = (void *)(uintptr_t)token;
	return 0;
}

/* ---- the successor (exec'd with --child) ---- */

static int child_fail(const char *what, int rc)
{
	fprintf(stderr, "child: %s failed: %d\n", what, rc);
	return 10;
}

/* argv: --child MODE SOCK CTL BLOB POOLFD DATA_IOVA QID IDENT CSQ CCQ CCEN HANDOVER */
static int child_main(int argc, char **argv)
{
	struct nvmk_restore_opts ro = {.resolve = resolve};
	struct nvmk_backing *b = NULL;
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_buf d;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct tsrv t = {0};
	static unsigned char got[4096], want[4096];
	char blob[65536];
	ssize_t blen;
	int fd, rc;

	if (argc != 15)
		return child_fail("arguments", argc);
	const char *mode = argv[2];
	snprintf(t.sock, sizeof(t.sock), "%s", argv[3]);
	snprintf(t.ctl, sizeof(t.ctl), "%s", argv[4]);
	fd = open(argv[5], O_RDONLY);
	if (fd < 0)
		return child_fail("open blob", -errno);
	blen = read(fd, blob, sizeof(blob));
	close(fd);
	if (blen <= 0)
		return child_fail("read blob", (int)blen);
	uint64_t data_iova = strtoull(argv[7], NULL, 16);
	uint16_t qid = (uint16_t)atoi(argv[8]);

	rc = nvmk_dma_pool_open(atoi(argv[6]), &pool);
	if (rc)
		return child_fail("pool open", rc);
	if (!strcmp(mode, "handover")) {
		struct nvmk_vfio_user_handover ho;

		char id[128];

		/* the manager's factory with the handover string: adopt */
		snprintf(id, sizeof(id), "vfio-user:%s", t.sock);
		rc = nvmk_vfio_user_handover_parse(argv[13], &ho);
		if (!rc)
			rc = nvmk_mgr_vfio_user_backing(argv[13], id, true, &b);
	} else {
		struct nvmk_vfio_user_opts vo = {.no_reset = true};

		rc = nvmk_backing_vfio_user_open(t.sock, &vo, &b);
	}
	if (rc)
		return child_fail("attach", rc);
	b->pool = pool;
	/* the in-flight writes read from this block: map it back first, so the
	 * device can finish them */
	rc = nvmk_backing_dma_reclaim(b, DATA_TAG, data_iova, &d);
	if (rc)
		return child_fail("reclaim data", rc);
	rc = nvmk_ctrl_restore(b, blob, (size_t)blen, &ro, &ctrl);
	if (rc)
		return child_fail("restore", rc);
	rc = nvmk_dma_pool_finish_restore(pool);
	if (rc)
		return child_fail("finish restore", rc);
	qp = nvmk_ctrl_restored_qpair(ctrl, qid);
	ns = nvmk_ctrl_restored_ns(ctrl, 1);
	if (!qp || !ns)
		return child_fail("restored handles", -ENOENT);
	for (int i = 0; i < 500; i++) {
		int all = 1;

		nvmk_qpair_wait(qp, 10);
		for (int k = 1; k <= NINFLIGHT; k++)
			all &= atomic_load(&done[k]) >= 1;
		if (all)
			break;
	}
	for (int k = 1; k <= NINFLIGHT; k++)
		if (atomic_load(&done[k]) != 1)
			return child_fail("completion exactly once", k);
	if (atomic_load(&errs))
		return child_fail("completion status", atomic_load(&errs));
	for (unsigned k = 0; k < NINFLIGHT; k++) {
		if (nvmk_ns_read(ns, qp, got, 1024 + k * 8, 8))
			return child_fail("read back", (int)k);
		pattern(want, sizeof(want), 500 + k);
		if (memcmp(got, want, sizeof(want)))
			return child_fail("data", (int)k);
	}
	/* the restore sent no IDENTIFY, created no queue, did not re-enable */
	if (tsrv_stat(&t, "admin.0x06") != atoll(argv[9]) ||
	    tsrv_stat(&t, "admin.0x01") != atoll(argv[10]) ||
	    tsrv_stat(&t, "admin.0x05") != atoll(argv[11]) ||
	    tsrv_stat(&t, "cc_enables") != atoll(argv[12]) ||
	    tsrv_stat(&t, "function_resets") != atoll(argv[14]))
		return child_fail("stats unchanged", 0);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_dma_free(b, &d);
	nvmk_backing_destroy(b);
	nvmk_dma_pool_destroy(pool);
	return 0;
}

/* ---- the predecessor (the test itself) ---- */

static void service_across_exec(bool handover)
{
	struct nvmk_ctrl_opts o = {.admin_timeout_ms = 5000,
				   .io_timeout_ms = 10000,
				   .health_check_ms = 20,
				   .max_io_queues = 2};
	struct nvmk_save_opts so = {.keep_alive = true};
	struct nvmk_vfio_user_handover ho;
	struct nvmk_backing *b;
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_buf d;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct tsrv t;
	char blobpath[128], args[10][64], hostr[8192] = "-";
	void *blob;
	size_t len;
	pid_t pid;
	int st, fd;

	if (handover)
		assert_int_equal(tsrv_start(&t, "--ns", "ram:16M", NULL), 0);
	else
		assert_int_equal(tsrv_start(&t, "--persist", "--ns", "ram:16M", NULL), 0);
	assert_int_equal(nvmk_dma_pool_create(2048, 0, &pool), 0);
	assert_int_equal(nvmk_backing_vfio_user_open(t.sock, NULL, &b), 0);
	b->pool = pool;
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(ctrl, NULL, &qp), 0);
	assert_int_equal(nvmk_backing_dma_alloc(b, NINFLIGHT * 4096, DATA_TAG, &d), 0);
	for (unsigned k = 0; k < NINFLIGHT; k++)
		pattern((uint8_t *)d.mem.vaddr + k * 4096, 4096, 500 + k);

	/* writes held by the device across the save */
	assert_true(tsrv_ok(&t, "{\"cmd\":\"fault\",\"kind\":\"delay\",\"opcode\":1,\"count\":8,"
				"\"delay_us\":300000}"));
	for (uintptr_t k = 0; k < NINFLIGHT; k++)
		assert_int_equal(nvmk_ns_submit_write(ns, qp, &d, k * 4096, 1024 + k * 8, 8, 0,
						      req_cb, (void *)(k + 1)),
				 0);
	assert_int_equal(nvmk_qpair_outstanding(qp), NINFLIGHT);
	snprintf(args[0], 64, "%u", nvmk_qpair_id(qp));
	snprintf(args[1], 64, "%" PRIx64, d.iova);
	snprintf(args[2], 64, "%lld", tsrv_stat(&t, "admin.0x06"));
	snprintf(args[3], 64, "%lld", tsrv_stat(&t, "admin.0x01"));
	snprintf(args[4], 64, "%lld", tsrv_stat(&t, "admin.0x05"));
	snprintf(args[5], 64, "%lld", tsrv_stat(&t, "cc_enables"));
	snprintf(args[6], 64, "%d", nvmk_dma_pool_fd(pool));
	snprintf(args[7], 64, "%lld", tsrv_stat(&t, "function_resets"));

	assert_int_equal(nvmk_ctrl_save(ctrl, &so, &blob, &len), 0);
	nvmk_ctrl_detach(ctrl);
	nvmk_backing_dma_forget(b, &d);
	snprintf(blobpath, sizeof(blobpath), "%s/blob", t.dir);
	fd = open(blobpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, blob, len), (ssize_t)len);
	close(fd);
	free(blob);
	/* the pool outlives this process's use of it */
	assert_int_equal(fcntl(nvmk_dma_pool_fd(pool), F_SETFD, 0), 0);
	if (handover) {
		assert_int_equal(nvmk_backing_vfio_user_export_fds(b, &ho), 0);
		assert_true(nvmk_vfio_user_handover_format(&ho, hostr, sizeof(hostr)) > 0);
	} else {
		/* the client goes away: the --persist server quiesces */
		nvmk_backing_destroy(b);
		b = NULL;
	}

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(self_path, self_path, "--child", handover ? "handover" : "reconnect", t.sock,
		      t.ctl, blobpath, args[6], args[1], args[0], args[2], args[3], args[4],
		      args[5], hostr, args[7], (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000 && waitpid(pid, &st, WNOHANG) != pid; i++)
		tsleep_ms(10);
	if (kill(pid, 0) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("child did not finish in 30 s");
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	if (b) {
		/* the successor had the connection; our copies go now */
		nvmk_backing_destroy(b);
		close(ho.sock_fd);
		for (unsigned i = 0; i < ho.nirqs; i++)
			close(ho.irq_fds[i]);
	}
	unlink(blobpath);
	nvmk_dma_pool_destroy(pool);
	assert_int_equal(tsrv_stop(&t), 0);
}

static void test_save_exit_restore_reconnect_persist(void **state)
{
	(void)state;
	service_across_exec(false);
}

static void test_save_exec_restore_handover(void **state)
{
	(void)state;
	service_across_exec(true);
}

static void test_handover_string(void **state)
{
	struct nvmk_vfio_user_handover a = {0}, b;
	char s[4096];

	(void)state;
	snprintf(a.path, sizeof(a.path), "/tmp/x;y/s");
	a.sock_fd = 7;
	a.next_msg_id = 65535;
	a.next_iova = 0x100005000ull;
	a.nirqs = 3;
	a.irq_fds[0] = 8, a.irq_fds[1] = 9, a.irq_fds[2] = 10;
	a.nmaps = 2;
	a.maps[0] = (struct nvmk_vfio_handover_map){0x100000000ull, 0x2000, 11, 0};
	a.maps[1] = (struct nvmk_vfio_handover_map){0x100003000ull, 0x1000, 11, 0x2000};
	assert_true(nvmk_vfio_user_handover_format(&a, s, sizeof(s)) > 0);
	assert_int_equal(nvmk_vfio_user_handover_parse(s, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(nvmk_vfio_user_handover_format(&a, s, 20), -ENOSPC);
	/* malformed strings are refused */
	assert_int_equal(nvmk_vfio_user_handover_parse("vfu2;sock=1", &b), -EINVAL);
	assert_int_equal(
	    nvmk_vfio_user_handover_parse("vfu1;sock=-1;msgid=0;iova=0;irqs=;maps=;path=x", &b),
	    -EINVAL);
	assert_int_equal(
	    nvmk_vfio_user_handover_parse("vfu1;sock=3;msgid=70000;iova=0;irqs=;maps=;path=x", &b),
	    -EINVAL);
	assert_int_equal(
	    nvmk_vfio_user_handover_parse("vfu1;sock=3;msgid=1;iova=0;irqs=4,;maps=;path=x", &b),
	    -EINVAL);
	assert_int_equal(nvmk_vfio_user_handover_parse(
			     "vfu1;sock=3;msgid=1;iova=0;irqs=;maps=1000:0:5:0;path=x", &b),
			 -EINVAL);
	assert_int_equal(
	    nvmk_vfio_user_handover_parse("vfu1;sock=3;msgid=1;iova=0;irqs=;maps=;path=", &b),
	    -EINVAL);
	assert_int_equal(
	    nvmk_vfio_user_handover_parse("vfu1;sock=3;msgid=1;iova=0;irqs=4;maps=;path=/s", &b),
	    0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handover_string),
	    cmocka_unit_test(test_save_exit_restore_reconnect_persist),
	    cmocka_unit_test(test_save_exec_restore_handover),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!getenv("NVMK_TEST_VERBOSE"))
		nvmk_log_set_level(NVMK_LOG_ERR);
	else
		nvmk_log_set_level(NVMK_LOG_INFO);
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child_main(argc, argv);
	if (!realpath("/proc/self/exe", self_path))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
