/* SPDX-License-Identifier: MIT */
/*
 * Device argument of every CLI command:
 *   (none) or "emu"  the built-in emulated controller: namespace 1 is 1 GiB of
 *                    RAM with 512 B blocks, namespace 2 a 64 GiB null
 *                    namespace with 4 KiB blocks (for benchmarks)
 *   "emu:FILE"       as above, but namespace 1 is FILE (created 1 GiB if
 *                    missing), so data outlives the process
 *   "DDDD:BB:DD.F"   a PCI NVMe function driven through VFIO
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nvmekeep/backing.h"

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
	} else {
		fprintf(stderr,
			"nvmekeep: unknown device '%s': expected 'emu', 'emu:FILE' or a PCI "
			"address like 0000:00:03.0\n",
			spec);
		return -EINVAL;
	}
	if (ret)
		return ret;

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
