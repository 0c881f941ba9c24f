/* The requester side of file transfers.
 *
 * `f` creates a hidden temporary file in the download directory, then asks
 * the server (GET). On GET-OK we connect to the owner, present the token,
 * read "OK <size>", and switch the connection to raw bytes: file bytes go
 * through a pair of buffers into uv_fs_write (reading pauses while a full
 * buffer waits for the disk), the SHA-256 is computed as they arrive, and
 * the 32-byte trailer is compared at the end. Only a verified file is
 * fsync'ed and renamed to its real name; every failure closes and unlinks
 * the temporary file.
 *
 * An owner lets one requester hold only half its transfer slots (see
 * serve.c), so a GET answered "busy" while another of our transfers from
 * the same owner is in flight is not a failure: the fetch is *parked*
 * (silently, its temporary file kept, still counted in nfetches) and asks
 * again, with a fresh id, when one of our transfers from that owner ends.
 * Busy is reported only when none is in flight.
 *
 * Invariants: one fs request in flight per fetch; a fetch is freed when its
 * stream is closed and its fs work (write, close, unlink or rename) is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "list.h"
#include "sha256.h"

#define FETCH_BUF (CLIENT_CHUNK + CHAT_STREAM_READ_MAX) /* a chunk + a read */

enum {
  ST_OPENING,    /* creating the temporary file */
  ST_ASKED,      /* GET sent, waiting for the server */
  ST_PARKED,     /* the owner was busy: GET again when another one ends */
  ST_CONNECTING, /* connecting to the owner */
  ST_HEADER,     /* waiting for "OK <size>" */
  ST_DATA,       /* receiving bytes */
  ST_FINISHING,  /* fsync, close, rename */
  ST_FAILED,     /* cleaning up after a failure */
  ST_DONE
};

struct fetch_s {
  chat_stream_t stream; /* first member: the connection to the owner */
  fetch_t *next, *prev;
  client_t *c;
  uv_fs_t req; /* the one fs request in flight, if busy */
  uv_file fd;  /* the temporary file, or -1 */
  unsigned id; /* our number for GET */
  int state;
  int refs;             /* 1 for the fetch itself, 1 while the stream is open */
  unsigned busy : 1;    /* req is in flight */
  unsigned stopped : 1; /* reading paused for the disk */
  unsigned quiet : 1;   /* failing because we exit: print nothing */
  unsigned relayed : 1; /* connected (or connecting) through the server */
  unsigned relay_next : 1;  /* relay once the cancelled direct attempt closed */
  unsigned stream_open : 1; /* stream is connecting or connected */
  uint64_t size, got;       /* announced size, file bytes received */
  uint64_t written;         /* bytes written to the temporary file */
  uint64_t deadline;        /* uv_now() by which something must happen */
  uint64_t parked_seq;      /* order of parking: the oldest asks first */
  sha256_t *sha;
  char *rbuf, *wbuf; /* filling, and being written */
  size_t rlen, wlen, woff;
  unsigned char trailer[CHAT_DIGEST_BYTES];
  size_t trailer_got;
  char token[CHAT_TOKEN_LEN + 1];
  char fp[CHAT_TLS_FP_MAX]; /* the owner's file key (GET-OK), or "" */
  char *tmp;                /* temporary path, once created */
  char *dest;               /* final path */
  char owner[CHAT_NAME_MAX + 1];
  char file[]; /* the name asked for */
};

static void cleanup_step(fetch_t *f);
static void pump(fetch_t *f);
static void owner_slot_freed(fetch_t *ended);

static void release(fetch_t *f) {
  client_t *c = f->c;

  if (--f->refs > 0)
    return;
  LIST_DEL(c->fetches, f);
  c->nfetches--;
  if (f->sha != NULL)
    sha256_free(f->sha);
  free(f->rbuf);
  free(f->wbuf);
  free(f->tmp);
  free(f->dest);
  free(f);
}

static void stall_reset(fetch_t *f) {
  f->deadline = uv_now(f->c->loop) + f->c->cfg.stall_s * 1000ull;
}

/* The file and owner names were typed by the user and may be anything, the
 * reason may quote the server or the owner: client_printf() neutralises
 * them all. */
