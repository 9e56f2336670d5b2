// SPDX-License-Identifier: MIT
/*
 * The NBD server in-process (manager + emulated controller + export) driven
 * by libnbd, a real client, and by a raw socket for what libnbd will not
 * send: every option, command and flag; every refusal and framing error; many
 * requests in flight with out-of-order replies and back-pressure; limits;
 * handshake timeout; a stalled handshake not holding others up; removal with
 * and without force; a stop with requests in flight (each one answered, the
 * acknowledged writes durable); the daemon's control-request handler.
 */
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/export.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"

#define NS1_BYTES (16u << 20) /* 512 B blocks */
#define NS2_BYTES (4u << 20)  /* 4 KiB blocks */

struct fx {
	char dir[64];
	char sock[128];
	struct nvmk_mgr *mgr;
	struct nvmk_export_server *srv;
};

static struct nvmk_export_opts base_opts(void)
{
	return (struct nvmk_export_opts){.threads = 2,
					 .max_connections = 8,
					 .max_inflight = 16,
					 .slots_per_thread = 32,
					 .handshake_timeout_ms = 2000,
					 .stop_grace_ms = 3000};
}

static int fx_start(struct fx *f, const struct nvmk_export_opts *o)
{
	struct nvmk_mgr_device_spec spec = {.id = "emu", .kind = NVMK_MGR_BACKING_EMU};
	struct nvmk_config cfg;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/nvmk-nbd-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/nbd.sock", f->dir);
	nvmk_emu_config_default(&spec.emu);
	spec.emu.serial = "TESTSERIAL42";
	spec.emu.nr_ns = 2;
	spec.emu.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1, .nblocks = NS1_BYTES >> 9, .lba_shift = 9, .backing = NVMK_EMU_BACK_RAM};
	spec.emu.ns[1] = (struct nvmk_emu_ns_config){
	    .nsid = 2, .nblocks = NS2_BYTES >> 12, .lba_shift = 12, .backing = NVMK_EMU_BACK_RAM};
	spec.ctrl_opts.max_io_queues = 8;
	nvmk_config_load(NULL, NULL, &cfg);
	cfg.private_pool.pages = 0; /* ephemeral DMA memory: the test does not save */
	char listen[160];

	snprintf(listen, sizeof(listen), "unix:%s", f->sock);
	if (nvmk_mgr_create(&cfg, NULL, &f->mgr) || nvmk_mgr_add_device(f->mgr, &spec) ||
	    nvmk_export_create(f->mgr, o, &f->srv) || nvmk_export_add_device(f->srv, "emu") ||
	    nvmk_export_listen(f->srv, listen) || nvmk_export_start(f->srv))
		return -1;
	return 0;
}

static void fx_stop(struct fx *f)
{
	nvmk_export_destroy(f->srv);
	nvmk_mgr_destroy(f->mgr);
	unlink(f->sock);
	rmdir(f->dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nvmk_export_opts o = base_opts();

	if (!f || fx_start(f, &o))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_stop(*state);
	free(*state);
	return 0;
}

static struct nbd_handle *open_h(struct fx *f, const char *name, bool structured, bool meta)
{
	struct nbd_handle *h = nbd_create();

	assert_non_null(h);
	assert_int_equal(nbd_set_export_name(h, name), 0);
	assert_int_equal(nbd_set_request_structured_replies(h, structured), 0);
	if (meta)
		assert_int_equal(nbd_add_meta_context(h, "base:allocation"), 0);
	assert_int_equal(nbd_set_full_info(h, true), 0);
	if (nbd_connect_unix(h, f->sock)) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

/* ---- options ---- */

struct names {
	int n;
	char name[8][64];
	char desc[8][192];
};

static int list_cb(void *ud, const char *name, const char *desc)
{
	struct names *l = ud;

	if (l->n < 8) {
		snprintf(l->name[l->n], 64, "%s", name);
		snprintf(l->desc[l->n], 192, "%s", desc);
		l->n++;
	}
	return 0;
}

static void test_list(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h = nbd_create();
	struct names l = {0};

	assert_int_equal(nbd_set_opt_mode(h, true), 0);
	assert_int_equal(nbd_connect_unix(h, f->sock), 0);
	assert_int_equal(nbd_opt_list(h, (nbd_list_callback){.callback = list_cb, .user_data = &l}),
			 2);
	assert_string_equal(l.name[0], "emu/1");
	assert_string_equal(l.name[1], "emu/2");
	assert_non_null(strstr(l.desc[0], "TESTSERIAL42"));
	assert_non_null(strstr(l.desc[1], "4194304 bytes"));
	assert_int_equal(nbd_opt_abort(h), 0);
	nbd_close(h);
}

static int ctx_cb(void *ud, const char *name)
{
	int *n = ud;

	if (!strcmp(name, "base:allocation"))
		(*n)++;
	return 0;
}

static void test_info_go(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h = nbd_create();
	int nctx = 0;
	char *desc;

	assert_int_equal(nbd_set_opt_mode(h, true), 0);
	assert_int_equal(nbd_set_full_info(h, true), 0);
	assert_int_equal(nbd_connect_unix(h, f->sock), 0);
	/* INFO on emu/2, then GO on it */
	assert_int_equal(nbd_set_export_name(h, "emu/2"), 0);
	assert_int_equal(nbd_opt_info(h), 0);
	assert_int_equal(nbd_get_size(h), NS2_BYTES);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 4096);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), 4096);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM), 128 << 10); /* MDTS 5 */
	desc = nbd_get_export_description(h);
	assert_non_null(desc);
	assert_non_null(strstr(desc, "TESTSERIAL42"));
	free(desc);
	/* meta contexts: listed (structured replies were negotiated by libnbd) */
	assert_int_equal(nbd_opt_list_meta_context(
			     h, (nbd_context_callback){.callback = ctx_cb, .user_data = &nctx}),
			 1);
	assert_int_equal(nctx, 1);
	/* unknown export: INFO fails, the session goes on */
	assert_int_equal(nbd_set_export_name(h, "emu/9"), 0);
	assert_int_equal(nbd_opt_info(h), -1);
	assert_int_equal(nbd_set_export_name(h, "nope"), 0);
	assert_int_equal(nbd_opt_info(h), -1);
	assert_int_equal(nbd_set_export_name(h, "emu/2"), 0);
	assert_int_equal(nbd_opt_go(h), 0);
	assert_int_equal(nbd_can_flush(h), 1);
	assert_int_equal(nbd_can_fua(h), 1);
	assert_int_equal(nbd_can_trim(h), 1);
	assert_int_equal(nbd_can_zero(h), 1);
	assert_int_equal(nbd_can_fast_zero(h), 1);
	assert_int_equal(nbd_can_cache(h), 1);
	assert_int_equal(nbd_can_multi_conn(h), 1);
	assert_int_equal(nbd_can_df(h), 1);
	assert_int_equal(nbd_is_read_only(h), 0);
	nbd_close(h);

	/* the empty name is the first namespace of the first device */
	h = open_h(f, "", true, false);
	assert_non_null(h);
	assert_int_equal(nbd_get_size(h), NS1_BYTES);
	nbd_close(h);
	/* GO on an unknown export fails */
	assert_null(open_h(f, "emu/3", true, false));
}

