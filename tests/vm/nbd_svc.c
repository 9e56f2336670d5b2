/* SPDX-License-Identifier: MIT */
/*
 * nbd_svc - an NBD client (libnbd) that keeps writing and verifying while
 * nvmekeepd is serviced (guest_service.sh):
 *
 *   nbd_svc SOCKET OFFSET LENGTH MARKFILE STOPFILE
 *
 * Keeps QD requests in flight on 4 KiB blocks of [OFFSET, OFFSET+LENGTH) of
 * the default export: writes of a pattern naming the block and its
 * generation, and reads of blocks written before, checked against the
 * generation last written (never two requests on one block at a time). Any
 * NBD error, short transfer or wrong data counts as a failure.
 *
 * Latency windows: while MARKFILE exists (the script creates it before
 * `nvmekeep service` and removes it a little after the answer), the longest
 * latency of any request completing is taken; when it disappears the window
 * is printed: "window N: longest request X.X ms, M completed". That is the
 * blackout as this client sees it.
 *
 * When STOPFILE appears: drain, NBD_CMD_FLUSH, read every block back and
 * check it, print "ops ... errors E mismatches M windows W" and exit 0 only
 * when nothing failed. Connecting is retried for up to 60 s.
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS	      4096u
#define QD	      8u
#define CONNECT_TRIES 600 /* x 100 ms */

struct slot {
	bool busy, is_write;
	uint64_t blk;
	uint32_t gen;
	uint64_t t0;
	char buf[BS];
};

static struct {
	uint64_t off, nblk;
	uint32_t *gen; /* generation last written (0 = never) */
	bool *busy;    /* a request is in flight on the block */
	struct slot slots[QD];
	unsigned inflight;
	uint64_t reads, writes, errors, mismatches;
	/* latency window */
	bool in_window;
	unsigned windows;
	uint64_t win_max_ns, win_done;
} C;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill(char *buf, uint64_t blk, uint32_t gen)
{
	for (unsigned i = 0; i < BS / 8; i++) {
		uint64_t v = (blk << 32 | gen) ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);

		memcpy(buf + i * 8, &v, 8);
	}
}

static bool check(const char *buf, uint64_t blk, uint32_t gen)
{
	char want[BS];

	fill(want, blk, gen);
	return memcmp(buf, want, BS) == 0;
}

static int done_cb(void *user_data, int *error)
{
	struct slot *s = user_data;
	uint64_t lat = now_ns() - s->t0;

	if (*error) {
		C.errors++;
		fprintf(stderr, "nbd_svc: %s of block %" PRIu64 ": %s\n",
			s->is_write ? "write" : "read", s->blk, strerror(*error));
	} else if (s->is_write) {
		C.gen[s->blk] = s->gen;
		C.writes++;
	} else {
		C.reads++;
		if (!check(s->buf, s->blk, C.gen[s->blk])) {
			C.mismatches++;
			fprintf(stderr, "nbd_svc: block %" PRIu64 " does not hold generation %u\n",
				s->blk, C.gen[s->blk]);
		}
	}
	if (C.in_window) {
		C.win_done++;
		if (lat > C.win_max_ns)
			C.win_max_ns = lat;
	}
	C.busy[s->blk] = false;
	s->busy = false;
	C.inflight--;
	return 1; /* retire the command */
}

static int issue(struct nbd_handle *h, struct slot *s)
{
	uint64_t blk;
	int64_t r;

	/* a block with nothing in flight (QD is far below the block count) */
	do
		blk = (uint64_t)random() % C.nblk;
	while (C.busy[blk]);
	s->blk = blk;
	s->is_write = C.gen[blk] == 0 || (random() & 1);
	s->busy = C.busy[blk] = true;
	s->t0 = now_ns();
	C.inflight++;
	if (s->is_write) {
		s->gen = C.gen[blk] + 1;
		fill(s->buf, blk, s->gen);
		r = nbd_aio_pwrite(h, s->buf, BS, C.off + blk * BS,
				   (nbd_completion_callback){.callback = done_cb, .user_data = s},
				   0);
	} else {
		r = nbd_aio_pread(h, s->buf, BS, C.off + blk * BS,
				  (nbd_completion_callback){.callback = done_cb, .user_data = s},
				  0);
	}
	if (r < 0) {
		fprintf(stderr, "nbd_svc: submit: %s\n", nbd_get_error());
		s->busy = C.busy[blk] = false;
		C.inflight--;
		C.errors++;
		return -1;
	}
	return 0;
}