static void print_outcome(fetch_t *f, const char *reason) {
  if (reason == NULL)
    client_printf(f->c, "received %s (%llu bytes) from %s, SHA-256 verified",
                  f->file, (unsigned long long)f->size, f->owner);
  else
    client_printf(f->c, "file transfer of %s from %s failed: %s", f->file,
                  f->owner, reason);
}

static void start_relay(fetch_t *f);
static void fall_back(fetch_t *f, const char *why);

#define TEXT_SHOWN_MAX 100 /* bytes of a peer's text put in an outcome */

/* How many bytes of text to show: all, or at most TEXT_SHOWN_MAX cut
 * before a UTF-8 character, not inside one (then *cut is "..."). */
static int shown_len(const char *text, size_t len, const char **cut) {
  size_t n = len;

  *cut = "";
  if (n > TEXT_SHOWN_MAX) {
    n = TEXT_SHOWN_MAX;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
      n--;
    *cut = "...";
  }
  return (int)n;
}

static void on_stream_closed(chat_stream_t *st) {
  fetch_t *f = (fetch_t *)st;

  f->stream_open = 0;
  if (f->relay_next && f->state == ST_CONNECTING) {
    f->relay_next = 0;
    f->refs--;
    start_relay(f); /* the timed-out direct attempt is gone: try the relay */
    return;
  }
  release(f);
}

static void close_stream(fetch_t *f) {
  if (f->stream_open && !chat_stream_is_closing(&f->stream))
    chat_stream_close(&f->stream, on_stream_closed);
}

/* Fails the transfer: says why, then removes every trace of it. */
static void fetch_fail(fetch_t *f, const char *reason) {
  if (f->state == ST_FAILED || f->state == ST_DONE)
    return;
  if (!f->quiet)
    print_outcome(f, reason);
  close_stream(f);
  f->state = ST_FAILED;
  if (!f->quiet)
    owner_slot_freed(f);
  if (!f->busy)
    cleanup_step(f);
}

/* ---- cleanup after failure: close, unlink, release ---------------------- */

static void on_cleanup_done(uv_fs_t *req) {
  fetch_t *f = req->data;

  uv_fs_req_cleanup(req);
  f->busy = 0;
  cleanup_step(f);
}

static void cleanup_step(fetch_t *f) {
  uv_loop_t *loop = f->c->loop;

  f->req.data = f;
  if (f->fd >= 0) {
    uv_file fd = f->fd;
    f->fd = -1;
    if (uv_fs_close(loop, &f->req, fd, on_cleanup_done) == 0) {
      f->busy = 1;
      return;
    }
  }
  if (f->tmp != NULL) {
    char *tmp = f->tmp;
    int rc;
    f->tmp = NULL;
    rc = uv_fs_unlink(loop, &f->req, tmp, on_cleanup_done);
    free(tmp); /* libuv keeps its own copy of the path */
    if (rc == 0) {
      f->busy = 1;
      return;
    }
  }
  release(f);
}

/* Ends the callback of the fetch's fs request. Returns non-zero when the
 * fetch failed meanwhile: the callback stops and cleanup goes on. */
static int fs_finished(fetch_t *f, uv_fs_t *req) {
  uv_fs_req_cleanup(req);
  f->busy = 0;
  if (f->state != ST_FAILED)
    return 0;
  cleanup_step(f);
  return 1;
}

/* ---- success: fsync, close, rename -------------------------------------- */

static void on_renamed(uv_fs_t *req) {
  fetch_t *f = req->data;
  int rc = (int)req->result;

  if (fs_finished(f, req))
    return;
  if (rc < 0) {
    fetch_fail(f, chat_strerror(rc));
    return;
  }
  free(f->tmp);
  f->tmp = NULL;
  f->state = ST_DONE;
  print_outcome(f, NULL);
  owner_slot_freed(f);
  release(f);
}

static void on_final_close(uv_fs_t *req) {
  fetch_t *f = req->data;
  int rc = (int)req->result;

  if (fs_finished(f, req))
    return;
  if (rc < 0) {
    fetch_fail(f, chat_strerror(rc));
  } else if (uv_fs_rename(f->c->loop, &f->req, f->tmp, f->dest, on_renamed) ==
             0) {
    f->busy = 1;
  } else {
    fetch_fail(f, "cannot rename the temporary file");
  }
}

