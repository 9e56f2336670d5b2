/* SPDX-License-Identifier: MIT */
/*
 * Device names of the daemon, as the CLI takes them: "emu", "emu:FILE", a PCI
 * address, "vfio-user:SOCKET", "/dev/nvmeXnY". Each becomes a manager device spec.
 */
#ifndef NVMKD_DEVICES_H
#define NVMKD_DEVICES_H

#include "nvmekeep/manager.h"

/* Storage behind one spec; the spec's pointers point into it. */
struct nvmkd_dev_spec {
	struct nvmk_mgr_device_spec spec;
	char id[NVMK_MGR_ID_MAX + 1];
	char path[4096];
};

/**
 * nvmkd_dev_spec_make - make the manager spec of device name @name (the
 * library's nvmk_dev_spec_parse says what it means). out->id is the device's
 * id: @name, or the full address of a PCI function given as "BB:DD.F".
 * @io_queues: I/O queue pairs to ask the controller for
 * @err:       on failure, what is wrong and the accepted forms
 * Return: 0 or -EINVAL.
 */
int nvmkd_dev_spec_make(const char *name, unsigned io_queues, struct nvmkd_dev_spec *out,
			char *err, size_t errlen);

/* How the built-in emulated controller ("emu", "emu:FILE") runs I/O commands. */
enum nvmkd_emu_exec {
	NVMKD_EMU_EXEC_AUTO,   /* inline for the RAM namespace on <= 2 online CPUs */
	NVMKD_EMU_EXEC_WORKER, /* on the emulator's worker thread */
	NVMKD_EMU_EXEC_INLINE, /* on the I/O thread that rings (nvmk_emu_config.inline_io) */
};

/** nvmkd_dev_set_emu_exec - the --emu-exec choice for every "emu" device made
 *  after it (set once at start, before any nvmkd_dev_spec_make). */
void nvmkd_dev_set_emu_exec(enum nvmkd_emu_exec mode);

/** nvmkd_dev_spec_parse - nvmkd_dev_spec_make with the message on stderr. */
int nvmkd_dev_spec_parse(const char *name, unsigned io_queues, struct nvmkd_dev_spec *out);

/**
 * nvmkd_dev_set_handover - what device @id inherits from a predecessor: its
 * vfio-user connection (nvmk_vfio_user_handover_format string) or its VFIO
 * device (nvmk_vfio_handover_format string); its factory adopts it when the
 * manager restores the device. Return: 0, -ENOMEM, -ENOSPC.
 */
int nvmkd_dev_set_handover(const char *id, const char *handover);

/** nvmkd_dev_drop_handovers - close the inherited connections and VFIO devices nobody adopted
 *  (a restore given up: the devices are brought up afresh). */
void nvmkd_dev_drop_handovers(void);

#endif /* NVMKD_DEVICES_H */
