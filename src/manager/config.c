/* SPDX-License-Identifier: MIT */
/*
 * Configuration from the environment, with OpenHCL's names and semantics.
 *
 * What follows mirrors (read, not copied) microsoft/openvmm:
 *  - openhcl/underhill_core/src/options.rs: KeepAliveConfig::from_str and the
 *    reading of OPENHCL_NVME_KEEP_ALIVE; parse_bool / read_legacy_openhcl_env
 *    for OPENHCL_NVME_VFIO with its UNDERHILL_ fallback.
 *  - openhcl/openhcl_boot/src/cmdline.rs: Vtl2GpaPoolConfig::from and the
 *    precedence of OPENHCL_ENABLE_VTL2_GPA_POOL; OPENHCL_DISABLE_NVME_KEEP_ALIVE.
 *  - openhcl/openhcl_boot/src/main.rs: the keep-alive string the boot shim
 *    writes ("[disabled,]{host|nohost},{privatepool|noprivatepool}").
 *  - openhcl/openhcl_boot/src/host_params/dt/dma_hint.rs: the pool heuristic.
 *
 * Where nvmekeep differs on purpose (each is marked "Differs:" below):
 *  - bad boolean and pool values warn; OpenHCL silently takes false / off;
 *  - OPENHCL_NVME_VFIO defaults to false (DESIGN.md: kernel driver), while
 *    OpenHCL's boot shim always puts OPENHCL_NVME_VFIO=1 on the command line;
 *  - the pool heuristic is a formula, not OpenHCL's lookup table.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"

#define CFG_LOG "config" /* device name of configuration log lines */

#define VAR_KEEP_ALIVE	       "OPENHCL_NVME_KEEP_ALIVE"
#define VAR_DISABLE_KEEP_ALIVE "OPENHCL_DISABLE_NVME_KEEP_ALIVE"
#define VAR_NVME_VFIO	       "OPENHCL_NVME_VFIO"
#define VAR_NVME_VFIO_LEGACY   "UNDERHILL_NVME_VFIO"
#define VAR_POOL_CONFIG	       "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG"
#define VAR_POOL_ENABLE	       "OPENHCL_ENABLE_VTL2_GPA_POOL"

#define KEEP_ALIVE_ACCEPTED                                                                        \
	"host,privatepool | enabled (on); host,noprivatepool | nohost,privatepool | "              \
	"nohost,noprivatepool | disabled[,...] (off); case-insensitive"
#define BOOL_ACCEPTED "1 | true (on); 0 | false (off); true/false case-insensitive"
#define POOL_ACCEPTED "release | debug | off | a decimal page count > 0; case-sensitive"

/*
 * Pool heuristic, in the spirit of OpenHCL's dma_hint.rs. OpenHCL sizes its
 * table from one NVMe queue pair per vCPU at 69 pages each (4 SQ pages, 1 CQ
 * page, 64 pages of bounce/PRP memory; nvme_driver QueuePair::new), times the
 * number of devices expected: the release table for the deployed device
 * counts, the debug table for ~3 devices. It extrapolates by memory and rounds
 * up to 2 MiB. nvmekeep has no deployment data, so it uses the formula behind
 * the table: devices * (cpus + 1 admin) queue pairs * 69 pages, with 1 device
 * for "release" and 3 for "debug", capped at 1/8 of memory so that the pool
 * never takes the memory the rest of the process needs, then rounded up to a
 * whole 2 MiB (so at least 2 MiB, which is also the smallest entries' size).
 */
#define POOL_PAGES_PER_QUEUE_PAIR 69u
#define POOL_RELEASE_DEVICES	  1u
#define POOL_DEBUG_DEVICES	  3u
#define POOL_MEMORY_FRACTION	  8u
#define POOL_PAGES_PER_2MB	  512u

static const char *process_getenv(const char *name)
{
	return getenv(name);
}

