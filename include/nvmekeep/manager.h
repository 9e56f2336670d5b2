/* SPDX-License-Identifier: MIT */
/*
 * The multi-device manager. This header starts with its configuration; the
 * manager API proper is added below it by the manager's authors.
 */
#ifndef NVMEKEEP_MANAGER_H
#define NVMEKEEP_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Configuration ---------------------------------------------------------------------- */
/*
 * Read from the environment under OpenHCL's variable names and with OpenHCL's
 * semantics, so that a configuration written for OpenHCL means the same here:
 *
 *   OPENHCL_NVME_KEEP_ALIVE          keep controllers alive across servicing
 *   OPENHCL_DISABLE_NVME_KEEP_ALIVE  prefixes the inferred keep-alive value with "disabled,"
 *   OPENHCL_NVME_VFIO                userspace driver (else UNDERHILL_NVME_VFIO, the legacy name)
 *   OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG / OPENHCL_ENABLE_VTL2_GPA_POOL (overrides)
 *                                    size of the private DMA pool
 *
 * src/manager/config.c documents each rule and where it comes from in OpenHCL.
 */

/* Where a configuration value came from. */
enum nvmk_config_source {
	NVMK_CONFIG_DEFAULT = 0,  /* nothing set: built-in default */
	NVMK_CONFIG_ENV = 1,	  /* an environment variable */
	NVMK_CONFIG_INFERRED = 2, /* computed from facts about this host (keep-alive) */
};

/* The four meanings of a keep-alive value (OpenHCL's KeepAliveConfig). Only the first is on. */
enum nvmk_keep_alive_state {
	NVMK_KEEP_ALIVE_ENABLED = 0,  /* "host,privatepool" or "enabled" */
	NVMK_KEEP_ALIVE_HOST_NO_POOL, /* "host,noprivatepool": off */
	NVMK_KEEP_ALIVE_POOL_NO_HOST, /* "nohost,privatepool": off */
	NVMK_KEEP_ALIVE_DISABLED,     /* "nohost,noprivatepool", "disabled[,...]", invalid */
};

/* How the private pool size was asked for. */
enum nvmk_pool_spec {
	NVMK_POOL_HEURISTIC_RELEASE = 0, /* "release" (and the default) */
	NVMK_POOL_HEURISTIC_DEBUG,	 /* "debug" */
	NVMK_POOL_OFF,			 /* "off", "0", or a value that does not parse */
	NVMK_POOL_PAGES,		 /* a decimal page count */
};

#define NVMK_CONFIG_MAX_WARNINGS 8
#define NVMK_CONFIG_WARNING_LEN	 256

/* Facts about this host that the configuration depends on. */
struct nvmk_config_facts {
	/* every device backing can be handed to a successor process without a reset (VFIO
	 * with VFIO_UPDATE_VADDR, vfio-user, the local emulator): the "host" part */
	bool host_keep_alive;
	/* the private DMA pool is configured and was created: the "privatepool" part */
	bool pool_present;
	unsigned int cpus;     /* online CPUs, for the pool heuristic (0 counts as 1) */
	uint64_t memory_bytes; /* memory for nvmekeep, caps the heuristic (0: unknown, no cap) */
};

struct nvmk_config {
	struct {
		char mode[48]; /* the value in force, lower case ("host,privatepool", ...) */
		enum nvmk_keep_alive_state state;
		bool enabled;			/* state == NVMK_KEEP_ALIVE_ENABLED */
		enum nvmk_config_source source; /* ENV or INFERRED */
	} keep_alive;
	struct {
		bool enabled;			/* use the userspace driver */
		enum nvmk_config_source source; /* ENV or DEFAULT */
		const char *variable;		/* which variable was read, NULL if none */
	} nvme_vfio;
	struct {
		uint64_t pages; /* 4 KiB pages; 0 = no pool */
		enum nvmk_pool_spec spec_kind;
		char spec[32];			/* the value as given ("release", "512", ...) */
		enum nvmk_config_source source; /* ENV or DEFAULT */
		const char *variable;		/* which variable was used, NULL if none */
	} private_pool;
	unsigned int n_warnings; /* warnings beyond NVMK_CONFIG_MAX_WARNINGS are dropped */
	char warnings[NVMK_CONFIG_MAX_WARNINGS][NVMK_CONFIG_WARNING_LEN];
};

/* Reads one environment variable: NULL if unset. */
typedef const char *(*nvmk_getenv_fn)(const char *name);

/**
 * nvmk_config_load - read the configuration.
 * @getenv_fn: where variables come from; NULL for the process environment
 * @facts:     host facts for inference and the pool heuristic (NULL: all false/0)
 * @out:       filled completely, warnings included
 *
 * Never fails on a bad value: each bad value becomes a warning (also logged)
 * naming the variable and the accepted values, and the safe meaning (off).
 * When OPENHCL_NVME_KEEP_ALIVE is unset, its value is inferred from @facts the
 * way OpenHCL's boot shim writes it: "[disabled,]{host|nohost},{privatepool|
 * noprivatepool}". The daemon calls this once to size the pool, creates the
 * pool, then again with @facts->pool_present set.
 *
 * Return: 0, or -EINVAL if @out is NULL.
 */
int nvmk_config_load(nvmk_getenv_fn getenv_fn, const struct nvmk_config_facts *facts,
		     struct nvmk_config *out);

/**
 * nvmk_config_pool_heuristic_pages - default pool size for "release"/"debug".
 * @debug:  the debug sizing (three devices' worth instead of one)
 * @cpus:   online CPUs (0 counts as 1)
 * @memory: bytes of memory (0: unknown, no cap)
 *
 * Return: pages, a multiple of 512 (2 MiB); never 0.
 */
uint64_t nvmk_config_pool_heuristic_pages(bool debug, unsigned int cpus, uint64_t memory);

/**
 * nvmk_config_to_json - the configuration as one JSON object.
 * @cfg:  loaded configuration
 * @buf:  output, NUL terminated
 * @size: bytes in @buf
 *
 * {"keep_alive": {"mode", "state", "enabled", "source"}, "nvme_vfio": {"enabled",
 * "source", "variable"}, "private_pool": {"pages", "bytes", "spec", "kind", "source",
 * "variable"}, "warnings": [...]}; sources are "env", "inferred" or "default".
 *
 * Return: length written (without the NUL), -ENOSPC if @buf is too small,
 *         -ENOMEM, -EINVAL.
 */
int nvmk_config_to_json(const struct nvmk_config *cfg, char *buf, size_t size);

/** nvmk_config_source_name - "env", "inferred" or "default". */
const char *nvmk_config_source_name(enum nvmk_config_source source);

#endif /* NVMEKEEP_MANAGER_H */
