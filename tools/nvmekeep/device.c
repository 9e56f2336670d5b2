/* SPDX-License-Identifier: MIT */
/*
 * Device argument of every CLI command:
 *   (none) or "emu"  the built-in emulated controller: namespace 1 is 1 GiB of
 *                    RAM with 512 B blocks, namespace 2 a 64 GiB null
 *                    namespace with 4 KiB blocks (for benchmarks)
 *   "emu:FILE"       as above, but namespace 1 is FILE (created 1 GiB if
 *                    missing), so data outlives the process
 *   "DDDD:BB:DD.F"   a PCI NVMe function driven through VFIO
 *   "vfio-user:PATH" a controller served by a vfio-user server on socket PATH
 *                    (nvmekeep-emu); NVMEKEEP_VFIO_USER_DOORBELLS=trap makes
 *                    every doorbell a message (to measure what mmap saves)
 *   "/dev/nvmeXnY"   (any path) a namespace of the Linux kernel NVMe driver,
 *                    reached through io_uring (kernel_ns.h); read/write only
 * A PCI address bound to the kernel's nvme driver (not vfio-pci) is taken
 * through the kernel path too when OPENHCL_NVME_VFIO is off, its default
 * (manager.h): that is the configuration where nvmekeep leaves the device to
 * the kernel. With OPENHCL_NVME_VFIO=1 it stays a VFIO device, and opening it
 * reports that it is not bound to vfio-pci.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/kernel_ns.h"
#include "nvmekeep/manager.h"

#define EMU_RAM_BYTES  (1ull << 30)
#define EMU_NULL_BYTES (64ull << 30)

static int open_emu(const char *file, struct cli_dev *dev)
{
	struct nvmk_emu_config cfg;
	struct stat st;
	int ret;

	nvmk_emu_config_default(&cfg);
	cfg.name = "emu0";
	cfg.serial = "NVMKEMU0001";
	cfg.model = "nvmekeep emulated controller";
	cfg.nr_ns = 2;
	cfg.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1,
	    .nblocks = EMU_RAM_BYTES >> 9,
	    .lba_shift = 9,
	    .backing = NVMK_EMU_BACK_RAM,
	};
	if (file) {
		cfg.ns[0].backing = NVMK_EMU_BACK_FILE;
		cfg.ns[0].path = file;
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512)
			cfg.ns[0].nblocks = (uint64_t)st.st_size >> 9;
	}
	cfg.ns[1] = (struct nvmk_emu_ns_config){
	    .nsid = CLI_EMU_NULL_NSID,
	    .nblocks = EMU_NULL_BYTES >> 12,
	    .lba_shift = 12,
	    .backing = NVMK_EMU_BACK_NULL,
	};
	ret = nvmk_backing_local_create(&cfg, &dev->backing, &dev->emu);
	if (ret)
		fprintf(stderr, "nvmekeep: cannot create the emulated controller%s%s: %s\n",
			file ? " on " : "", file ? file : "", strerror(-ret));
	return ret;
}

static const char dev_accepted[] =
    "DEVICE is 'emu', 'emu:FILE', a PCI address DDDD:BB:DD.F in hex (like "
    "0000:01:00.0; 'nvmekeep setup list' shows them), 'vfio-user:SOCKET' or a block "
    "device /dev/nvmeXnY";

int cli_dev_check(const char *cmd, const char *spec)
{
	if (!spec || !strcmp(spec, "emu") || (!strncmp(spec, "emu:", 4) && spec[4]) ||
	    spec[0] == '/' || nvmk_pci_addr_valid(spec))
		return 0;
	if (!strncmp(spec, "vfio-user:", 10) && spec[10])
		return 0;
	if (!strcmp(spec, "emu:"))
		cli_usage_error(cmd, "invalid DEVICE 'emu:': a FILE must follow the colon; %s",
				dev_accepted);
	else if (!strcmp(spec, "vfio-user:"))
		cli_usage_error(cmd,
				"invalid DEVICE 'vfio-user:': a SOCKET path must follow the colon; %s",
				dev_accepted);
	else if (strchr(spec, ':'))
		cli_usage_error(cmd, "invalid DEVICE '%s': not a PCI address; %s", spec,
				dev_accepted);
	else if (!strncmp(spec, "nvme", 4))
		cli_usage_error(cmd,
				"invalid DEVICE '%s': a kernel NVMe namespace is given by its "
				"path, like /dev/nvme0n1; %s",
				spec, dev_accepted);
	else
		cli_usage_error(cmd, "invalid DEVICE '%s': %s", spec, dev_accepted);
	return CLI_EXIT_USAGE;
}

bool cli_dev_is_kernel(const char *spec)
{
	char link[PATH_MAX], target[PATH_MAX];
	struct nvmk_config cfg;
	const char *drv;
	ssize_t n;

	if (!spec)
		return false;
	if (spec[0] == '/')
		return true;
	if (!nvmk_pci_addr_valid(spec))
		return false;
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver", spec);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = 0;
	drv = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	if (strcmp(drv, "nvme"))
		return false;
	nvmk_config_load(NULL, NULL, &cfg);
	return !cfg.nvme_vfio.enabled;
}

int cli_dev_open(const char *spec, const struct nvmk_ctrl_opts *opts, struct cli_dev *dev)
{
	int ret;

	memset(dev, 0, sizeof(*dev));
	if (!spec)
		spec = "emu";
	snprintf(dev->spec, sizeof(dev->spec), "%s", spec);

	if (!strcmp(spec, "emu")) {
		ret = open_emu(NULL, dev);
	} else if (!strncmp(spec, "emu:", 4) && spec[4]) {
		ret = open_emu(spec + 4, dev);
	} else if (nvmk_pci_addr_valid(spec)) {
		/* the backing logs what is wrong and how to fix it (not bound to
		 * vfio-pci, group not viable, memlock limit, ...) */
		ret = nvmk_backing_vfio_open(spec, NULL, &dev->backing);
		if (ret)
			fprintf(stderr, "nvmekeep: cannot open %s through VFIO: %s\n", spec,
				strerror(-ret));
	} else if (nvmk_backing_vfio_user_spec_path(spec)) {
		struct nvmk_vfio_user_opts vo = {0};
		const char *db = getenv("NVMEKEEP_VFIO_USER_DOORBELLS");

		vo.no_doorbell_mmap = db && !strcmp(db, "trap");
		/* the backing logs what is wrong (no socket, not a server, version) */
		ret = nvmk_backing_vfio_user_open(nvmk_backing_vfio_user_spec_path(spec), &vo,
						  &dev->backing);
		if (ret)
			fprintf(stderr, "nvmekeep: cannot attach to %s: %s\n", spec, strerror(-ret));
	} else if (spec[0] == '/') {
		fprintf(stderr,
			"nvmekeep: %s is a kernel block device: only read and write work on it "
			"(the other commands need the userspace driver: a PCI address bound "
			"to vfio-pci)\n",
			spec);
		return -EINVAL;
	} else {
		fprintf(stderr,
			"nvmekeep: unknown device '%s': expected 'emu', 'emu:FILE', a PCI "
			"address like 0000:00:03.0, 'vfio-user:SOCKET' or a block device "
			"/dev/nvmeXnY\n",
			spec);
		return -EINVAL;
	}
	if (ret)
		return ret;

	/* (the no-IOMMU queue-size default is the driver's: drv_opts_resolve) */
	ret = nvmk_ctrl_open(dev->backing, opts, &dev->ctrl);
	if (ret) {
		fprintf(stderr, "nvmekeep: %s: controller bring-up failed: %s\n", spec,
			strerror(-ret));
		nvmk_backing_destroy(dev->backing);
		dev->backing = NULL;
		return ret;
	}
	return 0;
}

void cli_dev_close(struct cli_dev *dev)
{
	nvmk_ctrl_close(dev->ctrl);
	dev->ctrl = NULL;
	nvmk_backing_destroy(dev->backing);
	dev->backing = NULL;
	dev->emu = NULL;
}