static void on_chmoded(uv_fs_t *req) {
  fetch_t *f = req->data;
  uv_file fd = f->fd;

  /* A failed chmod leaves the file private (0600): not worth failing. */
  if (fs_finished(f, req))
    return;
  f->fd = -1;
  if (uv_fs_close(f->c->loop, &f->req, fd, on_final_close) == 0)
    f->busy = 1;
  else
    fetch_fail(f, "cannot close the temporary file");
}

static void on_fsynced(uv_fs_t *req) {
  fetch_t *f = req->data;
  int rc = (int)req->result;

  if (fs_finished(f, req))
    return;
  if (rc < 0) {
    fetch_fail(f, chat_strerror(rc));
    return;
  }
  /* mkstemp made it 0600 while in flight; a finished file gets the usual
   * permissions. */
  if (uv_fs_fchmod(f->c->loop, &f->req, f->fd, 0644, on_chmoded) == 0)
    f->busy = 1;
  else
    fetch_fail(f, "cannot set the file's permissions");
}

/* Every byte is on disk and the trailer is in: verify, then commit. */
static void finish(fetch_t *f) {
  unsigned char digest[SHA256_BYTES];

  sha256_final(f->sha, digest);
  close_stream(f);
  if (memcmp(digest, f->trailer, sizeof(digest)) != 0) {
    fetch_fail(f, "digest mismatch: the file arrived corrupted");
    return;
  }
  f->state = ST_FINISHING;
  f->req.data = f;
  /* fsync before rename: a crash must not leave a short file under the
   * final name. */
  if (uv_fs_fsync(f->c->loop, &f->req, f->fd, on_fsynced) == 0)
    f->busy = 1;
  else
    fetch_fail(f, "cannot sync the file");
}

/* ---- receiving ----------------------------------------------------------- */

static void on_fetch_data(chat_stream_t *st, const char *data, size_t len);
static void on_fetch_line(chat_stream_t *st, const char *line, size_t len);
static void on_fetch_event(chat_stream_t *st, int status);

static void on_written(uv_fs_t *req) {
  fetch_t *f = req->data;
  ssize_t n = req->result;

  if (fs_finished(f, req))
    return;
  if (n < 0) {
    char why[128];
    snprintf(why, sizeof(why), "cannot write the file: %s",
             chat_strerror((int)n));
    fetch_fail(f, why);
    return;
  }
  f->written += (uint64_t)n;
  f->woff += (size_t)n;
  if (f->woff == f->wlen)
    f->woff = f->wlen = 0;
  pump(f);
}

/* Starts the next disk write, pauses or resumes reading, finishes. */
static void pump(fetch_t *f) {
  char *t;
  uv_buf_t b;

  if (f->state != ST_DATA)
    return;
  if (!f->busy && f->wlen == 0 && f->rlen > 0) {
    t = f->wbuf;
    f->wbuf = f->rbuf;
    f->rbuf = t;
    f->wlen = f->rlen;
    f->rlen = 0;
  }
  if (!f->busy && f->wlen > 0) {
    b = uv_buf_init(f->wbuf + f->woff, (unsigned)(f->wlen - f->woff));
    f->req.data = f;
    if (uv_fs_write(f->c->loop, &f->req, f->fd, &b, 1, (int64_t)f->written,
                    on_written) != 0) {
      fetch_fail(f, "cannot write the file");
      return;
    }
    f->busy = 1;
  }
  /* rbuf has room for CLIENT_CHUNK plus one read: stop taking bytes while
   * the disk is behind, resume once it caught up. */
  if (f->rlen >= CLIENT_CHUNK && !f->stopped) {
    f->stopped = 1;
    chat_stream_read_stop(&f->stream);
  } else if (f->rlen < CLIENT_CHUNK && f->stopped) {
    f->stopped = 0;
    chat_stream_read_start(&f->stream, on_fetch_line, on_fetch_event);
  }
  if (!f->busy && f->got == f->size && f->trailer_got == CHAT_DIGEST_BYTES)
    finish(f);
}

