/* SPDX-License-Identifier: MIT */
/* Option value parsing for the CLI: strict, with errors that say what is accepted. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nvmekeep %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'nvmekeep %s --help')\n", cmd);
}

int cli_take_args(const char *cmd, int argc, char **argv, const char **slots[], unsigned nslots)
{
	for (unsigned i = 0; i < nslots && optind < argc; i++)
		*slots[i] = argv[optind++];
	if (optind < argc) {
		cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Decimal, or hex after 0x/0X. A leading zero is decimal: strtoull's base 0
 * would read "010" as octal 8, which no user of a storage tool means. */
static int parse_number(const char *s, uint64_t *out, const char **end)
{
	char *e;
	unsigned long long v;
	int base = 10;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &e, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (e == s)
		return -EINVAL;
	*out = v;
	*end = e;
	return 0;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (parse_number(s, &v, &end) || *end || v < min || v > max) {
		fprintf(stderr,
			"nvmekeep: invalid value '%s' for %s: expected an integer from %" PRIu64
			" to %" PRIu64 " (decimal or 0x hex)\n",
			s ? s : "", opt, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cli_parse_size(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v, mult = 1;

	if (parse_number(s, &v, &end))
		goto bad;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mult = 1ull << 10;
			break;
		case 'm':
		case 'M':
			mult = 1ull << 20;
			break;
		case 'g':
		case 'G':
			mult = 1ull << 30;
			break;
		case 't':
		case 'T':
			mult = 1ull << 40;
			break;
		default:
			goto bad;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			goto bad;
	}
	if (v > UINT64_MAX / mult)
		goto bad;
	v *= mult;
	if (v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr,
		"nvmekeep: invalid size '%s' for %s: expected bytes from %" PRIu64 " to %" PRIu64
		", optionally with a K/M/G/T suffix (powers of 1024)\n",
		s ? s : "", opt, min, max);
	return -EINVAL;
}

int cli_parse_output(const char *s, enum cli_output *out)
{
	if (!strcmp(s, "normal")) {
		*out = CLI_OUT_NORMAL;
		return 0;
	}
	if (!strcmp(s, "json")) {
		*out = CLI_OUT_JSON;
		return 0;
	}
	fprintf(stderr, "nvmekeep: invalid output format '%s': expected 'normal' or 'json'\n", s);
	return -EINVAL;
}
