// SPDX-License-Identifier: MIT
/*
 * vfio-user client backing: an NVMe function served by another process
 * (nvmekeep-emu, or any server that follows QEMU docs/interop/vfio-user.rst).
 *
 * - Registers: REGION_READ/WRITE on BAR0, one request at a time.
 * - Doorbells: the sparse-mmap area of BAR0, when offered, is mmap'd and a
 *   doorbell is one release store; the server polls the page. A store of the
 *   value the doorbell already holds would be invisible to a poller (a queue
 *   re-created after deletion starts again from the same tail), so such a
 *   store goes out as a trapped REGION_WRITE instead.
 * - DMA: every block is shared by its memfd (DMA_MAP with an fd, offset =
 *   the block's place in it) at a device address from a bump allocator that
 *   starts at 4 GiB, so IOVA != VA as with a type1 IOMMU.
 * - Interrupts: MSI-X eventfds given with SET_IRQS (chunks of the server's
 *   max_msg_fds).
 * - Server-to-client DMA_READ/WRITE (maps without fd; not made by this
 *   backing, but legal) arriving while a reply is awaited are served from
 *   the map table.
 * - Server gone: the first failed exchange marks the backing dead (one log
 *   line); register reads return all ones, as from a surprise-removed
 *   function, so the driver fails the controller and completes every request
 *   with an error once, through its existing removal path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "nvmekeep/vfio_user.h"
#include "vfio_user_internal.h"

/* The device-string parser decides what is a vfio-user spec (dev_spec.c). */
const char *nvmk_backing_vfio_user_spec_path(const char *spec)
{
	struct nvmk_dev_spec ds;

	if (!spec || nvmk_dev_spec_parse(spec, &ds, NULL, 0) || ds.kind != NVMK_DEV_VFIO_USER)
		return NULL;
	return ds.arg; /* points into @spec */
}

static void mark_gone(struct vfu_backing *v, const char *what, int rc)
{
	if (!atomic_exchange(&v->gone, true))
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "vfio-user server at %s is gone (%s: %s): the controller is failed",
			 v->path, what, strerror(-rc));
}

/* ---- serving the server's DMA_READ/WRITE ---- */

/* Host address of [iova, iova + len) inside one live map, or NULL. */
static uint8_t *map_host(struct vfu_backing *v, uint64_t iova, uint64_t len)
{
	uint8_t *p = NULL;

	pthread_mutex_lock(&v->map_lock);
	for (unsigned i = 0; i < v->nmaps; i++) {
		struct vfu_map *m = &v->maps[i];

		if (m->vaddr && iova >= m->iova && iova - m->iova < m->size &&
		    len <= m->size - (iova - m->iova)) {
			p = m->vaddr + (iova - m->iova);
			break;
		}
	}
	pthread_mutex_unlock(&v->map_lock);
	return p;
}

/* A DMA_WRITE into memory the driver polls: everything but the last 8 bytes
 * first, then (release) the last 8 in one store, so a completion entry's
 * phase tag (its last bytes) is never seen before the rest of it. */
static void dma_write_ordered(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (len >= 8 && !((uintptr_t)(dst + len - 8) & 7)) {
		uint64_t last;

		memcpy(dst, src, len - 8);
		memcpy(&last, src + len - 8, 8);
		__atomic_store_n((uint64_t *)(dst + len - 8), last, __ATOMIC_RELEASE);
	} else if (len) {
		memcpy(dst, src, len - 1);
		__atomic_store_n(dst + len - 1, src[len - 1], __ATOMIC_RELEASE);
	}
}

