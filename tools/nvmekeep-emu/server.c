// SPDX-License-Identifier: MIT
/*
 * The vfio-user connection: one client at a time, its commands handled in
 * the order received ("Command Concurrency"), each validated before use
 * (nvmk_vfu_cmd_check) and answered with an error reply when bad.
 *
 * Disconnect ("Client Disconnection"): the client's DMA maps and eventfds
 * are dropped. With --persist the controller keeps its state and the
 * emulator's accesses to memory wait for the next client's maps (quiesce);
 * without it the function is reset, as a real device would be when its
 * driver's process dies and the function is released.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "server.h"

#define CLIENT_RCV_TIMEOUT_S 5

static int send_reply(struct srv *s, const struct nvmk_vfu_hdr *req, const void *p, size_t len,
		      const int *fds, unsigned nfds)
{
	struct nvmk_vfu_hdr h = {
	    .msg_id = req->msg_id, .cmd = req->cmd, .flags = NVMK_VFU_F_TYPE_REPLY};
	int fd = atomic_load(&s->client_fd), rc;

	if (req->flags & NVMK_VFU_F_NO_REPLY)
		return 0;
	pthread_mutex_lock(&s->send_lock);
	rc = nvmk_vfu_send(fd, &h, p, len, fds, nfds);
	pthread_mutex_unlock(&s->send_lock);
	return rc;
}

/* "If an error occurs, the reply message must only include the reply header." */
static int send_error(struct srv *s, const struct nvmk_vfu_hdr *req, int err, const char *why)
{
	struct nvmk_vfu_hdr h = {.msg_id = req->msg_id,
				 .cmd = req->cmd,
				 .flags = NVMK_VFU_F_TYPE_REPLY | NVMK_VFU_F_ERROR,
				 .error = (uint32_t)err};
	int fd = atomic_load(&s->client_fd), rc;

	atomic_fetch_add(&s->stats.protocol_errors, 1);
	nvmk_warn(s->name, NVMK_LOG_NOQ, "%s (id %u) refused: %s", nvmk_vfu_cmd_name(req->cmd),
		  req->msg_id, why ? why : strerror(err));
	if (req->flags & NVMK_VFU_F_NO_REPLY)
		return 0;
	pthread_mutex_lock(&s->send_lock);
	rc = nvmk_vfu_send(fd, &h, NULL, 0, NULL, 0);
	pthread_mutex_unlock(&s->send_lock);
	return rc;
}

/* ---- VERSION ---- */

static int do_version(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *p, size_t len)
{
	struct nvmk_vfu_caps ours = {SRV_MAX_MSG_FDS, SRV_MAX_XFER, SRV_MAX_DMA_MAPS, 4096};
	struct nvmk_vfu_version v;
	uint8_t out[512];
	char why[160];
	int n, rc;

	if (s->versioned)
		return send_error(s, h, EINVAL, "VERSION sent twice");
	rc = nvmk_vfu_version_parse(p, len, &v, &s->peer, why, sizeof(why));
	if (rc)
		return send_error(s, h, EINVAL, why);
	if (v.major != NVMK_VFU_MAJOR) {
		snprintf(why, sizeof(why), "protocol %u.%u proposed, this server speaks %u.%u",
			 v.major, v.minor, NVMK_VFU_MAJOR, NVMK_VFU_MINOR);
		send_error(s, h, ENOTSUP, why);
		return -EPROTO; /* "closes the connection" */
	}
	if (s->peer.max_data_xfer_size > NVMK_VFU_LIMIT_MAX_XFER)
		s->peer.max_data_xfer_size = NVMK_VFU_LIMIT_MAX_XFER;
	n = nvmk_vfu_version_format(NVMK_VFU_MAJOR,
				    v.minor < NVMK_VFU_MINOR ? v.minor : NVMK_VFU_MINOR, &ours, out,
				    sizeof(out));
	if (n < 0)
		return send_error(s, h, EINVAL, "reply does not fit");
	s->versioned = true;
	nvmk_info(s->name, NVMK_LOG_NOQ, "client speaks vfio-user %u.%u (max_data_xfer_size %u)",
		  v.major, v.minor, s->peer.max_data_xfer_size);
	return send_reply(s, h, out, (size_t)n, NULL, 0);
}

