/* SPDX-License-Identifier: MIT */
/*
 * Which driver serves a device (nvmk_config_dev_driver): every form, the
 * OPENHCL_NVME_VFIO rule with and without the function's binding, and the
 * manager's use of it (a PCI device becomes a kernel device only when the
 * configuration says so).
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

#include "nvmekeep/manager.h"

static const char *g_vfio;

static const char *fake_env(const char *name)
{
	return !strcmp(name, "OPENHCL_NVME_VFIO") ? g_vfio : NULL;
}

static struct nvmk_config load(const char *vfio)
{
	struct nvmk_config cfg;

	g_vfio = vfio;
	assert_int_equal(nvmk_config_load(fake_env, NULL, &cfg), 0);
	return cfg;
}

static enum nvmk_dev_driver drv(const struct nvmk_config *cfg, const char *str, const char *bound)
{
	struct nvmk_dev_spec s;

	assert_int_equal(nvmk_dev_spec_parse(str, &s, NULL, 0), 0);
	return nvmk_config_dev_driver(cfg, &s, bound);
}

static void test_forms(void **state)
{
	struct nvmk_config on = load("1"), off = load(NULL);

	(void)state;
	for (int i = 0; i < 2; i++) {
		const struct nvmk_config *c = i ? &on : &off;

		assert_int_equal(drv(c, "emu", NULL), NVMK_DRIVER_EMU);
		assert_int_equal(drv(c, "emu:/x.img", NULL), NVMK_DRIVER_EMU);
		assert_int_equal(drv(c, "vfio-user:/s", NULL), NVMK_DRIVER_VFIO_USER);
		assert_int_equal(drv(c, "/dev/nvme0n1", NULL), NVMK_DRIVER_KERNEL);
		assert_int_equal(drv(c, "/dev/nvme0", NULL), NVMK_DRIVER_KERNEL);
		assert_int_equal(drv(c, "/tmp/file", NULL), NVMK_DRIVER_KERNEL);
	}
	assert_int_equal(nvmk_config_dev_driver(&on, NULL, NULL), 0);
	assert_string_equal(nvmk_dev_driver_name(NVMK_DRIVER_KERNEL), "kernel");
	assert_string_equal(nvmk_dev_driver_name(NVMK_DRIVER_VFIO), "vfio");
	assert_string_equal(nvmk_dev_driver_name(NVMK_DRIVER_VFIO_USER), "vfio-user");
	assert_string_equal(nvmk_dev_driver_name(NVMK_DRIVER_EMU), "emu");
	assert_string_equal(nvmk_dev_driver_name(0), "?");
}

static void test_pci_rule(void **state)
{
	struct nvmk_config on = load("1"), yes = load("true"), off = load("0"), unset = load(NULL);

	(void)state;
	/* OPENHCL_NVME_VFIO on: the userspace driver, whatever the binding */
	assert_int_equal(drv(&on, "0000:00:03.0", NULL), NVMK_DRIVER_VFIO);
	assert_int_equal(drv(&yes, "00:03.0", "nvme"), NVMK_DRIVER_VFIO);
	/* off or unset (the default): the configuration alone -> kernel */
	assert_int_equal(drv(&off, "0000:00:03.0", NULL), NVMK_DRIVER_KERNEL);
	assert_int_equal(drv(&unset, "00:03.0", NULL), NVMK_DRIVER_KERNEL);
	/* with the binding: only a function on nvme goes to the kernel */
	assert_int_equal(drv(&unset, "0000:00:03.0", "nvme"), NVMK_DRIVER_KERNEL);
	assert_int_equal(drv(&unset, "0000:00:03.0", "vfio-pci"), NVMK_DRIVER_VFIO);
	assert_int_equal(drv(&off, "0000:00:03.0", ""), NVMK_DRIVER_VFIO);
}

/* A factory that must not be called: the device is never brought up here. */
static int no_factory(void *ctx, const char *id, bool restoring, struct nvmk_backing **out)
{
	(void)ctx;
	(void)id;
	(void)restoring;
	(void)out;
	return -ENODEV;
}

static int kind_of(struct nvmk_mgr *mgr, const char *id, char *kind, size_t len)
{
	struct nvmk_mgr_status st;
	int found = 0;

	assert_int_equal(nvmk_mgr_status(mgr, &st), 0);
	for (unsigned i = 0; i < st.ndevices; i++)
		if (!strcmp(st.devices[i].id, id)) {
			snprintf(kind, len, "%s", st.devices[i].kind);
			found = 1;
		}
	nvmk_mgr_status_free(&st);
	return found;
}

/* The manager applies the rule to a FACTORY device named by a PCI address. */
static void test_manager_uses_rule(void **state)
{
	struct nvmk_config off = load(NULL), on = load("1");
	struct nvmk_mgr_device_spec s = {.kind = NVMK_MGR_BACKING_FACTORY};
	struct nvmk_mgr *mgr;
	char kind[32];

	(void)state;
	s.factory.create = no_factory;
	assert_int_equal(nvmk_mgr_create(&off, NULL, &mgr), 0);
	s.id = "0000:00:03.0";
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	s.id = "my-device"; /* not a device string: the caller's factory */
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	assert_true(kind_of(mgr, "0000:00:03.0", kind, sizeof(kind)));
	assert_string_equal(kind, "kernel");
	assert_true(kind_of(mgr, "my-device", kind, sizeof(kind)));
	assert_string_equal(kind, "factory");
	nvmk_mgr_destroy(mgr);

	assert_int_equal(nvmk_mgr_create(&on, NULL, &mgr), 0);
	s.id = "0000:00:03.0";
	assert_int_equal(nvmk_mgr_add_device(mgr, &s), 0);
	assert_true(kind_of(mgr, "0000:00:03.0", kind, sizeof(kind)));
	assert_string_equal(kind, "factory");
	nvmk_mgr_destroy(mgr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forms),
	    cmocka_unit_test(test_pci_rule),
	    cmocka_unit_test(test_manager_uses_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
