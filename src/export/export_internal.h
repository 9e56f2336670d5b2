/* SPDX-License-Identifier: MIT */
/*
 * NBD server internals shared by server.c (exports, threads, status),
 * listen.c (listeners, acceptor), conn.c (handshake, socket I/O) and io.c
 * (request table, NVMe submission and completion, replies).
 *
 * Ownership: an I/O thread owns its connections, its request table and, per
 * exported device, one EXCLUSIVE queue pair and one DMA slab of request
 * buffers. Nothing of that is touched by another thread except the
 * atomics marked below (status readers) and the inbox (acceptor). So the I/O
 * path takes no lock and allocates nothing.
 *
 * Every piece of state is named so that a successor process can take it
 * over (docs/daemon.md): listeners and connections are file descriptors,
 * request buffers are pool blocks tagged "nbd.t<thread>" per device, and a
 * request in flight is (thread, slot), which is also the token the driver
 * saves for its NVMe command.
 */
#ifndef NVMK_EXPORT_INTERNAL_H
#define NVMK_EXPORT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvmekeep/driver.h"
#include "nvmekeep/export.h"
#include "nvmekeep/manager.h"

#define EXP_LOG		 "nbd"
#define EXP_MAX_DEVICES	 16
#define EXP_MAX_EXPORTS	 64
#define EXP_MAX_LISTENERS 8
#define EXP_MAX_THREADS	 64
#define EXP_MAX_BLOCK_CAP (256u << 10) /* largest READ/WRITE offered (slot size) */
#define EXP_NONE	 UINT32_MAX
#define EXP_HDR_MAX	 96 /* longest reply header kept with a request */
#define EXP_ERRMSG_MAX	 64 /* longest error message in an ERROR chunk */
#define EXP_STAGE_LEN	 4096 /* transmission receive staging: one header read, bytes */
#define EXP_SPEC_REQS	 16   /* WRITEs received ahead in one recvmsg, at most */
#define EXP_SPEC_BYTES	 (64u << 10) /* ... and their headers + payloads, at most */
/* staging capacity: a header read, or what a receive-ahead brought that was
 * not the WRITEs it expected (conn.c "Receiving ahead") */
#define EXP_STAGE_CAP	 (EXP_STAGE_LEN + EXP_SPEC_BYTES + EXP_SPEC_REQS * NVMK_NBD_REQ_LEN)
#define EXP_QUIET_MS	 200  /* stop: a connection closes after this long without input */

/* What an epoll event's data.ptr points at: each of these starts with it. */
enum exp_ep_kind { EP_WAKE = 1, EP_CONN, EP_QPAIR, EP_LISTENER };

/* One exported device (its namespaces are exports). */
struct exp_device {
	char id[NVMK_MGR_ID_MAX + 1];
	unsigned idx;
	bool kernel;		/* kernel path: request buffers are ephemeral memory */
	uint32_t slot_size;	/* bytes per request buffer = largest max_block */
	_Atomic bool live;	/* exported: new connections may choose it */
	_Atomic bool removing;	/* connections are being closed */
	_Atomic unsigned conns; /* connections bound to one of its exports */
};

struct exp_export {
	char name[NVMK_MGR_ID_MAX + 12]; /* DEVICE/NSID */
	char description[192];		 /* model, serial, size */
	struct exp_device *dev;
	uint32_t nsid;
	struct nvmk_ns *ns;
	uint64_t size;
	uint32_t lba_size, pref_block, max_block;
	uint16_t tflags; /* transmission flags (without SEND_DF: per connection) */
	_Atomic bool live;
	/* counters (relaxed atomics: written by the I/O threads, read by status) */
	_Atomic uint64_t n_read, n_write, n_flush, n_trim, n_zero, n_cache, n_bstatus, n_err;
	_Atomic uint64_t bytes_read, bytes_written;
};

/* A thread's resources on one device. */
struct exp_tdev {
	enum exp_ep_kind kind; /* EP_QPAIR */
	struct exp_thread *t;
	unsigned dev;
	struct nvmk_qpair *qp;
	int irq_fd;			 /* -1: poll while commands are outstanding */
	struct nvmk_dma_buf slab;	 /* slots x slot_size */
	bool slab_ephemeral;		 /* kernel path: not from the manager */
	char tag[NVMK_MGR_TAG_MAX + 1];	 /* "nbd.t<thread>" */
	_Atomic bool ready;		 /* set up by add_device, usable by the thread */
	_Atomic bool released;		 /* removal: the thread stopped using it */
	unsigned outstanding;		 /* NVMe commands in flight (thread-owned) */
	bool batching;			 /* a doorbell batch is open (thread-owned) */
};

/* The I/O thread may use @td (its fields are published by add_device with
 * ready, and handed back by the thread with released). */
static inline bool exp_tdev_active(const struct exp_tdev *td)
{
	return atomic_load_explicit(&td->ready, memory_order_acquire) &&
	       !atomic_load_explicit(&td->released, memory_order_acquire);
}

enum exp_req_state { REQ_FREE = 0, REQ_RX, REQ_DISCARD, REQ_QUEUED, REQ_NVME, REQ_TX };