static void on_fetch_data(chat_stream_t *st, const char *data, size_t len) {
  fetch_t *f = (fetch_t *)st;
  uint64_t want = f->size - f->got;
  size_t take = len < want ? len : (size_t)want;
  size_t t;

  if (f->state != ST_DATA)
    return;
  stall_reset(f);
  if (take > FETCH_BUF - f->rlen) {
    fetch_fail(f, "internal error: receive buffer overrun"); /* never */
    return;
  }
  if (take > 0) {
    memcpy(f->rbuf + f->rlen, data, take);
    f->rlen += take;
    f->got += take;
    sha256_update(f->sha, data, take);
    data += take;
    len -= take;
  }
  t = CHAT_DIGEST_BYTES - f->trailer_got;
  t = len < t ? len : t;
  memcpy(f->trailer + f->trailer_got, data, t);
  f->trailer_got += t;
  if (len > t) {
    fetch_fail(f, "protocol error: bytes after the end of the file");
    return;
  }
  pump(f);
}

static void on_fetch_line(chat_stream_t *st, const char *line, size_t len) {
  fetch_t *f = (fetch_t *)st;
  const char *code, *text;
  size_t code_len, text_len;
  char why[192];
  int rc;

  if (f->state != ST_HEADER)
    return;
  if (len > 0 && line[0] == CHAT_CONTROL_CHAR) {
    chat_line_t l;
    const char *a[2];
    size_t al[2];
    chat_line_parse(line, len, &l);
    /* The server's words, neutralised when printed. */
    if (chat_args_split(l.text, l.text_len, 2, 1, a, al) == 2) {
      const char *cut;
      int n = shown_len(a[1], al[1], &cut);
      snprintf(why, sizeof(why), "the relay failed: %.*s%s", n, a[1], cut);
    } else {
      snprintf(why, sizeof(why), "the relay failed");
    }
    fetch_fail(f, why);
    return;
  }
  rc = chat_xfer_parse_reply(line, len, &f->size, &code, &code_len, &text,
                             &text_len);
  if (rc == CHAT_EREFUSED) {
    /* The owner's words, neutralised when printed. */
    if (text_len > 0) {
      const char *cut;
      int n = shown_len(text, text_len, &cut);
      snprintf(why, sizeof(why), "refused by the owner (%.*s: %.*s%s)",
               (int)(code_len < 32 ? code_len : 32), code, n, text, cut);
    } else {
      snprintf(why, sizeof(why), "refused by the owner (%.*s)",
               (int)(code_len < 32 ? code_len : 32), code);
    }
    fetch_fail(f, why);
    return;
  }
  if (rc != 0) {
    fetch_fail(f, "protocol error: bad answer from the owner");
    return;
  }
  f->rbuf = malloc(FETCH_BUF);
  f->wbuf = malloc(FETCH_BUF);
  f->sha = sha256_new();
  if (f->rbuf == NULL || f->wbuf == NULL || f->sha == NULL) {
    fetch_fail(f, "out of memory");
    return;
  }
  f->state = ST_DATA;
  stall_reset(f);
  chat_stream_read_raw(&f->stream, on_fetch_data);
  pump(f); /* a 0-byte file may be complete already */
}

static void on_fetch_event(chat_stream_t *st, int status) {
  fetch_t *f = (fetch_t *)st;
  char why[160];

  if (status == CHAT_ELINE) {
    fetch_fail(f, "protocol error: header line too long");
    return;
  }
  if (f->state == ST_DATA && f->got == f->size &&
      f->trailer_got == CHAT_DIGEST_BYTES)
    return; /* complete; the disk may still be catching up */
  if (f->state == ST_HEADER && !f->relayed && f->c->cfg.transfer == XFER_AUTO) {
    /* Closed before any answer: an owner over its handshake budget (a
     * flood from our address, say) closes so. The relay may still work. */
    fall_back(f, status == UV_EOF ? "closed before it answered"
                                  : chat_strerror(status));
    f->state = ST_CONNECTING;
    f->relay_next = 1; /* on_stream_closed() starts the relay */
    chat_stream_close(&f->stream, on_stream_closed);
    return;
  }
  snprintf(why, sizeof(why),
           "connection to the owner lost after %llu of %llu bytes (%s)",
           (unsigned long long)f->got, (unsigned long long)f->size,
           status == UV_EOF ? "closed" : chat_strerror(status));
  fetch_fail(f, f->state == ST_DATA ? why
                                    : "connection to the owner lost (refused)");
}

