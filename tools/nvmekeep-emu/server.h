/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep-emu: the emulated NVMe controller served as a PCI function over
 * vfio-user (QEMU docs/interop/vfio-user.rst). Internal header of the tool.
 *
 * Threads:
 *  - main: accepts one client at a time and handles its commands in order
 *    (REGION_READ/WRITE, DMA_MAP, ...); it never waits on the emulator's
 *    worker, which may itself be waiting on the client (DMA_READ/WRITE).
 *  - the emulator's worker: translates IOVAs through srv_dma_translate();
 *    for maps without an fd it sends DMA_READ/WRITE and waits for the reply,
 *    which the main thread routes back (srv_rpc_reply).
 *  - (no doorbell thread: the emulator's worker scans the shared doorbell
 *    page, the sparse-mmap part of BAR0, itself; see doorbell.c)
 *  - control: the --control socket (stats, fault injection).
 */
#ifndef NVMK_EMU_SERVER_H
#define NVMK_EMU_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvmekeep/emu.h"
#include "nvmekeep/vfio_user.h"

/* What the server offers in VERSION. */
#define SRV_MAX_MSG_FDS	 16
#define SRV_MAX_XFER	 (1u << 20)
#define SRV_MAX_DMA_MAPS 1024
#define SRV_MSG_MAX	 NVMK_VFU_MSG_MAX(SRV_MAX_XFER)
#define SRV_CFG_SIZE	 256
#define SRV_MSIX_CAP	 0x40
#define SRV_BOUNCE_SLOTS 8

struct srv_map {
	uint64_t iova, size;
	uint8_t *host;	/* mmap of the client's fd; NULL = reach it by DMA_READ/WRITE */
	uint32_t flags; /* NVMK_VFU_DMA_READ_OK / WRITE_OK */
	/* Which memory this is: the fd's file (st_dev, st_ino) and offset, so a
	 * map after a reconnect can be told to be the same memory or not. */
	bool has_file;
	dev_t dev;
	ino_t ino;
	uint64_t offset;
	/* --persist: a dup of the client's fd (close-on-exec), so that the
	 * memory can be handed to the next client; -1 otherwise */
	int fd;
	/* a previous client's map kept across its disconnect (resume.c) */
	bool kept;
};

struct srv_bounce {
	void *buf;
	uint64_t iova;
	size_t len;
};

struct srv_stats {
	_Atomic uint64_t cc_enables;	  /* CC.EN 0 -> 1 seen on the trapped register */
	_Atomic uint64_t function_resets; /* DEVICE_RESET and resets at disconnect */
	_Atomic uint64_t connections;
	_Atomic uint64_t protocol_errors; /* error replies sent */
	_Atomic uint64_t resume_refused;  /* resume windows closed by a reset (memory not back) */
	_Atomic uint64_t adopted;	  /* clients that took a previous client's memory (ADOPT) */
};

struct srv {
	const char *name;
	struct nvmk_emu *emu;
	bool persist;
	size_t bar0_size;   /* emulator registers + doorbells */
	size_t bar0_region; /* BAR0 as a power of two */
	uint32_t db_stride;
	unsigned db_count;
	unsigned nvec;

	int listen_fd;
	int stop_fd; /* readable = stop (an embedding test); -1 = signals only */
	_Atomic int client_fd; /* -1 when none */
	_Atomic int client_pid; /* 0 when none */
	pthread_mutex_t send_lock;
	bool versioned;
	struct nvmk_vfu_caps peer;
	_Atomic bool stopping;

	/* DMA maps (sorted by iova) */
	pthread_rwlock_t map_lock;
	struct srv_map maps[SRV_MAX_DMA_MAPS];
	unsigned nmaps;
	_Atomic uint64_t mapped_bytes;
	_Atomic int inflight; /* translations of fd maps in use by the worker */
	/* Bumped (seq_cst) by wait_inflight before it waits, i.e. before any
	 * map's memory is released: a translating thread's cached map (dma.c,
	 * tc_hit) is good only while this is the value it was cached under. */
	_Atomic uint64_t map_epoch;