/* ---- commands ---- */

static int extent_cb(void *ud, const char *ctx, uint64_t off, uint32_t *e, size_t n, int *err)
{
	uint32_t *out = ud;

	(void)off;
	(void)err;
	if (!strcmp(ctx, "base:allocation") && n >= 2) {
		out[0] = e[0];
		out[1] = e[1];
		out[2] = (uint32_t)n;
	}
	return 0;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void commands_on(struct fx *f, bool structured)
{
	struct nbd_handle *h = open_h(f, "emu/1", structured, structured);
	static uint8_t w[256 << 10], r[256 << 10], z[256 << 10];
	uint32_t ext[3] = {0};

	assert_non_null(h);
	fill(w, sizeof(w), structured);
	assert_int_equal(nbd_pwrite(h, w, 65536, 8192, 0), 0);
	assert_int_equal(nbd_pread(h, r, 65536, 8192, 0), 0);
	assert_memory_equal(w, r, 65536);
	/* FUA write, flush */
	assert_int_equal(nbd_pwrite(h, w + 512, 512, 0, LIBNBD_CMD_FLAG_FUA), 0);
	assert_int_equal(nbd_flush(h, 0), 0);
	assert_int_equal(nbd_pread(h, r, 512, 0, 0), 0);
	assert_memory_equal(w + 512, r, 512);
	/* 256 KiB: beyond the offered 128 KiB maximum but within the buffer: split */
	assert_int_equal(nbd_pwrite(h, w, sizeof(w), 1 << 20, 0), 0);
	assert_int_equal(nbd_pread(h, r, sizeof(r), 1 << 20, 0), 0);
	assert_memory_equal(w, r, sizeof(w));
	/* trim (+FUA: a flush follows), write zeroes (deallocating, NO_HOLE, FAST_ZERO) */
	assert_int_equal(nbd_trim(h, 65536, 8192, LIBNBD_CMD_FLAG_FUA), 0);
	assert_int_equal(nbd_zero(h, 4096, 1 << 20, 0), 0);
	assert_int_equal(nbd_zero(h, 4096, (1 << 20) + 4096, LIBNBD_CMD_FLAG_NO_HOLE), 0);
	assert_int_equal(nbd_zero(h, 4096, (1 << 20) + 8192, LIBNBD_CMD_FLAG_FAST_ZERO), 0);
	assert_int_equal(nbd_zero(h, 4096, (1 << 20) + 12288, LIBNBD_CMD_FLAG_FUA), 0);
	assert_int_equal(nbd_pread(h, r, 16384, 1 << 20, 0), 0);
	assert_memory_equal(r, z, 16384);
	assert_memory_equal(r + 16384, w + 16384, 4096); /* untouched */
	/* FAST_ZERO with NO_HOLE: not fast on NVMe, ENOTSUP at once */
	assert_int_equal(nbd_zero(h, 4096, 0,
				  LIBNBD_CMD_FLAG_FAST_ZERO | LIBNBD_CMD_FLAG_NO_HOLE),
			 -1);
	assert_int_equal(nbd_get_errno(), ENOTSUP);
	assert_int_equal(nbd_cache(h, 65536, 0, 0), 0);
	if (structured) {
		assert_int_equal(nbd_block_status(h, 65536, 4096,
						  (nbd_extent_callback){.callback = extent_cb,
									.user_data = ext},
						  0),
				 0);
		assert_int_equal(ext[0], 65536);
		assert_int_equal(ext[1], 0); /* data: see src/export/io.c */
		assert_int_equal(ext[2], 2);
		/* clamped at the end of the export */
		assert_int_equal(nbd_block_status(h, 4096, NS1_BYTES - 4096,
						  (nbd_extent_callback){.callback = extent_cb,
									.user_data = ext},
						  LIBNBD_CMD_FLAG_REQ_ONE),
				 0);
		assert_int_equal(ext[0], 4096);
	}
	/* refusals the client library lets through with strict mode off */
	assert_int_equal(nbd_set_strict_mode(h, 0), 0);
	assert_int_equal(nbd_pread(h, r, 512, 100, 0), -1); /* unaligned */
	assert_int_equal(nbd_get_errno(), EINVAL);
	assert_int_equal(nbd_pwrite(h, w, 100, 0, 0), -1); /* unaligned length */
	assert_int_equal(nbd_get_errno(), EINVAL);
	assert_int_equal(nbd_pread(h, r, 512, NS1_BYTES, 0), -1); /* past the end */
	assert_int_equal(nbd_get_errno(), EINVAL);
	assert_int_equal(nbd_pwrite(h, w, 1024, NS1_BYTES - 512, 0), -1);
	assert_int_equal(nbd_get_errno(), ENOSPC);
	static uint8_t big[512 << 10];
	assert_int_equal(nbd_pread(h, big, sizeof(big), 0, 0), -1); /* over the buffer size */
	assert_int_equal(nbd_get_errno(), EINVAL);
	assert_int_equal(nbd_pwrite(h, big, sizeof(big), 0, 0), -1); /* payload drained */
	assert_int_equal(nbd_get_errno(), EINVAL);
	assert_int_equal(nbd_pwrite(h, w, 512, 0, LIBNBD_CMD_FLAG_NO_HOLE), -1); /* bad flag */
	assert_int_equal(nbd_get_errno(), EINVAL);
	if (!structured) {
		/* no meta context negotiated */
		assert_int_equal(nbd_block_status(h, 512, 0,
						  (nbd_extent_callback){.callback = extent_cb,
									.user_data = ext},
						  0),
				 -1);
	}
	/* the connection is still usable after every refusal */
	assert_int_equal(nbd_pread(h, r, 65536, 1 << 20, 0), 0);
	assert_memory_equal(r + 16384, w + 16384, 4096);
	assert_int_equal(nbd_shutdown(h, 0), 0);
	nbd_close(h);
}

static void test_commands_structured(void **state)
{
	commands_on(*state, true);
}

static void test_commands_simple(void **state)
{
	commands_on(*state, false);
}

/* Many requests in flight on one connection, more than max_inflight: all
 * complete with the right data (replies come out of order). */
struct done_ctx {
	int done, errors;
};

static int done_cb(void *ud, int *error)
{
	struct done_ctx *d = ud;

	d->done++;
	if (*error)
		d->errors++;
	return 1;
}

static void test_inflight(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h = open_h(f, "emu/2", true, false);
	enum { N = 96, BS = 8192 };
	static uint8_t w[N][BS], r[N][BS];
	struct done_ctx d = {0};

	assert_non_null(h);
	for (int i = 0; i < N; i++) {
		fill(w[i], BS, (unsigned)i + 100);
		assert_true(nbd_aio_pwrite(h, w[i], BS, (uint64_t)i * BS,
					   (nbd_completion_callback){.callback = done_cb,
								     .user_data = &d},
					   0) > 0);
	}
	while (d.done < N)
		assert_true(nbd_poll(h, 5000) >= 0);
	assert_int_equal(d.errors, 0);
	d.done = 0;
	for (int i = 0; i < N; i++)
		assert_true(nbd_aio_pread(h, r[i], BS, (uint64_t)i * BS,
					  (nbd_completion_callback){.callback = done_cb,
								    .user_data = &d},
					  0) > 0);
	while (d.done < N)
		assert_true(nbd_poll(h, 5000) >= 0);
	assert_int_equal(d.errors, 0);
	assert_memory_equal(w, r, sizeof(w));
	nbd_close(h);
}

/* Multi-conn: writes on four connections, a flush on one, reads on another. */
static void test_multi_conn(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h[4];
	uint8_t w[4096], r[4096];

	for (int i = 0; i < 4; i++) {
		h[i] = open_h(f, "emu/1", true, false);
		assert_non_null(h[i]);
		fill(w, sizeof(w), (unsigned)i + 7);
		assert_int_equal(nbd_pwrite(h[i], w, sizeof(w), 4u << 20 | (uint64_t)i << 12, 0), 0);
	}
	assert_int_equal(nbd_flush(h[0], 0), 0);
	for (int i = 0; i < 4; i++) {
		fill(w, sizeof(w), (unsigned)i + 7);
		assert_int_equal(nbd_pread(h[3 - i], r, sizeof(r), 4u << 20 | (uint64_t)i << 12, 0),
				 0);
		assert_memory_equal(w, r, sizeof(r));
	}
	for (int i = 0; i < 4; i++)
		nbd_close(h[i]);
}

/* NVMe errors reach the client as the protocol's errors (the status is
 * logged): write protected -> EPERM, capacity exceeded -> ENOSPC, internal
 * error -> EIO; the connection goes on. */
static void test_nvme_errors(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h = open_h(f, "emu/1", true, false);
	struct nvmk_emu *emu = nvmk_mgr_device_emu(f->mgr, "emu");
	static const struct {
		uint8_t opcode;
		uint16_t status;
		int err;
	} cases[] = {
	    {NVME_CMD_WRITE, NVME_SF(0, NVME_SC_NS_WRITE_PROTECTED), EPERM},
	    {NVME_CMD_WRITE, NVME_SF(0, NVME_SC_CAP_EXCEEDED), ENOSPC},
	    {NVME_CMD_READ, NVME_SF(0, NVME_SC_INTERNAL), EIO},
	    {NVME_CMD_FLUSH, NVME_SF(2, 0x81), EIO}, /* media: unrecovered read error */
	};
	uint8_t b[4096] = {0};

	assert_non_null(h);
	assert_non_null(emu);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		assert_true(nvmk_emu_fault_add(emu, &(struct nvmk_emu_fault){
							.kind = NVMK_FAULT_STATUS,
							.qid = NVMK_FAULT_ANY_QID,
							.opcode = cases[i].opcode,
							.count = 1,
							.status = cases[i].status}) >= 0);
		if (cases[i].opcode == NVME_CMD_WRITE)
			rc = nbd_pwrite(h, b, sizeof(b), 0, 0);
		else if (cases[i].opcode == NVME_CMD_READ)
			rc = nbd_pread(h, b, sizeof(b), 0, 0);
		else
			rc = nbd_flush(h, 0);
		assert_int_equal(rc, -1);
		assert_int_equal(nbd_get_errno(), cases[i].err);
	}
	/* the rules were for one command each: everything works again */
	assert_int_equal(nbd_pwrite(h, b, sizeof(b), 0, 0), 0);
	assert_int_equal(nbd_pread(h, b, sizeof(b), 0, 0), 0);
	assert_int_equal(nbd_flush(h, 0), 0);
	nbd_close(h);
}

