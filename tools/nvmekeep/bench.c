/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep bench: IOPS, bandwidth and latency percentiles for random or
 * sequential reads/writes at a chosen block size, queue depth and thread
 * count. Each thread owns an exclusive queue pair (the lock-free fast path)
 * and keeps QD requests in flight; latencies go into a per-thread log-linear
 * histogram (no allocation while running) merged at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

/* Histogram: 64 linear sub-buckets per power of two of nanoseconds, so a
 * percentile is within 1/64 (1.6 %) of the true value. */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_POW      44 /* up to 2^44 ns = 4.8 hours */
#define HIST_BUCKETS  (HIST_POW * HIST_SUB)

enum bench_rw { RW_RANDREAD, RW_RANDWRITE, RW_READ, RW_WRITE };
static const char *const rw_names[] = {"randread", "randwrite", "read", "write"};

struct bench_cfg {
	const char *dev;
	uint32_t nsid;
	bool nsid_set;
	enum bench_rw rw;
	uint64_t bs, qd, threads, time_s, ios;
	enum nvmk_cpl_mode mode;
	uint64_t hybrid_us; /* --mode hybrid: interrupt mode, poll this long first */
	bool hybrid_us_set;
	enum nvmk_dbbuf_mode dbbuf;
	enum cli_output out;
};

#define BENCH_HYBRID_US	    20	  /* default poll time of --mode hybrid */
#define BENCH_POLL_YIELD_NS 50000 /* --mode poll: yield the core after this long idle */

static const char *mode_name(const struct bench_cfg *cfg)
{
	if (cfg->mode == NVMK_CPL_POLL)
		return "poll";
	return cfg->hybrid_us ? "hybrid" : "irq";
}

struct bench_thread;

struct bench_slot {
	struct bench_thread *t;
	uint64_t start_ns;
	unsigned idx;
};

struct bench_thread {
	const struct bench_cfg *cfg;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;
	struct bench_slot *slots;
	unsigned *free_stack;
	struct nvmk_io_handle *h;  /* qpair, namespace and buffer bound once */
	struct nvmk_io_hreq *reqs; /* a refill's array, qd entries */
	unsigned nfree;
	uint64_t rng, seq_lba, region_start, region_blocks, blocks_per_io;
	uint64_t done, errors, submitted;
	int first_err;
	uint64_t *hist;
	uint64_t lat_min, lat_max, lat_sum;
	pthread_t tid;
	int setup_err;
};

static atomic_bool bench_stop;
static atomic_bool bench_sigint;
static atomic_uint_fast64_t bench_done_total;

/* Ctrl-C: stop the run, and the summary of what ran is printed.
 * atomic_bool is lock-free here, so setting it is async-signal-safe. */
