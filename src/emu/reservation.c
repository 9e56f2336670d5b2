// SPDX-License-Identifier: MIT
/*
 * Emulator reservations: the reservation state of one namespace (Base 2.0
 * 8.19 "Reservations", NVM-CS 1.0 3.2.4 - 3.2.7).
 *
 * Model
 *  - A registration belongs to a HOST, named by its Host Identifier (Base 2.0
 *    5.27.1.25); every controller whose host identifier is the same is the
 *    same host and shares the registration and, if held, the reservation.
 *  - For Write Exclusive / Exclusive Access and the two "Registrants Only"
 *    types exactly one registrant (host) holds the reservation. For the two
 *    "All Registrants" types every registrant is a holder (Base 2.0 8.19.?
 *    "all registrants are reservation holders"), so the reservation lasts
 *    until the last registrant goes away or it is released/cleared.
 *  - Controllers are learned from the calls they make (and from
 *    emu_resv_ctrl_add()), only to list them in Reservation Report, which
 *    reports registered controllers (NVM-CS 1.0 Figure 59).
 *
 * One mutex guards everything: reservation commands are rare, and the I/O
 * path check (emu_resv_check) is a few comparisons under an uncontended lock.
 */
#include "emu/reservation.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/log.h"

#define EMU_RESV_MAX_HOSTS	64 /* registrants per namespace */
#define EMU_RESV_MAX_CTRLS	64 /* controllers remembered for the report */
#define EMU_RESV_CNTLID_UNKNOWN 0xffffu

#define SF_OK		 NVME_SF_SUCCESS
#define SF_CONFLICT	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT)
#define SF_INVALID_FIELD NVME_SF(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD)
#define SF_HOSTID_FORMAT NVME_SF(NVME_SCT_GENERIC, NVME_SC_HOSTID_INCONSISTENT)
#define SF_CMD_SEQ	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_CMD_SEQ_ERROR)
#define SF_INTERNAL	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL)
#define SF_DATA_XFER	 NVME_SF(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR)

struct emu_resv_hostid {
	uint8_t id[16];
	bool ext;
};

struct emu_resv_reg {
	bool used;
	struct emu_resv_hostid host;
	uint64_t key;
};

struct emu_resv_ctrl {
	bool used;
	uint16_t cntlid;
	struct emu_resv_hostid host;
};

struct emu_resv {
	pthread_mutex_t lock;
	uint32_t gen;
	uint8_t rtype; /* 0: no reservation */
	int holder;    /* index into reg[] for single-holder types, else -1 */
	struct emu_resv_reg reg[EMU_RESV_MAX_HOSTS];
	struct emu_resv_ctrl ctrl[EMU_RESV_MAX_CTRLS];
};

/* ---------------------------------------------------------------------- */
/* Helpers (caller holds r->lock)                                         */
/* ---------------------------------------------------------------------- */

static struct emu_resv_hostid emu_resv_hid(const struct emu_resv_host *h)
{
	struct emu_resv_hostid id;

	memcpy(id.id, h->hostid, 16);
	/* 64-bit identifiers use only the first 8 bytes (reservation.h) */
	if (!h->hostid_ext)
		memset(id.id + 8, 0, 8);
	id.ext = h->hostid_ext;
	return id;
}

static bool emu_resv_hid_eq(const struct emu_resv_hostid *a, const struct emu_resv_hostid *b)
{
	return a->ext == b->ext && memcmp(a->id, b->id, 16) == 0;
}

static bool emu_resv_hid_zero(const struct emu_resv_hostid *a)
{
	static const uint8_t zero[16];

	return memcmp(a->id, zero, 16) == 0;
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

static int emu_resv_find(const struct emu_resv *r, const struct emu_resv_hostid *id)
{
	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++)
		if (r->reg[i].used && emu_resv_hid_eq(&r->reg[i].host, id))
			return i;
	return -1;
}

static unsigned emu_resv_nr_regs(const struct emu_resv *r)
{
	unsigned n = 0;

	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++)
		n += r->reg[i].used;
	return n;
}

/* Is registrant @i a holder of the current reservation? */
static bool emu_resv_is_holder(const struct emu_resv *r, int i)
{
	if (i < 0 || !r->rtype)
		return false;
	if (emu_resv_all_reg_type(r->rtype))
		return true; /* every registrant holds an all-registrants reservation */
	return r->holder == i;
}

