/* SPDX-License-Identifier: MIT */
/*
 * The NBD export: namespaces of the manager's devices served over the NBD
 * protocol (NetworkBlockDevice/nbd doc/proto.md, fixed newstyle) to
 * unmodified clients (qemu, libnbd, the Linux nbd driver, fio's nbd engine).
 *
 * Two halves:
 *  - the wire protocol (src/export/proto.c): pure functions that decode the
 *    client's option and request headers, parse option payloads, check a
 *    request against the export, and encode every reply. No I/O, no
 *    allocation: they are unit tested and fuzzed (fuzz/fuzz_nbd.c) alone.
 *  - the server (src/export/server.c, conn.c, io.c, listen.c): listeners,
 *    I/O threads, connections, the request table and the NVMe submissions.
 *
 * Export names are "DEVICE/NSID" (emu/1, 0000:00:03.0/2); the empty name is
 * the first namespace of the first device. docs/daemon.md describes the
 * threads and the state a successor process takes over when servicing.
 */
#ifndef NVMEKEEP_EXPORT_H
#define NVMEKEEP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Wire constants (proto.md "Values") -------------------------------------------------- */

#define NVMK_NBD_INIT_MAGIC   0x4e42444d41474943ull /* "NBDMAGIC" */
#define NVMK_NBD_OPTS_MAGIC   0x49484156454f5054ull /* "IHAVEOPT" */
#define NVMK_NBD_REP_MAGIC    0x0003e889045565a9ull /* option reply */
#define NVMK_NBD_REQ_MAGIC    0x25609513u
#define NVMK_NBD_SIMPLE_MAGIC 0x67446698u
#define NVMK_NBD_CHUNK_MAGIC  0x668e33efu

/* handshake flags (server) and client flags */
#define NVMK_NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NVMK_NBD_FLAG_NO_ZEROES	       (1u << 1)
#define NVMK_NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NVMK_NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* transmission flags */
#define NVMK_NBD_FLAG_HAS_FLAGS		(1u << 0)
#define NVMK_NBD_FLAG_READ_ONLY		(1u << 1)
#define NVMK_NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NVMK_NBD_FLAG_SEND_FUA		(1u << 3)
#define NVMK_NBD_FLAG_ROTATIONAL	(1u << 4)
#define NVMK_NBD_FLAG_SEND_TRIM		(1u << 5)
#define NVMK_NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NVMK_NBD_FLAG_SEND_DF		(1u << 7)
#define NVMK_NBD_FLAG_CAN_MULTI_CONN	(1u << 8)
#define NVMK_NBD_FLAG_SEND_CACHE	(1u << 10)
#define NVMK_NBD_FLAG_SEND_FAST_ZERO	(1u << 11)

/* options */
#define NVMK_NBD_OPT_EXPORT_NAME      1u
#define NVMK_NBD_OPT_ABORT	      2u
#define NVMK_NBD_OPT_LIST	      3u
#define NVMK_NBD_OPT_STARTTLS	      5u
#define NVMK_NBD_OPT_INFO	      6u
#define NVMK_NBD_OPT_GO		      7u
#define NVMK_NBD_OPT_STRUCTURED_REPLY 8u
#define NVMK_NBD_OPT_LIST_META_CONTEXT 9u
#define NVMK_NBD_OPT_SET_META_CONTEXT 10u

/* option replies */
#define NVMK_NBD_REP_ACK	     1u
#define NVMK_NBD_REP_SERVER	     2u
#define NVMK_NBD_REP_INFO	     3u
#define NVMK_NBD_REP_META_CONTEXT    4u
#define NVMK_NBD_REP_ERR_UNSUP	     0x80000001u
#define NVMK_NBD_REP_ERR_POLICY	     0x80000002u
#define NVMK_NBD_REP_ERR_INVALID     0x80000003u
#define NVMK_NBD_REP_ERR_PLATFORM    0x80000004u
#define NVMK_NBD_REP_ERR_TLS_REQD    0x80000005u
#define NVMK_NBD_REP_ERR_UNKNOWN     0x80000006u
#define NVMK_NBD_REP_ERR_SHUTDOWN    0x80000007u
#define NVMK_NBD_REP_ERR_BLOCK_SIZE_REQD 0x80000008u
#define NVMK_NBD_REP_ERR_TOO_BIG     0x80000009u

/* NBD_OPT_INFO / NBD_OPT_GO information types */
#define NVMK_NBD_INFO_EXPORT	  0u
#define NVMK_NBD_INFO_NAME	  1u
#define NVMK_NBD_INFO_DESCRIPTION 2u
#define NVMK_NBD_INFO_BLOCK_SIZE  3u