/* ---- regions ---- */

static int do_region_info(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *p)
{
	struct nvmk_vfu_region_info ri;
	uint8_t out[sizeof(ri) + sizeof(struct nvmk_vfu_cap_sparse) +
		    sizeof(struct nvmk_vfu_sparse_area)];
	uint32_t room;
	size_t len = sizeof(ri);
	int fd = -1;

	memcpy(&ri, p, sizeof(ri));
	room = ri.argsz;
	if (ri.index == NVMK_VFU_REGION_RESUME || ri.index == NVMK_VFU_REGION_MEMORY) {
		uint8_t big[128];
		int rc = srv_resume_region_info(s, ri.index, room, big, sizeof(big), &len, &fd);

		if (rc)
			return send_error(s, h, -rc, "the resume state could not be taken");
		return send_reply(s, h, big, len, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
	}
	if (ri.index >= NVMK_VFU_NUM_REGIONS_EXT)
		return send_error(s, h, EINVAL,
				  "region index beyond the 9 PCI regions and the 2 vendor ones");
	ri.argsz = sizeof(ri);
	ri.flags = 0;
	ri.cap_offset = 0;
	ri.size = 0;
	ri.offset = 0;
	switch (ri.index) {
	case NVMK_VFU_PCI_CONFIG:
		ri.size = SRV_CFG_SIZE;
		ri.flags = NVMK_VFU_REGION_FLAG_READ | NVMK_VFU_REGION_FLAG_WRITE;
		break;
	case NVMK_VFU_PCI_BAR4:
		ri.size = s->bar4_size;
		ri.flags = NVMK_VFU_REGION_FLAG_READ | NVMK_VFU_REGION_FLAG_WRITE;
		break;
	case NVMK_VFU_PCI_BAR0: {
		struct nvmk_vfu_cap_sparse cap = {
		    .hdr = {.id = NVMK_VFU_CAP_SPARSE_MMAP, .version = 1, .next = 0},
		    .nr_areas = 1};
		struct nvmk_vfu_sparse_area area = {
		    .offset = NVME_REG_DBS,
		    .size = ((s->bar0_size + 4095) & ~(size_t)4095) - NVME_REG_DBS};

		ri.size = s->bar0_region;
		ri.flags = NVMK_VFU_REGION_FLAG_READ | NVMK_VFU_REGION_FLAG_WRITE |
			   NVMK_VFU_REGION_FLAG_MMAP | NVMK_VFU_REGION_FLAG_CAPS;
		ri.argsz = sizeof(out);
		fd = s->db_fd;
		if (room >= sizeof(out)) {
			ri.cap_offset = sizeof(ri);
			memcpy(out + sizeof(ri), &cap, sizeof(cap));
			memcpy(out + sizeof(ri) + sizeof(cap), &area, sizeof(area));
			len = sizeof(out);
		}
		break;
	}
	default:
		break; /* BAR1-3 (BAR0/4 are 64-bit), BAR5, ROM, VGA: absent */
	}
	memcpy(out, &ri, sizeof(ri));
	return send_reply(s, h, out, len, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

/* BAR0: 4- or 8-byte aligned accesses only (Base 2.0 3.1: registers are
 * accessed in their native width). */
static int bar0_access(struct srv *s, uint64_t off, uint32_t count, uint8_t *data, bool write)
{
	if (off >= s->bar0_region || count > s->bar0_region - off)
		return -EINVAL;
	if ((count != 4 && count != 8) || (off & (count - 1)))
		return -EINVAL;
	if (off + count > s->bar0_size) {
		if (!write)
			memset(data, 0, count);
		return 0; /* the power-of-two padding: reads 0, writes ignored */
	}
	if (!write) {
		if (count == 4) {
			uint32_t v = nvmk_emu_reg_read32(s->emu, (uint32_t)off);

			memcpy(data, &v, 4);
		} else {
			uint64_t v = nvmk_emu_reg_read64(s->emu, (uint32_t)off);

			memcpy(data, &v, 8);
		}
		return 0;
	}
	if (off >= NVME_REG_DBS) {
		uint32_t v;

		memcpy(&v, data, 4);
		srv_db_store(s, (uint32_t)off, v);
		if (count == 8) {
			memcpy(&v, data + 4, 4);
			srv_db_store(s, (uint32_t)off + 4, v);
		}
		return 0;
	}
	/* a register write: this client drives the controller now (the window
	 * closes after the write, so a reset is requested before a held access
	 * fails) */
	if (off == NVME_REG_CC && count == 4) {
		uint32_t old = nvmk_emu_reg_read32(s->emu, NVME_REG_CC), v;

		memcpy(&v, data, 4);
		if (!(old & NVME_CC_EN) && (v & NVME_CC_EN))
			atomic_fetch_add(&s->stats.cc_enables, 1);
		/* (the emulator zeroes the doorbell page on this reset itself) */
		if ((old & NVME_CC_EN) && !(v & NVME_CC_EN))
			srv_rpc_fail(s);
		nvmk_emu_reg_write32(s->emu, NVME_REG_CC, v);
	} else if (count == 4) {
		uint32_t v;

		memcpy(&v, data, 4);
		nvmk_emu_reg_write32(s->emu, (uint32_t)off, v);
	} else {
		uint64_t v;

		memcpy(&v, data, 8);
		nvmk_emu_reg_write64(s->emu, (uint32_t)off, v);
	}
	srv_resume_window(s, false);
	return 0;
}

static int do_region_rw(struct srv *s, const struct nvmk_vfu_hdr *h, uint8_t *p, bool write)
{
	struct nvmk_vfu_region_rw rw;
	uint8_t *data = p + sizeof(rw);
	int rc;

	memcpy(&rw, p, sizeof(rw));
	switch (rw.region) {
	case NVMK_VFU_PCI_BAR0:
		rc = bar0_access(s, rw.offset, rw.count, data, write);
		break;
	case NVMK_VFU_PCI_BAR4:
		rc = write ? srv_bar4_write(s, rw.offset, rw.count, data)
			   : srv_bar4_read(s, rw.offset, rw.count, data);
		break;
	case NVMK_VFU_PCI_CONFIG:
		rc = write ? srv_cfg_write(s, rw.offset, rw.count, data)
			   : srv_cfg_read(s, rw.offset, rw.count, data);
		break;
	case NVMK_VFU_REGION_RESUME:
	case NVMK_VFU_REGION_MEMORY: {
		char why[160];

		rc = srv_resume_region_rw(s, rw.region, rw.offset, rw.count, data, write, why,
					  sizeof(why));
		if (rc)
			return send_error(s, h, -rc, why);
		break;
	}
	default:
		rc = -EINVAL;
	}
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why),
			 "%u bytes at 0x%llx of region %u: out of bounds or width", rw.count,
			 (unsigned long long)rw.offset, rw.region);
		return send_error(s, h, -rc, why);
	}
	/* read reply: head + data; write reply: head only */
	return send_reply(s, h, p, sizeof(rw) + (write ? 0 : rw.count), NULL, 0);
}

