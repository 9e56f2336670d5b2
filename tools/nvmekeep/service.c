/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep service [--exec PATH] [--timeout SECONDS]: replace the running
 * nvmekeepd by a new binary (default: its own) across execve, with the
 * devices, the clients and their connections carried over
 * (docs/servicing.md). The daemon's successor answers on this very
 * connection (inherited across the exec) with the blackout it measured.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../nvmekeepd/runtime_dir.h"
#include "cli.h"

#define SERVICE_REPLY_MAX 8192

#define SERVICE_USAGE                                                                          \
	"Usage: nvmekeep service [--exec PATH] [--timeout SECONDS] [-o normal|json]\n"         \
	"                        [--control PATH]\n"                                          \
	"Replace the running nvmekeepd by PATH (default: the daemon's own binary) with\n"     \
	"devices, client connections and data kept: clients see a pause.\n"                   \
	"  --timeout SECONDS  bound on the quiesce (requests in flight), default 10\n"

int cmd_service(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"exec", required_argument, NULL, 'e'},
	    {"timeout", required_argument, NULL, 't'},
	    {"control", required_argument, NULL, 'c'},
	    {"output-format", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum cli_output out = CLI_OUT_NORMAL;
	const char *ctl = getenv("NVMEKEEP_CONTROL"), *exec = NULL;
	char path[256], abs[PATH_MAX];
	uint64_t timeout_s = 10;
	json_object *req, *reply, *v;
	int c, fd, wait_ms;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:t:c:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			exec = optarg;
			break;
		case 't': /* seconds */
			if (cli_parse_u64("--timeout", optarg, 1, 3600, &timeout_s))
				return CLI_EXIT_USAGE;
			break;
		case 'c':
			ctl = optarg;
			break;
		case 'o':
			if (cli_parse_output(optarg, &out))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			printf("%s", SERVICE_USAGE);
			return 0;
		default:
			cli_usage_error("service", "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args("service", argc, argv, NULL, 0))
		return CLI_EXIT_USAGE;
	if (ctl && *ctl)
		snprintf(path, sizeof(path), "%s", ctl);
	else if (nvmk_runtime_path("control.sock", path, sizeof(path), 0))
		return CLI_EXIT_FAIL;
	/* the daemon runs elsewhere: give it an absolute path */
	if (exec && exec[0] != '/' && realpath(exec, abs))
		exec = abs;
	fd = cli_ctl_connect("service", "nvmekeepd", path, "is nvmekeepd running?");
	if (fd < 0)
		return CLI_EXIT_FAIL;
	req = json_object_new_object();
	json_object_object_add(req, "verb", json_object_new_string("service"));
	if (exec)
		json_object_object_add(req, "exec", json_object_new_string(exec));
	json_object_object_add(req, "timeout_ms", json_object_new_int64((int64_t)timeout_s * 1000));
	if (cli_ctl_send("service", fd, path, req)) {
		json_object_put(req);
		close(fd);
		return CLI_EXIT_FAIL;
	}
	json_object_put(req);
	/* the quiesce, the exec and the restore: bounded by the timeout plus the
	 * check of the new binary and the restore itself */
	wait_ms = (int)timeout_s * 1000 + 60000;
	reply = cli_ctl_recv("service", fd, path, SERVICE_REPLY_MAX, wait_ms,
			     "the successor failed (see the daemon's log)");
	close(fd);
	if (!reply)
		return CLI_EXIT_FAIL;
	if (out == CLI_OUT_JSON)
		printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
	if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
		json_object *e = NULL;

		json_object_object_get_ex(reply, "error", &e);
		fprintf(stderr, "nvmekeep service: %s\n", e ? json_object_get_string(e) : "failed");
		json_object_put(reply);
		return CLI_EXIT_FAIL;
	}
	if (out != CLI_OUT_JSON) {
		json_object *b = NULL, *k = NULL, *n = NULL;

		json_object_object_get_ex(reply, "blackout_us", &b);
		json_object_object_get_ex(reply, "keep_alive", &k);
		json_object_object_get_ex(reply, "count", &n);
		printf("nvmekeep service: done (servicing %d, keep-alive %s): blackout %.3f ms\n",
		       n ? json_object_get_int(n) : 0, k && json_object_get_boolean(k) ? "on" : "off",
		       b ? (double)json_object_get_int64(b) / 1000.0 : -1.0);
	}
	json_object_put(reply);
	return 0;
}
