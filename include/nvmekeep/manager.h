/* SPDX-License-Identifier: MIT */
/*
 * The multi-device manager: its configuration, then the manager API.
 */
#ifndef NVMEKEEP_MANAGER_H
#define NVMEKEEP_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"

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

/* Which driver serves a device (nvmk_config_dev_driver). */
enum nvmk_dev_driver {
	NVMK_DRIVER_EMU = 1,   /* the in-process emulator */
	NVMK_DRIVER_VFIO,      /* the userspace driver over VFIO */
	NVMK_DRIVER_VFIO_USER, /* the userspace driver over a vfio-user connection */
	NVMK_DRIVER_KERNEL,    /* the Linux nvme driver, through io_uring (kernel_ns.h) */
};

/**
 * nvmk_config_dev_driver - the one rule for which driver serves device @s.
 * @cfg:   the configuration (OPENHCL_NVME_VFIO: cfg->nvme_vfio.enabled)
 * @s:     the parsed device string (nvmk_dev_spec_parse)
 * @bound: for a PCI function: NULL = the configuration alone decides (the
 *         manager and the daemon: OpenHCL's meaning, nvme_vfio off = the
 *         kernel driver serves every PCI NVMe function); otherwise the driver
 *         the function is bound to now (nvmk_pci_bound_driver, "" = none),
 *         and with nvme_vfio off only a function bound to "nvme" goes to the
 *         kernel path (the CLI's one-shot commands: a function the operator
 *         bound to vfio-pci is driven through VFIO).
 * emu, emu:FILE -> EMU; vfio-user:SOCKET -> VFIO_USER; /dev/nvmeXnY,
 * /dev/nvmeX, other paths -> KERNEL; a PCI function -> VFIO when nvme_vfio
 * is on, else as @bound says.
 * Return: the driver (never fails on a parsed spec; 0 for a NULL @s).
 */
enum nvmk_dev_driver nvmk_config_dev_driver(const struct nvmk_config *cfg,
					    const struct nvmk_dev_spec *s, const char *bound);

/** nvmk_dev_driver_name - "emu", "vfio", "vfio-user", "kernel" ("?" otherwise). */
const char *nvmk_dev_driver_name(enum nvmk_dev_driver drv);

/* ---- Manager ------------------------------------------------------------------------- */
/*
 * The manager runs several NVMe controllers, modelled on OpenHCL's NvmeManager
 * (openhcl/underhill_core/src/nvme_manager): devices are keyed by an id (a PCI
 * address, or an emulator name) and each device has one worker thread that does
 * all of its control work in order: bring-up, asynchronous events, namespace
 * opens, save, shutdown. Requests to one device are serialised through its
 * worker's request queue; different devices proceed in parallel.
 *
 * Threading: every nvmk_mgr_* function may be called from any thread,
 * concurrently, except nvmk_mgr_destroy (one thread, after every other call
 * has returned and no client uses a namespace handle any more).
 *
 * Failure isolation: a device whose bring-up fails (or whose controller fails
 * later) is marked FAILED with its error; every later request for it returns
 * that error. It never affects the other devices.
 *
 * Namespace handles are SHARED driver handles (NVMK_NS_SHARED) owned by the
 * manager: every client asking for (device, nsid) gets the same handle, does
 * I/O on it with the driver API (nvmk_ns_read, nvmk_ns_submit_*, the calling
 * thread's qpair from nvmk_ctrl_get_qpair) and never closes it. Handles stay
 * valid until nvmk_mgr_shutdown, nvmk_mgr_save, nvmk_mgr_remove_device of
 * their device or nvmk_mgr_destroy.
 */

struct nvmk_mgr;

#define NVMK_MGR_ID_MAX 63 /* longest device id, bytes (a backing name) */

/* How a device's backing is made. */
enum nvmk_mgr_backing_kind {
	NVMK_MGR_BACKING_EMU = 0, /* an in-process emulator (nvmk_backing_local_create) */
	NVMK_MGR_BACKING_FACTORY, /* the caller's factory (VFIO, vfio-user, tests) */
	/* The Linux NVMe driver through io_uring (kernel_ns.h), for
	 * OPENHCL_NVME_VFIO off: no backing, no controller. The device is
	 * kernel.path, or @id when NULL: a PCI address whose function is bound
	 * to the kernel nvme driver (namespace N = its /dev/nvmeXnN), or a block
	 * device /dev/nvmeXnY (or, for tests, a regular file or loop device:
	 * one namespace). A FACTORY device whose id is a PCI address becomes a
	 * KERNEL device when the configuration's nvme_vfio.enabled is false.
	 * get_namespace returns a kernel namespace (nvmk_ns_is_kernel);
	 * create_qpair a kernel qpair (nvmk_kns_qpair_create on namespace 1);
	 * client DMA buffers are refused (-EOPNOTSUPP: any page-aligned memory
	 * works on this path). Status kind "kernel". Save keeps nothing alive
	 * (the kernel keeps the device; the namespaces are closed and their
	 * nsids recorded); restore re-opens them. */
	NVMK_MGR_BACKING_KERNEL,
};

