// SPDX-License-Identifier: MIT
/*
 * Client memory for the emulator ("Client memory access", DMA_MAP/UNMAP,
 * DMA_READ/WRITE).
 *
 * A map with an fd is mmap'd here and translated to a pointer into it. A map
 * without one is reached by messages: the translation hands the emulator a
 * bounce buffer (filled with DMA_READ when the controller reads) and
 * srv_dma_done() writes it back with DMA_WRITE and frees it. The emulator
 * calls srv_dma_done() once per translation (nvmk_emu_dma_done_fn), before it
 * signals anything that depends on the access.
 *
 * Every access must lie inside one map, in a direction the map allows;
 * anything else is NULL (the emulator fails the command, or the controller
 * for queue memory): the server never touches memory outside a mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "server.h"

#define RPC_TIMEOUT_MS 5000

int srv_dma_init(struct srv *s)
{
	pthread_rwlock_init(&s->map_lock, NULL);
	pthread_mutex_init(&s->wait_lock, NULL);
	pthread_cond_init(&s->wait_cv, NULL);
	pthread_mutex_init(&s->rpc_lock, NULL);
	pthread_mutex_init(&s->rpc_mx, NULL);
	pthread_cond_init(&s->rpc_cv, NULL);
	pthread_mutex_init(&s->bounce_lock, NULL);
	return 0;
}

/* Index of the map containing [iova, iova + len), or -1. Caller holds map_lock. */
static int map_find(struct srv *s, uint64_t iova, size_t len)
{
	unsigned lo = 0, hi = s->nmaps;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct srv_map *m = &s->maps[mid];

		if (iova < m->iova)
			hi = mid;
		else if (iova - m->iova >= m->size)
			lo = mid + 1;
		else
			return (len <= m->size - (iova - m->iova)) ? (int)mid : -1;
	}
	return -1;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- messages to the client (worker thread) ---- */

void srv_rpc_reply(struct srv *s, const struct nvmk_vfu_hdr *h, const uint8_t *payload, size_t len)
{
	pthread_mutex_lock(&s->rpc_mx);
	if (s->rpc_wait && !s->rpc_done && h->msg_id == s->rpc_id) {
		s->rpc_err = (h->flags & NVMK_VFU_F_ERROR) ? (h->error ? (int)h->error : EIO) : 0;
		if (!s->rpc_err && s->rpc_buf && len > s->rpc_len)
			s->rpc_err = EPROTO;
		if (!s->rpc_err && s->rpc_buf)
			memcpy(s->rpc_buf, payload, len < s->rpc_len ? len : s->rpc_len);
		if (!s->rpc_err && s->rpc_buf && len < s->rpc_len)
			s->rpc_err = EPROTO; /* a short DMA_READ reply */
		s->rpc_done = true;
		pthread_cond_broadcast(&s->rpc_cv);
	} else {
		nvmk_warn(s->name, NVMK_LOG_NOQ, "reply id %u (%s) matches no request: ignored",
			  h->msg_id, nvmk_vfu_cmd_name(h->cmd));
	}
	pthread_mutex_unlock(&s->rpc_mx);
}

/* The client went away or the device is being reset: fail a pending request. */
void srv_rpc_fail(struct srv *s)
{
	pthread_mutex_lock(&s->rpc_mx);
	if (s->rpc_wait && !s->rpc_done) {
		s->rpc_err = ECONNRESET;
		s->rpc_done = true;
		pthread_cond_broadcast(&s->rpc_cv);
	}
	pthread_mutex_unlock(&s->rpc_mx);
}

/*
 * One DMA_READ (@out != NULL) or DMA_WRITE (@in) of at most max_data_xfer_size
 * bytes. The reply comes through the main thread. Return 0 or -errno.
 */
