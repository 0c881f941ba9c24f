/* The owner side of file transfers.
 *
 * The server sends SERVE <token> <requester> <file>. We resolve the name
 * inside the shared directory, open it, check it is a regular file, keep it
 * open under the token (an *offer*) and answer SERVE-OK, or SERVE-FAIL with
 * the reason. A requester then connects to our -l port and presents the
 * token; the offer becomes a *sender*, which streams the file in
 * CLIENT_CHUNK reads and ends with the SHA-256 of what it sent. It reads one
 * chunk ahead: the next read is issued as soon as no more than one chunk is
 * queued on the socket, so reading and hashing a chunk overlap with sending
 * the previous one, and at most two chunks are held. A requester may
 * half-close once its header is sent: only a write error or the stall
 * timeout ends a sender before the digest. A RELAY-SERVE <token> <key> for
 * an offer we hold opens a relay leg to the server presenting the key (the
 * requester knows the token, never the key); for an offer we no longer
 * hold it is answered with RELAY-SERVE-FAIL.
 *
 * Budgets, so that no requester (or stranger) can lock the others out:
 *  - a connection to the -l port is a *handshake* until it presents the
 *    token of an offer we hold: at most max_handshakes of them, at most
 *    CLIENT_HANDSHAKES_PER_ADDR from one address, each for header_s
 *    seconds; when full, the oldest (of that address, or of all) is closed
 *    to make room, so silent connections cannot keep anyone out (one in
 *    its first CLIENT_HANDSHAKE_GRACE_MS is spared up to twice the budget,
 *    so that simultaneous requesters all get through);
 *  - only a sender that claimed an offer takes one of max_transfers slots;
 *    a valid token over that gets "ERR busy";
 *  - one requester (by name, ignoring case) holds at most
 *    max(1, max_transfers / 2) offers and senders together; over that its
 *    SERVE gets SERVE-FAIL busy, which hits nobody else;
 *  - at most 4 * max_transfers offers in all; when full the oldest is
 *    dropped to make room, so uncollected offers never refuse anyone.
 *
 * Invariants: an offer or sender is freed only when no fs request and no
 * stream of its own is in flight; a token is honoured once, and only
 * within CLIENT_OFFER_TTL_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"
#include "list.h"
#include "sha256.h"

struct offer_s {
  offer_t *next, *prev; /* c->offers, while listed */
  client_t *c;
  uv_fs_t req;      /* the fs request in flight, if busy */
  uv_file fd;       /* the open file, or -1 */
  uint64_t size;    /* bytes to send */
  uint64_t expires; /* uv_now() after which the token is void */
  unsigned listed : 1;
  unsigned busy : 1;  /* req is in flight */
  unsigned dead : 1;  /* to be freed once req completes */
  unsigned ready : 1; /* SERVE-OK sent */
  char token[CHAT_TOKEN_LEN + 1];
  char requester[CHAT_NAME_MAX + 1];
  char file[]; /* the name asked for */
};

struct sender_s {
  chat_stream_t stream; /* first member: the connection from the requester */
  sender_t *next, *prev;
  client_t *c;
  offer_t *offer; /* the offer its token claimed, or NULL */
  uv_fs_t req;    /* the read in flight */
  chat_buf_t *chunk;
  sha256_t *sha;
  uint64_t offset;   /* bytes read from the file so far */
  uint64_t deadline; /* uv_now() by which something must happen */
  uint64_t born;     /* uv_now() when accepted */
  int refs;          /* the stream, plus a read in flight */
  unsigned done : 1;
  unsigned reading : 1;               /* req is in flight */
  unsigned handshake : 1;             /* no valid token yet: nhandshakes */
  unsigned slot : 1;                  /* claimed an offer: nsenders */
  char relay_key[CHAT_TOKEN_LEN + 1]; /* outgoing relay leg: its key */
  char addr[64]; /* the peer's address without the port (accepted only) */
};

static void offer_destroy(offer_t *o);

/* ---- offers ------------------------------------------------------------- */

