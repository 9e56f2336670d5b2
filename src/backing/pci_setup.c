/* SPDX-License-Identifier: MIT */
/*
 * `nvmekeep setup`: list NVMe PCI functions and move them between the
 * kernel nvme driver and vfio-pci (driver_override + drivers_probe, the
 * mechanism that binds exactly one function, whatever its IDs).
 *
 * Only NVMe controllers (class 010802h) are ever moved: a mistyped address
 * must not take the network card or the boot disk's SATA controller away.
 * Taking a function away from nvme destroys its block devices, so a function
 * in use is refused unless forced, as SPDK's setup script does: a mounted
 * filesystem or swap on a namespace or partition, a holder stacked on one
 * (LVM / device mapper / MD: /sys/block/X/holders), or a process with the
 * block device or the controller's character device open (/proc/PID/fd).
 * Giving a function back to nvme blocks in the kernel until every user of
 * its VFIO group file has closed it, so that is refused too while a process
 * has it open. A dry run checks and says what it would do, and changes
 * nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmount/libmount.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

/* ---- a text buffer of findings ---- */

struct text {
	char *buf;
	size_t len, used;
	int count;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	t->count++;
	if (!t->buf || t->used + 3 >= t->len)
		return;
	if (t->used) {
		memcpy(t->buf + t->used, "; ", 3);
		t->used += 2;
	}
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

/* ---- what the function's namespaces are ---- */

#define SETUP_MAX_NAMES 64

struct names {
	char v[SETUP_MAX_NAMES][48];
	unsigned n;
};

static void names_add(struct names *nm, const char *s)
{
	for (unsigned i = 0; i < nm->n; i++)
		if (!strcmp(nm->v[i], s))
			return;
	/* Kernel disk and controller names fit in DISK_NAME_LEN (32): a longer
	 * directory entry is no device name, and is not recorded truncated
	 * (a cut name could match another device). */
	if (nm->n < SETUP_MAX_NAMES && strlen(s) < sizeof(nm->v[0]))
		memcpy(nm->v[nm->n++], s, strlen(s) + 1);
}

/* Controller character devices (nvmeX) and namespace block devices
 * (nvmeXnY) of @addr, from its nvme/ directory in sysfs. */
static void function_devices(const char *root, const char *addr, struct names *ctrls,
			     struct names *disks)
{
	char p[VFIO_PATH_MAX];
	struct dirent *c;
	DIR *cd;

	if (vfio_sysfs_dev_path(root, addr, "nvme", p, sizeof(p)) < 0 || !(cd = opendir(p)))
		return;
	while ((c = readdir(cd))) {
		char q[VFIO_PATH_MAX];
		struct dirent *e;
		unsigned a, b, ns;
		char tail;
		DIR *nd;

		if (sscanf(c->d_name, "nvme%u%c", &a, &tail) != 1)
			continue;
		names_add(ctrls, c->d_name);
		if (snprintf(q, sizeof(q), "%s/%s", p, c->d_name) >= (int)sizeof(q) ||
		    !(nd = opendir(q)))
			continue;
		while ((e = readdir(nd))) {
			char disk[48];

			/* nvme<ctrl>n<ns>, or nvme<subsys>c<ctrl>n<ns> under native
			 * multipath, whose disk is nvme<subsys>n<ns>. */
			if (sscanf(e->d_name, "nvme%uc%un%u%c", &a, &b, &ns, &tail) == 3)
				snprintf(disk, sizeof(disk), "nvme%un%u", a, ns);
			else if (sscanf(e->d_name, "nvme%un%u%c", &a, &ns, &tail) == 2)
				snprintf(disk, sizeof(disk), "nvme%un%u", a, ns);
			else
				continue;
			names_add(disks, disk);
		}
		closedir(nd);
	}
	closedir(cd);
}

/* Whether device path @dev is /dev/@disk or one of its partitions. */
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

static const char *proc_dir(const char *proc_root)
{
	return proc_root && proc_root[0] ? proc_root : "/proc";
}

/* Device numbers of @disks and their partitions (sysfs block/X/dev and
 * block/X/XpN/dev, "MAJ:MIN"); at most @max. */
static unsigned disk_devnos(const char *root, const struct names *disks, dev_t *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < disks->n; i++) {
		char p[VFIO_PATH_MAX], q[VFIO_PATH_MAX + 300];
		unsigned maj, min;
		struct dirent *e;
		FILE *f;
		DIR *d;

		snprintf(p, sizeof(p), "%s/block/%s", root, disks->v[i]);
		d = opendir(p);
		if (!d)
			continue;
		while ((e = readdir(d)) && n < max) {
			/* the disk's own "dev", and each partition directory's */
			if (strcmp(e->d_name, "dev") &&
			    strncmp(e->d_name, disks->v[i], strlen(disks->v[i])))
				continue;
			if (!strcmp(e->d_name, "dev"))
				snprintf(q, sizeof(q), "%s/dev", p);
			else
				snprintf(q, sizeof(q), "%s/%s/dev", p, e->d_name);
			f = fopen(q, "re");
			if (!f)
				continue;
			if (fscanf(f, "%u:%u", &maj, &min) == 2)
				out[n++] = makedev(maj, min);
			fclose(f);
		}
		closedir(d);
	}
	return n;
}