const char *nvmk_config_source_name(enum nvmk_config_source source)
{
	switch (source) {
	case NVMK_CONFIG_ENV:
		return "env";
	case NVMK_CONFIG_INFERRED:
		return "inferred";
	case NVMK_CONFIG_DEFAULT:
	default:
		return "default";
	}
}

/* @value for a log line: quoted, printable ASCII only, at most 40 characters. */
static void quote(const char *value, char *buf, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '\'';
	for (i = 0; value[i] && o + 5 < len && i < 40; i++)
		buf[o++] = (value[i] >= 0x20 && value[i] < 0x7f) ? value[i] : '?';
	if (value[i] && o + 5 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
}

static void add_warning(struct nvmk_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(struct nvmk_config *cfg, const char *fmt, ...)
{
	char line[NVMK_CONFIG_WARNING_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	nvmk_warn(CFG_LOG, NVMK_LOG_NOQ, "%s", line);
	if (cfg->n_warnings < NVMK_CONFIG_MAX_WARNINGS)
		memcpy(cfg->warnings[cfg->n_warnings++], line, sizeof(line));
}

/*
 * ASCII case folding. OpenHCL lowercases with Rust's Unicode to_lowercase();
 * for these keywords that is the same thing: the only non-ASCII character
 * that lowercases to an ASCII letter is U+212A KELVIN SIGN ('k'), and no
 * accepted spelling has a 'k'. Deliberately not strcasecmp(): locale free.
 */
static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

static bool ascii_iprefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (!*s || ascii_lower(*s) != ascii_lower(*prefix))
			return false;
	return true;
}

/*
 * OpenHCL KeepAliveConfig::from_str: the whole value, lowercased, no trimming
 * (" enabled" is invalid; the kernel command line cannot carry spaces anyway).
 * Note "host,noprivatepool" is OpenHCL's EnabledHostAndPrivatePoolNotPresent,
 * which is_enabled() nevertheless reports as off, as do the others.
 */
static bool parse_keep_alive(const char *v, enum nvmk_keep_alive_state *state)
{
	if (ascii_ieq(v, "host,privatepool") || ascii_ieq(v, "enabled"))
		*state = NVMK_KEEP_ALIVE_ENABLED;
	else if (ascii_ieq(v, "host,noprivatepool"))
		*state = NVMK_KEEP_ALIVE_HOST_NO_POOL;
	else if (ascii_ieq(v, "nohost,privatepool"))
		*state = NVMK_KEEP_ALIVE_POOL_NO_HOST;
	else if (ascii_ieq(v, "nohost,noprivatepool"))
		*state = NVMK_KEEP_ALIVE_DISABLED;
	else if (ascii_ieq(v, "disabled") || ascii_iprefix(v, "disabled,"))
		*state = NVMK_KEEP_ALIVE_DISABLED; /* whatever follows "disabled," is ignored */
	else
		return false;
	return true;
}

static void load_keep_alive(nvmk_getenv_fn env, const struct nvmk_config_facts *facts,
			    struct nvmk_config *cfg)
{
	const char *v = env(VAR_KEEP_ALIVE), *dis = env(VAR_DISABLE_KEEP_ALIVE);
	/* OpenHCL boot shim (cmdline.rs): present with any value but exactly "0", the empty
	 * value included, means disable. */
	bool disable = dis && strcmp(dis, "0") != 0;
	char q[64];
	size_t i;

	if (v) {
		cfg->keep_alive.source = NVMK_CONFIG_ENV;
		if (parse_keep_alive(v, &cfg->keep_alive.state)) {
			for (i = 0; v[i] && i + 1 < sizeof(cfg->keep_alive.mode); i++)
				cfg->keep_alive.mode[i] = ascii_lower(v[i]);
			cfg->keep_alive.mode[i] = '\0';
		} else {
			quote(v, q, sizeof(q));
			add_warning(cfg,
				    "%s=%s is not valid (accepted: %s): NVMe keep-alive is off",
				    VAR_KEEP_ALIVE, q, KEEP_ALIVE_ACCEPTED);
			cfg->keep_alive.state = NVMK_KEEP_ALIVE_DISABLED;
			snprintf(cfg->keep_alive.mode, sizeof(cfg->keep_alive.mode), "disabled");
		}
		/* In OpenHCL the disable switch only shapes the string the boot shim infers, and an
		 * explicit value wins over it; say so instead of silently ignoring it. */
		if (disable)
			add_warning(cfg, "%s is ignored because %s is set", VAR_DISABLE_KEEP_ALIVE,
				    VAR_KEEP_ALIVE);
	} else {
		/* The boot shim's string (openhcl_boot/src/main.rs), then parsed like any value. */
		snprintf(cfg->keep_alive.mode, sizeof(cfg->keep_alive.mode), "%s%s,%s",
			 disable ? "disabled," : "", facts->host_keep_alive ? "host" : "nohost",
			 facts->pool_present ? "privatepool" : "noprivatepool");
		cfg->keep_alive.source = NVMK_CONFIG_INFERRED;
		parse_keep_alive(cfg->keep_alive.mode, &cfg->keep_alive.state);
		nvmk_info(CFG_LOG, NVMK_LOG_NOQ, "%s=%s (inferred)", VAR_KEEP_ALIVE,
			  cfg->keep_alive.mode);
	}
	cfg->keep_alive.enabled = cfg->keep_alive.state == NVMK_KEEP_ALIVE_ENABLED;
}

/*
 * OpenHCL options.rs: read_legacy_openhcl_env() takes OPENHCL_NVME_VFIO when it
 * is set at all (even empty or invalid) and UNDERHILL_NVME_VFIO only when it is
 * not; parse_bool() accepts "1" and ASCII-case-insensitive "true" for true,
 * "0" and "false" for false, no trimming.
 * Differs: anything else is false there without a word; here it warns. And
 * unset means false here (DESIGN.md: kernel driver); OpenHCL's boot shim puts
 * OPENHCL_NVME_VFIO=1 on every command line, so there the default is true.
 * (OpenHCL's underhill_init binds vfio-pci to NVMe only for exactly "true" or
 * "1"; underhill_core's case-insensitive parse is the one mirrored.)
 */
static void load_nvme_vfio(nvmk_getenv_fn env, struct nvmk_config *cfg)
{
	const char *var = VAR_NVME_VFIO, *v = env(VAR_NVME_VFIO);
	char q[64];

	if (!v) {
		var = VAR_NVME_VFIO_LEGACY;
		v = env(VAR_NVME_VFIO_LEGACY);
	}
	cfg->nvme_vfio.enabled = false;
	if (!v) {
		cfg->nvme_vfio.source = NVMK_CONFIG_DEFAULT;
		cfg->nvme_vfio.variable = NULL;
		return;
	}
	cfg->nvme_vfio.source = NVMK_CONFIG_ENV;
	cfg->nvme_vfio.variable = var;
	if (strcmp(v, "1") == 0 || ascii_ieq(v, "true")) {
		cfg->nvme_vfio.enabled = true;
	} else if (!(strcmp(v, "0") == 0 || ascii_ieq(v, "false"))) {
		quote(v, q, sizeof(q));
		add_warning(cfg, "%s=%s is not valid (accepted: %s): using the kernel NVMe driver",
			    var, q, BOOL_ACCEPTED);
	}
}

/*
 * Rust's u64::from_str, which OpenHCL uses for a page count: an optional '+',
 * then one or more ASCII digits, nothing else, no overflow.
 */
static bool parse_u64_like_rust(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (*s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = n;
	return true;
}

uint64_t nvmk_config_pool_heuristic_pages(bool debug, unsigned int cpus, uint64_t memory)
{
	uint64_t devices = debug ? POOL_DEBUG_DEVICES : POOL_RELEASE_DEVICES;
	uint64_t pages = devices * ((uint64_t)(cpus ? cpus : 1) + 1) * POOL_PAGES_PER_QUEUE_PAIR;
	uint64_t cap = memory / 4096 / POOL_MEMORY_FRACTION;

	if (memory && pages > cap)
		pages = cap;
	pages = (pages + POOL_PAGES_PER_2MB - 1) / POOL_PAGES_PER_2MB * POOL_PAGES_PER_2MB;
	return pages ? pages : POOL_PAGES_PER_2MB;
}

/*
 * OpenHCL cmdline.rs: OPENHCL_ENABLE_VTL2_GPA_POOL, when present, overrides
 * OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG, whatever either says (an invalid override
 * still wins and means off). Vtl2GpaPoolConfig::from matches "debug",
 * "release" and "off" exactly (case-sensitive: "Release" is not a keyword,
 * fails to parse as a number and means off), else a u64; 0 or a parse failure
 * means off. Unset means "release" (the heuristic).
 * Differs: OpenHCL turns 0 and garbage into off silently; here both warn.
 */
static void load_private_pool(nvmk_getenv_fn env, const struct nvmk_config_facts *facts,
			      struct nvmk_config *cfg)
{
	const char *var = VAR_POOL_ENABLE, *v = env(VAR_POOL_ENABLE), *under;
	uint64_t n = 0;
	char q[64];

	if (v) {
		under = env(VAR_POOL_CONFIG);
		if (under)
			nvmk_info(CFG_LOG, NVMK_LOG_NOQ, "%s overrides %s", VAR_POOL_ENABLE,
				  VAR_POOL_CONFIG);
	} else {
		var = VAR_POOL_CONFIG;
		v = env(VAR_POOL_CONFIG);
	}
	if (!v) {
		cfg->private_pool.source = NVMK_CONFIG_DEFAULT;
		cfg->private_pool.variable = NULL;
		v = "release";
	} else {
		cfg->private_pool.source = NVMK_CONFIG_ENV;
		cfg->private_pool.variable = var;
	}
	snprintf(cfg->private_pool.spec, sizeof(cfg->private_pool.spec), "%s", v);

	if (strcmp(v, "release") == 0 || strcmp(v, "debug") == 0) {
		bool debug = v[0] == 'd';

		cfg->private_pool.spec_kind =
		    debug ? NVMK_POOL_HEURISTIC_DEBUG : NVMK_POOL_HEURISTIC_RELEASE;
		cfg->private_pool.pages =
		    nvmk_config_pool_heuristic_pages(debug, facts->cpus, facts->memory_bytes);
	} else if (strcmp(v, "off") == 0) {
		cfg->private_pool.spec_kind = NVMK_POOL_OFF;
		cfg->private_pool.pages = 0;
	} else if (parse_u64_like_rust(v, &n) && n > 0) {
		cfg->private_pool.spec_kind = NVMK_POOL_PAGES;
		cfg->private_pool.pages = n;
	} else {
		cfg->private_pool.spec_kind = NVMK_POOL_OFF;
		cfg->private_pool.pages = 0;
		quote(v, q, sizeof(q));
		add_warning(cfg, "%s=%s %s (accepted: %s): the private DMA pool is off", var, q,
			    parse_u64_like_rust(v, &n) ? "is a page count of 0" : "is not valid",
			    POOL_ACCEPTED);
	}
}

int nvmk_config_load(nvmk_getenv_fn getenv_fn, const struct nvmk_config_facts *facts,
		     struct nvmk_config *out)
{
	static const struct nvmk_config_facts no_facts;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!getenv_fn)
		getenv_fn = process_getenv;
	if (!facts)
		facts = &no_facts;
	load_private_pool(getenv_fn, facts, out);
	load_nvme_vfio(getenv_fn, out);
	load_keep_alive(getenv_fn, facts, out);
	return 0;
}

static const char *keep_alive_state_name(enum nvmk_keep_alive_state s)
{
	/* OpenHCL's KeepAliveConfig::as_str() canonical spellings */
	switch (s) {
	case NVMK_KEEP_ALIVE_ENABLED:
		return "enabled";
	case NVMK_KEEP_ALIVE_HOST_NO_POOL:
		return "host,noprivatepool";
	case NVMK_KEEP_ALIVE_POOL_NO_HOST:
		return "nohost,privatepool";
	case NVMK_KEEP_ALIVE_DISABLED:
	default:
		return "disabled";
	}
}

static const char *pool_kind_name(enum nvmk_pool_spec k)
{
	switch (k) {
	case NVMK_POOL_HEURISTIC_RELEASE:
		return "heuristic-release";
	case NVMK_POOL_HEURISTIC_DEBUG:
		return "heuristic-debug";
	case NVMK_POOL_PAGES:
		return "pages";
	case NVMK_POOL_OFF:
	default:
		return "off";
	}
}

/* json_object_object_add() takes ownership of @val (NULL adds JSON null); count failures. */
static void put(struct json_object *obj, const char *key, struct json_object *val, int *bad)
{
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		(*bad)++;
	}
}

static void put_str(struct json_object *obj, const char *key, const char *s, int *bad)
{
	struct json_object *v = NULL;

	if (s) {
		v = json_object_new_string(s);
		if (!v)
			(*bad)++;
	}
	put(obj, key, v, bad);
}

int nvmk_config_to_json(const struct nvmk_config *cfg, char *buf, size_t size)
{
	struct json_object *root, *ka, *vfio, *pool, *warn;
	const char *text;
	size_t len;
	int bad = 0;

	if (!cfg || !buf || !size)
		return -EINVAL;
	root = json_object_new_object();
	ka = json_object_new_object();
	vfio = json_object_new_object();
	pool = json_object_new_object();
	warn = json_object_new_array();
	if (!root || !ka || !vfio || !pool || !warn) {
		json_object_put(root);
		json_object_put(ka);
		json_object_put(vfio);
		json_object_put(pool);
		json_object_put(warn);
		return -ENOMEM;
	}
	put_str(ka, "mode", cfg->keep_alive.mode, &bad);
	put_str(ka, "state", keep_alive_state_name(cfg->keep_alive.state), &bad);
	put(ka, "enabled", json_object_new_boolean(cfg->keep_alive.enabled), &bad);
	put_str(ka, "source", nvmk_config_source_name(cfg->keep_alive.source), &bad);

	put(vfio, "enabled", json_object_new_boolean(cfg->nvme_vfio.enabled), &bad);
	put_str(vfio, "source", nvmk_config_source_name(cfg->nvme_vfio.source), &bad);
	put_str(vfio, "variable", cfg->nvme_vfio.variable, &bad);

	put(pool, "pages", json_object_new_uint64(cfg->private_pool.pages), &bad);
	put(pool, "bytes",
	    json_object_new_uint64(cfg->private_pool.pages > UINT64_MAX / 4096
				       ? UINT64_MAX
				       : cfg->private_pool.pages * 4096),
	    &bad);
	put_str(pool, "spec", cfg->private_pool.spec, &bad);
	put_str(pool, "kind", pool_kind_name(cfg->private_pool.spec_kind), &bad);
	put_str(pool, "source", nvmk_config_source_name(cfg->private_pool.source), &bad);
	put_str(pool, "variable", cfg->private_pool.variable, &bad);

	for (unsigned int i = 0; i < cfg->n_warnings && i < NVMK_CONFIG_MAX_WARNINGS; i++) {
		struct json_object *w = json_object_new_string(cfg->warnings[i]);

		if (!w || json_object_array_add(warn, w)) {
			json_object_put(w);
			bad++;
		}
	}
	/* children complete first: a failed add frees the child, which is then not touched */
	put(root, "keep_alive", ka, &bad);
	put(root, "nvme_vfio", vfio, &bad);
	put(root, "private_pool", pool, &bad);
	put(root, "warnings", warn, &bad);

	text = bad ? NULL : json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	if (!text) {
		json_object_put(root);
		return -ENOMEM;
	}
	len = strlen(text);
	if (len >= size || len > INT32_MAX) {
		json_object_put(root);
		return -ENOSPC;
	}
	memcpy(buf, text, len + 1);
	json_object_put(root);
	return (int)len;
}