/* commands and command flags */
#define NVMK_NBD_CMD_READ	  0u
#define NVMK_NBD_CMD_WRITE	  1u
#define NVMK_NBD_CMD_DISC	  2u
#define NVMK_NBD_CMD_FLUSH	  3u
#define NVMK_NBD_CMD_TRIM	  4u
#define NVMK_NBD_CMD_CACHE	  5u
#define NVMK_NBD_CMD_WRITE_ZEROES 6u
#define NVMK_NBD_CMD_BLOCK_STATUS 7u

#define NVMK_NBD_CMD_FLAG_FUA	    (1u << 0)
#define NVMK_NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NVMK_NBD_CMD_FLAG_DF	    (1u << 2)
#define NVMK_NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NVMK_NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* structured reply chunks */
#define NVMK_NBD_REPLY_FLAG_DONE	(1u << 0)
#define NVMK_NBD_REPLY_TYPE_NONE	0u
#define NVMK_NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NVMK_NBD_REPLY_TYPE_OFFSET_HOLE 2u
#define NVMK_NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NVMK_NBD_REPLY_TYPE_ERROR	0x8001u
#define NVMK_NBD_REPLY_TYPE_ERROR_OFFSET 0x8002u

/* errors on the wire (Linux values, as the protocol defines them) */
#define NVMK_NBD_EPERM	   1u
#define NVMK_NBD_EIO	   5u
#define NVMK_NBD_ENOMEM	   12u
#define NVMK_NBD_EINVAL	   22u
#define NVMK_NBD_ENOSPC	   28u
#define NVMK_NBD_EOVERFLOW 75u
#define NVMK_NBD_ENOTSUP   95u
#define NVMK_NBD_ESHUTDOWN 108u

/* base:allocation flags */
#define NVMK_NBD_STATE_HOLE (1u << 0)
#define NVMK_NBD_STATE_ZERO (1u << 1)

#define NVMK_NBD_META_BASE_ALLOCATION "base:allocation"
#define NVMK_NBD_META_ID_BASE_ALLOCATION 1u /* the id this server gives it */

/* Header sizes on the wire. */
#define NVMK_NBD_OPT_HDR_LEN	16u /* magic, option, length */
#define NVMK_NBD_OPT_REPLY_LEN	20u /* magic, option, type, length */
#define NVMK_NBD_REQ_LEN	28u
#define NVMK_NBD_SIMPLE_LEN	16u
#define NVMK_NBD_CHUNK_LEN	20u
#define NVMK_NBD_STRING_MAX	4096u /* proto.md "Conventions": strings */
#define NVMK_NBD_MAX_INFO_REQS	16u   /* information requests kept per INFO/GO */
#define NVMK_NBD_WRITE_DISCARD_MAX (32u << 20) /* longest refused payload drained
						 * before the connection is closed */

/* ---- Wire protocol: pure functions (src/export/proto.c) ------------------------------------ */

struct nvmk_nbd_opt_hdr {
	uint32_t option;
	uint32_t length; /* bytes of option data that follow */
};

/**
 * nvmk_nbd_opt_hdr_decode - decode a client option header.
 * @buf: NVMK_NBD_OPT_HDR_LEN bytes
 * Return: 0, or -EPROTO when the magic is not IHAVEOPT (a framing error:
 *         the session must be closed).
 */
int nvmk_nbd_opt_hdr_decode(const uint8_t *buf, struct nvmk_nbd_opt_hdr *out);

/* NBD_OPT_INFO / NBD_OPT_GO data: export name, then the information requested. */
struct nvmk_nbd_info_req {
	const char *name; /* points into the option data, not NUL terminated */
	uint32_t name_len;
	uint16_t ninfo;	  /* as sent */
	uint16_t info[NVMK_NBD_MAX_INFO_REQS]; /* the first NVMK_NBD_MAX_INFO_REQS */
};

/**
 * nvmk_nbd_info_req_parse - parse NBD_OPT_INFO / NBD_OPT_GO option data.
 * Return: 0, or -EINVAL (lengths inconsistent with @len, name too long or
 *         containing NUL): the server answers NBD_REP_ERR_INVALID.
 */
int nvmk_nbd_info_req_parse(const uint8_t *data, uint32_t len, struct nvmk_nbd_info_req *out);

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data. */
struct nvmk_nbd_meta_req {
	const char *name; /* export name, into the option data */
	uint32_t name_len;
	uint32_t nqueries;
	bool base_allocation; /* base:allocation is selected (or listed) */
};

/**
 * nvmk_nbd_meta_req_parse - parse a meta context option and match its queries
 * against the one context this server has, "base:allocation".
 * @list: LIST_META_CONTEXT (no query lists everything, "base:" lists the base
 *        namespace) rather than SET (only the exact name selects it)
 * Return: 0, or -EINVAL (malformed: NBD_REP_ERR_INVALID).
 */
