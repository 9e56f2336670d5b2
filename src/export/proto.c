// SPDX-License-Identifier: MIT
/*
 * NBD wire protocol: decoding of what a client sends and encoding of what the
 * server answers (NetworkBlockDevice/nbd doc/proto.md). Pure functions: no
 * I/O, no allocation, every length checked before it is used, so that they
 * can take any bytes (fuzz/fuzz_nbd.c).
 */
#include <errno.h>
#include <string.h>

#include "nvmekeep/export.h"

int nvmk_nbd_opt_hdr_decode(const uint8_t *buf, struct nvmk_nbd_opt_hdr *out)
{
	if (nvmk_nbd_get64(buf) != NVMK_NBD_OPTS_MAGIC)
		return -EPROTO;
	out->option = nvmk_nbd_get32(buf + 8);
	out->length = nvmk_nbd_get32(buf + 12);
	return 0;
}

/* proto.md "Conventions": a string MUST NOT contain NUL and MUST be no longer
 * than 4096 bytes. */
static bool string_ok(const uint8_t *s, uint32_t len)
{
	return len <= NVMK_NBD_STRING_MAX && memchr(s, 0, len) == NULL;
}

/*
 * INFO extension (proto.md NBD_OPT_INFO/GO): 32-bit name length, name,
 * 16-bit number of information requests, that many 16-bit types.
 */
int nvmk_nbd_info_req_parse(const uint8_t *data, uint32_t len, struct nvmk_nbd_info_req *out)
{
	uint32_t nlen;
	uint16_t n;

	memset(out, 0, sizeof(*out));
	if (len < 6)
		return -EINVAL;
	nlen = nvmk_nbd_get32(data);
	if (nlen > len - 6 || !string_ok(data + 4, nlen))
		return -EINVAL;
	n = nvmk_nbd_get16(data + 4 + nlen);
	if ((uint64_t)len != 6ull + nlen + 2ull * n)
		return -EINVAL;
	out->name = (const char *)data + 4;
	out->name_len = nlen;
	out->ninfo = n;
	for (uint16_t i = 0; i < n && i < NVMK_NBD_MAX_INFO_REQS; i++)
		out->info[i] = nvmk_nbd_get16(data + 6 + nlen + 2u * i);
	return 0;
}

/* Does @q (a query) select base:allocation? LIST: the empty query and the
 * namespace alone ("base:") list every context of the namespace; SET: only
 * the full name selects it. Other namespaces select nothing here. */
static bool meta_query_matches(const uint8_t *q, uint32_t qlen, bool list)
{
	static const char full[] = NVMK_NBD_META_BASE_ALLOCATION;

	if (qlen == sizeof(full) - 1 && memcmp(q, full, qlen) == 0)
		return true;
	return list && qlen == 5 && memcmp(q, "base:", 5) == 0;
}

int nvmk_nbd_meta_req_parse(const uint8_t *data, uint32_t len, bool list,
			    struct nvmk_nbd_meta_req *out)
{
	uint32_t off, nlen, nq;

	memset(out, 0, sizeof(*out));
	if (len < 8)
		return -EINVAL;
	nlen = nvmk_nbd_get32(data);
	if (nlen > len - 8 || !string_ok(data + 4, nlen))
		return -EINVAL;
	off = 4 + nlen;
	nq = nvmk_nbd_get32(data + off);
	off += 4;
	out->name = (const char *)data + 4;
	out->name_len = nlen;
	out->nqueries = nq;
	/* each query takes at least its 4-byte length: bound nq by the data */
	if (nq > (len - off) / 4)
		return -EINVAL;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t qlen;

		if (len - off < 4)
			return -EINVAL;
		qlen = nvmk_nbd_get32(data + off);
		off += 4;
		if (qlen > len - off || !string_ok(data + off, qlen))
			return -EINVAL;
		if (meta_query_matches(data + off, qlen, list))
			out->base_allocation = true;
		off += qlen;
	}
	if (off != len)
		return -EINVAL;
	if (list && nq == 0)
		out->base_allocation = true;
	return 0;
}

int nvmk_nbd_export_name_parse(const char *name, size_t len, char *dev, size_t devsz,
			       uint32_t *nsid)
{
	size_t slash = len;
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (name[i] == 0)
			return -EINVAL;
		if (name[i] == '/')
			slash = i;
	}
	if (slash == len || slash == 0 || slash + 1 == len || slash >= devsz)
		return -EINVAL;
	for (size_t i = slash + 1; i < len; i++) {
		if (name[i] < '0' || name[i] > '9' || (i == slash + 1 && name[i] == '0'))
			return -EINVAL;
		v = v * 10 + (uint64_t)(name[i] - '0');
		if (v > 0xfffffffeull) /* NVMe Base 2.0 3.2.1: FFFFFFFFh is broadcast */
			return -EINVAL;
	}
	memcpy(dev, name, slash);
	dev[slash] = 0;
	*nsid = (uint32_t)v;
	return 0;
}

