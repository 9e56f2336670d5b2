/* SPDX-License-Identifier: MIT */
/* nvmekeep list | id-ctrl | id-ns: identify data, human or JSON. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

/* Identify strings are space padded, not NUL terminated (Base 2.0 Figure 275). */
static void id_string(const char *src, size_t len, char *dst)
{
	memcpy(dst, src, len);
	dst[len] = 0;
	while (len && (dst[len - 1] == ' ' || dst[len - 1] == 0))
		dst[--len] = 0;
}

static void hex_bytes(const uint8_t *p, size_t n, char *dst)
{
	for (size_t i = 0; i < n; i++)
		sprintf(dst + 2 * i, "%02x", p[i]);
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

#define JADD(o, k, v) json_object_object_add(o, k, v)
#define JU64(v)	      json_object_new_uint64((uint64_t)(v))

struct common_args {
	const char *dev;
	enum cli_output out;
	uint32_t nsid;
	bool nsid_set;
};

static const struct option common_opts[] = {
    {"output-format", required_argument, NULL, 'o'},
    {"namespace-id", required_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_common(const char *cmd, const char *usage, bool want_ns, int argc, char **argv,
			struct common_args *a)
{
	uint64_t v;
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, want_ns ? "o:n:h" : "o:h", common_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_parse_output(optarg, &a->out))
				return CLI_EXIT_USAGE;
			break;
		case 'n':
			if (!want_ns) {
				cli_usage_error(cmd, "option --namespace-id is not accepted here");
				return CLI_EXIT_USAGE;
			}
			/* 0 and FFFFFFFFh are not namespaces one can identify alone */
			if (cli_parse_u64("--namespace-id", optarg, 1, 0xfffffffe, &v))
				return CLI_EXIT_USAGE;
			a->nsid = (uint32_t)v;
			a->nsid_set = true;
			break;
		case 'h':
			printf("%s", usage);
			return -1;
		default:
			cli_usage_error(cmd, "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	return cli_take_args(cmd, argc, argv, (const char **[]){&a->dev}, 1);
}

static struct json_object *ctrl_json(const struct nvme_id_ctrl *id)
{
	struct json_object *o = json_object_new_object();
	char s[64];

	JADD(o, "vid", JU64(id->vid));
	JADD(o, "ssvid", JU64(id->ssvid));
	id_string(id->sn, sizeof(id->sn), s);
	JADD(o, "sn", json_object_new_string(s));
	id_string(id->mn, sizeof(id->mn), s);
	JADD(o, "mn", json_object_new_string(s));
	id_string(id->fr, sizeof(id->fr), s);
	JADD(o, "fr", json_object_new_string(s));
	JADD(o, "rab", JU64(id->rab));
	JADD(o, "cmic", JU64(id->cmic));
	JADD(o, "mdts", JU64(id->mdts));
	JADD(o, "cntlid", JU64(id->cntlid));
	JADD(o, "ver", JU64(id->ver));
	JADD(o, "oaes", JU64(id->oaes));
	JADD(o, "ctratt", JU64(id->ctratt));
	JADD(o, "cntrltype", JU64(id->cntrltype));
	JADD(o, "oacs", JU64(id->oacs));
	JADD(o, "acl", JU64(id->acl));
	JADD(o, "aerl", JU64(id->aerl));
	JADD(o, "frmw", JU64(id->frmw));
	JADD(o, "lpa", JU64(id->lpa));
	JADD(o, "elpe", JU64(id->elpe));
	JADD(o, "npss", JU64(id->npss));
	JADD(o, "kas", JU64(id->kas));
	JADD(o, "sqes", JU64(id->sqes));
	JADD(o, "cqes", JU64(id->cqes));
	JADD(o, "maxcmd", JU64(id->maxcmd));
	JADD(o, "nn", JU64(id->nn));
	JADD(o, "oncs", JU64(id->oncs));
	JADD(o, "fuses", JU64(id->fuses));
	JADD(o, "fna", JU64(id->fna));
	JADD(o, "vwc", JU64(id->vwc));
	JADD(o, "awun", JU64(id->awun));
	JADD(o, "awupf", JU64(id->awupf));
	JADD(o, "sgls", JU64(id->sgls));
	JADD(o, "mnan", JU64(id->mnan));
	id_string(id->subnqn, sizeof(id->subnqn) < 63 ? sizeof(id->subnqn) : 63, s);
	JADD(o, "subnqn", json_object_new_string(s));
	return o;
}

static void ctrl_print(const struct nvme_id_ctrl *id, uint64_t cap)
{
	char s[64];

	printf("NVME Identify Controller:\n");
	printf("vid       : %#x\n", id->vid);
	printf("ssvid     : %#x\n", id->ssvid);
	id_string(id->sn, sizeof(id->sn), s);
	printf("sn        : %s\n", s);
	id_string(id->mn, sizeof(id->mn), s);
	printf("mn        : %s\n", s);
	id_string(id->fr, sizeof(id->fr), s);
	printf("fr        : %s\n", s);
	printf("mdts      : %u\n", id->mdts);
	printf("cntlid    : %#x\n", id->cntlid);
	printf("ver       : %u.%u\n", NVME_VS_MJR(id->ver), NVME_VS_MNR(id->ver));
	printf("oaes      : %#x\n", id->oaes);
	printf("oacs      : %#x\n", id->oacs);
	printf("acl       : %u\n", id->acl);
	printf("aerl      : %u\n", id->aerl);
	printf("lpa       : %#x\n", id->lpa);
	printf("elpe      : %u\n", id->elpe);
	printf("sqes      : %#x\n", id->sqes);
	printf("cqes      : %#x\n", id->cqes);
	printf("maxcmd    : %u\n", id->maxcmd);
	printf("nn        : %u\n", id->nn);
	printf("oncs      : %#x\n", id->oncs);
	printf("vwc       : %#x\n", id->vwc);
	printf("sgls      : %#x\n", id->sgls);
	printf("cap.mqes  : %u\n", NVME_CAP_MQES(cap));
	printf("cap.dstrd : %u\n", NVME_CAP_DSTRD(cap));
	printf("cap.to    : %u\n", NVME_CAP_TO(cap));
}

static const char id_ctrl_usage[] =
    "Usage: nvmekeep id-ctrl [DEVICE] [-o normal|json]\n"
    "Send Identify Controller and print the result.\n"
    "DEVICE: 'emu' (default), 'emu:FILE', or a PCI address (0000:00:03.0).\n";

int cmd_id_ctrl(int argc, char **argv)
{
	struct nvmk_ctrl_opts opts = {0};
	struct common_args a;
	struct cli_dev dev;
	int ret;

	ret = parse_common("id-ctrl", id_ctrl_usage, false, argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (cli_dev_open(a.dev, &opts, &dev))
		return CLI_EXIT_FAIL;
	if (a.out == CLI_OUT_JSON)
		print_json(ctrl_json(nvmk_ctrl_identify(dev.ctrl)));
	else
		ctrl_print(nvmk_ctrl_identify(dev.ctrl), nvmk_ctrl_cap(dev.ctrl));
	cli_dev_close(&dev);
	return 0;
}

static int identify_ns(struct nvmk_ctrl *ctrl, uint32_t nsid, struct nvme_id_ns *id)
{
	struct nvme_sqe cmd = {
	    .opc = NVME_ADM_IDENTIFY,
	    .nsid = nsid,
	    .cdw10 = NVME_ID_CNS_NS,
	};
	struct nvmk_cpl cpl;
	char st[80];
	int ret;

	ret = nvmk_ctrl_admin_passthru(ctrl, &cmd, id, sizeof(*id), &cpl);
	if (ret) {
		fprintf(stderr, "nvmekeep: %s: Identify Namespace %u failed: %s (%s)\n",
			nvmk_ctrl_name(ctrl), nsid, strerror(-ret),
			nvmk_status_str(cpl.status, st, sizeof(st)));
		return ret;
	}
	/* An inactive NSID returns a zero-filled structure (Base 2.0 5.17.2.1). */
	if (id->nsze == 0) {
		fprintf(stderr, "nvmekeep: %s: namespace %u is not active\n", nvmk_ctrl_name(ctrl),
			nsid);
		return -ENODEV;
	}
	return 0;
}

static struct json_object *ns_json(uint32_t nsid, const struct nvme_id_ns *id)
{
	struct json_object *o = json_object_new_object(), *lbafs = json_object_new_array();
	unsigned nlbaf = id->nlbaf + 1u, inuse = NVME_FLBAS_INDEX(id->flbas);
	char hex[40];

	JADD(o, "nsid", JU64(nsid));
	JADD(o, "nsze", JU64(id->nsze));
	JADD(o, "ncap", JU64(id->ncap));
	JADD(o, "nuse", JU64(id->nuse));
	JADD(o, "nsfeat", JU64(id->nsfeat));
	JADD(o, "nlbaf", JU64(id->nlbaf));
	JADD(o, "flbas", JU64(id->flbas));
	JADD(o, "mc", JU64(id->mc));
	JADD(o, "dpc", JU64(id->dpc));
	JADD(o, "dps", JU64(id->dps));
	JADD(o, "nmic", JU64(id->nmic));
	JADD(o, "rescap", JU64(id->rescap));
	JADD(o, "dlfeat", JU64(id->dlfeat));
	hex_bytes(id->nguid, sizeof(id->nguid), hex);
	JADD(o, "nguid", json_object_new_string(hex));
	hex_bytes(id->eui64, sizeof(id->eui64), hex);
	JADD(o, "eui64", json_object_new_string(hex));
	if (nlbaf > 64)
		nlbaf = 64;
	for (unsigned i = 0; i < nlbaf; i++) {
		struct json_object *l = json_object_new_object();

		JADD(l, "ms", JU64(id->lbaf[i].ms));
		JADD(l, "ds", JU64(id->lbaf[i].lbads));
		JADD(l, "rp", JU64(id->lbaf[i].rp & 3));
		JADD(l, "in_use", json_object_new_boolean(i == inuse));
		json_object_array_add(lbafs, l);
	}
	JADD(o, "lbafs", lbafs);
	return o;
}

static void ns_print(uint32_t nsid, const struct nvme_id_ns *id)
{
	unsigned nlbaf = id->nlbaf + 1u, inuse = NVME_FLBAS_INDEX(id->flbas);
	char hex[40];

	printf("NVME Identify Namespace %u:\n", nsid);
	printf("nsze    : %#" PRIx64 "\n", id->nsze);
	printf("ncap    : %#" PRIx64 "\n", id->ncap);
	printf("nuse    : %#" PRIx64 "\n", id->nuse);
	printf("nsfeat  : %#x\n", id->nsfeat);
	printf("nlbaf   : %u\n", id->nlbaf);
	printf("flbas   : %#x\n", id->flbas);
	printf("nmic    : %#x\n", id->nmic);
	printf("rescap  : %#x\n", id->rescap);
	printf("dlfeat  : %u\n", id->dlfeat);
	hex_bytes(id->nguid, sizeof(id->nguid), hex);
	printf("nguid   : %s\n", hex);
	hex_bytes(id->eui64, sizeof(id->eui64), hex);
	printf("eui64   : %s\n", hex);
	if (nlbaf > 64)
		nlbaf = 64;
	for (unsigned i = 0; i < nlbaf; i++)
		printf("lbaf %2u : ms:%-3u lbads:%-2u rp:%#x%s\n", i, id->lbaf[i].ms,
		       id->lbaf[i].lbads, id->lbaf[i].rp & 3, i == inuse ? " (in use)" : "");
}

static const char id_ns_usage[] =
    "Usage: nvmekeep id-ns [DEVICE] -n NSID [-o normal|json]\n"
    "Send Identify Namespace for NSID (1..4294967294) and print the result.\n"
    "DEVICE: 'emu' (default), 'emu:FILE', or a PCI address (0000:00:03.0).\n";

int cmd_id_ns(int argc, char **argv)
{
	struct nvmk_ctrl_opts opts = {0};
	struct common_args a;
	struct nvme_id_ns *id;
	struct cli_dev dev;
	int ret;

	ret = parse_common("id-ns", id_ns_usage, true, argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!a.nsid_set) {
		cli_usage_error("id-ns", "missing --namespace-id (-n NSID)");
		return CLI_EXIT_USAGE;
	}
	if (cli_dev_open(a.dev, &opts, &dev))
		return CLI_EXIT_FAIL;
	id = calloc(1, sizeof(*id));
	ret = id ? identify_ns(dev.ctrl, a.nsid, id) : -ENOMEM;
	if (!ret) {
		if (a.out == CLI_OUT_JSON)
			print_json(ns_json(a.nsid, id));
		else
			ns_print(a.nsid, id);
	}
	free(id);
	cli_dev_close(&dev);
	return ret ? CLI_EXIT_FAIL : 0;
}

static const char list_usage[] =
    "Usage: nvmekeep list [DEVICE] [-o normal|json]\n"
    "List the controller and its active namespaces.\n"
    "DEVICE: 'emu' (default), 'emu:FILE', or a PCI address (0000:00:03.0).\n";

int cmd_list(int argc, char **argv)
{
	struct nvmk_ctrl_opts opts = {0};
	struct json_object *root = NULL, *devs = NULL, *jd = NULL, *jns = NULL;
	const struct nvme_id_ctrl *idc;
	struct common_args a;
	struct cli_dev dev;
	uint32_t nsids[NVME_NS_LIST_MAX];
	char sn[24], mn[48], fr[12];
	int n, ret;

	ret = parse_common("list", list_usage, false, argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (cli_dev_open(a.dev, &opts, &dev))
		return CLI_EXIT_FAIL;
	idc = nvmk_ctrl_identify(dev.ctrl);
	id_string(idc->sn, sizeof(idc->sn), sn);
	id_string(idc->mn, sizeof(idc->mn), mn);
	id_string(idc->fr, sizeof(idc->fr), fr);
	n = nvmk_ctrl_active_ns(dev.ctrl, nsids, NVME_NS_LIST_MAX);
	if (n < 0) {
		fprintf(stderr, "nvmekeep: %s: cannot list namespaces: %s\n", dev.spec,
			strerror(-n));
		cli_dev_close(&dev);
		return CLI_EXIT_FAIL;
	}
	if (a.out == CLI_OUT_JSON) {
		root = json_object_new_object();
		devs = json_object_new_array();
		jd = json_object_new_object();
		jns = json_object_new_array();
		JADD(jd, "device", json_object_new_string(dev.spec));
		JADD(jd, "backing", json_object_new_string(dev.backing->ops->kind));
		JADD(jd, "serial", json_object_new_string(sn));
		JADD(jd, "model", json_object_new_string(mn));
		JADD(jd, "firmware", json_object_new_string(fr));
	} else {
		printf("%-16s %-6s %-20s %-32s %-14s %s\n", "Device", "NSID", "Serial", "Model",
		       "Capacity", "Format");
	}
	for (int i = 0; i < n; i++) {
		struct nvmk_ns *ns;
		struct nvmk_ns_info info;

		if (nvmk_ns_open(dev.ctrl, nsids[i], NVMK_NS_SHARED, &ns))
			continue;
		nvmk_ns_info(ns, &info);
		nvmk_ns_close(ns);
		if (jns) {
			struct json_object *o = json_object_new_object();

			JADD(o, "nsid", JU64(info.nsid));
			JADD(o, "block_size", JU64(info.block_size));
			JADD(o, "nblocks", JU64(info.nblocks));
			JADD(o, "capacity", JU64(info.capacity));
			json_object_array_add(jns, o);
		} else {
			printf("%-16s %-6u %-20s %-32s %10.2f GB %u B\n", dev.spec, info.nsid, sn,
			       mn, (double)info.capacity / 1e9, info.block_size);
		}
	}
	if (root) {
		JADD(jd, "namespaces", jns);
		json_object_array_add(devs, jd);
		JADD(root, "devices", devs);
		print_json(root);
	}
	cli_dev_close(&dev);
	return 0;
}