static void serve_server_cmd(struct vfu_backing *v, const struct nvmk_vfu_hdr *h, const uint8_t *p,
			     size_t len)
{
	struct nvmk_vfu_hdr r = {
	    .msg_id = h->msg_id, .cmd = h->cmd, .flags = NVMK_VFU_F_TYPE_REPLY};
	struct nvmk_vfu_dma_rw rw;
	uint8_t *host;
	int rc;

	if ((h->cmd != NVMK_VFU_DMA_READ && h->cmd != NVMK_VFU_DMA_WRITE) || len < sizeof(rw))
		goto err;
	memcpy(&rw, p, sizeof(rw));
	if (rw.count == 0 || rw.count > VFU_MAX_XFER)
		goto err;
	if (h->cmd == NVMK_VFU_DMA_WRITE && len != sizeof(rw) + rw.count)
		goto err;
	if (h->cmd == NVMK_VFU_DMA_READ && len != sizeof(rw))
		goto err;
	host = map_host(v, rw.addr, rw.count);
	if (!host)
		goto err;
	if (h->cmd == NVMK_VFU_DMA_WRITE) {
		uint8_t out[NVMK_VFU_DMA_WRITE_REPLY_SIZE];
		uint32_t cnt = (uint32_t)rw.count;

		dma_write_ordered(host, p + sizeof(rw), rw.count);
		memcpy(out, &rw.addr, 8);
		memcpy(out + 8, &cnt, 4);
		rc = nvmk_vfu_send(v->sock, &r, out, sizeof(out), NULL, 0);
	} else {
		uint8_t *out = malloc(sizeof(rw) + rw.count);

		if (!out)
			goto err;
		memcpy(out, &rw, sizeof(rw));
		memcpy(out + sizeof(rw), host, rw.count);
		rc = nvmk_vfu_send(v->sock, &r, out, sizeof(rw) + rw.count, NULL, 0);
		free(out);
	}
	if (rc)
		mark_gone(v, "reply to the server", rc);
	return;
err:
	nvmk_warn(v->b.name, NVMK_LOG_NOQ, "server's %s refused (bad size or address)",
		  nvmk_vfu_cmd_name(h->cmd));
	r.flags |= NVMK_VFU_F_ERROR;
	r.error = EINVAL;
	rc = nvmk_vfu_send(v->sock, &r, NULL, 0, NULL, 0);
	if (rc)
		mark_gone(v, "reply to the server", rc);
}

/* ---- one exchange ---- */

/*
 * Send command @cmd and wait for its reply (caller holds v->lock). The reply
 * payload (at most @rmax bytes) goes to @reply, its length to @rlen; a file
 * descriptor that comes with it to @rfd (or is closed when @rfd is NULL).
 * Return: 0, the server's errno negated for an error reply, -ETIMEDOUT,
 * -EPROTO (malformed reply), -ENODEV (server gone).
 */
static int exchange_locked(struct vfu_backing *v, uint16_t cmd, const void *req, size_t reqlen,
			   const int *fds, unsigned nfds, void *reply, size_t rmax, size_t *rlen,
			   int *rfd, unsigned timeout_ms)
{
	struct nvmk_vfu_hdr h = {.cmd = cmd, .flags = NVMK_VFU_F_TYPE_CMD};
	int rc;

	if (rfd)
		*rfd = -1;
	if (atomic_load(&v->gone))
		return -ENODEV;
	h.msg_id = v->msg_id++;
	rc = nvmk_vfu_send(v->sock, &h, req, reqlen, fds, nfds);
	if (rc) {
		mark_gone(v, nvmk_vfu_cmd_name(cmd), rc);
		return -ENODEV;
	}
	for (;;) {
		struct pollfd pf = {v->sock, POLLIN, 0};
		int got[VFU_REPLY_FDS];
		unsigned ngot = 0;
		struct nvmk_vfu_hdr rh;
		size_t len;

		rc = poll(&pf, 1, (int)timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			nvmk_err(v->b.name, NVMK_LOG_NOQ, "%s: no reply from %s within %u ms",
				 nvmk_vfu_cmd_name(cmd), v->path, timeout_ms);
			mark_gone(v, nvmk_vfu_cmd_name(cmd), -ETIMEDOUT);
			return -ETIMEDOUT;
		}
		rc = nvmk_vfu_recv(v->sock, v->buf, VFU_MSG_MAX, got, VFU_REPLY_FDS, &ngot);
		if (rc <= 0) {
			mark_gone(v, nvmk_vfu_cmd_name(cmd), rc ? rc : -ECONNRESET);
			return rc == -E2BIG || rc == -EPROTO ? -EPROTO : -ENODEV;
		}
		memcpy(&rh, v->buf, sizeof(rh));
		len = rh.size - sizeof(rh);
		if ((rh.flags & NVMK_VFU_F_TYPE_MASK) == NVMK_VFU_F_TYPE_CMD) {
			for (unsigned i = 0; i < ngot; i++)
				close(got[i]);
			serve_server_cmd(v, &rh, v->buf + sizeof(rh), len);
			continue;
		}
		if ((rh.flags & NVMK_VFU_F_TYPE_MASK) != NVMK_VFU_F_TYPE_REPLY ||
		    rh.msg_id != h.msg_id || rh.cmd != cmd) {
			for (unsigned i = 0; i < ngot; i++)
				close(got[i]);
			nvmk_err(v->b.name, NVMK_LOG_NOQ,
				 "%s: the server answered with a message that is not its reply "
				 "(id %u cmd %u flags 0x%x)",
				 nvmk_vfu_cmd_name(cmd), rh.msg_id, rh.cmd, rh.flags);
			return -EPROTO;
		}
		if (rh.flags & NVMK_VFU_F_ERROR) {
			for (unsigned i = 0; i < ngot; i++)
				close(got[i]);
			return rh.error ? -(int)rh.error : -EIO;
		}
		if (len > rmax) {
			for (unsigned i = 0; i < ngot; i++)
				close(got[i]);
			nvmk_err(v->b.name, NVMK_LOG_NOQ,
				 "%s: reply of %zu bytes (expected <= %zu)", nvmk_vfu_cmd_name(cmd),
				 len, rmax);
			return -EPROTO;
		}
		if (reply)
			memcpy(reply, v->buf + sizeof(rh), len);
		if (rlen)
			*rlen = len;
		for (unsigned i = 0; i < ngot; i++) {
			if (rfd && i == 0)
				*rfd = got[0];
			else
				close(got[i]);
		}
		return 0;
	}
}

