/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep emu stats|fault --control PATH: talk to a running nvmekeep-emu
 * through its control socket (one JSON object per line; see
 * tools/nvmekeep-emu/control.c).
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <string.h>

#include "cli.h"

#define CTL_TIMEOUT_MS 5000
#define CTL_REPLY_MAX  65536

static const char emu_usage[] =
    "Usage: nvmekeep emu stats --control PATH [-o normal|json]\n"
    "       nvmekeep emu fault --control PATH --kind KIND [--qid N] [--opcode N]\n"
    "                          [--skip N] [--count N] [--delay-us N] [--status N]\n"
    "Ask a running nvmekeep-emu (started with --control PATH) for its statistics,\n"
    "or arm a fault in its controller. KIND: delay, hang, drop-irq, status,\n"
    "bad-cid, bad-phase, bad-sqhd, duplicate, fatal, remove (applied to matching\n"
    "commands: --qid/--opcode, default any; --skip first; --count times, 0 =\n"
    "forever), or clear, fatal-now, remove-now (at once).\n";

/* Send @req, return the parsed reply (caller puts it) or NULL (message printed). */
static json_object *ctl_call(const char *path, json_object *req)
{
	return cli_ctl_call("emu", "nvmekeep-emu", path, "is nvmekeep-emu running with --control on it?", req,
			    CTL_REPLY_MAX, CTL_TIMEOUT_MS);
}

/* 0 if @r says ok, else print its error and return CLI_EXIT_FAIL. */
static int reply_ok(json_object *r)
{
	json_object *ok, *err;

	if (json_object_object_get_ex(r, "ok", &ok) && json_object_get_boolean(ok))
		return 0;
	fprintf(stderr, "nvmekeep emu: refused: %s\n",
		json_object_object_get_ex(r, "error", &err) ? json_object_get_string(err)
							    : "(no reason given)");
	return CLI_EXIT_FAIL;
}

static long long field(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static const char *admin_name(unsigned opc)
{
	switch (opc) {
	case 0x00:
		return "delete-sq";
	case 0x01:
		return "create-sq";
	case 0x02:
		return "get-log-page";
	case 0x04:
		return "delete-cq";
	case 0x05:
		return "create-cq";
	case 0x06:
		return "identify";
	case 0x08:
		return "abort";
	case 0x09:
		return "set-features";
	case 0x0a:
		return "get-features";
	case 0x0c:
		return "async-event";
	case 0x0d:
		return "ns-management";
	case 0x15:
		return "ns-attachment";
	case 0x7c:
		return "doorbell-buffer-config";
	default:
		return NULL;
	}
}

static void print_stats(json_object *r)
{
	json_object *arr, *c, *m, *client;

	if (!json_object_object_get_ex(r, "controllers", &arr))
		return;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		c = json_object_array_get_idx(arr, i);
		printf("controller %s\n",
		       json_object_get_string(json_object_object_get(c, "name")));
		printf("  CC.EN 0->1        : %lld\n", field(c, "cc_enables"));
		printf("  resets            : %lld (controller), %lld (function)\n",
		       field(c, "resets"), field(c, "function_resets"));
		client = json_object_object_get(c, "client");
		printf("  client            : %s (pid %lld), %lld connections\n",
		       json_object_get_boolean(json_object_object_get(client, "connected"))
			   ? "connected"
			   : "none",
		       field(client, "pid"), field(c, "connections"));
		printf("  DMA               : %lld maps, %lld bytes\n", field(c, "dma_maps"),
		       field(c, "mapped_dma_bytes"));
		printf("  I/O commands      : %lld\n", field(c, "io_commands_total"));
		printf("  protocol errors   : %lld\n", field(c, "protocol_errors"));
		printf("  resumes refused   : %lld (other memory at the old addresses: reset)\n",
		       field(c, "resume_refused"));
		printf("  adopted           : %lld (crashed clients' controllers taken over, no reset)\n",
		       field(c, "adopted"));
		printf("  admin commands    :\n");
		if (json_object_object_get_ex(c, "admin_commands", &m)) {
			json_object_object_foreach(m, k, v)
			{
				unsigned opc = (unsigned)strtoul(k, NULL, 16);
				const char *n = admin_name(opc);

				printf("    %s %-24s %lld\n", k, n ? n : "",
				       (long long)json_object_get_int64(v));
			}
		}
	}
}