/* Says once that we switch to the relay, and does. */
static void fall_back(fetch_t *f, const char *why) {
  client_printf(f->c,
                "direct connection to %s failed (%s); relaying through "
                "the server",
                f->owner, why);
}

/* The TLS handshake with the owner (directly or through the relay) ended:
 * it must hold exactly the key the server said, so no one else, the
 * server included, can read or change the file. */
static void on_owner_tls(chat_stream_t *st, int status) {
  fetch_t *f = (fetch_t *)st;
  chat_tls_peer_t p;
  char why[200];

  if (status != 0) {
    snprintf(why, sizeof(why),
             "the encrypted connection to the owner "
             "failed: %s",
             chat_strerror(status));
    fetch_fail(f, why);
    return;
  }
  if (chat_stream_tls_peer(st, &p) != 0 || strcmp(p.key_fp, f->fp) != 0) {
    fetch_fail(f, "the owner's key is not the one the server announced; "
                  "nothing was sent");
  }
}

static void on_owner_connected(chat_stream_t *st, int status) {
  fetch_t *f = (fetch_t *)st;
  char why[160];
  int n;

  if (status != 0) {
    if (status == UV_ECANCELED)
      return;  /* we closed it; the close callback follows */
    f->refs--; /* the connector closed the stream: no callback comes */
    f->stream_open = 0;
    if (!f->relayed && f->c->cfg.transfer == XFER_AUTO &&
        f->state == ST_CONNECTING) {
      fall_back(f, chat_strerror(status));
      start_relay(f);
      return;
    }
    snprintf(why, sizeof(why), "%s failed: %s%s",
             f->relayed ? "connection to the server's relay"
                        : "connection to the owner",
             chat_strerror(status),
             f->c->cfg.transfer == XFER_DIRECT
                 ? " (--transfer=direct: no relay)"
                 : "");
    fetch_fail(f, why);
    return;
  }
  if (f->state != ST_CONNECTING) {
    close_stream(f);
    return;
  }
  f->state = ST_HEADER;
  stall_reset(f);
  n = 0;
  if (f->relayed)
    n = snprintf(why, sizeof(why), "%cRELAY %s fetch\n", CHAT_CONTROL_CHAR,
                 f->token);
  if (f->fp[0] != '\0' && f->c->cfg.fetch_tls != NULL) {
    /* Through the relay, the line for the server goes first, in the
     * clear; then TLS runs end to end with the owner, and the header
     * waits in it until the owner's key checked out. */
    if (n > 0)
      chat_stream_write_copy(&f->stream, why, (size_t)n);
    if (chat_stream_start_tls(&f->stream, f->c->cfg.fetch_tls, NULL,
                              on_owner_tls) != 0) {
      fetch_fail(f, "cannot start TLS with the owner");
      return;
    }
    n = 0;
  }
  n += snprintf(why + n, sizeof(why) - (size_t)n, "%s %d %s\n", CHAT_XFER_MAGIC,
                CHAT_XFER_VERSION, f->token);
  chat_stream_write_copy(&f->stream, why, (size_t)n);
  chat_stream_read_start(&f->stream, on_fetch_line, on_fetch_event);
}

/* ---- asking, and asking again -------------------------------------------- */

/* Sends GET under a fresh id: the first time, or again after a park. */
static void send_get(fetch_t *f) {
  client_t *c = f->c;
  char line[CHAT_NAME_MAX + CHAT_FILENAME_MAX + 32];
  int n;

  f->id = c->next_fetch_id = c->next_fetch_id % 999999999u + 1;
  f->state = ST_ASKED;
  stall_reset(f);
  n = snprintf(line, sizeof(line), "%cGET %u %s %s", CHAT_CONTROL_CHAR, f->id,
               f->owner, f->file);
  client_send_line(c, line, (size_t)n);
}

static int same_owner(const fetch_t *a, const fetch_t *b) {
  return chat_name_equal(a->owner, strlen(a->owner), b->owner,
                         strlen(b->owner));
}

/* Whether another of our transfers from f's owner is in flight (being
 * opened, asked for, connected or received; parked ones wait, they are
 * not in flight): its end will free a slot at the owner. */
static int owner_in_flight(const fetch_t *f) {
  for (const fetch_t *g = f->c->fetches; g != NULL; g = g->next)
    if (g != f && g->state < ST_FAILED && g->state != ST_PARKED &&
        same_owner(f, g))
      return 1;
  return 0;
}