/* Remember which controller belongs to which host, for the report. */
static void emu_resv_learn_ctrl(struct emu_resv *r, const struct emu_resv_host *h)
{
	struct emu_resv_hostid id = emu_resv_hid(h);
	int free_slot = -1;

	for (int i = 0; i < EMU_RESV_MAX_CTRLS; i++) {
		if (r->ctrl[i].used && r->ctrl[i].cntlid == h->cntlid) {
			r->ctrl[i].host = id; /* the host identifier may have been changed */
			return;
		}
		if (!r->ctrl[i].used && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0) {
		r->ctrl[free_slot].used = true;
		r->ctrl[free_slot].cntlid = h->cntlid;
		r->ctrl[free_slot].host = id;
	}
	/* With more controllers than slots, the report shows the host with
	 * CNTLID FFFFh instead: less precise, never wrong. */
}

/*
 * Remove registrant @i. Unregistering the holder of a single-holder
 * reservation releases it; an all-registrants reservation persists while
 * any registrant remains (Base 2.0 8.19.? "Unregistering").
 */
static void emu_resv_unregister_one(struct emu_resv *r, int i)
{
	r->reg[i].used = false;
	if (!r->rtype)
		return;
	if (emu_resv_all_reg_type(r->rtype)) {
		if (emu_resv_nr_regs(r) == 0) {
			r->rtype = 0;
			r->holder = -1;
		}
	} else if (r->holder == i) {
		r->rtype = 0;
		r->holder = -1;
	}
}

static int emu_resv_add(struct emu_resv *r, const struct emu_resv_hostid *id, uint64_t key)
{
	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++) {
		if (!r->reg[i].used) {
			r->reg[i].used = true;
			r->reg[i].host = *id;
			r->reg[i].key = key;
			return i;
		}
	}
	return -1;
}

/* Does any registrant use the other host identifier format than @id? */
static bool emu_resv_format_mixed(const struct emu_resv *r, const struct emu_resv_hostid *id)
{
	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++)
		if (r->reg[i].used && r->reg[i].host.ext != id->ext)
			return true;
	return false;
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
	free(r);
}

/**
 * emu_resv_register - Reservation Register (NVM-CS 1.0 3.2.5).
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
	struct emu_resv_hostid id = emu_resv_hid(h);
	bool iekey = cdw10 & NVME_RESV_IEKEY;
	uint32_t cptpl = NVME_RESV_REG_CPTPL(cdw10);
	uint32_t action = NVME_RESV_REG_RREGA(cdw10);
	uint16_t sf = SF_OK;
	int i;

	if (!d)
		return SF_DATA_XFER;
	/* CPTPL: 00b no change, 10b "clear PTPL" (what we already do), 11b
	 * "persist through power loss" - not supported (RESCAP bit 0 is
	 * clear), 01b reserved: Invalid Field in Command. */
	if (cptpl == 1 || cptpl == 3)
		return SF_INVALID_FIELD;
	if (action > NVME_RESV_REG_REPLACE)
		return SF_INVALID_FIELD;

	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	if (emu_resv_hid_zero(&id)) {
		/* A host that never set its Host Identifier cannot be told apart
		 * from other such hosts; it may not register (see report). */
		sf = SF_CMD_SEQ;
		goto out;
	}
	i = emu_resv_find(r, &id);
	switch (action) {
	case NVME_RESV_REG_REGISTER:
		if (i >= 0) {
			/* Already registered: success only with the same key. */
			if (r->reg[i].key != d->nrkey)
				sf = SF_CONFLICT;
			break;
		}
		if (emu_resv_format_mixed(r, &id)) {
			sf = SF_HOSTID_FORMAT;
			break;
		}
		if (emu_resv_add(r, &id, d->nrkey) < 0)
			sf = SF_INTERNAL;
		break;
	case NVME_RESV_REG_UNREGISTER:
		if (i < 0 || (!iekey && r->reg[i].key != d->crkey)) {
			sf = SF_CONFLICT;
			break;
		}
		emu_resv_unregister_one(r, i);
		break;
	case NVME_RESV_REG_REPLACE:
		if (i >= 0) {
			if (!iekey && r->reg[i].key != d->crkey)
				sf = SF_CONFLICT;
			else
				r->reg[i].key = d->nrkey; /* the reservation is unaffected */
			break;
		}
		/* Not a registrant: IEKEY replaces "without regard to its
		 * registration status", i.e. registers the host. */
		if (!iekey) {
			sf = SF_CONFLICT;
			break;
		}
		if (emu_resv_format_mixed(r, &id)) {
			sf = SF_HOSTID_FORMAT;
			break;
		}
		if (emu_resv_add(r, &id, d->nrkey) < 0)
			sf = SF_INTERNAL;
		break;
	}
	if (sf == SF_OK)
		r->gen++; /* every successful Reservation Register */
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/* Unregister every registrant other than @self whose key is @key; return
 * how many were removed. */