static int emu_stats(int argc, char **argv)
{
	static const struct option opts[] = {{"control", required_argument, NULL, 'c'},
					     {"output-format", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	enum cli_output out = CLI_OUT_NORMAL;
	const char *path = NULL;
	json_object *req, *r;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (cli_parse_output(optarg, &out))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			printf("%s", emu_usage);
			return 0;
		default:
			cli_usage_error("emu stats", "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args("emu stats", argc, argv, NULL, 0))
		return CLI_EXIT_USAGE;
	if (!path) {
		cli_usage_error("emu stats", "--control PATH is required");
		return CLI_EXIT_USAGE;
	}
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("stats"));
	r = ctl_call(path, req);
	json_object_put(req);
	if (!r)
		return CLI_EXIT_FAIL;
	rc = reply_ok(r);
	if (!rc) {
		if (out == CLI_OUT_JSON)
			printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY));
		else
			print_stats(r);
	}
	json_object_put(r);
	return rc;
}

static int emu_fault(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'},	{"kind", required_argument, NULL, 'k'},
	    {"qid", required_argument, NULL, 'q'},	{"opcode", required_argument, NULL, 'O'},
	    {"skip", required_argument, NULL, 's'},	{"count", required_argument, NULL, 'n'},
	    {"delay-us", required_argument, NULL, 'd'}, {"status", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0}};
	static const struct {
		int opt;
		const char *key, *name;
		uint64_t max;
	} nums[] = {{'q', "qid", "--qid", 65535},
		    {'O', "opcode", "--opcode", 255},
		    {'s', "skip", "--skip", UINT32_MAX},
		    {'n', "count", "--count", UINT32_MAX},
		    {'d', "delay_us", "--delay-us", 3600000000ull},
		    {'S', "status", "--status", 65535}};
	const char *path = NULL, *kind = NULL;
	json_object *req = json_object_new_object(), *r;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:k:h", opts, NULL)) != -1) {
		bool num = false;

		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
			uint64_t v;

			if (nums[i].opt != c)
				continue;
			num = true;
			if (cli_parse_u64(nums[i].name, optarg, 0, nums[i].max, &v)) {
				json_object_put(req);
				return CLI_EXIT_USAGE;
			}
			json_object_object_add(req, nums[i].key, json_object_new_int64((int64_t)v));
		}
		if (num)
			continue;
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			kind = optarg;
			break;
		case 'h':
			printf("%s", emu_usage);
			json_object_put(req);
			return 0;
		default:
			cli_usage_error("emu fault", "unknown option");
			json_object_put(req);
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args("emu fault", argc, argv, NULL, 0) || !path || !kind) {
		if (!path || !kind)
			cli_usage_error("emu fault", "--control PATH and --kind KIND are required");
		json_object_put(req);
		return CLI_EXIT_USAGE;
	}
	json_object_object_add(req, "cmd", json_object_new_string("fault"));
	json_object_object_add(req, "kind", json_object_new_string(kind));
	r = ctl_call(path, req);
	json_object_put(req);
	if (!r)
		return CLI_EXIT_FAIL;
	rc = reply_ok(r);
	if (!rc)
		printf("fault %s armed (rule %lld)\n", kind, field(r, "id"));
	json_object_put(r);
	return rc;
}

int cmd_emu(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "stats"))
		return emu_stats(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "fault"))
		return emu_fault(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("%s", emu_usage);
		return 0;
	}
	fprintf(stderr, "%s", emu_usage);
	return CLI_EXIT_USAGE;
}
