// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_handover.c without libFuzzer, run as a normal
 * test: a real handover string, every prefix of it, every single-byte change
 * at every position to a few bytes that matter to the parser, and a few
 * hand-made hostile strings.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(void)
{
	static const char real[] = "nvmk-vfio1;0000:00:04.0;noiommu;5,6,7;irq=8,9,10;map=0:200000:"
				   "11:0,0:1000:12:3000";
	static const char *const hand[] = {
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,3;irq;map",
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,3;irq=;map=",
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,",
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,3;irq=\t4;map=0x0:1000:5:0",
	    "nvmk-vfio1;0000:00:04.0;type1;-1,2,3;irq;map",
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,3;irq;map=0:fff:5:0",
	    "nvmk-vfio1;0000:00:04.0;type1;1,2,3;irq;map=ffffffffffffffffff:1000:5:0",
	    "nvmk-vfio1;ZZZZ:00:04.0;type1;1,2,3;irq;map",
	    "nvmk-vfio1;0000:00:04.0;",
	};
	static const char twiddle[] = {'\0', ';', ',', '=', ':', '-', '+', ' ', '0', 'f', 'x'};
	char buf[sizeof(real)];
	size_t n = strlen(real), runs = 0;

	for (size_t len = 0; len <= n; len++, runs++)
		LLVMFuzzerTestOneInput((const uint8_t *)real, len);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(twiddle); k++, runs++) {
			memcpy(buf, real, sizeof(real));
			buf[i] = twiddle[k];
			LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
		}
	for (size_t i = 0; i < sizeof(hand) / sizeof(hand[0]); i++, runs++)
		LLVMFuzzerTestOneInput((const uint8_t *)hand[i], strlen(hand[i]));
	fprintf(stderr, "fuzz_handover_regress: %zu strings, all invariants held\n", runs);
	return 0;
}