/**
 * nvmk_mgr_backing_fn - make the backing of one device (called on its worker).
 * @ctx:       the spec's factory.ctx
 * @id:        the device id
 * @restoring: true when the device is being restored after a save with
 *             keep-alive: reopen the device WITHOUT resetting it
 * @out:       the backing; the manager owns it from then on (and sets its
 *             pool). nvmk_backing_destroy() releases it.
 * Return: 0 or negative errno (the device is then FAILED with it).
 */
typedef int (*nvmk_mgr_backing_fn)(void *ctx, const char *id, bool restoring,
				   struct nvmk_backing **out);

/**
 * nvmk_mgr_vfio_user_backing - a factory for devices named "vfio-user:PATH":
 * connects to the server at PATH (nvmk_backing_vfio_user_open), without a
 * reset when @restoring. @ctx: NULL, or (servicing) the predecessor's
 * handover string for this device (nvmk_vfio_user_handover_format, after
 * nvmk_backing_vfio_user_export_fds on the backing from nvmk_mgr_take_backing):
 * when restoring, the inherited connection is adopted instead of opening a
 * new one (a --persist server is needed for the new-connection path). Such
 * devices count as keep-alive capable ("host") in the inference of
 * nvmk_mgr_create_from_env.
 */
int nvmk_mgr_vfio_user_backing(void *ctx, const char *id, bool restoring,
			       struct nvmk_backing **out);

/* What the caller registers for one device. Copied by nvmk_mgr_add_device. */
struct nvmk_mgr_device_spec {
	const char *id; /* PCI address or emulator name, 1..NVMK_MGR_ID_MAX bytes */
	enum nvmk_mgr_backing_kind kind;
	/* EMU: the emulator's configuration (deep copied; its name is replaced by @id,
	 * dma/dma_ctx are the backing's) */
	struct nvmk_emu_config emu;
	struct {
		nvmk_mgr_backing_fn create;
		void *ctx;
		/* the backing can be handed to a successor without a reset (the "host"
		 * part of keep-alive); the local emulator always can */
		bool keep_alive_capable;
	} factory;
	struct {
		const char *path; /* KERNEL: the device, NULL = @id (copied) */
	} kernel;
	/* driver options; event_cb/event_ctx are the manager's and are ignored.
	 * All zero = driver defaults. */
	struct nvmk_ctrl_opts ctrl_opts;
};

/**
 * nvmk_mgr_create - create a manager with no devices.
 * @cfg:  configuration (nvmk_config_load); copied. keep_alive.enabled decides how
 *        nvmk_mgr_save saves; private_pool.pages > 0 creates the private DMA pool
 *        unless @pool is given
 * @pool: an existing pool to use and own (one inherited from a predecessor, opened
 *        with nvmk_dma_pool_open), or NULL
 * @out:  the manager
 * Return: 0, -EINVAL, -ENOMEM, or the error of nvmk_dma_pool_create.
 */
int nvmk_mgr_create(const struct nvmk_config *cfg, struct nvmk_dma_pool *pool,
		    struct nvmk_mgr **out);

/**
 * nvmk_mgr_create_from_env - the daemon's start-up: configuration from the
 * environment, the private pool, and the devices.
 * @getenv_fn: NULL for the process environment
 * @specs:     devices to register (may be NULL when @n is 0)
 * @n:         number of @specs
 * @out:       the manager
 *
 * The two-step flow of the configuration section: load with the host facts
 * (online CPUs, memory; "host" keep-alive = every spec's backing can be handed
 * over: EMU always, FACTORY per factory.keep_alive_capable) to size the pool,
 * create the pool when it has pages (falling back to none, with a warning, if
 * that fails), load again with pool_present = the pool exists, so that an
 * inferred keep-alive value says "privatepool" only with a pool.
 * Return: 0 or negative errno.
 */
