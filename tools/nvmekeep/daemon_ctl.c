/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep status | add | remove | stop: requests to a running nvmekeepd
 * through its control socket (one JSON object per line each way; see
 * tools/nvmekeepd/control.c). The socket: --control PATH, else
 * $NVMEKEEP_CONTROL, else the daemon's default (/run/nvmekeep/control.sock
 * as root, $XDG_RUNTIME_DIR/nvmekeep/control.sock otherwise).
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "../nvmekeepd/runtime_dir.h"
#include "cli.h"

#define REPLY_MAX   (4u << 20)
#define REPLY_WAIT_MS 60000 /* remove waits for clients to drain */

static int control_path(const char *opt, char *buf, size_t len)
{
	const char *env = getenv("NVMEKEEP_CONTROL");

	if (opt || (env && *env)) {
		snprintf(buf, len, "%s", opt ? opt : env);
		return 0;
	}
	return nvmk_runtime_path("control.sock", buf, len, 0);
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static int64_t num(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static json_object *arr(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array)
		   ? v
		   : NULL;
}

static void print_status(json_object *st)
{
	json_object *mgr = NULL, *ex = NULL, *ka = NULL, *pool = NULL, *a;

	json_object_object_get_ex(st, "manager", &mgr);
	json_object_object_get_ex(st, "export", &ex);
	if (mgr && json_object_object_get_ex(mgr, "keep_alive", &ka))
		printf("keep-alive: %s (%s)\n", str(ka, "mode"),
		       json_object_get_boolean(json_object_object_get(ka, "enabled")) ? "on"
										      : "off");
	if (mgr && json_object_object_get_ex(mgr, "pool", &pool) && pool)
		printf("private pool: %lld of %lld pages used, %lld leaked\n",
		       (long long)num(pool, "used_pages"), (long long)num(pool, "pages"),
		       (long long)num(pool, "leaked_pages"));
	else
		printf("private pool: none\n");
	if (json_object_object_get_ex(st, "servicing", &a) && a) {
		json_object *ok = json_object_object_get(a, "ok");
		json_object *fresh = json_object_object_get(a, "fresh_bringup");

		/* docs/servicing.md: the last servicing, as the successor saw it */
		printf("servicing: %lld done, last blackout %.3f ms (keep-alive %s)%s%s%s\n",
		       (long long)num(a, "count"), (double)num(a, "blackout_us") / 1000.0,
		       json_object_get_boolean(json_object_object_get(a, "keep_alive")) ? "on" : "off",
		       ok && !json_object_get_boolean(ok) ? ", FAILED: " : "",
		       ok && !json_object_get_boolean(ok) ? str(a, "error") : "",
		       fresh && json_object_get_boolean(fresh) ? ", devices brought up afresh" : "");
	}
	if ((a = mgr ? arr(mgr, "devices") : NULL)) {
		printf("devices:\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *d = json_object_array_get_idx(a, i);

			printf("  %-16s %-8s %-10s queues %lld, outstanding %lld\n", str(d, "id"),
			       str(d, "kind"), str(d, "state"), (long long)num(d, "io_queues_granted"),
			       (long long)num(d, "outstanding"));
		}
	}
	if ((a = ex ? arr(ex, "listeners") : NULL)) {
		printf("listeners:\n");
		for (size_t i = 0; i < json_object_array_length(a); i++)
			printf("  %s\n", json_object_get_string(json_object_array_get_idx(a, i)));
	}
	if ((a = ex ? arr(ex, "exports") : NULL)) {
		printf("exports:\n");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *e = json_object_array_get_idx(a, i);

			printf("  %-18s %s%s\n    reads %lld (%lld bytes), writes %lld (%lld bytes), "
			       "flushes %lld, trims %lld, zeroes %lld, errors %lld\n",
			       str(e, "name"), str(e, "description"),
			       json_object_get_boolean(json_object_object_get(e, "live")) ? ""
											   : " [removed]",
			       (long long)num(e, "reads"), (long long)num(e, "bytes_read"),
			       (long long)num(e, "writes"), (long long)num(e, "bytes_written"),
			       (long long)num(e, "flushes"), (long long)num(e, "trims"),
			       (long long)num(e, "write_zeroes"), (long long)num(e, "errors"));
		}
	}
	if ((a = ex ? arr(ex, "connections") : NULL)) {
		printf("connections: %zu\n", json_object_array_length(a));
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *c = json_object_array_get_idx(a, i);

			printf("  #%-4lld %-14s %-12s %-18s in flight %lld, requests %lld\n",
			       (long long)num(c, "id"), str(c, "peer"), str(c, "state"),
			       str(c, "export"), (long long)num(c, "in_flight"),
			       (long long)num(c, "requests"));
		}
	}
}

