/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep setup: NVMe PCI functions and their drivers.
 *   setup [list] [-o json]         every NVMe function (class 010802h) and its driver
 *   setup bind ADDR [--force] [--dry-run]    hand ADDR to vfio-pci (userspace driver)
 *   setup unbind ADDR [--force] [--dry-run]  give ADDR back to the kernel nvme driver
 * bind/unbind touch only NVMe functions and refuse one in use unless --force
 * (nvmk_pci_setup_bind in include/nvmekeep/backing.h says what "in use" is).
 * Vendor and device names come from libpci's copy of the PCI ID database
 * (pci.ids). NVMK_SYSFS_ROOT (default /sys) points list at another sysfs
 * tree: the tests build one.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <pci/pci.h>

#include "cli.h"
#include "nvmekeep/backing.h"

#define SETUP_MAX_FUNCS 256

static const char setup_usage[] =
    "Usage: nvmekeep setup [list] [-o normal|json]\n"
    "       nvmekeep setup bind ADDR [--force] [--dry-run]\n"
    "       nvmekeep setup unbind ADDR [--force] [--dry-run]\n"
    "List NVMe PCI functions, or move one between the kernel nvme driver and\n"
    "vfio-pci. ADDR (DDDD:BB:DD.F) is an NVMe function as `setup list` shows it;\n"
    "other functions are never touched. A function in use (mounted filesystem or\n"
    "swap, LVM/device-mapper/MD holder, open block or controller device; for\n"
    "unbind, an open VFIO group) is refused unless --force. --dry-run checks and\n"
    "prints what would be done, changing nothing.\n";

/* libpci reports a missing or broken pci.ids through these; the names are
 * then left out (the numbers are always shown), so they stay quiet. */
static void PCI_PRINTF(1, 2) pci_quiet(char *msg, ...)
{
	(void)msg;
}

static PCI_NONRET void pci_fatal(char *msg, ...)
{
	/* libpci calls this only for allocation failures here */
	(void)msg;
	fprintf(stderr, "nvmekeep setup: libpci failed\n");
	exit(CLI_EXIT_FAIL);
}

/* "Vendor Device" from pci.ids, or "" when the database does not know them */
static void pci_name(struct pci_access *pacc, const struct nvmk_pci_func *f, char *buf, size_t len)
{
	const char *s = NULL;

	if (pacc)
		s = pci_lookup_name(pacc, buf, (int)len,
				    PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
				    f->vendor, f->device);
	if (s != buf)
		snprintf(buf, len, "%s", s ? s : "");
}

static int setup_list(enum cli_output out)
{
	struct nvmk_pci_func *f = calloc(SETUP_MAX_FUNCS, sizeof(*f));
	struct pci_access *pacc = pci_alloc();
	char name[256];
	size_t n = 0;
	int ret;

	if (!f || !pacc) {
		free(f);
		if (pacc)
			pci_cleanup(pacc);
		return CLI_EXIT_FAIL;
	}
	pacc->warning = pci_quiet;
	pacc->debug = pci_quiet;
	pacc->error = pci_fatal;
	ret = nvmk_pci_list_nvme(getenv("NVMK_SYSFS_ROOT"), f, SETUP_MAX_FUNCS, &n);
	if (ret) {
		fprintf(stderr, "nvmekeep setup: cannot list PCI functions: %s\n", strerror(-ret));
		free(f);
		pci_cleanup(pacc);
		return CLI_EXIT_FAIL;
	}
	if (n > SETUP_MAX_FUNCS)
		n = SETUP_MAX_FUNCS;
	if (out == CLI_OUT_JSON) {
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "address", json_object_new_string(f[i].addr));
			json_object_object_add(o, "vendor", json_object_new_int(f[i].vendor));
			json_object_object_add(o, "device", json_object_new_int(f[i].device));
			pci_name(pacc, &f[i], name, sizeof(name));
			json_object_object_add(o, "name", json_object_new_string(name));
			json_object_object_add(o, "driver", json_object_new_string(f[i].driver));
			json_object_object_add(o, "iommu_group",
					       json_object_new_string(f[i].iommu_group));
			json_object_array_add(arr, o);
		}
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
		json_object_put(arr);
	} else if (n == 0) {
		printf("no NVMe PCI functions found\n");
	} else {
		printf("%-14s %-11s %-10s %-11s %s\n", "Address", "Vendor:Dev", "Driver",
		       "IOMMU group", "Name");
		for (size_t i = 0; i < n; i++) {
			pci_name(pacc, &f[i], name, sizeof(name));
			printf("%-14s %04x:%04x  %-10s %-11s %s\n", f[i].addr, f[i].vendor,
			       f[i].device, f[i].driver[0] ? f[i].driver : "(none)",
			       f[i].iommu_group[0] ? f[i].iommu_group : "(none)", name);
		}
	}
	free(f);
	pci_cleanup(pacc);
	return 0;
}

int cmd_setup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output-format", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum cli_output out = CLI_OUT_NORMAL;
	const char *action = "list", *addr = NULL;
	struct nvmk_pci_setup_opts so = {0};
	char report[2048];
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:fnh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_parse_output(optarg, &out))
				return CLI_EXIT_USAGE;
			break;
		case 'f':
			so.force = true;
			break;
		case 'n':
			so.dry_run = true;
			break;
		case 'h':
			printf("%s", setup_usage);
			return 0;
		default:
			cli_usage_error("setup", "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args("setup", argc, argv, (const char **[]){&action, &addr}, 2))
		return CLI_EXIT_USAGE;
	if (!strcmp(action, "list")) {
		if (addr) {
			cli_usage_error("setup", "'list' takes no address");
			return CLI_EXIT_USAGE;
		}
		return setup_list(out);
	}
	if (strcmp(action, "bind") && strcmp(action, "unbind")) {
		cli_usage_error("setup", "unknown action '%s': expected list, bind or unbind",
				action);
		return CLI_EXIT_USAGE;
	}
	if (!addr || !nvmk_pci_addr_valid(addr)) {
		cli_usage_error("setup",
				"%s needs the PCI address (DDDD:BB:DD.F) of an NVMe function from "
				"`nvmekeep setup list`%s%s%s",
				action, addr ? ", not '" : "", addr ? addr : "", addr ? "'" : "");
		return CLI_EXIT_USAGE;
	}
	so.report = report;
	so.report_len = sizeof(report);
	if (!strcmp(action, "bind"))
		ret = nvmk_pci_setup_bind(addr, &so);
	else
		ret = nvmk_pci_setup_unbind(addr, &so);
	if (ret) {
		fprintf(stderr, "nvmekeep setup %s %s: %s%s\n", action, addr, strerror(-ret),
			ret == -EBUSY && !so.force ? " (the function is in use; --force overrides)"
			: ret == -EINVAL	   ? " (not an NVMe function?)"
						   : "");
		return CLI_EXIT_FAIL;
	}
	if (so.dry_run) {
		printf("%s: dry run, nothing changed. Would: %s\n", addr, report);
		return 0;
	}
	printf("%s: now bound to %s\n", addr, !strcmp(action, "bind") ? "vfio-pci" : "nvme");
	return 0;
}
