/* SPDX-License-Identifier: MIT */
/* nvmekeep list | id-ctrl | id-ns: identify data, human or JSON. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
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
	if (cli_take_args(cmd, argc, argv, (const char **[]){&a->dev}, 1))
		return CLI_EXIT_USAGE;
	return cli_dev_check(cmd, a->dev);
}

/*
 * Identify data printed field by field from one table, so that -o json and
 * the normal output carry the same fields. Key names and JSON types are
 * nvme-cli 2.x's (nvme-print-json.c: json_nvme_id_ctrl, json_nvme_id_ns):
 * numbers for every numeric field (128-bit ones as bare decimal numbers),
 * strings for sn/mn/fr/subnqn, fguid as a UUID string, eui64/nguid as hex.
 * Strings are shown without their space padding.
 */
enum id_kind {
	ID_UINT, /* little-endian integer of 1 to 8 bytes */
	ID_STR,	 /* space-padded ASCII */
	ID_UUID, /* 16 bytes as 8-4-4-4-12 hex */
	ID_U128, /* 16-byte little-endian integer */
	ID_HEX,	 /* bytes as hex digits, in order (eui64, nguid) */
};

struct id_field {
	const char *key;
	uint16_t off;
	uint16_t size;
	uint8_t kind;
	bool hex; /* normal output: a bit field, shown in hex */
};

