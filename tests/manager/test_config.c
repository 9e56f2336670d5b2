/* SPDX-License-Identifier: MIT */
/*
 * Table-driven tests of the OpenHCL-compatible configuration. The expected
 * values follow OpenHCL's parsers (see src/manager/config.c for the sources).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "nvmekeep/log.h"
#include "nvmekeep/manager.h"

#define KA   "OPENHCL_NVME_KEEP_ALIVE"
#define DIS  "OPENHCL_DISABLE_NVME_KEEP_ALIVE"
#define VF   "OPENHCL_NVME_VFIO"
#define VFU  "UNDERHILL_NVME_VFIO"
#define PCFG "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG"
#define PEN  "OPENHCL_ENABLE_VTL2_GPA_POOL"

/* ---- a fake environment ------------------------------------------------------------------ */

struct envvar {
	const char *name;
	const char *value;
};

static const struct envvar *cur_env;
static size_t cur_env_len;

static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; i < cur_env_len; i++)
		if (cur_env[i].name && strcmp(cur_env[i].name, name) == 0)
			return cur_env[i].value;
	return NULL;
}

/* Load with @vars (NULL values are left out, i.e. unset). */
static void load(const struct envvar *vars, size_t n, const struct nvmk_config_facts *facts,
		 struct nvmk_config *cfg)
{
	struct envvar set[8];
	size_t k = 0;

	for (size_t i = 0; i < n && k < 8; i++)
		if (vars[i].value)
			set[k++] = vars[i];
	cur_env = set;
	cur_env_len = k;
	memset(cfg, 0xa5, sizeof(*cfg)); /* load must fill everything */
	assert_int_equal(nvmk_config_load(fake_getenv, facts, cfg), 0);
	cur_env = NULL;
	cur_env_len = 0;
}

static bool any_warning(const struct nvmk_config *cfg, const char *needle)
{
	for (unsigned int i = 0; i < cfg->n_warnings; i++)
		if (strstr(cfg->warnings[i], needle))
			return true;
	return false;
}

static void quiet_sink(void *ctx, enum nvmk_log_level level, const char *line)
{
	int *count = ctx;

	(void)line;
	if (level == NVMK_LOG_WARN)
		(*count)++;
}

static int warn_lines;

static int setup(void **state)
{
	(void)state;
	warn_lines = 0;
	nvmk_log_set_sink(quiet_sink, &warn_lines);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nvmk_log_set_sink(NULL, NULL);
	return 0;
}

/* ---- OPENHCL_NVME_KEEP_ALIVE ------------------------------------------------------------ */

enum {
	ON = NVMK_KEEP_ALIVE_ENABLED,
	HOST_ONLY = NVMK_KEEP_ALIVE_HOST_NO_POOL,
	POOL_ONLY = NVMK_KEEP_ALIVE_POOL_NO_HOST,
	OFF = NVMK_KEEP_ALIVE_DISABLED
};

struct ka_case {
	const char *value;   /* OPENHCL_NVME_KEEP_ALIVE, NULL = unset */
	const char *disable; /* OPENHCL_DISABLE_NVME_KEEP_ALIVE, NULL = unset */
	bool host, pool;     /* facts */
	const char *mode;    /* expected mode string */
	int state;
	enum nvmk_config_source source;
	const char *warning; /* expected in a warning, NULL = no warning at all */
};

#define ENV NVMK_CONFIG_ENV
#define INF NVMK_CONFIG_INFERRED
#define DEF NVMK_CONFIG_DEFAULT
#define BAD "is not valid"

