// SPDX-License-Identifier: MIT
/*
 * TLS for NBD connections on TCP listeners (proto.md "TLS support"): after
 * NBD_OPT_STARTTLS is acknowledged the connection runs a GnuTLS server
 * session on its nonblocking socket; the handshake is stepped from the
 * connection's event loop like everything else. Credentials: X.509 from a
 * directory (server-cert.pem, server-key.pem, and ca-cert.pem when present,
 * as qemu's tls-creds-x509 lays them out) and/or a PSK file of
 * "username:hexkey" lines (psktool's format, qemu's keys.psk).
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "export_internal.h"
#include "nvmekeep/log.h"

struct exp_tls_creds {
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk;
	gnutls_priority_t prio;
};

static int tls_err(const char *what, int rc)
{
	nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "TLS: %s: %s", what, gnutls_strerror(rc));
	return -EINVAL;
}

int exp_tls_init(struct nvmk_export_server *srv)
{
	const struct nvmk_export_opts *o = &srv->opts;
	struct exp_tls_creds *cr;
	char cert[4200], key[4200], ca[4200];
	struct stat st;
	int rc;

	if (o->tls == NVMK_EXPORT_TLS_OFF)
		return 0;
	if (!o->tls_creds_dir && !o->tls_psk_file) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ,
			 "TLS: no credentials: give an X.509 directory or a PSK file");
		return -EINVAL;
	}
	cr = calloc(1, sizeof(*cr));
	if (!cr)
		return -ENOMEM;
	srv->tls = cr;
	if (o->tls_creds_dir) {
		snprintf(cert, sizeof(cert), "%s/server-cert.pem", o->tls_creds_dir);
		snprintf(key, sizeof(key), "%s/server-key.pem", o->tls_creds_dir);
		snprintf(ca, sizeof(ca), "%s/ca-cert.pem", o->tls_creds_dir);
		rc = gnutls_certificate_allocate_credentials(&cr->x509);
		if (rc)
			return tls_err("X.509 credentials", rc);
		rc = gnutls_certificate_set_x509_key_file(cr->x509, cert, key, GNUTLS_X509_FMT_PEM);
		if (rc)
			return tls_err(cert, rc);
		if (stat(ca, &st) == 0 &&
		    (rc = gnutls_certificate_set_x509_trust_file(cr->x509, ca, GNUTLS_X509_FMT_PEM)) < 0)
			return tls_err(ca, rc);
	}
	if (o->tls_psk_file) {
		rc = gnutls_psk_allocate_server_credentials(&cr->psk);
		if (rc)
			return tls_err("PSK credentials", rc);
		if (stat(o->tls_psk_file, &st)) {
			nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "TLS: PSK file %s: %s", o->tls_psk_file,
				 strerror(errno));
			return -errno;
		}
		rc = gnutls_psk_set_server_credentials_file(cr->psk, o->tls_psk_file);
		if (rc)
			return tls_err(o->tls_psk_file, rc);
	}
	/* TLS 1.2 and later only (proto.md "TLS versions") */
	rc = gnutls_priority_init(&cr->prio,
				  cr->psk ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+ECDHE-PSK:"
					    "+DHE-PSK:+PSK"
					  : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
				  NULL);
	if (rc)
		return tls_err("priority", rc);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "TLS %s on TCP listeners (%s%s%s)",
		  o->tls == NVMK_EXPORT_TLS_REQUIRE ? "required" : "offered",
		  cr->x509 ? "X.509" : "", cr->x509 && cr->psk ? ", " : "", cr->psk ? "PSK" : "");
	return 0;
}

void exp_tls_fini(struct nvmk_export_server *srv)
{
	struct exp_tls_creds *cr = srv->tls;

	if (!cr)
		return;
	if (cr->prio)
		gnutls_priority_deinit(cr->prio);
	if (cr->x509)
		gnutls_certificate_free_credentials(cr->x509);
	if (cr->psk)
		gnutls_psk_free_server_credentials(cr->psk);
	free(cr);
	srv->tls = NULL;
}

int exp_tls_start(struct exp_conn *c)
{
	struct exp_tls_creds *cr = c->t->srv->tls;
	gnutls_session_t s;
	int rc;

	rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (rc)
		return tls_err("session", rc);
	if ((rc = gnutls_priority_set(s, cr->prio)) ||
	    (cr->x509 && (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cr->x509))) ||
	    (cr->psk && (rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, cr->psk)))) {
		gnutls_deinit(s);
		return tls_err("session setup", rc);
	}
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(s, c->fd);
	gnutls_handshake_set_timeout(s, 0);
	c->tls = s;
	return 0;
}

int exp_tls_handshake(struct exp_conn *c)
{
	int rc = gnutls_handshake(c->tls);

	if (rc == GNUTLS_E_SUCCESS)
		return 1;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    (rc < 0 && !gnutls_error_is_fatal(rc)))
		return 0;
	nvmk_warn(EXP_LOG, NVMK_LOG_NOQ, "nbd conn %llu (%s): TLS handshake failed: %s",
		  (unsigned long long)c->id, c->peer, gnutls_strerror(rc));
	return -EPROTO;
}

bool exp_tls_wants_write(const struct exp_conn *c)
{
	return c->tls && gnutls_record_get_direction(c->tls) == 1;
}

ssize_t exp_tls_recv(struct exp_conn *c, void *buf, size_t n)
{
	ssize_t r = gnutls_record_recv(c->tls, buf, n);

	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		errno = EAGAIN;
	else if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	else
		errno = EPROTO;
	return -1;
}

ssize_t exp_tls_send(struct exp_conn *c, const void *buf, size_t n)
{
	ssize_t r = gnutls_record_send(c->tls, buf, n);

	if (r >= 0)
		return r;
	errno = (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) ? EAGAIN : EPIPE;
	return -1;
}

size_t exp_tls_pending(const struct exp_conn *c)
{
	return c->tls && c->tls_ok ? gnutls_record_check_pending(c->tls) : 0;
}

void exp_tls_close(struct exp_conn *c)
{
	if (!c->tls)
		return;
	if (c->tls_ok)
		gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort: nonblocking */
	gnutls_deinit(c->tls);
	c->tls = NULL;
}