static int exchange(struct vfu_backing *v, uint16_t cmd, const void *req, size_t reqlen,
		    const int *fds, unsigned nfds, void *reply, size_t rmax, size_t *rlen, int *rfd)
{
	int rc;

	pthread_mutex_lock(&v->lock);
	rc = exchange_locked(v, cmd, req, reqlen, fds, nfds, reply, rmax, rlen, rfd, v->timeout_ms);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int vfu_exchange(struct vfu_backing *v, uint16_t cmd, const void *req, size_t reqlen,
		 const int *fds, unsigned nfds, void *reply, size_t rmax, size_t *rlen, int *rfd)
{
	return exchange(v, cmd, req, reqlen, fds, nfds, reply, rmax, rlen, rfd);
}

/* ---- regions ---- */

static int region_read(struct vfu_backing *v, uint32_t region, uint64_t off, void *data,
		       uint32_t count)
{
	struct nvmk_vfu_region_rw rw = {.offset = off, .region = region, .count = count};
	uint8_t out[sizeof(rw) + 64];
	size_t len = 0;
	int rc;

	if (count > 64)
		return -EINVAL;
	rc = exchange(v, NVMK_VFU_REGION_READ, &rw, sizeof(rw), NULL, 0, out, sizeof(out), &len,
		      NULL);
	if (rc)
		return rc;
	if (len != sizeof(rw) + count) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ, "REGION_READ reply of %zu bytes for %u", len,
			 count);
		return -EPROTO;
	}
	memcpy(data, out + sizeof(rw), count);
	return 0;
}

static int region_write(struct vfu_backing *v, uint32_t region, uint64_t off, const void *data,
			uint32_t count)
{
	struct nvmk_vfu_region_rw rw = {.offset = off, .region = region, .count = count};
	uint8_t msg[sizeof(rw) + 64];
	uint8_t out[sizeof(rw)];
	size_t len = 0;

	if (count > 64)
		return -EINVAL;
	memcpy(msg, &rw, sizeof(rw));
	memcpy(msg + sizeof(rw), data, count);
	return exchange(v, NVMK_VFU_REGION_WRITE, msg, sizeof(rw) + count, NULL, 0, out,
			sizeof(out), &len, NULL);
}

static uint32_t vfu_read32(struct nvmk_backing *b, uint32_t off)
{
	uint32_t val;

	if (region_read(to_vfu(b), NVMK_VFU_PCI_BAR0, off, &val, 4))
		return 0xffffffffu;
	return val;
}

static uint64_t vfu_read64(struct nvmk_backing *b, uint32_t off)
{
	uint64_t val;

	if (region_read(to_vfu(b), NVMK_VFU_PCI_BAR0, off, &val, 8))
		return ~0ull;
	return val;
}

static void vfu_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	struct vfu_backing *v = to_vfu(b);

	if (v->db_map && off >= v->db_off && off - v->db_off < v->db_len) {
		uint32_t *slot = (uint32_t *)(v->db_map + (off - v->db_off));

		/* A store of the current value would go unseen by the poller. Only this
		 * process writes the page, so a relaxed load is its own last store. */
		if (__atomic_load_n(slot, __ATOMIC_RELAXED) != val) {
			/* Release: queue entries written before are visible to the
			 * server's poller before the new doorbell value. */
			__atomic_store_n(slot, val, __ATOMIC_RELEASE);
			return;
		}
	}
	if (region_write(v, NVMK_VFU_PCI_BAR0, off, &val, 4) && !atomic_load(&v->gone))
		nvmk_warn(b->name, NVMK_LOG_NOQ, "register write at 0x%x failed", off);
}