static int rpc_one(struct srv *s, uint64_t iova, void *out, const void *in, size_t len)
{
	struct nvmk_vfu_hdr h = {0};
	struct nvmk_vfu_dma_rw rw = {.addr = iova, .count = len};
	uint8_t *msg = NULL;
	struct timespec ts;
	int fd, rc;

	fd = atomic_load(&s->client_fd);
	if (fd < 0)
		return -ENOTCONN;
	/* DMA_READ replies repeat the 16-byte head before the data: the reply
	 * lands in a scratch buffer of head + data, then the data is copied. */
	if (out) {
		msg = malloc(sizeof(rw) + len);
		if (!msg)
			return -ENOMEM;
	}
	pthread_mutex_lock(&s->rpc_mx);
	h.msg_id = s->rpc_id = (uint16_t)(s->next_id++ | 0x8000u);
	s->rpc_wait = true;
	s->rpc_done = false;
	s->rpc_err = 0;
	s->rpc_buf = msg;
	s->rpc_len = out ? sizeof(rw) + len : 0;
	pthread_mutex_unlock(&s->rpc_mx);
	h.cmd = out ? NVMK_VFU_DMA_READ : NVMK_VFU_DMA_WRITE;
	h.flags = NVMK_VFU_F_TYPE_CMD;
	pthread_mutex_lock(&s->send_lock);
	if (out) {
		rc = nvmk_vfu_send(fd, &h, &rw, sizeof(rw), NULL, 0);
	} else {
		uint8_t *buf = malloc(sizeof(rw) + len);

		rc = -ENOMEM;
		if (buf) {
			memcpy(buf, &rw, sizeof(rw));
			memcpy(buf + sizeof(rw), in, len);
			rc = nvmk_vfu_send(fd, &h, buf, sizeof(rw) + len, NULL, 0);
			free(buf);
		}
	}
	pthread_mutex_unlock(&s->send_lock);
	if (rc) {
		pthread_mutex_lock(&s->rpc_mx);
		s->rpc_wait = false;
		s->rpc_buf = NULL;
		pthread_mutex_unlock(&s->rpc_mx);
		goto out;
	}

	deadline_after(&ts, RPC_TIMEOUT_MS);
	pthread_mutex_lock(&s->rpc_mx);
	while (!s->rpc_done && !atomic_load(&s->stopping))
		if (pthread_cond_timedwait(&s->rpc_cv, &s->rpc_mx, &ts) == ETIMEDOUT)
			break;
	rc = s->rpc_done ? -s->rpc_err : -ETIMEDOUT;
	s->rpc_wait = false;
	s->rpc_buf = NULL;
	pthread_mutex_unlock(&s->rpc_mx);
	if (!rc && out) {
		struct nvmk_vfu_dma_rw back;

		memcpy(&back, msg, sizeof(back));
		if (back.addr != iova || back.count != len)
			rc = -EPROTO;
		else
			memcpy(out, msg + sizeof(rw), len);
	}
out:
	free(msg);
	if (rc)
		nvmk_warn(s->name, NVMK_LOG_NOQ, "%s of %zu bytes at IOVA 0x%llx failed: %d",
			  out ? "DMA_READ" : "DMA_WRITE", len, (unsigned long long)iova, rc);
	return rc;
}

static int rpc_xfer(struct srv *s, uint64_t iova, void *out, const void *in, size_t len)
{
	size_t max = s->peer.max_data_xfer_size, done = 0;
	int rc = 0;

	pthread_mutex_lock(&s->rpc_lock);
	while (!rc && done < len) {
		size_t n = len - done < max ? len - done : max;

		rc = rpc_one(s, iova + done, out ? (uint8_t *)out + done : NULL,
			     in ? (const uint8_t *)in + done : NULL, n);
		done += n;
	}
	pthread_mutex_unlock(&s->rpc_lock);
	return rc;
}

/* ---- translation (emulator worker) ---- */

static void *bounce_get(struct srv *s, uint64_t iova, size_t len)
{
	void *buf = calloc(1, len);

	if (!buf)
		return NULL;
	pthread_mutex_lock(&s->bounce_lock);
	for (unsigned i = 0; i < SRV_BOUNCE_SLOTS; i++) {
		if (!s->bounce[i].buf) {
			s->bounce[i] = (struct srv_bounce){buf, iova, len};
			atomic_fetch_add_explicit(&s->nbounce, 1, memory_order_relaxed);
			pthread_mutex_unlock(&s->bounce_lock);
			return buf;
		}
	}
	pthread_mutex_unlock(&s->bounce_lock);
	free(buf);
	nvmk_err(s->name, NVMK_LOG_NOQ, "more than %d bounce buffers in use", SRV_BOUNCE_SLOTS);
	return NULL;
}

