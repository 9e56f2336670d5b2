/* SPDX-License-Identifier: MIT */
/* The library's version, for programs that check what they run with. */
#include "nvmekeep/version.h"

const char *nvmk_version(void)
{
	return NVMK_VERSION;
}
