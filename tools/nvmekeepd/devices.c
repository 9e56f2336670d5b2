// SPDX-License-Identifier: MIT
/*
 * Device names -> manager device specs ("vfio-user:SOCKET": a controller
 * served by nvmekeep-emu or another vfio-user server). The built-in emulated controller is
 * the CLI's: namespace 1 = 1 GiB of RAM (or FILE for "emu:FILE") with 512 B
 * blocks, namespace 2 = a 64 GiB null namespace with 4 KiB blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "nvmekeep/backing.h"

#define EMU_RAM_BYTES  (1ull << 30)
#define EMU_NULL_BYTES (64ull << 30)

/* Inherited vfio-user connections by device id (a servicing's successor
 * sets them before restoring; the factory takes each one once). */
#define MAX_HANDOVERS 16
static pthread_mutex_t handovers_lock = PTHREAD_MUTEX_INITIALIZER; /* device workers */
static struct {
	char id[NVMK_MGR_ID_MAX + 1];
	char *handover;
} handovers[MAX_HANDOVERS];

int nvmkd_dev_set_handover(const char *id, const char *handover)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&handovers_lock);
	for (int i = 0; i < MAX_HANDOVERS; i++) {
		if (handovers[i].handover)
			continue;
		handovers[i].handover = strdup(handover);
		rc = handovers[i].handover ? 0 : -ENOMEM;
		snprintf(handovers[i].id, sizeof(handovers[i].id), "%s", id);
		break;
	}
	pthread_mutex_unlock(&handovers_lock);
	return rc;
}

/* An inherited VFIO device nobody adopted: close the device first (its
 * release resets the function, vfio-pci), then the group and the container
 * (which drops the IOMMU mappings and unpins), and the vectors. */
static void drop_vfio_handover(const char *h)
{
	struct nvmk_vfio_handover *ho = calloc(1, sizeof(*ho));

	if (ho && !nvmk_vfio_handover_parse(h, ho)) {
		close(ho->device_fd);
		close(ho->group_fd);
		close(ho->container_fd);
		for (unsigned k = 0; k < ho->nirqs; k++)
			close(ho->irq_fds[k]);
	}
	free(ho);
}

void nvmkd_dev_drop_handovers(void)
{
	pthread_mutex_lock(&handovers_lock);
	for (int i = 0; i < MAX_HANDOVERS; i++) {
		struct nvmk_vfio_user_handover *ho;

		if (!handovers[i].handover)
			continue;
		ho = calloc(1, sizeof(*ho));
		/* the connection and its vectors; the DMA memfds are the pool's */
		if (ho && !nvmk_vfio_user_handover_parse(handovers[i].handover, ho)) {
			close(ho->sock_fd);
			for (unsigned k = 0; k < ho->nirqs; k++)
				close(ho->irq_fds[k]);
		}
		free(ho);
		drop_vfio_handover(handovers[i].handover);
		free(handovers[i].handover);
		handovers[i].handover = NULL;
	}
	pthread_mutex_unlock(&handovers_lock);
}

static char *take_handover(const char *id)
{
	char *h = NULL;

	pthread_mutex_lock(&handovers_lock);
	for (int i = 0; i < MAX_HANDOVERS && !h; i++)
		if (handovers[i].handover && !strcmp(handovers[i].id, id)) {
			h = handovers[i].handover;
			handovers[i].handover = NULL;
		}
	pthread_mutex_unlock(&handovers_lock);
	return h;
}

/* vfio-user:PATH (nvmekeep-emu). Restoring (servicing with keep-alive), the
 * connection is adopted from the handover the predecessor exported: no reset,
 * no message that changes the device. Otherwise a new connection. */
static int vfu_factory(void *ctx, const char *id, bool restoring, struct nvmk_backing **out)
{
	struct nvmk_vfio_user_handover *ho;
	char *h = take_handover(id);
	int rc;

	(void)ctx;
	if (!restoring || !h) {
		free(h);
		return nvmk_backing_vfio_user_open(nvmk_backing_vfio_user_spec_path(id), NULL, out);
	}
	ho = calloc(1, sizeof(*ho));
	rc = ho ? nvmk_vfio_user_handover_parse(h, ho) : -ENOMEM;
	if (!rc)
		rc = nvmk_backing_vfio_user_adopt(ho, NULL, out);
	if (rc)
		fprintf(stderr, "nvmekeepd: %s: inherited vfio-user connection not adopted: %s\n",
			id, strerror(-rc));
	free(ho);
	free(h);
	return rc;
}

/* A PCI function over VFIO. Restoring (servicing with keep-alive), the
 * container, group and device fds, the MSI-X eventfds and the DMA mappings
 * the predecessor exported (nvmk_backing_vfio_export_fds) are adopted: no
 * reset, no bus-master or MSI-X change; type1 maps re-register their new
 * virtual address (VFIO_DMA_MAP_FLAG_VADDR) as the restore maps the pool
 * blocks again. Otherwise (first start, keep-alive off) a fresh open, which
 * resets the function. */
static int vfio_factory(void *ctx, const char *id, bool restoring, struct nvmk_backing **out)
{
	struct nvmk_vfio_handover *ho;
	char *h = take_handover(id);
	int rc;

	(void)ctx;
	if (!restoring || !h) {
		/* an inherited device the restore does not take (its save
		 * failed): close it first, or the group stays busy */
		if (h)
			drop_vfio_handover(h);
		free(h);
		return nvmk_backing_vfio_open(id, NULL, out);
	}
	ho = calloc(1, sizeof(*ho));
	rc = ho ? nvmk_vfio_handover_parse(h, ho) : -ENOMEM;
	if (!rc && strcmp(ho->pci_addr, id)) {
		fprintf(stderr, "nvmekeepd: %s: inherited VFIO handover is for %s\n", id,
			ho->pci_addr);
		rc = -EINVAL;
	}
	if (!rc)
		rc = nvmk_backing_vfio_adopt(ho, &(struct nvmk_vfio_opts){.no_reset = true}, out);
	if (rc)
		fprintf(stderr, "nvmekeepd: %s: inherited VFIO device not adopted: %s\n", id,
			strerror(-rc));
	free(ho);
	free(h);
	return rc;
}

