// SPDX-License-Identifier: MIT
/*
 * vfio-user client backing: handover across execve (servicing). The
 * connection, the MSI-X eventfds and the DMA memfds are inherited; the
 * successor re-attaches without any message that changes the device. See
 * include/nvmekeep/backing.h and docs/vfio-user.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_user_internal.h"

static int cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

static int export_cloexec(const struct nvmk_vfio_user_handover *ho, bool on)
{
	int rc = cloexec(ho->sock_fd, on);

	for (unsigned i = 0; !rc && i < ho->nirqs; i++)
		rc = cloexec(ho->irq_fds[i], on);
	for (unsigned i = 0; !rc && i < ho->nmaps; i++)
		rc = cloexec(ho->maps[i].fd, on);
	return rc;
}

int nvmk_backing_vfio_user_export_fds(struct nvmk_backing *b, struct nvmk_vfio_user_handover *ho)
{
	struct vfu_backing *v;
	int rc;

	if (!nvmk_backing_is_vfio_user(b) || !ho)
		return -EINVAL;
	v = to_vfu(b);
	if (atomic_load(&v->gone))
		return -ENODEV;
	memset(ho, 0, sizeof(*ho));
	snprintf(ho->path, sizeof(ho->path), "%s", v->path);
	if (v->nvec > NVMK_VFIO_USER_MAX_IRQS) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "%u vectors: the handover holds %d", v->nvec,
			 NVMK_VFIO_USER_MAX_IRQS);
		return -ENOSPC;
	}
	pthread_mutex_lock(&v->lock); /* no exchange may be half done */
	pthread_mutex_lock(&v->map_lock);
	if (v->nmaps > NVMK_VFIO_USER_MAX_MAPS) {
		pthread_mutex_unlock(&v->map_lock);
		pthread_mutex_unlock(&v->lock);
		nvmk_err(b->name, NVMK_LOG_NOQ, "%u DMA maps: the handover holds %d", v->nmaps,
			 NVMK_VFIO_USER_MAX_MAPS);
		return -ENOSPC;
	}
	ho->sock_fd = v->sock;
	ho->next_msg_id = v->msg_id;
	ho->next_iova = v->next_iova;
	ho->nirqs = v->nvec;
	for (unsigned i = 0; i < v->nvec; i++)
		ho->irq_fds[i] = v->irq_fds[i];
	ho->nmaps = v->nmaps;
	for (unsigned i = 0; i < v->nmaps; i++)
		ho->maps[i] = (struct nvmk_vfio_handover_map){v->maps[i].iova, v->maps[i].size,
							      v->maps[i].fd, v->maps[i].fd_offset};
	pthread_mutex_unlock(&v->map_lock);
	rc = export_cloexec(ho, false);
	if (rc) {
		export_cloexec(ho, true);
		pthread_mutex_unlock(&v->lock);
		return rc;
	}
	v->exported = true;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

int nvmk_backing_vfio_user_export_abort(struct nvmk_backing *b,
					const struct nvmk_vfio_user_handover *ho)
{
	if (!nvmk_backing_is_vfio_user(b) || !ho)
		return -EINVAL;
	to_vfu(b)->exported = false;
	return export_cloexec(ho, true);
}

int nvmk_vfio_user_handover_format(const struct nvmk_vfio_user_handover *ho, char *buf, size_t len)
{
	size_t off = 0;
	int n;

#define HO_PUT(...)                                                                                \
	do {                                                                                       \
		n = snprintf(buf + off, off < len ? len - off : 0, __VA_ARGS__);                   \
		if (n < 0)                                                                         \
			return -ENOSPC;                                                            \
		off += (size_t)n;                                                                  \
	} while (0)

	if (!ho || !buf)
		return -EINVAL;
	HO_PUT("vfu1;sock=%d;msgid=%u;iova=%" PRIx64 ";irqs=", ho->sock_fd, ho->next_msg_id,
	       ho->next_iova);
	for (unsigned i = 0; i < ho->nirqs; i++)
		HO_PUT("%s%d", i ? "," : "", ho->irq_fds[i]);
	HO_PUT(";maps=");
	for (unsigned i = 0; i < ho->nmaps; i++)
		HO_PUT("%s%" PRIx64 ":%" PRIx64 ":%d:%" PRIx64, i ? "," : "", ho->maps[i].iova,
		       ho->maps[i].size, ho->maps[i].fd, ho->maps[i].fd_offset);
	HO_PUT(";path=%s", ho->path);
#undef HO_PUT
	if (off >= len)
		return -ENOSPC;
	return (int)off;
}

static bool parse_int(const char **p, int *out, char stop1, char stop2)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(*p, &end, 10);
	if (errno || end == *p || v < 0 || v > 1 << 24 || (*end != stop1 && *end != stop2))
		return false;
	*out = (int)v;
	*p = end;
	return true;
}

static bool parse_hex(const char **p, uint64_t *out, char stop1, char stop2)
{
	char *end;
	unsigned long long v;

	if (**p == '-' || **p == '+' || **p == ' ')
		return false;
	errno = 0;
	v = strtoull(*p, &end, 16);
	if (errno || end == *p || (*end != stop1 && *end != stop2))
		return false;
	*out = v;
	*p = end;
	return true;
}