int nvmk_nbd_meta_req_parse(const uint8_t *data, uint32_t len, bool list,
			    struct nvmk_nbd_meta_req *out);

/**
 * nvmk_nbd_export_name_parse - split an export name "DEVICE/NSID".
 * @dev:   receives DEVICE, NUL terminated (everything before the last '/')
 * @nsid:  receives NSID (1..0xfffffffe, decimal)
 * Return: 0, or -EINVAL (no '/', empty device, bad or out-of-range NSID,
 *         device longer than @devsz - 1). The empty name is not parsed here:
 *         it is the default export.
 */
int nvmk_nbd_export_name_parse(const char *name, size_t len, char *dev, size_t devsz,
			       uint32_t *nsid);

/* A transmission request as decoded. */
struct nvmk_nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

/**
 * nvmk_nbd_request_decode - decode a request header.
 * @buf: NVMK_NBD_REQ_LEN bytes
 * Return: 0, or -EPROTO (bad magic: a framing error, the connection closes).
 */
int nvmk_nbd_request_decode(const uint8_t *buf, struct nvmk_nbd_request *out);

/* What a request is checked against: the export as negotiated on one connection. */
struct nvmk_nbd_limits {
	uint64_t size;	    /* bytes */
	uint32_t min_block; /* offsets and lengths are multiples (LBA size) */
	uint32_t max_block; /* longest READ/WRITE payload */
	uint16_t tflags;    /* transmission flags sent to the client */
	bool structured;    /* structured replies negotiated */
	bool meta_base_allocation; /* base:allocation selected */
};

/**
 * nvmk_nbd_request_check - validate a decoded request against the export.
 * Checks the command, that every flag is defined for it and was offered,
 * write access, offset + length within the export (no overflow), the
 * maximum block size (READ/WRITE) and alignment to the minimum block size.
 * Return: 0 when the request may run, else the NBD error to answer with
 *         (NVMK_NBD_EINVAL, EPERM, ENOSPC, EOVERFLOW, ENOTSUP). A refused WRITE
 *         still has its payload on the wire: the caller drains it.
 */
uint32_t nvmk_nbd_request_check(const struct nvmk_nbd_request *req,
				const struct nvmk_nbd_limits *lim);

/** nvmk_nbd_cmd_name - "READ", "WRITE", ... or "UNKNOWN". */
const char *nvmk_nbd_cmd_name(uint16_t type);
/** nvmk_nbd_opt_name - "GO", "LIST", ... or "UNKNOWN". */
const char *nvmk_nbd_opt_name(uint32_t option);

/**
 * nvmk_nbd_errno_from_driver - the NBD error for a driver completion error
 * (a negative errno, driver.h table): EPERM for write protection, ENOSPC for
 * capacity, EINVAL for range/field errors, ENOTSUP for unsupported commands,
 * EOVERFLOW for oversized transfers, ESHUTDOWN, else EIO. 0 maps to 0.
 */
uint32_t nvmk_nbd_errno_from_driver(int err);

/* Encoders: each writes a complete header into @buf and returns its length. */
size_t nvmk_nbd_put_opt_reply(uint8_t *buf, uint32_t option, uint32_t type, uint32_t len);
size_t nvmk_nbd_put_simple_reply(uint8_t *buf, uint32_t error, uint64_t handle);
size_t nvmk_nbd_put_chunk(uint8_t *buf, uint16_t flags, uint16_t type, uint64_t handle,
			  uint32_t len);
/** nvmk_nbd_put_info_export - NBD_REP_INFO payload of INFO_EXPORT (12 bytes). */
size_t nvmk_nbd_put_info_export(uint8_t *buf, uint64_t size, uint16_t tflags);
/** nvmk_nbd_put_info_block_size - NBD_REP_INFO payload of INFO_BLOCK_SIZE (14 bytes). */
size_t nvmk_nbd_put_info_block_size(uint8_t *buf, uint32_t min, uint32_t pref, uint32_t max);

/* Big-endian helpers shared by the server and the tests. */
static inline void nvmk_nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void nvmk_nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void nvmk_nbd_put64(uint8_t *p, uint64_t v)
{
	nvmk_nbd_put32(p, (uint32_t)(v >> 32));
	nvmk_nbd_put32(p + 4, (uint32_t)v);
}
static inline uint16_t nvmk_nbd_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t nvmk_nbd_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t nvmk_nbd_get64(const uint8_t *p)
{
	return ((uint64_t)nvmk_nbd_get32(p) << 32) | nvmk_nbd_get32(p + 4);
}

/* ---- The server ------------------------------------------------------------------------- */

struct nvmk_mgr;
struct nvmk_export_server;

