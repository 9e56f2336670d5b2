/* SPDX-License-Identifier: MIT */
/*
 * `nvmekeep setup`: list NVMe PCI functions and move them between the
 * kernel nvme driver and vfio-pci (driver_override + drivers_probe, the
 * mechanism that binds exactly one function, whatever its IDs).
 *
 * Taking a function away from nvme destroys its block devices; with a
 * mounted filesystem that loses data, so a function whose namespaces are
 * mounted is refused unless forced. Giving a function back to nvme blocks in
 * the kernel until every user of its VFIO device file has closed it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_internal.h"

#define PCI_CLASS_NVME 0x010802

static const char *sys_root(const char *root)
{
	return root && root[0] ? root : "/sys";
}

static int cmp_func(const void *a, const void *b)
{
	return strcmp(((const struct nvmk_pci_func *)a)->addr,
		      ((const struct nvmk_pci_func *)b)->addr);
}

int nvmk_pci_list_nvme(const char *sysfs_root, struct nvmk_pci_func *out, size_t max, size_t *n)
{
	char p[VFIO_PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (!n || (max && !out))
		return -EINVAL;
	*n = 0;
	snprintf(p, sizeof(p), "%s/bus/pci/devices", sys_root(sysfs_root));
	d = opendir(p);
	if (!d) {
		int err = -errno;

		nvmk_err(NULL, NVMK_LOG_NOQ, "cannot list %s: %s", p, strerror(-err));
		return err;
	}
	while ((e = readdir(d))) {
		struct nvmk_pci_func f;
		uint64_t cls, v;

		if (vfio_pci_addr_normalize(e->d_name, f.addr) < 0)
			continue;
		if (vfio_sysfs_read_hex(sysfs_root, e->d_name, "class", &cls) < 0 ||
		    cls != PCI_CLASS_NVME)
			continue;
		f.vendor = vfio_sysfs_read_hex(sysfs_root, e->d_name, "vendor", &v) == 0
			       ? (uint16_t)v
			       : 0xffff;
		f.device = vfio_sysfs_read_hex(sysfs_root, e->d_name, "device", &v) == 0
			       ? (uint16_t)v
			       : 0xffff;
		if (vfio_sysfs_driver(sysfs_root, e->d_name, f.driver, sizeof(f.driver)) < 0)
			f.driver[0] = '\0';
		if (vfio_sysfs_iommu_group(sysfs_root, e->d_name, f.iommu_group,
					   sizeof(f.iommu_group)) < 0)
			f.iommu_group[0] = '\0';
		if (*n < max)
			out[*n] = f;
		(*n)++;
	}
	closedir(d);
	qsort(out, *n < max ? *n : max, sizeof(*out), cmp_func);
	return 0;
}

/* Block device names (nvmeXnY) of the namespaces of @addr, space separated. */
static void namespace_disks(const char *root, const char *addr, char *buf, size_t len)
{
	char p[VFIO_PATH_MAX];
	struct dirent *c;
	size_t used = 0;
	DIR *cd;

	buf[0] = '\0';
	if (vfio_sysfs_dev_path(root, addr, "nvme", p, sizeof(p)) < 0 || !(cd = opendir(p)))
		return;
	while ((c = readdir(cd))) {
		char q[VFIO_PATH_MAX];
		struct dirent *e;
		DIR *nd;

		if (strncmp(c->d_name, "nvme", 4) != 0)
			continue;
		if (snprintf(q, sizeof(q), "%s/%s", p, c->d_name) >= (int)sizeof(q) ||
		    !(nd = opendir(q)))
			continue;
		while ((e = readdir(nd))) {
			unsigned a, b, ns;
			char tail, disk[48];
			int n;

			/* nvme<ctrl>n<ns>, or nvme<subsys>c<ctrl>n<ns> under native
			 * multipath, whose disk is nvme<subsys>n<ns>. */
			if (sscanf(e->d_name, "nvme%uc%un%u%c", &a, &b, &ns, &tail) == 3)
				snprintf(disk, sizeof(disk), "nvme%un%u", a, ns);
			else if (sscanf(e->d_name, "nvme%un%u%c", &a, &ns, &tail) == 2)
				snprintf(disk, sizeof(disk), "nvme%un%u", a, ns);
			else
				continue;
			n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", disk);
			if (n < 0 || (size_t)n >= len - used)
				break;
			used += (size_t)n;
		}
		closedir(nd);
	}
	closedir(cd);
}

/* Whether mount source @dev is disk @disk or one of its partitions. */
static bool source_is_disk(const char *dev, const char *disk)
{
	size_t l = strlen(disk);
	const char *t;

	if (strncmp(dev, "/dev/", 5) != 0 || strncmp(dev + 5, disk, l) != 0)
		return false;
	t = dev + 5 + l;
	if (!*t)
		return true;
	if (*t++ != 'p' || !*t)
		return false;
	while (*t >= '0' && *t <= '9')
		t++;
	return !*t;
}