static int run(const char *cmd, int argc, char **argv, const char *usage, bool takes_device)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'},
	    {"output-format", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum cli_output out = CLI_OUT_NORMAL;
	const char *ctl = NULL, *dev = NULL;
	const char **slots[] = {&dev};
	bool force = false;
	json_object *req, *reply = NULL, *v;
	char path[256];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:o:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctl = optarg;
			break;
		case 'o':
			if (cli_parse_output(optarg, &out))
				return CLI_EXIT_USAGE;
			break;
		case 'f':
			if (strcmp(cmd, "remove")) {
				cli_usage_error(cmd, "--force is an option of remove only");
				return CLI_EXIT_USAGE;
			}
			force = true;
			break;
		case 'h':
			printf("%s", usage);
			return 0;
		default:
			cli_usage_error(cmd, "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args(cmd, argc, argv, takes_device ? slots : NULL, takes_device ? 1 : 0))
		return CLI_EXIT_USAGE;
	if (takes_device && !dev) {
		cli_usage_error(cmd, "a DEVICE is required (emu, emu:FILE, a PCI address)");
		return CLI_EXIT_USAGE;
	}
	if (control_path(ctl, path, sizeof(path)))
		return CLI_EXIT_FAIL;
	req = json_object_new_object();
	json_object_object_add(req, "verb", json_object_new_string(cmd));
	if (dev)
		json_object_object_add(req, "device", json_object_new_string(dev));
	if (force)
		json_object_object_add(req, "force", json_object_new_boolean(1));
	reply = cli_ctl_call(cmd, "nvmekeepd", path,
			     "is nvmekeepd running? --control PATH or NVMEKEEP_CONTROL name another "
			     "socket",
			     req, REPLY_MAX, REPLY_WAIT_MS);
	json_object_put(req);
	if (!reply)
		return CLI_EXIT_FAIL;
	if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
		fprintf(stderr, "nvmekeep %s: %s\n", cmd, str(reply, "error"));
		json_object_put(reply);
		return CLI_EXIT_FAIL;
	}
	if (out == CLI_OUT_JSON)
		printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (!strcmp(cmd, "status"))
		print_status(reply);
	else
		printf("nvmekeep %s%s%s: done\n", cmd, dev ? " " : "", dev ? dev : "");
	json_object_put(reply);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	return run("status", argc, argv,
		   "Usage: nvmekeep status [-o normal|json] [--control PATH]\n"
		   "Devices, exports, connections, counters, pool and keep-alive of nvmekeepd.\n",
		   false);
}

int cmd_add(int argc, char **argv)
{
	return run("add", argc, argv,
		   "Usage: nvmekeep add DEVICE [--control PATH]\n"
		   "Register DEVICE with nvmekeepd and export its namespaces.\n",
		   true);
}

int cmd_remove(int argc, char **argv)
{
	return run("remove", argc, argv,
		   "Usage: nvmekeep remove DEVICE [--force] [--control PATH]\n"
		   "Stop exporting DEVICE; refused while clients are connected unless --force\n"
		   "(they are disconnected: requests in flight are answered, later ones get\n"
		   "ESHUTDOWN).\n",
		   true);
}

int cmd_stop(int argc, char **argv)
{
	return run("stop", argc, argv,
		   "Usage: nvmekeep stop [--control PATH]\n"
		   "Stop nvmekeepd as SIGTERM does.\n",
		   false);
}
