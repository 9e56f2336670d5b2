/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep: command line front end. Subcommands follow nvme-cli's names and
 * options where one exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nvmekeep/log.h"
#include "nvmekeep/version.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct subcommand subcommands[] = {
    {"list", cmd_list, "list the controller and its namespaces"},
    {"id-ctrl", cmd_id_ctrl, "Identify Controller"},
    {"id-ns", cmd_id_ns, "Identify Namespace"},
    {"read", cmd_read, "read blocks to a file or stdout"},
    {"write", cmd_write, "write blocks from a file or stdin"},
    {"bench", cmd_bench, "IOPS, bandwidth and latency percentiles"},
    {"config", cmd_config, "effective configuration (OpenHCL variables)"},
    {"setup", cmd_setup, "list NVMe PCI functions, bind to / unbind from vfio-pci"},
    {"status", cmd_status, "nvmekeepd: devices, exports, connections, counters"},
    {"add", cmd_add, "nvmekeepd: export a device"},
    {"remove", cmd_remove, "nvmekeepd: stop exporting a device"},
    {"stop", cmd_stop, "nvmekeepd: stop the daemon"},
    {"service", cmd_service, "nvmekeepd: replace the daemon by a new binary, clients kept"},
    {"emu", cmd_emu, "stats of / faults into a running nvmekeep-emu (--control)"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: nvmekeep [-v|-vv] COMMAND [DEVICE] [options]\n"
		   "       nvmekeep --version | --help\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-9s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(f, "\nDEVICE is 'emu' (the built-in emulated controller, default), 'emu:FILE'\n"
		   "(emulated, namespace 1 stored in FILE), a PCI address (0000:00:03.0, or\n"
		   "00:03.0 in domain 0) bound to vfio-pci (the userspace driver),\n"
		   "'vfio-user:SOCKET' (a controller served by nvmekeep-emu), or for read/write\n"
		   "a kernel NVMe namespace /dev/nvmeXnY, controller /dev/nvmeX (its namespace\n"
		   "-n) or another absolute path (io_uring). read/write also take a PCI address bound to\n"
		   "the kernel nvme driver through the kernel when OPENHCL_NVME_VFIO is off\n"
		   "(the default); with OPENHCL_NVME_VFIO=1 it must be bound to vfio-pci.\n"
		   "'nvmekeep COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	nvmk_log_set_level(NVMK_LOG_WARN);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v")) {
			nvmk_log_set_level(NVMK_LOG_INFO);
		} else if (!strcmp(argv[i], "-vv")) {
			nvmk_log_set_level(NVMK_LOG_DEBUG);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			/* the program's version, and the library's when it differs
			 * (a shared libnvmekeep of another release) */
			printf("nvmekeep %s", NVMK_VERSION);
			if (strcmp(nvmk_version(), NVMK_VERSION))
				printf(" (library %s)", nvmk_version());
			printf("\n");
			return 0;
		} else {
			fprintf(
			    stderr,
			    "nvmekeep: unknown option '%s': expected -v, -vv, --version or --help "
			    "before the command\n",
			    argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(subcommands) / sizeof(subcommands[0]); c++) {
		if (!strcmp(argv[i], subcommands[c].name))
			return subcommands[c].fn(argc - i, argv + i);
	}
	fprintf(stderr, "nvmekeep: unknown command '%s'\n\n", argv[i]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