/* Mounted filesystems on the namespaces of @addr, "dev on dir" list; 0 = none. */
static int mounted_namespaces(const char *sysfs_root, const char *proc_root, const char *addr,
			      char *buf, size_t len)
{
	char disks[512], p[VFIO_PATH_MAX], line[1024];
	size_t used = 0;
	int count = 0;
	FILE *f;

	buf[0] = '\0';
	namespace_disks(sysfs_root, addr, disks, sizeof(disks));
	if (!disks[0])
		return 0;
	snprintf(p, sizeof(p), "%s/mounts", proc_root && proc_root[0] ? proc_root : "/proc");
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char dev[256], dir[512], tmp[512], *tok, *save = NULL;

		if (sscanf(line, "%255s %511s", dev, dir) != 2)
			continue;
		snprintf(tmp, sizeof(tmp), "%s", disks);
		for (tok = strtok_r(tmp, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int n;

			if (!source_is_disk(dev, tok))
				continue;
			n = snprintf(buf + used, len - used, "%s%s on %s", used ? ", " : "", dev,
				     dir);
			if (n > 0 && (size_t)n < len - used)
				used += (size_t)n;
			count++;
		}
	}
	fclose(f);
	return count;
}

static int write_attr(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

/* Common part of bind and unbind: checks, then move @addr to driver @want. */
static int rebind(const char *sysfs_root, const char *proc_root, const char *addr_in,
		  const char *want, bool force)
{
	char addr[16], drv[64], p[VFIO_PATH_MAX], mounts[1024];
	const char *root = sys_root(sysfs_root);
	struct stat st;
	int err, n;

	if (vfio_pci_addr_normalize(addr_in, addr) < 0) {
		nvmk_err(addr_in, NVMK_LOG_NOQ, "malformed PCI address '%s': expected DDDD:BB:DD.F",
			 addr_in ? addr_in : "(null)");
		return -EINVAL;
	}
	if (!vfio_sysfs_dev_exists(root, addr)) {
		nvmk_err(addr, NVMK_LOG_NOQ, "no PCI function %s (see `nvmekeep setup list`)",
			 addr);
		return -ENODEV;
	}
	err = vfio_sysfs_driver(root, addr, drv, sizeof(drv));
	if (err)
		return err;
	if (!strcmp(drv, want))
		return 0;
	snprintf(p, sizeof(p), "%s/bus/pci/drivers/%s", root, want);
	if (stat(p, &st) < 0) {
		nvmk_err(addr, NVMK_LOG_NOQ, "driver %s is not loaded: modprobe %s", want, want);
		return -ENODEV;
	}
	n = mounted_namespaces(root, proc_root, addr, mounts, sizeof(mounts));
	if (n > 0 && !force) {
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "refusing to unbind %s from %s: mounted filesystems: %s (unmount them, "
			 "or force)",
			 addr, drv, mounts);
		return -EBUSY;
	}
	if (n > 0)
		nvmk_warn(addr, NVMK_LOG_NOQ, "forced unbind with mounted filesystems: %s", mounts);

	/* driver_override makes the probe below pick exactly @want; an empty
	 * override (newline) restores matching by IDs/class for nvme. */
	vfio_sysfs_dev_path(root, addr, "driver_override", p, sizeof(p));
	err = write_attr(p, strcmp(want, "vfio-pci") ? "\n" : "vfio-pci");
	if (err) {
		nvmk_err(addr, NVMK_LOG_NOQ, "writing %s: %s%s", p, strerror(-err),
			 err == -EACCES || err == -EPERM ? " (needs root)" : "");
		return err;
	}
	if (drv[0]) {
		vfio_sysfs_dev_path(root, addr, "driver/unbind", p, sizeof(p));
		err = write_attr(p, addr);
		if (err) {
			nvmk_err(addr, NVMK_LOG_NOQ, "unbinding from %s: %s", drv, strerror(-err));
			return err;
		}
	}
	snprintf(p, sizeof(p), "%s/bus/pci/drivers_probe", root);
	err = write_attr(p, addr);
	if (err && err != -ENODEV)
		nvmk_warn(addr, NVMK_LOG_NOQ, "drivers_probe: %s", strerror(-err));
	if (vfio_sysfs_driver(root, addr, drv, sizeof(drv)) < 0 || strcmp(drv, want) != 0) {
		nvmk_err(addr, NVMK_LOG_NOQ, "%s did not bind to %s (now: %s)", addr, want,
			 drv[0] ? drv : "no driver");
		return -EIO;
	}
	nvmk_info(addr, NVMK_LOG_NOQ, "bound to %s", want);
	return 0;
}

int nvmk_pci_bind_vfio(const char *sysfs_root, const char *proc_root, const char *addr, bool force)
{
	return rebind(sysfs_root, proc_root, addr, "vfio-pci", force);
}

int nvmk_pci_unbind_to_nvme(const char *sysfs_root, const char *proc_root, const char *addr,
			    bool force)
{
	return rebind(sysfs_root, proc_root, addr, "nvme", force);
}