static void bench_on_sigint(int sig)
{
	(void)sig;
	atomic_store(&bench_sigint, true);
	atomic_store(&bench_stop, true);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned hist_index(uint64_t v)
{
	unsigned msb, idx;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	idx = (msb - HIST_SUB_BITS + 1) * HIST_SUB +
	      (unsigned)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Lower bound of bucket @i (inverse of hist_index). */
static uint64_t hist_value(unsigned i)
{
	unsigned pow = i / HIST_SUB, sub = i % HIST_SUB;

	if (pow == 0)
		return sub;
	return ((uint64_t)(HIST_SUB + sub)) << (pow - 1);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static uint64_t next_lba(struct bench_thread *t)
{
	uint64_t units = t->region_blocks / t->blocks_per_io, u;

	if (t->cfg->rw == RW_RANDREAD || t->cfg->rw == RW_RANDWRITE) {
		/* multiply-high: uniform in [0, units) without a division */
		u = (uint64_t)(((unsigned __int128)xorshift(&t->rng) * units) >> 64);
	} else {
		u = t->seq_lba++;
		if (t->seq_lba >= units)
			t->seq_lba = 0;
	}
	return t->region_start + u * t->blocks_per_io;
}

static void bench_cb(void *arg, const struct nvmk_cpl *cpl)
{
	struct bench_slot *s = arg;
	struct bench_thread *t = s->t;
	uint64_t lat = now_ns() - s->start_ns;

	if (cpl->err) {
		if (!t->errors++)
			t->first_err = cpl->err;
	} else {
		t->done++;
		t->hist[hist_index(lat)]++;
		t->lat_sum += lat;
		if (lat < t->lat_min)
			t->lat_min = lat;
		if (lat > t->lat_max)
			t->lat_max = lat;
	}
	t->free_stack[t->nfree++] = s->idx;
}

/* Refill up to @want free slots in one nvmk_io_*_batch call on the thread's
 * I/O handle: one SQ tail doorbell for all of them (a register write is a
 * trap to the hypervisor in a VM), the qpair, namespace and buffer checked
 * once. Returns how many were queued, or the error of the call (nothing
 * queued). */
static int submit_refill(struct bench_thread *t, unsigned want)
{
	uint32_t nlb = (uint32_t)t->blocks_per_io;
	bool wr = t->cfg->rw == RW_RANDWRITE || t->cfg->rw == RW_WRITE;
	uint64_t seq = t->seq_lba, start;
	int ret;

	for (unsigned i = 0; i < want; i++) {
		unsigned idx = t->free_stack[t->nfree - 1 - i];

		t->reqs[i] = (struct nvmk_io_hreq){.off = (size_t)idx * t->cfg->bs,
						   .slba = next_lba(t),
						   .nlb = nlb,
						   .cb = bench_cb,
						   .cb_arg = &t->slots[idx]};
	}
	/* one timestamp: the device sees them all at the one doorbell */
	start = now_ns();
	for (unsigned i = 0; i < want; i++)
		((struct bench_slot *)t->reqs[i].cb_arg)->start_ns = start;
	if (wr)
		ret = nvmk_io_write_batch(t->h, t->reqs, want);
	else
		ret = nvmk_io_read_batch(t->h, t->reqs, want);
	if (ret > 0) {
		t->nfree -= (unsigned)ret;
		t->submitted += (unsigned)ret;
	}
	if (ret < (int)want && (t->cfg->rw == RW_READ || t->cfg->rw == RW_WRITE)) {
		/* sequential: continue after the last one queued */
		uint64_t units = t->region_blocks / t->blocks_per_io;

		t->seq_lba = (seq + (uint64_t)(ret > 0 ? ret : 0)) % units;
	}
	return ret;
}

static void *bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;
	const struct bench_cfg *cfg = t->cfg;
	uint64_t ios_limit = cfg->ios ? (cfg->ios + cfg->threads - 1) / cfg->threads : UINT64_MAX;
	uint64_t last_reported = 0;
	uint64_t idle_since = 0; /* poll mode: first empty poll of the current run, 0 = none */
	int ret;

	for (;;) {
		bool stopping = atomic_load_explicit(&bench_stop, memory_order_relaxed) ||
				t->submitted >= ios_limit || t->first_err;

		/* The refill as one array call (submit_refill). */
		if (!stopping && t->nfree) {
			uint64_t left = ios_limit - t->submitted;
			unsigned want = left < t->nfree ? (unsigned)left : t->nfree;

			ret = submit_refill(t, want);
			if (ret < 0 && ret != -EAGAIN) {
				t->errors++;
				t->first_err = ret;
			}
		}
		if (t->nfree == cfg->qd && (stopping || t->first_err))
			break;
		if (cfg->mode == NVMK_CPL_POLL) {
			ret = nvmk_qpair_process_completions(t->qp, 0);
			/* A polled qpair has no interrupt to sleep on: after
			 * BENCH_POLL_YIELD_NS without a completion, give the core to
			 * whatever else is runnable there (the device's thread, on a
			 * machine with fewer cores than busy threads). */
			if (ret != 0) {
				idle_since = 0;
			} else if (!idle_since) {
				idle_since = now_ns();
			} else if (now_ns() - idle_since >= BENCH_POLL_YIELD_NS) {
				sched_yield();
				idle_since = 0;
			}
		} else
			ret = nvmk_qpair_wait(t->qp, 100);
		if (ret < 0 && ret != -ETIMEDOUT) {
			if (!t->first_err)
				t->first_err = ret;
			if (t->nfree == cfg->qd || nvmk_qpair_outstanding(t->qp) == 0)
				break;
		}
		/* publish progress for the progress line; relaxed: a statistic only */
		if (t->done - last_reported >= 256) {
			atomic_fetch_add_explicit(&bench_done_total, t->done - last_reported,
						  memory_order_relaxed);
			last_reported = t->done;
		}
	}
	atomic_fetch_add_explicit(&bench_done_total, t->done - last_reported, memory_order_relaxed);
	return NULL;
}

static int thread_setup(struct bench_thread *t, unsigned index, const struct nvmk_ns_info *info)
{
	const struct bench_cfg *cfg = t->cfg;
	struct nvmk_qpair_opts qo = {
	    .mode = cfg->mode,
	    .hybrid_poll_us = (uint32_t)cfg->hybrid_us,
	    /* a queue of N entries holds N-1 commands (Base 2.0 4.1.3) */
	    .depth = (uint32_t)cfg->qd + 1,
	};
	uint64_t per_thread;
	int ret;

	t->slots = calloc(cfg->qd, sizeof(*t->slots));
	t->free_stack = calloc(cfg->qd, sizeof(*t->free_stack));
	t->reqs = calloc(cfg->qd, sizeof(*t->reqs));
	t->hist = calloc(HIST_BUCKETS, sizeof(*t->hist));
	if (!t->slots || !t->free_stack || !t->reqs || !t->hist)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->qd; i++) {
		t->slots[i] = (struct bench_slot){.t = t, .idx = i};
		t->free_stack[i] = (unsigned)(cfg->qd - 1 - i);
	}
	t->nfree = (unsigned)cfg->qd;
	t->lat_min = UINT64_MAX;
	t->rng = 0x9e3779b97f4a7c15ull * (index + 1);
	t->blocks_per_io = cfg->bs >> info->lba_shift;
	/* sequential threads each stream through their own slice */
	per_thread = info->nblocks;
	if (cfg->rw == RW_READ || cfg->rw == RW_WRITE) {
		per_thread = info->nblocks / cfg->threads;
		t->region_start = per_thread * index;
	}
	t->region_blocks = per_thread;
	if (t->region_blocks < t->blocks_per_io)
		return -ERANGE;

	ret = nvmk_qpair_create(t->ctrl, &qo, &t->qp);
	if (ret) {
		fprintf(stderr, "nvmekeep bench: thread %u: cannot create a queue pair: %s\n",
			index, strerror(-ret));
		return ret;
	}
	ret = nvmk_ctrl_dma_alloc(t->ctrl, cfg->bs * cfg->qd, &t->buf);
	if (ret) {
		fprintf(stderr,
			"nvmekeep bench: cannot allocate %" PRIu64 " bytes of DMA memory: %s\n",
			cfg->bs * cfg->qd, strerror(-ret));
		return ret;
	}
	ret = nvmk_io_handle_create(t->qp, t->ns, &t->buf, 0, &t->h);
	if (ret) {
		fprintf(stderr, "nvmekeep bench: thread %u: cannot create an I/O handle: %s\n",
			index, strerror(-ret));
		return ret;
	}
	memset(t->buf.mem.vaddr, 0xa5, t->buf.mem.size);
	return 0;
}

static void thread_teardown(struct bench_thread *t)
{
	nvmk_io_handle_destroy(t->h);
	if (t->buf.mem.vaddr)
		nvmk_ctrl_dma_free(t->ctrl, &t->buf);
	nvmk_qpair_destroy(t->qp);
	free(t->slots);
	free(t->free_stack);
	free(t->reqs);
	free(t->hist);
}

static uint64_t percentile(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p / 100.0), seen = 0;

	if (want >= total)
		want = total ? total - 1 : 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return hist_value(i);
	}
	return 0;
}