static void vfu_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	struct vfu_backing *v = to_vfu(b);

	if (region_write(v, NVMK_VFU_PCI_BAR0, off, &val, 8) && !atomic_load(&v->gone))
		nvmk_warn(b->name, NVMK_LOG_NOQ, "register write at 0x%x failed", off);
}

/* ---- DMA ---- */

int vfu_maps_add(struct vfu_backing *v, const struct vfu_map *m)
{
	if (v->nmaps == v->maps_cap) {
		unsigned cap = v->maps_cap ? v->maps_cap * 2 : 64;
		struct vfu_map *n = realloc(v->maps, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->maps = n;
		v->maps_cap = cap;
	}
	v->maps[v->nmaps++] = *m;
	return 0;
}

static int map_index(struct vfu_backing *v, uint64_t iova)
{
	for (unsigned i = 0; i < v->nmaps; i++)
		if (v->maps[i].iova == iova)
			return (int)i;
	return -1;
}

static int send_dma_map(struct vfu_backing *v, const struct nvmk_dma_buf *buf, uint64_t iova)
{
	struct nvmk_vfu_dma_map m = {.argsz = sizeof(m),
				     .flags = NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK,
				     .offset = buf->mem.fd_offset,
				     .addr = iova,
				     .size = buf->mem.size};

	if (buf->mem.fd < 0) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ, "DMA block without a memfd cannot be shared");
		return -EINVAL;
	}
	return exchange(v, NVMK_VFU_DMA_MAP, &m, sizeof(m), &buf->mem.fd, 1, NULL, 0, NULL, NULL);
}

static int vfu_dma_map(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfu_backing *v = to_vfu(b);
	struct vfu_map m;
	uint64_t iova;
	int rc;

	if (!buf->mem.vaddr || buf->mem.size == 0 || (buf->mem.size & (NVMK_DMA_PAGE_SIZE - 1)))
		return -EINVAL;
	if (v->exported)
		return -EBUSY;
	pthread_mutex_lock(&v->map_lock);
	iova = v->next_iova;
	/* a page of hole after each block: an overrun faults instead of landing
	 * in the next block */
	v->next_iova += buf->mem.size + NVMK_DMA_PAGE_SIZE;
	pthread_mutex_unlock(&v->map_lock);
	rc = send_dma_map(v, buf, iova);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA_MAP of %zu bytes at 0x%" PRIx64 " failed: %s",
			 buf->mem.size, iova, strerror(-rc));
		return rc;
	}
	m = (struct vfu_map){iova, buf->mem.size, buf->mem.vaddr, buf->mem.fd, buf->mem.fd_offset};
	pthread_mutex_lock(&v->map_lock);
	rc = vfu_maps_add(v, &m);
	pthread_mutex_unlock(&v->map_lock);
	if (rc)
		return rc;
	buf->iova = iova;
	buf->page_iova = NULL;
	return 0;
}

static void vfu_dma_unmap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfu_backing *v = to_vfu(b);
	struct nvmk_vfu_dma_unmap u = {
	    .argsz = sizeof(u), .addr = buf->iova, .size = buf->mem.size};
	uint8_t out[sizeof(u)];
	int i, rc;

	pthread_mutex_lock(&v->map_lock);
	i = map_index(v, buf->iova);
	if (i >= 0)
		v->maps[i] = v->maps[--v->nmaps];
	pthread_mutex_unlock(&v->map_lock);
	rc = exchange(v, NVMK_VFU_DMA_UNMAP, &u, sizeof(u), NULL, 0, out, sizeof(out), NULL, NULL);
	if (rc && rc != -ENODEV)
		nvmk_warn(b->name, NVMK_LOG_NOQ, "DMA_UNMAP of 0x%" PRIx64 " failed: %s", buf->iova,
			  strerror(-rc));
}

/*
 * Servicing: @buf->iova was mapped by a predecessor. After a handover the
 * server still has the map (same memfd): take it back without a message.
 * After a reconnect the server dropped the client's maps: map it again at
 * the same address.
 */