/* TLS on TCP listeners (unix listeners never use it). */
enum nvmk_export_tls {
	NVMK_EXPORT_TLS_OFF = 0, /* STARTTLS refused (NBD_REP_ERR_POLICY) */
	NVMK_EXPORT_TLS_ON,	 /* offered: the client may upgrade */
	NVMK_EXPORT_TLS_REQUIRE, /* every option but STARTTLS/ABORT gets ERR_TLS_REQD */
};

struct nvmk_export_opts {
	enum nvmk_export_tls tls;
	const char *tls_creds_dir; /* X.509: server-cert.pem, server-key.pem [, ca-cert.pem] */
	const char *tls_psk_file;  /* PSK: "username:hexkey" lines */
	bool read_only;		  /* every export read-only */
	unsigned threads;	  /* I/O threads, 0 = online CPUs */
	unsigned max_connections; /* 0 = 64 */
	unsigned max_inflight;	  /* requests per connection, 0 = 64 */
	unsigned slots_per_thread; /* request table entries per I/O thread, 0 = 128 */
	uint32_t max_option_len;  /* longest option data accepted, 0 = 8192 */
	uint32_t handshake_timeout_ms; /* a client that does not finish its handshake
					  is dropped, 0 = 10000 */
	uint32_t stop_grace_ms;	  /* on stop: how long connections may take to
				     answer and drain, 0 = 10000 */
};

/**
 * nvmk_export_buffer_pages - DMA pages the server needs for its request
 * buffers per device (all threads), for sizing the private pool.
 */
uint64_t nvmk_export_buffer_pages(const struct nvmk_export_opts *opts);

/**
 * nvmk_export_create - create a server over @mgr (not started).
 * Return: 0, -EINVAL, -ENOMEM.
 */
int nvmk_export_create(struct nvmk_mgr *mgr, const struct nvmk_export_opts *opts,
		       struct nvmk_export_server **out);

/**
 * nvmk_export_add_device - export every active namespace of device @id (the
 * device is brought up now). Return: 0, -EEXIST (exported already), -ENOSPC
 * (export table full), or the manager's error.
 */
int nvmk_export_add_device(struct nvmk_export_server *srv, const char *id);

/**
 * nvmk_export_remove_device - stop exporting device @id.
 * @force: disconnect its clients (in-flight requests are answered, later ones
 *         get ESHUTDOWN) instead of refusing
 * Blocks until no connection uses the device and every I/O thread released
 * its queue pair and buffers there (bounded by stop_grace_ms).
 * Return: 0, -ENOENT (not exported), -EBUSY (clients connected, no @force),
 *         -ETIMEDOUT.
 */
int nvmk_export_remove_device(struct nvmk_export_server *srv, const char *id, bool force);

/**
 * nvmk_export_listen - add a listener: "unix:PATH" (created mode 0660; an
 * existing socket file is replaced) or "tcp:HOST:PORT" (PORT 0 = any; the
 * bound port is in nvmk_export_listener_addr). Before or after start.
 * Return: 0, -EINVAL (bad spec: logged with the accepted forms), or the
 *         socket error.
 */
int nvmk_export_listen(struct nvmk_export_server *srv, const char *spec);

/** nvmk_export_listener_addr - the address of listener @i ("unix:PATH",
 *  "tcp:127.0.0.1:PORT"), or NULL. */
const char *nvmk_export_listener_addr(const struct nvmk_export_server *srv, unsigned i);

/** nvmk_export_start - start the I/O threads and the acceptor. */
int nvmk_export_start(struct nvmk_export_server *srv);

/**
 * nvmk_export_stop - graceful stop: stop accepting (listening sockets closed,
 * unix socket files removed), answer every request already read, answer
 * requests read afterwards with ESHUTDOWN, close the connections, flush every
 * exported namespace and release the queue pairs and buffers. Blocks until
 * done (bounded by stop_grace_ms). Idempotent.
 */
void nvmk_export_stop(struct nvmk_export_server *srv);

/** nvmk_export_destroy - stop (if needed) and free. NULL is a no-op. */
void nvmk_export_destroy(struct nvmk_export_server *srv);

/** nvmk_export_connections - connections open now. */
unsigned nvmk_export_connections(const struct nvmk_export_server *srv);

/**
 * nvmk_export_status_json - exports (name, device, nsid, size, block size,
 * read_only, removed, connections, counters), connections (id, peer,
 * export, state, in_flight, requests) and listeners as one JSON object.
 * @json: receives a malloc'd string (free()).
 * Return: 0, -ENOMEM.
 */
int nvmk_export_status_json(struct nvmk_export_server *srv, char **json);

#endif /* NVMEKEEP_EXPORT_H */
