/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep config: the effective configuration (OpenHCL variable names and
 * semantics, see include/nvmekeep/manager.h) and where each value came from.
 *
 * Resolution is the daemon's two-step flow: load once to size the private
 * pool, create the pool for real (so "privatepool" is only inferred when it
 * can exist on this host), then load again with that fact. The devices are
 * the built-in emulated controller, which can always be handed over without
 * a reset, so "host" is inferred true.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/manager.h"

static const char config_usage[] =
    "Usage: nvmekeep config [-o normal|json]\n"
    "Print the effective configuration read from OPENHCL_NVME_KEEP_ALIVE,\n"
    "OPENHCL_DISABLE_NVME_KEEP_ALIVE, OPENHCL_NVME_VFIO (UNDERHILL_NVME_VFIO),\n"
    "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG and OPENHCL_ENABLE_VTL2_GPA_POOL, where each\n"
    "value came from, and every warning about a bad value.\n";

static const char *const ka_state_names[] = {"enabled", "host without private pool",
					     "private pool without host", "disabled"};

int cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output-format", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct nvmk_config_facts facts = {.host_keep_alive = true};
	struct nvmk_dma_pool *pool = NULL;
	enum cli_output out = CLI_OUT_NORMAL;
	struct nvmk_config cfg;
	char json[4096];
	long pages, psize;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_parse_output(optarg, &out))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			printf("%s", config_usage);
			return 0;
		default:
			cli_usage_error("config", "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args("config", argc, argv, NULL, 0))
		return CLI_EXIT_USAGE;

	facts.cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	pages = sysconf(_SC_PHYS_PAGES);
	psize = sysconf(_SC_PAGESIZE);
	facts.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;

	nvmk_config_load(NULL, &facts, &cfg);
	if (cfg.private_pool.pages) {
		ret =
		    nvmk_dma_pool_create(cfg.private_pool.pages, NVMK_DMA_POOL_HUGETLB_TRY, &pool);
		facts.pool_present = ret == 0;
		if (ret)
			fprintf(stderr,
				"nvmekeep config: the private pool of %" PRIu64
				" pages cannot be created: %s\n",
				cfg.private_pool.pages, strerror(-ret));
		nvmk_dma_pool_destroy(pool);
		/* second step: same environment, now knowing whether the pool exists */
		nvmk_config_load(NULL, &facts, &cfg);
	}

	if (out == CLI_OUT_JSON) {
		ret = nvmk_config_to_json(&cfg, json, sizeof(json));
		if (ret < 0) {
			fprintf(stderr, "nvmekeep config: cannot format JSON: %s\n",
				strerror(-ret));
			return CLI_EXIT_FAIL;
		}
		printf("%s\n", json);
		return 0;
	}
	printf("keep_alive   : %s (%s, %s)\n", cfg.keep_alive.mode,
	       ka_state_names[cfg.keep_alive.state],
	       nvmk_config_source_name(cfg.keep_alive.source));
	printf("nvme_vfio    : %s (%s%s%s)\n", cfg.nvme_vfio.enabled ? "on" : "off",
	       nvmk_config_source_name(cfg.nvme_vfio.source), cfg.nvme_vfio.variable ? " " : "",
	       cfg.nvme_vfio.variable ? cfg.nvme_vfio.variable : "");
	printf("private_pool : %" PRIu64 " pages (%" PRIu64 " MiB), spec '%s' (%s%s%s)\n",
	       cfg.private_pool.pages, cfg.private_pool.pages * 4096 >> 20, cfg.private_pool.spec,
	       nvmk_config_source_name(cfg.private_pool.source),
	       cfg.private_pool.variable ? " " : "",
	       cfg.private_pool.variable ? cfg.private_pool.variable : "");
	for (unsigned i = 0; i < cfg.n_warnings && i < NVMK_CONFIG_MAX_WARNINGS; i++)
		printf("warning      : %s\n", cfg.warnings[i]);
	return 0;
}