static int vfu_dma_remap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct vfu_backing *v = to_vfu(b);
	struct vfu_map m;
	int i, rc;

	if (!buf->mem.vaddr || buf->mem.size == 0)
		return -EINVAL;
	pthread_mutex_lock(&v->map_lock);
	i = map_index(v, buf->iova);
	if (i >= 0) {
		if (v->maps[i].size != buf->mem.size ||
		    v->maps[i].fd_offset != buf->mem.fd_offset) {
			pthread_mutex_unlock(&v->map_lock);
			nvmk_err(b->name, NVMK_LOG_NOQ,
				 "remap of 0x%" PRIx64
				 ": the inherited map has another size/offset",
				 buf->iova);
			return -EINVAL;
		}
		v->maps[i].vaddr = buf->mem.vaddr;
		v->maps[i].fd = buf->mem.fd;
		pthread_mutex_unlock(&v->map_lock);
		buf->page_iova = NULL;
		return 0;
	}
	if (v->next_iova < buf->iova + buf->mem.size + NVMK_DMA_PAGE_SIZE)
		v->next_iova = buf->iova + buf->mem.size + NVMK_DMA_PAGE_SIZE;
	pthread_mutex_unlock(&v->map_lock);
	rc = send_dma_map(v, buf, buf->iova);
	if (rc)
		return rc;
	m = (struct vfu_map){buf->iova, buf->mem.size, buf->mem.vaddr, buf->mem.fd,
			     buf->mem.fd_offset};
	pthread_mutex_lock(&v->map_lock);
	rc = vfu_maps_add(v, &m);
	pthread_mutex_unlock(&v->map_lock);
	buf->page_iova = NULL;
	return rc;
}

/* ---- interrupts ---- */

static unsigned vfu_irq_count(struct nvmk_backing *b)
{
	return to_vfu(b)->irq_max;
}

static int set_irqs(struct vfu_backing *v, uint32_t flags, uint32_t start, uint32_t count,
		    const int *fds, unsigned nfds)
{
	struct nvmk_vfu_irq_set s = {.argsz = sizeof(s),
				     .flags = flags,
				     .index = NVMK_VFU_IRQ_MSIX,
				     .start = start,
				     .count = count};

	return exchange(v, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s), fds, nfds, NULL, 0, NULL, NULL);
}

static void irq_fds_close(struct vfu_backing *v)
{
	for (unsigned i = 0; i < v->nvec; i++)
		if (v->irq_fds[i] >= 0)
			close(v->irq_fds[i]);
	free(v->irq_fds);
	v->irq_fds = NULL;
	v->nvec = 0;
}

static void vfu_irq_disable(struct nvmk_backing *b)
{
	struct vfu_backing *v = to_vfu(b);

	if (!v->nvec)
		return;
	set_irqs(v, NVMK_VFU_IRQ_DATA_NONE | NVMK_VFU_IRQ_ACTION_TRIGGER, 0, 0, NULL, 0);
	irq_fds_close(v);
	v->irqs_inherited = false;
}

static int vfu_irq_enable(struct nvmk_backing *b, unsigned nvec)
{
	struct vfu_backing *v = to_vfu(b);
	unsigned chunk = v->server.max_msg_fds ? v->server.max_msg_fds : 1;
	int rc = 0;

	if (nvec == 0 || nvec > v->irq_max)
		return -EINVAL;
	/* after adopt: the inherited eventfds are still wired on the server */
	if (v->irqs_inherited && nvec <= v->nvec)
		return 0;
	vfu_irq_disable(b);
	v->irq_fds = malloc(nvec * sizeof(int));
	if (!v->irq_fds)
		return -ENOMEM;
	for (unsigned i = 0; i < nvec; i++)
		v->irq_fds[i] = -1;
	v->nvec = nvec;
	for (unsigned i = 0; i < nvec; i++) {
		v->irq_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->irq_fds[i] < 0) {
			rc = -errno;
			goto fail;
		}
	}
	for (unsigned start = 0; start < nvec; start += chunk) {
		unsigned n = nvec - start < chunk ? nvec - start : chunk;

		rc = set_irqs(v, NVMK_VFU_IRQ_DATA_EVENTFD | NVMK_VFU_IRQ_ACTION_TRIGGER, start, n,
			      v->irq_fds + start, n);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	nvmk_err(b->name, NVMK_LOG_NOQ, "enabling %u MSI-X vectors failed: %s", nvec,
		 strerror(-rc));
	vfu_irq_disable(b);
	return rc;
}

static int vfu_irq_fd(struct nvmk_backing *b, unsigned vector)
{
	struct vfu_backing *v = to_vfu(b);

	return vector < v->nvec ? v->irq_fds[vector] : -1;
}

/* ---- lifecycle ---- */