/* One request in flight: slot @slot of its thread's table. */
struct exp_req {
	uint32_t slot;
	enum exp_req_state state;
	struct exp_conn *conn;
	struct nvmk_nbd_request r;
	uint32_t nbd_err;	 /* reply error (0 = success) */
	int drv_err;		 /* driver completion error */
	uint16_t nvme_status;	 /* NVMe status of a failed command */
	bool flush_after;	 /* FUA on TRIM / WRITE_ZEROES: a flush follows */
	uint32_t rx_done;	 /* payload bytes received (REQ_RX / REQ_DISCARD) */
	uint8_t hdr[EXP_HDR_MAX]; /* reply header (and small payload) */
	uint32_t hdr_len;
	void *data;		 /* reply payload in the slab, or NULL */
	uint32_t data_len;
	uint32_t tx_done;	 /* bytes of hdr + data sent */
	uint32_t next;		 /* FIFO link: connection TX queue or thread pending queue */
	char msg[EXP_ERRMSG_MAX]; /* error message for a structured ERROR chunk */
};

enum exp_conn_state {
	CONN_HS_FLAGS = 0, /* waiting for the client flags */
	CONN_OPT_HDR,
	CONN_OPT_DATA,
	CONN_OPT_DISCARD,  /* option data too long: skipped, then ERR_TOO_BIG */
	CONN_TLS_HANDSHAKE, /* after STARTTLS */
	CONN_TRANS,	   /* transmission */
	CONN_CLOSING,	   /* answering what is left, then closed */
};

struct exp_conn {
	enum exp_ep_kind kind; /* EP_CONN */
	int fd;
	uint64_t id;
	char peer[80];
	struct exp_thread *t;
	_Atomic int state; /* enum exp_conn_state */
	uint64_t deadline_ms; /* handshake deadline, or stop/removal grace deadline */
	/* receive */
	uint8_t hdr[NVMK_NBD_REQ_LEN]; /* option or request header being read */
	uint32_t hdr_have;
	uint8_t *opt_data;	       /* max_option_len bytes */
	uint32_t opt_have;
	struct nvmk_nbd_opt_hdr opt;
	uint64_t discard_left;
	struct exp_req *rx_req; /* request whose payload is being received */
	/* transmission: one recv takes several request headers (EXP_STAGE_LEN);
	 * payload bytes that came with them are copied out, the rest of a
	 * payload is received in place */
	uint8_t *stage; /* EXP_STAGE_CAP bytes */
	uint32_t stage_off, stage_len;
	/* receive-ahead of WRITE streams (conn.c): the length of the last WRITE
	 * and how many came in a row with it; headers and slots of one recvmsg */
	uint32_t spec_len, spec_streak;
	uint32_t spec_n, spec_got;
	uint32_t spec_slot[EXP_SPEC_REQS];
	uint8_t spec_hdr[EXP_SPEC_REQS][NVMK_NBD_REQ_LEN];
	/* handshake transmit buffer */
	uint8_t *hs_buf;
	size_t hs_len, hs_off, hs_cap;
	/* transmission replies, FIFO of slots */
	uint32_t txq_head, txq_tail;
	/* negotiated */
	bool fixed_newstyle, no_zeroes, structured, abort_after_tx;
	bool tcp;	  /* came through a TCP listener: TLS applies */
	bool tls_pending; /* STARTTLS acknowledged: the handshake starts once it is sent */
	bool tls_ok;	  /* TLS established */
	void *tls;	  /* gnutls_session_t */
	int meta_export; /* export base:allocation was set for, -1 none */
	struct exp_export *exp;
	struct exp_tdev *td;
	struct nvmk_nbd_limits lim;
	/* state */
	_Atomic unsigned inflight;  /* requests holding a slot */
	_Atomic uint64_t requests;
	bool disc;	  /* client sent DISC: no more reads */
	bool shutting;	  /* stop or removal: later requests get ESHUTDOWN */
	bool rx_eof;	  /* peer closed or a framing error: read nothing more */
	bool rx_idle;	  /* last read found nothing buffered */
	uint64_t last_rx_ms; /* when bytes last came in (stop: quiet period) */
	bool rx_short;	  /* last staging read got less than asked: the socket is
			     drained, wait for epoll instead of trying again */
	bool dead;	  /* close now (I/O error, framing error) */
	bool dirty;	  /* on the thread's dirty list */
	uint32_t ep_events;
	struct exp_conn *next, *dirty_next;
};

struct exp_thread {
	enum exp_ep_kind kind; /* EP_WAKE */
	struct nvmk_export_server *srv;
	unsigned idx;
	pthread_t th;
	bool started;
	int epfd, wakefd;
	pthread_mutex_t lock;	   /* inbox and the conns list (status readers) */
	struct exp_conn *inbox;	   /* handed over by the acceptor */
	struct exp_conn *conns;
	_Atomic unsigned nconns;
	struct exp_req *reqs;	   /* the request table: nslots entries */
	uint32_t nslots;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t pend_head, pend_tail; /* submissions refused with -EAGAIN, retried */
	struct exp_conn *dirty;
	struct exp_tdev tdev[EXP_MAX_DEVICES];
	_Atomic bool quit;
	_Atomic bool parked; /* servicing: idle, resting in exp_thread_park */
};