/* Take @buf out of the bounce table; false if it is not a bounce buffer. */
static bool bounce_take(struct srv *s, void *buf)
{
	bool found = false;

	/* Relaxed is enough: a bounce buffer is given back by the thread that
	 * got it, which sees its own count; with none in use (every fd-mapped
	 * access) the lock below is not taken at all. */
	if (atomic_load_explicit(&s->nbounce, memory_order_relaxed) == 0)
		return false;
	pthread_mutex_lock(&s->bounce_lock);
	for (unsigned i = 0; i < SRV_BOUNCE_SLOTS; i++) {
		if (s->bounce[i].buf == buf) {
			s->bounce[i].buf = NULL;
			atomic_fetch_sub_explicit(&s->nbounce, 1, memory_order_relaxed);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&s->bounce_lock);
	return found;
}

/* Wait while the resume window is open and the map generation is @gen.
 * Return true to retry the lookup. */
static bool resume_wait(struct srv *s, uint64_t gen)
{
	bool retry = false;

	pthread_mutex_lock(&s->wait_lock);
	while (s->resuming && s->map_gen == gen && !atomic_load(&s->stopping))
		pthread_cond_wait(&s->wait_cv, &s->wait_lock);
	retry = s->map_gen != gen && !atomic_load(&s->stopping);
	pthread_mutex_unlock(&s->wait_lock);
	return retry;
}

void srv_resume_window(struct srv *s, bool open)
{
	pthread_mutex_lock(&s->wait_lock);
	if (s->resuming != open)
		nvmk_info(s->name, NVMK_LOG_NOQ, "%s",
			  open ? "quiesced: waiting for a client to map memory" : "resumed");
	s->resuming = open;
	if (!open)
		s->ngone = 0;
	pthread_cond_broadcast(&s->wait_cv);
	pthread_mutex_unlock(&s->wait_lock);
	if (!open) {
		/* the previous client's memory not taken back is no one's now */
		srv_dma_drop_kept(s);
		srv_resume_release(s);
	}
}

void srv_dma_remember_gone(struct srv *s)
{
	pthread_rwlock_rdlock(&s->map_lock);
	memcpy(s->gone, s->maps, s->nmaps * sizeof(s->maps[0]));
	s->ngone = s->nmaps;
	for (unsigned i = 0; i < s->ngone; i++)
		s->gone[i].host = NULL; /* unmapped next: only the identity is kept */
	pthread_rwlock_unlock(&s->map_lock);
}

/*
 * In the resume window, may @nm (not inserted yet) be mapped without ending
 * the previous client's life on the device? A map that overlaps none of the
 * previous client's maps changes nothing for the device. One that overlaps
 * must be exactly one of them -- same IOVA and size, same file (st_dev,
 * st_ino) at the same offset -- that is, the memory the queues and the held
 * commands point into, taken back (a restoring driver maps its pool memfd
 * again). Anything else at those addresses is other memory: letting a held
 * command or a queue go on there would hand the new client's buffers to the
 * old client's commands. Then the only correct way on is a reset, done
 * before the map becomes visible to the device. Main thread.
 */
static bool resume_map_ok(struct srv *s, const struct srv_map *nm, char *why, size_t whylen)
{
	for (unsigned i = 0; i < s->ngone; i++) {
		const struct srv_map *g = &s->gone[i];

		if (g->iova >= nm->iova + nm->size || nm->iova >= g->iova + g->size)
			continue;
		if (g->iova != nm->iova || g->size != nm->size)
			snprintf(why, whylen, "it overlaps the previous client's map 0x%llx+0x%llx",
				 (unsigned long long)g->iova, (unsigned long long)g->size);
		else if (!g->has_file || !nm->has_file)
			snprintf(why, whylen,
				 "memory shared without an fd cannot be shown to be the same");
		else if (g->dev != nm->dev || g->ino != nm->ino || g->offset != nm->offset)
			snprintf(why, whylen,
				 "it is another file or offset than the previous client's map");
		else
			continue;
		return false;
	}
	return true;
}

/*
 * The last fd map a thread translated into, per thread (the emulator's worker
 * does nearly all translations, and an I/O touches the same few maps: queues,
 * shadow doorbells, data). A copy, not an index: maps inserted meanwhile
 * shift the table but do not invalidate it; only a release of memory does,
 * and every release waits in wait_inflight, which moves map_epoch first.
 */
struct srv_tcache {
	const struct srv *s;
	uint64_t epoch, iova, size;
	uint8_t *host;
	uint32_t flags;
};
static _Thread_local struct srv_tcache tc;

/*
 * The translation without the map lock. Dekker-style with wait_inflight:
 * this thread counts itself in (seq_cst) and then reads map_epoch (seq_cst);
 * a releaser moves map_epoch (seq_cst) and then waits for inflight == 0. If
 * the epoch read here is the cached one, the count came first in the single
 * order of seq_cst operations, so the releaser sees it and waits for
 * srv_dma_done before it unmaps.
 */
static void *tc_hit(struct srv *s, uint64_t iova, size_t len, uint32_t need)
{
	if (tc.s != s || !tc.host || !(tc.flags & need) || iova < tc.iova ||
	    len > tc.size || iova - tc.iova > tc.size - len)
		return NULL;
	atomic_fetch_add(&s->inflight, 1);
	if (atomic_load(&s->map_epoch) == tc.epoch)
		return tc.host + (iova - tc.iova);
	atomic_fetch_sub(&s->inflight, 1);
	tc.host = NULL;
	return NULL;
}

void *srv_dma_translate(void *ctx, uint64_t iova, size_t len, bool write)
{
	struct srv *s = ctx;
	uint32_t need = write ? NVMK_VFU_DMA_WRITE_OK : NVMK_VFU_DMA_READ_OK;
	uint64_t gen, epoch;
	void *p;
	int i;

	if (len == 0 || iova + len < iova)
		return NULL;
	p = tc_hit(s, iova, len, need);
	if (p)
		return p;
	for (;;) {
		/* Acquire: a map inserted before the generation moved is seen by
		 * the lookup below. */
		gen = atomic_load_explicit(&s->map_gen, memory_order_acquire);
		pthread_rwlock_rdlock(&s->map_lock);
		/* read before the lookup: a release after it moves the epoch */
		epoch = atomic_load(&s->map_epoch);
		i = map_find(s, iova, len);
		if (i >= 0)
			break;
		pthread_rwlock_unlock(&s->map_lock);
		if (!resume_wait(s, gen))
			return NULL;
	}
	if (!(s->maps[i].flags & need)) {
		pthread_rwlock_unlock(&s->map_lock);
		nvmk_warn(s->name, NVMK_LOG_NOQ, "%s of IOVA 0x%llx refused: map is not %s",
			  write ? "write" : "read", (unsigned long long)iova,
			  write ? "writeable" : "readable");
		return NULL;
	}
	if (s->maps[i].host) {
		p = s->maps[i].host + (iova - s->maps[i].iova);
		/* counted before the lock drops: an unmap waits for it */
		atomic_fetch_add(&s->inflight, 1);
		tc = (struct srv_tcache){.s = s,
					 .epoch = epoch,
					 .iova = s->maps[i].iova,
					 .size = s->maps[i].size,
					 .host = s->maps[i].host,
					 .flags = s->maps[i].flags};
		pthread_rwlock_unlock(&s->map_lock);
		return p;
	}
	pthread_rwlock_unlock(&s->map_lock);
	p = bounce_get(s, iova, len);
	if (p && !write && rpc_xfer(s, iova, p, NULL, len)) {
		bounce_take(s, p);
		free(p);
		return NULL;
	}
	return p;
}

void srv_dma_done(void *ctx, void *host, uint64_t iova, size_t len, bool write)
{
	struct srv *s = ctx;

	if (!bounce_take(s, host)) {
		atomic_fetch_sub(&s->inflight, 1);
		return;
	}
	if (write)
		rpc_xfer(s, iova, NULL, host, len); /* failure logged; the data is lost */
	free(host);
}

/* ---- DMA_MAP / DMA_UNMAP (main thread) ---- */

static void wait_inflight(struct srv *s);
static void map_release(struct srv *s, struct srv_map *m);

/* Remove the maps for which @drop(map, @arg) is true from the table (main
 * thread), wait for the worker to let go of them, release them. */
static void maps_drop_if(struct srv *s, bool (*drop)(const struct srv_map *, const void *),
			 const void *arg)
{
	struct srv_map out[16];
	unsigned n, k;

	do {
		n = 0;
		pthread_rwlock_wrlock(&s->map_lock);
		for (k = 0; k < s->nmaps;) {
			if (drop(&s->maps[k], arg) && n < 16) {
				out[n++] = s->maps[k];
				memmove(&s->maps[k], &s->maps[k + 1],
					(s->nmaps - k - 1) * sizeof(s->maps[0]));
				s->nmaps--;
			} else {
				k++;
			}
		}
		pthread_rwlock_unlock(&s->map_lock);
		wait_inflight(s);
		for (k = 0; k < n; k++)
			map_release(s, &out[k]);
	} while (n == 16);
}

static bool is_kept(const struct srv_map *m, const void *arg)
{
	(void)arg;
	return m->kept;
}

static bool is_kept_same(const struct srv_map *m, const void *arg)
{
	const struct nvmk_vfu_dma_map *d = arg;

	return m->kept && m->iova < d->addr + d->size && d->addr < m->iova + m->size;
}

void srv_dma_keep_all(struct srv *s)
{
	pthread_rwlock_wrlock(&s->map_lock);
	for (unsigned i = 0; i < s->nmaps; i++)
		s->maps[i].kept = true;
	pthread_rwlock_unlock(&s->map_lock);
}

void srv_dma_drop_kept(struct srv *s)
{
	maps_drop_if(s, is_kept, NULL);
}

void srv_dma_adopt_kept(struct srv *s)
{
	pthread_rwlock_wrlock(&s->map_lock);
	for (unsigned i = 0; i < s->nmaps; i++)
		s->maps[i].kept = false;
	pthread_rwlock_unlock(&s->map_lock);
}

/* A new client maps memory where the previous one had some: the kept maps
 * there give way. The same memory again (a restoring driver re-mapping its
 * pool) goes on where the kept map was; other memory meets resume_map_ok
 * below (a reset before the map becomes visible). */
static void srv_dma_take_back(struct srv *s, const struct nvmk_vfu_dma_map *m)
{
	maps_drop_if(s, is_kept_same, m);
}

int srv_dma_map(struct srv *s, const struct nvmk_vfu_dma_map *m, int fd)
{
	struct srv_map nm = {.iova = m->addr, .size = m->size, .flags = m->flags, .fd = -1};
	unsigned pos;
	int prot = 0;

	/* a new client maps memory: the controller goes on (resume.c) */
	srv_resume_release(s);
	if (s->ngone)
		srv_dma_take_back(s, m);
	if (s->nmaps >= SRV_MAX_DMA_MAPS) {
		nvmk_warn(s->name, NVMK_LOG_NOQ, "DMA_MAP refused: already %u maps (max_dma_maps)",
			  s->nmaps);
		return -ENOSPC;
	}
	pthread_rwlock_rdlock(&s->map_lock);
	for (pos = 0; pos < s->nmaps && s->maps[pos].iova < m->addr; pos++)
		;
	/* "A command to map over an existing region must be failed ... EEXIST" */
	if ((pos < s->nmaps && s->maps[pos].iova < m->addr + m->size) ||
	    (pos > 0 && s->maps[pos - 1].iova + s->maps[pos - 1].size > m->addr)) {
		pthread_rwlock_unlock(&s->map_lock);
		nvmk_warn(s->name, NVMK_LOG_NOQ, "DMA_MAP 0x%llx+0x%llx overlaps a map",
			  (unsigned long long)m->addr, (unsigned long long)m->size);
		return -EEXIST;
	}
	pthread_rwlock_unlock(&s->map_lock);
	if (fd >= 0) {
		struct stat st;

		/* A map past the end of a file would SIGBUS on first touch. (A client
		 * that shrinks the file later still can: see docs/vfio-user.md.) */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (m->offset > (uint64_t)st.st_size ||
		     m->size > (uint64_t)st.st_size - m->offset)) {
			nvmk_warn(
			    s->name, NVMK_LOG_NOQ,
			    "DMA_MAP 0x%llx+0x%llx: fd holds %lld bytes, map needs offset 0x%llx "
			    "+ size",
			    (unsigned long long)m->addr, (unsigned long long)m->size,
			    (long long)st.st_size, (unsigned long long)m->offset);
			return -EINVAL;
		}
		if (fstat(fd, &st) == 0) {
			nm.has_file = true;
			nm.dev = st.st_dev;
			nm.ino = st.st_ino;
			nm.offset = m->offset;
		}
		if (m->flags & NVMK_VFU_DMA_READ_OK)
			prot |= PROT_READ;
		if (m->flags & NVMK_VFU_DMA_WRITE_OK)
			prot |= PROT_WRITE;
		if (m->size > SIZE_MAX)
			return -EINVAL;
		nm.host =
		    mmap(NULL, m->size, prot ? prot : PROT_NONE, MAP_SHARED, fd, (off_t)m->offset);
		if (nm.host == MAP_FAILED) {
			int rc = -errno;

			nvmk_warn(s->name, NVMK_LOG_NOQ,
				  "DMA_MAP 0x%llx+0x%llx: mmap of the fd at 0x%llx failed: %d",
				  (unsigned long long)m->addr, (unsigned long long)m->size,
				  (unsigned long long)m->offset, rc);
			return rc;
		}
		if (s->persist && s->keep_memory)
			nm.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	}
	if (s->ngone) {
		char why[160];

		if (!resume_map_ok(s, &nm, why, sizeof(why))) {
			nvmk_warn(s->name, NVMK_LOG_NOQ,
				  "DMA_MAP 0x%llx+0x%llx: %s: the controller's queues and held "
				  "commands cannot go on in other memory: resetting it first",
				  (unsigned long long)m->addr, (unsigned long long)m->size, why);
			atomic_fetch_add(&s->stats.resume_refused, 1);
			srv_function_reset(s); /* closes the window: ngone = 0 */
		}
	}
	pthread_rwlock_wrlock(&s->map_lock);
	memmove(&s->maps[pos + 1], &s->maps[pos], (s->nmaps - pos) * sizeof(s->maps[0]));
	s->maps[pos] = nm;
	s->nmaps++;
	pthread_rwlock_unlock(&s->map_lock);
	atomic_fetch_add(&s->mapped_bytes, m->size);
	pthread_mutex_lock(&s->wait_lock);
	atomic_fetch_add_explicit(&s->map_gen, 1, memory_order_release);
	pthread_cond_broadcast(&s->wait_cv);
	pthread_mutex_unlock(&s->wait_lock);
	return 0;
}