	/* --persist: between a disconnect and the next client's reset or
	 * register write, a failed translation waits for the memory instead of
	 * failing the command (the device is quiesced, not broken). */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cv;
	bool resuming;
	_Atomic uint64_t map_gen; /* changed under wait_lock; read without it */
	/* The maps the previous client had when it went (main thread only; kept
	 * while the window is open): a new map over one of them must be the same
	 * memory, else the device's queues and held commands cannot go on. */
	struct srv_map gone[SRV_MAX_DMA_MAPS];
	unsigned ngone;
	/* --persist and not --no-resume-memory: at a disconnect the controller
	 * is paused and the client's maps stay (kept), for the next client to
	 * adopt (resume.c); else they are dropped. */
	bool keep_memory;
	bool held;	      /* main thread: the controller is paused for a resume */
	uint8_t *resume_blob; /* main thread: the last resume state served */
	size_t resume_len;

	/* DMA_READ/WRITE to the client (worker thread) */
	pthread_mutex_t rpc_lock; /* one request at a time */
	pthread_mutex_t rpc_mx;
	pthread_cond_t rpc_cv;
	bool rpc_wait, rpc_done;
	uint16_t rpc_id;
	uint8_t *rpc_buf; /* reply payload */
	size_t rpc_len;
	int rpc_err;
	uint16_t next_id;
	pthread_mutex_t bounce_lock;
	struct srv_bounce bounce[SRV_BOUNCE_SLOTS];
	_Atomic unsigned nbounce; /* bounce buffers in use: 0 = srv_dma_done takes no lock */

	/* MSI-X */
	int *irq_fds;
	uint32_t *msix_table; /* 4 dwords per vector */
	size_t bar4_size;

	/* config space */
	uint8_t cfg[SRV_CFG_SIZE];
	uint64_t bar0_addr, bar4_addr;

	/* doorbell page: memfd of bar0_size bytes, doorbells at 0x1000 */
	int db_fd;
	uint8_t *db_map;

	struct srv_stats stats;
};

/* dma.c */
int srv_dma_init(struct srv *s);
void *srv_dma_translate(void *ctx, uint64_t iova, size_t len, bool write);
void srv_dma_done(void *ctx, void *host, uint64_t iova, size_t len, bool write);
int srv_dma_map(struct srv *s, const struct nvmk_vfu_dma_map *m, int fd);
int srv_dma_unmap(struct srv *s, uint64_t iova, uint64_t size);
void srv_dma_unmap_all(struct srv *s);
void srv_rpc_reply(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *payload, size_t len);
void srv_rpc_fail(struct srv *s);
void srv_resume_window(struct srv *s, bool open);
/* Before srv_dma_unmap_all at a --persist disconnect: remember the maps. */
void srv_dma_remember_gone(struct srv *s);

/* Maps kept across a disconnect (main thread). */
void srv_dma_keep_all(struct srv *s);
void srv_dma_drop_kept(struct srv *s);
void srv_dma_adopt_kept(struct srv *s);

/* resume.c: the vendor regions of a --persist server */
void srv_resume_hold(struct srv *s);
void srv_resume_release(struct srv *s);
int srv_resume_region_info(struct srv *s, uint32_t index, uint32_t room, uint8_t *out,
			   size_t outmax, size_t *len, int *fd);
int srv_resume_region_rw(struct srv *s, uint32_t index, uint64_t off, uint32_t count, uint8_t *data,
			 bool write, char *why, size_t whylen);

/* pci.c */
void srv_pci_init(struct srv *s);
int srv_cfg_read(struct srv *s, uint64_t off, uint32_t count, uint8_t *out);
int srv_cfg_write(struct srv *s, uint64_t off, uint32_t count, const uint8_t *in);
int srv_bar4_read(struct srv *s, uint64_t off, uint32_t count, uint8_t *out);
int srv_bar4_write(struct srv *s, uint64_t off, uint32_t count, const uint8_t *in);

/* doorbell.c */
int srv_db_init(struct srv *s);
void srv_db_store(struct srv *s, uint32_t off, uint32_t val);

/* server.c */
/* Create the controller from @cfg (its dma hooks are the server's), the PCI
 * function and the doorbell page (handed to the emulator). 0 or -errno. */
int srv_setup(struct srv *s, struct nvmk_emu_config *cfg);
/* After srv_serve returned: destroy the controller, drop every map and
 * eventfd. */
void srv_teardown(struct srv *s);
/* Serve clients on s->listen_fd until SIGTERM/SIGINT or s->stop_fd is readable. */
int srv_serve(struct srv *s);
void srv_irqs_drop(struct srv *s);
void srv_function_reset(struct srv *s);

/* control.c */
int srv_control_start(struct srv *s, const char *path);
void srv_control_stop(void);

#endif /* NVMK_EMU_SERVER_H */