/* ---- interrupts ---- */

void srv_irqs_drop(struct srv *s)
{
	for (unsigned v = 0; v < s->nvec; v++) {
		if (s->irq_fds[v] >= 0) {
			nvmk_emu_set_irq_fd(s->emu, (uint16_t)v, -1);
			close(s->irq_fds[v]);
			s->irq_fds[v] = -1;
		}
	}
}

static int do_irq_info(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *p)
{
	struct nvmk_vfu_irq_info ii;

	memcpy(&ii, p, sizeof(ii));
	if (ii.index >= NVMK_VFU_NUM_IRQS)
		return send_error(s, h, EINVAL, "IRQ index beyond the 5 PCI interrupt types");
	ii.argsz = sizeof(ii);
	ii.flags = 0;
	ii.count = 0;
	if (ii.index == NVMK_VFU_IRQ_MSIX) {
		ii.flags = NVMK_VFU_IRQ_INFO_EVENTFD | NVMK_VFU_IRQ_INFO_MASKABLE;
		ii.count = s->nvec;
	}
	return send_reply(s, h, &ii, sizeof(ii), NULL, 0);
}

static int do_set_irqs(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *p, int *fds,
		       unsigned nfds)
{
	struct nvmk_vfu_irq_set is;
	uint32_t data, action;

	memcpy(&is, p, sizeof(is));
	data = is.flags & NVMK_VFU_IRQ_DATA_TYPES;
	action = is.flags & NVMK_VFU_IRQ_ACTIONS;
	if (is.index != NVMK_VFU_IRQ_MSIX) {
		if (is.count == 0)
			return send_reply(s, h, NULL, 0, NULL, 0); /* nothing to set */
		return send_error(s, h, EINVAL, "only MSI-X (index 2) has vectors");
	}
	/* "a count (and start) of 0, with DATA_NONE disables all interrupts" */
	if (data == NVMK_VFU_IRQ_DATA_NONE && action == NVMK_VFU_IRQ_ACTION_TRIGGER &&
	    is.count == 0 && is.start == 0) {
		srv_irqs_drop(s);
		return send_reply(s, h, NULL, 0, NULL, 0);
	}
	if (is.count == 0 || is.start >= s->nvec || is.count > s->nvec - is.start)
		return send_error(s, h, EINVAL, "vector range beyond the MSI-X table");
	if (data == NVMK_VFU_IRQ_DATA_EVENTFD) {
		if (action != NVMK_VFU_IRQ_ACTION_TRIGGER)
			return send_error(s, h, ENOTSUP, "mask/unmask eventfds are not supported");
		for (uint32_t i = 0; i < is.count; i++) {
			unsigned v = is.start + i;

			nvmk_emu_set_irq_fd(s->emu, (uint16_t)v, nfds ? fds[i] : -1);
			if (s->irq_fds[v] >= 0)
				close(s->irq_fds[v]);
			s->irq_fds[v] = nfds ? fds[i] : -1;
			if (nfds)
				fds[i] = -1; /* owned now */
		}
		return send_reply(s, h, NULL, 0, NULL, 0);
	}
	for (uint32_t i = 0; i < is.count; i++) {
		unsigned v = is.start + i;

		if (data == NVMK_VFU_IRQ_DATA_BOOL && !p[sizeof(is) + i])
			continue;
		if (action == NVMK_VFU_IRQ_ACTION_TRIGGER) {
			if (s->irq_fds[v] >= 0) {
				uint64_t one = 1;

				if (write(s->irq_fds[v], &one, sizeof(one)) < 0)
					nvmk_warn(s->name, NVMK_LOG_NOQ, "vector %u trigger: %d", v,
						  -errno);
			}
		} else {
			nvmk_emu_irq_mask(s->emu, (uint16_t)v, action == NVMK_VFU_IRQ_ACTION_MASK);
		}
	}
	return send_reply(s, h, NULL, 0, NULL, 0);
}