static const struct ka_case ka_cases[] = {
    /* the only "on" spellings, any case */
    {"host,privatepool", NULL, false, false, "host,privatepool", ON, ENV, NULL},
    {"HOST,PRIVATEPOOL", NULL, false, false, "host,privatepool", ON, ENV, NULL},
    {"Host,PrivatePool", NULL, false, false, "host,privatepool", ON, ENV, NULL},
    {"enabled", NULL, false, false, "enabled", ON, ENV, NULL},
    {"ENABLED", NULL, false, false, "enabled", ON, ENV, NULL},
    {"eNaBlEd", NULL, true, true, "enabled", ON, ENV, NULL},
    /* accepted "off" spellings: no warning */
    {"host,noprivatepool", NULL, true, true, "host,noprivatepool", HOST_ONLY, ENV, NULL},
    {"HOST,NOPRIVATEPOOL", NULL, true, true, "host,noprivatepool", HOST_ONLY, ENV, NULL},
    {"nohost,privatepool", NULL, true, true, "nohost,privatepool", POOL_ONLY, ENV, NULL},
    {"NoHost,PrivatePool", NULL, true, true, "nohost,privatepool", POOL_ONLY, ENV, NULL},
    {"nohost,noprivatepool", NULL, true, true, "nohost,noprivatepool", OFF, ENV, NULL},
    {"disabled", NULL, true, true, "disabled", OFF, ENV, NULL},
    {"DISABLED", NULL, true, true, "disabled", OFF, ENV, NULL},
    {"disabled,", NULL, true, true, "disabled,", OFF, ENV, NULL},
    {"disabled,host,privatepool", NULL, true, true, "disabled,host,privatepool", OFF, ENV, NULL},
    {"Disabled,NoHost,NoPrivatePool", NULL, true, true, "disabled,nohost,noprivatepool", OFF, ENV,
     NULL},
    {"disabled,anything at all", NULL, true, true, "disabled,anything at all", OFF, ENV, NULL},
    /* everything else: warning, off, whatever the facts say */
    {"", NULL, true, true, "disabled", OFF, ENV, BAD},
    {" enabled", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"enabled ", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"\tenabled", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"host, privatepool", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"host,privatepool,", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"privatepool,host", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"host;privatepool", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"host", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"privatepool", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"enable", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"enabledd", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"disable", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"disabledx", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"disabled;host", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"on", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"1", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"true", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"0", NULL, true, true, "disabled", OFF, ENV, BAD},
    {"\xc4\xb0"
     "enabled",
     NULL, true, true, "disabled", OFF, ENV, BAD},
    /* an explicit value wins over the disable switch, which is reported as ignored */
    {"enabled", "1", true, true, "enabled", ON, ENV, DIS " is ignored"},
    {"host,privatepool", "", true, true, "host,privatepool", ON, ENV, DIS " is ignored"},
    {"enabled", "0", true, true, "enabled", ON, ENV, NULL},
    /* unset: the boot shim's inference, every combination */
    {NULL, NULL, true, true, "host,privatepool", ON, INF, NULL},
    {NULL, NULL, true, false, "host,noprivatepool", HOST_ONLY, INF, NULL},
    {NULL, NULL, false, true, "nohost,privatepool", POOL_ONLY, INF, NULL},
    {NULL, NULL, false, false, "nohost,noprivatepool", OFF, INF, NULL},
    {NULL, "1", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "1", true, false, "disabled,host,noprivatepool", OFF, INF, NULL},
    {NULL, "1", false, true, "disabled,nohost,privatepool", OFF, INF, NULL},
    {NULL, "1", false, false, "disabled,nohost,noprivatepool", OFF, INF, NULL},
    /* OPENHCL_DISABLE_NVME_KEEP_ALIVE: any value but exactly "0" disables */
    {NULL, "0", true, true, "host,privatepool", ON, INF, NULL},
    {NULL, "", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "false", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "no", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "00", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, " 0", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "0 ", true, true, "disabled,host,privatepool", OFF, INF, NULL},
    {NULL, "yes", false, false, "disabled,nohost,noprivatepool", OFF, INF, NULL},
};