static void window(const char *mark)
{
	bool on = access(mark, F_OK) == 0;

	if (on == C.in_window)
		return;
	if (on) {
		C.in_window = true;
		C.win_max_ns = C.win_done = 0;
		return;
	}
	C.in_window = false;
	C.windows++;
	printf("window %u: longest request %.1f ms, %" PRIu64 " completed\n", C.windows,
	       (double)C.win_max_ns / 1e6, C.win_done);
	fflush(stdout);
}

static struct nbd_handle *connect_retry(const char *sock)
{
	const struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};

	for (int i = 0; i < CONNECT_TRIES; i++) {
		struct nbd_handle *h = nbd_create();

		if (!h)
			return NULL;
		if (nbd_connect_unix(h, sock) == 0)
			return h;
		if (i == CONNECT_TRIES - 1)
			fprintf(stderr, "nbd_svc: connect %s: %s\n", sock, nbd_get_error());
		nbd_close(h);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct nbd_handle *h;
	uint64_t len, last_mark = 0;
	char *buf;
	int64_t size;

	if (argc != 6) {
		fprintf(stderr, "usage: nbd_svc SOCKET OFFSET LENGTH MARKFILE STOPFILE\n");
		return 2;
	}
	C.off = strtoull(argv[2], NULL, 0);
	len = strtoull(argv[3], NULL, 0);
	C.nblk = len / BS;
	if (C.nblk < 4 * QD || C.off % BS) {
		fprintf(stderr, "nbd_svc: OFFSET must be 4 KiB aligned, LENGTH >= %u KiB\n",
			4 * QD * BS / 1024);
		return 2;
	}
	C.gen = calloc(C.nblk, sizeof(*C.gen));
	C.busy = calloc(C.nblk, sizeof(*C.busy));
	buf = malloc(BS);
	if (!C.gen || !C.busy || !buf)
		return 1;
	srandom((unsigned)getpid());
	h = connect_retry(argv[1]);
	if (!h)
		return 1;
	size = nbd_get_size(h);
	if (size < 0 || C.off + len > (uint64_t)size) {
		fprintf(stderr, "nbd_svc: range beyond the export (%" PRId64 " bytes)\n", size);
		return 1;
	}
	printf("running: %" PRIu64 " blocks of 4 KiB, QD %u\n", C.nblk, QD);
	fflush(stdout);
	while (access(argv[5], F_OK) != 0 && C.errors == 0) {
		uint64_t t = now_ns();

		for (unsigned i = 0; i < QD; i++)
			if (!C.slots[i].busy && issue(h, &C.slots[i]))
				break;
		if (nbd_poll(h, 20) < 0 && nbd_get_errno() != EINTR) {
			fprintf(stderr, "nbd_svc: poll: %s\n", nbd_get_error());
			C.errors++;
			break;
		}
		if (t - last_mark > 2000000) {
			window(argv[4]);
			last_mark = t;
		}
	}
	/* drain (bounded: a dead server ends the poll with an error) */
	while (C.inflight && nbd_poll(h, 1000) >= 0)
		;
	if (C.inflight) {
		fprintf(stderr, "nbd_svc: %u requests never answered: %s\n", C.inflight,
			nbd_get_error());
		C.errors++;
	}
	if (C.errors == 0 && nbd_flush(h, 0)) {
		fprintf(stderr, "nbd_svc: flush: %s\n", nbd_get_error());
		C.errors++;
	}
	for (uint64_t b = 0; b < C.nblk && C.errors == 0; b++) {
		if (!C.gen[b])
			continue;
		if (nbd_pread(h, buf, BS, C.off + b * BS, 0)) {
			fprintf(stderr, "nbd_svc: final read of block %" PRIu64 ": %s\n", b,
				nbd_get_error());
			C.errors++;
		} else if (!check(buf, b, C.gen[b])) {
			fprintf(stderr,
				"nbd_svc: final read: block %" PRIu64 " lost generation %u\n", b,
				C.gen[b]);
			C.mismatches++;
		}
	}
	nbd_shutdown(h, 0);
	nbd_close(h);
	printf("ops %" PRIu64 " (writes %" PRIu64 ", reads %" PRIu64 ") errors %" PRIu64
	       " mismatches %" PRIu64 " windows %u\n",
	       C.reads + C.writes, C.writes, C.reads, C.errors, C.mismatches, C.windows);
	return C.errors || C.mismatches ? 1 : 0;
}
