// SPDX-License-Identifier: MIT
/*
 * One vfio-user message per call over a connected AF_UNIX stream socket, with
 * file descriptors as SCM_RIGHTS ancillary data ("Socket" section).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nvmekeep/vfio_user.h"

#define FDS_MAX NVMK_VFU_LIMIT_MAX_FDS

int nvmk_vfu_send(int sock, struct nvmk_vfu_hdr *h, const void *payload, size_t len, const int *fds,
		  unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {{h, sizeof(*h)}, {(void *)payload, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	size_t total = sizeof(*h) + len, sent = 0;
	ssize_t n;

	if (nfds > FDS_MAX || total > UINT32_MAX)
		return -EINVAL;
	h->size = (uint32_t)total;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sent < total) {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		sent += (size_t)n;
		/* the fds went with the first bytes; advance the iovecs */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
			n -= (ssize_t)msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
			msg.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Read exactly @len bytes; -EPROTO on EOF. */
static int read_full(int sock, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(sock, (char *)buf + got, len - got, 0);
		if (n == 0)
			return -EPROTO;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int nvmk_vfu_recv(int sock, void *buf, size_t bufsz, int *fds, unsigned maxfds, unsigned *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
		struct cmsghdr align;
	} ctl;
	struct nvmk_vfu_hdr h;
	struct iovec iov = {&h, sizeof(h)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	int tmp[FDS_MAX];
	unsigned n = 0;
	bool trunc;
	ssize_t r;
	int rc;

	*nfds = 0;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (unsigned i = 0; i < k && n < FDS_MAX; i++)
			memcpy(&tmp[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	/* More fds than fit the control buffer: the kernel dropped the rest. The
	 * message is still read whole so the stream stays in step. */
	trunc = msg.msg_flags & MSG_CTRUNC;
	if ((size_t)r < sizeof(h)) {
		rc = read_full(sock, (char *)&h + r, sizeof(h) - (size_t)r);
		if (rc) {
			close_all(tmp, n);
			return rc;
		}
	}
	if (bufsz >= sizeof(h))
		memcpy(buf, &h, sizeof(h)); /* for the error reply */
	if (h.size < sizeof(h) || h.size > bufsz) {
		close_all(tmp, n);
		return h.size < sizeof(h) ? -EPROTO : -E2BIG;
	}
	rc = read_full(sock, (char *)buf + sizeof(h), h.size - sizeof(h));
	if (rc || trunc || n > maxfds) {
		close_all(tmp, n);
		return rc ? rc : -EMFILE;
	}
	memcpy(fds, tmp, n * sizeof(int));
	*nfds = n;
	return (int)h.size;
}