static void serve_fail(client_t *c, const char *token, const char *code,
                       const char *text) {
  char line[256];
  int n = snprintf(line, sizeof(line), "%cSERVE-FAIL %s %s %s",
                   CHAT_CONTROL_CHAR, token, code, text);

  client_send_line(c, line, (size_t)n);
}

static void offer_fail(offer_t *o, const char *code, const char *text) {
  serve_fail(o->c, o->token, code, text);
  offer_destroy(o);
}

/* Maps a libuv error on opening a shared file to a SERVE-FAIL code. */
static void offer_fail_err(offer_t *o, int err) {
  if (err == UV_ENOENT || err == UV_ENOTDIR)
    offer_fail(o, "no-such-file", "the owner has no such file");
  else if (err == UV_ELOOP || err == UV_EISDIR)
    offer_fail(o, "not-a-file", "that is not a regular file");
  else
    offer_fail(o, "unreadable", chat_strerror(err));
}

static void on_offer_closed(uv_fs_t *req) {
  offer_t *o = req->data;

  uv_fs_req_cleanup(req);
  free(o);
}

/* Forgets the offer: off the list, file closed, memory freed, each as soon
 * as nothing is in flight. */
static void offer_destroy(offer_t *o) {
  client_t *c = o->c;

  if (o->listed) {
    LIST_DEL(c->offers, o);
    o->listed = 0;
    c->noffers--;
  }
  o->dead = 1;
  if (o->busy)
    return; /* the callback in flight comes back here */
  if (o->fd >= 0) {
    uv_file fd = o->fd;
    o->fd = -1;
    o->busy = 1;
    if (uv_fs_close(c->loop, &o->req, fd, on_offer_closed) == 0)
      return;
    o->busy = 0;
  }
  free(o);
}

/* Ends the callback of an offer's fs request; 0 when the offer lives on. */
static int offer_req_done(offer_t *o) {
  uv_fs_req_cleanup(&o->req);
  o->busy = 0;
  if (o->dead) {
    offer_destroy(o);
    return -1;
  }
  return 0;
}

static void on_offer_stat(uv_fs_t *req) {
  offer_t *o = req->data;
  int rc = (int)req->result;
  uint64_t mode = req->statbuf.st_mode, size = req->statbuf.st_size;

  if (offer_req_done(o) != 0)
    return;
  if (rc < 0) {
    offer_fail_err(o, rc);
    return;
  }
  if ((mode & S_IFMT) != S_IFREG) {
    offer_fail(o, "not-a-file", "that is not a regular file");
    return;
  }
  o->size = size;
  o->ready = 1;
  o->expires = uv_now(o->c->loop) + CLIENT_OFFER_TTL_MS;
  {
    char line[64];
    int n = snprintf(line, sizeof(line), "%cSERVE-OK %s", CHAT_CONTROL_CHAR,
                     o->token);
    client_send_line(o->c, line, (size_t)n);
  }
}

static void on_offer_open(uv_fs_t *req) {
  offer_t *o = req->data;
  int rc = (int)req->result;

  if (rc >= 0)
    o->fd = rc; /* recorded first, so a dead offer still closes it */
  if (offer_req_done(o) != 0)
    return;
  if (rc < 0) {
    offer_fail_err(o, rc);
    return;
  }
  o->busy = 1;
  rc = uv_fs_fstat(o->c->loop, &o->req, o->fd, on_offer_stat);
  if (rc != 0) {
    o->busy = 0;
    offer_fail_err(o, rc);
  }
}

/* The resolved path must name an entry directly inside the share. */
static int inside_share(const char *share, const char *path) {
  size_t n = strlen(share);

  if (n == 1)
    n = 0; /* the share is "/" */
  return strncmp(path, share, n) == 0 && path[n] == '/' &&
         path[n + 1] != '\0' && strchr(path + n + 1, '/') == NULL;
}