int nvmk_mgr_create_from_env(nvmk_getenv_fn getenv_fn, const struct nvmk_mgr_device_spec *specs,
			     unsigned n, struct nvmk_mgr **out);

/**
 * nvmk_mgr_create_from_env_sized - nvmk_mgr_create_from_env for a caller that
 * also keeps client buffers (nvmk_mgr_dma_alloc) in the private pool, such as
 * the NBD export's request buffers.
 * @client_pages: 4 KiB pages added to the pool when its size comes from the
 *                heuristic ("release"/"debug", which counts queue memory
 *                only); an explicit page count is used as given.
 * Return: as nvmk_mgr_create_from_env.
 */
int nvmk_mgr_create_from_env_sized(nvmk_getenv_fn getenv_fn,
				   const struct nvmk_mgr_device_spec *specs, unsigned n,
				   uint64_t client_pages, struct nvmk_mgr **out);

/**
 * nvmk_mgr_destroy - shut every device down (as nvmk_mgr_shutdown, unless done),
 * stop the workers, destroy the backings and the pool. NULL is a no-op.
 */
void nvmk_mgr_destroy(struct nvmk_mgr *mgr);

/** nvmk_mgr_config - the configuration in force. */
const struct nvmk_config *nvmk_mgr_config(const struct nvmk_mgr *mgr);
/** nvmk_mgr_pool - the private DMA pool, or NULL when there is none. */
struct nvmk_dma_pool *nvmk_mgr_pool(const struct nvmk_mgr *mgr);

/**
 * nvmk_mgr_add_device - register a device and start its worker. Nothing is
 * brought up until the first nvmk_mgr_get_namespace (or nvmk_mgr_load).
 * Return: 0, -EEXIST (id taken), -EINVAL (bad spec), -ESHUTDOWN, -ENOMEM.
 */
int nvmk_mgr_add_device(struct nvmk_mgr *mgr, const struct nvmk_mgr_device_spec *spec);

/**
 * nvmk_mgr_remove_device - unregister device @id: its namespace handles are
 * closed, its controller is shut down cleanly (CC.SHN, then CC.EN = 0), its
 * client DMA buffers and queue memory go back to the pool, its backing is
 * destroyed and its worker ends. The id can then be added again, and a later
 * nvmk_mgr_save does not mention the device.
 * @force: remove even while clients use the device; otherwise a device with
 *         client DMA buffers (nvmk_mgr_dma_alloc), queue pairs of a client's
 *         own (nvmk_mgr_create_qpair, nvmk_qpair_create) or commands in
 *         flight on the driver's shared queue pairs is refused. Forced, those are closed: the
 *         caller guarantees nobody touches them again (the daemon first
 *         disconnects the device's NBD clients). A kernel-path device has no
 *         such accounting (its io_uring qpairs are the caller's).
 * Every handle from nvmk_mgr_get_namespace for @id is invalid afterwards. A
 * request for @id racing the removal gets -ENOENT, or -ESHUTDOWN when it was
 * queued behind it.
 * Return: 0, -ENOENT (no such device), -EBUSY (in use and not @force, or a
 *         remove of it or a restore runs), -ESHUTDOWN (shutting down, or saved).
 */
int nvmk_mgr_remove_device(struct nvmk_mgr *mgr, const char *id, bool force);

/**
 * nvmk_mgr_load - bring device @id up now (on its worker) unless it is up.
 * Return: 0, -ENOENT (no such device), -ESHUTDOWN (manager shutting down),
 *         or the device's bring-up error (every caller gets the same one).
 */
int nvmk_mgr_load(struct nvmk_mgr *mgr, const char *id);

/**
 * nvmk_mgr_get_namespace - a handle on namespace @nsid of device @id.
 * @out: the shared handle (owned by the manager, see above)
 *
 * Loads the driver on first use, on the device's worker; later calls return the
 * same handle without touching the device.
 * Return: 0, -ENOENT (no such device), -ESHUTDOWN (shutting down or saved),
 *         -EBUSY (nvmk_mgr_restore in progress), -ENODEV (namespace not
 *         active), or the device's bring-up error.
 */
int nvmk_mgr_get_namespace(struct nvmk_mgr *mgr, const char *id, uint32_t nsid,
			   struct nvmk_ns **out);

