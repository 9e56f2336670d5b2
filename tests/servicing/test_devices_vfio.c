// SPDX-License-Identifier: MIT
/*
 * The daemon's side of a VFIO device handed over by servicing
 * (tools/nvmekeepd/devices.c), without a VFIO device: what a successor does
 * with the handover string it inherited.
 *  - a PCI device over VFIO counts as keep-alive capable ("host");
 *  - restoring with a handover that is malformed, for another function, or
 *    whose fds are not a VFIO device: refused with an error, the inherited
 *    fds left open (nvmk_backing_vfio_adopt's contract);
 *  - a handover nobody adopted (the restore was given up, or the device's
 *    save failed and it is opened afresh): its fds are closed, so that the
 *    function is released (reset) and its group free for a new open.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices.h"
#include "nvmekeep/backing.h"

/* a function no machine has: a fresh open must find nothing to touch */
#define ADDR "ffff:ff:1f.7"

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* A handover string naming five fresh fds (container, group, device, two
 * vectors) that are not VFIO objects; @fds receives them. */
static void make_handover(const char *addr, int fds[5], char *buf, size_t len)
{
	struct nvmk_vfio_handover ho = {0};

	for (int i = 0; i < 5; i++) {
		fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	snprintf(ho.pci_addr, sizeof(ho.pci_addr), "%s", addr);
	ho.container_fd = fds[0];
	ho.group_fd = fds[1];
	ho.device_fd = fds[2];
	ho.nirqs = 2;
	ho.irq_fds[0] = fds[3];
	ho.irq_fds[1] = fds[4];
	ho.nmaps = 1;
	ho.maps[0] = (struct nvmk_vfio_handover_map){
	    .iova = 0x100000, .size = 0x4000, .fd = fds[0], .fd_offset = 0x2000};
	assert_true(nvmk_vfio_handover_format(&ho, buf, len) > 0);
}

static void test_vfio_spec_keep_alive_capable(void **state)
{
	struct nvmkd_dev_spec d;

	(void)state;
	assert_int_equal(nvmkd_dev_spec_parse(ADDR, 3, &d), 0);
	assert_int_equal(d.spec.kind, NVMK_MGR_BACKING_FACTORY);
	assert_non_null(d.spec.factory.create);
	assert_true(d.spec.factory.keep_alive_capable);
}

static void test_adopt_refuses_non_vfio_fds(void **state)
{
	struct nvmkd_dev_spec d;
	struct nvmk_backing *b = NULL;
	char h[1024];
	int fds[5];

	(void)state;
	assert_int_equal(nvmkd_dev_spec_parse(ADDR, 3, &d), 0);
	make_handover(ADDR, fds, h, sizeof(h));
	assert_int_equal(nvmkd_dev_set_handover(ADDR, h), 0);
	/* /dev/null is no VFIO PCI device: refused before anything is touched */
	assert_int_equal(d.spec.factory.create(NULL, ADDR, true, &b), -EBADF);
	assert_null(b);
	for (int i = 0; i < 5; i++) {
		assert_true(fd_open(fds[i])); /* left to the caller */
		close(fds[i]);
	}
}

static void test_adopt_refuses_other_function(void **state)
{
	struct nvmkd_dev_spec d;
	struct nvmk_backing *b = NULL;
	char h[1024];
	int fds[5];

	(void)state;
	assert_int_equal(nvmkd_dev_spec_parse(ADDR, 3, &d), 0);
	make_handover("ffff:ff:1f.6", fds, h, sizeof(h));
	assert_int_equal(nvmkd_dev_set_handover(ADDR, h), 0);
	assert_int_equal(d.spec.factory.create(NULL, ADDR, true, &b), -EINVAL);
	assert_null(b);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
}

static void test_adopt_refuses_malformed(void **state)
{
	struct nvmkd_dev_spec d;
	struct nvmk_backing *b = NULL;

	(void)state;
	assert_int_equal(nvmkd_dev_spec_parse(ADDR, 3, &d), 0);
	assert_int_equal(nvmkd_dev_set_handover(ADDR, "nvmk-vfio1;ffff:ff:1f.7;type9;1,2,3"), 0);
	assert_int_equal(d.spec.factory.create(NULL, ADDR, true, &b), -EINVAL);
	assert_null(b);
}

static void test_drop_closes_fds(void **state)
{
	char h[1024];
	int fds[5];

	(void)state;
	make_handover(ADDR, fds, h, sizeof(h));
	assert_int_equal(nvmkd_dev_set_handover(ADDR, h), 0);
	nvmkd_dev_drop_handovers();
	for (int i = 0; i < 5; i++)
		assert_false(fd_open(fds[i]));
}

/* A device whose save failed is opened afresh (restoring = false): the
 * inherited fds are closed first, whatever the fresh open then finds (here:
 * no such function). */
static void test_fresh_open_closes_inherited(void **state)
{
	struct nvmkd_dev_spec d;
	struct nvmk_backing *b = NULL;
	char h[1024];
	int fds[5];

	(void)state;
	assert_int_equal(nvmkd_dev_spec_parse(ADDR, 3, &d), 0);
	make_handover(ADDR, fds, h, sizeof(h));
	assert_int_equal(nvmkd_dev_set_handover(ADDR, h), 0);
	assert_int_not_equal(d.spec.factory.create(NULL, ADDR, false, &b), 0);
	assert_null(b);
	for (int i = 0; i < 5; i++)
		assert_false(fd_open(fds[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vfio_spec_keep_alive_capable),
	    cmocka_unit_test(test_adopt_refuses_non_vfio_fds),
	    cmocka_unit_test(test_adopt_refuses_other_function),
	    cmocka_unit_test(test_adopt_refuses_malformed),
	    cmocka_unit_test(test_drop_closes_fds),
	    cmocka_unit_test(test_fresh_open_closes_inherited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