/* ---- reset ---- */

void srv_function_reset(struct srv *s)
{
	uint64_t cap = nvmk_emu_reg_read64(s->emu, NVME_REG_CAP);
	unsigned to_ms = (NVME_CAP_TO(cap) ? NVME_CAP_TO(cap) : 1) * 500u;
	struct timespec ms = {0, 1000000};

	atomic_fetch_add(&s->stats.function_resets, 1);
	nvmk_emu_reg_write32(s->emu, NVME_REG_CC, 0);
	srv_resume_window(s, false);
	srv_rpc_fail(s);
	for (unsigned i = 0; i < to_ms; i++) {
		uint32_t csts = nvmk_emu_reg_read32(s->emu, NVME_REG_CSTS);

		if (csts == 0xffffffffu || !(csts & NVME_CSTS_RDY))
			break;
		srv_rpc_fail(s); /* a DMA request of the worker may have started since */
		nanosleep(&ms, NULL);
	}
	nvmk_info(s->name, NVMK_LOG_NOQ, "function reset");
}

/* ---- dispatch ---- */

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Handle one received message. Return 0 to go on, < 0 to drop the client. */
static int handle(struct srv *s, uint8_t *msg, int *fds, unsigned nfds)
{
	struct nvmk_vfu_hdr h;
	uint8_t *p = msg + sizeof(h);
	size_t len;
	char why[160];
	int rc;

	memcpy(&h, msg, sizeof(h));
	len = h.size - sizeof(h);
	if ((h.flags & NVMK_VFU_F_TYPE_MASK) == NVMK_VFU_F_TYPE_REPLY) {
		close_fds(fds, nfds);
		if (h.cmd != NVMK_VFU_DMA_READ && h.cmd != NVMK_VFU_DMA_WRITE) {
			nvmk_warn(s->name, NVMK_LOG_NOQ, "unexpected reply to %s: ignored",
				  nvmk_vfu_cmd_name(h.cmd));
			return 0;
		}
		srv_rpc_reply(s, &h, p, len);
		return 0;
	}
	if ((h.flags & NVMK_VFU_F_TYPE_MASK) != NVMK_VFU_F_TYPE_CMD) {
		close_fds(fds, nfds);
		return send_error(s, &h, EINVAL, "message type is neither command nor reply");
	}
	rc = nvmk_vfu_cmd_check(h.cmd, p, len, nfds, SRV_MAX_XFER, why, sizeof(why));
	if (rc) {
		close_fds(fds, nfds);
		return send_error(s, &h, -rc, why);
	}
	if (!s->versioned && h.cmd != NVMK_VFU_VERSION) {
		close_fds(fds, nfds);
		return send_error(s, &h, EINVAL, "VERSION must be the first message");
	}
	switch (h.cmd) {
	case NVMK_VFU_VERSION:
		return do_version(s, &h, p, len);
	case NVMK_VFU_DMA_MAP: {
		struct nvmk_vfu_dma_map m;

		memcpy(&m, p, sizeof(m));
		rc = srv_dma_map(s, &m, nfds ? fds[0] : -1);
		close_fds(fds, nfds);
		if (rc)
			return send_error(s, &h, -rc, NULL);
		return send_reply(s, &h, NULL, 0, NULL, 0);
	}
	case NVMK_VFU_DMA_UNMAP: {
		struct nvmk_vfu_dma_unmap u;

		memcpy(&u, p, sizeof(u));
		rc = srv_dma_unmap(s, u.addr, u.size);
		if (rc)
			return send_error(s, &h, -rc, "no map matches address and size exactly");
		/* "The server responds with the original DMA entry in the request." */
		return send_reply(s, &h, p, sizeof(u), NULL, 0);
	}
	case NVMK_VFU_DEVICE_GET_INFO: {
		struct nvmk_vfu_device_info di = {.argsz = sizeof(di),
						  .flags = NVMK_VFU_DEV_FLAG_RESET |
							   NVMK_VFU_DEV_FLAG_PCI,
						  .num_regions = NVMK_VFU_NUM_REGIONS_EXT,
						  .num_irqs = NVMK_VFU_NUM_IRQS};

		return send_reply(s, &h, &di, sizeof(di), NULL, 0);
	}
	case NVMK_VFU_DEVICE_GET_REGION_INFO:
		return do_region_info(s, &h, p);
	case NVMK_VFU_DEVICE_GET_IRQ_INFO:
		return do_irq_info(s, &h, p);
	case NVMK_VFU_DEVICE_SET_IRQS:
		rc = do_set_irqs(s, &h, p, fds, nfds);
		close_fds(fds, nfds);
		return rc;
	case NVMK_VFU_REGION_READ:
	case NVMK_VFU_REGION_WRITE:
		return do_region_rw(s, &h, p, h.cmd == NVMK_VFU_REGION_WRITE);
	case NVMK_VFU_DEVICE_RESET:
		srv_function_reset(s);
		return send_reply(s, &h, NULL, 0, NULL, 0);
	default:
		close_fds(fds, nfds);
		return send_error(s, &h, ENOSYS, NULL);
	}
}