static void test_keep_alive_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ka_cases) / sizeof(ka_cases[0]); i++) {
		const struct ka_case *c = &ka_cases[i];
		const struct envvar env[] = {{KA, c->value}, {DIS, c->disable}};
		const struct nvmk_config_facts facts = {.host_keep_alive = c->host,
							.pool_present = c->pool};
		struct nvmk_config cfg;

		print_message("keep-alive case %zu: value=%s disable=%s host=%d pool=%d\n", i,
			      c->value ? c->value : "(unset)", c->disable ? c->disable : "(unset)",
			      c->host, c->pool);
		load(env, 2, &facts, &cfg);
		assert_string_equal(cfg.keep_alive.mode, c->mode);
		assert_int_equal(cfg.keep_alive.state, c->state);
		assert_int_equal(cfg.keep_alive.enabled, c->state == ON);
		assert_int_equal(cfg.keep_alive.source, c->source);
		if (c->warning) {
			assert_int_equal(cfg.n_warnings, 1);
			assert_true(any_warning(&cfg, c->warning));
			/* a warning names the variable and, for a bad value, the accepted ones */
			assert_true(any_warning(&cfg, KA));
			if (strcmp(c->warning, BAD) == 0)
				assert_true(any_warning(&cfg, "host,privatepool | enabled"));
		} else {
			assert_int_equal(cfg.n_warnings, 0);
		}
	}
}

static void test_keep_alive_long_garbage(void **state)
{
	char value[300];
	const struct envvar env[] = {{KA, value}};
	struct nvmk_config cfg;

	(void)state;
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	value[5] = '\n'; /* a control character must not reach the log as is */
	load(env, 1, NULL, &cfg);
	assert_false(cfg.keep_alive.enabled);
	assert_string_equal(cfg.keep_alive.mode, "disabled");
	assert_int_equal(cfg.n_warnings, 1);
	assert_non_null(strstr(cfg.warnings[0], "'xxxxx?xxxx"));
	assert_non_null(strstr(cfg.warnings[0], "...'"));
	assert_null(strchr(cfg.warnings[0], '\n'));
	assert_true(strlen(cfg.warnings[0]) < NVMK_CONFIG_WARNING_LEN);
	/* an accepted value longer than the mode buffer is kept truncated, not refused */
	memcpy(value, "disabled,", 9);
	load(env, 1, NULL, &cfg);
	assert_int_equal(cfg.keep_alive.state, OFF);
	assert_int_equal(cfg.n_warnings, 0);
	assert_int_equal(strlen(cfg.keep_alive.mode), sizeof(cfg.keep_alive.mode) - 1);
}

/* ---- OPENHCL_NVME_VFIO / UNDERHILL_NVME_VFIO -------------------------------------------- */

struct vfio_case {
	const char *openhcl, *underhill;
	bool enabled;
	enum nvmk_config_source source;
	const char *variable; /* NULL: none read */
	bool warns;
};

static const struct vfio_case vfio_cases[] = {
    {NULL, NULL, false, DEF, NULL, false},
    {"1", NULL, true, ENV, VF, false},
    {"true", NULL, true, ENV, VF, false},
    {"TRUE", NULL, true, ENV, VF, false},
    {"True", NULL, true, ENV, VF, false},
    {"tRuE", NULL, true, ENV, VF, false},
    {"0", NULL, false, ENV, VF, false},
    {"false", NULL, false, ENV, VF, false},
    {"FALSE", NULL, false, ENV, VF, false},
    {"False", NULL, false, ENV, VF, false},
    /* not booleans to OpenHCL: false (and here a warning) */
    {"", NULL, false, ENV, VF, true},
    {" 1", NULL, false, ENV, VF, true},
    {"1 ", NULL, false, ENV, VF, true},
    {"true ", NULL, false, ENV, VF, true},
    {"01", NULL, false, ENV, VF, true},
    {"2", NULL, false, ENV, VF, true},
    {"-1", NULL, false, ENV, VF, true},
    {"+1", NULL, false, ENV, VF, true},
    {"yes", NULL, false, ENV, VF, true},
    {"on", NULL, false, ENV, VF, true},
    {"y", NULL, false, ENV, VF, true},
    {"t", NULL, false, ENV, VF, true},
    {"truex", NULL, false, ENV, VF, true},
    {"enabled", NULL, false, ENV, VF, true},
    /* the legacy name is read only when the new one is unset */
    {NULL, "1", true, ENV, VFU, false},
    {NULL, "TRUE", true, ENV, VFU, false},
    {NULL, "0", false, ENV, VFU, false},
    {NULL, "bogus", false, ENV, VFU, true},
    {"0", "1", false, ENV, VF, false},
    {"1", "0", true, ENV, VF, false},
    {"bogus", "1", false, ENV, VF, true},
    {"", "true", false, ENV, VF, true},
};

