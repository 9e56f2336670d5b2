// SPDX-License-Identifier: MIT
/*
 * The saved handshakes of the export state (src/export/handshake_state.c):
 * a state the successor takes is checked field by field before any socket is
 * adopted; each out-of-range field is refused (-EBADMSG, with the reason),
 * and a valid one survives packing and unpacking unchanged.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "export/handshake_state.h"

#define MAX_OPT 8192

static uint8_t opt_bytes[64];

/* A valid handshake in state @state (1..4) on thread 1. */
static void valid(NvmkExp__ExpHandshake *h, uint32_t state)
{
	nvmk_exp__exp_handshake__init(h);
	h->has_fd = h->has_id = h->has_thread = h->has_state = 1;
	h->fd = 7;
	h->id = 3;
	h->thread = 1;
	h->state = state;
	if (state == 1 || state == 2) {
		h->has_rx = 1;
		h->rx.data = opt_bytes;
		h->rx.len = state == 1 ? 3 : 7;
	}
	if (state == 3 || state == 4) {
		h->has_option = h->has_length = 1;
		h->option = 7;
		h->length = 6;
	}
	if (state == 3) {
		h->has_data = 1;
		h->data.data = opt_bytes;
		h->data.len = 3;
	}
	if (state == 4) {
		h->length = MAX_OPT + 100;
		h->has_discard_left = 1;
		h->discard_left = 50;
	}
	h->has_tx = 1;
	h->tx.data = opt_bytes;
	h->tx.len = 20;
}

static int check_one(NvmkExp__ExpHandshake *h)
{
	NvmkExp__ExpState st = NVMK_EXP__EXP_STATE__INIT;
	NvmkExp__ExpHandshake *hp[1] = {h};
	char why[160] = "";
	int rc;

	st.has_threads = 1;
	st.threads = 2;
	st.n_handshakes = 1;
	st.handshakes = hp;
	rc = exp_hs_check(&st, MAX_OPT, why, sizeof(why));
	if (rc)
		assert_non_null(strstr(why, "handshake 0"));
	return rc;
}

static void test_valid_states(void **state)
{
	NvmkExp__ExpHandshake h;

	(void)state;
	for (uint32_t s = 1; s <= 4; s++) {
		valid(&h, s);
		assert_int_equal(check_one(&h), 0);
	}
	nvmk_exp__exp_handshake__init(&h); /* accepted, not greeted: fd and thread only */
	h.has_fd = h.has_thread = h.has_state = 1;
	h.fd = 5;
	assert_int_equal(check_one(&h), 0);
}

static void test_refused_fields(void **state)
{
	NvmkExp__ExpHandshake h;

	(void)state;
	valid(&h, 2), h.has_fd = 0;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.fd = -1;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.thread = 2; /* the state has 2 threads */
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.state = 5;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 1), h.rx.len = 4; /* the 4 flag bytes complete: not a partial read */
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.rx.len = 16;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 3), h.has_rx = 1, h.rx.data = opt_bytes, h.rx.len = 2; /* rx only for 1, 2 */
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 3), h.has_length = 0;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 3), h.length = MAX_OPT + 1; /* would overrun the option buffer */
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 3), h.data.len = 6; /* complete data: the option would have been handled */
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.has_data = 1, h.data.data = opt_bytes, h.data.len = 1;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 4), h.discard_left = 0;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 4), h.discard_left = h.length + 1;
	assert_int_equal(check_one(&h), -EBADMSG);
	valid(&h, 2), h.tx.len = (1u << 20) + 1;
	assert_int_equal(check_one(&h), -EBADMSG);
	nvmk_exp__exp_handshake__init(&h); /* not greeted yet, but replies pending */
	h.has_fd = h.has_thread = h.has_state = h.has_tx = 1;
	h.fd = 5;
	h.tx.data = opt_bytes;
	h.tx.len = 4;
	assert_int_equal(check_one(&h), -EBADMSG);
}

static void test_round_trip(void **state)
{
	NvmkExp__ExpState st = NVMK_EXP__EXP_STATE__INIT, *back;
	NvmkExp__ExpHandshake h, *hp[1] = {&h};
	char why[160];
	uint8_t *buf;
	size_t len;

	(void)state;
	for (unsigned i = 0; i < sizeof(opt_bytes); i++)
		opt_bytes[i] = (uint8_t)(i * 7 + 1);
	valid(&h, 3);
	h.peer = "unix";
	h.meta_export = "dev/1";
	h.has_structured = h.structured = 1;
	st.has_version = st.has_threads = 1;
	st.version = 1;
	st.threads = 2;
	st.n_handshakes = 1;
	st.handshakes = hp;
	len = nvmk_exp__exp_state__get_packed_size(&st);
	buf = malloc(len);
	assert_non_null(buf);
	nvmk_exp__exp_state__pack(&st, buf);
	back = nvmk_exp__exp_state__unpack(NULL, len, buf);
	assert_non_null(back);
	assert_int_equal(back->n_handshakes, 1);
	assert_int_equal(exp_hs_check(back, MAX_OPT, why, sizeof(why)), 0);
	assert_int_equal(back->handshakes[0]->state, 3);
	assert_int_equal(back->handshakes[0]->option, 7);
	assert_int_equal(back->handshakes[0]->length, 6);
	assert_int_equal(back->handshakes[0]->data.len, 3);
	assert_memory_equal(back->handshakes[0]->data.data, opt_bytes, 3);
	assert_int_equal(back->handshakes[0]->tx.len, 20);
	assert_memory_equal(back->handshakes[0]->tx.data, opt_bytes, 20);
	assert_string_equal(back->handshakes[0]->meta_export, "dev/1");
	assert_true(back->handshakes[0]->structured);
	nvmk_exp__exp_state__free_unpacked(back, NULL);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_states),
	    cmocka_unit_test(test_refused_fields),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