static void on_offer_realpath(uv_fs_t *req) {
  offer_t *o = req->data;
  int rc = (int)req->result;
  char *path = NULL;

  if (rc == 0 && req->ptr != NULL)
    path = strdup(req->ptr);
  if (offer_req_done(o) != 0) {
    free(path);
    return;
  }
  if (rc < 0 || path == NULL) {
    offer_fail_err(o, rc < 0 ? rc : UV_ENOMEM);
    return;
  }
  if (!inside_share(o->c->share_real, path)) {
    free(path);
    offer_fail(o, "not-a-file", "that file leads outside the shared folder");
    return;
  }
  /* O_NOFOLLOW: the resolved path holds no link, so none may appear now;
   * O_NONBLOCK: a FIFO must not hang the open. */
  o->busy = 1;
  rc = uv_fs_open(o->c->loop, &o->req, path,
                  UV_FS_O_RDONLY | UV_FS_O_NOFOLLOW | UV_FS_O_NONBLOCK, 0,
                  on_offer_open);
  free(path);
  if (rc != 0) {
    o->busy = 0;
    offer_fail_err(o, rc);
  }
}

/* What one requester holds: its offers plus the senders still streaming
 * to it. A sender that wrote its digest no longer counts: the requester
 * may already have its file and ask for the next one (it asks again when
 * one of its transfers from us ends), before our side has closed. */
static unsigned requester_load(client_t *c, const char *name, size_t len) {
  unsigned n = 0;

  for (offer_t *o = c->offers; o != NULL; o = o->next)
    if (chat_name_equal(o->requester, strlen(o->requester), name, len))
      n++;
  for (sender_t *s = c->senders; s != NULL; s = s->next)
    if (s->slot && !s->done &&
        chat_name_equal(s->offer->requester, strlen(s->offer->requester), name,
                        len))
      n++;
  return n;
}

/* The most one requester may hold: half the transfer slots, at least 1. */
static unsigned requester_max(const client_t *c) {
  unsigned n = c->cfg.max_transfers / 2;

  return n > 0 ? n : 1;
}

/* Drops the oldest offer to make room for a new one. Its requester already
 * has its token, if any: the token is void from now on. */
static void offer_drop_oldest(client_t *c) {
  offer_t *o = c->offers;

  if (o == NULL)
    return;
  while (o->next != NULL)
    o = o->next; /* the list is newest first */
  if (!o->ready)
    serve_fail(c, o->token, "busy", "the owner has too many requests waiting");
  offer_destroy(o);
}

void serve_on_serve(client_t *c, const char *args, size_t len) {
  const char *f[3];
  size_t fl[3];
  char token[CHAT_TOKEN_LEN + 1], *path;
  offer_t *o;
  int rc;

  if (chat_args_split(args, len, 3, 1, f, fl) != 3 ||
      chat_token_check(f[0], fl[0]) != 0 || chat_name_check(f[1], fl[1]) != 0)
    return; /* not from a server we understand: ignore */
  memcpy(token, f[0], fl[0]);
  token[fl[0]] = '\0';
  if (c->exiting) {
    serve_fail(c, token, "busy", "the owner is leaving");
    return;
  }
  if (chat_filename_check(f[2], fl[2]) != 0) {
    serve_fail(c, token, "bad-name", "that file name is not allowed");
    return;
  }
  if (requester_load(c, f[1], fl[1]) >= requester_max(c)) {
    char text[96];
    snprintf(text, sizeof(text), "%.*s has too many uncollected requests",
             (int)fl[1], f[1]);
    serve_fail(c, token, "busy", text);
    return;
  }
  if (c->noffers >= 4 * c->cfg.max_transfers)
    offer_drop_oldest(c);
  o = calloc(1, sizeof(*o) + fl[2] + 1);
  path = malloc(strlen(c->share_real) + fl[2] + 2);
  if (o == NULL || path == NULL) {
    free(o);
    free(path);
    serve_fail(c, token, "busy", "the owner is out of memory");
    return;
  }
  o->c = c;
  o->fd = -1;
  o->req.data = o;
  memcpy(o->token, token, sizeof(token));
  memcpy(o->requester, f[1], fl[1]);
  memcpy(o->file, f[2], fl[2]);
  sprintf(path, "%s/%s", c->share_real, o->file);
  LIST_ADD(c->offers, o);
  o->listed = 1;
  c->noffers++;
  o->busy = 1;
  rc = uv_fs_realpath(c->loop, &o->req, path, on_offer_realpath);
  free(path);
  if (rc != 0) {
    o->busy = 0;
    offer_fail_err(o, rc);
  }
}

