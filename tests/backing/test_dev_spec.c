/* SPDX-License-Identifier: MIT */
/*
 * The device-string parser (nvmk_dev_spec_parse): every accepted form with
 * its parts, every malformed form with the reason it names, and the PCI
 * binding lookup on a fake sysfs tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/backing.h"

static void test_emu(void **state)
{
	struct nvmk_dev_spec s;
	char why[128] = "x";

	(void)state;
	assert_int_equal(nvmk_dev_spec_parse("emu", &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, NVMK_DEV_EMU);
	assert_null(s.arg);
	assert_string_equal(why, "");
	assert_int_equal(nvmk_dev_spec_parse("emu:/srv/disk.img", &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, NVMK_DEV_EMU);
	assert_string_equal(s.arg, "/srv/disk.img");
	/* a relative FILE is the emulator's business, as is a colon in it */
	assert_int_equal(nvmk_dev_spec_parse("emu:disk:1.img", &s, NULL, 0), 0);
	assert_string_equal(s.arg, "disk:1.img");
}

static void test_vfio_user(void **state)
{
	struct nvmk_dev_spec s;

	(void)state;
	assert_int_equal(nvmk_dev_spec_parse("vfio-user:/run/emu.sock", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_VFIO_USER);
	assert_string_equal(s.arg, "/run/emu.sock");
	assert_false(nvmk_dev_spec_is_kernel(&s));
	/* the backing's accessor agrees with the parser */
	assert_string_equal(nvmk_backing_vfio_user_spec_path("vfio-user:/run/emu.sock"),
			    "/run/emu.sock");
	assert_null(nvmk_backing_vfio_user_spec_path("vfio-user:"));
	assert_null(nvmk_backing_vfio_user_spec_path("emu"));
	assert_null(nvmk_backing_vfio_user_spec_path(NULL));
}

static void test_pci(void **state)
{
	struct nvmk_dev_spec s;

	(void)state;
	assert_int_equal(nvmk_dev_spec_parse("0000:00:03.0", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_PCI);
	assert_string_equal(s.pci_addr, "0000:00:03.0");
	/* upper case and the short form become the kernel's spelling */
	assert_int_equal(nvmk_dev_spec_parse("ABCD:Ef:1F.7", &s, NULL, 0), 0);
	assert_string_equal(s.pci_addr, "abcd:ef:1f.7");
	assert_int_equal(nvmk_dev_spec_parse("01:00.0", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_PCI);
	assert_string_equal(s.pci_addr, "0000:01:00.0");
	assert_int_equal(nvmk_dev_spec_parse("ff:1f.7", &s, NULL, 0), 0);
	assert_string_equal(s.pci_addr, "0000:ff:1f.7");
	assert_false(nvmk_dev_spec_is_kernel(&s));
}

static void test_kernel(void **state)
{
	struct nvmk_dev_spec s;

	(void)state;
	assert_int_equal(nvmk_dev_spec_parse("/dev/nvme0n1", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_KERNEL_NS);
	assert_int_equal(s.ctrl_instance, 0);
	assert_int_equal(s.ns_instance, 1);
	assert_string_equal(s.arg, "/dev/nvme0n1");
	assert_true(nvmk_dev_spec_is_kernel(&s));
	assert_int_equal(nvmk_dev_spec_parse("/dev/nvme12n34", &s, NULL, 0), 0);
	assert_int_equal(s.ctrl_instance, 12);
	assert_int_equal(s.ns_instance, 34);
	assert_int_equal(nvmk_dev_spec_parse("/dev/nvme3", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_KERNEL_CTRL);
	assert_int_equal(s.ctrl_instance, 3);
	assert_true(nvmk_dev_spec_is_kernel(&s));
	/* other absolute paths: a block device or file through the kernel */
	assert_int_equal(nvmk_dev_spec_parse("/dev/loop0", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_PATH);
	assert_string_equal(s.arg, "/dev/loop0");
	assert_int_equal(nvmk_dev_spec_parse("/tmp/x.img", &s, NULL, 0), 0);
	assert_int_equal(s.kind, NVMK_DEV_PATH);
	assert_true(nvmk_dev_spec_is_kernel(&s));
}

/* Each malformed string: -EINVAL and a reason containing @reason. */
static void expect_bad(const char *str, const char *reason)
{
	struct nvmk_dev_spec s;
	char why[256];

	memset(why, 0, sizeof(why));
	assert_int_equal(nvmk_dev_spec_parse(str, &s, why, sizeof(why)), -EINVAL);
	if (!strstr(why, reason))
		fail_msg("'%s': reason '%s' does not contain '%s'", str ? str : "(null)", why,
			 reason);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_bad(NULL, "empty device name");
	expect_bad("", "empty device name");
	expect_bad("emu:", "a FILE must follow the colon");
	expect_bad("vfio-user:", "a SOCKET path must follow the colon");
	expect_bad("0000:zz", "not a PCI address: DDDD:BB:DD.F has 12 characters, 7 given");
	expect_bad("00:3.0", "not a PCI address: BB:DD.F has 7 characters, 6 given");
	expect_bad("a:b", "not a PCI address: DDDD:BB:DD.F has 12");
	expect_bad("0000:00:3.0", "not a PCI address");
	expect_bad("0000:0g:03.0", "'g' at position 7 is not a hex digit");
	expect_bad("0000-00:03.0", "':' expected at position 5");
	expect_bad("00:03:0", "'.' expected at position 6");
	expect_bad("0000:00:20.0", "device 20 is above 1f");
	expect_bad("00:1f.8", "function 8 is above 7");
	expect_bad("nvme0", "a kernel NVMe namespace is given by its path, like /dev/nvme0n1");
	expect_bad("nvme0n1", "by its path");
	expect_bad("disk0", "not a device name");
	expect_bad("EMU", "not a device name");
	expect_bad("/dev/nvme", "/dev/nvmeXnY (a namespace) or /dev/nvmeX (a controller)");
	expect_bad("/dev/nvme0n", "/dev/nvmeXnY");
	expect_bad("/dev/nvme0n1p1", "/dev/nvmeXnY");
	expect_bad("/dev/nvme-fabrics", "/dev/nvmeXnY");
	expect_bad("/dev/nvme99999999999n1", "/dev/nvmeXnY");
	/* without a buffer the answer is the same */
	assert_int_equal(nvmk_dev_spec_parse("emu:", &(struct nvmk_dev_spec){0}, NULL, 0), -EINVAL);
	assert_int_equal(nvmk_dev_spec_parse("emu", NULL, NULL, 0), -EINVAL);
	/* the forms name every accepted one */
	assert_non_null(strstr(nvmk_dev_spec_forms(), "'emu:FILE'"));
	assert_non_null(strstr(nvmk_dev_spec_forms(), "BB:DD.F"));
	assert_non_null(strstr(nvmk_dev_spec_forms(), "'vfio-user:SOCKET'"));
	assert_non_null(strstr(nvmk_dev_spec_forms(), "/dev/nvmeXnY"));
	assert_non_null(strstr(nvmk_dev_spec_forms(), "controller /dev/nvmeX,"));
}

/* ---- nvmk_pci_bound_driver on a fake sysfs ---- */

static void mkdirs(const char *root, const char *rel)
{
	char p[512], *c;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (c = p + strlen(root) + 1; (c = strchr(c, '/')); c++) {
		*c = 0;
		mkdir(p, 0755);
		*c = '/';
	}
	assert_int_equal(mkdir(p, 0755) == 0 || errno == EEXIST, 1);
}

static void test_bound_driver(void **state)
{
	char root[] = "/tmp/nvmk-devspec-XXXXXX", p[512], drv[32];

	(void)state;
	assert_non_null(mkdtemp(root));
	mkdirs(root, "bus/pci/devices/0000:00:03.0");
	mkdirs(root, "bus/pci/devices/0000:00:04.0");
	mkdirs(root, "bus/pci/drivers/nvme");
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:00:03.0/driver", root);
	assert_int_equal(symlink("../../../bus/pci/drivers/nvme", p), 0);

	assert_int_equal(nvmk_pci_bound_driver(root, "0000:00:03.0", drv, sizeof(drv)), 0);
	assert_string_equal(drv, "nvme");
	/* the short form names the same function */
	assert_int_equal(nvmk_pci_bound_driver(root, "00:03.0", drv, sizeof(drv)), 0);
	assert_string_equal(drv, "nvme");
	assert_int_equal(nvmk_pci_bound_driver(root, "0000:00:04.0", drv, sizeof(drv)), 0);
	assert_string_equal(drv, "");
	assert_int_equal(nvmk_pci_bound_driver(root, "0000:00:05.0", drv, sizeof(drv)), -ENODEV);
	assert_int_equal(nvmk_pci_bound_driver(root, "0000:zz", drv, sizeof(drv)), -EINVAL);
	assert_int_equal(nvmk_pci_bound_driver(root, "emu", drv, sizeof(drv)), -EINVAL);

	unlink(p);
	snprintf(p, sizeof(p), "rm -rf '%s'", root);
	assert_int_equal(system(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_emu),	      cmocka_unit_test(test_vfio_user),
	    cmocka_unit_test(test_pci),	      cmocka_unit_test(test_kernel),
	    cmocka_unit_test(test_malformed), cmocka_unit_test(test_bound_driver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
