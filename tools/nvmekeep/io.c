/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep read | write: one logical range, data from/to a file or
 * stdin/stdout. Options follow nvme-cli: --start-block, --block-count
 * (0's based, like the NVMe NLB field), --data-size, --data.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nvmekeep/kernel_ns.h"

/* A CLI transfer is held in memory: keep it bounded. */
#define CLI_IO_MAX_BYTES (64ull << 20)

struct io_args {
	const char *dev;
	const char *data;
	uint32_t nsid;
	uint64_t slba;
	uint64_t nlb0; /* 0's based */
	uint64_t size;
	bool size_set, fua, nsid_set;
};

static const struct option io_opts[] = {
    {"namespace-id", required_argument, NULL, 'n'},
    {"start-block", required_argument, NULL, 's'},
    {"block-count", required_argument, NULL, 'c'},
    {"data-size", required_argument, NULL, 'z'},
    {"data", required_argument, NULL, 'd'},
    {"force-unit-access", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char read_usage[] =
    "Usage: nvmekeep read [DEVICE] [-n NSID] -s SLBA [-c NLB0] [-z SIZE] [-d FILE]\n"
    "Read blocks SLBA..SLBA+NLB0 (NLB0 is 0's based, as nvme-cli's --block-count) of\n"
    "namespace NSID (default 1) and write them to FILE (default stdout).\n"
    "  -n, --namespace-id NSID   default 1\n"
    "  -s, --start-block SLBA    first block (required)\n"
    "  -c, --block-count NLB0    blocks - 1, 0..65535 (default 0: one block)\n"
    "  -z, --data-size SIZE      must equal (NLB0+1) * block size; at most 64 MiB\n"
    "  -d, --data FILE           default stdout\n"
    "Numbers are decimal or 0x hex. A range larger than the device's largest\n"
    "transfer (MDTS) is moved in several commands.\n"
    "DEVICE: 'emu' (default), 'emu:FILE', a PCI address (0000:00:03.0), or a kernel\n"
    "block device /dev/nvmeXnY (io_uring; also used for a PCI address bound to the\n"
    "kernel nvme driver while OPENHCL_NVME_VFIO is off, the default).\n";
static const char write_usage[] =
    "Usage: nvmekeep write [DEVICE] [-n NSID] -s SLBA [-c NLB0] [-z SIZE] [-d FILE] [-f]\n"
    "Write (NLB0+1) blocks at SLBA of namespace NSID (default 1) from FILE (default\n"
    "stdin), which must hold exactly that many bytes.\n"
    "  -n, --namespace-id NSID   default 1\n"
    "  -s, --start-block SLBA    first block (required)\n"
    "  -c, --block-count NLB0    blocks - 1, 0..65535 (default 0: one block)\n"
    "  -z, --data-size SIZE      must equal (NLB0+1) * block size; at most 64 MiB\n"
    "  -d, --data FILE           default stdin\n"
    "  -f, --force-unit-access   set FUA (the kernel path flushes instead)\n"
    "Numbers are decimal or 0x hex. A range larger than the device's largest\n"
    "transfer (MDTS) is moved in several commands.\n"
    "DEVICE: 'emu' (default), 'emu:FILE', a PCI address (0000:00:03.0), or a kernel\n"
    "block device /dev/nvmeXnY (io_uring; also used for a PCI address bound to the\n"
    "kernel nvme driver while OPENHCL_NVME_VFIO is off, the default).\n";

static int parse_io(const char *cmd, const char *usage, bool is_write, int argc, char **argv,
		    struct io_args *a)
{
	bool slba_set = false;
	uint64_t v;
	int c;

	memset(a, 0, sizeof(*a));
	a->nsid = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:s:c:z:d:fh", io_opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_parse_u64("--namespace-id", optarg, 1, 0xfffffffe, &v))
				return CLI_EXIT_USAGE;
			a->nsid = (uint32_t)v;
			a->nsid_set = true;
			break;
		case 's':
			if (cli_parse_u64("--start-block", optarg, 0, UINT64_MAX, &a->slba))
				return CLI_EXIT_USAGE;
			slba_set = true;
			break;
		case 'c':
			/* 0's based, so 65535 is the largest single NVMe command */
			if (cli_parse_u64("--block-count", optarg, 0, 0xffff, &a->nlb0))
				return CLI_EXIT_USAGE;
			break;
		case 'z':
			if (cli_parse_size("--data-size", optarg, 1, CLI_IO_MAX_BYTES, &a->size))
				return CLI_EXIT_USAGE;
			a->size_set = true;
			break;
		case 'd':
			a->data = optarg;
			break;
		case 'f':
			if (!is_write) {
				cli_usage_error(cmd,
						"--force-unit-access is accepted by write only");
				return CLI_EXIT_USAGE;
			}
			a->fua = true;
			break;
		case 'h':
			printf("%s", usage);
			return -1;
		default:
			cli_usage_error(cmd, "unknown option");
			return CLI_EXIT_USAGE;
		}
	}
	if (cli_take_args(cmd, argc, argv, (const char **[]){&a->dev}, 1) ||
	    cli_dev_check(cmd, a->dev))
		return CLI_EXIT_USAGE;
	if (!slba_set) {
		cli_usage_error(cmd, "missing --start-block (-s SLBA)");
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int full_read(int fd, uint8_t *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, buf + *got, len - *got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

static int full_write(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Check the range against the namespace and work out the byte count. */
static int check_range(const char *cmd, const struct io_args *a, const struct nvmk_ns_info *info,
		       size_t *bytes)
{
	uint64_t nlb = a->nlb0 + 1, len = nlb << info->lba_shift;

	if (a->slba >= info->nblocks || nlb > info->nblocks - a->slba) {
		fprintf(
		    stderr,
		    "nvmekeep %s: blocks %" PRIu64 "..%" PRIu64
		    " are outside namespace %u, which has %" PRIu64 " blocks (0..%" PRIu64 ")\n",
		    cmd, a->slba, a->slba + a->nlb0, info->nsid, info->nblocks, info->nblocks - 1);
		return -ERANGE;
	}
	if (a->size_set && a->size != len) {
		fprintf(stderr,
			"nvmekeep %s: --data-size %" PRIu64 " does not match %" PRIu64
			" blocks of %u bytes (= %" PRIu64 " bytes)\n",
			cmd, a->size, nlb, info->block_size, len);
		return -EINVAL;
	}
	if (len > CLI_IO_MAX_BYTES) {
		fprintf(stderr,
			"nvmekeep %s: %" PRIu64 " bytes is more than the %llu MiB a CLI "
			"transfer may move\n",
			cmd, len, CLI_IO_MAX_BYTES >> 20);
		return -E2BIG;
	}
	*bytes = (size_t)len;
	return 0;
}

struct sync_cpl {
	bool done;
	struct nvmk_cpl cpl;
};

static void sync_cb(void *arg, const struct nvmk_cpl *cpl)
{
	struct sync_cpl *s = arg;

	s->cpl = *cpl;
	s->done = true;
}

/* Submit one request on the thread's queue pair and wait: the asynchronous
 * API is used so that write can carry FUA. */
static int sync_one(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_dma_buf *buf,
		    size_t off, bool is_write, bool fua, uint64_t slba, uint32_t nlb,
		    uint16_t *status)
{
	struct sync_cpl s = {0};
	int ret;

	if (is_write)
		ret = nvmk_ns_submit_write(ns, qp, buf, off, slba, nlb, fua ? NVMK_IO_FUA : 0,
					   sync_cb, &s);
	else
		ret = nvmk_ns_submit_read(ns, qp, buf, off, slba, nlb, 0, sync_cb, &s);
	if (ret)
		return ret;
	/* Every submitted command completes exactly once (driver.h), also when
	 * the controller fails, so waiting for the callback terminates. */
	while (!s.done) {
		ret = nvmk_qpair_wait(qp, 1000);
		if (ret < 0 && ret != -ETIMEDOUT && !s.done)
			return ret;
	}
	*status = s.cpl.status;
	return s.cpl.err;
}

/* The whole range, one command of at most the device's largest transfer
 * (MDTS) at a time: the driver splits a request into parts that must all
 * fit the queue at once, which a large -c would not (-E2BIG). */
static int sync_io(struct nvmk_ns *ns, const struct nvmk_dma_buf *buf, bool is_write,
		   const struct io_args *a, const struct nvmk_ns_info *info, uint16_t *status)
{
	struct nvmk_qpair *qp = nvmk_ctrl_get_qpair(nvmk_ns_ctrl(ns));
	uint64_t left = a->nlb0 + 1, slba = a->slba;
	uint32_t max = info->max_xfer_blocks ? info->max_xfer_blocks : 1;
	size_t off = 0;
	int ret = 0;

	if (!qp)
		return -EIO;
	while (left && !ret) {
		uint32_t nlb = left < max ? (uint32_t)left : max;

		ret = sync_one(ns, qp, buf, off, is_write, a->fua, slba, nlb, status);
		left -= nlb;
		slba += nlb;
		off += (size_t)nlb << info->lba_shift;
	}
	return ret;
}

/* The kernel path: synchronous wrappers (io_uring); FUA becomes a flush
 * after the write, which gives the same durability. */
static int kernel_io(struct nvmk_ns *ns, void *mem, bool is_write, const struct io_args *a)
{
	uint32_t nlb = (uint32_t)(a->nlb0 + 1);
	int ret;

	if (!is_write)
		return nvmk_ns_read(ns, NULL, mem, a->slba, nlb);
	ret = nvmk_ns_write(ns, NULL, mem, a->slba, nlb);
	if (!ret && a->fua)
		ret = nvmk_ns_flush(ns, NULL);
	return ret;
}

static int do_io(const char *cmd, const char *usage, bool is_write, int argc, char **argv)
{
	struct nvmk_ctrl_opts opts = {0};
	struct nvmk_ns_info info;
	struct nvmk_ns *ns = NULL;
	struct nvmk_dma_buf buf = {0};
	struct io_args a;
	struct cli_dev dev;
	size_t bytes = 0, got;
	uint16_t status = 0;
	int ret, fd = -1, rc = CLI_EXIT_FAIL;
	char st[80];
	bool kernel;
	void *kmem = NULL;
	uint8_t *mem;

	ret = parse_io(cmd, usage, is_write, argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;

	if (a.data) {
		fd = is_write ? open(a.data, O_RDONLY | O_CLOEXEC)
			      : open(a.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "nvmekeep %s: cannot open --data '%s': %s\n", cmd, a.data,
				strerror(errno));
			return CLI_EXIT_FAIL;
		}
	} else {
		fd = is_write ? STDIN_FILENO : STDOUT_FILENO;
	}

	kernel = cli_dev_is_kernel(a.dev);
	if (kernel) {
		memset(&dev, 0, sizeof(dev));
		snprintf(dev.spec, sizeof(dev.spec), "%s", a.dev);
		/* a path names its namespace; -n is then only checked */
		ret = nvmk_kns_open(a.dev, a.nsid_set || a.dev[0] != '/' ? a.nsid : 0, &ns);
	} else {
		if (cli_dev_open(a.dev, &opts, &dev))
			goto out_fd;
		ret = nvmk_ns_open(dev.ctrl, a.nsid, NVMK_NS_SHARED, &ns);
	}
	if (ret) {
		fprintf(stderr, "nvmekeep %s: %s: cannot open namespace %u: %s\n", cmd, dev.spec,
			a.nsid, strerror(-ret));
		goto out_dev;
	}
	nvmk_ns_info(ns, &info);
	if (check_range(cmd, &a, &info, &bytes)) {
		rc = CLI_EXIT_USAGE;
		goto out_ns;
	}
	if (kernel) {
		ret = posix_memalign(&kmem, 4096, bytes) ? -ENOMEM : 0;
		mem = kmem;
	} else {
		ret = nvmk_ctrl_dma_alloc(dev.ctrl, bytes, &buf);
		mem = buf.mem.vaddr;
	}
	if (ret) {
		fprintf(stderr, "nvmekeep %s: cannot allocate %zu bytes of DMA memory: %s\n", cmd,
			bytes, strerror(-ret));
		goto out_ns;
	}
	if (is_write) {
		ret = full_read(fd, mem, bytes, &got);
		if (ret || got != bytes) {
			fprintf(stderr,
				"nvmekeep write: expected %zu bytes of data from %s, got %zu%s%s\n",
				bytes, a.data ? a.data : "stdin", got, ret ? ": " : "",
				ret ? strerror(-ret) : "");
			rc = CLI_EXIT_USAGE;
			goto out_buf;
		}
		/* Refuse input longer than the range rather than drop the rest silently. */
		{
			uint8_t extra;
			size_t more;

			if (!full_read(fd, &extra, 1, &more) && more) {
				fprintf(stderr,
					"nvmekeep write: %s holds more than the %zu bytes of "
					"(NLB0+1) blocks; give --block-count to cover all of it\n",
					a.data ? a.data : "stdin", bytes);
				rc = CLI_EXIT_USAGE;
				goto out_buf;
			}
		}
	}
	ret = kernel ? kernel_io(ns, mem, is_write, &a)
		     : sync_io(ns, &buf, is_write, &a, &info, &status);
	if (ret) {
		fprintf(stderr, "nvmekeep %s: %s namespace %u: %s failed: %s (NVMe status %s)\n",
			cmd, dev.spec, a.nsid, is_write ? "write" : "read", strerror(-ret),
			nvmk_status_str(status, st, sizeof(st)));
		goto out_buf;
	}
	if (!is_write) {
		ret = full_write(fd, mem, bytes);
		if (ret) {
			fprintf(stderr, "nvmekeep read: cannot write the data out: %s\n",
				strerror(-ret));
			goto out_buf;
		}
		fprintf(stderr, "read: success (%zu bytes from block %" PRIu64 ")\n", bytes,
			a.slba);
	} else {
		fprintf(stderr, "write: success (%zu bytes at block %" PRIu64 ")\n", bytes, a.slba);
	}
	rc = 0;
out_buf:
	if (kernel)
		free(kmem);
	else
		nvmk_ctrl_dma_free(dev.ctrl, &buf);
out_ns:
	nvmk_ns_close(ns);
out_dev:
	cli_dev_close(&dev);
out_fd:
	if (a.data)
		close(fd);
	return rc;
}

int cmd_read(int argc, char **argv)
{
	return do_io("read", read_usage, false, argc, argv);
}

int cmd_write(int argc, char **argv)
{
	return do_io("write", write_usage, true, argc, argv);
}