static void test_nvme_vfio_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vfio_cases) / sizeof(vfio_cases[0]); i++) {
		const struct vfio_case *c = &vfio_cases[i];
		const struct envvar env[] = {{VF, c->openhcl}, {VFU, c->underhill}};
		struct nvmk_config cfg;

		print_message("vfio case %zu: %s=%s %s=%s\n", i, VF,
			      c->openhcl ? c->openhcl : "(unset)", VFU,
			      c->underhill ? c->underhill : "(unset)");
		load(env, 2, NULL, &cfg);
		assert_int_equal(cfg.nvme_vfio.enabled, c->enabled);
		assert_int_equal(cfg.nvme_vfio.source, c->source);
		if (c->variable)
			assert_string_equal(cfg.nvme_vfio.variable, c->variable);
		else
			assert_null(cfg.nvme_vfio.variable);
		if (c->warns) {
			assert_int_equal(cfg.n_warnings, 1);
			assert_true(any_warning(&cfg, c->variable));
			assert_true(any_warning(&cfg, "1 | true"));
		} else {
			assert_int_equal(cfg.n_warnings, 0);
		}
	}
}

/* ---- the private pool ------------------------------------------------------------------- */

#define HEUR_RELEASE                                                                               \
	(UINT64_MAX - 7)	    /* expected: the release heuristic (no case uses this value) */
#define HEUR_DEBUG (UINT64_MAX - 8) /* expected: the debug heuristic */

struct pool_case {
	const char *config, *enable;
	uint64_t pages;
	enum nvmk_pool_spec kind;
	enum nvmk_config_source source;
	const char *variable;
	const char *warning; /* NULL: none */
};