/* ---- senders ------------------------------------------------------------- */

/* The connection leaves the handshake budget (it claimed an offer, or is
 * being closed). */
static void handshake_end(sender_t *s) {
  if (s->handshake) {
    s->handshake = 0;
    s->c->nhandshakes--;
  }
}

static void sender_release(sender_t *s) {
  client_t *c = s->c;

  if (--s->refs > 0)
    return;
  LIST_DEL(c->senders, s);
  handshake_end(s);
  if (s->slot)
    c->nsenders--;
  if (s->offer != NULL)
    offer_destroy(s->offer);
  if (s->sha != NULL)
    sha256_free(s->sha);
  chat_buf_unref(s->chunk);
  free(s);
}

static void on_sender_closed(chat_stream_t *st) {
  sender_release((sender_t *)st);
}

/* Stops the transfer; reason NULL means quietly (we are exiting). */
static void sender_abort(sender_t *s, const char *reason) {

  if (s->done)
    return;
  s->done = 1;
  if (reason != NULL && s->offer != NULL) {
    client_printf(s->c, "sending %s to %s failed: %s", s->offer->file,
                  s->offer->requester, reason);
  }
  chat_stream_close(&s->stream, on_sender_closed);
}

static void next_chunk(sender_t *s);

static void on_chunk_read(uv_fs_t *req) {
  sender_t *s = req->data;
  ssize_t n = req->result;
  int rc;

  uv_fs_req_cleanup(req);
  s->reading = 0;
  if (s->done) {
    sender_release(s);
    return;
  }
  s->refs--;
  if (n <= 0) {
    sender_abort(s, n < 0 ? chat_strerror((int)n) : "the file shrank");
    return;
  }
  sha256_update(s->sha, s->chunk->data, (size_t)n);
  s->offset += (uint64_t)n;
  s->chunk->len = (size_t)n;
  s->deadline = uv_now(s->c->loop) + s->c->cfg.stall_s * 1000ull;
  rc = chat_stream_write(&s->stream, s->chunk);
  if (rc != 0) {
    sender_abort(s, chat_strerror(rc));
    return;
  }
  if (s->stream.queued <= CLIENT_CHUNK)
    next_chunk(s); /* read ahead; with two queued, the drain resumes us */
}

static void finish_send(sender_t *s) {
  unsigned char digest[SHA256_BYTES];

  sha256_final(s->sha, digest);
  chat_stream_write_copy(&s->stream, digest, sizeof(digest));
  s->done = 1;
  s->deadline = uv_now(s->c->loop) + s->c->cfg.stall_s * 1000ull;
  client_printf(s->c, "sent %s to %s", s->offer->file, s->offer->requester);
  chat_stream_end(&s->stream, on_sender_closed);
}

/* Reads the next chunk, or finishes with the digest. */
static void next_chunk(sender_t *s) {
  uint64_t left = s->offer->size - s->offset;
  size_t n = left < CLIENT_CHUNK ? (size_t)left : CLIENT_CHUNK;
  uv_buf_t b;
  int rc;

  if (s->done || s->reading)
    return; /* one read at a time: a drain may come while one is out */
  if (left == 0) {
    finish_send(s);
    return;
  }
  if (s->chunk != NULL && chat_buf_shared(s->chunk)) {
    chat_buf_unref(s->chunk); /* still queued somewhere: take a fresh one */
    s->chunk = NULL;
  }
  if (s->chunk == NULL && (s->chunk = chat_buf_new(CLIENT_CHUNK)) == NULL) {
    sender_abort(s, "out of memory");
    return;
  }
  b = uv_buf_init(s->chunk->data, (unsigned)n);
  s->req.data = s;
  rc = uv_fs_read(s->c->loop, &s->req, s->offer->fd, &b, 1, (int64_t)s->offset,
                  on_chunk_read);
  if (rc != 0) {
    sender_abort(s, chat_strerror(rc));
    return;
  }
  s->reading = 1;
  s->refs++;
}

