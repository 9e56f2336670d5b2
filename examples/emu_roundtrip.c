/* SPDX-License-Identifier: MIT */
/*
 * A program that uses the installed library: bring up the built-in emulated
 * NVMe controller, write one block, read it back.
 *
 *   cc emu_roundtrip.c $(pkg-config --cflags --libs nvmekeep) -o emu_roundtrip
 *
 * scripts/check_install.sh builds and runs it against an installed tree.
 */
#include <stdio.h>
#include <string.h>

#include <nvmekeep.h>

int main(void)
{
	struct nvmk_emu_config cfg;
	struct nvmk_backing *backing;
	struct nvmk_emu *emu;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns_info info;
	struct nvmk_ns *ns;
	char out[512], in[512];
	int ret;

	nvmk_emu_config_default(&cfg);
	cfg.nr_ns = 1;
	cfg.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1, .nblocks = 2048, .lba_shift = 9, .backing = NVMK_EMU_BACK_RAM};
	ret = nvmk_backing_local_create(&cfg, &backing, &emu);
	if (ret)
		goto fail;
	ret = nvmk_ctrl_open(backing, NULL, &ctrl);
	if (ret)
		goto fail_backing;
	ret = nvmk_ns_open(ctrl, 1, 0, &ns);
	if (ret)
		goto fail_ctrl;
	nvmk_ns_info(ns, &info);
	memset(out, 0, sizeof(out));
	snprintf(out, sizeof(out), "nvmekeep %s", nvmk_version());
	ret = nvmk_ns_write(ns, NULL, out, 7, 1);
	if (!ret)
		ret = nvmk_ns_read(ns, NULL, in, 7, 1);
	if (!ret && memcmp(in, out, sizeof(in)))
		ret = 1;
	if (!ret)
		printf("%s: namespace 1, %llu blocks of %u bytes: block 7 reads back \"%s\"\n",
		       NVMK_VERSION, (unsigned long long)info.nblocks, info.block_size, in);
	nvmk_ns_close(ns);
fail_ctrl:
	nvmk_ctrl_close(ctrl);
fail_backing:
	nvmk_backing_destroy(backing);
fail:
	if (ret)
		fprintf(stderr, "emu_roundtrip: failed: %s\n",
			ret < 0 ? strerror(-ret) : "data differs");
	return ret ? 1 : 0;
}