/* A transfer from ended's owner ended (success or failure, even before its
 * GET was sent: it counted as in flight): the oldest fetch parked for that
 * owner asks again. One asks per end; each one asked ends too, or parks
 * again only while another is in flight, so none waits for ever. */
static void owner_slot_freed(fetch_t *ended) {
  client_t *c = ended->c;
  fetch_t *oldest = NULL;

  if (c->exiting)
    return; /* every fetch is being cancelled */
  for (fetch_t *g = c->fetches; g != NULL; g = g->next)
    if (g->state == ST_PARKED && same_owner(g, ended) &&
        (oldest == NULL || g->parked_seq < oldest->parked_seq))
      oldest = g;
  if (oldest != NULL)
    send_get(oldest);
}

/* ---- the server's answer ------------------------------------------------- */

static fetch_t *find_fetch(client_t *c, const char *id, size_t len) {
  uint64_t v;

  if (chat_parse_u64(id, len, 9, &v) != 0)
    return NULL;
  for (fetch_t *f = c->fetches; f != NULL; f = f->next)
    if (f->id == v && f->state == ST_ASKED)
      return f;
  return NULL;
}

/* Our words for a GET-FAIL code; an unknown one is quoted with its text
 * into buf. */
static const char *reason_for(const char *code, size_t len, const char *text,
                              size_t text_len, char *buf, size_t cap) {
  static const struct {
    const char *code, *reason;
  } map[] = {
      {"no-such-user", "no such user"},
      {"self", "you cannot request a file from yourself"},
      {"no-file-port", "the owner does not serve files"},
      {"bad-name", "invalid file name"},
      {"no-such-file", "no such file"},
      {"not-a-file", "not a regular file in the owner's shared folder"},
      {"unreadable", "the file is unreadable"},
      {"busy", "refused: the owner is busy"},
      {"timeout", "timed out: the owner did not answer"},
      {"owner-left", "the owner left"},
  };

  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    if (strlen(map[i].code) != len || memcmp(map[i].code, code, len) != 0)
      continue;
    /* Busy has many causes: the owner's (or the server's) words say which,
     * neutralised when printed. */
    if (len == 4 && memcmp(code, "busy", 4) == 0 && text_len > 0) {
      const char *cut;
      int n = shown_len(text, text_len, &cut);
      snprintf(buf, cap, "%s (%.*s%s)", map[i].reason, n, text, cut);
      return buf;
    }
    return map[i].reason;
  }
  /* The server's (or the owner's) words, neutralised when printed. */
  if (text_len > 0) {
    const char *cut;
    int n = shown_len(text, text_len, &cut);
    snprintf(buf, cap, "refused (%.*s: %.*s%s)", (int)(len < 32 ? len : 32),
             code, n, text, cut);
  } else {
    snprintf(buf, cap, "refused (%.*s)", (int)(len < 32 ? len : 32), code);
  }
  return buf;
}

/* Connects the stream to host:port; the outcome reaches
 * on_owner_connected(). */
static void connect_to(fetch_t *f, const char *host, int port,
                       unsigned timeout_s) {
  char why[128];
  int rc;

  f->state = ST_CONNECTING;
  f->deadline = uv_now(f->c->loop) + timeout_s * 1000ull;
  rc = chat_connect(f->c->loop, &f->stream, host, port, CHAT_XFER_HEADER_MAX,
                    on_owner_connected);
  if (rc != 0) {
    snprintf(why, sizeof(why), "cannot connect to %s: %s", host,
             chat_strerror(rc));
    fetch_fail(f, why);
    return;
  }
  f->stream_open = 1;
  f->refs++; /* the stream, until its close (or failed connect) */
}

static void start_relay(fetch_t *f) {
  f->relayed = 1;
  connect_to(f, f->c->cfg.host, f->c->cfg.port, f->c->cfg.stall_s);
}

/* GET-OK: direct, relayed, or direct first, as --transfer and the owner's
 * port (0: it accepts no connections) allow. */