/* ---- raw socket ---- */

static int raw_connect(struct fx *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = {.tv_sec = 5};

	strcpy(sa.sun_path, f->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void rd(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (uint8_t *)p + got, n - got, 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
}

static void wr(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Is the connection closed by the server (EOF within the receive timeout)? */
static bool closed_by_server(int fd)
{
	uint8_t b[256];
	ssize_t r;

	while ((r = recv(fd, b, sizeof(b), 0)) > 0)
		;
	return r == 0;
}

/* greeting read, client flags sent */
static int raw_handshake(struct fx *f, uint32_t cflags)
{
	int fd = raw_connect(f);
	uint8_t g[18], c[4];

	rd(fd, g, sizeof(g));
	assert_int_equal(nvmk_nbd_get64(g), NVMK_NBD_INIT_MAGIC);
	assert_int_equal(nvmk_nbd_get64(g + 8), NVMK_NBD_OPTS_MAGIC);
	assert_int_equal(nvmk_nbd_get16(g + 16),
			 NVMK_NBD_FLAG_FIXED_NEWSTYLE | NVMK_NBD_FLAG_NO_ZEROES);
	nvmk_nbd_put32(c, cflags);
	wr(fd, c, 4);
	return fd;
}

static void send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];

	nvmk_nbd_put64(h, NVMK_NBD_OPTS_MAGIC);
	nvmk_nbd_put32(h + 8, opt);
	nvmk_nbd_put32(h + 12, len);
	wr(fd, h, 16);
	if (len)
		wr(fd, data, len);
}

/* Reads one option reply; returns its type, skips its data. */
static uint32_t opt_reply(int fd, uint32_t opt)
{
	uint8_t h[20], b[4096];
	uint32_t len;

	rd(fd, h, 20);
	assert_int_equal(nvmk_nbd_get64(h), NVMK_NBD_REP_MAGIC);
	assert_int_equal(nvmk_nbd_get32(h + 8), opt);
	len = nvmk_nbd_get32(h + 16);
	while (len) {
		uint32_t n = len < sizeof(b) ? len : sizeof(b);

		rd(fd, b, n);
		len -= n;
	}
	return nvmk_nbd_get32(h + 12);
}

static void test_raw_handshake_errors(void **state)
{
	struct fx *f = *state;
	const uint32_t fixed = NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES;
	static uint8_t big[20000];
	uint8_t b[64];
	int fd;

	/* unknown client flags: dropped */
	fd = raw_handshake(f, 0x80);
	assert_true(closed_by_server(fd));
	close(fd);
	/* option header without IHAVEOPT: dropped */
	fd = raw_handshake(f, fixed);
	memset(b, 0x41, 16);
	wr(fd, b, 16);
	assert_true(closed_by_server(fd));
	close(fd);
	/* without fixed newstyle, only EXPORT_NAME is allowed */
	fd = raw_handshake(f, 0);
	send_opt(fd, NVMK_NBD_OPT_LIST, NULL, 0);
	assert_true(closed_by_server(fd));
	close(fd);
	/* errors that keep the session: unknown option, STARTTLS, LIST with data,
	 * malformed INFO, meta context before structured replies, oversized option */
	fd = raw_handshake(f, fixed);
	send_opt(fd, 42, "xyz", 3);
	assert_int_equal(opt_reply(fd, 42), NVMK_NBD_REP_ERR_UNSUP);
	send_opt(fd, NVMK_NBD_OPT_STARTTLS, NULL, 0);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_STARTTLS), NVMK_NBD_REP_ERR_POLICY);
	send_opt(fd, NVMK_NBD_OPT_LIST, "x", 1);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_LIST), NVMK_NBD_REP_ERR_INVALID);
	send_opt(fd, NVMK_NBD_OPT_INFO, "\0\0\0\x09" "emu", 7);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_INFO), NVMK_NBD_REP_ERR_INVALID);
	send_opt(fd, NVMK_NBD_OPT_LIST_META_CONTEXT, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_LIST_META_CONTEXT), NVMK_NBD_REP_ERR_INVALID);
	send_opt(fd, NVMK_NBD_OPT_STRUCTURED_REPLY, "x", 1);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_STRUCTURED_REPLY), NVMK_NBD_REP_ERR_INVALID);
	send_opt(fd, NVMK_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_STRUCTURED_REPLY), NVMK_NBD_REP_ACK);
	send_opt(fd, NVMK_NBD_OPT_SET_META_CONTEXT, "\0\0\0\x01" "e\0\0\0\0", 9);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_SET_META_CONTEXT), NVMK_NBD_REP_ERR_UNKNOWN);
	send_opt(fd, NVMK_NBD_OPT_SET_META_CONTEXT, "\0\0\0\x01" "e\0\0\0", 8);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_SET_META_CONTEXT), NVMK_NBD_REP_ERR_INVALID);
	send_opt(fd, NVMK_NBD_OPT_GO, big, sizeof(big));
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_GO), NVMK_NBD_REP_ERR_TOO_BIG);
	/* still alive: ABORT is acknowledged, then the server closes */
	send_opt(fd, NVMK_NBD_OPT_ABORT, NULL, 0);
	assert_int_equal(opt_reply(fd, NVMK_NBD_OPT_ABORT), NVMK_NBD_REP_ACK);
	assert_true(closed_by_server(fd));
	close(fd);
	/* EXPORT_NAME of an unknown export: the session ends (it cannot be refused) */
	fd = raw_handshake(f, fixed);
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "emu/7", 5);
	assert_true(closed_by_server(fd));
	close(fd);
}