static const struct option bench_opts[] = {
    {"namespace-id", required_argument, NULL, 'n'},
    {"rw", required_argument, NULL, 'r'},
    {"bs", required_argument, NULL, 'b'},
    {"qd", required_argument, NULL, 'q'},
    {"threads", required_argument, NULL, 't'},
    {"time", required_argument, NULL, 'T'},
    {"ios", required_argument, NULL, 'i'},
    {"mode", required_argument, NULL, 'm'},
    {"hybrid-poll-us", required_argument, NULL, 'H'},
    {"dbbuf", required_argument, NULL, 'D'},
    {"output-format", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char bench_usage[] =
    "Usage: nvmekeep bench [DEVICE] [options]\n"
    "  -n, --namespace-id NSID   default: 2 (the null namespace) on the built-in\n"
    "                            emulator, 1 otherwise\n"
    "      --rw randread|randwrite|read|write   default randread\n"
    "      --bs SIZE             block size per I/O, a multiple of the LBA size (default 4K)\n"
    "      --qd N                I/Os in flight per thread, 1..4096 (default 32)\n"
    "      --threads N           threads, each with its own queue pair, 1..64 (default 1)\n"
    "      --time SEC            run time, 1..3600 (default 5)\n"
    "      --ios N               stop after N I/Os instead of after --time\n"
    "      --mode poll|irq|hybrid  completion by polling (default), MSI-X interrupts,\n"
    "                            or hybrid: poll a bounded time, then sleep on the\n"
    "                            interrupt (polling starves the device's thread when\n"
    "                            the cores are busy; hybrid and irq leave them)\n"
    "      --hybrid-poll-us N    hybrid: poll this long before sleeping, 1..1000000\n"
    "                            (default 20)\n"
    "      --dbbuf auto|off      shadow doorbells when offered (default), or always\n"
    "                            MMIO doorbell writes\n"
    "  -o, --output-format normal|json\n"
    "DEVICE: 'emu' (default), 'emu:FILE', or a PCI address (0000:00:03.0).\n";

static int parse_bench(int argc, char **argv, struct bench_cfg *cfg)
{
	uint64_t hybrid_us = 0;
	int c;

	*cfg = (struct bench_cfg){.rw = RW_RANDREAD,
				  .bs = 4096,
				  .qd = 32,
				  .threads = 1,
				  .time_s = 5,
				  .mode = NVMK_CPL_POLL};
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:o:h", bench_opts, NULL)) != -1) {
		uint64_t v;
		int ok = 0;

		switch (c) {
		case 'n':
			ok = cli_parse_u64("--namespace-id", optarg, 1, 0xfffffffe, &v);
			cfg->nsid = (uint32_t)v;
			cfg->nsid_set = true;
			break;
		case 'r':
			ok = -EINVAL;
			for (unsigned i = 0; i < 4; i++) {
				if (!strcmp(optarg, rw_names[i])) {
					cfg->rw = (enum bench_rw)i;
					ok = 0;
				}
			}
			if (ok)
				fprintf(stderr,
					"nvmekeep bench: invalid --rw '%s': expected "
					"randread, randwrite, read or write\n",
					optarg);
			break;
		case 'b':
			ok = cli_parse_size("--bs", optarg, 512, 16ull << 20, &cfg->bs);
			break;
		case 'q':
			ok = cli_parse_u64("--qd", optarg, 1, 4096, &cfg->qd);
			break;
		case 't':
			ok = cli_parse_u64("--threads", optarg, 1, 64, &cfg->threads);
			break;
		case 'T':
			ok = cli_parse_u64("--time", optarg, 1, 3600, &cfg->time_s);
			break;
		case 'i':
			ok = cli_parse_u64("--ios", optarg, 1, UINT64_MAX / 2, &cfg->ios);
			break;
		case 'm':
			cfg->hybrid_us = 0;
			if (!strcmp(optarg, "poll")) {
				cfg->mode = NVMK_CPL_POLL;
			} else if (!strcmp(optarg, "irq")) {
				cfg->mode = NVMK_CPL_INTERRUPT;
			} else if (!strcmp(optarg, "hybrid")) {
				cfg->mode = NVMK_CPL_INTERRUPT;
				cfg->hybrid_us = BENCH_HYBRID_US;
			} else {
				fprintf(stderr,
					"nvmekeep bench: invalid --mode '%s': expected poll, "
					"irq or hybrid\n",
					optarg);
				ok = -EINVAL;
			}
			break;
		case 'H':
			ok = cli_parse_u64("--hybrid-poll-us", optarg, 1, NVMK_HYBRID_POLL_MAX_US,
					   &v);
			cfg->hybrid_us_set = true;
			hybrid_us = v;
			break;
		case 'D':
			if (!strcmp(optarg, "auto")) {
				cfg->dbbuf = NVMK_DBBUF_AUTO;
			} else if (!strcmp(optarg, "off")) {
				cfg->dbbuf = NVMK_DBBUF_OFF;
			} else {
				fprintf(stderr,
					"nvmekeep bench: invalid --dbbuf '%s': expected auto or "
					"off\n",
					optarg);
				ok = -EINVAL;
			}
			break;
		case 'o':
			ok = cli_parse_output(optarg, &cfg->out);
			break;
		case 'h':
			printf("%s", bench_usage);
			return -1;
		default:
			cli_usage_error("bench", "unknown option");
			return CLI_EXIT_USAGE;
		}
		if (ok)
			return CLI_EXIT_USAGE;
	}
	if (cfg->hybrid_us_set) {
		if (!cfg->hybrid_us) {
			fprintf(stderr, "nvmekeep bench: --hybrid-poll-us needs --mode hybrid\n");
			return CLI_EXIT_USAGE;
		}
		cfg->hybrid_us = hybrid_us;
	}
	if (cli_take_args("bench", argc, argv, (const char **[]){&cfg->dev}, 1))
		return CLI_EXIT_USAGE;
	return cli_dev_check("bench", cfg->dev);
}

/* A double written with @decimals digits after the point: json-c's default
 * ("%.17g") shows binary rounding noise such as 1234.5600000000002. */
static struct json_object *json_fixed(double v, int decimals)
{
	char s[64];

	snprintf(s, sizeof(s), "%.*f", decimals, v);
	return json_object_new_double_s(strtod(s, NULL), s);
}

static void report(const struct bench_cfg *cfg, const struct nvmk_ns_info *info,
		   struct bench_thread *ts, double secs, bool interrupted)
{
	uint64_t *hist = calloc(HIST_BUCKETS, sizeof(*hist));
	uint64_t done = 0, errors = 0, lat_sum = 0, lat_min = UINT64_MAX, lat_max = 0;
	double iops, mibs;

	if (!hist)
		return;
	for (unsigned i = 0; i < cfg->threads; i++) {
		done += ts[i].done;
		errors += ts[i].errors;
		lat_sum += ts[i].lat_sum;
		if (ts[i].lat_min < lat_min)
			lat_min = ts[i].lat_min;
		if (ts[i].lat_max > lat_max)
			lat_max = ts[i].lat_max;
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			hist[b] += ts[i].hist[b];
	}
	if (!done)
		lat_min = 0;
	iops = secs > 0 ? (double)done / secs : 0;
	mibs = iops * (double)cfg->bs / (1024.0 * 1024.0);

	if (cfg->out == CLI_OUT_JSON) {
		struct json_object *o = json_object_new_object(), *lat = json_object_new_object();

		json_object_object_add(o, "device",
				       json_object_new_string(cfg->dev ? cfg->dev : "emu"));
		json_object_object_add(o, "nsid", json_object_new_uint64(info->nsid));
		json_object_object_add(o, "rw", json_object_new_string(rw_names[cfg->rw]));
		json_object_object_add(o, "bs", json_object_new_uint64(cfg->bs));
		json_object_object_add(o, "qd", json_object_new_uint64(cfg->qd));
		json_object_object_add(o, "threads", json_object_new_uint64(cfg->threads));
		json_object_object_add(o, "mode", json_object_new_string(mode_name(cfg)));
		if (cfg->hybrid_us)
			json_object_object_add(o, "hybrid_poll_us",
					       json_object_new_uint64(cfg->hybrid_us));
		json_object_object_add(o, "seconds", json_fixed(secs, 3));
		json_object_object_add(o, "ios", json_object_new_uint64(done));
		json_object_object_add(o, "errors", json_object_new_uint64(errors));
		json_object_object_add(o, "iops", json_fixed(iops, 1));
		json_object_object_add(o, "mib_per_s", json_fixed(mibs, 1));
		json_object_object_add(o, "interrupted", json_object_new_boolean(interrupted));
		json_object_object_add(lat, "min", json_object_new_uint64(lat_min));
		json_object_object_add(lat, "mean",
				       json_object_new_uint64(done ? lat_sum / done : 0));
		json_object_object_add(lat, "p50",
				       json_object_new_uint64(percentile(hist, done, 50)));
		json_object_object_add(lat, "p99",
				       json_object_new_uint64(percentile(hist, done, 99)));
		json_object_object_add(lat, "p99_9",
				       json_object_new_uint64(percentile(hist, done, 99.9)));
		json_object_object_add(lat, "max", json_object_new_uint64(lat_max));
		json_object_object_add(o, "latency_ns", lat);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		printf("bench: %s nsid %u, %s bs=%" PRIu64 " qd=%" PRIu64 " threads=%" PRIu64
		       " mode=%s, %.2f s\n",
		       cfg->dev ? cfg->dev : "emu", info->nsid, rw_names[cfg->rw], cfg->bs, cfg->qd,
		       cfg->threads, mode_name(cfg), secs);
		if (cfg->hybrid_us)
			printf("  mode      : hybrid, polls %" PRIu64
			       " us per wait, then sleeps on the interrupt\n",
			       cfg->hybrid_us);
		else if (cfg->mode == NVMK_CPL_POLL)
			printf(
			    "  mode      : poll, busy-polls a core per thread, yielding it after "
			    "%u us without a completion (on a busy machine compare --mode "
			    "hybrid)\n",
			    BENCH_POLL_YIELD_NS / 1000);
		else
			printf("  mode      : irq, sleeps on the interrupt\n");
		printf("  IOPS      : %.0f\n", iops);
		printf("  bandwidth : %.1f MiB/s\n", mibs);
		printf("  latency   : min %.1f us, mean %.1f us, p50 %.1f us, p99 %.1f us, "
		       "p99.9 %.1f us, max %.1f us\n",
		       (double)lat_min / 1e3, done ? (double)lat_sum / (double)done / 1e3 : 0.0,
		       (double)percentile(hist, done, 50) / 1e3,
		       (double)percentile(hist, done, 99) / 1e3,
		       (double)percentile(hist, done, 99.9) / 1e3, (double)lat_max / 1e3);
		printf("  I/Os      : %" PRIu64 " completed, %" PRIu64 " errors%s\n", done, errors,
		       interrupted ? " (interrupted)" : "");
	}
	free(hist);
}

int cmd_bench(int argc, char **argv)
{
	struct nvmk_ctrl_opts opts = {0};
	struct bench_thread *ts = NULL;
	struct nvmk_ns_info info;
	struct nvmk_ns *ns = NULL;
	struct bench_cfg cfg;
	struct cli_dev dev;
	uint64_t t0, t1, next_progress;
	unsigned started = 0;
	int ret, rc = CLI_EXIT_FAIL;
	bool tty = isatty(STDERR_FILENO), interrupted = false;
	struct sigaction sa = {.sa_handler = bench_on_sigint, .sa_flags = (int)SA_RESETHAND},
			 old_sa;
	sigset_t sigint_set, old_mask;

	ret = parse_bench(argc, argv, &cfg);
	if (ret)
		return ret < 0 ? 0 : ret;
	/* SIGINT stays blocked in every thread created from here on (the
	 * emulator's, the driver's, the bench threads), so that the main thread
	 * takes it and its sleep ends at once. A second Ctrl-C kills
	 * (SA_RESETHAND). */
	atomic_store(&bench_sigint, false);
	sigemptyset(&sigint_set);
	sigaddset(&sigint_set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigint_set, &old_mask);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	opts.max_io_queues = (uint16_t)cfg.threads;
	opts.dbbuf = cfg.dbbuf;
	opts.io_queue_depth = (uint32_t)cfg.qd + 1;
	if (cli_dev_open(cfg.dev, &opts, &dev)) {
		sigaction(SIGINT, &old_sa, NULL);
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
		return CLI_EXIT_FAIL;
	}
	if (!cfg.nsid_set)
		cfg.nsid = dev.emu && !strcmp(dev.spec, "emu") ? CLI_EMU_NULL_NSID : 1;
	ret = nvmk_ns_open(dev.ctrl, cfg.nsid, NVMK_NS_SHARED, &ns);
	if (ret) {
		fprintf(stderr, "nvmekeep bench: %s: cannot open namespace %u: %s\n", dev.spec,
			cfg.nsid, strerror(-ret));
		goto out;
	}
	nvmk_ns_info(ns, &info);
	if (cfg.bs % info.block_size) {
		fprintf(stderr,
			"nvmekeep bench: --bs %" PRIu64 " is not a multiple of namespace "
			"%u's block size %u\n",
			cfg.bs, cfg.nsid, info.block_size);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if ((cfg.bs >> info.lba_shift) > NVME_MAX_NLB) {
		fprintf(stderr, "nvmekeep bench: --bs %" PRIu64 " is more than 65536 blocks\n",
			cfg.bs);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	/* Each bench I/O is one command: a larger one would be split into parts
	 * that must all fit the queue together. Refused before any I/O. */
	if ((cfg.bs >> info.lba_shift) > info.max_xfer_blocks) {
		uint64_t max = (uint64_t)info.max_xfer_blocks << info.lba_shift;

		fprintf(stderr,
			"nvmekeep bench: --bs %" PRIu64 " is more than the largest transfer "
			"%s namespace %u takes in one command (%" PRIu64 " KiB, from MDTS); "
			"use --bs %" PRIu64 "K or less\n",
			cfg.bs, dev.spec, cfg.nsid, max >> 10, max >> 10);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (cfg.threads > nvmk_ctrl_io_queues(dev.ctrl)) {
		fprintf(stderr,
			"nvmekeep bench: --threads %" PRIu64 " needs as many I/O queues, "
			"but %s granted %u\n",
			cfg.threads, dev.spec, nvmk_ctrl_io_queues(dev.ctrl));
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	ts = calloc(cfg.threads, sizeof(*ts));
	if (!ts)
		goto out;
	for (unsigned i = 0; i < cfg.threads; i++) {
		ts[i].cfg = &cfg;
		ts[i].ctrl = dev.ctrl;
		ts[i].ns = ns;
		ret = thread_setup(&ts[i], i, &info);
		if (ret) {
			if (ret == -ERANGE)
				fprintf(stderr,
					"nvmekeep bench: namespace %u is too small for --bs "
					"%" PRIu64 " with %" PRIu64 " threads\n",
					cfg.nsid, cfg.bs, cfg.threads);
			goto out_threads;
		}
	}

	atomic_store(&bench_stop, false);
	atomic_store(&bench_done_total, 0);
	t0 = now_ns();
	for (; started < cfg.threads; started++) {
		ret = pthread_create(&ts[started].tid, NULL, bench_thread_main, &ts[started]);
		if (ret) {
			fprintf(stderr, "nvmekeep bench: pthread_create: %s\n", strerror(ret));
			atomic_store(&bench_stop, true);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	next_progress = t0 + 1000000000ull;
	if (!cfg.ios) {
		uint64_t end = t0 + cfg.time_s * 1000000000ull, now, last_t = t0, last_done = 0;

		while (!atomic_load(&bench_stop) && (now = now_ns()) < end) {
			uint64_t until = end < next_progress ? end : next_progress;
			struct timespec ts_sleep = {
			    .tv_sec = (time_t)((until - now) / 1000000000ull),
			    .tv_nsec = (long)((until - now) % 1000000000ull),
			};

			if (until > now)
				nanosleep(&ts_sleep, NULL);
			now = now_ns();
			if (now < next_progress)
				continue;
			next_progress += 1000000000ull;
			/* progress line for runs of 3 s and more: the rate over the
			 * last second (not the average so far) and the time left */
			if (now < end && cfg.time_s >= 3 && !atomic_load(&bench_stop)) {
				uint64_t d = atomic_load(&bench_done_total);
				double iv = (double)(now - last_t) / 1e9,
				       rate = iv > 0 ? (double)(d - last_done) / iv : 0;

				fprintf(stderr,
					"%sbench: %.0f/%" PRIu64 " s, now %.0f IOPS %.1f MiB/s, "
					"%.0f s left%s",
					tty ? "\r" : "", (double)(now - t0) / 1e9, cfg.time_s, rate,
					rate * (double)cfg.bs / (1024.0 * 1024.0),
					(double)(end - now) / 1e9, tty ? "   " : "\n");
				last_t = now;
				last_done = d;
			}
		}
		if (tty && cfg.time_s >= 3)
			fprintf(stderr, "\n");
		atomic_store(&bench_stop, true);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(ts[i].tid, NULL);
	t1 = now_ns();

	rc = 0;
	for (unsigned i = 0; i < cfg.threads; i++) {
		if (ts[i].first_err) {
			fprintf(stderr, "nvmekeep bench: thread %u: I/O failed: %s\n", i,
				strerror(-ts[i].first_err));
			rc = CLI_EXIT_FAIL;
		}
	}
	interrupted = atomic_load(&bench_sigint);
	report(&cfg, &info, ts, (double)(t1 - t0) / 1e9, interrupted);
	if (interrupted && !rc)
		rc = 128 + SIGINT; /* as a shell reports a command ended by Ctrl-C */
out_threads:
	for (unsigned i = 0; ts && i < cfg.threads; i++)
		thread_teardown(&ts[i]);
	free(ts);
out:
	nvmk_ns_close(ns);
	cli_dev_close(&dev);
	sigaction(SIGINT, &old_sa, NULL);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
