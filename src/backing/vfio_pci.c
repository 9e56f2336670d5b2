/* SPDX-License-Identifier: MIT */
/*
 * PCI function facts for the VFIO backing: address syntax, sysfs lookups
 * (driver, IOMMU group, group members, vfio module parameters) and the
 * command register in config space. The sysfs root is a parameter so that
 * tests can point it at a fake tree.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_internal.h"

/* PCI command register (PCI Local Bus 3.0, 6.2.2) */
#define PCI_CFG_COMMAND 0x04
#define PCI_CMD_MEMORY	(1u << 1)
#define PCI_CMD_MASTER	(1u << 2)

static const char *root_or_default(const char *root)
{
	return root && root[0] ? root : "/sys";
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "DDDD:BB:DD.F": domain 4 hex digits, bus 2, device 2 (<= 0x1f), function 0-7. */
int vfio_pci_addr_normalize(const char *addr, char out[16])
{
	static const char shape[] = "xxxx:xx:xx.x";
	size_t i;

	if (!addr || strlen(addr) != sizeof(shape) - 1)
		return -EINVAL;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'x' ? hexval(addr[i]) < 0 : addr[i] != shape[i])
			return -EINVAL;
		out[i] = (char)tolower((unsigned char)addr[i]);
	}
	out[i] = '\0';
	if (hexval(addr[8]) * 16 + hexval(addr[9]) > 0x1f || hexval(addr[11]) > 7)
		return -EINVAL;
	return 0;
}

bool nvmk_pci_addr_valid(const char *addr)
{
	char tmp[16];

	return vfio_pci_addr_normalize(addr, tmp) == 0;
}

int vfio_sysfs_dev_path(const char *root, const char *addr, const char *attr, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/bus/pci/devices/%s%s%s", root_or_default(root), addr,
			 attr ? "/" : "", attr ? attr : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool vfio_sysfs_dev_exists(const char *root, const char *addr)
{
	char p[VFIO_PATH_MAX];
	struct stat st;

	return vfio_sysfs_dev_path(root, addr, NULL, p, sizeof(p)) == 0 && stat(p, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Last path component of the symlink @path into @out. */
static int link_basename(const char *path, char *out, size_t len)
{
	char target[VFIO_PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	const char *base;

	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!base[0] || strlen(base) >= len)
		return -EINVAL;
	strcpy(out, base);
	return 0;
}

int vfio_sysfs_iommu_group(const char *root, const char *addr, char *group, size_t len)
{
	char p[VFIO_PATH_MAX];
	int err;
	char *end;

	if (!vfio_sysfs_dev_exists(root, addr))
		return -ENODEV;
	err = vfio_sysfs_dev_path(root, addr, "iommu_group", p, sizeof(p));
	if (err)
		return err;
	err = link_basename(p, group, len);
	if (err)
		return err == -EINVAL ? -EINVAL : -ENOENT;
	/* Group names are decimal numbers; anything else is not a group link. */
	if (strtoul(group, &end, 10) > 0xffffffffUL || *end || end == group)
		return -EINVAL;
	return 0;
}

int vfio_sysfs_driver(const char *root, const char *addr, char *drv, size_t len)
{
	char p[VFIO_PATH_MAX];
	int err = vfio_sysfs_dev_path(root, addr, "driver", p, sizeof(p));

	if (err)
		return err;
	if (len)
		drv[0] = '\0';
	err = link_basename(p, drv, len);
	return err == -ENOENT ? 0 : err;
}

int nvmk_pci_bound_driver(const char *sysfs_root, const char *addr, char *buf, size_t len)
{
	struct nvmk_dev_spec s;

	if (!buf || !len || nvmk_dev_spec_parse(addr, &s, NULL, 0) || s.kind != NVMK_DEV_PCI)
		return -EINVAL;
	buf[0] = '\0';
	if (!vfio_sysfs_dev_exists(sysfs_root, s.pci_addr))
		return -ENODEV;
	return vfio_sysfs_driver(sysfs_root, s.pci_addr, buf, len);
}

int vfio_sysfs_read_hex(const char *root, const char *addr, const char *attr, uint64_t *val)
{
	char p[VFIO_PATH_MAX], line[64], *end;
	FILE *f;
	int err = vfio_sysfs_dev_path(root, addr, attr, p, sizeof(p));

	if (err)
		return err;
	f = fopen(p, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	errno = 0;
	*val = strtoull(line, &end, 16);
	if (errno || end == line || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

int vfio_sysfs_group_members(const char *root, const char *group, char *buf, size_t len)
{
	char p[VFIO_PATH_MAX];
	struct dirent *e;
	size_t used = 0;
	DIR *d;

	if (len)
		buf[0] = '\0';
	if (snprintf(p, sizeof(p), "%s/kernel/iommu_groups/%s/devices", root_or_default(root),
		     group) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char drv[64];
		int n;

		if (e->d_name[0] == '.')
			continue;
		if (vfio_sysfs_driver(root, e->d_name, drv, sizeof(drv)) < 0)
			drv[0] = '\0';
		n = snprintf(buf + used, len - used, "%s%s (driver %s)", used ? ", " : "",
			     e->d_name, drv[0] ? drv : "none");
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	closedir(d);
	return 0;
}

int vfio_sysfs_noiommu_param(const char *root)
{
	char p[VFIO_PATH_MAX], c = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/module/vfio/parameters/enable_unsafe_noiommu_mode",
		 root_or_default(root));
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == 'Y' || c == '1';
}

/* Memory space + bus master: the controller fetches commands and writes
 * completions by DMA only when Bus Master Enable is set. */
int vfio_cfg_enable_bus_master(struct vfio_backing *vb)
{
	uint16_t cmd;

	if (pread(vb->device, &cmd, sizeof(cmd), (off_t)(vb->cfg_off + PCI_CFG_COMMAND)) !=
	    (ssize_t)sizeof(cmd)) {
		nvmk_err(vb->base.name, NVMK_LOG_NOQ, "reading the PCI command register: %s",
			 strerror(errno));
		return -EIO;
	}
	if ((cmd & (PCI_CMD_MEMORY | PCI_CMD_MASTER)) == (PCI_CMD_MEMORY | PCI_CMD_MASTER))
		return 0;
	cmd |= PCI_CMD_MEMORY | PCI_CMD_MASTER;
	if (pwrite(vb->device, &cmd, sizeof(cmd), (off_t)(vb->cfg_off + PCI_CFG_COMMAND)) !=
	    (ssize_t)sizeof(cmd)) {
		nvmk_err(vb->base.name, NVMK_LOG_NOQ, "enabling bus mastering: %s",
			 strerror(errno));
		return -EIO;
	}
	return 0;
}