static void on_sender_drain(chat_stream_t *st) {
  sender_t *s = (sender_t *)st;

  s->deadline = uv_now(s->c->loop) + s->c->cfg.stall_s * 1000ull;
  next_chunk(s);
}

/* Finds a ready, unexpired offer for token and takes it off the list. */
static offer_t *claim_offer(client_t *c, const char *token) {
  uint64_t now = uv_now(c->loop);

  for (offer_t *o = c->offers; o != NULL; o = o->next) {
    if (o->ready && now <= o->expires && chat_token_equal(o->token, token)) {
      LIST_DEL(c->offers, o);
      o->listed = 0;
      c->noffers--;
      return o;
    }
  }
  return NULL;
}

static uint64_t header_deadline(client_t *c) {
  return uv_now(c->loop) + c->cfg.header_s * 1000ull;
}

static void sender_refuse(sender_t *s, const char *line) {
  s->done = 1;
  s->deadline = header_deadline(s->c);
  chat_stream_write_copy(&s->stream, line, strlen(line));
  chat_stream_end(&s->stream, on_sender_closed);
}

static void on_sender_line(chat_stream_t *st, const char *line, size_t len) {
  sender_t *s = (sender_t *)st;
  char token[CHAT_TOKEN_LEN + 1], hdr[48];
  offer_t *o;
  int n;

  if (s->done || s->offer != NULL)
    return; /* nothing is expected after the header */
  if (len > 0 && line[0] == CHAT_CONTROL_CHAR) {
    sender_abort(s, NULL); /* RELAY-FAIL: the requester hears it too */
    return;
  }
  if (chat_xfer_parse_request(line, len, token) != 0) {
    sender_refuse(s, "ERR bad-request expected CHATFILE 1 <token>\n");
    return;
  }
  o = claim_offer(s->c, token);
  if (o == NULL) {
    sender_refuse(s, "ERR bad-token unknown, expired or used token\n");
    return;
  }
  if (s->c->nsenders >= s->c->cfg.max_transfers) {
    offer_destroy(o); /* honoured once: with this answer */
    sender_refuse(s, "ERR busy the owner has too many transfers\n");
    return;
  }
  /* Only now does the connection take a transfer slot. */
  handshake_end(s);
  s->offer = o;
  s->slot = 1;
  s->c->nsenders++;
  s->sha = sha256_new();
  if (s->sha == NULL) {
    sender_abort(s, "out of memory");
    return;
  }
  client_printf(s->c, "sending %s to %s", s->offer->file, s->offer->requester);
  n = snprintf(hdr, sizeof(hdr), "OK %llu\n",
               (unsigned long long)s->offer->size);
  chat_stream_write_copy(&s->stream, hdr, (size_t)n);
  s->deadline = uv_now(s->c->loop) + s->c->cfg.stall_s * 1000ull;
  chat_stream_set_drain_cb(&s->stream, on_sender_drain);
  next_chunk(s);
}

static void on_sender_event(chat_stream_t *st, int status) {
  sender_t *s = (sender_t *)st;

  if (status == CHAT_ELINE) {
    if (s->offer == NULL)
      sender_refuse(s, "ERR bad-request header line too long\n");
    return;
  }
  if (status == UV_EOF && s->offer != NULL)
    return; /* a half-close after the header: the file still goes out */
  sender_abort(s, status == UV_EOF ? "the requester closed the connection"
                                   : chat_strerror(status));
}

/* Closes a connection at once, whatever state it is in. */
static void sender_drop(sender_t *s) {
  handshake_end(s);
  if (s->done) /* ending already */
    chat_stream_close(&s->stream, on_sender_closed);
  else
    sender_abort(s, NULL);
}