static enum nvmkd_emu_exec emu_exec = NVMKD_EMU_EXEC_AUTO;

void nvmkd_dev_set_emu_exec(enum nvmkd_emu_exec mode)
{
	emu_exec = mode;
}

/*
 * Inline execution (nvmk_emu_config.inline_io) when asked, or by default
 * where it pays: a RAM namespace (a command is a memcpy, short enough to run
 * on the I/O thread that rings) on a machine with at most 2 online CPUs, where
 * the worker thread is a third busy thread beside the client and the I/O
 * thread, and its wake-up and spin per I/O cost more than the copy
 * (docs/performance.md, session 5). A file namespace does a pread/pwrite per
 * command: the worker keeps it unless inline is asked for.
 */
static bool emu_inline(bool file)
{
	long cpus;

	if (emu_exec != NVMKD_EMU_EXEC_AUTO)
		return emu_exec == NVMKD_EMU_EXEC_INLINE;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return !file && cpus > 0 && cpus <= 2;
}

static void emu_spec(struct nvmkd_dev_spec *d, const char *file)
{
	struct nvmk_emu_config *cfg = &d->spec.emu;
	struct stat st;

	d->spec.kind = NVMK_MGR_BACKING_EMU;
	nvmk_emu_config_default(cfg);
	cfg->serial = "NVMKEMU0001";
	cfg->model = "nvmekeep emulated controller";
	cfg->nr_ns = 2;
	cfg->ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1, .nblocks = EMU_RAM_BYTES >> 9, .lba_shift = 9, .backing = NVMK_EMU_BACK_RAM};
	if (file) {
		cfg->ns[0].backing = NVMK_EMU_BACK_FILE;
		cfg->ns[0].path = d->path;
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512)
			cfg->ns[0].nblocks = (uint64_t)st.st_size >> 9;
	}
	cfg->inline_io = emu_inline(file != NULL);
	cfg->ns[1] = (struct nvmk_emu_ns_config){.nsid = 2,
						 .nblocks = EMU_NULL_BYTES >> 12,
						 .lba_shift = 12,
						 .backing = NVMK_EMU_BACK_NULL};
}

int nvmkd_dev_spec_make(const char *name, unsigned io_queues, struct nvmkd_dev_spec *out,
			char *err, size_t errlen)
{
	struct nvmk_dev_spec dev;
	char why[200];

	memset(out, 0, sizeof(*out));
	if (!name || !*name || strlen(name) > NVMK_MGR_ID_MAX) {
		snprintf(err, errlen, "device '%s': a name of 1..%d bytes is expected",
			 name ? name : "", NVMK_MGR_ID_MAX);
		return -EINVAL;
	}
	if (nvmk_dev_spec_parse(name, &dev, why, sizeof(why))) {
		snprintf(err, errlen, "invalid device '%s': %s; a device is %s", name, why,
			 nvmk_dev_spec_forms());
		return -EINVAL;
	}
	/* a PCI function is known by its full address, however it was given */
	snprintf(out->id, sizeof(out->id), "%s", dev.kind == NVMK_DEV_PCI ? dev.pci_addr : name);
	out->spec.id = out->id;
	out->spec.ctrl_opts.max_io_queues = (uint16_t)io_queues;
	switch (dev.kind) {
	case NVMK_DEV_EMU:
		if (dev.arg)
			snprintf(out->path, sizeof(out->path), "%s", dev.arg);
		emu_spec(out, dev.arg ? out->path : NULL);
		break;
	case NVMK_DEV_PCI:
		/* the manager makes it a kernel device when OPENHCL_NVME_VFIO is
		 * off (nvmk_config_dev_driver) */
		out->spec.kind = NVMK_MGR_BACKING_FACTORY;
		out->spec.factory.create = vfio_factory;
		/* VFIO: the fds cross exec and the mappings take the successor's
		 * addresses (VFIO_UPDATE_VADDR, Linux >= 5.12; no-IOMMU keeps the
		 * pinned pages); a type1 kernel without it is found at open and
		 * the servicing is then refused (servicing.c) */
		out->spec.factory.keep_alive_capable = true;
		break;
	case NVMK_DEV_VFIO_USER:
		snprintf(out->path, sizeof(out->path), "%s", dev.arg);
		out->spec.kind = NVMK_MGR_BACKING_FACTORY;
		out->spec.factory.create = vfu_factory;
		out->spec.factory.keep_alive_capable = true;
		break;
	case NVMK_DEV_KERNEL_NS:
	case NVMK_DEV_KERNEL_CTRL:
	case NVMK_DEV_PATH:
		out->spec.kind = NVMK_MGR_BACKING_KERNEL;
		snprintf(out->path, sizeof(out->path), "%s", name);
		out->spec.kernel.path = out->path;
		break;
	}
	return 0;
}

int nvmkd_dev_spec_parse(const char *name, unsigned io_queues, struct nvmkd_dev_spec *out)
{
	char err[1024];
	int rc = nvmkd_dev_spec_make(name, io_queues, out, err, sizeof(err));

	if (rc)
		fprintf(stderr, "nvmekeepd: %s\n", err);
	return rc;
}