int nvmk_nbd_request_decode(const uint8_t *buf, struct nvmk_nbd_request *out)
{
	if (nvmk_nbd_get32(buf) != NVMK_NBD_REQ_MAGIC)
		return -EPROTO;
	out->flags = nvmk_nbd_get16(buf + 4);
	out->type = nvmk_nbd_get16(buf + 6);
	out->handle = nvmk_nbd_get64(buf + 8);
	out->offset = nvmk_nbd_get64(buf + 16);
	out->length = nvmk_nbd_get32(buf + 24);
	return 0;
}

/* Command flags a command may carry (proto.md "Command flags"), given what
 * was offered. FUA is valid on every command once offered. */
static uint16_t allowed_flags(uint16_t type, const struct nvmk_nbd_limits *lim)
{
	uint16_t f = (lim->tflags & NVMK_NBD_FLAG_SEND_FUA) ? NVMK_NBD_CMD_FLAG_FUA : 0;

	switch (type) {
	case NVMK_NBD_CMD_READ:
		if (lim->tflags & NVMK_NBD_FLAG_SEND_DF)
			f |= NVMK_NBD_CMD_FLAG_DF;
		break;
	case NVMK_NBD_CMD_WRITE_ZEROES:
		f |= NVMK_NBD_CMD_FLAG_NO_HOLE;
		if (lim->tflags & NVMK_NBD_FLAG_SEND_FAST_ZERO)
			f |= NVMK_NBD_CMD_FLAG_FAST_ZERO;
		break;
	case NVMK_NBD_CMD_BLOCK_STATUS:
		f |= NVMK_NBD_CMD_FLAG_REQ_ONE;
		break;
	default:
		break;
	}
	return f;
}

static bool cmd_offered(uint16_t type, uint16_t tflags)
{
	switch (type) {
	case NVMK_NBD_CMD_READ:
	case NVMK_NBD_CMD_WRITE:
	case NVMK_NBD_CMD_DISC:
	case NVMK_NBD_CMD_BLOCK_STATUS: /* gated by the meta context instead */
		return true;
	case NVMK_NBD_CMD_FLUSH:
		return tflags & NVMK_NBD_FLAG_SEND_FLUSH;
	case NVMK_NBD_CMD_TRIM:
		return tflags & NVMK_NBD_FLAG_SEND_TRIM;
	case NVMK_NBD_CMD_CACHE:
		return tflags & NVMK_NBD_FLAG_SEND_CACHE;
	case NVMK_NBD_CMD_WRITE_ZEROES:
		return tflags & NVMK_NBD_FLAG_SEND_WRITE_ZEROES;
	default:
		return false;
	}
}

static bool cmd_writes(uint16_t type)
{
	return type == NVMK_NBD_CMD_WRITE || type == NVMK_NBD_CMD_TRIM ||
	       type == NVMK_NBD_CMD_WRITE_ZEROES;
}

uint32_t nvmk_nbd_request_check(const struct nvmk_nbd_request *req,
				const struct nvmk_nbd_limits *lim)
{
	uint16_t t = req->type;

	if (!cmd_offered(t, lim->tflags))
		return NVMK_NBD_EINVAL;
	if (req->flags & ~allowed_flags(t, lim))
		return NVMK_NBD_EINVAL;
	if (t == NVMK_NBD_CMD_DISC)
		return 0;
	if (cmd_writes(t) && (lim->tflags & NVMK_NBD_FLAG_READ_ONLY))
		return NVMK_NBD_EPERM;
	if (t == NVMK_NBD_CMD_FLUSH)
		/* proto.md: offset and length of a flush SHOULD be 0 */
		return (req->offset || req->length) ? NVMK_NBD_EINVAL : 0;
	if (t == NVMK_NBD_CMD_BLOCK_STATUS && (!lim->structured || !lim->meta_base_allocation))
		return NVMK_NBD_EINVAL;
	/* past the end: ENOSPC for writes (as the reference and qemu answer), EINVAL
	 * otherwise; written so that offset + length cannot overflow */
	if (req->offset > lim->size || req->length > lim->size - req->offset)
		return (t == NVMK_NBD_CMD_WRITE || t == NVMK_NBD_CMD_WRITE_ZEROES)
			       ? NVMK_NBD_ENOSPC
			       : NVMK_NBD_EINVAL;
	if (t == NVMK_NBD_CMD_BLOCK_STATUS && req->length == 0)
		return NVMK_NBD_EINVAL;
	if ((t == NVMK_NBD_CMD_READ || t == NVMK_NBD_CMD_WRITE) && req->length > lim->max_block)
		return (t == NVMK_NBD_CMD_READ && (req->flags & NVMK_NBD_CMD_FLAG_DF))
			       ? NVMK_NBD_EOVERFLOW
			       : NVMK_NBD_EINVAL;
	if (lim->min_block > 1 &&
	    ((req->offset % lim->min_block) || (req->length % lim->min_block)))
		return NVMK_NBD_EINVAL;
	return 0;
}