static const struct pool_case pool_cases[] = {
    {NULL, NULL, HEUR_RELEASE, NVMK_POOL_HEURISTIC_RELEASE, DEF, NULL, NULL},
    {"release", NULL, HEUR_RELEASE, NVMK_POOL_HEURISTIC_RELEASE, ENV, PCFG, NULL},
    {"debug", NULL, HEUR_DEBUG, NVMK_POOL_HEURISTIC_DEBUG, ENV, PCFG, NULL},
    {"off", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, NULL},
    {"512", NULL, 512, NVMK_POOL_PAGES, ENV, PCFG, NULL},
    {"1", NULL, 1, NVMK_POOL_PAGES, ENV, PCFG, NULL},
    {"007", NULL, 7, NVMK_POOL_PAGES, ENV, PCFG, NULL},
    {"+512", NULL, 512, NVMK_POOL_PAGES, ENV, PCFG, NULL}, /* Rust's u64 parse takes '+' */
    {"18446744073709551615", NULL, UINT64_MAX, NVMK_POOL_PAGES, ENV, PCFG, NULL},
    /* zero: off, with a warning */
    {"0", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, "page count of 0"},
    {"000", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, "page count of 0"},
    {"+0", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, "page count of 0"},
    /* keywords are case-sensitive in OpenHCL: these are unparseable numbers, i.e. off */
    {"Release", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"DEBUG", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"OFF", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"on", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"asdf", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"-1", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"+", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"++5", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"512k", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"512 ", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {" 512", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"0x200", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"1e3", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"5.0", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    {"18446744073709551616", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD}, /* u64 overflow */
    {"99999999999999999999999999", NULL, 0, NVMK_POOL_OFF, ENV, PCFG, BAD},
    /* OPENHCL_ENABLE_VTL2_GPA_POOL, when set, wins over the IGVM config, always */
    {NULL, "1024", 1024, NVMK_POOL_PAGES, ENV, PEN, NULL},
    {"release", "debug", HEUR_DEBUG, NVMK_POOL_HEURISTIC_DEBUG, ENV, PEN, NULL},
    {"debug", "release", HEUR_RELEASE, NVMK_POOL_HEURISTIC_RELEASE, ENV, PEN, NULL},
    {"512", "off", 0, NVMK_POOL_OFF, ENV, PEN, NULL},
    {"off", "64", 64, NVMK_POOL_PAGES, ENV, PEN, NULL},
    {"512", "garbage", 0, NVMK_POOL_OFF, ENV, PEN, BAD},
    {"512", "0", 0, NVMK_POOL_OFF, ENV, PEN, "page count of 0"},
    {"512", "", 0, NVMK_POOL_OFF, ENV, PEN, BAD},
    {"garbage", "16", 16, NVMK_POOL_PAGES, ENV, PEN, NULL},
};

static void test_private_pool_table(void **state)
{
	const struct nvmk_config_facts facts = {.cpus = 16, .memory_bytes = 8ull << 30};

	(void)state;
	for (size_t i = 0; i < sizeof(pool_cases) / sizeof(pool_cases[0]); i++) {
		const struct pool_case *c = &pool_cases[i];
		const struct envvar env[] = {{PCFG, c->config}, {PEN, c->enable}};
		struct nvmk_config cfg;
		uint64_t want = c->pages;

		print_message("pool case %zu: %s=%s %s=%s\n", i, PCFG,
			      c->config ? c->config : "(unset)", PEN,
			      c->enable ? c->enable : "(unset)");
		if (want == HEUR_RELEASE)
			want =
			    nvmk_config_pool_heuristic_pages(false, facts.cpus, facts.memory_bytes);
		else if (want == HEUR_DEBUG)
			want =
			    nvmk_config_pool_heuristic_pages(true, facts.cpus, facts.memory_bytes);
		load(env, 2, &facts, &cfg);
		assert_int_equal(cfg.private_pool.pages, want);
		assert_int_equal(cfg.private_pool.spec_kind, c->kind);
		assert_int_equal(cfg.private_pool.source, c->source);
		if (c->variable) {
			const char *given = strcmp(c->variable, PEN) == 0 ? c->enable : c->config;

			assert_string_equal(cfg.private_pool.variable, c->variable);
			assert_int_equal(strncmp(cfg.private_pool.spec, given,
						 sizeof(cfg.private_pool.spec) - 1),
					 0);
		} else {
			assert_null(cfg.private_pool.variable);
			assert_string_equal(cfg.private_pool.spec, "release");
		}
		if (c->warning) {
			assert_int_equal(cfg.n_warnings, 1);
			assert_true(any_warning(&cfg, c->warning));
			assert_true(any_warning(&cfg, c->variable));
			assert_true(any_warning(&cfg, "release | debug | off"));
		} else {
			assert_int_equal(cfg.n_warnings, 0);
		}
	}
}

static void test_pool_heuristic(void **state)
{
	/* devices * (cpus + 1) * 69 pages, capped at memory / 8, rounded up to 2 MiB */
	static const struct {
		bool debug;
		unsigned int cpus;
		uint64_t memory;
		uint64_t pages;
	} cases[] = {
	    {false, 0, 0, 512},		    /* 0 CPUs count as 1: 138 -> 512 */
	    {false, 1, 0, 512},		    /* 138 */
	    {false, 2, 0, 512},		    /* 207 */
	    {false, 7, 0, 1024},	    /* 552 */
	    {false, 16, 0, 1536},	    /* 1173 */
	    {true, 16, 0, 3584},	    /* 3519 */
	    {false, 64, 0, 4608},	    /* 4485 */
	    {true, 64, 0, 13824},	    /* 13455 */
	    {true, 64, 64ull << 20, 2048},  /* capped at 2048 pages (8 MiB) */
	    {true, 64, 100ull << 20, 3584}, /* cap 3200 -> rounded up to 3584 */
	    {false, 1, 1ull << 20, 512},    /* cap 32 pages, still one 2 MiB unit */
	    {false, 16, 1ull << 40, 1536},  /* plenty of memory: no cap */
	    {false, UINT32_MAX, 0, 296352743424ull},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t p = nvmk_config_pool_heuristic_pages(cases[i].debug, cases[i].cpus,
							      cases[i].memory);

		print_message("heuristic case %zu\n", i);
		assert_int_equal(p, cases[i].pages);
		assert_int_equal(p % 512, 0);
	}
	/* the default pool follows the facts */
	{
		const struct nvmk_config_facts facts = {.cpus = 64};
		struct nvmk_config cfg;

		load(NULL, 0, &facts, &cfg);
		assert_int_equal(cfg.private_pool.pages, 4608);
	}
}

/* ---- everything together ------------------------------------------------------------------ */

static void test_defaults_and_no_facts(void **state)
{
	struct nvmk_config cfg;

	(void)state;
	load(NULL, 0, NULL, &cfg);
	assert_string_equal(cfg.keep_alive.mode, "nohost,noprivatepool");
	assert_false(cfg.keep_alive.enabled);
	assert_int_equal(cfg.keep_alive.source, INF);
	assert_false(cfg.nvme_vfio.enabled);
	assert_int_equal(cfg.nvme_vfio.source, DEF);
	assert_int_equal(cfg.private_pool.source, DEF);
	assert_int_equal(cfg.private_pool.pages, 512);
	assert_int_equal(cfg.n_warnings, 0);
	assert_int_equal(nvmk_config_load(fake_getenv, NULL, NULL), -EINVAL);
}

static void test_several_warnings_collected_and_logged(void **state)
{
	const struct envvar env[] = {
	    {KA, "maybe"},
	    {DIS, "1"},
	    {VF, "yes"},
	    {PEN, "lots"},
	};
	struct nvmk_config cfg;

	(void)state;
	load(env, 4, NULL, &cfg);
	assert_int_equal(cfg.n_warnings, 4);
	assert_true(any_warning(&cfg, KA "='maybe'"));
	assert_true(any_warning(&cfg, DIS " is ignored"));
	assert_true(any_warning(&cfg, VF "='yes'"));
	assert_true(any_warning(&cfg, PEN "='lots'"));
	assert_int_equal(warn_lines, 4);
}

static void test_process_environment(void **state)
{
	struct nvmk_config cfg;

	(void)state;
	setenv(KA, "Host,PrivatePool", 1);
	setenv(VF, "True", 1);
	setenv(PCFG, "768", 1);
	unsetenv(PEN);
	assert_int_equal(nvmk_config_load(NULL, NULL, &cfg), 0);
	assert_true(cfg.keep_alive.enabled);
	assert_string_equal(cfg.keep_alive.mode, "host,privatepool");
	assert_true(cfg.nvme_vfio.enabled);
	assert_int_equal(cfg.private_pool.pages, 768);
	unsetenv(KA);
	unsetenv(VF);
	unsetenv(PCFG);
}

static json_object *field(json_object *obj, const char *key, json_type type)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(obj, key, &v));
	assert_int_equal(json_object_get_type(v), type);
	return v;
}