static unsigned emu_resv_preempt_key(struct emu_resv *r, int self, uint64_t key)
{
	unsigned n = 0;

	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++) {
		if (i != self && r->reg[i].used && r->reg[i].key == key) {
			emu_resv_unregister_one(r, i);
			n++;
		}
	}
	return n;
}

/**
 * emu_resv_acquire - Reservation Acquire (NVM-CS 1.0 3.2.4).
 * @r:       reservation state
 * @h:       issuing host
 * @cdw10:   RACQA (2:0), IEKEY (3), RTYPE (15:8)
 * @d:       CRKEY / PRKEY
 * @aborted: set when a Preempt and Abort preempted someone
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_acquire(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			  const struct nvme_resv_acquire_data *d, bool *aborted)
{
	struct emu_resv_hostid id = emu_resv_hid(h);
	uint32_t action = NVME_RESV_ACTION(cdw10);
	uint8_t rtype = (uint8_t)NVME_RESV_RTYPE(cdw10);
	uint16_t sf = SF_OK;
	int i;

	if (aborted)
		*aborted = false;
	if (!d)
		return SF_DATA_XFER;
	/* IEKEY in Acquire is not to be set since revision 1.3 (RESCAP.IEKEY
	 * reports the 1.3 behaviour): Invalid Field in Command. */
	if (cdw10 & NVME_RESV_IEKEY)
		return SF_INVALID_FIELD;
	if (action > NVME_RESV_ACQ_PREEMPT_ABORT || !emu_resv_type_valid(rtype))
		return SF_INVALID_FIELD;

	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	i = emu_resv_find(r, &id);
	if (i < 0 || r->reg[i].key != d->crkey) {
		/* not a registrant, or CRKEY does not match its key */
		sf = SF_CONFLICT;
		goto out;
	}

	if (action == NVME_RESV_ACQ_ACQUIRE) {
		if (!r->rtype) {
			r->rtype = rtype;
			r->holder = emu_resv_all_reg_type(rtype) ? -1 : i;
		} else if (!emu_resv_is_holder(r, i) || r->rtype != rtype) {
			/* held by another host, or by us with another type */
			sf = SF_CONFLICT;
		}
		/* holder acquiring again with the same type: success, no change */
		goto out; /* acquire does not change the generation */
	}

	/* Preempt / Preempt and Abort */
	uint64_t prkey = d->prkey;
	unsigned preempted = 0;

	if (!r->rtype) {
		/* No reservation: unregister the hosts with PRKEY. */
		preempted = emu_resv_preempt_key(r, i, prkey);
		if (!preempted && r->reg[i].key != prkey)
			sf = SF_CONFLICT;
	} else if (emu_resv_all_reg_type(r->rtype)) {
		if (prkey == 0) {
			/* PRKEY 0 on an all-registrants reservation: every other
			 * registrant is unregistered and the issuer gets a new
			 * reservation of RTYPE. */
			for (int j = 0; j < EMU_RESV_MAX_HOSTS; j++) {
				if (j != i && r->reg[j].used) {
					r->reg[j].used = false;
					preempted++;
				}
			}
			r->rtype = rtype;
			r->holder = emu_resv_all_reg_type(rtype) ? -1 : i;
		} else {
			/* Only the registrations with PRKEY go; the
			 * reservation stays (the issuer is still a registrant). */
			preempted = emu_resv_preempt_key(r, i, prkey);
			if (!preempted && r->reg[i].key != prkey)
				sf = SF_CONFLICT;
		}
	} else if (prkey == r->reg[r->holder].key) {
		/* PRKEY names the holder: the reservation moves to the issuer
		 * (with RTYPE) and every other host with that key is
		 * unregistered. */
		preempted = emu_resv_preempt_key(r, i, prkey);
		r->rtype = rtype;
		r->holder = emu_resv_all_reg_type(rtype) ? -1 : i;
	} else if (prkey == 0) {
		/* PRKEY 0 that does not name the holder: Invalid Field. */
		sf = SF_INVALID_FIELD;
	} else {
		/* Other registrants with PRKEY are unregistered; reservation
		 * unchanged. None with that key: Reservation Conflict. */
		preempted = emu_resv_preempt_key(r, i, prkey);
		if (!preempted && r->reg[i].key != prkey)
			sf = SF_CONFLICT;
	}
	if (sf == SF_OK) {
		r->gen++; /* preempt that completes successfully */
		if (action == NVME_RESV_ACQ_PREEMPT_ABORT && preempted && aborted)
			*aborted = true;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/**
 * emu_resv_release - Reservation Release (NVM-CS 1.0 3.2.7).
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
	struct emu_resv_hostid id = emu_resv_hid(h);
	uint32_t action = NVME_RESV_ACTION(cdw10);
	uint8_t rtype = (uint8_t)NVME_RESV_RTYPE(cdw10);
	uint16_t sf = SF_OK;
	int i;

	if (cdw10 & NVME_RESV_IEKEY)
		return SF_INVALID_FIELD; /* as for Acquire */
	if (action > NVME_RESV_REL_CLEAR)
		return SF_INVALID_FIELD;

	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	i = emu_resv_find(r, &id);
	if (i < 0 || r->reg[i].key != crkey) {
		sf = SF_CONFLICT;
		goto out;
	}
	if (action == NVME_RESV_REL_CLEAR) {
		for (int j = 0; j < EMU_RESV_MAX_HOSTS; j++)
			r->reg[j].used = false;
		r->rtype = 0;
		r->holder = -1;
		r->gen++;
		goto out;
	}
	/* Release by a registrant that does not hold the reservation (or
	 * with no reservation at all): success, nothing happens. */
	if (!emu_resv_is_holder(r, i))
		goto out;
	if (rtype != r->rtype) {
		sf = SF_INVALID_FIELD;
		goto out;
	}
	/* For all-registrants types, a release by any holder ends it. */
	r->rtype = 0;
	r->holder = -1;
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/**
 * emu_resv_report - Reservation Report (NVM-CS 1.0 3.2.6).
 * @r:   reservation state
 * @h:   issuing host
 * @eds: extended data structure (64-byte entries, 128-bit host ids)
 * @buf: destination, @len bytes; the data is truncated to @len, the rest of
 *       @buf is zero filled
 *
 * Return: NVMe status field.
 */
uint16_t emu_resv_report(struct emu_resv *r, const struct emu_resv_host *h, bool eds, void *buf,
			 size_t len)
{
	uint8_t tmp[64 + 64 * EMU_RESV_MAX_CTRLS + 64 * EMU_RESV_MAX_HOSTS];
	size_t hdr = eds ? sizeof(struct nvme_resv_status_ext) : sizeof(struct nvme_resv_status);
	size_t ent = eds ? sizeof(struct nvme_resv_ctrl_ext) : sizeof(struct nvme_resv_ctrl);
	struct nvme_resv_status *st = (struct nvme_resv_status *)tmp;
	size_t off = hdr;
	uint16_t nr = 0;

	if (buf)
		memset(buf, 0, len);
	/* A host using a 128-bit identifier cannot be shown in 8-byte fields. */
	if (!eds && h->hostid_ext)
		return SF_HOSTID_FORMAT;

	memset(tmp, 0, sizeof(tmp));
	pthread_mutex_lock(&r->lock);
	emu_resv_learn_ctrl(r, h);
	for (int i = 0; i < EMU_RESV_MAX_HOSTS; i++) {
		bool listed = false;

		if (!r->reg[i].used)
			continue;
		/* one entry per controller of a registered host ... */
		for (int c = 0; c <= EMU_RESV_MAX_CTRLS; c++) {
			uint16_t cntlid;

			if (c < EMU_RESV_MAX_CTRLS) {
				if (!r->ctrl[c].used ||
				    !emu_resv_hid_eq(&r->ctrl[c].host, &r->reg[i].host))
					continue;
				cntlid = r->ctrl[c].cntlid;
			} else {
				/* ... or one with an unknown CNTLID if none is known */
				if (listed)
					break;
				cntlid = EMU_RESV_CNTLID_UNKNOWN;
			}
			listed = true;
			if (eds) {
				struct nvme_resv_ctrl_ext *e = (void *)(tmp + off);

				e->cntlid = cntlid;
				e->rcsts = emu_resv_is_holder(r, i) ? NVME_RESV_RCSTS_HOLDER : 0;
				e->rkey = r->reg[i].key;
				memcpy(e->hostid, r->reg[i].host.id, 16);
			} else {
				struct nvme_resv_ctrl *e = (void *)(tmp + off);

				/* A 128-bit registrant has no 64-bit form. */
				if (r->reg[i].host.ext) {
					pthread_mutex_unlock(&r->lock);
					return SF_HOSTID_FORMAT;
				}
				e->cntlid = cntlid;
				e->rcsts = emu_resv_is_holder(r, i) ? NVME_RESV_RCSTS_HOLDER : 0;
				e->rkey = r->reg[i].key;
				memcpy(&e->hostid, r->reg[i].host.id, 8);
			}
			off += ent;
			nr++;
		}
	}
	st->gen = r->gen;
	st->rtype = r->rtype;
	st->regctl[0] = (uint8_t)(nr & 0xff);
	st->regctl[1] = (uint8_t)(nr >> 8);
	st->ptpls = 0; /* reservations do not persist through power loss */
	pthread_mutex_unlock(&r->lock);

	if (buf)
		memcpy(buf, tmp, off < len ? off : len);
	return SF_OK;
}

/**
 * emu_resv_check - may host @h run NVM command @opcode now?
 *
 * Return: 0 or Reservation Conflict, per the command behaviour table
 * (NVM-CS 1.0 Figure 6 / Base 2.0 8.19).
 */
uint16_t emu_resv_check(struct emu_resv *r, const struct emu_resv_host *h, uint8_t opcode)
{
	struct emu_resv_hostid id = emu_resv_hid(h);
	bool is_read, is_write;
	uint16_t sf = SF_OK;
	int i;

	switch (opcode) {
	case NVME_CMD_READ:
	case NVME_CMD_COMPARE:
	case NVME_CMD_VERIFY:
		is_read = true;
		is_write = false;
		break;
	case NVME_CMD_WRITE:
	case NVME_CMD_WRITE_UNCOR:
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
	case NVME_CMD_FLUSH:
	case NVME_CMD_COPY:
		is_read = false;
		is_write = true;
		break;
	default:
		return SF_OK; /* reservation commands and others: not restricted */
	}

	pthread_mutex_lock(&r->lock);
	if (!r->rtype)
		goto out;
	i = emu_resv_find(r, &id);
	if (emu_resv_is_holder(r, i))
		goto out; /* the holder may do anything */
	switch (r->rtype) {
	case NVME_RESV_WRITE_EXCLUSIVE:
		/* writes only by the holder */
		if (is_write)
			sf = SF_CONFLICT;
		break;
	case NVME_RESV_EXCLUSIVE_ACCESS:
		/* everything only by the holder */
		sf = SF_CONFLICT;
		break;
	case NVME_RESV_WRITE_EXCLUSIVE_REG_ONLY:
	case NVME_RESV_WRITE_EXCLUSIVE_ALL_REG:
		/* writes only by registrants */
		if (is_write && i < 0)
			sf = SF_CONFLICT;
		break;
	case NVME_RESV_EXCLUSIVE_ACCESS_REG_ONLY:
	case NVME_RESV_EXCLUSIVE_ACCESS_ALL_REG:
		/* everything only by registrants */
		if (i < 0)
			sf = SF_CONFLICT;
		break;
	}
	(void)is_read;
out:
	pthread_mutex_unlock(&r->lock);
	return sf;
}

/** emu_resv_generation - the current generation counter. */
uint32_t emu_resv_generation(struct emu_resv *r)
{
	uint32_t gen;

	pthread_mutex_lock(&r->lock);
	gen = r->gen;
	pthread_mutex_unlock(&r->lock);
	return gen;
}