static void client_gone(struct srv *s)
{
	int fd = atomic_exchange(&s->client_fd, -1);

	if (fd >= 0)
		close(fd);
	srv_rpc_fail(s);
	srv_irqs_drop(s);
	if (s->persist) {
		/* quiesce first: accesses from now on wait for the next client */
		srv_resume_window(s, true);
		srv_dma_remember_gone(s);
		if (s->keep_memory)
			srv_resume_hold(s); /* paused, maps kept for the next client (resume.c) */
		else
			srv_dma_unmap_all(s);
		nvmk_info(s->name, NVMK_LOG_NOQ,
			  "client disconnected: controller state kept (--persist)");
	} else {
		srv_dma_unmap_all(s);
		srv_function_reset(s);
		nvmk_info(s->name, NVMK_LOG_NOQ, "client disconnected: controller reset");
	}
	s->versioned = false;
	s->client_pid = 0;
}

static void client_accept(struct srv *s)
{
	struct timeval tv = {CLIENT_RCV_TIMEOUT_S, 0};
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* a peer that stops in the middle of a message is dropped, not waited for */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	s->client_pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 ? cred.pid : 0;
	atomic_store(&s->client_fd, fd);
	atomic_fetch_add(&s->stats.connections, 1);
	nvmk_info(s->name, NVMK_LOG_NOQ, "client connected (pid %d)", (int)s->client_pid);
}