/**
 * nvmk_mgr_create_qpair - create an I/O queue pair on device @id (loads it).
 * @opts: as nvmk_qpair_create (NULL: interrupt mode, exclusive)
 * @out:  the qpair; the caller owns it (nvmk_qpair_destroy, or it dies with
 *        nvmk_mgr_shutdown / is handed back by nvmk_ctrl_restored_qpair after
 *        a restore)
 *
 * Queue creation is control work (Create I/O CQ and SQ on the admin queue):
 * it runs on the device's worker, in order with bring-up and save. Threads
 * may also use nvmk_ctrl_get_qpair on nvmk_ns_ctrl() of a handle.
 * Return: 0, -ENOENT, -ESHUTDOWN, -EBUSY (no queue left), or the device's error.
 */
int nvmk_mgr_create_qpair(struct nvmk_mgr *mgr, const char *id, const struct nvmk_qpair_opts *opts,
			  struct nvmk_qpair **out);

/**
 * nvmk_mgr_shutdown - orderly shutdown: from now on loads fail with -ESHUTDOWN;
 * every device is shut down in parallel, each on its own worker (namespace
 * handles closed, controller shut down: CC.SHN then CC.EN = 0). Backings stay
 * until nvmk_mgr_destroy. Clients must have stopped I/O. Idempotent.
 * Return: 0, or the first error a device's shutdown reported (all are logged).
 */
int nvmk_mgr_shutdown(struct nvmk_mgr *mgr);

/**
 * nvmk_mgr_device_emu - the emulator behind an EMU device (tests: statistics,
 * fault injection), or NULL (no such device, not EMU, not loaded yet).
 */
struct nvmk_emu *nvmk_mgr_device_emu(struct nvmk_mgr *mgr, const char *id);

/* ---- Status ---- */

enum nvmk_mgr_dev_state {
	NVMK_MGR_DEV_REGISTERED = 0, /* known, not brought up */
	NVMK_MGR_DEV_LOADING,	     /* bring-up or restore in progress */
	NVMK_MGR_DEV_READY,	     /* usable */
	NVMK_MGR_DEV_FAILED,	     /* bring-up, restore or the controller failed: see err */
	NVMK_MGR_DEV_SHUTDOWN,	     /* shut down */
	NVMK_MGR_DEV_SAVED,	     /* saved (controller detached or shut down) */
};

#define NVMK_MGR_STATUS_MAX_QUEUES 64 /* queue pairs listed per device */
#define NVMK_MGR_STATUS_MAX_NS	   16 /* namespaces listed per device */

struct nvmk_mgr_device_status {
	char id[NVMK_MGR_ID_MAX + 1];
	const char *kind; /* "emu", "kernel", or the factory backing's ops->kind ("vfio", ...) */
	enum nvmk_mgr_dev_state state;
	int err;		  /* FAILED: the error every caller gets */
	unsigned io_queues_granted;
	unsigned nqueues;	  /* I/O qpairs on the controller (may exceed the list) */
	struct nvmk_queue_stat queues[NVMK_MGR_STATUS_MAX_QUEUES];
	unsigned outstanding;	  /* sum over the listed SHARED qpairs */
	unsigned nns;		  /* namespaces handed out */
	uint32_t nsids[NVMK_MGR_STATUS_MAX_NS];
	uint64_t requests;	  /* requests its worker has handled */
};

struct nvmk_mgr_status {
	bool shutting_down;
	bool keep_alive; /* config keep_alive.enabled */
	char keep_alive_mode[48];
	bool pool_present;
	struct nvmk_dma_pool_stats pool; /* zero without a pool */
	unsigned ndevices;
	struct nvmk_mgr_device_status *devices; /* ndevices entries, in registration order */
};

/**
 * nvmk_mgr_status - snapshot of the manager. Free with nvmk_mgr_status_free.
 * Does not wait for a busy worker (a device being brought up shows LOADING).
 * Return: 0, -ENOMEM, -EINVAL.
 */
int nvmk_mgr_status(struct nvmk_mgr *mgr, struct nvmk_mgr_status *out);
/** nvmk_mgr_status_free - free what nvmk_mgr_status allocated. */
void nvmk_mgr_status_free(struct nvmk_mgr_status *st);

/**
 * nvmk_mgr_status_json - the status as one JSON object (for `nvmekeep status`):
 * {"shutting_down", "keep_alive": {"enabled", "mode"}, "pool": null | {"pages",
 * "used_pages", "free_pages", "leaked_pages", "slots", "used_slots", "hugetlb",
 * "bytes"}, "devices": [{"id", "kind", "state", "error", "io_queues_granted",
 * "outstanding", "queues": [{"qid", "depth", "shared", "poll", "outstanding"}],
 * "namespaces": [nsid...], "requests"}]}; "error" is 0 or a negative errno,
 * "state" one of "registered", "loading", "ready", "failed", "shutdown", "saved".
 * @json: receives a malloc'd NUL-terminated string (free())
 * Return: 0, -ENOMEM, -EINVAL.
 */