static int vfu_reset(struct nvmk_backing *b)
{
	struct vfu_backing *v = to_vfu(b);
	int rc;

	pthread_mutex_lock(&v->lock);
	/* the server waits up to CAP.TO for CSTS.RDY = 0 */
	rc = exchange_locked(v, NVMK_VFU_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0, NULL, NULL,
			     v->timeout_ms + 60000u);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

void vfu_free(struct vfu_backing *v, bool close_fds)
{
	vfu_resume_free(v);
	if (v->db_map)
		munmap(v->db_map, v->db_len);
	if (close_fds) {
		irq_fds_close(v);
		if (v->sock >= 0)
			close(v->sock);
	}
	free(v->irq_fds);
	free(v->maps);
	free(v->buf);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->map_lock);
	free(v);
}

static void vfu_destroy(struct nvmk_backing *b)
{
	struct vfu_backing *v = to_vfu(b);

	if (v->exported) {
		/* the successor owns the connection now: keep every fd open */
		nvmk_warn(b->name, NVMK_LOG_NOQ, "destroyed after export: fds left open");
		vfu_free(v, false);
		return;
	}
	vfu_free(v, true);
}

static const struct nvmk_backing_ops vfu_ops = {
    .kind = "vfio-user",
    .read32 = vfu_read32,
    .read64 = vfu_read64,
    .write32 = vfu_write32,
    .write64 = vfu_write64,
    .dma_map = vfu_dma_map,
    .dma_unmap = vfu_dma_unmap,
    .dma_remap = vfu_dma_remap,
    .irq_count = vfu_irq_count,
    .irq_enable = vfu_irq_enable,
    .irq_disable = vfu_irq_disable,
    .irq_fd = vfu_irq_fd,
    .reset = vfu_reset,
    .device_view = vfu_device_view,
    .device_view_done = vfu_device_view_done,
    .destroy = vfu_destroy,
};

bool nvmk_backing_is_vfio_user(const struct nvmk_backing *b)
{
	return b && b->ops == &vfu_ops;
}

/* ---- bring-up ---- */

struct vfu_backing *vfu_alloc(const char *path, const struct nvmk_vfio_user_opts *opts)
{
	struct vfu_backing *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->buf = malloc(VFU_MSG_MAX);
	if (!v->buf) {
		free(v);
		return NULL;
	}
	v->sock = -1;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->map_lock, NULL);
	snprintf(v->path, sizeof(v->path), "%s", path);
	snprintf(v->b.name, sizeof(v->b.name), VFU_PREFIX "%s", path);
	v->b.ops = &vfu_ops;
	v->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : VFU_TIMEOUT_MS;
	v->next_iova = VFU_IOVA_BASE;
	nvmk_vfu_caps_default(&v->server);
	return v;
}

static int vfu_connect(struct vfu_backing *v)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int rc;

	if (strlen(v->path) >= sizeof(sa.sun_path)) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ, "socket path longer than %zu bytes",
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (stat(v->path, &st)) {
		rc = -errno;
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "no vfio-user server socket at %s (%s): start one, e.g. "
			 "'nvmekeep-emu --socket %s'",
			 v->path, strerror(-rc), v->path);
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "%s is not a socket: give the server's socket path", v->path);
		return -ENOTSOCK;
	}
	strcpy(sa.sun_path, v->path);
	v->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v->sock < 0)
		return -errno;
	if (connect(v->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		nvmk_err(
		    v->b.name, NVMK_LOG_NOQ, "cannot connect to %s: %s%s", v->path, strerror(-rc),
		    rc == -ECONNREFUSED ? " (nobody listens: is the server still running?)" : "");
		return rc;
	}
	return 0;
}