/* A second client while one is attached: answer its first message (VERSION)
 * with EBUSY so it can say why, and hang up. */
static void refuse_busy(struct srv *s, uint8_t *buf)
{
	struct timeval tv = {1, 0};
	int fds[SRV_MAX_MSG_FDS];
	unsigned nfds = 0;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (nvmk_vfu_recv(fd, buf, SRV_MSG_MAX, fds, SRV_MAX_MSG_FDS, &nfds) > 0) {
		struct nvmk_vfu_hdr h, r;

		memcpy(&h, buf, sizeof(h));
		r = (struct nvmk_vfu_hdr){.msg_id = h.msg_id,
					  .cmd = h.cmd,
					  .flags = NVMK_VFU_F_TYPE_REPLY | NVMK_VFU_F_ERROR,
					  .error = EBUSY};
		nvmk_vfu_send(fd, &r, NULL, 0, NULL, 0);
		close_fds(fds, nfds);
	}
	nvmk_warn(s->name, NVMK_LOG_NOQ, "second client refused: pid %d is attached",
		  (int)s->client_pid);
	close(fd);
}

int srv_serve(struct srv *s)
{
	uint8_t *buf = malloc(SRV_MSG_MAX);
	int fds[SRV_MAX_MSG_FDS];
	sigset_t set;
	int sfd;

	if (!buf)
		return -ENOMEM;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		free(buf);
		return -errno;
	}
	while (!atomic_load(&s->stopping)) {
		int cfd = atomic_load(&s->client_fd);
		struct pollfd pf[4] = {{cfd >= 0 ? cfd : s->listen_fd, POLLIN, 0},
				       {sfd, POLLIN, 0},
				       {cfd >= 0 ? s->listen_fd : -1, POLLIN, 0},
				       {s->stop_fd, POLLIN, 0}};
		unsigned nfds = 0;
		int n;

		if (poll(pf, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[3].revents)
			break;
		if (pf[1].revents) {
			nvmk_info(s->name, NVMK_LOG_NOQ, "signal: stopping");
			break;
		}
		/* The attached client first: a client that just closed and a new one
		 * that just connected are both pending; the new one then gets the
		 * device on the next round, not a refusal. */
		if (pf[2].revents && !pf[0].revents)
			refuse_busy(s, buf);
		if (!pf[0].revents)
			continue;
		if (cfd < 0) {
			client_accept(s);
			continue;
		}
		n = nvmk_vfu_recv(cfd, buf, SRV_MSG_MAX, fds, SRV_MAX_MSG_FDS, &nfds);
		if (n == -EMFILE) {
			/* read whole, fds closed: the stream is still in step */
			send_error(s, (struct nvmk_vfu_hdr *)buf, EINVAL,
				   "more file descriptors than max_msg_fds");
			continue;
		}
		if (n == -E2BIG) {
			char why[96];

			snprintf(why, sizeof(why),
				 "message of %u bytes (at most %zu): disconnecting",
				 ((struct nvmk_vfu_hdr *)buf)->size, (size_t)SRV_MSG_MAX);
			send_error(s, (struct nvmk_vfu_hdr *)buf, EMSGSIZE, why);
		}
		if (n <= 0) {
			if (n < 0 && n != -E2BIG)
				nvmk_warn(s->name, NVMK_LOG_NOQ,
					  "receive failed (%s): disconnecting", strerror(-n));
			client_gone(s);
			continue;
		}
		if (handle(s, buf, fds, nfds) < 0)
			client_gone(s);
	}
	atomic_store(&s->stopping, true);
	srv_resume_window(s, false);
	srv_rpc_fail(s);
	if (atomic_load(&s->client_fd) >= 0) {
		int fd = atomic_exchange(&s->client_fd, -1);

		close(fd);
	}
	close(sfd);
	free(buf);
	return 0;
}