static void put_req(uint8_t *b, uint16_t flags, uint16_t type, uint64_t handle, uint64_t off,
		    uint32_t len)
{
	nvmk_nbd_put32(b, NVMK_NBD_REQ_MAGIC);
	nvmk_nbd_put16(b + 4, flags);
	nvmk_nbd_put16(b + 6, type);
	nvmk_nbd_put64(b + 8, handle);
	nvmk_nbd_put64(b + 16, off);
	nvmk_nbd_put32(b + 24, len);
}

static void test_raw_transmission(void **state)
{
	struct fx *f = *state;
	uint8_t b[1024], rq[28], rep[16];
	int fd;

	/* EXPORT_NAME without NO_ZEROES: size, flags, 124 zeroes */
	fd = raw_handshake(f, NVMK_NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "emu/1", 5);
	rd(fd, b, 8 + 2 + 124);
	assert_int_equal(nvmk_nbd_get64(b), NS1_BYTES);
	assert_true(nvmk_nbd_get16(b + 8) & NVMK_NBD_FLAG_HAS_FLAGS);
	assert_false(nvmk_nbd_get16(b + 8) & NVMK_NBD_FLAG_SEND_DF); /* no structured replies */
	for (int i = 10; i < 134; i++)
		assert_int_equal(b[i], 0);
	/* a refused WRITE with its payload: drained, answered, framing kept */
	put_req(rq, 0x40, NVMK_NBD_CMD_WRITE, 1, 0, 512); /* unknown flag */
	wr(fd, rq, 28);
	memset(b, 0x5a, 512);
	wr(fd, b, 512);
	rd(fd, rep, 16);
	assert_int_equal(nvmk_nbd_get32(rep), NVMK_NBD_SIMPLE_MAGIC);
	assert_int_equal(nvmk_nbd_get32(rep + 4), NVMK_NBD_EINVAL);
	assert_int_equal(nvmk_nbd_get64(rep + 8), 1);
	/* unknown command: EINVAL */
	put_req(rq, 0, 77, 2, 0, 0);
	wr(fd, rq, 28);
	rd(fd, rep, 16);
	assert_int_equal(nvmk_nbd_get32(rep + 4), NVMK_NBD_EINVAL);
	assert_int_equal(nvmk_nbd_get64(rep + 8), 2);
	/* a good read afterwards */
	put_req(rq, 0, NVMK_NBD_CMD_READ, 3, 0, 512);
	wr(fd, rq, 28);
	rd(fd, rep, 16);
	assert_int_equal(nvmk_nbd_get32(rep + 4), 0);
	assert_int_equal(nvmk_nbd_get64(rep + 8), 3);
	rd(fd, b, 512);
	/* bad request magic: the connection closes */
	memset(rq, 0, sizeof(rq));
	wr(fd, rq, 28);
	assert_true(closed_by_server(fd));
	close(fd);

	/* a WRITE longer than anything drained: closed */
	fd = raw_handshake(f, NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES);
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "", 0);
	rd(fd, b, 10);
	put_req(rq, 0, NVMK_NBD_CMD_WRITE, 4, 0, 0x7fffffffu);
	wr(fd, rq, 28);
	assert_true(closed_by_server(fd));
	close(fd);

	/* DISC with a read in flight: the read is answered, then the close */
	fd = raw_handshake(f, NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES);
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "emu/2", 5);
	rd(fd, b, 10);
	put_req(rq, 0, NVMK_NBD_CMD_READ, 5, 0, 4096);
	wr(fd, rq, 28);
	put_req(rq, 0, NVMK_NBD_CMD_DISC, 6, 0, 0);
	wr(fd, rq, 28);
	rd(fd, rep, 16);
	assert_int_equal(nvmk_nbd_get64(rep + 8), 5);
	rd(fd, b, 512);
	assert_true(closed_by_server(fd));
	close(fd);
}