const char *nvmk_nbd_cmd_name(uint16_t type)
{
	static const char *const names[] = {"READ",  "WRITE", "DISC",	      "FLUSH",
					    "TRIM",  "CACHE", "WRITE_ZEROES", "BLOCK_STATUS"};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "UNKNOWN";
}

const char *nvmk_nbd_opt_name(uint32_t option)
{
	switch (option) {
	case NVMK_NBD_OPT_EXPORT_NAME:
		return "EXPORT_NAME";
	case NVMK_NBD_OPT_ABORT:
		return "ABORT";
	case NVMK_NBD_OPT_LIST:
		return "LIST";
	case NVMK_NBD_OPT_STARTTLS:
		return "STARTTLS";
	case NVMK_NBD_OPT_INFO:
		return "INFO";
	case NVMK_NBD_OPT_GO:
		return "GO";
	case NVMK_NBD_OPT_STRUCTURED_REPLY:
		return "STRUCTURED_REPLY";
	case NVMK_NBD_OPT_LIST_META_CONTEXT:
		return "LIST_META_CONTEXT";
	case NVMK_NBD_OPT_SET_META_CONTEXT:
		return "SET_META_CONTEXT";
	default:
		return "UNKNOWN";
	}
}

uint32_t nvmk_nbd_errno_from_driver(int err)
{
	switch (err) {
	case 0:
		return 0;
	case -EROFS:
	case -EACCES:
	case -EPERM:
		return NVMK_NBD_EPERM;
	case -ENOSPC:
		return NVMK_NBD_ENOSPC;
	case -EINVAL:
	case -ERANGE:
		return NVMK_NBD_EINVAL;
	case -EOPNOTSUPP:
		return NVMK_NBD_ENOTSUP;
	case -E2BIG:
	case -EOVERFLOW:
		return NVMK_NBD_EOVERFLOW;
	case -ENOMEM:
		return NVMK_NBD_ENOMEM;
	case -ESHUTDOWN:
		return NVMK_NBD_ESHUTDOWN;
	default:
		return NVMK_NBD_EIO;
	}
}

size_t nvmk_nbd_put_opt_reply(uint8_t *buf, uint32_t option, uint32_t type, uint32_t len)
{
	nvmk_nbd_put64(buf, NVMK_NBD_REP_MAGIC);
	nvmk_nbd_put32(buf + 8, option);
	nvmk_nbd_put32(buf + 12, type);
	nvmk_nbd_put32(buf + 16, len);
	return NVMK_NBD_OPT_REPLY_LEN;
}

size_t nvmk_nbd_put_simple_reply(uint8_t *buf, uint32_t error, uint64_t handle)
{
	nvmk_nbd_put32(buf, NVMK_NBD_SIMPLE_MAGIC);
	nvmk_nbd_put32(buf + 4, error);
	nvmk_nbd_put64(buf + 8, handle);
	return NVMK_NBD_SIMPLE_LEN;
}

size_t nvmk_nbd_put_chunk(uint8_t *buf, uint16_t flags, uint16_t type, uint64_t handle,
			  uint32_t len)
{
	nvmk_nbd_put32(buf, NVMK_NBD_CHUNK_MAGIC);
	nvmk_nbd_put16(buf + 4, flags);
	nvmk_nbd_put16(buf + 6, type);
	nvmk_nbd_put64(buf + 8, handle);
	nvmk_nbd_put32(buf + 16, len);
	return NVMK_NBD_CHUNK_LEN;
}

size_t nvmk_nbd_put_info_export(uint8_t *buf, uint64_t size, uint16_t tflags)
{
	nvmk_nbd_put16(buf, NVMK_NBD_INFO_EXPORT);
	nvmk_nbd_put64(buf + 2, size);
	nvmk_nbd_put16(buf + 10, tflags);
	return 12;
}

size_t nvmk_nbd_put_info_block_size(uint8_t *buf, uint32_t min, uint32_t pref, uint32_t max)
{
	nvmk_nbd_put16(buf, NVMK_NBD_INFO_BLOCK_SIZE);
	nvmk_nbd_put32(buf + 2, min);
	nvmk_nbd_put32(buf + 6, pref);
	nvmk_nbd_put32(buf + 10, max);
	return 14;
}
