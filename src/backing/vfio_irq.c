/* SPDX-License-Identifier: MIT */
/*
 * MSI-X for the VFIO backing: one eventfd per vector, routed with
 * VFIO_DEVICE_SET_IRQS (VFIO_IRQ_SET_DATA_EVENTFD | ACTION_TRIGGER).
 * The eventfds are created without EFD_CLOEXEC being relied upon: a
 * handover clears FD_CLOEXEC explicitly, and the routing in the kernel stays
 * as long as the device file is open, so a successor reuses them as is.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_internal.h"

int vfio_irq_probe(struct vfio_backing *vb)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX};

	if (ioctl(vb->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0) {
		nvmk_warn(vb->base.name, NVMK_LOG_NOQ, "VFIO_DEVICE_GET_IRQ_INFO(MSI-X): %s",
			  strerror(errno));
		vb->nirq_hw = 0;
		return 0;
	}
	vb->nirq_hw = ii.count;
	if (!(ii.flags & VFIO_IRQ_INFO_EVENTFD))
		vb->nirq_hw = 0;
	return 0;
}

unsigned vfio_irq_count(struct nvmk_backing *b)
{
	unsigned n = to_vfio(b)->nirq_hw;

	return n > NVMK_VFIO_MAX_IRQS ? NVMK_VFIO_MAX_IRQS : n;
}

static int set_irqs(struct vfio_backing *vb, unsigned count, const int *fds)
{
	size_t sz = sizeof(struct vfio_irq_set) + count * sizeof(int);
	struct vfio_irq_set *set = calloc(1, sz);
	int ret = 0;

	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = count;
	/* count 0 with DATA_NONE disables every vector of the index. */
	set->flags = count ? VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
			   : VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	if (count)
		memcpy(set->data, fds, count * sizeof(int));
	if (ioctl(vb->device, VFIO_DEVICE_SET_IRQS, set) < 0)
		ret = -errno;
	free(set);
	return ret;
}

int vfio_irq_enable(struct nvmk_backing *b, unsigned nvec)
{
	struct vfio_backing *vb = to_vfio(b);
	int fds[NVMK_VFIO_MAX_IRQS];
	unsigned i;
	int err;

	if (nvec == 0 || nvec > vfio_irq_count(b)) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "%u MSI-X vectors requested, the function has %u",
			 nvec, vfio_irq_count(b));
		return -EINVAL;
	}
	/* Inherited (handover) or already enabled: the routing is live. */
	if (vb->nirq >= nvec)
		return 0;
	for (i = 0; i < nvec; i++) {
		if (i < vb->nirq) {
			fds[i] = vb->irq_fds[i];
			continue;
		}
		fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fds[i] < 0) {
			err = -errno;
			while (i-- > vb->nirq)
				close(fds[i]);
			return err;
		}
	}
	/* Growing the vector count re-programs MSI-X as a whole. */
	err = set_irqs(vb, nvec, fds);
	if (err) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "VFIO_DEVICE_SET_IRQS for %u MSI-X vectors: %s",
			 nvec, strerror(-err));
		for (i = vb->nirq; i < nvec; i++)
			close(fds[i]);
		return err;
	}
	memcpy(vb->irq_fds, fds, nvec * sizeof(int));
	vb->nirq = nvec;
	return 0;
}

void vfio_irq_disable(struct nvmk_backing *b)
{
	struct vfio_backing *vb = to_vfio(b);
	unsigned i;

	if (!vb->nirq)
		return;
	if (set_irqs(vb, 0, NULL) < 0)
		nvmk_warn(b->name, NVMK_LOG_NOQ, "disabling MSI-X: %s", strerror(errno));
	for (i = 0; i < vb->nirq; i++)
		close(vb->irq_fds[i]);
	vb->nirq = 0;
}

int vfio_irq_fd(struct nvmk_backing *b, unsigned vector)
{
	struct vfio_backing *vb = to_vfio(b);

	return vector < vb->nirq ? vb->irq_fds[vector] : -1;
}