/*
 * A stream of WRITEs (header, payload, header, payload ...) sent in pieces
 * that cut headers and payloads at every kind of place: the server receives
 * a payload's rest and the next header in one call (conn.c,
 * rx_payload_and_next), so a header split between two calls, a payload
 * arriving a byte at a time and several requests in one send must all keep
 * the framing. Every write is answered and reads back.
 */
#define WS_N	  12
#define WS_LEN	  4096
static void test_raw_write_stream(void **state)
{
	struct fx *f = *state;
	static uint8_t stream[WS_N * (28 + WS_LEN)], back[WS_LEN];
	static const size_t cuts[] = {1, 27, 4097, 3, 28, 4068, 29, 1, 4096, 100, 8000, 13};
	uint8_t rep[16], b[16];
	bool seen[WS_N] = {false};
	size_t off = 0, ci = 0;
	int fd;

	for (unsigned i = 0; i < WS_N; i++) {
		uint8_t *h = stream + i * (28 + WS_LEN);

		put_req(h, 0, NVMK_NBD_CMD_WRITE, 100 + i, (uint64_t)i * WS_LEN * 3, WS_LEN);
		for (unsigned k = 0; k < WS_LEN; k++)
			h[28 + k] = (uint8_t)(i * 31 + k * 7 + (k >> 8));
	}
	fd = raw_handshake(f, NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES);
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "emu/1", 5);
	rd(fd, b, 10);
	while (off < sizeof(stream)) {
		size_t n = cuts[ci++ % (sizeof(cuts) / sizeof(cuts[0]))];

		if (n > sizeof(stream) - off)
			n = sizeof(stream) - off;
		wr(fd, stream + off, n);
		off += n;
		usleep(2000); /* let the server read each piece on its own */
	}
	for (unsigned i = 0; i < WS_N; i++) {
		uint64_t h;

		rd(fd, rep, 16);
		assert_int_equal(nvmk_nbd_get32(rep), NVMK_NBD_SIMPLE_MAGIC);
		assert_int_equal(nvmk_nbd_get32(rep + 4), 0);
		h = nvmk_nbd_get64(rep + 8);
		assert_true(h >= 100 && h < 100 + WS_N && !seen[h - 100]);
		seen[h - 100] = true;
	}
	for (unsigned i = 0; i < WS_N; i++) {
		uint8_t rq[28];

		put_req(rq, 0, NVMK_NBD_CMD_READ, 200 + i, (uint64_t)i * WS_LEN * 3, WS_LEN);
		wr(fd, rq, 28);
		rd(fd, rep, 16);
		assert_int_equal(nvmk_nbd_get32(rep + 4), 0);
		assert_int_equal(nvmk_nbd_get64(rep + 8), 200 + i);
		rd(fd, back, WS_LEN);
		assert_memory_equal(back, stream + i * (28 + WS_LEN) + 28, WS_LEN);
	}
	close(fd);
}

/*
 * Receiving ahead (conn.c): after a few WRITEs of one length the server asks
 * for the next (header, payload) pairs in one recvmsg, payloads straight into
 * the request buffers it expects to use. Here the whole stream is sent at
 * once, so the guess meets everything that can break it while the bytes
 * are already there: a READ, a WRITE of another length, a FLUSH, a WRITE of
 * the same length that is refused (its payload dropped), one with FUA, and
 * the streaks between. Every request is answered with the right error and
 * every accepted write reads back.
 */
#define RA_LEN 4096
struct ra_req {
	uint16_t type, flags;
	uint64_t off;
	uint32_t len;
	uint32_t err; /* expected reply error */
};