/* The peer's address without its port: "1.2.3.4" or "::1" ("?" when it
 * cannot be had: those share one budget). */
static void peer_addr(sender_t *s) {
  chat_stream_peer_ip(&s->stream, s->addr, sizeof(s->addr));
}

/* Makes room among the handshakes from addr (all of them when addr is NULL)
 * for one more, within budget: the oldest go first. One younger than
 * CLIENT_HANDSHAKE_GRACE_MS is spared, so that requesters connecting at the
 * same moment (from one address, or while a flood goes on) all have the
 * time to present their tokens, unless that would leave twice the budget:
 * then the oldest go regardless. Nothing is freed here (only closed), so
 * the walk stays valid. */
static void handshake_trim(client_t *c, const char *addr, unsigned budget) {
  uint64_t now = uv_now(c->loop);
  unsigned n = 0, i = 0, over, hard;
  sender_t *s;

  for (s = c->senders; s != NULL; s = s->next)
    if (s->handshake && (addr == NULL || strcmp(s->addr, addr) == 0))
      n++;
  if (n < budget)
    return;
  over = n - budget + 1;                           /* should go */
  hard = n >= 2 * budget ? n - 2 * budget + 1 : 0; /* must go */
  for (s = c->senders; s != NULL; s = s->next) {
    if (!s->handshake || (addr != NULL && strcmp(s->addr, addr) != 0))
      continue;
    i++; /* the list is newest first: the last `over` are the oldest */
    if (i > n - over &&
        (i > n - hard || now - s->born >= CLIENT_HANDSHAKE_GRACE_MS))
      sender_drop(s);
  }
}

static void on_file_connection(chat_listener_t *l, int status) {
  client_t *c = l->data;
  sender_t *s;

  if (status < 0)
    return;
  s = calloc(1, sizeof(*s));
  if (s == NULL ||
      chat_stream_init_tcp(c->loop, &s->stream, CHAT_XFER_HEADER_MAX) != 0) {
    free(s);
    return;
  }
  s->c = c;
  s->refs = 1;
  LIST_ADD(c->senders, s);
  if (chat_listener_accept(l, &s->stream) != 0 || c->exiting) {
    s->done = 1;
    chat_stream_close(&s->stream, on_sender_closed);
    return;
  }
  /* No transfer slot until it presents a valid token: a handshake, under
   * its own budget and a short deadline. */
  peer_addr(s);
  handshake_trim(c, s->addr, CLIENT_HANDSHAKES_PER_ADDR);
  handshake_trim(c, NULL, c->cfg.max_handshakes);
  s->born = uv_now(c->loop);
  s->handshake = 1;
  c->nhandshakes++;
  s->deadline = header_deadline(c);
  /* TLS (our requesters) or the plain header (a script with nc). */
  if (c->cfg.file_tls != NULL)
    chat_stream_sniff_tls(&s->stream, c->cfg.file_tls, NULL);
  chat_stream_read_start(&s->stream, on_sender_line, on_sender_event);
}

/* ---- relayed: we connect out to the server ---------------------------------
 */

static void on_relay_connected(chat_stream_t *st, int status) {
  sender_t *s = (sender_t *)st;
  char line[64];
  int n;

  if (status == UV_ECANCELED)
    return; /* we closed it; the close callback follows */
  if (status != 0) {
    s->done = 1;
    sender_release(s); /* the connector closed the stream */
    return;
  }
  if (s->done) {
    chat_stream_close(&s->stream, on_sender_closed);
    return;
  }
  /* The key proves the leg is ours. Then the relayed connection is a file
   * connection like any other: the requester's CHATFILE line arrives
   * through it and claims the offer. */
  n = snprintf(line, sizeof(line), "%cRELAY %s serve\n", CHAT_CONTROL_CHAR,
               s->relay_key);
  chat_stream_write_copy(&s->stream, line, (size_t)n);
  /* The requester's TLS runs end to end through the relay: the server
   * copies records it cannot read. */
  if (s->c->cfg.file_tls != NULL)
    chat_stream_sniff_tls(&s->stream, s->c->cfg.file_tls, NULL);
  chat_stream_read_start(&s->stream, on_sender_line, on_sender_event);
}