/* clang-format off */
#define CTRL_F(f, kind, hex) \
	{#f, offsetof(struct nvme_id_ctrl, f), sizeof(((struct nvme_id_ctrl *)0)->f), kind, hex}
#define NS_F(f, kind, hex) \
	{#f, offsetof(struct nvme_id_ns, f), sizeof(((struct nvme_id_ns *)0)->f), kind, hex}
/* clang-format on */

/* Identify Controller, Base 2.0 Figure 275 (fabrics fields: 1792..1805;
 * OAQD 564..567 is NVMe 2.1, reserved in spec.h's 2.0 layout) */
static const struct id_field ctrl_fields[] = {
    CTRL_F(vid, ID_UINT, true),		 CTRL_F(ssvid, ID_UINT, true),
    CTRL_F(sn, ID_STR, false),		 CTRL_F(mn, ID_STR, false),
    CTRL_F(fr, ID_STR, false),		 CTRL_F(rab, ID_UINT, false),
    CTRL_F(ieee, ID_UINT, true),	 CTRL_F(cmic, ID_UINT, true),
    CTRL_F(mdts, ID_UINT, false),	 CTRL_F(cntlid, ID_UINT, true),
    CTRL_F(ver, ID_UINT, true),		 CTRL_F(rtd3r, ID_UINT, false),
    CTRL_F(rtd3e, ID_UINT, false),	 CTRL_F(oaes, ID_UINT, true),
    CTRL_F(ctratt, ID_UINT, true),	 CTRL_F(rrls, ID_UINT, false),
    CTRL_F(cntrltype, ID_UINT, false),	 CTRL_F(fguid, ID_UUID, false),
    CTRL_F(crdt1, ID_UINT, false),	 CTRL_F(crdt2, ID_UINT, false),
    CTRL_F(crdt3, ID_UINT, false),	 CTRL_F(nvmsr, ID_UINT, true),
    CTRL_F(vwci, ID_UINT, true),	 CTRL_F(mec, ID_UINT, true),
    CTRL_F(oacs, ID_UINT, true),	 CTRL_F(acl, ID_UINT, false),
    CTRL_F(aerl, ID_UINT, false),	 CTRL_F(frmw, ID_UINT, true),
    CTRL_F(lpa, ID_UINT, true),		 CTRL_F(elpe, ID_UINT, false),
    CTRL_F(npss, ID_UINT, false),	 CTRL_F(avscc, ID_UINT, true),
    CTRL_F(apsta, ID_UINT, true),	 CTRL_F(wctemp, ID_UINT, false),
    CTRL_F(cctemp, ID_UINT, false),	 CTRL_F(mtfa, ID_UINT, false),
    CTRL_F(hmpre, ID_UINT, false),	 CTRL_F(hmmin, ID_UINT, false),
    CTRL_F(tnvmcap, ID_U128, false),	 CTRL_F(unvmcap, ID_U128, false),
    CTRL_F(rpmbs, ID_UINT, true),	 CTRL_F(edstt, ID_UINT, false),
    CTRL_F(dsto, ID_UINT, false),	 CTRL_F(fwug, ID_UINT, false),
    CTRL_F(kas, ID_UINT, false),	 CTRL_F(hctma, ID_UINT, true),
    CTRL_F(mntmt, ID_UINT, false),	 CTRL_F(mxtmt, ID_UINT, false),
    CTRL_F(sanicap, ID_UINT, true),	 CTRL_F(hmminds, ID_UINT, false),
    CTRL_F(hmmaxd, ID_UINT, false),	 CTRL_F(nsetidmax, ID_UINT, false),
    CTRL_F(endgidmax, ID_UINT, false),	 CTRL_F(anatt, ID_UINT, false),
    CTRL_F(anacap, ID_UINT, true),	 CTRL_F(anagrpmax, ID_UINT, false),
    CTRL_F(nanagrpid, ID_UINT, false),	 CTRL_F(pels, ID_UINT, false),
    CTRL_F(domainid, ID_UINT, false),	 CTRL_F(megcap, ID_U128, false),
    CTRL_F(sqes, ID_UINT, true),	 CTRL_F(cqes, ID_UINT, true),
    CTRL_F(maxcmd, ID_UINT, false),	 CTRL_F(nn, ID_UINT, false),
    CTRL_F(oncs, ID_UINT, true),	 CTRL_F(fuses, ID_UINT, true),
    CTRL_F(fna, ID_UINT, true),		 CTRL_F(vwc, ID_UINT, true),
    CTRL_F(awun, ID_UINT, false),	 CTRL_F(awupf, ID_UINT, false),
    CTRL_F(icsvscc, ID_UINT, true),	 CTRL_F(nwpc, ID_UINT, true),
    CTRL_F(acwu, ID_UINT, false),	 {"ocfs", 534, 2, ID_UINT, true},
    CTRL_F(sgls, ID_UINT, true),	 CTRL_F(mnan, ID_UINT, false),
    CTRL_F(maxdna, ID_U128, false),	 CTRL_F(maxcna, ID_UINT, false),
    {"oaqd", 564, 4, ID_UINT, false},	 CTRL_F(subnqn, ID_STR, false),
    {"ioccsz", 1792, 4, ID_UINT, false}, {"iorcsz", 1796, 4, ID_UINT, false},
    {"icdoff", 1800, 2, ID_UINT, false}, {"fcatt", 1802, 1, ID_UINT, true},
    {"msdbd", 1803, 1, ID_UINT, false},	 {"ofcs", 1804, 2, ID_UINT, true},
};
_Static_assert(offsetof(struct nvme_id_ctrl, cdfs) == 534, "OCFS is bytes 535:534");

/* Identify Namespace, NVM Command Set 1.0 Figure 97 */
static const struct id_field ns_fields[] = {
    NS_F(nsze, ID_UINT, false),
    NS_F(ncap, ID_UINT, false),
    NS_F(nuse, ID_UINT, false),
    NS_F(nsfeat, ID_UINT, true),
    NS_F(nlbaf, ID_UINT, false),
    NS_F(flbas, ID_UINT, true),
    NS_F(mc, ID_UINT, true),
    NS_F(dpc, ID_UINT, true),
    NS_F(dps, ID_UINT, true),
    NS_F(nmic, ID_UINT, true),
    NS_F(rescap, ID_UINT, true),
    NS_F(fpi, ID_UINT, true),
    NS_F(dlfeat, ID_UINT, false),
    NS_F(nawun, ID_UINT, false),
    NS_F(nawupf, ID_UINT, false),
    NS_F(nacwu, ID_UINT, false),
    NS_F(nabsn, ID_UINT, false),
    NS_F(nabo, ID_UINT, false),
    NS_F(nabspf, ID_UINT, false),
    NS_F(noiob, ID_UINT, false),
    NS_F(nvmcap, ID_U128, false),
    NS_F(nsattr, ID_UINT, true),
    NS_F(nvmsetid, ID_UINT, false),
    /* npwg..nows: only when NSFEAT.OPTPERF (bit 4) says they are valid, as
     * nvme-cli does (skipped in ns_field_shown) */
    NS_F(npwg, ID_UINT, false),
    NS_F(npwa, ID_UINT, false),
    NS_F(npdg, ID_UINT, false),
    NS_F(npda, ID_UINT, false),
    NS_F(nows, ID_UINT, false),
    NS_F(mssrl, ID_UINT, false),
    NS_F(mcl, ID_UINT, false),
    NS_F(msrc, ID_UINT, false),
    NS_F(nulbaf, ID_UINT, false),
    NS_F(anagrpid, ID_UINT, false),
    NS_F(endgid, ID_UINT, false),
    NS_F(eui64, ID_HEX, false),
    NS_F(nguid, ID_HEX, false),
};

#define NSFEAT_OPTPERF (1u << 4)

static bool ns_field_shown(const struct id_field *f, const struct nvme_id_ns *id)
{
	static const char *const optperf[] = {"npwg", "npwa", "npdg", "npda", "nows"};

	if (id->nsfeat & NSFEAT_OPTPERF)
		return true;
	for (size_t i = 0; i < sizeof(optperf) / sizeof(optperf[0]); i++)
		if (!strcmp(f->key, optperf[i]))
			return false;
	return true;
}

static uint64_t le_uint(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = size; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* 16-byte little-endian integer in decimal: repeated division by 10 */
static void u128_dec(const uint8_t *le, char *out, size_t outlen)
{
	uint8_t n[16];
	char tmp[48];
	size_t len = 0;
	bool zero;

	memcpy(n, le, sizeof(n));
	do {
		unsigned rem = 0;

		zero = true;
		for (int i = 15; i >= 0; i--) {
			unsigned cur = rem << 8 | n[i];

			n[i] = (uint8_t)(cur / 10);
			rem = cur % 10;
			if (n[i])
				zero = false;
		}
		tmp[len++] = (char)('0' + rem);
	} while (!zero && len < sizeof(tmp));
	for (size_t i = 0; i < len && i + 1 < outlen; i++)
		out[i] = tmp[len - 1 - i];
	out[len < outlen ? len : outlen - 1] = 0;
}

/* a number too big for json-c's integers, written bare as nvme-cli does */
static int bare_number(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	(void)level;
	(void)flags;
	return printbuf_memappend(pb, json_object_get_string(o),
				  (int)json_object_get_string_len(o));
}

/* the field's value as text (normal output) and as a JSON value */
static struct json_object *id_value(const struct id_field *f, const uint8_t *base, char *txt,
				    size_t len)
{
	const uint8_t *p = base + f->off;
	struct json_object *j;
	uint64_t v;

	switch (f->kind) {
	case ID_STR:
		id_string((const char *)p, f->size, txt);
		return json_object_new_string(txt);
	case ID_UUID:
		snprintf(txt, len,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11],
			 p[12], p[13], p[14], p[15]);
		return json_object_new_string(txt);
	case ID_HEX:
		hex_bytes(p, f->size, txt);
		return json_object_new_string(txt);
	case ID_U128:
		u128_dec(p, txt, len);
		if (!le_uint(p + 8, 8))
			return json_object_new_uint64(le_uint(p, 8));
		j = json_object_new_string(txt);
		json_object_set_serializer(j, bare_number, NULL, NULL);
		return j;
	default:
		v = le_uint(p, f->size);
		snprintf(txt, len, f->hex ? "%#" PRIx64 : "%" PRIu64, v);
		return json_object_new_uint64(v);
	}
}

/* Power State Descriptors (Base 2.0 Figure 276), nvme-cli's "psds" keys */
static void psd_fields(const struct nvme_id_power_state *psd, struct json_object *o, bool print,
		       unsigned idx)
{
	const struct {
		const char *key;
		uint64_t v;
	} f[] = {
	    {"max_power", psd->mp},
	    {"max_power_scale", psd->flags & 1u},
	    {"non-operational_state", (psd->flags >> 1) & 1u},
	    {"entry_lat", psd->enlat},
	    {"exit_lat", psd->exlat},
	    {"read_tput", psd->rrt},
	    {"read_lat", psd->rrl},
	    {"write_tput", psd->rwt},
	    {"write_lat", psd->rwl},
	    {"idle_power", psd->idlp},
	    {"idle_scale", psd->ips >> 6},
	    {"active_power", psd->actp},
	    {"active_power_work", psd->apws & 7u},
	    {"active_scale", psd->apws >> 6},
	};

	if (print)
		printf("ps %4u    :", idx);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (o)
			JADD(o, f[i].key, JU64(f[i].v));
		if (print)
			printf(" %s:%" PRIu64, f[i].key, f[i].v);
	}
	if (print)
		printf("\n");
}

static struct json_object *ctrl_json(const struct nvme_id_ctrl *id)
{
	struct json_object *o = json_object_new_object(), *psds = json_object_new_array();
	char txt[300];

	for (size_t i = 0; i < sizeof(ctrl_fields) / sizeof(ctrl_fields[0]); i++) {
		struct json_object *v =
		    id_value(&ctrl_fields[i], (const uint8_t *)id, txt, sizeof(txt));

		/* nvme-cli leaves out an empty subnqn */
		if (!strcmp(ctrl_fields[i].key, "subnqn") && !txt[0]) {
			json_object_put(v);
			continue;
		}
		JADD(o, ctrl_fields[i].key, v);
	}
	for (unsigned i = 0; i <= id->npss && i < 32; i++) {
		struct json_object *p = json_object_new_object();

		psd_fields(&id->psd[i], p, false, i);
		json_object_array_add(psds, p);
	}
	JADD(o, "psds", psds);
	return o;
}

static void ctrl_print(const struct nvme_id_ctrl *id, uint64_t cap)
{
	char txt[300];

	printf("NVME Identify Controller:\n");
	for (size_t i = 0; i < sizeof(ctrl_fields) / sizeof(ctrl_fields[0]); i++) {
		json_object_put(id_value(&ctrl_fields[i], (const uint8_t *)id, txt, sizeof(txt)));
		if (!strcmp(ctrl_fields[i].key, "subnqn") && !txt[0])
			continue;
		printf("%-10s: %s\n", ctrl_fields[i].key, txt);
	}
	for (unsigned i = 0; i <= id->npss && i < 32; i++)
		psd_fields(&id->psd[i], NULL, true, i);
	/* not Identify data, but what the driver works with */
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

static struct json_object *ns_json(const struct nvme_id_ns *id)
{
	struct json_object *o = json_object_new_object(), *lbafs = json_object_new_array();
	unsigned nlbaf = id->nlbaf + 1u;
	char txt[64];

	for (size_t i = 0; i < sizeof(ns_fields) / sizeof(ns_fields[0]); i++)
		if (ns_field_shown(&ns_fields[i], id))
			JADD(o, ns_fields[i].key,
			     id_value(&ns_fields[i], (const uint8_t *)id, txt, sizeof(txt)));
	if (nlbaf > 64)
		nlbaf = 64;
	/* nvme-cli 2.x: ms, ds, rp per format; the one in use is FLBAS's */
	for (unsigned i = 0; i < nlbaf; i++) {
		struct json_object *l = json_object_new_object();

		JADD(l, "ms", JU64(id->lbaf[i].ms));
		JADD(l, "ds", JU64(id->lbaf[i].lbads));
		JADD(l, "rp", JU64(id->lbaf[i].rp & 3));
		json_object_array_add(lbafs, l);
	}
	JADD(o, "lbafs", lbafs);
	return o;
}

static void ns_print(uint32_t nsid, const struct nvme_id_ns *id)
{
	unsigned nlbaf = id->nlbaf + 1u, inuse = NVME_FLBAS_INDEX(id->flbas);
	char txt[64];

	printf("NVME Identify Namespace %u:\n", nsid);
	for (size_t i = 0; i < sizeof(ns_fields) / sizeof(ns_fields[0]); i++) {
		if (!ns_field_shown(&ns_fields[i], id))
			continue;
		json_object_put(id_value(&ns_fields[i], (const uint8_t *)id, txt, sizeof(txt)));
		printf("%-8s: %s\n", ns_fields[i].key, txt);
	}
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
			print_json(ns_json(id));
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
	struct json_object *root = NULL, *devs = NULL;
	const struct nvme_id_ctrl *idc;
	struct common_args a;
	struct cli_dev dev;
	struct nvme_id_ns *id;
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
	id = calloc(1, sizeof(*id));
	if (n < 0 || !id) {
		fprintf(stderr, "nvmekeep: %s: cannot list namespaces: %s\n", dev.spec,
			strerror(n < 0 ? -n : ENOMEM));
		free(id);
		cli_dev_close(&dev);
		return CLI_EXIT_FAIL;
	}
	if (a.out == CLI_OUT_JSON) {
		/* nvme-cli 2.x `nvme list -o json`: one entry per namespace */
		root = json_object_new_object();
		devs = json_object_new_array();
	} else {
		printf("%-20s %-20s %-40s %-9s %-26s %-16s %-8s\n", "Node", "SN", "Model",
		       "Namespace", "Usage", "Format", "FW Rev");
	}
	for (int i = 0; i < n; i++) {
		uint64_t bs, used, size;

		if (identify_ns(dev.ctrl, nsids[i], id))
			continue;
		bs = 1ull << id->lbaf[NVME_FLBAS_INDEX(id->flbas) & 63].lbads;
		used = id->nuse * bs;
		size = id->nsze * bs;
		if (root) {
			struct json_object *o = json_object_new_object();

			JADD(o, "NameSpace", JU64(nsids[i]));
			JADD(o, "DevicePath", json_object_new_string(dev.spec));
			JADD(o, "Firmware", json_object_new_string(fr));
			JADD(o, "ModelNumber", json_object_new_string(mn));
			JADD(o, "SerialNumber", json_object_new_string(sn));
			JADD(o, "UsedBytes", JU64(used));
			JADD(o, "MaximumLBA", JU64(id->nsze));
			JADD(o, "PhysicalSize", JU64(size));
			JADD(o, "SectorSize", JU64(bs));
			json_object_array_add(devs, o);
		} else {
			char usage[64], fmt[48];

			snprintf(usage, sizeof(usage), "%.2f GB / %.2f GB", (double)used / 1e9,
				 (double)size / 1e9);
			snprintf(fmt, sizeof(fmt), "%" PRIu64 " B + %u B", bs,
				 id->lbaf[NVME_FLBAS_INDEX(id->flbas) & 63].ms);
			printf("%-20s %-20s %-40s %-9u %-26s %-16s %-8s\n", dev.spec, sn, mn,
			       nsids[i], usage, fmt, fr);
		}
	}
	if (root) {
		JADD(root, "Devices", devs);
		print_json(root);
	}
	free(id);
	cli_dev_close(&dev);
	return 0;
}
