/* Whether the client trusts the chat server's certificate, in this order:
 * --pin (the certificate's or its key's SHA-256), --ca, the system's CAs,
 * --insecure, and last trust on first use with a known-hosts file, as ssh
 * does: the first connection to [host]:port keeps the key's fingerprint, a
 * later one with another is refused.
 *
 * The known-hosts file is read once at start-up (before the loop runs, so
 * the synchronous read blocks nobody); a new line is appended with uv_fs_*
 * from the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "trust.h"

typedef struct {
  uv_fs_t req;
  uv_file fd;
  char *line;
  uv_buf_t buf;
} append_t;

static void append_done(append_t *a, int rc) {
  if (rc < 0)
    client_eprintf("chat-client: cannot add to the known-hosts file: %s",
                   chat_strerror(rc));
  free(a->line);
  free(a);
}

static void on_append_closed(uv_fs_t *req) {
  append_t *a = req->data;

  uv_fs_req_cleanup(req);
  append_done(a, 0);
}

static void on_append_written(uv_fs_t *req) {
  append_t *a = req->data;
  int rc = (int)req->result;

  uv_fs_req_cleanup(req);
  if (rc < 0)
    client_eprintf("chat-client: cannot add to the known-hosts file: %s",
                   chat_strerror(rc));
  if (uv_fs_close(req->loop, &a->req, a->fd, on_append_closed) != 0)
    append_done(a, 0);
}

static void on_append_opened(uv_fs_t *req) {
  append_t *a = req->data;
  int rc = (int)req->result;

  uv_fs_req_cleanup(req);
  if (rc < 0) {
    append_done(a, rc);
    return;
  }
  a->fd = rc;
  rc =
      uv_fs_write(req->loop, &a->req, a->fd, &a->buf, 1, -1, on_append_written);
  if (rc != 0) {
    uv_fs_t close_req;
    uv_fs_close(NULL, &close_req, a->fd, NULL);
    uv_fs_req_cleanup(&close_req);
    append_done(a, rc);
  }
}

static void known_append(client_t *c, const char *hostport, const char *fp) {
  append_t *a = calloc(1, sizeof(*a));
  size_t n = strlen(hostport) + strlen(fp) + 3;

  if (a == NULL || (a->line = malloc(n)) == NULL) {
    free(a);
    return;
  }
  snprintf(a->line, n, "%s %s\n", hostport, fp);
  a->buf = uv_buf_init(a->line, (unsigned)strlen(a->line));
  a->req.data = a;
  if (uv_fs_open(c->loop, &a->req, c->cfg.known_hosts,
                 UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_APPEND, 0600,
                 on_append_opened) != 0)
    append_done(a, UV_EIO);
}

int trust_check(client_t *c, const chat_tls_peer_t *p) {
  char hp[300], known[CHAT_TLS_FP_MAX];
  int r;

  if (c->cfg.pin[0] != '\0') {
    if (strcmp(c->cfg.pin, p->cert_fp) == 0 ||
        strcmp(c->cfg.pin, p->key_fp) == 0)
      return 0;
    client_eprintf(
        "chat-client: the server's certificate does not match "
        "--pin\n  pinned:      %s\n  certificate: %s\n  key:         "
        "%s",
        c->cfg.pin, p->cert_fp, p->key_fp);
    return CHAT_EUNTRUSTED;
  }
  if (c->cfg.ca_file != NULL) {
    if (p->ca_ok)
      return 0;
    client_eprintf("chat-client: the server's certificate is not trusted by "
                   "%s: %s",
                   c->cfg.ca_file, p->ca_why);
    return CHAT_EUNTRUSTED;
  }
  if (p->ca_ok)
    return 0; /* the system's CAs vouch for it, name included */
  if (c->cfg.insecure)
    return 0; /* said loudly at start-up */
  trust_hostport(c->cfg.host, c->cfg.port, hp, sizeof(hp));
  r = trust_known_lookup(c->cfg.known_text, c->cfg.known_len, hp, known);
  if (r == 1 && strcmp(known, p->key_fp) == 0)
    return 0;
  if (r != 0) {
    client_eprintf(
        "chat-client: WARNING: the server's key for %s has CHANGED; refusing "
        "to connect.\n  known:  %s\n  now:    %s (certificate %s)\n"
        "Someone may be intercepting the connection, or the server has a new "
        "key.\nIf you know it does, remove the line for %s from %s and "
        "connect again.",
        hp, r == 1 ? known : "(an unreadable line)", p->key_fp, p->cert_fp, hp,
        c->cfg.known_hosts);
    return CHAT_EUNTRUSTED;
  }
  client_eprintf("chat-client: trusting %s on first use: key SHA256 %s "
                 "(kept in %s)",
                 hp, p->key_fp, c->cfg.known_hosts);
  known_append(c, hp, p->key_fp);
  return 0;
}