/* Wait until no translation of an fd map is in use ("the server must release
 * all references to that DMA region before replying"). */
static void wait_inflight(struct srv *s)
{
	struct timespec ts = {0, 20000};

	/* seq_cst, before the count is read: see tc_hit */
	atomic_fetch_add(&s->map_epoch, 1);
	for (unsigned i = 0; atomic_load(&s->inflight) > 0; i++) {
		if (i == 250000) /* 5 s: a translation is a few copies long */
			nvmk_err(s->name, NVMK_LOG_NOQ, "DMA unmap still waiting for the emulator");
		nanosleep(&ts, NULL);
	}
}

static void map_release(struct srv *s, struct srv_map *m)
{
	if (m->host)
		munmap(m->host, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	atomic_fetch_sub(&s->mapped_bytes, m->size);
}

int srv_dma_unmap(struct srv *s, uint64_t iova, uint64_t size)
{
	struct srv_map m;
	unsigned i;

	pthread_rwlock_wrlock(&s->map_lock);
	for (i = 0; i < s->nmaps; i++)
		if (s->maps[i].iova == iova && s->maps[i].size == size)
			break;
	if (i == s->nmaps) {
		pthread_rwlock_unlock(&s->map_lock);
		nvmk_warn(s->name, NVMK_LOG_NOQ,
			  "DMA_UNMAP 0x%llx+0x%llx matches no map (must match one exactly)",
			  (unsigned long long)iova, (unsigned long long)size);
		return -ENOENT;
	}
	m = s->maps[i];
	memmove(&s->maps[i], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof(s->maps[0]));
	s->nmaps--;
	pthread_rwlock_unlock(&s->map_lock);
	wait_inflight(s);
	map_release(s, &m);
	return 0;
}

void srv_dma_unmap_all(struct srv *s)
{
	unsigned n;

	pthread_rwlock_wrlock(&s->map_lock);
	n = s->nmaps;
	s->nmaps = 0;
	pthread_rwlock_unlock(&s->map_lock);
	wait_inflight(s);
	for (unsigned i = 0; i < n; i++)
		map_release(s, &s->maps[i]);
}
