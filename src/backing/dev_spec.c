// SPDX-License-Identifier: MIT
/*
 * What a device string means (include/nvmekeep/backing.h, "Device strings").
 *
 * The one parser of the names every program takes (CLI, manager, daemon, the
 * kernel path's nvmk_kns_open): it decides the form and checks it, nothing
 * more. Which driver then serves a PCI function (the OPENHCL_NVME_VFIO rule)
 * is the manager's nvmk_mgr_dev_driver, a layer above, because it reads the
 * configuration. Nothing here touches the system.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nvmekeep/backing.h"

#define EMU_PREFIX	 "emu:"
#define VFIO_USER_PREFIX "vfio-user:" /* also the backing's name prefix (VFU_PREFIX) */
#define DEV_NVME_PREFIX	 "/dev/nvme"

static const char forms[] =
    "'emu', 'emu:FILE', a PCI address DDDD:BB:DD.F or BB:DD.F in hex (like 0000:01:00.0; "
    "'nvmekeep setup list' shows them), 'vfio-user:SOCKET', a kernel NVMe namespace "
    "/dev/nvmeXnY or controller /dev/nvmeX, or another absolute path (a block device or "
    "file, through the kernel)";

const char *nvmk_dev_spec_forms(void)
{
	return forms;
}

static int fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "DDDD:BB:DD.F" or "BB:DD.F" (domain 0000). PCI Local Bus 3.0: 8-bit bus,
 * 5-bit device, 3-bit function; Linux prints the domain as 4 hex digits. */
static int parse_pci(const char *s, struct nvmk_dev_spec *out, char *why, size_t why_len)
{
	static const char full[] = "xxxx:xx:xx.x", shortf[] = "xx:xx.x";
	const char *colon = strchr(s, ':');
	/* the first colon tells which form was meant: after the domain or the bus */
	const char *shape = colon - s == 2 ? shortf : full;
	size_t n = strlen(shape), off = shape == full ? 0 : 5;
	int dev, fn;

	if (strlen(s) != n)
		return fail(why, why_len, "not a PCI address: %s has %zu characters, %zu given",
			    shape == full ? "DDDD:BB:DD.F" : "BB:DD.F", n, strlen(s));
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'x' && hexval(s[i]) < 0)
			return fail(why, why_len,
				    "not a PCI address: '%c' at position %zu is not a hex digit",
				    s[i], i + 1);
		if (shape[i] != 'x' && s[i] != shape[i])
			return fail(why, why_len,
				    "not a PCI address: '%c' expected at position %zu", shape[i],
				    i + 1);
	}
	dev = hexval(s[n - 4]) * 16 + hexval(s[n - 3]);
	fn = hexval(s[n - 1]);
	if (dev > 0x1f)
		return fail(why, why_len, "not a PCI address: device %02x is above 1f", dev);
	if (fn > 7)
		return fail(why, why_len, "not a PCI address: function %x is above 7", fn);
	memcpy(out->pci_addr, "0000:", 5);
	for (size_t i = 0; i < n; i++)
		out->pci_addr[off + i] = (char)tolower((unsigned char)s[i]);
	out->pci_addr[off + n] = '\0';
	out->kind = NVMK_DEV_PCI;
	return 0;
}

/* Decimal digits at *p (at most 9, no sign); advances *p. */
static bool take_uint(const char **p, unsigned *v)
{
	const char *s = *p;
	unsigned x = 0;
	size_t n = 0;

	while (isdigit((unsigned char)s[n]) && n < 9)
		x = x * 10 + (unsigned)(s[n++] - '0');
	if (n == 0 || isdigit((unsigned char)s[n]))
		return false;
	*p = s + n;
	*v = x;
	return true;
}

/* "/dev/nvmeX" (the controller's character device) or "/dev/nvmeXnY" (a
 * namespace's block device), as the Linux nvme driver names them. */
static int parse_dev_nvme(const char *s, struct nvmk_dev_spec *out, char *why, size_t why_len)
{
	const char *p = s + strlen(DEV_NVME_PREFIX);
	unsigned x, y;

	if (!take_uint(&p, &x))
		goto bad;
	if (!*p) {
		out->kind = NVMK_DEV_KERNEL_CTRL;
		out->ctrl_instance = x;
		return 0;
	}
	if (*p++ != 'n' || !take_uint(&p, &y) || *p)
		goto bad;
	out->kind = NVMK_DEV_KERNEL_NS;
	out->ctrl_instance = x;
	out->ns_instance = y;
	return 0;
bad:
	return fail(why, why_len,
		    "not a kernel NVMe device: /dev/nvmeXnY (a namespace) or /dev/nvmeX (a "
		    "controller) with decimal X and Y is expected");
}

int nvmk_dev_spec_parse(const char *str, struct nvmk_dev_spec *out, char *why, size_t why_len)
{
	if (why && why_len)
		why[0] = '\0';
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!str || !*str)
		return fail(why, why_len, "empty device name");
	out->arg = str;
	if (!strcmp(str, "emu")) {
		out->kind = NVMK_DEV_EMU;
		out->arg = NULL;
		return 0;
	}
	if (!strncmp(str, EMU_PREFIX, strlen(EMU_PREFIX))) {
		if (!str[strlen(EMU_PREFIX)])
			return fail(why, why_len, "a FILE must follow the colon");
		out->kind = NVMK_DEV_EMU;
		out->arg = str + strlen(EMU_PREFIX);
		return 0;
	}
	if (!strncmp(str, VFIO_USER_PREFIX, strlen(VFIO_USER_PREFIX))) {
		if (!str[strlen(VFIO_USER_PREFIX)])
			return fail(why, why_len, "a SOCKET path must follow the colon");
		out->kind = NVMK_DEV_VFIO_USER;
		out->arg = str + strlen(VFIO_USER_PREFIX);
		return 0;
	}
	if (str[0] == '/') {
		if (!strncmp(str, DEV_NVME_PREFIX, strlen(DEV_NVME_PREFIX)))
			return parse_dev_nvme(str, out, why, why_len);
		out->kind = NVMK_DEV_PATH;
		return 0;
	}
	if (strchr(str, ':'))
		return parse_pci(str, out, why, why_len);
	if (!strncmp(str, "nvme", 4))
		return fail(why, why_len,
			    "a kernel NVMe namespace is given by its path, like /dev/nvme0n1");
	return fail(why, why_len, "not a device name");
}

bool nvmk_dev_spec_is_kernel(const struct nvmk_dev_spec *s)
{
	return s && (s->kind == NVMK_DEV_KERNEL_NS || s->kind == NVMK_DEV_KERNEL_CTRL ||
		     s->kind == NVMK_DEV_PATH);
}
