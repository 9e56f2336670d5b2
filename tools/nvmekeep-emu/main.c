// SPDX-License-Identifier: MIT
/*
 * nvmekeep-emu: one emulated NVMe controller served as a PCI function over
 * vfio-user, so that the device outlives the program driving it.
 *
 *   nvmekeep-emu --socket PATH [--ns ram:SIZE[:LBASIZE] | --ns file:PATH[:LBASIZE]
 *                | --ns null:SIZE[:LBASIZE]]... [--control PATH] [--serial S]
 *                [--persist] [-v]
 *
 * Runs in the foreground, logs to stderr, stops on SIGTERM/SIGINT (file
 * namespaces are flushed). --socket-path=PATH and --fd=N are accepted as
 * the spec's "Backend Program Conventions" ask.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvmekeep/version.h"
#include "nvmekeep/log.h"
#include "server.h"

#define DEFAULT_RAM_BYTES  (1ull << 30)
#define DEFAULT_NULL_BYTES (64ull << 30)

static const char usage_text[] =
    "usage: nvmekeep-emu --socket PATH [options]\n"
    "Serve one emulated NVMe controller as a vfio-user PCI function.\n"
    "  --socket PATH        listen on this UNIX socket (also --socket-path=PATH)\n"
    "  --fd N               use the listening socket N instead\n"
    "  --ns ram:SIZE[:LBASIZE]   a RAM namespace (SIZE with K/M/G/T suffix)\n"
    "  --ns file:PATH[:LBASIZE]  a namespace on FILE (created 1 GiB when missing)\n"
    "  --ns null:SIZE[:LBASIZE]  writes dropped, reads zero\n"
    "                       repeatable, NSIDs 1, 2, ... in order; LBASIZE 512 or 4096.\n"
    "                       Default: ram:1G:512 and null:64G:4096, as 'nvmekeep ... emu'\n"
    "  --serial S           Identify serial number (default NVMKEMU0001)\n"
    "  --persist            keep the controller's state when the client disconnects\n"
    "                       (the next client carries on without a reset if it maps\n"
    "                       the same memory; other memory there resets it; a client\n"
    "                       that crashed is adopted from its kept private pool)\n"
    "  --no-resume-memory   with --persist: drop the client's memory at a disconnect\n"
    "                       (a client that crashed is then always reset)\n"
    "  --control PATH       JSON control socket: stats, fault injection\n"
    "  -v, --verbose        more log lines (repeat for debug)\n"
    "  -V, --version        print the version\n";

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (*end || v == 0 || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* "KIND:ARG[:LBASIZE]" into @ns (nsid set by the caller). */
static int parse_ns(const char *spec, struct nvmk_emu_ns_config *ns, char **path_out)
{
	char *dup = strdup(spec), *kind, *arg, *lba;
	unsigned long lbs = 512;
	uint64_t bytes = 0;
	int rc = -EINVAL;

	if (!dup)
		return -ENOMEM;
	kind = dup;
	arg = strchr(kind, ':');
	if (!arg)
		goto bad;
	*arg++ = 0;
	lba = strrchr(arg, ':');
	if (lba && (!strcmp(lba + 1, "512") || !strcmp(lba + 1, "4096"))) {
		*lba++ = 0;
		lbs = strtoul(lba, NULL, 10);
	}
	ns->lba_shift = lbs == 4096 ? 12 : 9;
	if (!strcmp(kind, "ram") || !strcmp(kind, "null")) {
		if (parse_size(arg, &bytes) || bytes < lbs)
			goto bad;
		ns->backing = !strcmp(kind, "ram") ? NVMK_EMU_BACK_RAM : NVMK_EMU_BACK_NULL;
	} else if (!strcmp(kind, "file") && arg[0]) {
		struct stat st;

		ns->backing = NVMK_EMU_BACK_FILE;
		bytes = DEFAULT_RAM_BYTES;
		if (stat(arg, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= lbs)
			bytes = (uint64_t)st.st_size;
		*path_out = strdup(arg);
		if (!*path_out) {
			rc = -ENOMEM;
			goto out;
		}
		ns->path = *path_out;
	} else {
		goto bad;
	}
	ns->nblocks = bytes / lbs;
	rc = 0;
	goto out;
bad:
	fprintf(stderr,
		"nvmekeep-emu: bad --ns '%s': expected ram:SIZE[:LBASIZE], file:PATH[:LBASIZE] "
		"or null:SIZE[:LBASIZE] (SIZE like 1G, LBASIZE 512 or 4096)\n",
		spec);
out:
	free(dup);
	return rc;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "nvmekeep-emu: socket path too long (at most %zu bytes): %s\n",
			sizeof(sa.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "nvmekeep-emu: %s exists and is not a socket\n", path);
			return -EEXIST;
		}
		unlink(path); /* a stale socket of an earlier run */
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int rc = -errno;

		fprintf(stderr, "nvmekeep-emu: cannot listen on %s: %s\n", path, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"socket-path", required_argument, NULL, 's'},
					     {"fd", required_argument, NULL, 'f'},
					     {"ns", required_argument, NULL, 'n'},
					     {"serial", required_argument, NULL, 'S'},
					     {"persist", no_argument, NULL, 'p'},
					     {"no-resume-memory", no_argument, NULL, 'M'},
					     {"control", required_argument, NULL, 'c'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	static struct srv srv;
	struct srv *s = &srv;
	struct nvmk_emu_config cfg;
	const char *sock_path = NULL, *control = NULL, *serial = "NVMKEMU0001";
	char *paths[NVMK_EMU_MAX_NS] = {0};
	unsigned nns = 0, verbose = 0;
	bool no_resume_memory = false;
	int listen_fd = -1, c, rc;
	sigset_t set;

	nvmk_emu_config_default(&cfg);
	while ((c = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'f': {
			struct stat st;
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < 0 || v > INT32_MAX || fstat((int)v, &st) ||
			    !S_ISSOCK(st.st_mode)) {
				fprintf(stderr,
					"nvmekeep-emu: --fd %s is not an open listening socket\n",
					optarg);
				return 2;
			}
			listen_fd = (int)v;
			break;
		}
		case 'n':
			if (nns == NVMK_EMU_MAX_NS) {
				fprintf(stderr, "nvmekeep-emu: at most %d --ns\n", NVMK_EMU_MAX_NS);
				return 2;
			}
			cfg.ns[nns] = (struct nvmk_emu_ns_config){.nsid = nns + 1};
			if (parse_ns(optarg, &cfg.ns[nns], &paths[nns]))
				return 2;
			nns++;
			break;
		case 'S':
			if (strlen(optarg) > 20) {
				fprintf(stderr,
					"nvmekeep-emu: --serial is at most 20 characters\n");
				return 2;
			}
			serial = optarg;
			break;
		case 'p':
			s->persist = true;
			break;
		case 'M':
			no_resume_memory = true;
			break;
		case 'c':
			control = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("nvmekeep-emu %s\n", NVMK_VERSION);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind < argc || (!sock_path && listen_fd < 0)) {
		fputs(usage_text, stderr);
		return 2;
	}
	nvmk_log_set_level(verbose >= 2 ? NVMK_LOG_DEBUG : verbose ? NVMK_LOG_INFO : NVMK_LOG_WARN);
	if (nns == 0) {
		cfg.ns[0] = (struct nvmk_emu_ns_config){.nsid = 1,
							.nblocks = DEFAULT_RAM_BYTES >> 9,
							.lba_shift = 9,
							.backing = NVMK_EMU_BACK_RAM};
		cfg.ns[1] = (struct nvmk_emu_ns_config){.nsid = 2,
							.nblocks = DEFAULT_NULL_BYTES >> 12,
							.lba_shift = 12,
							.backing = NVMK_EMU_BACK_NULL};
		nns = 2;
	}
	cfg.nr_ns = nns;
	cfg.name = "emu0";
	cfg.serial = serial;
	cfg.model = "nvmekeep emulated controller";

	/* SIGTERM/SIGINT are read from a signalfd by the main loop: block them in
	 * every thread, before any is created */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	s->keep_memory = s->persist && !no_resume_memory;
	rc = srv_setup(s, &cfg);
	if (rc) {
		fprintf(stderr, "nvmekeep-emu: cannot create the controller: %s\n", strerror(-rc));
		return 1;
	}
	if (listen_fd < 0) {
		listen_fd = listen_on(sock_path);
		if (listen_fd < 0)
			return 1;
	}
	s->listen_fd = listen_fd;
	s->stop_fd = -1;
	if (control && srv_control_start(s, control))
		return 1;
	nvmk_log(NVMK_LOG_WARN, s->name, NVMK_LOG_NOQ,
		 "serving on %s (%u namespaces, %u MSI-X vectors%s)", sock_path ? sock_path : "fd",
		 nns, s->nvec, s->persist ? ", persist" : "");

	srv_serve(s);

	srv_control_stop();
	srv_teardown(s);
	/* file namespaces: make what was written durable before exiting */
	for (unsigned i = 0; i < nns; i++) {
		if (paths[i]) {
			int fd = open(paths[i], O_RDWR | O_CLOEXEC);

			if (fd >= 0) {
				if (fdatasync(fd))
					fprintf(stderr, "nvmekeep-emu: flushing %s: %s\n", paths[i],
						strerror(errno));
				close(fd);
			}
			free(paths[i]);
		}
	}
	if (sock_path)
		unlink(sock_path);
	close(listen_fd);
	return 0;
}