static bool expect(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n))
		return false;
	*p += n;
	return true;
}

int nvmk_vfio_user_handover_parse(const char *s, struct nvmk_vfio_user_handover *ho)
{
	const char *p = s;
	int fd;

	if (!s || !ho)
		return -EINVAL;
	memset(ho, 0, sizeof(*ho));
	if (!expect(&p, "vfu1;sock=") || !parse_int(&p, &ho->sock_fd, ';', ';') ||
	    !expect(&p, ";msgid=") || !parse_int(&p, &fd, ';', ';') || fd > 0xffff)
		return -EINVAL;
	ho->next_msg_id = (uint16_t)fd;
	if (!expect(&p, ";iova=") || !parse_hex(&p, &ho->next_iova, ';', ';') ||
	    !expect(&p, ";irqs="))
		return -EINVAL;
	while (*p != ';') {
		if (ho->nirqs == NVMK_VFIO_USER_MAX_IRQS || !parse_int(&p, &fd, ',', ';'))
			return -EINVAL;
		ho->irq_fds[ho->nirqs++] = fd;
		if (*p == ',' && *++p == ';')
			return -EINVAL; /* a trailing comma */
	}
	if (!expect(&p, ";maps="))
		return -EINVAL;
	while (*p != ';') {
		struct nvmk_vfio_handover_map *m = &ho->maps[ho->nmaps];

		if (ho->nmaps == NVMK_VFIO_USER_MAX_MAPS || !parse_hex(&p, &m->iova, ':', ':') ||
		    !expect(&p, ":") || !parse_hex(&p, &m->size, ':', ':') || !expect(&p, ":") ||
		    !parse_int(&p, &m->fd, ':', ':') || !expect(&p, ":") ||
		    !parse_hex(&p, &m->fd_offset, ',', ';') || m->size == 0 ||
		    m->iova + m->size < m->iova)
			return -EINVAL;
		ho->nmaps++;
		if (*p == ',' && *++p == ';')
			return -EINVAL;
	}
	if (!expect(&p, ";path=") || !*p || strlen(p) >= sizeof(ho->path))
		return -EINVAL;
	strcpy(ho->path, p);
	return 0;
}

int nvmk_backing_vfio_user_adopt(const struct nvmk_vfio_user_handover *ho,
				 const struct nvmk_vfio_user_opts *opts, struct nvmk_backing **out)
{
	struct vfu_backing *v;
	int rc;

	if (!ho || !out || ho->sock_fd < 0 || ho->nirqs > NVMK_VFIO_USER_MAX_IRQS ||
	    ho->nmaps > NVMK_VFIO_USER_MAX_MAPS)
		return -EINVAL;
	if (fcntl(ho->sock_fd, F_GETFD) < 0) {
		nvmk_err(VFU_PREFIX, NVMK_LOG_NOQ, "inherited socket fd %d is not open",
			 ho->sock_fd);
		return -EBADF;
	}
	v = vfu_alloc(ho->path, opts);
	if (!v)
		return -ENOMEM;
	v->sock = ho->sock_fd;
	v->msg_id = ho->next_msg_id;
	v->next_iova = ho->next_iova > VFU_IOVA_BASE ? ho->next_iova : VFU_IOVA_BASE;
	for (unsigned i = 0; i < ho->nmaps; i++) {
		struct vfu_map m = {ho->maps[i].iova, ho->maps[i].size, NULL, ho->maps[i].fd,
				    ho->maps[i].fd_offset};

		if (vfu_maps_add(v, &m))
			goto nomem;
		if (v->next_iova < m.iova + m.size + NVMK_DMA_PAGE_SIZE)
			v->next_iova = m.iova + m.size + NVMK_DMA_PAGE_SIZE;
	}
	if (ho->nirqs) {
		v->irq_fds = malloc(ho->nirqs * sizeof(int));
		if (!v->irq_fds)
			goto nomem;
		memcpy(v->irq_fds, ho->irq_fds, ho->nirqs * sizeof(int));
		v->nvec = ho->nirqs;
		v->irqs_inherited = true;
	}
	/* the server's caps are not in the handover: defaults until a VERSION,
	 * which must not be sent again on this connection; 1 fd per SET_IRQS is
	 * what the spec lets a client assume */
	rc = vfu_probe(v, opts);
	if (rc) {
		/* leave the inherited fds open (the caller decides) */
		v->nvec = 0;
		free(v->irq_fds);
		v->irq_fds = NULL;
		v->sock = -1;
		vfu_free(v, true);
		return rc;
	}
	for (unsigned i = 0; i < v->nvec; i++)
		cloexec(v->irq_fds[i], true);
	cloexec(v->sock, true);
	nvmk_info(v->b.name, NVMK_LOG_NOQ, "adopted: %u DMA maps, %u vectors, no reset", v->nmaps,
		  v->nvec);
	*out = &v->b;
	return 0;
nomem:
	v->nvec = 0;
	v->sock = -1;
	vfu_free(v, true);
	return -ENOMEM;
}