static void start_transfer(fetch_t *f, const char *host, int port,
                           const char *token, const char *fp) {
  xfer_mode mode = f->c->cfg.transfer;

  memcpy(f->token, token, CHAT_TOKEN_LEN + 1);
  snprintf(f->fp, sizeof(f->fp), "%s", fp);
  f->stream.data = NULL;
  if (port == 0 && mode == XFER_DIRECT) {
    fetch_fail(f, "the owner accepts no connections and --transfer=direct "
                  "rules out the relay");
  } else if (port == 0) {
    client_printf(f->c,
                  "%s accepts no connections; relaying through the "
                  "server",
                  f->owner);
    start_relay(f);
  } else if (mode == XFER_RELAY) {
    start_relay(f);
  } else {
    connect_to(f, host, port,
               mode == XFER_AUTO ? f->c->cfg.connect_s : f->c->cfg.stall_s);
  }
}

void fetch_on_reply(client_t *c, const chat_line_t *l) {
  const char *a[5];
  size_t al[5];
  char host[64], token[CHAT_TOKEN_LEN + 1], fp[CHAT_TLS_FP_MAX] = "";
  uint64_t port;
  fetch_t *f;
  int n;

  if (l->word_len == 6 && memcmp(l->word, "GET-OK", 6) == 0) {
    /* GET-OK <id> <host> <port> <token> [<owner's file key>] */
    n = chat_args_split(l->text, l->text_len, 5, 0, a, al);
    if (n == CHAT_EPROTO)
      n = chat_args_split(l->text, l->text_len, 4, 0, a, al);
    if (n < 4 || (f = find_fetch(c, a[0], al[0])) == NULL)
      return;
    if (al[1] >= sizeof(host) || chat_parse_u64(a[2], al[2], 5, &port) != 0 ||
        port > 65535 || chat_token_check(a[3], al[3]) != 0 ||
        (n == 5 && al[4] != CHAT_TLS_FP_MAX - 1)) {
      fetch_fail(f, "protocol error: bad answer from the server");
      return;
    }
    if (n == 5) {
      char raw[CHAT_TLS_FP_MAX];
      memcpy(raw, a[4], al[4]);
      raw[al[4]] = '\0';
      if (chat_tls_fp_parse(raw, fp) != 0) {
        fetch_fail(f, "protocol error: bad answer from the server");
        return;
      }
    }
    memcpy(host, a[1], al[1]);
    host[al[1]] = '\0';
    memcpy(token, a[3], al[3]);
    token[al[3]] = '\0';
    start_transfer(f, host, (int)port, token, fp);
  } else if (l->word_len == 8 && memcmp(l->word, "GET-FAIL", 8) == 0) {
    char why[160];
    n = chat_args_split(l->text, l->text_len, 3, 1, a, al);
    if (n == CHAT_EPROTO)
      n = chat_args_split(l->text, l->text_len, 2, 0, a, al); /* no text */
    if (n < 2 || (f = find_fetch(c, a[0], al[0])) == NULL)
      return;
    if (al[1] == 4 && memcmp(a[1], "busy", 4) == 0 && owner_in_flight(f)) {
      /* The owner holds our other requests: ask again when one ends. */
      f->state = ST_PARKED;
      f->parked_seq = ++c->parked_seq;
      return;
    }
    fetch_fail(f, reason_for(a[1], al[1], n == 3 ? a[2] : NULL,
                             n == 3 ? al[2] : 0, why, sizeof(why)));
  } else if (l->word_len == 9 && memcmp(l->word, "GET-OWNER", 9) == 0) {
    /* The owner's name as the server knows it (its case), for every later
     * line about this request; ignored unless it is a valid name. */
    if (chat_args_split(l->text, l->text_len, 2, 0, a, al) != 2 ||
        (f = find_fetch(c, a[0], al[0])) == NULL ||
        chat_name_check(a[1], al[1]) != 0)
      return;
    memcpy(f->owner, a[1], al[1]);
    f->owner[al[1]] = '\0';
  }
}

/* ---- starting ------------------------------------------------------------ */

static void on_temp_created(uv_fs_t *req) {
  fetch_t *f = req->data;
  int rc = (int)req->result;

  if (rc >= 0) {
    f->fd = rc;
    f->tmp = strdup(req->path);
  }
  if (fs_finished(f, req))
    return;
  if (rc < 0 || f->tmp == NULL) {
    char why[160];
    snprintf(why, sizeof(why),
             "cannot create a file in the download folder: %s",
             chat_strerror(rc < 0 ? rc : UV_ENOMEM));
    fetch_fail(f, why);
    return;
  }
  send_get(f);
}

