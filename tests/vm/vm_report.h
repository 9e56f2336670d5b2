/* SPDX-License-Identifier: MIT */
/*
 * One result line per case for the guest programs of tests/vm:
 * "PASS <mode> <program> <what>" or "FAIL ...", counted for the closing
 * "N passed, M failed" line that run.sh adds up. Define VM_PROG (the
 * program's tag with a trailing space, or "") before including this.
 */
#ifndef NVMK_VM_REPORT_H
#define NVMK_VM_REPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#ifndef VM_PROG
#error "define VM_PROG before including vm_report.h"
#endif

static int g_passed, g_failed;
static const char *g_mode = "?";

static void result(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s " VM_PROG, ok ? "PASS" : "FAIL", g_mode);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		g_passed++;
	else
		g_failed++;
}

#endif /* NVMK_VM_REPORT_H */