static int vfu_hello(struct vfu_backing *v)
{
	struct nvmk_vfu_caps ours = {VFU_REPLY_FDS, VFU_MAX_XFER, NVMK_VFU_DEFAULT_MAX_DMA_MAPS,
				     4096};
	uint8_t req[512], rep[NVMK_VFU_JSON_MAX + 8];
	struct nvmk_vfu_version ver;
	size_t len = 0;
	char why[160];
	int n, rc;

	n = nvmk_vfu_version_format(NVMK_VFU_MAJOR, NVMK_VFU_MINOR, &ours, req, sizeof(req));
	if (n < 0)
		return n;
	pthread_mutex_lock(&v->lock);
	rc = exchange_locked(v, NVMK_VFU_VERSION, req, (size_t)n, NULL, 0, rep, sizeof(rep), &len,
			     NULL, VFU_HELLO_TIMEOUT_MS);
	pthread_mutex_unlock(&v->lock);
	if (rc == -EBUSY) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "the server at %s is in use by another client (one at a time): stop "
			 "that one first",
			 v->path);
		return -EBUSY;
	}
	if (rc == -ENOTSUP || rc == -EPROTONOSUPPORT) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "the server refused protocol version %u.%u: version mismatch (update "
			 "the server or this client)",
			 NVMK_VFU_MAJOR, NVMK_VFU_MINOR);
		return -EPROTONOSUPPORT;
	}
	if (rc == -ETIMEDOUT || rc == -EPROTO || rc == -ENODEV) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "%s is not a vfio-user server (no valid VERSION reply: %s)", v->path,
			 strerror(-rc));
		return -EPROTO;
	}
	if (rc)
		return rc;
	rc = nvmk_vfu_version_parse(rep, len, &ver, &v->server, why, sizeof(why));
	if (rc) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "%s is not a vfio-user server (VERSION reply: %s)", v->path, why);
		return -EPROTO;
	}
	if (ver.major != NVMK_VFU_MAJOR || ver.minor > NVMK_VFU_MINOR) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "version mismatch: this client speaks vfio-user %u.%u, the server "
			 "answered %u.%u",
			 NVMK_VFU_MAJOR, NVMK_VFU_MINOR, ver.major, ver.minor);
		return -EPROTONOSUPPORT;
	}
	if (v->server.max_data_xfer_size > NVMK_VFU_LIMIT_MAX_XFER)
		v->server.max_data_xfer_size = NVMK_VFU_LIMIT_MAX_XFER;
	return 0;
}

int vfu_probe(struct vfu_backing *v, const struct nvmk_vfio_user_opts *opts)
{
	struct nvmk_vfu_device_info di = {.argsz = sizeof(di)};
	struct nvmk_vfu_region_info ri = {.argsz = 256, .index = NVMK_VFU_PCI_BAR0};
	struct nvmk_vfu_irq_info ii = {.argsz = sizeof(ii), .index = NVMK_VFU_IRQ_MSIX};
	uint8_t rep[256];
	uint32_t id, cls;
	size_t len = 0;
	int fd = -1, rc;

	rc = exchange(v, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, &di, sizeof(di), &len,
		      NULL);
	if (rc || len != sizeof(di))
		return rc ? rc : -EPROTO;
	if (!(di.flags & NVMK_VFU_DEV_FLAG_PCI) || di.num_regions <= NVMK_VFU_PCI_CONFIG ||
	    di.num_irqs <= NVMK_VFU_IRQ_MSIX) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "not a PCI function with config space and MSI-X (flags 0x%x, %u regions, "
			 "%u irq types)",
			 di.flags, di.num_regions, di.num_irqs);
		return -ENODEV;
	}
	rc = region_read(v, NVMK_VFU_PCI_CONFIG, 0, &id, 4);
	if (!rc)
		rc = region_read(v, NVMK_VFU_PCI_CONFIG, 8, &cls, 4);
	if (rc)
		return rc;
	if ((cls >> 8) != NVME_CLASS) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "function %04x:%04x has class %06x, not an NVMe controller (010802)",
			 id & 0xffff, id >> 16, cls >> 8);
		return -ENODEV;
	}

	rc = exchange(v, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, rep,
		      sizeof(rep), &len, &fd);
	if (rc || len < sizeof(ri))
		return rc ? rc : -EPROTO;
	memcpy(&ri, rep, sizeof(ri));
	if (ri.size < NVME_REG_DBS + 8) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ, "BAR0 of %" PRIu64 " bytes is too small",
			 ri.size);
		if (fd >= 0)
			close(fd);
		return -ENODEV;
	}
	v->bar0_region_size = ri.size;
	/* walk the capability chain inside the reply for the sparse-mmap area
	 * that holds the doorbells (offsets relative to the region info) */
	if (fd >= 0 && !(opts && opts->no_doorbell_mmap) &&
	    (ri.flags & NVMK_VFU_REGION_FLAG_MMAP) && (ri.flags & NVMK_VFU_REGION_FLAG_CAPS)) {
		uint32_t off = ri.cap_offset;

		for (unsigned hops = 0; off && hops < 16; hops++) {
			struct nvmk_vfu_cap_sparse cap;

			if (off < sizeof(ri) || off > len || len - off < sizeof(cap.hdr))
				break;
			memcpy(&cap, rep + off,
			       len - off < sizeof(cap) ? sizeof(cap.hdr) : sizeof(cap));
			if (cap.hdr.id == NVMK_VFU_CAP_SPARSE_MMAP && len - off >= sizeof(cap)) {
				for (uint32_t a = 0; a < cap.nr_areas; a++) {
					struct nvmk_vfu_sparse_area ar;
					size_t at = off + sizeof(cap) + (size_t)a * sizeof(ar);

					if (at + sizeof(ar) > len)
						break;
					memcpy(&ar, rep + at, sizeof(ar));
					if (ar.offset <= NVME_REG_DBS && ar.size > 0 &&
					    ar.offset + ar.size > NVME_REG_DBS &&
					    ar.offset + ar.size <= ri.size && !(ar.offset & 4095)) {
						void *p = mmap(NULL, ar.size,
							       PROT_READ | PROT_WRITE, MAP_SHARED,
							       fd, (off_t)(ri.offset + ar.offset));

						if (p != MAP_FAILED) {
							v->db_map = p;
							v->db_off = ar.offset;
							v->db_len = ar.size;
						}
						break;
					}
				}
				break;
			}
			off = cap.hdr.next;
		}
	}
	if (fd >= 0)
		close(fd);
	if (!v->db_map)
		nvmk_info(v->b.name, NVMK_LOG_NOQ, "doorbells are trapped (REGION_WRITE per ring)");
	v->b.bar0 = NULL;
	v->b.bar0_size = ri.size;

	rc = exchange(v, NVMK_VFU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &ii, sizeof(ii),
		      &len, NULL);
	if (rc || len != sizeof(ii))
		return rc ? rc : -EPROTO;
	if (!(ii.flags & NVMK_VFU_IRQ_INFO_EVENTFD) || ii.count == 0) {
		nvmk_err(v->b.name, NVMK_LOG_NOQ,
			 "MSI-X without eventfd signalling is not supported");
		return -ENODEV;
	}
	v->irq_max = ii.count;
	return 0;
}