int nvmk_mgr_status_json(struct nvmk_mgr *mgr, char **json);

/** nvmk_mgr_dev_state_name - "registered", "loading", ... */
const char *nvmk_mgr_dev_state_name(enum nvmk_mgr_dev_state state);

/* ---- Client DMA buffers ---- */
/*
 * Data buffers for the asynchronous driver API (nvmk_ns_submit_*) that
 * survive a save/restore: the manager allocates them for a device
 * (nvmk_backing_dma_alloc, from the private pool when there is one), records
 * them by the client's tag in the saved state, and after a restore hands them
 * back by the same tag. With keep-alive a buffer comes back with its contents
 * and its device address (reclaimed from the pool: a request in flight across
 * the restore completes into it); without keep-alive the device was drained,
 * and the buffer comes back newly allocated (zeroed) under the same tag.
 */

#define NVMK_MGR_TAG_MAX 29 /* longest client buffer tag, bytes */

/**
 * nvmk_mgr_dma_alloc - allocate a data buffer for device @id (loads it).
 * @tag:  the client's name for it, unique per device, 1..NVMK_MGR_TAG_MAX bytes
 * @size: bytes, rounded up to 4 KiB
 * @out:  the buffer (a copy of the manager's record; valid until freed,
 *        nvmk_mgr_shutdown or nvmk_mgr_save)
 * Return: 0, -EEXIST (tag taken), -ENOENT, -ESHUTDOWN, -EINVAL, -ENOMEM, or the
 *         device's error.
 */
int nvmk_mgr_dma_alloc(struct nvmk_mgr *mgr, const char *id, const char *tag, size_t size,
		       struct nvmk_dma_buf *out);
/** nvmk_mgr_dma_get - the buffer @tag of device @id (after a restore: the
 *  restored one). Return: 0, -ENOENT (no such device or buffer), -EINVAL. */
int nvmk_mgr_dma_get(struct nvmk_mgr *mgr, const char *id, const char *tag,
		     struct nvmk_dma_buf *out);
/** nvmk_mgr_dma_free - free buffer @tag of device @id (no I/O may use it).
 *  Return: 0, -ENOENT, -EINVAL. */
int nvmk_mgr_dma_free(struct nvmk_mgr *mgr, const char *id, const char *tag);

/* ---- Save and restore (servicing) ---- */
/*
 * nvmk_mgr_save saves every device in parallel, each on its worker, as the
 * configuration says (keep_alive.enabled):
 *  - keep-alive: the driver state of each controller (nvmk_ctrl_save) is
 *    taken and the controller detached: the device keeps running with its
 *    commands in flight, its queue memory and the client buffers stay
 *    allocated in the private pool. Requires the pool; without one the save
 *    falls back to the drain path (logged).
 *  - off: each controller is drained (in-flight I/O completes, bounded by its
 *    I/O timeout) and shut down (CC.SHN, CC.EN = 0); client buffers are freed.
 * The manager state (mgr_state.proto: versioned, CRC32C-checked) lists the
 * devices, their namespaces and client buffers, embeds each device's driver
 * state, and refers to the pool (whose fd the successor inherits; its slot
 * table lives inside the pool).
 *
 * Before calling nvmk_mgr_save the caller stops its clients: no thread
 * submits, processes or waits on any qpair of the manager's devices (the
 * driver's rule for nvmk_ctrl_save). From the call on, loads and
 * get_namespace fail with -ESHUTDOWN; afterwards every namespace handle,
 * qpair and client buffer record of this manager is dead, and the only calls
 * left are nvmk_mgr_take_backing, status and nvmk_mgr_destroy.
 *
 * The successor creates a manager with the same configuration and the
 * inherited pool (nvmk_dma_pool_open on the pool fd; in one process, on a
 * dup of it, keeping the predecessor manager alive until the restore is
 * done), registers the same devices (a factory that reopens each device
 * without a reset when called with restoring = true), and calls
 * nvmk_mgr_restore, which restores every device in parallel on its worker.
 * In one process the backings move with nvmk_mgr_take_backing.
 */

/**
 * nvmk_mgr_save - save every device (see above).
 * @blob: receives the state (malloc'd; the caller frees)
 * @len:  receives its size
 * A device whose save fails is recorded as FAILED (its error logged; it is
 * brought up anew after restore), the others are saved anyway.
 * Return: 0, -ESHUTDOWN (shut down, or saved already), -ENOMEM, -EINVAL.
 */
