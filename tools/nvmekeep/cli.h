/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep command line: shared declarations. The CLI parses and prints; the
 * library does the work.
 */
#ifndef NVMK_CLI_H
#define NVMK_CLI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"

enum cli_output { CLI_OUT_NORMAL = 0, CLI_OUT_JSON };

/* An opened device: backing + controller, and the emulator when built in. */
struct cli_dev {
	char spec[128];
	struct nvmk_backing *backing;
	struct nvmk_emu *emu; /* NULL for real hardware */
	struct nvmk_ctrl *ctrl;
};

/* Exit codes: 0 ok, 1 the operation failed, 2 bad usage (EX_USAGE-like). */
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/** cli_dev_open - open @spec (NULL/"emu", "emu:FILE", or a PCI address) and
 *  bring the controller up with @opts. Prints the error on failure. */
int cli_dev_open(const char *spec, const struct nvmk_ctrl_opts *opts, struct cli_dev *dev);
void cli_dev_close(struct cli_dev *dev);
/** cli_dev_check - whether @spec is a well-formed DEVICE argument (NULL,
 *  "emu", "emu:FILE", a PCI address DDDD:BB:DD.F or a /path). Run before any
 *  work so a malformed one is a usage error, not a failed open.
 *  Return: 0, or CLI_EXIT_USAGE with the error printed for command @cmd. */
int cli_dev_check(const char *cmd, const char *spec);
/** cli_dev_is_kernel - whether read/write reach @spec through the kernel NVMe
 *  driver (io_uring): a path (/dev/nvmeXnY), or a PCI address bound to nvme
 *  while OPENHCL_NVME_VFIO is off (the default). See device.c. */
bool cli_dev_is_kernel(const char *spec);
/** Default namespace for commands that need one: 1, or the built-in
 *  emulator's null namespace for bench. */
#define CLI_EMU_NULL_NSID 2

/* Parsing helpers: print "nvmekeep: <what>: ..." naming the option and the
 * accepted values on error, return -EINVAL. */
int cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cli_parse_size(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cli_parse_output(const char *s, enum cli_output *out);
/** cli_take_args - after getopt: fill up to @nslots positional arguments in
 *  order (slots not given stay as they were) and refuse any beyond them.
 *  Return: 0 or CLI_EXIT_USAGE (the error is printed). */
int cli_take_args(const char *cmd, int argc, char **argv, const char **slots[], unsigned nslots);
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- control sockets (ctl_client.c): one JSON object per line each way ---- */
/** cli_ctl_connect - connect to @what's UNIX socket @path; on failure say
 *  why, with @hint (may be NULL). Return: the fd or negative errno. */
int cli_ctl_connect(const char *cmd, const char *what, const char *path, const char *hint);
/** cli_ctl_send - @req as one line on @fd. Return: 0 or -EIO (said). */
int cli_ctl_send(const char *cmd, int fd, const char *path, json_object *req);
/** cli_ctl_recv - one reply line (at most @max bytes, @timeout_ms per wait),
 *  parsed; NULL when none came, the connection closed first (said with
 *  @closed_hint) or it is not JSON. The caller puts the object. */
json_object *cli_ctl_recv(const char *cmd, int fd, const char *path, size_t max, int timeout_ms,
			  const char *closed_hint);
/** cli_ctl_call - connect, send @req, read the reply, close. */
json_object *cli_ctl_call(const char *cmd, const char *what, const char *path, const char *hint,
			  json_object *req, size_t max, int timeout_ms);

int cmd_list(int argc, char **argv);
int cmd_id_ctrl(int argc, char **argv);
int cmd_id_ns(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_setup(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_service(int argc, char **argv);
int cmd_emu(int argc, char **argv);

#endif /* NVMK_CLI_H */