/*
 * Filesystems mounted from @disks (or their partitions) and swap areas on
 * them, from the kernel's tables as libmount parses them: mountinfo names
 * each mount's device by number, so a mount made through any name of the
 * device (a /dev/disk/by-id link, a node of another name) is found, and the
 * mount points come unescaped; /proc/mounts (source names only) when there
 * is no mountinfo.
 */
static void check_mounts(const char *root, const char *proc_root, const struct names *disks,
			 struct text *out)
{
	char p[VFIO_PATH_MAX];
	struct libmnt_table *tb;
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	dev_t devno[64];
	unsigned ndev = disk_devnos(root, disks, devno, 64);

	if (!it)
		return;
	snprintf(p, sizeof(p), "%s/self/mountinfo", proc_dir(proc_root));
	if (access(p, R_OK))
		snprintf(p, sizeof(p), "%s/mounts", proc_dir(proc_root));
	tb = mnt_new_table();
	if (tb && mnt_table_parse_file(tb, p) == 0) {
		while (mnt_table_next_fs(tb, it, &fs) == 0) {
			const char *src = mnt_fs_get_srcpath(fs), *dir = mnt_fs_get_target(fs);
			dev_t dn = mnt_fs_get_devno(fs);
			bool by_name = false, by_number = false;

			for (unsigned i = 0; src && !by_name && i < disks->n; i++)
				by_name = source_is_disk(src, disks->v[i]);
			for (unsigned i = 0; dn && !by_name && !by_number && i < ndev; i++)
				by_number = dn == devno[i];
			if (by_name)
				text_add(out, "mounted filesystem %s on %s", src, dir ? dir : "?");
			else if (by_number)
				text_add(out, "mounted filesystem %s (device %u:%u) on %s",
					 src ? src : "?", major(dn), minor(dn), dir ? dir : "?");
		}
	}
	mnt_unref_table(tb);

	snprintf(p, sizeof(p), "%s/swaps", proc_dir(proc_root));
	mnt_reset_iter(it, MNT_ITER_FORWARD);
	tb = mnt_new_table();
	if (tb && !access(p, R_OK) && mnt_table_parse_swaps(tb, p) == 0) {
		while (mnt_table_next_fs(tb, it, &fs) == 0) {
			const char *src = mnt_fs_get_srcpath(fs);

			for (unsigned i = 0; src && i < disks->n; i++)
				if (source_is_disk(src, disks->v[i]))
					text_add(out, "swap on %s", src);
		}
	}
	mnt_unref_table(tb);
	mnt_free_iter(it);
}

/* Entries of @dir (a holders directory) into @out as "X is held by Y". */
static void holders_of(const char *dir, const char *name, struct text *out)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			text_add(out, "%s is held by %s (LVM, device mapper or MD)", name,
				 e->d_name);
	closedir(d);
}

/* /sys/block/DISK/holders and those of its partitions (DISK/DISKpN/holders). */
static void check_holders(const char *root, const struct names *disks, struct text *out)
{
	for (unsigned i = 0; i < disks->n; i++) {
		char p[VFIO_PATH_MAX], q[VFIO_PATH_MAX + 300];
		struct dirent *e;
		DIR *d;

		snprintf(p, sizeof(p), "%s/block/%s", root, disks->v[i]);
		snprintf(q, sizeof(q), "%s/holders", p);
		holders_of(q, disks->v[i], out);
		d = opendir(p);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			char dev[300];

			snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
			if (strcmp(e->d_name, disks->v[i]) == 0 ||
			    !source_is_disk(dev, disks->v[i]))
				continue;
			snprintf(q, sizeof(q), "%s/%s/holders", p, e->d_name);
			holders_of(q, e->d_name, out);
		}
		closedir(d);
	}
}