/* RELAY-SERVE <token> <key> */
void serve_on_relay(client_t *c, const char *args, size_t len) {
  uint64_t now = uv_now(c->loop);
  const char *f[2];
  size_t fl[2];
  char token[CHAT_TOKEN_LEN + 1];
  sender_t *s;
  offer_t *o;

  if (chat_args_split(args, len, 2, 0, f, fl) != 2 ||
      chat_token_check(f[0], fl[0]) != 0 ||
      chat_token_check(f[1], fl[1]) != 0 || c->exiting)
    return; /* not from a server we understand: ignore */
  memcpy(token, f[0], CHAT_TOKEN_LEN);
  token[CHAT_TOKEN_LEN] = '\0';
  for (o = c->offers; o != NULL; o = o->next)
    if (o->ready && now <= o->expires && chat_token_equal(o->token, token))
      break;
  if (o == NULL) {
    /* Unknown, lapsed or claimed directly: say so, and the server fails
     * the requester's relay leg at once instead of letting it wait. */
    char line[128];
    int n = snprintf(line, sizeof(line),
                     "%cRELAY-SERVE-FAIL %s bad-token no such offer: "
                     "expired or already used",
                     CHAT_CONTROL_CHAR, token);
    client_send_line(c, line, (size_t)n);
    return;
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return;
  s->c = c;
  s->refs = 1;
  s->deadline = now + c->cfg.header_s * 1000ull;
  memcpy(s->relay_key, f[1], CHAT_TOKEN_LEN);
  LIST_ADD(c->senders, s);
  if (chat_connect(c->loop, &s->stream, c->cfg.host, c->cfg.port,
                   CHAT_XFER_HEADER_MAX, on_relay_connected) != 0) {
    s->done = 1;
    sender_release(s);
  }
}

/* ---- start, tick, stop --------------------------------------------------- */

int serve_start(client_t *c) {
  int rc;

  if (c->cfg.file_port == 0)
    return 0;
  c->files.data = c;
  rc = chat_listen(c->loop, &c->files, c->cfg.file_port, 128,
                   on_file_connection);
  if (rc != 0) {
    /* We announce FILEPORT 0, so requesters go through the server's relay
     * or hear from it that it does not relay: we cannot know which. */
    client_eprintf("chat-client: cannot listen on port %d (%s); others can "
                   "get your files only through the server's relay, if it "
                   "relays",
                   c->cfg.file_port, chat_strerror(rc));
    return rc;
  }
  c->serving = 1;
  return 0;
}

void serve_tick(client_t *c, uint64_t now) {
  offer_t *o, *onext;
  sender_t *s, *snext;

  for (o = c->offers; o != NULL; o = onext) {
    onext = o->next;
    if (o->ready && now > o->expires)
      offer_destroy(o); /* never claimed: the token lapses */
  }
  for (s = c->senders; s != NULL; s = snext) {
    snext = s->next;
    if (now <= s->deadline)
      continue;
    if (s->done) /* ending, but the requester does not read the rest */
      chat_stream_close(&s->stream, on_sender_closed);
    else
      sender_abort(s, s->offer != NULL
                          ? "stalled: the requester stopped reading"
                          : NULL);
  }
}

void serve_stop(client_t *c) {
  sender_t *s, *snext;

  while (c->offers != NULL)
    offer_destroy(c->offers);
  for (s = c->senders; s != NULL; s = snext) {
    snext = s->next;
    if (s->done) /* ending: do not wait for a slow requester at exit */
      chat_stream_close(&s->stream, on_sender_closed);
    else
      sender_abort(s, NULL);
  }
  if (c->serving) {
    c->serving = 0;
    chat_listener_close(&c->files, NULL);
  }
}