/* Local checks, so a bad request fails at once without a round trip. */
static const char *precheck(client_t *c, const char *owner, size_t owner_len,
                            const char *file, size_t file_len) {
  if (chat_filename_check(file, file_len) != 0)
    return "invalid file name";
  if (chat_name_check(owner, owner_len) != 0)
    return "no such user";
  if (chat_name_equal(owner, owner_len, c->name, strlen(c->name)))
    return "you cannot request a file from yourself";
  if (c->nfetches >= c->cfg.max_transfers)
    return "too many transfers in progress; try again later";
  return NULL;
}

void fetch_request(client_t *c, const char *owner, size_t owner_len,
                   const char *file, size_t file_len) {
  const char *why = precheck(c, owner, owner_len, file, file_len);
  size_t dlen = strlen(c->cfg.downloads);
  char *tmpl;
  fetch_t *f;

  /* The menu trimmed both names; an empty one cannot be put in the usual
   * failure line, and there is nothing to ask the server. */
  if (owner_len == 0) {
    client_printf(c, "file request not sent: no owner name given");
    return;
  }
  if (file_len == 0) {
    client_printf(c, "file request not sent: no file name given");
    return;
  }

  f = calloc(1, sizeof(*f) + file_len + 1);
  if (f == NULL)
    return;
  f->c = c;
  f->fd = -1;
  f->refs = 1;
  f->state = ST_OPENING;
  memcpy(f->file, file, file_len);
  if (chat_name_equal(owner, owner_len, c->name, strlen(c->name)))
    owner = c->name; /* ourselves, in our own case: "from bob", not "BOB" */
  snprintf(f->owner, sizeof(f->owner), "%.*s",
           (int)(owner_len < CHAT_NAME_MAX ? owner_len : CHAT_NAME_MAX), owner);
  LIST_ADD(c->fetches, f);
  c->nfetches++;
  if (why != NULL) {
    fetch_fail(f, why);
    return;
  }
  f->dest = malloc(dlen + file_len + 2);
  tmpl = malloc(dlen + file_len + sizeof(CHAT_PART_SUFFIX) + 2);
  if (f->dest == NULL || tmpl == NULL) {
    free(tmpl);
    fetch_fail(f, "out of memory");
    return;
  }
  sprintf(f->dest, "%s/%s", c->cfg.downloads, f->file);
  /* A long name is cut short in the temporary name, which must fit the
   * file system's 255 bytes too; the final name is the whole one. */
  sprintf(tmpl, "%s/.%.*s" CHAT_PART_SUFFIX, c->cfg.downloads,
          (int)chat_part_name_len(f->file, file_len), f->file);
  f->req.data = f;
  stall_reset(f);
  if (uv_fs_mkstemp(c->loop, &f->req, tmpl, on_temp_created) == 0)
    f->busy = 1;
  else
    fetch_fail(f, "cannot create a file in the download folder");
  free(tmpl);
}

/* ---- ticks and exit ------------------------------------------------------ */

void fetch_tick(client_t *c, uint64_t now) {
  fetch_t *f, *next;
  char why[96];

  for (f = c->fetches; f != NULL; f = next) {
    next = f->next;
    if (f->state >= ST_FINISHING || f->state == ST_PARKED ||
        now <= f->deadline || f->relay_next)
      continue; /* a parked fetch waits for another one's end */
    if (f->state == ST_CONNECTING && !f->relayed &&
        c->cfg.transfer == XFER_AUTO) {
      fall_back(f, "timed out");
      f->relay_next = 1; /* on_stream_closed() starts the relay */
      chat_stream_close(&f->stream, on_stream_closed);
      continue;
    }
    snprintf(why, sizeof(why), "stalled: nothing moved for %u seconds",
             c->cfg.stall_s);
    fetch_fail(f, f->state == ST_CONNECTING
                      ? "connection to the owner timed out"
                      : why);
  }
}

void fetch_stop(client_t *c) {
  fetch_t *f, *next;

  for (f = c->fetches; f != NULL; f = next) {
    next = f->next;
    f->quiet = 1;
    fetch_fail(f, NULL);
  }
}
