// SPDX-License-Identifier: MIT
/*
 * Emulator reservations: the reservation state of one namespace, shared by
 * every controller of the NVM subsystem.
 *
 * Specification: Base 2.0 8.19 "Reservations" and NVM-CS 1.0 3.2.4 - 3.2.7.
 * The same text, clarified, is Base 2.2 8.1.22 and 7.5 - 7.8 (the commands
 * moved into the base specification). Sub-sections are cited as 8.19.n
 * after Base 2.2 8.1.22.n: 3 Registering, 4 Unregistering, 5 Acquiring,
 * 6 Releasing, 7 Preempting, 8 Clearing.
 *
 * Model
 *  - A registration belongs to a HOST, named by its Host Identifier (Set
 *    Features 81h, 5.27.1.25): controllers with the same identifier are the
 *    same host and share its registration and reservation (8.19.3).
 *  - A controller whose Host Identifier is all zeroes has not named its host;
 *    a zero identifier means the controller is associated with no other
 *    controller (5.27.1.25), so such a controller is a host of its own, told
 *    apart by its CNTLID. Its registrations stay with that anonymous host
 *    even if the controller later sets an identifier (Base 2.2 8.1.22), and
 *    are dropped when the controller goes away (emu_resv_ctrl_gone), since
 *    no other controller could ever act for that host.
 *  - Write Exclusive, Exclusive Access and the two Registrants Only types
 *    have one holder; for the two All Registrants types every registrant is
 *    a holder (Base 2.0 Figure 433, Base 2.2 Figure 646), so the reservation lasts until the last
 *    registrant is gone or it is released/cleared (8.19.4).
 *  - Persist Through Power Loss is not supported (RESCAP bit 0 clear).
 *  - Registrant storage grows on demand: "a Reservation Register command
 *    shall never fail due to lack of resources" (8.19); only malloc failure
 *    can make it fail (Internal Error).
 *
 * Reservation notifications (log page 80h) are not produced here.
 *
 * One mutex guards everything: reservation commands are rare, and the I/O
 * path check (emu_resv_check) is a short scan under an uncontended lock.
 */
#include "emu/reservation.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/log.h"

#define EMU_RESV_CNTLID_NONE 0xffffu /* registrant with no controller (Base 2.2 Fig. 584) */

#define SF_OK		 NVME_SF_SUCCESS
#define SF_CONFLICT	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT)
#define SF_INVALID_FIELD NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD)
#define SF_HOSTID_FORMAT NVME_SF(NVME_SCT_GENERIC, NVME_SC_HOSTID_INCONSISTENT)
#define SF_INTERNAL	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL)
#define SF_DATA_XFER	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR)

/* Who a registration or controller belongs to. */
struct emu_resv_who {
	bool anon;	 /* Host Identifier all zeroes: a host of its own */
	bool ext;	 /* 128-bit identifier */
	uint16_t cntlid; /* anon only: the one controller of that host */
	uint8_t id[16];
};

struct emu_resv_reg {
	struct emu_resv_who who;
	uint64_t key;
};

struct emu_resv_ctrl {
	uint16_t cntlid;
	struct emu_resv_who who;
};

struct emu_resv {
	pthread_mutex_t lock;
	uint32_t gen;  /* wraps FFFFFFFFh -> 0 (NVM-CS 1.0 Figure 58, Base 2.2 Figure 582) */
	uint8_t rtype; /* 0: no reservation held */
	int holder;    /* index into reg[] for single-holder types, else -1 */
	struct emu_resv_reg *reg;
	unsigned nr_reg, cap_reg;
	struct emu_resv_ctrl *ctrl; /* controllers seen, for CNTLID in the report */
	unsigned nr_ctrl, cap_ctrl;
};

/* ---------------------------------------------------------------------- */
/* Helpers (caller holds r->lock unless said otherwise)                   */
/* ---------------------------------------------------------------------- */

static struct emu_resv_who emu_resv_who_of(const struct emu_resv_host *h)
{
	static const uint8_t zero[16];
	struct emu_resv_who w;