int srv_setup(struct srv *s, struct nvmk_emu_config *cfg)
{
	int rc;

	s->name = cfg->name;
	atomic_store(&s->client_fd, -1);
	pthread_mutex_init(&s->send_lock, NULL);
	srv_dma_init(s);
	cfg->dma = srv_dma_translate;
	cfg->dma_done = srv_dma_done;
	cfg->dma_ctx = s;
	rc = nvmk_emu_create(cfg, &s->emu);
	if (rc)
		return rc;
	s->bar0_size = nvmk_emu_bar_size(s->emu);
	s->db_stride = 4u << cfg->dstrd;
	s->db_count = (unsigned)((s->bar0_size - NVME_REG_DBS) / s->db_stride);
	s->nvec = nvmk_emu_irq_count(s->emu);
	s->irq_fds = malloc(s->nvec * sizeof(int));
	s->msix_table = calloc((size_t)s->nvec * 4, sizeof(uint32_t));
	if (!s->irq_fds || !s->msix_table)
		return -ENOMEM;
	for (unsigned v = 0; v < s->nvec; v++)
		s->irq_fds[v] = -1;
	srv_pci_init(s);
	return srv_db_init(s);
}

void srv_teardown(struct srv *s)
{
	atomic_store(&s->stopping, true);
	srv_irqs_drop(s);
	nvmk_emu_destroy(s->emu);
	s->emu = NULL;
	srv_dma_unmap_all(s);
	if (s->db_map && s->db_map != MAP_FAILED)
		munmap(s->db_map, s->bar0_size);
	if (s->db_fd >= 0)
		close(s->db_fd);
	free(s->resume_blob);
	free(s->irq_fds);
	free(s->msix_table);
}