int nvmk_mgr_save(struct nvmk_mgr *mgr, void **blob, size_t *len);

/**
 * nvmk_mgr_backing_check - run @fn on device @id's backing, under the
 * device's lock, without taking it out of the manager (e.g. servicing asks
 * nvmk_backing_vfio_handover_supported before it stops anything).
 * @fn must only look at the backing (no I/O, no DMA mapping).
 * Return: what @fn returns; -ENOENT (no such device, or no backing yet: the
 *         device was never loaded), -EINVAL.
 */
int nvmk_mgr_backing_check(struct nvmk_mgr *mgr, const char *id,
			   int (*fn)(struct nvmk_backing *b, void *ctx), void *ctx);

/**
 * nvmk_mgr_take_backing - after nvmk_mgr_save, take device @id's backing out
 * of the manager (in-process handover to a successor manager; the caller owns
 * it then). Return: 0, -ENOENT (no such device or no backing), -EBUSY (not
 * saved), -EINVAL.
 */
int nvmk_mgr_take_backing(struct nvmk_mgr *mgr, const char *id, struct nvmk_backing **out);

struct nvmk_mgr_restore_opts {
	/* request context of commands in flight across a keep-alive save (see
	 * nvmk_restore_opts in driver.h); NULL: their completions are dropped */
	nvmk_resolve_fn resolve;
	void *resolve_ctx;
	/* leave completions found at restore to each qpair's first process call */
	bool defer_completions;
};

/**
 * nvmk_mgr_restore - restore the devices of a saved state.
 * @mgr:  a new manager: the devices registered, none loaded; with keep-alive,
 *        created with the inherited pool
 * @blob: from nvmk_mgr_save, @len bytes
 * @opts: NULL for none
 *
 * The whole state is decoded and validated first (envelope version and
 * checksum, every field; the pool reference against @mgr's pool); a refusal
 * touches no device. Then each device is restored in parallel on its worker
 * (nvmk_ctrl_restore: keep-alive attaches without a reset, no IDENTIFY, no
 * queue creation; off is a fresh bring-up), its namespace handles and client
 * buffers are re-established. A device that fails is marked FAILED with its
 * error (logged) and does not affect the others. Registered devices absent
 * from the state, and devices saved unloaded or failed, are left to load on
 * first use. Finally, with keep-alive, nvmk_dma_pool_finish_restore marks
 * every unreclaimed pool block leaked; each is logged naming its device and
 * tag.
 * A saved device that is not registered in @mgr is not restored (logged,
 * -ENOENT); with keep-alive its blocks are then reported leaked.
 * Each device's driver state restores only if it is the latest saved state
 * of that device and was not restored before (the generation recorded in
 * the pool, see "Restore safety" in driver.h): a fresh manager handed an
 * older manager state, or the same state a second time (a successor re-run
 * after a crash), gets -ESTALE for those devices, which are marked FAILED
 * without any completion being delivered again; their pool blocks are then
 * reported leaked (the device runs the queues of the newer state until it
 * is brought up afresh).
 * While it runs, loads (get_namespace, ...) fail with -EBUSY; a manager on
 * which a load was ever asked for cannot restore (it might have reset a live
 * device), and one restore per manager.
 * Return: 0; -EBADMSG (corrupt state), -EPROTONOSUPPORT (newer format: a
 * downgrade), -EINVAL (wrong pool, or @mgr was used already), or,
 * with every other device restored: the first device's error (-ESTALE for a
 * state that is not the latest, or restored already), else -EUCLEAN (pool
 * blocks leaked).
 */
int nvmk_mgr_restore(struct nvmk_mgr *mgr, const void *blob, size_t len,
		     const struct nvmk_mgr_restore_opts *opts);

/**
 * nvmk_mgr_state_validate - decode and validate a manager state without
 * devices (tools, fuzzing). @err (may be NULL) receives the reason.
 * Return: 0, -EBADMSG, -EPROTONOSUPPORT, -ENOMEM.
 */
int nvmk_mgr_state_validate(const void *blob, size_t len, char *err, size_t errlen);

/* Format this binary writes and reads up to. 1: first format; 2: device status
 * KERNEL (kernel-path devices), which a version-1 binary cannot restore. */
#define NVMK_MGR_STATE_VERSION 2

#endif /* NVMEKEEP_MANAGER_H */