	memset(&w, 0, sizeof(w));
	memcpy(w.id, h->hostid, h->hostid_ext ? 16 : 8); /* 64-bit: first 8 bytes */
	w.ext = h->hostid_ext;
	w.anon = memcmp(w.id, zero, 16) == 0;
	if (w.anon) {
		w.ext = false; /* no identifier, hence no format */
		w.cntlid = h->cntlid;
	}
	return w;
}

static bool emu_resv_who_eq(const struct emu_resv_who *a, const struct emu_resv_who *b)
{
	if (a->anon || b->anon)
		return a->anon && b->anon && a->cntlid == b->cntlid;
	return a->ext == b->ext && memcmp(a->id, b->id, 16) == 0;
}

static bool emu_resv_all_reg_type(uint8_t rtype)
{
	return rtype == NVME_RESV_WRITE_EXCLUSIVE_ALL_REG ||
	       rtype == NVME_RESV_EXCLUSIVE_ACCESS_ALL_REG;
}

static bool emu_resv_type_valid(uint8_t rtype)
{
	return rtype >= NVME_RESV_WRITE_EXCLUSIVE && rtype <= NVME_RESV_EXCLUSIVE_ACCESS_ALL_REG;
}

static int emu_resv_find(const struct emu_resv *r, const struct emu_resv_who *w)
{
	for (unsigned i = 0; i < r->nr_reg; i++)
		if (emu_resv_who_eq(&r->reg[i].who, w))
			return (int)i;
	return -1;
}

/* Is registrant @i a holder of the current reservation? */
static bool emu_resv_is_holder(const struct emu_resv *r, int i)
{
	if (i < 0 || !r->rtype)
		return false;
	if (emu_resv_all_reg_type(r->rtype))
		return true; /* "All Registrants are Reservation Holders" */
	return r->holder == i;
}

static void emu_resv_set(struct emu_resv *r, uint8_t rtype, int holder)
{
	r->rtype = rtype;
	r->holder = rtype && !emu_resv_all_reg_type(rtype) ? holder : -1;
}

/* Remember which controller acts for which host (for the report's CNTLID). */
static void emu_resv_learn_ctrl(struct emu_resv *r, const struct emu_resv_host *h)
{
	struct emu_resv_who w = emu_resv_who_of(h);

	for (unsigned i = 0; i < r->nr_ctrl; i++) {
		if (r->ctrl[i].cntlid == h->cntlid) {
			r->ctrl[i].who = w; /* its Host Identifier may have changed */
			return;
		}
	}
	if (r->nr_ctrl == r->cap_ctrl) {
		unsigned cap = r->cap_ctrl ? r->cap_ctrl * 2 : 8;
		struct emu_resv_ctrl *n = realloc(r->ctrl, cap * sizeof(*n));

		if (!n)
			return; /* the report then shows CNTLID FFFFh: less precise, not wrong */
		r->ctrl = n;
		r->cap_ctrl = cap;
	}
	r->ctrl[r->nr_ctrl].cntlid = h->cntlid;
	r->ctrl[r->nr_ctrl].who = w;
	r->nr_ctrl++;
}

/* Lowest CNTLID of a controller acting for @w, or FFFFh if none is known. */
static uint16_t emu_resv_cntlid_of(const struct emu_resv *r, const struct emu_resv_who *w)
{
	uint16_t best = EMU_RESV_CNTLID_NONE;

	for (unsigned i = 0; i < r->nr_ctrl; i++)
		if (emu_resv_who_eq(&r->ctrl[i].who, w) && r->ctrl[i].cntlid < best)
			best = r->ctrl[i].cntlid;
	return best;
}