static void test_json(void **state)
{
	const struct envvar env[] = {
	    {KA, "Enabled"},
	    {VF, "x\"y\\z"}, /* a warning with characters JSON must escape */
	    {PCFG, "512"},
	    {PEN, "2048"},
	};
	struct nvmk_config cfg;
	json_object *root, *ka, *vf, *pool, *warn;
	char buf[4096], tiny[16];
	int len;

	(void)state;
	load(env, 4, NULL, &cfg);
	len = nvmk_config_to_json(&cfg, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal((size_t)len, strlen(buf));
	root = json_tokener_parse(buf);
	assert_non_null(root);

	ka = field(root, "keep_alive", json_type_object);
	assert_string_equal(json_object_get_string(field(ka, "mode", json_type_string)), "enabled");
	assert_string_equal(json_object_get_string(field(ka, "state", json_type_string)),
			    "enabled");
	assert_true(json_object_get_boolean(field(ka, "enabled", json_type_boolean)));
	assert_string_equal(json_object_get_string(field(ka, "source", json_type_string)), "env");

	vf = field(root, "nvme_vfio", json_type_object);
	assert_false(json_object_get_boolean(field(vf, "enabled", json_type_boolean)));
	assert_string_equal(json_object_get_string(field(vf, "source", json_type_string)), "env");
	assert_string_equal(json_object_get_string(field(vf, "variable", json_type_string)), VF);

	pool = field(root, "private_pool", json_type_object);
	assert_int_equal(json_object_get_uint64(field(pool, "pages", json_type_int)), 2048);
	assert_int_equal(json_object_get_uint64(field(pool, "bytes", json_type_int)), 2048 * 4096);
	assert_string_equal(json_object_get_string(field(pool, "spec", json_type_string)), "2048");
	assert_string_equal(json_object_get_string(field(pool, "kind", json_type_string)), "pages");
	assert_string_equal(json_object_get_string(field(pool, "source", json_type_string)), "env");
	assert_string_equal(json_object_get_string(field(pool, "variable", json_type_string)), PEN);

	warn = field(root, "warnings", json_type_array);
	assert_int_equal(json_object_array_length(warn), cfg.n_warnings);
	assert_int_equal(cfg.n_warnings, 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(warn, 0)),
			    cfg.warnings[0]);
	assert_non_null(strstr(cfg.warnings[0], "'x\"y\\z'"));
	json_object_put(root);

	/* inferred and default sources, a null variable, an empty warning list */
	load(NULL, 0, &(struct nvmk_config_facts){.host_keep_alive = true, .cpus = 2}, &cfg);
	assert_true(nvmk_config_to_json(&cfg, buf, sizeof(buf)) > 0);
	root = json_tokener_parse(buf);
	assert_non_null(root);
	ka = field(root, "keep_alive", json_type_object);
	assert_string_equal(json_object_get_string(field(ka, "mode", json_type_string)),
			    "host,noprivatepool");
	assert_false(json_object_get_boolean(field(ka, "enabled", json_type_boolean)));
	assert_string_equal(json_object_get_string(field(ka, "source", json_type_string)),
			    "inferred");
	vf = field(root, "nvme_vfio", json_type_object);
	assert_string_equal(json_object_get_string(field(vf, "source", json_type_string)),
			    "default");
	field(vf, "variable", json_type_null);
	pool = field(root, "private_pool", json_type_object);
	assert_string_equal(json_object_get_string(field(pool, "source", json_type_string)),
			    "default");
	assert_string_equal(json_object_get_string(field(pool, "kind", json_type_string)),
			    "heuristic-release");
	assert_int_equal(json_object_get_uint64(field(pool, "pages", json_type_int)), 512);
	assert_int_equal(json_object_array_length(field(root, "warnings", json_type_array)), 0);
	json_object_put(root);

	/* too small a buffer is refused, not truncated */
	assert_int_equal(nvmk_config_to_json(&cfg, tiny, sizeof(tiny)), -ENOSPC);
	assert_int_equal(nvmk_config_to_json(&cfg, buf, 0), -EINVAL);
	assert_int_equal(nvmk_config_to_json(NULL, buf, sizeof(buf)), -EINVAL);
	assert_string_equal(nvmk_config_source_name(NVMK_CONFIG_INFERRED), "inferred");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_keep_alive_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_alive_long_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nvme_vfio_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_private_pool_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_heuristic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults_and_no_facts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_several_warnings_collected_and_logged, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_process_environment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