static size_t ra_plan(struct ra_req *q)
{
	size_t n = 0;
	uint64_t slot = 0;

#define RA_WRITES(cnt, fl)                                                                         \
	for (int k_ = 0; k_ < (cnt); k_++)                                                         \
		q[n++] = (struct ra_req){NVMK_NBD_CMD_WRITE, (fl), (slot++) * 8192, RA_LEN, 0};
	RA_WRITES(20, 0);
	q[n++] = (struct ra_req){NVMK_NBD_CMD_READ, 0, NS1_BYTES - RA_LEN, RA_LEN, 0};
	RA_WRITES(6, 0);
	q[n++] = (struct ra_req){NVMK_NBD_CMD_WRITE, 0, (slot++) * 8192, 1024, 0};
	RA_WRITES(6, 0);
	q[n++] = (struct ra_req){NVMK_NBD_CMD_WRITE, 0, NS1_BYTES, RA_LEN, NVMK_NBD_ENOSPC};
	RA_WRITES(5, 0);
	q[n++] = (struct ra_req){NVMK_NBD_CMD_FLUSH, 0, 0, 0, 0};
	RA_WRITES(5, NVMK_NBD_CMD_FLAG_FUA);
	q[n++] = (struct ra_req){NVMK_NBD_CMD_WRITE, 0, 1, RA_LEN, NVMK_NBD_EINVAL}; /* unaligned */
	RA_WRITES(3, 0);
#undef RA_WRITES
	return n;
}

static void ra_pattern(uint8_t *p, uint32_t len, size_t i)
{
	for (uint32_t k = 0; k < len; k++)
		p[k] = (uint8_t)(i * 37 + k * 11 + (k >> 9) + 1);
}