static int emu_resv_add(struct emu_resv *r, const struct emu_resv_who *w, uint64_t key)
{
	if (r->nr_reg == r->cap_reg) {
		unsigned cap = r->cap_reg ? r->cap_reg * 2 : 8;
		struct emu_resv_reg *n = realloc(r->reg, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->reg = n;
		r->cap_reg = cap;
	}
	r->reg[r->nr_reg].who = *w;
	r->reg[r->nr_reg].key = key;
	r->nr_reg++;
	return 0;
}

/*
 * Remove registrant @i (8.19.4 "Unregistering"): if it was the only holder,
 * or the last registrant of an All Registrants reservation, the reservation
 * is released. Indices above @i shift down by one.
 */
static void emu_resv_remove(struct emu_resv *r, int i)
{
	if (r->rtype && !emu_resv_all_reg_type(r->rtype) && r->holder == i)
		emu_resv_set(r, 0, -1);
	memmove(&r->reg[i], &r->reg[i + 1], (r->nr_reg - (unsigned)i - 1) * sizeof(r->reg[0]));
	r->nr_reg--;
	if (r->holder > i)
		r->holder--;
	if (r->nr_reg == 0)
		emu_resv_set(r, 0, -1);
}

/* Does any registrant use the other Host Identifier size than @w? Then
 * 64-bit and 128-bit identifiers would be in use at once: Host Identifier
 * Inconsistent Format (Base 2.0 Figure 94: "simultaneous use of 64-bit and 128-bit
 * Host Identifier values on different controllers"). */
static bool emu_resv_format_mixed(const struct emu_resv *r, const struct emu_resv_who *w)
{
	if (w->anon)
		return false;
	for (unsigned i = 0; i < r->nr_reg; i++)
		if (!r->reg[i].who.anon && r->reg[i].who.ext != w->ext)
			return true;
	return false;
}

/* Record preempted host @w for the caller of acquire_ex. */
struct emu_resv_victims {
	struct emu_resv_host *out;
	unsigned max, nr;
};

static void emu_resv_victim(struct emu_resv_victims *v, const struct emu_resv_who *w)
{
	if (v->nr < v->max && v->out) {
		struct emu_resv_host *h = &v->out[v->nr];

		memset(h, 0, sizeof(*h));
		memcpy(h->hostid, w->id, 16);
		h->hostid_ext = w->ext;
		h->cntlid = w->anon ? w->cntlid : EMU_RESV_CNTLID_NONE;
	}
	v->nr++;
}

/* Unregister every registrant whose key is @key, except index @keep (-1:
 * none). Returns how many were removed; *@self_idx follows the shifts and
 * becomes -1 if the issuer itself was removed. */
static unsigned emu_resv_unregister_key(struct emu_resv *r, uint64_t key, int keep, int *self_idx,
					struct emu_resv_victims *v)
{
	unsigned n = 0;

	for (int i = (int)r->nr_reg - 1; i >= 0; i--) {
		if (i == keep || r->reg[i].key != key)
			continue;
		emu_resv_victim(v, &r->reg[i].who);
		emu_resv_remove(r, i);
		if (*self_idx == i)
			*self_idx = -1;
		else if (*self_idx > i)
			(*self_idx)--;
		if (keep > i)
			keep--;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Public                                                                 */
/* ---------------------------------------------------------------------- */

/**
 * emu_resv_create - empty reservation state (no registrants, generation 0).
 * @out: the new state
 *
 * Return: 0 or -ENOMEM.
 */
int emu_resv_create(struct emu_resv **out)
{
	struct emu_resv *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->holder = -1;
	*out = r;
	return 0;
}

/** emu_resv_destroy - free the state. NULL is a no-op. */
void emu_resv_destroy(struct emu_resv *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->reg);
	free(r->ctrl);
	free(r);
}

/**
 * emu_resv_register - Reservation Register (NVM-CS 1.0 3.2.5, Base 8.19.3/4).
 * @r:     reservation state
 * @h:     issuing host
 * @cdw10: RREGA (2:0), IEKEY (3), CPTPL (31:30)
 * @d:     CRKEY / NRKEY
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_register(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			   const struct nvme_resv_register_data *d)
{
	struct emu_resv_who w;
	bool iekey = cdw10 & NVME_RESV_IEKEY;
	uint32_t cptpl = NVME_RESV_REG_CPTPL(cdw10);
	uint32_t action = NVME_RESV_REG_RREGA(cdw10);
	uint16_t sf = SF_OK;
	int i;

	if (!r || !h || !d)
		return SF_DATA_XFER;
	/* CPTPL: 00b no change; 10b clear PTPL (already clear); 01b reserved;
	 * 11b set PTPL - not supported (RESCAP bit 0 clear): Invalid Field. */
	if (cptpl == 1 || cptpl == 3)
		return SF_INVALID_FIELD;
	if (action > NVME_RESV_REG_REPLACE)
		return SF_INVALID_FIELD; /* RREGA 011b-111b reserved */

	w = emu_resv_who_of(h);
	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	i = emu_resv_find(r, &w);
	switch (action) {
	case NVME_RESV_REG_REGISTER:
		/* IEKEY is ignored for Register (8.19.3). Registering again
		 * with the same key is allowed; with another key it is a
		 * Reservation Conflict. */
		if (i >= 0) {
			if (r->reg[i].key != d->nrkey)
				sf = SF_CONFLICT;
			break;
		}
		if (emu_resv_format_mixed(r, &w))
			sf = SF_HOSTID_FORMAT;
		else if (emu_resv_add(r, &w, d->nrkey))
			sf = SF_INTERNAL;
		break;
	case NVME_RESV_REG_UNREGISTER:
		/* Not a registrant, or CRKEY wrong without IEKEY: Reservation
		 * Conflict (8.19.4; IEKEY only waives the key check). */
		if (i < 0 || (!iekey && r->reg[i].key != d->crkey)) {
			sf = SF_CONFLICT;
			break;
		}
		emu_resv_remove(r, i);
		break;
	case NVME_RESV_REG_REPLACE:
		if (i >= 0) {
			if (!iekey && r->reg[i].key != d->crkey)
				sf = SF_CONFLICT;
			else
				r->reg[i].key = d->nrkey; /* no effect on the reservation */
			break;
		}
		/* "A host may replace its reservation key without regard to
		 * its registration status ... by setting IEKEY" (8.19.3): a
		 * non-registrant with IEKEY becomes a registrant. */
		if (!iekey)
			sf = SF_CONFLICT;
		else if (emu_resv_format_mixed(r, &w))
			sf = SF_HOSTID_FORMAT;
		else if (emu_resv_add(r, &w, d->nrkey))
			sf = SF_INTERNAL;
		break;
	}
	if (sf == SF_OK)
		r->gen++; /* any successful Reservation Register (NVM-CS 1.0 Figure 58, GEN) */
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/**
 * emu_resv_acquire_ex - Reservation Acquire (NVM-CS 1.0 3.2.4, Base 8.19.5/7).
 * @r:         reservation state
 * @h:         issuing host
 * @cdw10:     RACQA (2:0), IEKEY (3), RTYPE (15:8)
 * @d:         CRKEY / PRKEY
 * @aborted:   set when a Preempt and Abort preempted a host (possibly NULL)
 * @preempted: hosts whose registration or reservation was taken (or NULL)
 * @max:       capacity of @preempted
 * @nr:        number of such hosts (may exceed @max; or NULL)
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_acquire_ex(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			     const struct nvme_resv_acquire_data *d, bool *aborted,
			     struct emu_resv_host *preempted, unsigned max, unsigned *nr)
{
	struct emu_resv_victims v = {.out = preempted, .max = max, .nr = 0};
	uint32_t action = NVME_RESV_ACTION(cdw10);
	uint8_t rtype = (uint8_t)NVME_RESV_RTYPE(cdw10);
	struct emu_resv_who w;
	uint16_t sf = SF_OK;
	uint64_t prkey;
	int i;

	if (aborted)
		*aborted = false;
	if (nr)
		*nr = 0;
	if (!r || !h || !d)
		return SF_DATA_XFER;
	/* IEKEY: "If this bit is set to '1', then the controller shall return
	 * an error of Invalid Field in Command" (Base 2.2 Figure 570; the
	 * revision 1.3 behaviour that RESCAP bit 7 announces). */
	if (cdw10 & NVME_RESV_IEKEY)
		return SF_INVALID_FIELD;
	if (action > NVME_RESV_ACQ_PREEMPT_ABORT || !emu_resv_type_valid(rtype))
		return SF_INVALID_FIELD;

	w = emu_resv_who_of(h);
	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	i = emu_resv_find(r, &w);
	/* Not a registrant, or CRKEY is not its key: Reservation Conflict. */
	if (i < 0 || r->reg[i].key != d->crkey) {
		sf = SF_CONFLICT;
		goto out;
	}

	if (action == NVME_RESV_ACQ_ACQUIRE) {
		/* 8.19.5: one reservation at a time. A holder acquiring the
		 * same type again succeeds (no change); another type, or a
		 * reservation held by someone else, is a conflict. The
		 * generation does not change. */
		if (!r->rtype)
			emu_resv_set(r, rtype, i);
		else if (!emu_resv_is_holder(r, i) || r->rtype != rtype)
			sf = SF_CONFLICT;
		goto out;
	}

	/* Preempt / Preempt and Abort, 8.19.7 */
	prkey = d->prkey;
	if (!r->rtype) {
		/* No reservation: registrants with PRKEY are unregistered. */
		if (!emu_resv_unregister_key(r, prkey, -1, &i, &v))
			sf = SF_CONFLICT; /* nobody has that key (see report) */
	} else if (emu_resv_all_reg_type(r->rtype)) {
		if (prkey == 0) {
			/* All other registrants are unregistered, and a new
			 * reservation of RTYPE is created for the issuer. */
			for (int j = (int)r->nr_reg - 1; j >= 0; j--) {
				if (j == i)
					continue;
				emu_resv_victim(&v, &r->reg[j].who);
				emu_resv_remove(r, j);
				if (i > j)
					i--;
			}
			emu_resv_set(r, rtype, i);
		} else if (!emu_resv_unregister_key(r, prkey, -1, &i, &v)) {
			/* "non-zero and there are no registrants whose
			 * reservation key matches": Reservation Conflict */
			sf = SF_CONFLICT;
		}
	} else if (prkey == r->reg[r->holder].key) {
		/* PRKEY is the holder's key: atomically unregister every other
		 * registrant with that key, release, and create a reservation
		 * of RTYPE held by the issuer (also how a holder preempts
		 * itself to change the type; its registration is kept). A
		 * previous holder other than the issuer has that key, so it
		 * is among the unregistered. */
		emu_resv_unregister_key(r, prkey, i, &i, &v);
		emu_resv_set(r, rtype, i);
	} else if (prkey == 0) {
		/* Not the holder's key and 0h: Invalid Field in Command. */
		sf = SF_INVALID_FIELD;
	} else if (!emu_resv_unregister_key(r, prkey, -1, &i, &v)) {
		/* Not the holder's key: registrants with PRKEY are unregistered,
		 * the reservation stays. None with that key: conflict. */
		sf = SF_CONFLICT;
	}
	if (sf == SF_OK) {
		r->gen++; /* a successful Preempt / Preempt and Abort */
		if (aborted && action == NVME_RESV_ACQ_PREEMPT_ABORT && v.nr)
			*aborted = true;
		if (nr)
			*nr = v.nr;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/** emu_resv_acquire - Reservation Acquire without the list of preempted hosts. */
uint16_t emu_resv_acquire(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			  const struct nvme_resv_acquire_data *d, bool *aborted)
{
	return emu_resv_acquire_ex(r, h, cdw10, d, aborted, NULL, 0, NULL);
}

/**
 * emu_resv_host_matches - is @h (a command's host) the preempted host @p?
 * @p: an entry filled by emu_resv_acquire_ex
 * @h: the host of a command the caller may have to abort
 */
bool emu_resv_host_matches(const struct emu_resv_host *p, const struct emu_resv_host *h)
{
	struct emu_resv_who pw = emu_resv_who_of(p), hw = emu_resv_who_of(h);

	return emu_resv_who_eq(&pw, &hw);
}

/**
 * emu_resv_release - Reservation Release (NVM-CS 1.0 3.2.7, Base 8.19.6/8).
 * @r:     reservation state
 * @h:     issuing host
 * @cdw10: RRELA (2:0), IEKEY (3), RTYPE (15:8)
 * @crkey: the issuer's current key
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_release(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			  uint64_t crkey)
{
	uint32_t action = NVME_RESV_ACTION(cdw10);
	uint8_t rtype = (uint8_t)NVME_RESV_RTYPE(cdw10);
	struct emu_resv_who w;
	uint16_t sf = SF_OK;
	int i;

	if (!r || !h)
		return SF_DATA_XFER;
	if (cdw10 & NVME_RESV_IEKEY)
		return SF_INVALID_FIELD; /* as for Acquire (Base 2.2 Figure 577) */
	if (action > NVME_RESV_REL_CLEAR)
		return SF_INVALID_FIELD; /* RRELA 010b-111b reserved */

	w = emu_resv_who_of(h);
	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	i = emu_resv_find(r, &w);
	if (i < 0 || r->reg[i].key != crkey) {
		sf = SF_CONFLICT; /* not a registrant, or wrong CRKEY */
		goto out;
	}
	if (action == NVME_RESV_REL_CLEAR) {
		/* 8.19.8: release any reservation and unregister everyone. */
		r->nr_reg = 0;
		emu_resv_set(r, 0, -1);
		r->gen++;
		goto out;
	}
	/* 8.19.6: with no reservation, or from a registrant that does not
	 * hold it, Release succeeds and changes nothing. */
	if (!emu_resv_is_holder(r, i))
		goto out;
	if (rtype != r->rtype) {
		sf = SF_INVALID_FIELD; /* RTYPE is not the current type */
		goto out;
	}
	/* For All Registrants types a release by any holder ends it. The
	 * generation does not change on a release. */
	emu_resv_set(r, 0, -1);
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/**
 * emu_resv_report - Reservation Report (NVM-CS 1.0 3.2.6; Base 2.2 7.8).
 * @r:   reservation state
 * @h:   issuing host
 * @eds: extended data structure (64-byte entries, 128-bit host ids)
 * @buf: destination of @len bytes: the status structure, truncated to @len
 *       (NUMD may ask for less), zero padded when @len is larger
 * @len: bytes available
 *
 * One entry per registrant (Base 2.2 calls the count REGSTRNT; Base 2.0
 * REGCTL): CNTLID is a controller acting for that host, or FFFFh if none
 * is known. A host that specified a 64-bit identifier must use EDS = 0 and
 * one with a 128-bit identifier EDS = 1, else Host Identifier Inconsistent
 * Format (Base 2.2 7.8); a host with no identifier may use either.
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_report(struct emu_resv *r, const struct emu_resv_host *h, bool eds, void *buf,
			 size_t len)
{
	size_t hdr = eds ? sizeof(struct nvme_resv_status_ext) : sizeof(struct nvme_resv_status);
	size_t ent = eds ? sizeof(struct nvme_resv_ctrl_ext) : sizeof(struct nvme_resv_ctrl);
	struct nvme_resv_status st;
	struct emu_resv_who w;
	uint8_t *out = buf;
	uint16_t sf = SF_OK;
	size_t off;

	if (!r || !h || (!buf && len))
		return SF_DATA_XFER;
	if (len)
		memset(buf, 0, len);
	w = emu_resv_who_of(h);
	if (!w.anon && w.ext != eds)
		return SF_HOSTID_FORMAT;

	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	memset(&st, 0, sizeof(st));
	st.gen = r->gen;
	st.rtype = r->rtype;
	st.regctl[0] = (uint8_t)(r->nr_reg & 0xff);
	st.regctl[1] = (uint8_t)((r->nr_reg >> 8) & 0xff);
	st.ptpls = 0; /* reservations do not persist through power loss */
	if (len)
		memcpy(out, &st, len < sizeof(st) ? len : sizeof(st));
	off = hdr;
	for (unsigned i = 0; i < r->nr_reg && off < len; i++, off += ent) {
		const struct emu_resv_reg *g = &r->reg[i];
		union {
			struct nvme_resv_ctrl std;
			struct nvme_resv_ctrl_ext ext;
		} e;

		memset(&e, 0, sizeof(e));
		if (eds) {
			e.ext.cntlid = emu_resv_cntlid_of(r, &g->who);
			e.ext.rcsts = emu_resv_is_holder(r, (int)i) ? NVME_RESV_RCSTS_HOLDER : 0;
			e.ext.rkey = g->key;
			memcpy(e.ext.hostid, g->who.id, 16); /* 64-bit ids: upper 8 bytes 0 */
		} else {
			if (g->who.ext) {
				/* A 128-bit registrant has no 64-bit form: the
				 * two sizes are in use at once. */
				sf = SF_HOSTID_FORMAT;
				break;
			}
			e.std.cntlid = emu_resv_cntlid_of(r, &g->who);
			e.std.rcsts = emu_resv_is_holder(r, (int)i) ? NVME_RESV_RCSTS_HOLDER : 0;
			e.std.rkey = g->key;
			memcpy(&e.std.hostid, g->who.id, 8);
		}
		memcpy(out + off, &e, len - off < ent ? len - off : ent);
	}
	pthread_mutex_unlock(&r->lock);
	if (sf != SF_OK && len)
		memset(buf, 0, len);
	return sf;
}

/**
 * emu_resv_check - may host @h run NVM command @opcode now?
 * @r:      reservation state
 * @h:      the command's host
 * @opcode: NVM command set opcode
 *
 * Base 2.0 Figure 434 (Base 2.2 Figure 647): Read group = Read, Compare,
 * Verify; Write group = Write, Write Uncorrectable, Write Zeroes, Dataset
 * Management, Flush, and Copy (its destination; its source is checked as a
 * read, which every type allows whenever it allows the write). Reservation
 * commands do their own checks; all other commands are allowed.
 *
 *   type            holder  registrant  non-registrant
 *   WE              R W     R -         R -
 *   EA              R W     - -         - -
 *   WE-RO / WE-AR   R W     R W         R -
 *   EA-RO / EA-AR   R W     R W         - -
 *
 * Return: 0 or Reservation Conflict.
 */
uint16_t emu_resv_check(struct emu_resv *r, const struct emu_resv_host *h, uint8_t opcode)
{
	struct emu_resv_who w;
	uint16_t sf = SF_OK;
	bool is_write;
	int i;

	switch (opcode) {
	case NVME_CMD_READ:
	case NVME_CMD_COMPARE:
	case NVME_CMD_VERIFY:
		is_write = false;
		break;
	case NVME_CMD_WRITE:
	case NVME_CMD_WRITE_UNCOR:
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
	case NVME_CMD_FLUSH:
	case NVME_CMD_COPY:
		is_write = true;
		break;
	default:
		return SF_OK;
	}
	if (!r || !h)
		return SF_OK;

	w = emu_resv_who_of(h);
	pthread_mutex_lock(&r->lock);
	if (!r->rtype)
		goto out;
	i = emu_resv_find(r, &w);
	if (emu_resv_is_holder(r, i))
		goto out;
	switch (r->rtype) {
	case NVME_RESV_WRITE_EXCLUSIVE:
		if (is_write)
			sf = SF_CONFLICT;
		break;
	case NVME_RESV_EXCLUSIVE_ACCESS:
		sf = SF_CONFLICT;
		break;
	case NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY:
	case NVME_RESV_WRITE_EXCLUSIVE_ALL_REG:
		if (is_write && i < 0)
			sf = SF_CONFLICT;
		break;
	case NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY:
	case NVME_RESV_EXCLUSIVE_ACCESS_ALL_REG:
		if (i < 0)
			sf = SF_CONFLICT;
		break;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/**
 * emu_resv_ctrl_gone - forget controller @cntlid (it was destroyed).
 *
 * Registrations of hosts with an identifier stay (they belong to the host).
 * A host without an identifier was that controller alone: its registration
 * is dropped as an Unregister would (releasing a reservation it held alone).
 */
void emu_resv_ctrl_gone(struct emu_resv *r, uint16_t cntlid)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nr_ctrl; i++) {
		if (r->ctrl[i].cntlid == cntlid) {
			r->ctrl[i] = r->ctrl[r->nr_ctrl - 1];
			r->nr_ctrl--;
			break;
		}
	}
	for (int i = (int)r->nr_reg - 1; i >= 0; i--)
		if (r->reg[i].who.anon && r->reg[i].who.cntlid == cntlid)
			emu_resv_remove(r, i);
	pthread_mutex_unlock(&r->lock);
}

/** emu_resv_generation - the current generation counter (GEN). */
uint32_t emu_resv_generation(struct emu_resv *r)
{
	uint32_t gen;

	pthread_mutex_lock(&r->lock);
	gen = r->gen;
	pthread_mutex_unlock(&r->lock);
	return gen;
}