struct exp_listener {
	enum exp_ep_kind kind; /* EP_LISTENER */
	int fd;
	char addr[128];	       /* "unix:PATH" or "tcp:HOST:PORT" as bound */
	char unix_path[108];   /* removed on stop, if still ours */
	uint64_t unix_ino;	       /* its inode: a successor's socket is left alone */
};

struct nvmk_export_server {
	struct nvmk_mgr *mgr;
	struct nvmk_export_opts opts;
	pthread_mutex_t lock; /* control path: devices, exports, listeners */
	struct exp_device devices[EXP_MAX_DEVICES];
	_Atomic unsigned ndevices;
	struct exp_export exports[EXP_MAX_EXPORTS];
	_Atomic unsigned nexports;
	struct exp_listener listeners[EXP_MAX_LISTENERS];
	unsigned nlisteners;
	struct exp_thread *threads;
	unsigned nthreads;
	/* acceptor */
	pthread_t acceptor;
	bool acceptor_started;
	int acc_epfd, acc_wakefd;
	struct exp_thread acc_wake; /* only .kind used */
	_Atomic unsigned nconns;
	_Atomic uint64_t next_conn_id;
	void *tls; /* struct exp_tls_creds, NULL without TLS */
	_Atomic bool stopping;
	bool stopped, started;
	uint64_t stop_deadline_ms;
	/* servicing (export_state.c): stop reading at request boundaries, then
	 * the I/O threads and the acceptor leave their loops once idle */
	_Atomic bool quiescing, parking;
	bool park_keep_inflight; /* NVMe commands may stay at the device (keep-alive) */
	_Atomic bool watch_first_reply;	  /* restored: note the first reply sent */
	_Atomic uint64_t first_reply_ns;  /* CLOCK_MONOTONIC, 0 = none yet */
	pthread_mutex_t park_lock; /* parked threads wait on park_cond */
	pthread_cond_t park_cond;
	const struct exp_restore_map *restoring; /* nvmk_export_restore in progress */
};

/* server.c */
uint64_t exp_now_ms(void);
struct exp_export *exp_find_export(struct nvmk_export_server *srv, const char *name, size_t len);
void exp_thread_wake(struct exp_thread *t);

/* listen.c */
void *exp_acceptor_main(void *arg);
void exp_listeners_close(struct nvmk_export_server *srv);

/* conn.c */
void exp_conn_start(struct exp_conn *c);
void exp_conn_readable(struct exp_conn *c);
void exp_conn_flush(struct exp_conn *c);
void exp_conn_mark_dirty(struct exp_conn *c);
bool exp_conn_finish_iteration(struct exp_thread *t);
void exp_conn_close(struct exp_conn *c);
bool exp_conn_can_read(const struct exp_conn *c);

/* tls.c */
int exp_tls_init(struct nvmk_export_server *srv);
void exp_tls_fini(struct nvmk_export_server *srv);
int exp_tls_start(struct exp_conn *c);
int exp_tls_handshake(struct exp_conn *c);
bool exp_tls_wants_write(const struct exp_conn *c);
ssize_t exp_tls_recv(struct exp_conn *c, void *buf, size_t n);
ssize_t exp_tls_send(struct exp_conn *c, const void *buf, size_t n);
size_t exp_tls_pending(const struct exp_conn *c);
void exp_tls_close(struct exp_conn *c);

/* io.c */
int exp_thread_table_init(struct exp_thread *t, uint32_t nslots);
void exp_thread_table_free(struct exp_thread *t);
struct exp_req *exp_req_alloc(struct exp_thread *t, struct exp_conn *c);
void exp_req_free(struct exp_thread *t, struct exp_req *r);
void exp_req_start(struct exp_conn *c, struct exp_req *r);
void exp_req_reply(struct exp_req *r);
void exp_req_payload_done(struct exp_req *r);
void exp_io_process(struct exp_thread *t, bool all);
void exp_io_process_tdev(struct exp_thread *t, struct exp_tdev *td);
void exp_io_retry_pending(struct exp_thread *t);
void *exp_req_buf(const struct exp_req *r);
nvmk_cpl_fn exp_req_done_fn(void);

/* export_state.c (servicing, include/nvmekeep/export_state.h) */
bool exp_conn_quiesced(const struct exp_conn *c);
bool exp_thread_may_park(const struct exp_thread *t);
void exp_thread_park(struct exp_thread *t);
void exp_note_first_reply(struct nvmk_export_server *srv);
int exp_restore_nsids(struct nvmk_export_server *srv, const struct exp_device *d, uint32_t *nsids,
		      unsigned max);
int exp_restore_tdev(struct nvmk_export_server *srv, struct exp_device *d, struct exp_tdev *td);

#endif /* NVMK_EXPORT_INTERNAL_H */