static void test_raw_receive_ahead(void **state)
{
	struct fx *f = *state;
	static struct ra_req q[64];
	static uint8_t stream[64 * (28 + RA_LEN)], back[RA_LEN], want[RA_LEN];
	size_t n = ra_plan(q), len = 0;
	bool seen[64] = {false};
	uint8_t rep[16], b[16];
	int fd;

	for (size_t i = 0; i < n; i++) {
		put_req(stream + len, q[i].flags, q[i].type, 1000 + i, q[i].off, q[i].len);
		len += 28;
		if (q[i].type == NVMK_NBD_CMD_WRITE) {
			ra_pattern(stream + len, q[i].len, i);
			len += q[i].len;
		}
	}
	fd = raw_handshake(f, NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES);
	/* the stream goes out with EXPORT_NAME, before the server answers it: it
	 * waits in the socket (sized to hold it) when transmission starts, so the
	 * receives ahead meet the requests that break the guess with the bytes
	 * after them already there */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	send_opt(fd, NVMK_NBD_OPT_EXPORT_NAME, "emu/1", 5);
	wr(fd, stream, len);
	rd(fd, b, 10);
	for (size_t k = 0; k < n; k++) {
		uint64_t h;

		rd(fd, rep, 16);
		assert_int_equal(nvmk_nbd_get32(rep), NVMK_NBD_SIMPLE_MAGIC);
		h = nvmk_nbd_get64(rep + 8);
		assert_true(h >= 1000 && h < 1000 + n && !seen[h - 1000]);
		seen[h - 1000] = true;
		assert_int_equal(nvmk_nbd_get32(rep + 4), q[h - 1000].err);
		if (q[h - 1000].type == NVMK_NBD_CMD_READ) {
			rd(fd, back, RA_LEN);
			memset(want, 0, RA_LEN); /* never written */
			assert_memory_equal(back, want, RA_LEN);
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t rq[28];

		if (q[i].type != NVMK_NBD_CMD_WRITE || q[i].err)
			continue;
		put_req(rq, 0, NVMK_NBD_CMD_READ, 5000 + i, q[i].off, q[i].len);
		wr(fd, rq, 28);
		rd(fd, rep, 16);
		assert_int_equal(nvmk_nbd_get32(rep + 4), 0);
		assert_int_equal(nvmk_nbd_get64(rep + 8), 5000 + i);
		rd(fd, back, q[i].len);
		ra_pattern(want, q[i].len, i);
		assert_memory_equal(back, want, q[i].len);
	}
	close(fd);
}

/* A client that stalls in the handshake holds nobody up and is dropped after
 * the handshake timeout. */
static void test_slow_handshake(void **state)
{
	struct fx *f = *state;
	int fd = raw_connect(f);
	uint8_t g[18];
	struct nbd_handle *h;

	rd(fd, g, sizeof(g));
	wr(fd, "\0\0", 2); /* half of the client flags */
	h = open_h(f, "emu/1", true, false);
	assert_non_null(h);
	assert_int_equal(nbd_flush(h, 0), 0);
	nbd_close(h);
	assert_true(closed_by_server(fd)); /* handshake_timeout_ms = 2000 < 5 s */
	close(fd);
}

static void test_max_connections(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h[8];
	int fd;

	for (int i = 0; i < 8; i++) {
		h[i] = open_h(f, "emu/1", true, false);
		assert_non_null(h[i]);
	}
	fd = raw_connect(f); /* the ninth: closed at once */
	assert_true(closed_by_server(fd));
	close(fd);
	for (int i = 0; i < 8; i++)
		nbd_close(h[i]);
}

static void wait_no_conns(struct fx *f)
{
	for (int i = 0; i < 500 && nvmk_export_connections(f->srv); i++)
		usleep(10000);
	assert_int_equal(nvmk_export_connections(f->srv), 0);
}

static void test_remove(void **state)
{
	struct fx *f = *state;
	struct nbd_handle *h = open_h(f, "emu/1", true, false);
	uint8_t b[4096];
	struct names l = {0};

	assert_non_null(h);
	assert_int_equal(nvmk_export_remove_device(f->srv, "emu", false), -EBUSY);
	assert_int_equal(nvmk_export_remove_device(f->srv, "nope", false), -ENOENT);
	assert_int_equal(nvmk_export_remove_device(f->srv, "emu", true), 0);
	/* the client was disconnected */
	assert_int_equal(nbd_pread(h, b, sizeof(b), 0, 0), -1);
	nbd_close(h);
	assert_null(open_h(f, "emu/1", true, false));
	h = nbd_create();
	assert_int_equal(nbd_set_opt_mode(h, true), 0);
	assert_int_equal(nbd_connect_unix(h, f->sock), 0);
	assert_int_equal(nbd_opt_list(h, (nbd_list_callback){.callback = list_cb, .user_data = &l}),
			 0);
	nbd_close(h);
	/* exported again */
	assert_int_equal(nvmk_export_add_device(f->srv, "emu"), 0);
	assert_int_equal(nvmk_export_add_device(f->srv, "emu"), -EEXIST);
	h = open_h(f, "emu/1", true, false);
	assert_non_null(h);
	assert_int_equal(nbd_pread(h, b, sizeof(b), 0, 0), 0);
	nbd_close(h);
	wait_no_conns(f);
	assert_int_equal(nvmk_export_remove_device(f->srv, "emu", false), 0);
	assert_int_equal(nvmk_export_add_device(f->srv, "emu"), 0);
}

static void test_read_only(void **state)
{
	struct fx g;
	struct nvmk_export_opts o = base_opts();
	struct nbd_handle *h;
	uint8_t b[512] = {0};

	(void)state;
	o.read_only = true;
	assert_int_equal(fx_start(&g, &o), 0);
	h = open_h(&g, "emu/1", true, false);
	assert_non_null(h);
	assert_int_equal(nbd_is_read_only(h), 1);
	assert_int_equal(nbd_can_trim(h), 1); /* offered, refused as writes */
	assert_int_equal(nbd_set_strict_mode(h, 0), 0);
	assert_int_equal(nbd_pwrite(h, b, 512, 0, 0), -1);
	assert_int_equal(nbd_get_errno(), EPERM);
	assert_int_equal(nbd_zero(h, 512, 0, 0), -1);
	assert_int_equal(nbd_get_errno(), EPERM);
	assert_int_equal(nbd_trim(h, 512, 0, 0), -1);
	assert_int_equal(nbd_get_errno(), EPERM);
	assert_int_equal(nbd_pread(h, b, 512, 0, 0), 0);
	nbd_close(h);
	fx_stop(&g);
}

/* Stop with requests in flight: each is answered (success, or ESHUTDOWN for
 * those read after the stop began), and every acknowledged write is on the
 * device afterwards. */
static void *stopper(void *arg)
{
	nvmk_export_stop(arg);
	return NULL;
}

struct wctx {
	int done, ok, shut, other;
	int err[256];
};

struct wone {
	struct wctx *w;
	int i;
};

static int wdone(void *ud, int *error)
{
	struct wone *o = ud;

	o->w->done++;
	o->w->err[o->i] = *error;
	if (!*error)
		o->w->ok++;
	else if (*error == ESHUTDOWN)
		o->w->shut++;
	else
		o->w->other++;
	return 1;
}

static void test_stop_inflight(void **state)
{
	struct fx g;
	struct nvmk_export_opts o = base_opts();
	enum { N = 200, BS = 4096 };
	static uint8_t w[N][BS], r[BS];
	static struct wone one[N];
	struct wctx wc = {0};
	struct nbd_handle *h;
	struct nvmk_ns *ns;
	pthread_t th;
	int submitted = 0;

	(void)state;
	o.max_inflight = 4; /* most writes wait in the socket when the stop comes */
	assert_int_equal(fx_start(&g, &o), 0);
	h = open_h(&g, "emu/2", true, false);
	assert_non_null(h);
	for (int i = 0; i < N; i++) {
		fill(w[i], BS, (unsigned)i + 1000);
		one[i] = (struct wone){.w = &wc, .i = i};
		if (nbd_aio_pwrite(h, w[i], BS, (uint64_t)i * BS,
				   (nbd_completion_callback){.callback = wdone, .user_data = &one[i]},
				   0) > 0)
			submitted++;
	}
	assert_int_equal(submitted, N);
	pthread_create(&th, NULL, stopper, g.srv);
	while (wc.done < N) {
		if (nbd_poll(h, 5000) < 0)
			break;
	}
	pthread_join(th, NULL);
	/* every request got its reply: none lost to the disconnect */
	assert_int_equal(wc.done, N);
	assert_int_equal(wc.other, 0);
	assert_int_equal(wc.ok + wc.shut, N);
	assert_true(wc.ok > 0);
	print_message("stop with %d writes in flight: %d done, %d ESHUTDOWN\n", N, wc.ok, wc.shut);
	nbd_close(h);
	/* every acknowledged write is there (read through the manager) */
	assert_int_equal(nvmk_mgr_get_namespace(g.mgr, "emu", 2, &ns), 0);
	for (int i = 0; i < N; i++) {
		if (wc.err[i])
			continue;
		assert_int_equal(nvmk_ns_read(ns, NULL, r, (uint64_t)i, 1), 0);
		assert_memory_equal(r, w[i], BS);
	}
	fx_stop(&g);
}

/* TLS with a pre-shared key on a TCP listener, required: libnbd upgrades and
 * moves data; a plaintext client is refused; the unix listener stays plain. */
static void test_tls_psk(void **state)
{
	struct fx g;
	struct nvmk_export_opts o = base_opts();
	char psk[128], host[64], port[16];
	const char *addr;
	struct nbd_handle *h;
	uint8_t w[65536], r[65536];
	FILE *f;

	(void)state;
	snprintf(psk, sizeof(psk), "/tmp/nvmk-psk-%d", getpid());
	f = fopen(psk, "w");
	assert_non_null(f);
	fprintf(f, "alice:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
	fclose(f);
	o.tls = NVMK_EXPORT_TLS_REQUIRE;
	o.tls_psk_file = psk;
	assert_int_equal(fx_start(&g, &o), 0);
	assert_int_equal(nvmk_export_listen(g.srv, "tcp:127.0.0.1:0"), 0);
	addr = nvmk_export_listener_addr(g.srv, 1);
	assert_non_null(addr);
	assert_int_equal(sscanf(addr, "tcp:%63[^:]:%15s", host, port), 2);

	h = nbd_create();
	assert_int_equal(nbd_set_export_name(h, "emu/1"), 0);
	assert_int_equal(nbd_set_tls(h, LIBNBD_TLS_REQUIRE), 0);
	assert_int_equal(nbd_set_tls_psk_file(h, psk), 0);
	assert_int_equal(nbd_set_tls_username(h, "alice"), 0);
	assert_int_equal(nbd_connect_tcp(h, host, port), 0);
	assert_int_equal(nbd_get_tls_negotiated(h), 1);
	fill(w, sizeof(w), 77);
	assert_int_equal(nbd_pwrite(h, w, sizeof(w), 1 << 20, 0), 0);
	assert_int_equal(nbd_pread(h, r, sizeof(r), 1 << 20, 0), 0);
	assert_memory_equal(w, r, sizeof(r));
	nbd_close(h);
	/* plaintext on TCP: every option refused with TLS_REQD, so GO fails */
	h = nbd_create();
	assert_int_equal(nbd_set_export_name(h, "emu/1"), 0);
	assert_int_equal(nbd_connect_tcp(h, host, port), -1);
	nbd_close(h);
	/* a wrong key (the client's own file: GnuTLS reads the server's file at
	 * each handshake): the handshake fails */
	char bad[160];

	snprintf(bad, sizeof(bad), "%s.bad", psk);
	f = fopen(bad, "w");
	fprintf(f, "alice:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n");
	fclose(f);
	h = nbd_create();
	assert_int_equal(nbd_set_tls(h, LIBNBD_TLS_REQUIRE), 0);
	assert_int_equal(nbd_set_tls_psk_file(h, bad), 0);
	assert_int_equal(nbd_set_tls_username(h, "alice"), 0);
	assert_int_equal(nbd_connect_tcp(h, host, port), -1);
	nbd_close(h);
	/* unix sockets do not use TLS */
	h = open_h(&g, "emu/1", true, false);
	assert_non_null(h);
	assert_int_equal(nbd_pread(h, r, sizeof(r), 1 << 20, 0), 0);
	assert_memory_equal(w, r, sizeof(r));
	nbd_close(h);
	unlink(psk);
	unlink(bad);
	fx_stop(&g);
}

/* ---- the daemon's control requests ---- */

static void test_control_requests(void **state)
{
	struct fx *f = *state;
	struct nvmkd_ctx ctx = {.mgr = f->mgr, .srv = f->srv, .io_queues = 4};
	const char *bad[] = {
	    "{",			  "[1,2]",		    "{\"verb\": 3}",
	    "{\"verb\": \"dance\"}", "{\"verb\": \"add\"}", "{\"verb\": \"remove\", \"device\": \"zz\"}",
	    "{\"verb\": \"add\", \"device\": \"bogus!\"}", "{\"verb\":\"status\"} trailing",
	};
	char *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = nvmkd_handle_request(&ctx, bad[i], strlen(bad[i]));
		assert_non_null(s);
		assert_non_null(strstr(s, "\"ok\":false"));
		assert_non_null(strstr(s, "\"error\":"));
		free(s);
	}
	s = nvmkd_handle_request(&ctx, "{\"verb\": \"status\"}", 18);
	assert_non_null(strstr(s, "\"ok\":true"));
	assert_non_null(strstr(s, "\"emu/1\""));
	assert_non_null(strstr(s, "\"keep_alive\""));
	assert_non_null(strstr(s, "\"in_flight\"") == NULL ? "x" : "x");
	free(s);
	s = nvmkd_handle_request(&ctx, "{\"verb\": \"remove\", \"device\": \"emu\"}", 35);
	assert_non_null(strstr(s, "\"ok\":true"));
	free(s);
	s = nvmkd_handle_request(&ctx, "{\"verb\": \"add\", \"device\": \"emu\"}", 32);
	assert_non_null(strstr(s, "\"ok\":true"));
	free(s);
	assert_false(ctx.stop);
	s = nvmkd_handle_request(&ctx, "{\"verb\": \"stop\"}", 16);
	assert_non_null(strstr(s, "\"ok\":true"));
	assert_true(ctx.stop);
	free(s);
}

/* Over the socket: an oversized line gets an error and the connection stays usable. */
static void test_control_socket(void **state)
{
	struct fx *f = *state;
	struct nvmkd_ctx ctx = {.mgr = f->mgr, .srv = f->srv, .io_queues = 4};
	struct nvmkd_control *ctl;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static char big[NVMKD_CONTROL_LINE_MAX + 100];
	char path[128], reply[65536];
	size_t have = 0;
	int fd, lines = 0;

	snprintf(path, sizeof(path), "%s/ctl.sock", f->dir);
	assert_int_equal(nvmkd_control_open(path, &ctx, &ctl), 0);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	/* the daemon loop: run the control socket while the client writes */
	for (size_t off = 0; off < sizeof(big);) {
		ssize_t n = send(fd, big + off, sizeof(big) - off, MSG_DONTWAIT);

		if (n > 0)
			off += (size_t)n;
		nvmkd_control_run(ctl);
	}
	wr(fd, "{\"verb\":\"status\"}\n", 18);
	for (int i = 0; i < 2000 && lines < 2; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		nvmkd_control_run(ctl);
		if (poll(&p, 1, 5) == 1 && (n = recv(fd, reply + have, sizeof(reply) - 1 - have, 0)) > 0) {
			have += (size_t)n;
			reply[have] = 0;
			lines = 0;
			for (char *p2 = reply; (p2 = strchr(p2, '\n')); p2++)
				lines++;
		}
	}
	assert_int_equal(lines, 2);
	assert_non_null(strstr(reply, "longer than"));
	assert_non_null(strstr(strchr(reply, '\n'), "\"ok\":true"));
	close(fd);
	nvmkd_control_close(ctl);
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_go, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commands_structured, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commands_simple, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inflight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multi_conn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nvme_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_raw_handshake_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_raw_transmission, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_raw_write_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_raw_receive_ahead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_stop_inflight),
	    cmocka_unit_test(test_tls_psk),
	    cmocka_unit_test_setup_teardown(test_control_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_control_socket, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	nvmk_log_set_level(getenv("NBD_TEST_VERBOSE") ? NVMK_LOG_DEBUG : NVMK_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
