// SPDX-License-Identifier: MIT
/*
 * nvmekeepd: the storage service. Owns the devices through the manager,
 * exports their namespaces over NBD (src/export) and takes commands on a
 * control socket. Readiness and status go to systemd (Type=notify).
 *
 * SIGTERM/SIGINT (or the "stop" verb): stop accepting, answer what is in
 * flight, flush, shut the controllers down (CC.SHN), remove the sockets,
 * exit 0. docs/daemon.md describes the threads and the state layout.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "control.h"
#include "devices.h"
#include "nvmekeep/export.h"
#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"
#include "nvmekeep/version.h"
#include "runtime_dir.h"
#include "servicing.h"

#define MAX_DEVICES   16
#define MAX_LISTENERS 8

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nvmekeepd [--device SPEC]... [--listen unix:PATH|tcp:HOST:PORT]...\n"
		"                 [--control PATH] [--read-only] [--threads N]\n"
		"                 [--max-connections N] [--max-inflight N]\n"
		"                 [--tls off|on|require] [--tls-creds DIR] [--tls-psk FILE]\n"
		"                 [--emu-exec auto|worker|inline] [-q|-v]\n\n"
		"Exports every namespace of each device over NBD as DEVICE/NSID.\n"
		"  --device SPEC        emu (default), emu:FILE, a PCI address, vfio-user:SOCKET,\n"
		"                       /dev/nvmeXnY, /dev/nvmeX\n"
		"  --listen ADDR        unix:PATH or tcp:HOST:PORT (default: unix socket\n"
		"                       /run/nvmekeep/nbd.sock as root, else under\n"
		"                       $XDG_RUNTIME_DIR/nvmekeep/)\n"
		"  --control PATH       control socket (default control.sock beside it)\n"
		"  --read-only          refuse writes on every export\n"
		"  --threads N          I/O threads (default: online CPUs)\n"
		"  --max-connections N  simultaneous NBD connections (default 64)\n"
		"  --max-inflight N     requests in flight per connection (default 64)\n"
		"  --tls MODE           STARTTLS on TCP listeners: off, on (offered), require\n"
		"  --tls-creds DIR      X.509: DIR/server-cert.pem, server-key.pem [, ca-cert.pem]\n"
		"  --tls-psk FILE       PSK: lines 'username:hexkey' (psktool)\n"
		"  --emu-exec MODE      built-in emulator's I/O commands: on its worker thread,\n"
		"                       inline (on the I/O thread that rings the doorbell), or\n"
		"                       auto (default: inline for the RAM namespace on at most\n"
		"                       2 online CPUs, else worker)\n"
		"  -q, -v               log warnings only / debug lines\n"
		"Servicing (nvmekeep service, docs/servicing.md): --service-check FORMAT,\n"
		"--restore-fd N are used between a daemon and its successor.\n"
		"  -V, --version        print the version\n"
		"Configuration: OPENHCL_NVME_KEEP_ALIVE, OPENHCL_NVME_VFIO,\n"
		"OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG (see nvmekeepd(8)).\n");
}

static int parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max) {
		fprintf(stderr, "nvmekeepd: %s '%s': expected a number from %u to %u\n", opt, s, min,
			max);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

struct args {
	const char *devices[MAX_DEVICES];
	unsigned ndevices;
	const char *listeners[MAX_LISTENERS];
	unsigned nlisteners;
	const char *control;
	bool tls_set;
	struct nvmk_export_opts eo;
	int restore_fd; /* servicing: the successor's state memfd, -1 */
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option lo[] = {
	    {"device", required_argument, NULL, 'd'},
	    {"listen", required_argument, NULL, 'l'},
	    {"control", required_argument, NULL, 'c'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"threads", required_argument, NULL, 't'},
	    {"max-connections", required_argument, NULL, 'm'},
	    {"max-inflight", required_argument, NULL, 'i'},
	    {"tls", required_argument, NULL, 'T'},
	    {"tls-creds", required_argument, NULL, 'X'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"emu-exec", required_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},
	    {"service-check", required_argument, NULL, 'S'},
	    {"restore-fd", required_argument, NULL, 'R'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int o;

	while ((o = getopt_long(argc, argv, "d:l:c:rt:m:i:qvhV", lo, NULL)) != -1) {
		switch (o) {
		case 'd':
			if (a->ndevices == MAX_DEVICES) {
				fprintf(stderr, "nvmekeepd: at most %d --device\n", MAX_DEVICES);
				return 2;
			}
			a->devices[a->ndevices++] = optarg;
			break;
		case 'l':
			if (a->nlisteners == MAX_LISTENERS) {
				fprintf(stderr, "nvmekeepd: at most %d --listen\n", MAX_LISTENERS);
				return 2;
			}
			a->listeners[a->nlisteners++] = optarg;
			break;
		case 'c':
			a->control = optarg;
			break;
		case 'r':
			a->eo.read_only = true;
			break;
		case 't':
			if (parse_uint("--threads", optarg, 1, 64, &a->eo.threads))
				return 2;
			break;
		case 'm':
			if (parse_uint("--max-connections", optarg, 1, 4096, &a->eo.max_connections))
				return 2;
			break;
		case 'i':
			if (parse_uint("--max-inflight", optarg, 1, 1024, &a->eo.max_inflight))
				return 2;
			break;
		case 'T':
			if (!strcmp(optarg, "off"))
				a->eo.tls = NVMK_EXPORT_TLS_OFF;
			else if (!strcmp(optarg, "on"))
				a->eo.tls = NVMK_EXPORT_TLS_ON;
			else if (!strcmp(optarg, "require"))
				a->eo.tls = NVMK_EXPORT_TLS_REQUIRE;
			else {
				fprintf(stderr, "nvmekeepd: --tls '%s': expected off, on or require\n",
					optarg);
				return 2;
			}
			a->tls_set = true;
			break;
		case 'X':
			a->eo.tls_creds_dir = optarg;
			break;
		case 'P':
			a->eo.tls_psk_file = optarg;
			break;
		case 'E':
			if (!strcmp(optarg, "auto"))
				nvmkd_dev_set_emu_exec(NVMKD_EMU_EXEC_AUTO);
			else if (!strcmp(optarg, "worker"))
				nvmkd_dev_set_emu_exec(NVMKD_EMU_EXEC_WORKER);
			else if (!strcmp(optarg, "inline"))
				nvmkd_dev_set_emu_exec(NVMKD_EMU_EXEC_INLINE);
			else {
				fprintf(stderr,
					"nvmekeepd: --emu-exec '%s': expected auto, worker or inline\n",
					optarg);
				return 2;
			}
			break;
		case 'q':
			nvmk_log_set_level(NVMK_LOG_WARN);
			break;
		case 'v':
			nvmk_log_set_level(NVMK_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'S': /* servicing: can this binary restore a state of this format? */
			exit(nvmkd_service_check(optarg));
		case 'R': {
			unsigned fd;

			if (parse_uint("--restore-fd", optarg, 3, 1u << 20, &fd))
				return 2;
			a->restore_fd = (int)fd;
			break;
		}
		case 'V':
			printf("nvmekeepd %s\n", NVMK_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nvmekeepd: unexpected argument '%s' (devices go with --device)\n",
			argv[optind]);
		return 2;
	}
	if (!a->ndevices)
		a->devices[a->ndevices++] = "emu";
	/* credentials alone mean TLS offered */
	if (!a->tls_set && (a->eo.tls_creds_dir || a->eo.tls_psk_file))
		a->eo.tls = NVMK_EXPORT_TLS_ON;
	if (a->eo.tls != NVMK_EXPORT_TLS_OFF && !a->eo.tls_creds_dir && !a->eo.tls_psk_file) {
		fprintf(stderr, "nvmekeepd: --tls %s needs --tls-creds DIR or --tls-psk FILE\n",
			a->eo.tls == NVMK_EXPORT_TLS_ON ? "on" : "require");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct nvmkd_dev_spec ds[MAX_DEVICES];
	struct nvmk_mgr_device_spec specs[MAX_DEVICES];
	struct args a = {.restore_fd = -1};
	struct nvmkd_ctx ctx = {0};
	struct nvmkd_control *ctl = NULL;
	const struct nvmk_config *cfg;
	char nbd_path[256], ctl_path[256], listen_def[300];
	sigset_t mask;
	int sfd, rc;
	unsigned threads;

	nvmk_log_set_level(NVMK_LOG_INFO);
	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	ctx.req_fd = -1;
	if (a.restore_fd >= 0) {
		/* the successor of a servicing: everything comes from the state */
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		signal(SIGPIPE, SIG_IGN);
		sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
		if (nvmkd_service_restore(a.restore_fd, &ctx, &ctl))
			return 1;
		goto serve;
	}
	threads = a.eo.threads ? a.eo.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	ctx.io_queues = threads + 2;
	for (unsigned i = 0; i < a.ndevices; i++) {
		if (nvmkd_dev_spec_parse(a.devices[i], ctx.io_queues, &ds[i]))
			return 2;
		specs[i] = ds[i].spec;
	}
	/* signals are taken with signalfd; blocked before any thread starts */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	/* request buffers, plus queue memory for the queue pairs the I/O threads
	 * add to the heuristic's count (2 MiB per device) */
	rc = nvmk_mgr_create_from_env_sized(NULL, specs, a.ndevices,
					    (nvmk_export_buffer_pages(&a.eo) + 512) * a.ndevices,
					    &ctx.mgr);
	if (rc) {
		fprintf(stderr, "nvmekeepd: manager: %s\n", strerror(-rc));
		return 1;
	}
	cfg = nvmk_mgr_config(ctx.mgr);
	/* as OpenHCL's boot shim: the effective value, once */
	nvmk_log(NVMK_LOG_INFO, "nvmekeepd", NVMK_LOG_NOQ, "OPENHCL_NVME_KEEP_ALIVE=%s (%s)",
		 cfg->keep_alive.mode, nvmk_config_source_name(cfg->keep_alive.source));
	rc = nvmk_export_create(ctx.mgr, &a.eo, &ctx.srv);
	for (unsigned i = 0; !rc && i < a.ndevices; i++) {
		rc = nvmk_export_add_device(ctx.srv, ds[i].id);
		if (rc)
			fprintf(stderr, "nvmekeepd: device %s: %s\n", a.devices[i], strerror(-rc));
	}
	if (!rc && !a.nlisteners) {
		rc = nvmk_runtime_path("nbd.sock", nbd_path, sizeof(nbd_path), 1);
		snprintf(listen_def, sizeof(listen_def), "unix:%s", nbd_path);
		a.listeners[a.nlisteners++] = listen_def;
	}
	for (unsigned i = 0; !rc && i < a.nlisteners; i++) {
		rc = nvmk_export_listen(ctx.srv, a.listeners[i]);
		if (rc)
			fprintf(stderr, "nvmekeepd: --listen %s: %s\n", a.listeners[i], strerror(-rc));
	}
	if (!rc && !a.control) {
		rc = nvmk_runtime_path("control.sock", ctl_path, sizeof(ctl_path), 1);
		a.control = ctl_path;
	}
	if (!rc)
		rc = nvmkd_control_open(a.control, &ctx, &ctl);
	if (!rc)
		rc = nvmk_export_start(ctx.srv);
	if (rc) {
		nvmkd_control_close(ctl);
		nvmk_export_destroy(ctx.srv);
		nvmk_mgr_destroy(ctx.mgr);
		return 1;
	}
	for (unsigned i = 0; nvmk_export_listener_addr(ctx.srv, i); i++)
		printf("nvmekeepd: serving NBD on %s\n", nvmk_export_listener_addr(ctx.srv, i));
	printf("nvmekeepd: control socket %s\n", a.control);
	fflush(stdout);
	sd_notifyf(0, "READY=1\nSTATUS=serving %u device(s) on %s", a.ndevices,
		   nvmk_export_listener_addr(ctx.srv, 0));
	nvmkd_service_init(&ctx, &(struct nvmkd_service_cfg){.devices = a.devices,
							   .ndevices = a.ndevices,
							   .eo = a.eo,
							   .control_path = a.control,
							   .ctl = ctl});
serve:

	while (!ctx.stop) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
				      {.fd = nvmkd_control_fd(ctl), .events = POLLIN}};
		struct signalfd_siginfo si;

		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			nvmk_log(NVMK_LOG_INFO, "nvmekeepd", NVMK_LOG_NOQ, "signal %u: stopping",
				 si.ssi_signo);
			break;
		}
		if (p[1].revents)
			nvmkd_control_run(ctl);
	}
	sd_notify(0, "STOPPING=1\nSTATUS=draining connections");
	nvmk_export_stop(ctx.srv);
	sd_notify(0, "STATUS=shutting the controllers down");
	rc = nvmk_mgr_shutdown(ctx.mgr);
	if (rc)
		nvmk_log(NVMK_LOG_WARN, "nvmekeepd", NVMK_LOG_NOQ, "controller shutdown: %s",
			 strerror(-rc));
	nvmkd_control_close(ctl);
	nvmk_export_destroy(ctx.srv);
	nvmk_mgr_destroy(ctx.mgr);
	close(sfd);
	nvmk_log(NVMK_LOG_INFO, "nvmekeepd", NVMK_LOG_NOQ, "stopped");
	return 0;
}
