// SPDX-License-Identifier: MIT
/*
 * Servicing of nvmekeepd (docs/servicing.md).
 *
 * Predecessor ("service" verb): check the new binary (PATH --service-check
 * FORMAT) -> quiesce the NBD server at request boundaries -> save the export
 * (sockets, negotiated options) and the manager (devices; with keep-alive the
 * controllers keep running) -> export the vfio-user connections -> write the
 * state into a memfd -> clear FD_CLOEXEC on everything handed over ->
 * execve(PATH --restore-fd N).
 *
 * Successor (--restore-fd N): check the state (envelope version, CRC32C,
 * fields) -> open the inherited pool -> restore the manager (no reset, no
 * IDENTIFY, no queue creation with keep-alive; every pool block claimed or
 * the restore fails loudly) -> restore the export (queue pairs by qid,
 * request buffers by pool tag, sockets adopted) -> adopt the control socket
 * -> serve -> answer the control connection that asked, with the blackout.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/export_state.h"
#include "nvmekeep/log.h"
#include "service_state.pb-c.h"
#include "servicing.h"
#include "nvmekeep/crc32c.h"

#define SVC_LOG		 "servicing"
#define MAX_DEVICES	 16
#define CHECK_TIMEOUT_MS 5000 /* the new binary's --service-check */

extern char **environ;

