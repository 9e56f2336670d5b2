// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a saved controller state, through the
 * same decoder and validator that nvmk_ctrl_restore runs before it touches
 * anything. A state that is accepted must also be accepted again after a
 * round trip through the validator (it does not depend on hidden state), and
 * the error text must be a terminated string.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nvmekeep/driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int rc, rc2;

	memset(err, 'x', sizeof(err));
	rc = nvmk_ctrl_state_validate(data, size, err, sizeof(err));
	if (memchr(err, 0, sizeof(err)) == NULL)
		__builtin_trap(); /* the reason must always be a C string */
	if (rc != 0 && err[0] == 0)
		__builtin_trap(); /* a refusal always says why */
	rc2 = nvmk_ctrl_state_validate(data, size, NULL, 0);
	if (rc != rc2)
		__builtin_trap(); /* deterministic, with or without an error buffer */
	return 0;
}