/* Memory space + bus master in the Command register (PCI 3.0 6.2.2). */
static int vfu_enable_bus_master(struct vfu_backing *v)
{
	uint16_t cmd;
	int rc = region_read(v, NVMK_VFU_PCI_CONFIG, 4, &cmd, 2);

	if (rc)
		return rc;
	cmd |= 0x0006;
	return region_write(v, NVMK_VFU_PCI_CONFIG, 4, &cmd, 2);
}

int nvmk_backing_vfio_user_open(const char *path, const struct nvmk_vfio_user_opts *opts,
				struct nvmk_backing **out)
{
	struct vfu_backing *v;
	int rc;

	if (!path || !*path || !out)
		return -EINVAL;
	v = vfu_alloc(path, opts);
	if (!v)
		return -ENOMEM;
	rc = vfu_connect(v);
	if (!rc)
		rc = vfu_hello(v);
	if (!rc)
		rc = vfu_probe(v, opts);
	if (!rc)
		rc = vfu_enable_bus_master(v);
	if (!rc && !(opts && opts->no_reset)) {
		uint32_t cc = vfu_read32(&v->b, NVME_REG_CC);
		bool adopt = false;

		/* A controller left enabled (a --persist server after its client
		 * went without handing over state): its queues and held commands
		 * point into memory that went with that client. Either the server
		 * hands that memory back (the client's private pool) with the
		 * device's view of the queues, and the controller is adopted, or
		 * only a reset is correct, done before any DMA_MAP
		 * (docs/vfio-user.md). */
		if (cc != 0xffffffffu && (cc & NVME_CC_EN)) {
			char why[200] = "adoption disabled by the caller (no_adopt)";
			int arc = (opts && opts->no_adopt) ? -ECANCELED
							   : vfu_resume_try(v, why, sizeof(why));

			if (arc == -ENODEV && atomic_load(&v->gone))
				rc = arc;
			else if (!arc)
				adopt = true;
			else
				nvmk_info(
				    v->b.name, NVMK_LOG_NOQ,
				    "the controller was left enabled by a previous client "
				    "(CC 0x%08x) and no saved state is restored; it cannot be "
				    "adopted (%s): resetting it",
				    cc, why);
			if (adopt)
				nvmk_info(
				    v->b.name, NVMK_LOG_NOQ,
				    "the controller was left enabled by a previous client "
				    "(CC 0x%08x): the server handed back its private pool and "
				    "queue state; adopting it without a reset",
				    cc);
		}
		if (!rc && !adopt)
			rc = vfu_reset(&v->b);
	}
	if (rc) {
		if (rc == -ENODEV && atomic_load(&v->gone))
			rc = -ECONNRESET;
		vfu_free(v, true);
		return rc;
	}
	nvmk_info(v->b.name, NVMK_LOG_NOQ, "attached: BAR0 %" PRIu64 " bytes, %u MSI-X vectors, %s",
		  v->bar0_region_size, v->irq_max,
		  v->db_map ? "doorbells mmap'd" : "doorbells trapped");
	*out = &v->b;
	return 0;
}