static struct {
	char self_exe[PATH_MAX];
	char *devices[MAX_DEVICES];
	unsigned ndevices;
	struct nvmk_export_opts eo;
	char control_path[108];
	struct nvmkd_control *ctl;
	unsigned servicings;
	json_object *status;	   /* the last servicing, as status shows it */
	uint64_t quiesce_start_ns; /* of the last servicing */
} S;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* When this program's own constructors run: after the kernel's exec, the
 * dynamic loader and every library's constructors, before main. Splits the
 * exec part of a blackout (the successor's status: "loaded_us"). */
static uint64_t loaded_ns;

__attribute__((constructor)) static void note_loaded(void)
{
	loaded_ns = mono_ns();
}

static void set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

static void self_exe(void)
{
	ssize_t n = readlink("/proc/self/exe", S.self_exe, sizeof(S.self_exe) - 1);

	S.self_exe[n > 0 ? n : 0] = 0;
}

static void set_status(struct nvmkd_ctx *ctx, json_object *o)
{
	snprintf(ctx->service_status, sizeof(ctx->service_status), "%s",
		 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(S.status);
	S.status = o;
}

/* The blackout as clients see it ends with the first reply sent after the
 * restore, which comes after the answer to `nvmekeep service`: status adds it
 * once it is known. */
static void service_refresh(struct nvmkd_ctx *ctx)
{
	uint64_t t = nvmk_export_first_reply_ns(ctx->srv);

	if (!S.status || !t || json_object_object_get_ex(S.status, "first_reply_us", NULL))
		return;
	json_object_object_add(S.status, "first_reply_us",
			       json_object_new_int64((int64_t)((t - S.quiesce_start_ns) / 1000)));
	set_status(ctx, json_object_get(S.status));
}

void nvmkd_service_init(struct nvmkd_ctx *ctx, const struct nvmkd_service_cfg *cfg);
static char *service_run(struct nvmkd_ctx *ctx, const char *exec, unsigned timeout_ms);

void nvmkd_service_init(struct nvmkd_ctx *ctx, const struct nvmkd_service_cfg *cfg)
{
	self_exe();
	for (unsigned i = 0; i < cfg->ndevices && i < MAX_DEVICES; i++)
		S.devices[S.ndevices++] = strdup(cfg->devices[i]);
	S.eo = cfg->eo;
	/* the default (0) means online CPUs, as the export resolves it: the
	 * successor must start the same number of I/O threads, and the state
	 * check refuses 0 */
	if (!S.eo.threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		S.eo.threads = cpus > 0 ? (unsigned)cpus : 1;
	}
	snprintf(S.control_path, sizeof(S.control_path), "%s", cfg->control_path);
	S.ctl = cfg->ctl;
	ctx->service_fn = service_run;
	ctx->req_fd = -1;
}

int nvmkd_service_check(const char *format)
{
	char *end;
	unsigned long v = strtoul(format, &end, 10);

	if (!*format || *end || v == 0) {
		printf("refused: '%s' is not a state format number\n", format);
		return 3;
	}
	if (v > NVMKD_SERVICE_FORMAT) {
		printf("refused: state format %lu is newer than this binary's %u\n", v,
		       NVMKD_SERVICE_FORMAT);
		return 3;
	}
	printf("ok: restores state formats 1 to %u\n", NVMKD_SERVICE_FORMAT);
	return 0;
}

/* ---- predecessor ---- */

static char *reply_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *reply_error(int err, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nvmk_warn(SVC_LOG, NVMK_LOG_NOQ, "refused: %s", msg);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_int(err));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* Run PATH --service-check FORMAT; 0 if it accepts, else the reason in @why. */
static int check_binary(const char *path, char *why, size_t wl)
{
	char fmt[16], out[256] = "";
	char *argv[] = {(char *)path, "--service-check", fmt, NULL};
	posix_spawn_file_actions_t fa;
	int p[2], st = 0, rc;
	size_t have = 0;
	pid_t pid;
	uint64_t deadline = mono_ns() + (uint64_t)CHECK_TIMEOUT_MS * 1000000ull;

	if (access(path, F_OK)) {
		snprintf(why, wl, "new binary %.200s: %s", path, strerror(errno));
		return -ENOENT;
	}
	if (access(path, X_OK)) {
		snprintf(why, wl, "new binary %.200s is not executable: %s", path, strerror(errno));
		return -EACCES;
	}
	snprintf(fmt, sizeof(fmt), "%u", NVMKD_SERVICE_FORMAT);
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc) {
		close(p[0]);
		snprintf(why, wl, "new binary %.200s cannot be started: %s", path, strerror(rc));
		return -rc;
	}
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		uint64_t now = mono_ns();
		ssize_t n;

		if (now >= deadline || poll(&pf, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			break;
		n = read(p[0], out + have, sizeof(out) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == sizeof(out) - 1)
			break;
	}
	close(p[0]);
	out[have] = 0;
	out[strcspn(out, "\n")] = 0;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (mono_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			snprintf(why, wl, "new binary %.200s did not answer --service-check within %u ms",
				 path, CHECK_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	snprintf(why, wl, "new binary %.200s refuses state format %u: %s", path, NVMKD_SERVICE_FORMAT,
		 out[0] ? out : WIFEXITED(st) ? "(no reason given)" : "(killed by a signal)");
	return -EPROTONOSUPPORT;
}

static int vfio_handover_check(struct nvmk_backing *b, void *ctx)
{
	(void)ctx;
	return nvmk_backing_vfio_handover_supported(b);
}

/*
 * Whether every device can be handed to a successor; 0, or -EOPNOTSUPP with
 * the reason in @why. vfio-user: the connection crosses exec. VFIO: the
 * container, group and device fds cross exec; with keep-alive the type1
 * mappings must take new virtual addresses (VFIO_UPDATE_VADDR), no-IOMMU
 * keeps the pinned pages; without keep-alive the function is shut down and
 * opened afresh by the successor. A device not loaded yet has nothing to
 * hand over (the successor loads it on first use). The in-process emulator
 * dies with the process; a kernel-path device (/dev/nvme..., or a PCI
 * address with OPENHCL_NVME_VFIO off) is refused: its requests in flight
 * live in this process's io_uring, which exec ends, and its request buffers
 * are ordinary memory, not pool blocks the successor could take back
 * (docs/servicing.md, "Not done").
 */
static int devices_refusal(struct nvmkd_ctx *ctx, bool keep_alive, char *why, size_t wl)
{
	struct nvmk_mgr_status ms;
	int rc = 0;

	if (nvmk_mgr_status(ctx->mgr, &ms))
		return -ENOMEM;
	for (unsigned i = 0; i < ms.ndevices && !rc; i++) {
		const struct nvmk_mgr_device_status *d = &ms.devices[i];

		if (!strcmp(d->kind, "vfio-user") || !strcmp(d->kind, "factory"))
			continue;
		if (!strcmp(d->kind, "vfio")) {
			if (keep_alive &&
			    nvmk_mgr_backing_check(ctx->mgr, d->id, vfio_handover_check, NULL) ==
				-ENOTSUP) {
				snprintf(why, wl,
					 "device %s cannot be handed to a successor with keep-alive: "
					 "the type1 IOMMU driver lacks VFIO_UPDATE_VADDR (Linux >= "
					 "5.12); servicing with OPENHCL_NVME_KEEP_ALIVE=disabled shuts "
					 "it down and brings it up again",
					 d->id);
				rc = -EOPNOTSUPP;
			}
			continue;
		}
		snprintf(why, wl,
			 "device %s (%s) cannot be handed to a successor: servicing supports "
			 "vfio-user:PATH and PCI devices over VFIO (OPENHCL_NVME_VFIO=1)%s",
			 d->id, d->kind,
			 !strcmp(d->kind, "emu") ? "; an in-process emulator dies with the process"
			 : !strcmp(d->kind, "kernel")
			     ? "; a kernel-path device's requests in flight live in this "
				   "process's io_uring, which exec ends"
			     : "");
		rc = -EOPNOTSUPP;
	}
	nvmk_mgr_status_free(&ms);
	return rc;
}

/*
 * After the manager's save: hand device @spec's backing to the successor.
 * With keep-alive its fds are exported and described in a handover string
 * (malloc'd into *@handover, NULL if the export failed: the successor then
 * brings the device up afresh); without keep-alive the backing is closed
 * (the controller was shut down; the successor opens it anew).
 */
static void device_handover(struct nvmkd_ctx *ctx, const char *spec, bool keep_alive,
			    char **handover)
{
	struct nvmk_backing *b = NULL;
	char *s = NULL;
	int rc, n = -ENOMEM;

	*handover = NULL;
	rc = nvmk_mgr_take_backing(ctx->mgr, spec, &b);
	if (rc)
		return; /* never loaded, or failed: nothing to hand over */
	if (!keep_alive) {
		nvmk_backing_destroy(b);
		return;
	}
	s = malloc(65536);
	if (s && nvmk_backing_is_vfio(b)) {
		struct nvmk_vfio_handover *ho = calloc(1, sizeof(*ho));

		rc = ho ? nvmk_backing_vfio_export_fds(b, ho) : -ENOMEM;
		if (!rc)
			n = nvmk_vfio_handover_format(ho, s, 65536);
		free(ho);
	} else if (s) {
		struct nvmk_vfio_user_handover *ho = calloc(1, sizeof(*ho));

		rc = ho ? nvmk_backing_vfio_user_export_fds(b, ho) : -ENOMEM;
		if (!rc)
			n = nvmk_vfio_user_handover_format(ho, s, 65536);
		free(ho);
	}
	if (!rc && n > 0) {
		*handover = s;
		return;
	}
	free(s);
	nvmk_err(spec, NVMK_LOG_NOQ,
		 "servicing: device not exported (%s): the successor brings it up afresh",
		 strerror(rc ? -rc : n < 0 ? -n : ENOMEM));
}

static int refresh_devices(struct nvmkd_ctx *ctx)
{
	struct nvmk_mgr_status ms;

	if (nvmk_mgr_status(ctx->mgr, &ms))
		return -ENOMEM;
	for (unsigned i = 0; i < S.ndevices; i++)
		free(S.devices[i]);
	S.ndevices = 0;
	for (unsigned i = 0; i < ms.ndevices && i < MAX_DEVICES; i++)
		S.devices[S.ndevices++] = strdup(ms.devices[i].id);
	nvmk_mgr_status_free(&ms);
	for (unsigned i = 0; i < S.ndevices; i++)
		if (!S.devices[i])
			return -ENOMEM;
	return 0;
}

/* Write the envelope into a memfd without FD_CLOEXEC. Return the fd or -errno. */
static int state_memfd(const NvmkdSvc__ServiceState *st)
{
	NvmkdSvc__ServiceEnvelope env = NVMKD_SVC__SERVICE_ENVELOPE__INIT;
	size_t plen = nvmkd_svc__service_state__get_packed_size(st), elen;
	uint8_t *payload = malloc(plen ? plen : 1), *buf = NULL;
	int fd = -ENOMEM;

	if (!payload)
		return -ENOMEM;
	nvmkd_svc__service_state__pack(st, payload);
	env.has_version = env.has_crc32c = env.has_payload = 1;
	env.version = NVMKD_SERVICE_FORMAT;
	env.crc32c = nvmk_crc32c(0, payload, plen);
	env.payload.data = payload;
	env.payload.len = plen;
	elen = nvmkd_svc__service_envelope__get_packed_size(&env);
	buf = malloc(elen);
	if (buf) {
		nvmkd_svc__service_envelope__pack(&env, buf);
		fd = memfd_create("nvmekeepd-servicing", 0);
		if (fd < 0) {
			fd = -errno;
		} else if (write(fd, buf, elen) != (ssize_t)elen) {
			close(fd);
			fd = -EIO;
		}
	}
	free(buf);
	free(payload);
	return fd;
}

static char *service_run(struct nvmkd_ctx *ctx, const char *exec, unsigned timeout_ms)
{
	NvmkdSvc__ServiceState st = NVMKD_SVC__SERVICE_STATE__INIT;
	NvmkdSvc__ServiceDevice dv[MAX_DEVICES], *dvp[MAX_DEVICES];
	char why[512], fdarg[16], *handover[MAX_DEVICES] = {0};
	const char *path = exec && *exec ? exec : S.self_exe;
	void *eblob = NULL, *mblob = NULL;
	size_t elen = 0, mlen = 0;
	uint64_t t0, t_quiesced;
	struct nvmk_dma_pool *pool;
	bool keep_alive;
	int rc, sfd;

	/* the devices as they are now (nvmekeep add / remove change them): a
	 * device's id is its --device spec (devices.c) */
	if (refresh_devices(ctx))
		return reply_error(ENOMEM, "device list not available; still serving");
	keep_alive = nvmk_mgr_config(ctx->mgr)->keep_alive.enabled && nvmk_mgr_pool(ctx->mgr);
	rc = devices_refusal(ctx, keep_alive, why, sizeof(why));
	if (rc)
		return reply_error(-rc, "%s; still serving", rc == -ENOMEM ? "out of memory" : why);
	rc = check_binary(path, why, sizeof(why));
	if (rc)
		return reply_error(-rc, "%s; still serving", why);

	/* from here the clients see the pause */
	t0 = mono_ns();
	sd_notify(0, "RELOADING=1\nSTATUS=servicing");
	nvmk_info(SVC_LOG, NVMK_LOG_NOQ, "servicing %u: quiescing, successor %s", S.servicings + 1,
		  path);
	/* with keep-alive, commands at the device stay there and are answered by
	 * the successor; otherwise the save drains the device, so every request
	 * is answered first */
	rc = nvmk_export_quiesce(ctx->srv, timeout_ms, keep_alive);
	if (rc) {
		sd_notify(0, "READY=1\nSTATUS=serving (servicing abandoned)");
		return reply_error(-rc,
				   "requests in flight did not complete within %u ms: servicing "
				   "abandoned, still serving",
				   timeout_ms);
	}
	t_quiesced = mono_ns();
	rc = nvmk_export_save(ctx->srv, &eblob, &elen);
	if (rc) {
		nvmk_export_resume(ctx->srv);
		sd_notify(0, "READY=1");
		return reply_error(-rc, "export state not saved: %s; still serving", strerror(-rc));
	}
	rc = nvmk_mgr_save(ctx->mgr, &mblob, &mlen);
	if (rc) {
		free(eblob);
		nvmk_export_save_abort(ctx->srv);
		nvmk_export_resume(ctx->srv);
		sd_notify(0, "READY=1");
		return reply_error(-rc, "manager state not saved: %s; still serving", strerror(-rc));
	}
	/* No way back from here: the controllers belong to the saved state. */
	for (unsigned i = 0; i < S.ndevices; i++) {
		nvmkd_svc__service_device__init(&dv[i]);
		dv[i].spec = S.devices[i];
		dvp[i] = &dv[i];
		device_handover(ctx, S.devices[i], keep_alive, &handover[i]);
		dv[i].handover = handover[i];
	}
	pool = nvmk_mgr_pool(ctx->mgr);
	if (pool)
		set_cloexec(nvmk_dma_pool_fd(pool), false);
	set_cloexec(nvmkd_control_listen_fd(S.ctl), false);
	if (ctx->req_fd >= 0)
		set_cloexec(ctx->req_fd, false);

	st.has_quiesce_start_ns = st.has_saved_ns = st.has_reply_fd = st.has_control_fd = 1;
	st.has_pool_fd = st.has_mgr_state = st.has_export_state = 1;
	st.has_threads = st.has_max_connections = st.has_max_inflight = 1;
	st.has_slots_per_thread = st.has_read_only = st.has_servicings = st.has_keep_alive = 1;
	st.has_log_level = 1;
	st.quiesce_start_ns = t0;
	st.has_quiesced_ns = 1;
	st.quiesced_ns = t_quiesced;
	st.reply_fd = ctx->req_fd;
	st.control_fd = nvmkd_control_listen_fd(S.ctl);
	st.control_path = S.control_path;
	st.pool_fd = pool ? nvmk_dma_pool_fd(pool) : -1;
	st.mgr_state.data = mblob;
	st.mgr_state.len = mlen;
	st.export_state.data = eblob;
	st.export_state.len = elen;
	st.n_devices = S.ndevices;
	st.devices = dvp;
	st.threads = S.eo.threads;
	st.max_connections = S.eo.max_connections;
	st.max_inflight = S.eo.max_inflight;
	st.slots_per_thread = S.eo.slots_per_thread;
	st.read_only = S.eo.read_only;
	st.servicings = S.servicings;
	st.keep_alive = keep_alive;
	st.self_exe = S.self_exe;
	st.log_level = (uint32_t)nvmk_log_get_level();
	st.has_tls = 1;
	st.tls = (uint32_t)S.eo.tls;
	st.tls_creds_dir = (char *)S.eo.tls_creds_dir;
	st.tls_psk_file = (char *)S.eo.tls_psk_file;
	st.saved_ns = mono_ns();
	sfd = state_memfd(&st);
	if (sfd < 0) {
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "state not written (%s): the service stops",
			 strerror(-sfd));
		exit(1);
	}
	snprintf(fdarg, sizeof(fdarg), "%d", sfd);
	nvmk_info(SVC_LOG, NVMK_LOG_NOQ,
		  "saved in %llu us (keep-alive %s, %zu B manager, %zu B export): exec %s",
		  (unsigned long long)((st.saved_ns - t0) / 1000), keep_alive ? "on" : "off", mlen,
		  elen, path);
	fflush(stdout);
	fflush(stderr);
	{
		char *argv[] = {(char *)path, "--restore-fd", fdarg, NULL};

		execve(path, argv, environ);
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ,
			 "exec %s: %s: falling back to this binary (%s) with the same state", path,
			 strerror(errno), S.self_exe);
		argv[0] = S.self_exe;
		execve(S.self_exe, argv, environ);
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "exec %s: %s: the service stops", S.self_exe,
			 strerror(errno));
	}
	exit(1);
}

/* ---- successor ---- */

/* Whether a device is failed after the restore (or none was restored). */
static bool need_fresh(struct nvmk_mgr *mgr)
{
	struct nvmk_mgr_status ms;
	bool any = false;

	if (nvmk_mgr_status(mgr, &ms))
		return true;
	for (unsigned i = 0; i < ms.ndevices; i++)
		if (ms.devices[i].state != NVMK_MGR_DEV_READY)
			any = true;
	nvmk_mgr_status_free(&ms);
	return any;
}

static void *read_fd(int fd, size_t *len)
{
	struct stat sb;
	uint8_t *buf;

	if (fstat(fd, &sb) || sb.st_size <= 0 || sb.st_size > (256 << 20))
		return NULL;
	buf = malloc((size_t)sb.st_size);
	if (buf && pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size) {
		free(buf);
		return NULL;
	}
	*len = (size_t)sb.st_size;
	return buf;
}

static void reply(int fd, json_object *o)
{
	const char *s;
	size_t n, off = 0;

	if (fd < 0) {
		json_object_put(o);
		return;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE);
	n = strlen(s);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	while (off < n) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		(void)0;
	json_object_put(o);
	close(fd);
}

static int state_check(const NvmkdSvc__ServiceState *st, char *why, size_t wl)
{
	if (!st->has_mgr_state || !st->has_export_state || !st->has_control_fd ||
	    !st->control_path || !st->n_devices || st->n_devices > MAX_DEVICES ||
	    !st->has_quiesce_start_ns || !st->has_threads || !st->threads || st->threads > 64) {
		snprintf(why, wl, "fields missing or out of range");
		return -EBADMSG;
	}
	if (strlen(st->control_path) >= sizeof(S.control_path)) {
		snprintf(why, wl, "control path too long");
		return -EBADMSG;
	}
	for (size_t i = 0; i < st->n_devices; i++)
		if (!st->devices[i]->spec || strlen(st->devices[i]->spec) > NVMK_MGR_ID_MAX) {
			snprintf(why, wl, "device %zu: no or bad spec", i);
			return -EBADMSG;
		}
	return 0;
}

int nvmkd_service_restore(int fd, struct nvmkd_ctx *ctx, struct nvmkd_control **ctl)
{
	static struct nvmkd_dev_spec ds[MAX_DEVICES];
	struct nvmk_mgr_device_spec specs[MAX_DEVICES];
	NvmkdSvc__ServiceEnvelope *env = NULL;
	NvmkdSvc__ServiceState *st = NULL;
	struct nvmk_config_facts facts = {0};
	struct nvmk_dma_pool *pool = NULL;
	struct nvmk_config cfg;
	uint64_t t_start = mono_ns(), t_mgr, t_up;
	char why[256] = "", mgr_err[256] = "";
	bool fresh = false;
	json_object *o;
	size_t len = 0;
	void *buf;
	int rc, reply_fd = -1;

	buf = read_fd(fd, &len);
	close(fd);
	if (!buf) {
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "state memfd %d cannot be read: restore refused", fd);
		return -EBADMSG;
	}
	env = nvmkd_svc__service_envelope__unpack(NULL, len, buf);
	free(buf);
	if (!env || !env->has_version || !env->has_crc32c || !env->has_payload)
		snprintf(why, sizeof(why), "the envelope does not decode");
	else if (env->version > NVMKD_SERVICE_FORMAT)
		snprintf(why, sizeof(why), "state format %u is newer than this binary's %u",
			 env->version, NVMKD_SERVICE_FORMAT);
	else if (nvmk_crc32c(0, env->payload.data, env->payload.len) != env->crc32c)
		snprintf(why, sizeof(why), "checksum mismatch (state corrupted)");
	else if (!(st = nvmkd_svc__service_state__unpack(NULL, env->payload.len,
							   env->payload.data)))
		snprintf(why, sizeof(why), "the state does not decode");
	else
		state_check(st, why, sizeof(why));
	if (why[0]) {
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "servicing state refused: %s", why);
		if (st)
			nvmkd_svc__service_state__free_unpacked(st, NULL);
		if (env)
			nvmkd_svc__service_envelope__free_unpacked(env, NULL);
		return -EBADMSG;
	}
	if (st->has_log_level)
		nvmk_log_set_level((enum nvmk_log_level)st->log_level);
	reply_fd = st->has_reply_fd ? st->reply_fd : -1;
	if (reply_fd >= 0)
		set_cloexec(reply_fd, true);
	self_exe();
	S.servicings = st->servicings + 1;
	S.eo = (struct nvmk_export_opts){.threads = st->threads,
					 .max_connections = st->max_connections,
					 .max_inflight = st->max_inflight,
					 .slots_per_thread = st->slots_per_thread,
					 .read_only = st->read_only,
					 .tls = (enum nvmk_export_tls)st->tls,
					 .tls_creds_dir = st->tls_creds_dir ? strdup(st->tls_creds_dir)
									    : NULL,
					 .tls_psk_file = st->tls_psk_file ? strdup(st->tls_psk_file)
									  : NULL};
	snprintf(S.control_path, sizeof(S.control_path), "%s", st->control_path);
	ctx->io_queues = st->threads + 2;
	ctx->req_fd = -1;
	for (size_t i = 0; i < st->n_devices; i++) {
		S.devices[S.ndevices++] = strdup(st->devices[i]->spec);
		if (nvmkd_dev_spec_parse(st->devices[i]->spec, ctx->io_queues, &ds[i]))
			goto fail;
		specs[i] = ds[i].spec;
		if (st->devices[i]->handover &&
		    nvmkd_dev_set_handover(ds[i].id, st->devices[i]->handover))
			goto fail;
	}
	if (st->has_pool_fd && st->pool_fd >= 0) {
		set_cloexec(st->pool_fd, true);
		rc = nvmk_dma_pool_open(st->pool_fd, &pool);
		if (rc) {
			nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "inherited pool (fd %d) refused: %s",
				 st->pool_fd, strerror(-rc));
			goto fail;
		}
	}
	facts.cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	facts.host_keep_alive = true;
	facts.pool_present = pool != NULL;
	rc = nvmk_config_load(NULL, &facts, &cfg);
	if (!rc)
		rc = nvmk_mgr_create(&cfg, pool, &ctx->mgr);
	if (rc) {
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "manager: %s", strerror(-rc));
		nvmk_dma_pool_destroy(pool);
		goto fail;
	}
	for (size_t i = 0; i < st->n_devices; i++) {
		rc = nvmk_mgr_add_device(ctx->mgr, &specs[i]);
		if (rc) {
			nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "device %s: %s", ds[i].id, strerror(-rc));
			goto fail;
		}
	}
	/* commands that were at the device complete into the restored requests,
	 * in the I/O threads (deferred to their first process call) */
	rc = nvmk_mgr_restore(ctx->mgr, st->mgr_state.data, st->mgr_state.len,
			      &(struct nvmk_mgr_restore_opts){.resolve = nvmk_export_resolve,
							      .defer_completions = true});
	t_mgr = mono_ns();
	if (rc) {
		snprintf(mgr_err, sizeof(mgr_err), "manager restore: %s", strerror(-rc));
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ,
			 "%s: devices that could not be restored are failed (see above); their "
			 "connections are closed",
			 mgr_err);
	}
	if (rc && rc != -EUCLEAN && need_fresh(ctx->mgr)) {
		/* A device could not be restored: bring every device up afresh
		 * (the inherited connections are closed, a vfio-user server
		 * without --persist resets its controller) and answer what was at
		 * the device with an error; the clients stay connected. */
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ,
			 "%s: every device is brought up afresh; requests that were at the "
			 "device are answered with EIO",
			 mgr_err);
		nvmk_mgr_destroy(ctx->mgr);
		ctx->mgr = NULL;
		nvmkd_dev_drop_handovers();
		rc = nvmk_mgr_create_from_env_sized(NULL, specs, (unsigned)st->n_devices,
						    (nvmk_export_buffer_pages(&S.eo) + 512) *
							st->n_devices,
						    &ctx->mgr);
		if (rc) {
			nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "fresh manager: %s", strerror(-rc));
			goto fail;
		}
		fresh = true;
	}
	rc = nvmk_export_create(ctx->mgr, &S.eo, &ctx->srv);
	if (!rc)
		rc = nvmk_export_restore(ctx->srv, st->export_state.data, st->export_state.len,
					 fresh);
	if (!rc)
		rc = nvmkd_control_adopt(st->control_fd, st->control_path, ctx, ctl);
	if (!rc)
		rc = nvmk_export_start(ctx->srv);
	if (rc) {
		nvmk_err(SVC_LOG, NVMK_LOG_NOQ, "export not restored: %s", strerror(-rc));
		goto fail;
	}
	t_up = mono_ns();
	S.ctl = *ctl;
	S.quiesce_start_ns = st->quiesce_start_ns;
	ctx->service_fn = service_run;
	ctx->service_refresh = service_refresh;

	o = json_object_new_object();
	json_object_object_add(o, "count", json_object_new_int((int)S.servicings));
	json_object_object_add(o, "ok", json_object_new_boolean(!mgr_err[0]));
	json_object_object_add(o, "keep_alive", json_object_new_boolean(st->keep_alive));
	json_object_object_add(o, "blackout_us",
			       json_object_new_int64((int64_t)((t_up - st->quiesce_start_ns) / 1000)));
	json_object_object_add(o, "save_us", json_object_new_int64((int64_t)(
						     (st->saved_ns - st->quiesce_start_ns) / 1000)));
	if (st->has_quiesced_ns && st->quiesced_ns >= st->quiesce_start_ns)
		json_object_object_add(o, "quiesce_us",
				       json_object_new_int64((int64_t)((st->quiesced_ns -
									 st->quiesce_start_ns) /
									1000)));
	if (loaded_ns >= st->saved_ns)
		json_object_object_add(o, "loaded_us",
				       json_object_new_int64((int64_t)((loaded_ns - st->saved_ns) /
									1000)));
	json_object_object_add(o, "exec_us",
			       json_object_new_int64((int64_t)((t_start - st->saved_ns) / 1000)));
	json_object_object_add(o, "restore_us",
			       json_object_new_int64((int64_t)((t_up - t_start) / 1000)));
	json_object_object_add(o, "manager_restore_us",
			       json_object_new_int64((int64_t)((t_mgr - t_start) / 1000)));
	if (mgr_err[0])
		json_object_object_add(o, "error", json_object_new_string(mgr_err));
	json_object_object_add(o, "fresh_bringup", json_object_new_boolean(fresh));
	set_status(ctx, json_object_get(o));
	nvmk_info(SVC_LOG, NVMK_LOG_NOQ,
		  "servicing %u done: blackout %llu us (save %llu, exec %llu, restore %llu), "
		  "keep-alive %s%s%s",
		  S.servicings, (unsigned long long)((t_up - st->quiesce_start_ns) / 1000),
		  (unsigned long long)((st->saved_ns - st->quiesce_start_ns) / 1000),
		  (unsigned long long)((t_start - st->saved_ns) / 1000),
		  (unsigned long long)((t_up - t_start) / 1000), st->keep_alive ? "on" : "off",
		  mgr_err[0] ? "; " : "", mgr_err);
	json_object_object_add(o, "ok", json_object_new_boolean(!mgr_err[0]));
	reply(reply_fd, o);
	nvmkd_svc__service_state__free_unpacked(st, NULL);
	nvmkd_svc__service_envelope__free_unpacked(env, NULL);
	sd_notifyf(0, "READY=1\nSTATUS=serving (serviced %u time(s))", S.servicings);
	return 0;

fail:
	/* Nothing to answer with: every socket closes with this process, so no
	 * client waits on a reply that cannot come. */
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error",
			       json_object_new_string("the successor could not restore the "
						      "state: the service stopped (see its log)"));
	reply(reply_fd, o);
	nvmkd_svc__service_state__free_unpacked(st, NULL);
	nvmkd_svc__service_envelope__free_unpacked(env, NULL);
	return -EIO;
}
