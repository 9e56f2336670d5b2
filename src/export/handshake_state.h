/* SPDX-License-Identifier: MIT */
/*
 * Servicing of NBD connections still in their newstyle handshake
 * (handshake_state.c): saved with the bytes read and not yet sent, so the
 * successor goes on from where the predecessor stopped.
 */
#ifndef NVMK_EXPORT_HANDSHAKE_STATE_H
#define NVMK_EXPORT_HANDSHAKE_STATE_H

#include "export_internal.h"
#include "export_state.pb-c.h"

/* What exp_hs_save allocated for the state; freed after packing. */
struct exp_hs_saved {
	NvmkExp__ExpHandshake *hs;
	NvmkExp__ExpHandshake **hsp;
};

/* Whether @c, a started connection, is a handshake that can be handed over
 * (not TLS, not closing). */
bool exp_hs_saveable(const struct exp_conn *c);

/*
 * Describe every handover-able handshake of @srv (started connections for
 * which exp_hs_saveable holds, and those accepted but not started, in the
 * threads' inboxes) in @st->handshakes and clear FD_CLOEXEC on their
 * sockets. Threads parked. Return: 0 or -ENOMEM (then nothing is set).
 */
int exp_hs_save(struct nvmk_export_server *srv, NvmkExp__ExpState *st, struct exp_hs_saved *keep);
void exp_hs_saved_free(struct exp_hs_saved *keep);

/* Check the handshakes of a state (ranges, sizes). Return: 0 or -EBADMSG with @why. */
int exp_hs_check(const NvmkExp__ExpState *st, uint32_t max_option_len, char *why, size_t wl);

/* Adopt the handshakes of @st (after the exports); return how many. */
unsigned exp_hs_adopt(struct nvmk_export_server *srv, const NvmkExp__ExpState *st);

#endif /* NVMK_EXPORT_HANDSHAKE_STATE_H */
