/* SPDX-License-Identifier: MIT */
/*
 * nbd_rw - a minimal NBD client (libnbd) for guest_nbd.sh: moves bytes
 * between a file and an NBD export served on a unix socket.
 *
 *   nbd_rw SOCKET read OFFSET LENGTH OUTFILE   export -> file
 *   nbd_rw SOCKET write OFFSET INFILE          file -> export, then NBD_CMD_FLUSH
 *
 * Requests are split at the server's maximum block size.
 *
 * The export is the default one (empty name: the first namespace of the
 * first device). Connecting is retried for up to 60 s, the daemon's VFIO
 * bring-up being slow under TCG. Exit 0 on success; errors on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TRIES 600 /* x 100 ms */

static int usage(void)
{
	fprintf(stderr, "usage: nbd_rw SOCKET read OFFSET LENGTH OUTFILE\n"
			"       nbd_rw SOCKET write OFFSET INFILE\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "nbd_rw: '%s' is not a number\n", s);
		return -1;
	}
	return 0;
}

static struct nbd_handle *connect_retry(const char *sock)
{
	const struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};

	for (int i = 0; i < CONNECT_TRIES; i++) {
		struct nbd_handle *h = nbd_create();

		if (!h) {
			fprintf(stderr, "nbd_rw: nbd_create: %s\n", nbd_get_error());
			return NULL;
		}
		if (nbd_connect_unix(h, sock) == 0)
			return h;
		if (i == CONNECT_TRIES - 1)
			fprintf(stderr, "nbd_rw: connect %s: %s\n", sock, nbd_get_error());
		nbd_close(h);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t off, len = 0;
	bool rd;
	FILE *f;
	struct nbd_handle *h = NULL;
	int64_t size;
	char *buf;
	int rc = 1;

	if (argc < 5)
		return usage();
	rd = strcmp(argv[2], "read") == 0;
	if (rd ? argc != 6 : (strcmp(argv[2], "write") != 0 || argc != 5))
		return usage();
	if (parse_u64(argv[3], &off) || (rd && parse_u64(argv[4], &len)))
		return 2;

	f = fopen(argv[rd ? 5 : 4], rd ? "wb" : "rb");
	if (!f) {
		fprintf(stderr, "nbd_rw: %s: %s\n", argv[rd ? 5 : 4], strerror(errno));
		return 1;
	}
	if (!rd) {
		fseek(f, 0, SEEK_END);
		len = (uint64_t)ftell(f);
		rewind(f);
	}
	buf = malloc(len ? len : 1);
	if (!buf || (!rd && fread(buf, 1, len, f) != len)) {
		fprintf(stderr, "nbd_rw: cannot buffer %" PRIu64 " bytes of %s\n", len, argv[4]);
		goto out_file;
	}

	h = connect_retry(argv[1]);
	if (!h)
		goto out_buf;
	size = nbd_get_size(h);
	if (size < 0 || off + len > (uint64_t)size) {
		fprintf(stderr,
			"nbd_rw: %" PRIu64 "+%" PRIu64 " beyond the export (%" PRId64 " bytes)\n",
			off, len, size);
		goto out_nbd;
	}
	/* requests no larger than the server's maximum block size (NBD_INFO_BLOCK_SIZE:
	 * a larger one may be refused with EINVAL) */
	int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	if (max <= 0)
		max = 32 * 1024 * 1024; /* the protocol's default maximum */
	for (uint64_t done = 0; done < len; done += (uint64_t)max) {
		size_t n = len - done < (uint64_t)max ? len - done : (size_t)max;
		int r = rd ? nbd_pread(h, buf + done, n, off + done, 0)
			   : nbd_pwrite(h, buf + done, n, off + done, 0);
		if (r) {
			fprintf(stderr, "nbd_rw: %s %zu bytes at %" PRIu64 ": %s\n",
				rd ? "read" : "write", n, off + done, nbd_get_error());
			goto out_nbd;
		}
	}
	if (rd) {
		if (fwrite(buf, 1, len, f) != len) {
			fprintf(stderr, "nbd_rw: %s: %s\n", argv[5], strerror(errno));
			goto out_nbd;
		}
	} else {
		if (nbd_flush(h, 0)) {
			fprintf(stderr, "nbd_rw: flush: %s\n", nbd_get_error());
			goto out_nbd;
		}
	}
	if (nbd_shutdown(h, 0)) {
		fprintf(stderr, "nbd_rw: shutdown: %s\n", nbd_get_error());
		goto out_nbd;
	}
	rc = 0;
out_nbd:
	nbd_close(h);
out_buf:
	free(buf);
out_file:
	if (fclose(f) && rc == 0) {
		fprintf(stderr, "nbd_rw: %s: %s\n", argv[rd ? 5 : 4], strerror(errno));
		rc = 1;
	}
	return rc;
}
