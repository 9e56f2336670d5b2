// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the VFIO handover string a successor gets across exec
 * (nvmk_vfio_handover_parse). Whatever the bytes, parsing must not crash or
 * read past the string; what it accepts must be well-formed (a canonical
 * PCI address, fds >= 0, counts within the arrays, map sizes whole pages)
 * and survive format -> parse unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/backing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_handover: %s\n", what);                              \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nvmk_vfio_handover ho, again;
	static char text[64 * 1024];
	char *s = malloc(size + 1); /* exactly the string: ASan sees any overread */
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = nvmk_vfio_handover_parse(s, &ho);
	free(s);
	CHECK(rc == 0 || rc == -EINVAL, "parse returned an unlisted error");
	if (rc)
		return 0;
	CHECK(nvmk_pci_addr_valid(ho.pci_addr), "accepted a malformed PCI address");
	CHECK(ho.container_fd >= 0 && ho.group_fd >= 0 && ho.device_fd >= 0, "negative fd");
	CHECK(ho.nirqs <= NVMK_VFIO_MAX_IRQS && ho.nmaps <= NVMK_VFIO_MAX_MAPS, "count overflow");
	for (unsigned i = 0; i < ho.nmaps; i++)
		CHECK(ho.maps[i].size && !(ho.maps[i].size & 4095) && ho.maps[i].fd >= 0,
		      "bad map accepted");
	rc = nvmk_vfio_handover_format(&ho, text, sizeof(text));
	CHECK(rc > 0, "an accepted handover does not format");
	CHECK(nvmk_vfio_handover_parse(text, &again) == 0, "its own format is refused");
	CHECK(!memcmp(&ho, &again, sizeof(ho)), "format -> parse changed it");
	return 0;
}
