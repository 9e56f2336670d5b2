// SPDX-License-Identifier: MIT
/*
 * A stand-in for systemd's notification socket (sd_notify(3)): binds a unix
 * datagram socket at PATH, prints every message, exits 0 once one contains
 * READY=1, 1 after TIMEOUT_MS without it. Usage: notify_listen PATH TIMEOUT_MS
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	int fd, left;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_listen PATH TIMEOUT_MS\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	left = atoi(argv[2]);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror(argv[1]);
		return 2;
	}
	while (left > 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) == 1 && (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
			buf[n] = 0;
			printf("%s\n", buf);
			fflush(stdout);
			if (strstr(buf, "READY=1")) {
				unlink(argv[1]);
				return 0;
			}
		}
		left -= 100;
	}
	unlink(argv[1]);
	return 1;
}
