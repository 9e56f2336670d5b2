// SPDX-License-Identifier: MIT
/*
 * vfio-user message validation and the VERSION capabilities (JSON).
 *
 * Everything here works on bytes a peer sent: sizes are checked against the
 * bytes actually received, never trusted. Rules cite the sections of QEMU
 * docs/interop/vfio-user.rst.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nvmekeep/vfio_user.h"

static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void nvmk_vfu_caps_default(struct nvmk_vfu_caps *c)
{
	c->max_msg_fds = NVMK_VFU_DEFAULT_MAX_FDS;
	c->max_data_xfer_size = NVMK_VFU_DEFAULT_MAX_XFER;
	c->max_dma_maps = NVMK_VFU_DEFAULT_MAX_DMA_MAPS;
	c->pgsizes = NVMK_VFU_DEFAULT_PGSIZES;
}

const char *nvmk_vfu_cmd_name(uint16_t cmd)
{
	static const char *const names[] = {
	    [NVMK_VFU_VERSION] = "VERSION",
	    [NVMK_VFU_DMA_MAP] = "DMA_MAP",
	    [NVMK_VFU_DMA_UNMAP] = "DMA_UNMAP",
	    [NVMK_VFU_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
	    [NVMK_VFU_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
	    [NVMK_VFU_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
	    [NVMK_VFU_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
	    [NVMK_VFU_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
	    [NVMK_VFU_REGION_READ] = "REGION_READ",
	    [NVMK_VFU_REGION_WRITE] = "REGION_WRITE",
	    [NVMK_VFU_DMA_READ] = "DMA_READ",
	    [NVMK_VFU_DMA_WRITE] = "DMA_WRITE",
	    [NVMK_VFU_DEVICE_RESET] = "DEVICE_RESET",
	    [NVMK_VFU_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
	    [NVMK_VFU_DEVICE_FEATURE] = "DEVICE_FEATURE",
	    [NVMK_VFU_MIG_DATA_READ] = "MIG_DATA_READ",
	    [NVMK_VFU_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
	};

	if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd])
		return names[cmd];
	return "unknown";
}

/* A non-negative JSON integer within [lo, hi]. */
static int cap_uint(json_object *caps, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
		    char *why, size_t whylen)
{
	json_object *v;
	int64_t i;

	if (!json_object_object_get_ex(caps, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return why_set(why, whylen, -EINVAL, "capability %s is not a number", key);
	errno = 0;
	i = json_object_get_int64(v);
	if (errno || i < 0 || (uint64_t)i < lo || (uint64_t)i > hi)
		return why_set(why, whylen, -EINVAL, "capability %s = %lld is outside [%llu, %llu]",
			       key, (long long)i, (unsigned long long)lo, (unsigned long long)hi);
	*out = (uint64_t)i;
	return 0;
}

int nvmk_vfu_version_parse(const void *p, size_t len, struct nvmk_vfu_version *ver,
			   struct nvmk_vfu_caps *caps, char *why, size_t whylen)
{
	const char *json = (const char *)p + sizeof(*ver);
	size_t jlen;
	json_object *root, *c;
	uint64_t v;
	int rc = 0;

	nvmk_vfu_caps_default(caps);
	if (len < sizeof(*ver))
		return why_set(why, whylen, -EINVAL, "VERSION payload of %zu bytes (needs 4)", len);
	memcpy(ver, p, sizeof(*ver));
	jlen = len - sizeof(*ver);
	if (jlen == 0)
		return 0; /* version data is optional */
	if (jlen > NVMK_VFU_JSON_MAX)
		return why_set(why, whylen, -EINVAL, "VERSION JSON of %zu bytes (at most %u)", jlen,
			       NVMK_VFU_JSON_MAX);
	/* "version data ... (including terminating NUL)" */
	if (json[jlen - 1] != 0 || strlen(json) != jlen - 1)
		return why_set(why, whylen, -EINVAL,
			       "VERSION JSON is not one NUL-terminated string");
	root = json_tokener_parse(json);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return why_set(why, whylen, -EINVAL, "VERSION data is not a JSON object");
	}
	if (json_object_object_get_ex(root, "capabilities", &c)) {
		if (!json_object_is_type(c, json_type_object)) {
			rc = why_set(why, whylen, -EINVAL, "\"capabilities\" is not an object");
			goto out;
		}
		v = caps->max_msg_fds;
		rc = cap_uint(c, "max_msg_fds", 0, NVMK_VFU_LIMIT_MAX_FDS, &v, why, whylen);
		caps->max_msg_fds = (uint32_t)v;
		if (!rc) {
			v = caps->max_data_xfer_size;
			rc = cap_uint(c, "max_data_xfer_size", 4096, UINT32_MAX, &v, why, whylen);
			caps->max_data_xfer_size = (uint32_t)v;
		}
		if (!rc) {
			v = caps->max_dma_maps;
			rc = cap_uint(c, "max_dma_maps", 1, UINT32_MAX, &v, why, whylen);
			caps->max_dma_maps = (uint32_t)v;
		}
		if (!rc) {
			v = caps->pgsizes;
			rc = cap_uint(c, "pgsizes", 1, INT64_MAX, &v, why, whylen);
			caps->pgsizes = v;
		}
	}
out:
	json_object_put(root);
	return rc;
}

int nvmk_vfu_version_format(uint16_t major, uint16_t minor, const struct nvmk_vfu_caps *caps,
			    void *buf, size_t len)
{
	struct nvmk_vfu_version v = {major, minor};
	int n;

	if (len < sizeof(v))
		return -ENOSPC;
	memcpy(buf, &v, sizeof(v));
	n = snprintf((char *)buf + sizeof(v), len - sizeof(v),
		     "{\"capabilities\":{\"max_msg_fds\":%u,\"max_data_xfer_size\":%u,"
		     "\"max_dma_maps\":%u,\"pgsizes\":%llu}}",
		     caps->max_msg_fds, caps->max_data_xfer_size, caps->max_dma_maps,
		     (unsigned long long)caps->pgsizes);
	if (n < 0 || (size_t)n + 1 > len - sizeof(v))
		return -ENOSPC;
	return (int)(sizeof(v) + (size_t)n + 1);
}

int nvmk_vfu_hdr_check(const struct nvmk_vfu_hdr *h, size_t max_size, bool want_reply)
{
	uint32_t type = h->flags & NVMK_VFU_F_TYPE_MASK;

	if (h->size < sizeof(*h))
		return -EPROTO;
	if (h->size > max_size)
		return -E2BIG;
	if (type != (want_reply ? NVMK_VFU_F_TYPE_REPLY : NVMK_VFU_F_TYPE_CMD))
		return -EPROTO;
	return 0;
}

/* Exactly one bit of @v inside @mask. */
static bool one_bit(uint32_t v, uint32_t mask)
{
	v &= mask;
	return v && !(v & (v - 1));
}

int nvmk_vfu_cmd_check(uint16_t cmd, const void *payload, size_t len, unsigned nfds,
		       uint32_t max_xfer, char *why, size_t whylen)
{
	const char *name = nvmk_vfu_cmd_name(cmd);
	size_t need = 0;
	uint32_t argsz = 0;

	if (len >= 4)
		memcpy(&argsz, payload, 4);
	switch (cmd) {
	case NVMK_VFU_VERSION:
		if (len < sizeof(struct nvmk_vfu_version))
			return why_set(why, whylen, -EINVAL, "VERSION payload %zu bytes < 4", len);
		break;
	case NVMK_VFU_DMA_MAP: {
		struct nvmk_vfu_dma_map m;

		if (len != sizeof(m))
			return why_set(why, whylen, -EINVAL,
				       "DMA_MAP payload %zu bytes (must be 32)", len);
		memcpy(&m, payload, sizeof(m));
		if (m.argsz != sizeof(m))
			return why_set(why, whylen, -EINVAL, "DMA_MAP argsz %u (must be 32)",
				       m.argsz);
		if (nfds > 1)
			return why_set(why, whylen, -EINVAL, "DMA_MAP with %u fds (at most 1)",
				       nfds);
		if (m.flags & ~(NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK))
			return why_set(why, whylen, -EINVAL, "DMA_MAP flags 0x%x (only bits 0-1)",
				       m.flags);
		if (m.size == 0 || m.addr + m.size < m.addr || m.offset + m.size < m.offset)
			return why_set(why, whylen, -EINVAL,
				       "DMA_MAP range 0x%llx+0x%llx is empty or wraps",
				       (unsigned long long)m.addr, (unsigned long long)m.size);
		/* pgsizes: 4 KiB pages only */
		if ((m.addr | m.size | m.offset) & 4095)
			return why_set(why, whylen, -EINVAL,
				       "DMA_MAP address/size/offset not 4 KiB aligned");
		if (nfds == 0 && m.offset)
			return why_set(why, whylen, -EINVAL,
				       "DMA_MAP without fd must have offset 0");
		return 0;
	}
	case NVMK_VFU_DMA_UNMAP: {
		struct nvmk_vfu_dma_unmap u;

		if (len != sizeof(u))
			return why_set(why, whylen, -EINVAL,
				       "DMA_UNMAP payload %zu bytes (must be 24)", len);
		memcpy(&u, payload, sizeof(u));
		if (u.flags)
			return why_set(why, whylen, -EINVAL, "DMA_UNMAP flags 0x%x (must be 0)",
				       u.flags);
		if (u.argsz < sizeof(u))
			return why_set(why, whylen, -EINVAL, "DMA_UNMAP argsz %u < 24", u.argsz);
		need = sizeof(u);
		break;
	}
	case NVMK_VFU_DEVICE_GET_INFO:
		need = sizeof(struct nvmk_vfu_device_info);
		goto fixed_argsz;
	case NVMK_VFU_DEVICE_GET_REGION_INFO:
		need = sizeof(struct nvmk_vfu_region_info);
		goto fixed_argsz;
	case NVMK_VFU_DEVICE_GET_IRQ_INFO:
		need = sizeof(struct nvmk_vfu_irq_info);
	fixed_argsz:
		if (len != need)
			return why_set(why, whylen, -EINVAL, "%s payload %zu bytes (must be %zu)",
				       name, len, need);
		/* argsz is the room for the reply: at least the fixed part */
		if (argsz < need)
			return why_set(why, whylen, -EINVAL, "%s argsz %u < %zu", name, argsz,
				       need);
		break;
	case NVMK_VFU_DEVICE_SET_IRQS: {
		struct nvmk_vfu_irq_set s;
		size_t want;

		if (len < sizeof(s))
			return why_set(why, whylen, -EINVAL, "SET_IRQS payload %zu bytes < 20",
				       len);
		memcpy(&s, payload, sizeof(s));
		if (s.argsz != len)
			return why_set(why, whylen, -EINVAL,
				       "SET_IRQS argsz %u differs from the payload size %zu",
				       s.argsz, len);
		if (!one_bit(s.flags, NVMK_VFU_IRQ_DATA_TYPES) ||
		    !one_bit(s.flags, NVMK_VFU_IRQ_ACTIONS) ||
		    (s.flags & ~(NVMK_VFU_IRQ_DATA_TYPES | NVMK_VFU_IRQ_ACTIONS)))
			return why_set(why, whylen, -EINVAL,
				       "SET_IRQS flags 0x%x: need one DATA and one ACTION bit",
				       s.flags);
		if ((uint64_t)s.start + s.count > UINT32_MAX)
			return why_set(why, whylen, -EINVAL, "SET_IRQS start+count overflows");
		want = sizeof(s) + ((s.flags & NVMK_VFU_IRQ_DATA_BOOL) ? s.count : 0);
		if (len != want)
			return why_set(why, whylen, -EINVAL,
				       "SET_IRQS payload %zu bytes (must be %zu)", len, want);
		if (s.flags & NVMK_VFU_IRQ_DATA_EVENTFD) {
			if (nfds != 0 && nfds != s.count)
				return why_set(why, whylen, -EINVAL,
					       "SET_IRQS with %u fds for %u vectors", nfds,
					       s.count);
		} else if (nfds) {
			return why_set(why, whylen, -EINVAL,
				       "SET_IRQS without DATA_EVENTFD carries fds");
		}
		return 0;
	}
	case NVMK_VFU_REGION_READ:
	case NVMK_VFU_REGION_WRITE: {
		struct nvmk_vfu_region_rw r;

		if (len < sizeof(r))
			return why_set(why, whylen, -EINVAL, "%s payload %zu bytes < 16", name,
				       len);
		memcpy(&r, payload, sizeof(r));
		if (r.count == 0 || r.count > max_xfer)
			return why_set(why, whylen, -EINVAL, "%s count %u outside [1, %u]", name,
				       r.count, max_xfer);
		need = sizeof(r) + (cmd == NVMK_VFU_REGION_WRITE ? r.count : 0);
		if (len != need)
			return why_set(why, whylen, -EINVAL,
				       "%s payload %zu bytes (count says %zu)", name, len, need);
		break;
	}
	case NVMK_VFU_DEVICE_RESET:
		if (len)
			return why_set(why, whylen, -EINVAL,
				       "DEVICE_RESET carries %zu payload bytes", len);
		break;
	default:
		return why_set(why, whylen, -ENOSYS, "command %u (%s) is not supported", cmd, name);
	}
	if (nfds)
		return why_set(why, whylen, -EINVAL, "%s carries %u fds (takes none)", name, nfds);
	return 0;
}