/* Processes with one of the devices open: every /proc/PID/fd/N link whose
 * target is /dev/DISK (or a partition), or one of @exact. */
static void check_open_files(const char *proc_root, const struct names *disks,
			     const struct names *exact, struct text *out)
{
	char p[VFIO_PATH_MAX];
	struct dirent *pe;
	DIR *pd;

	pd = opendir(proc_dir(proc_root));
	if (!pd)
		return;
	while ((pe = readdir(pd))) {
		char fdp[VFIO_PATH_MAX + 300];
		struct dirent *fe;
		bool hit = false;
		DIR *fd;

		if (pe->d_name[0] < '0' || pe->d_name[0] > '9')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s/fd", proc_dir(proc_root), pe->d_name);
		fd = opendir(fdp);
		if (!fd)
			continue; /* gone, or not ours to look at */
		while (!hit && (fe = readdir(fd))) {
			char l[VFIO_PATH_MAX + 600], target[512];
			ssize_t n;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(l, sizeof(l), "%s/%s", fdp, fe->d_name);
			n = readlink(l, target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			for (unsigned i = 0; !hit && i < disks->n; i++)
				hit = source_is_disk(target, disks->v[i]);
			for (unsigned i = 0; !hit && i < exact->n; i++)
				hit = !strcmp(target, exact->v[i]);
			if (hit) {
				char comm[64] = "?";
				FILE *f;

				snprintf(p, sizeof(p), "%s/%s/comm", proc_dir(proc_root),
					 pe->d_name);
				f = fopen(p, "re");
				if (f) {
					if (fgets(comm, sizeof(comm), f))
						comm[strcspn(comm, "\n")] = '\0';
					fclose(f);
				}
				text_add(out, "%s is open in process %s (%s)", target, pe->d_name,
					 comm);
			}
		}
		closedir(fd);
	}
	closedir(pd);
}

/* Everything that uses @addr while it is on the nvme driver. */
static int in_use_nvme(const char *root, const char *proc_root, const char *addr, struct text *out)
{
	struct names ctrls = {.n = 0}, disks = {.n = 0}, chr = {.n = 0};

	function_devices(root, addr, &ctrls, &disks);
	for (unsigned i = 0; i < ctrls.n; i++) {
		char d[64];

		snprintf(d, sizeof(d), "/dev/%s", ctrls.v[i]);
		names_add(&chr, d);
	}
	check_mounts(root, proc_root, &disks, out);
	check_holders(root, &disks, out);
	check_open_files(proc_root, &disks, &chr, out);
	return out->count;
}

/* Processes with @addr's VFIO group file open (the kernel would block the
 * unbind until they close it). */
static int in_use_vfio(const char *root, const char *proc_root, const char *addr, struct text *out)
{
	struct names none = {.n = 0}, grp = {.n = 0};
	char g[16], d[64];

	if (vfio_sysfs_iommu_group(root, addr, g, sizeof(g)) < 0)
		return 0;
	snprintf(d, sizeof(d), "/dev/vfio/%s", g);
	names_add(&grp, d);
	snprintf(d, sizeof(d), "/dev/vfio/noiommu-%s", g);
	names_add(&grp, d);
	check_open_files(proc_root, &none, &grp, out);
	return out->count;
}

bool nvmk_pci_is_nvme(const char *sysfs_root, const char *addr)
{
	char a[16];
	uint64_t cls;

	return vfio_pci_addr_normalize(addr, a) == 0 &&
	       vfio_sysfs_read_hex(sysfs_root, a, "class", &cls) == 0 && cls == PCI_CLASS_NVME;
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
static int rebind(const char *addr_in, const char *want, const struct nvmk_pci_setup_opts *o)
{
	char addr[16], drv[64], p[VFIO_PATH_MAX], users[2048];
	const char *root = sys_root(o->sysfs_root);
	struct text plan = {.buf = o->report, .len = o->report_len};
	struct text use = {.buf = users, .len = sizeof(users)};
	struct stat st;
	uint64_t cls;
	int err, n;

	users[0] = '\0';
	if (o->report && o->report_len)
		o->report[0] = '\0';
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
	/* only NVMe controllers, whatever --force says */
	err = vfio_sysfs_read_hex(root, addr, "class", &cls);
	if (err || cls != PCI_CLASS_NVME) {
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "%s is not an NVMe controller (class %06llx, NVMe is 010802): refusing "
			 "to touch it (see `nvmekeep setup list`)",
			 addr, err ? 0ull : (unsigned long long)cls);
		return -EINVAL;
	}
	err = vfio_sysfs_driver(root, addr, drv, sizeof(drv));
	if (err)
		return err;
	if (!strcmp(drv, want)) {
		text_add(&plan, "%s is already bound to %s: nothing to do", addr, want);
		return 0;
	}
	snprintf(p, sizeof(p), "%s/bus/pci/drivers/%s", root, want);
	if (stat(p, &st) < 0) {
		nvmk_err(addr, NVMK_LOG_NOQ, "driver %s is not loaded: modprobe %s", want, want);
		return -ENODEV;
	}
	if (!strcmp(drv, "nvme"))
		n = in_use_nvme(root, o->proc_root, addr, &use);
	else if (!strcmp(drv, "vfio-pci"))
		n = in_use_vfio(root, o->proc_root, addr, &use);
	else
		n = 0;
	if (n > 0 && !o->force) {
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "refusing to unbind %s from %s: in use: %s (stop using it, or force)",
			 addr, drv, users);
		return -EBUSY;
	}
	if (n > 0)
		nvmk_warn(addr, NVMK_LOG_NOQ, "%s unbind from %s while in use: %s",
			  o->dry_run ? "would force the" : "forced", drv, users);

	/* driver_override makes the probe below pick exactly @want; an empty
	 * override (newline) restores matching by IDs/class for nvme. */
	vfio_sysfs_dev_path(root, addr, "driver_override", p, sizeof(p));
	text_add(&plan, "write '%s' to %s", strcmp(want, "vfio-pci") ? "\\n" : "vfio-pci", p);
	if (!o->dry_run) {
		err = write_attr(p, strcmp(want, "vfio-pci") ? "\n" : "vfio-pci");
		if (err) {
			nvmk_err(addr, NVMK_LOG_NOQ, "writing %s: %s%s", p, strerror(-err),
				 err == -EACCES || err == -EPERM ? " (needs root)" : "");
			return err;
		}
	}
	if (drv[0]) {
		vfio_sysfs_dev_path(root, addr, "driver/unbind", p, sizeof(p));
		text_add(&plan, "unbind from %s (write %s to %s)", drv, addr, p);
		if (!o->dry_run) {
			err = write_attr(p, addr);
			if (err) {
				nvmk_err(addr, NVMK_LOG_NOQ, "unbinding from %s: %s", drv,
					 strerror(-err));
				return err;
			}
		}
	}
	snprintf(p, sizeof(p), "%s/bus/pci/drivers_probe", root);
	text_add(&plan, "probe (write %s to %s), which binds it to %s", addr, p, want);
	if (o->dry_run) {
		nvmk_info(addr, NVMK_LOG_NOQ, "dry run: nothing changed");
		return 0;
	}
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

int nvmk_pci_setup_bind(const char *addr, const struct nvmk_pci_setup_opts *opts)
{
	struct nvmk_pci_setup_opts o = {0};

	if (opts)
		o = *opts;
	return rebind(addr, "vfio-pci", &o);
}

int nvmk_pci_setup_unbind(const char *addr, const struct nvmk_pci_setup_opts *opts)
{
	struct nvmk_pci_setup_opts o = {0};

	if (opts)
		o = *opts;
	return rebind(addr, "nvme", &o);
}

int nvmk_pci_bind_vfio(const char *sysfs_root, const char *proc_root, const char *addr, bool force)
{
	struct nvmk_pci_setup_opts o = {
	    .sysfs_root = sysfs_root, .proc_root = proc_root, .force = force};

	return rebind(addr, "vfio-pci", &o);
}

int nvmk_pci_unbind_to_nvme(const char *sysfs_root, const char *proc_root, const char *addr,
			    bool force)
{
	struct nvmk_pci_setup_opts o = {
	    .sysfs_root = sysfs_root, .proc_root = proc_root, .force = force};

	return rebind(addr, "nvme", &o);
}
