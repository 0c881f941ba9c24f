/* The TLS filter: OpenSSL over two memory BIOs, on top of a stream's base
 * transport (see transport.h and include/chat/tls.h).
 *
 * Ciphertext from the base goes into the read BIO; SSL_read turns it into
 * plaintext for the stream. Plaintext from the stream goes through
 * SSL_write into the write BIO; after every SSL_* call what the write BIO
 * holds (records, handshake messages, tickets, alerts) moves to `out` and
 * one base write at a time carries it. The stream's own write (one in
 * flight, as for every transport) completes when the ciphertext it made has
 * left, so the stream's byte budget bounds the filter too.
 *
 * All of a stream's queued buffers reach one write call (the batch flush
 * hands up to IOV_MAX); they are packed into 16 KiB records, so a burst of
 * small lines is one record and one system call, not one each.
 */
#include "internal.h"
#include "transport.h"

#include "chat/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_RECORD 16384 /* the largest plaintext of one record */

struct chat_tls_ctx_s {
  SSL_CTX *ssl;
  int server;
};

enum {
  T_HANDSHAKEN = 1 << 0, /* the handshake completed */
  T_WRITING = 1 << 1,    /* a base write is in flight (carrying `wr`) */
  T_PLAIN = 1 << 2,      /* the stream's write waits for its ciphertext */
  T_SHUT = 1 << 3,       /* shut down once `out` has left */
  T_READING = 1 << 4,    /* the stream wants plaintext */
  T_EOF = 1 << 5,        /* the read side's end was reported */
  T_FAILED = 1 << 6,     /* a fatal TLS error: no more SSL_* calls */
  T_SNIFF = 1 << 7,      /* waiting for the first byte to decide */
  T_CLOSING = 1 << 8,
  T_SHUT_SENT = 1 << 9,  /* the base shutdown was started */
  T_BASE_READ = 1 << 10, /* the base is reading */
};

struct chat__tls_s {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  chat_tls_ctx_t *ctx;
  chat_tls_cb on_handshake;
  char *out; /* ciphertext not yet handed to the base */
  size_t out_len, out_cap;
  char *wr; /* ciphertext of the base write in flight */
  size_t wr_len;
  char *early; /* plaintext written before the handshake completed */
  size_t early_len;
  int early_status; /* 0, or why the early plaintext could not go */
  unsigned flags;
};

static const chat__transport_t tls_tp;
static const chat__transport_t sniff_tp;

/* ---- contexts ------------------------------------------------------------ */

static void ssl_err(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char buf[160] = "";

  if (err == NULL || errlen == 0)
    return;
  if (e != 0)
    ERR_error_string_n(e, buf, sizeof(buf));
  snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", buf);
  ERR_clear_error();
}

static chat_tls_ctx_t *ctx_new(int server, char *err, size_t errlen) {
  chat_tls_ctx_t *c = calloc(1, sizeof(*c));

  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->server = server;
  c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (c->ssl == NULL) {
    ssl_err(err, errlen, "cannot make a TLS context");
    free(c);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
  if (server)
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_SERVER);
  return c;
}

int chat_tls_server_ctx(chat_tls_ctx_t **out, const char *cert_file,
                        const char *key_file, char *err, size_t errlen) {
  chat_tls_ctx_t *c = ctx_new(1, err, errlen);

  *out = NULL;
  if (c == NULL)
    return CHAT_ETLS;
  if (SSL_CTX_use_certificate_chain_file(c->ssl, cert_file) != 1) {
    ssl_err(err, errlen, "cannot load the certificate");
    chat_tls_ctx_free(c);
    return CHAT_ETLS;
  }
  if (SSL_CTX_use_PrivateKey_file(c->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
    ssl_err(err, errlen, "cannot load the private key");
    chat_tls_ctx_free(c);
    return CHAT_ETLS;
  }
  if (SSL_CTX_check_private_key(c->ssl) != 1) {
    ssl_err(err, errlen, "the private key does not match the certificate");
    chat_tls_ctx_free(c);
    return CHAT_ETLS;
  }
  *out = c;
  return 0;
}

/* A self-signed ECDSA P-256 certificate for cn, valid from an hour ago
 * (clocks differ) for ten years. */
static int self_signed(EVP_PKEY **pkey, X509 **cert, const char *cn) {
  X509_NAME *name;

  *cert = NULL;
  *pkey = EVP_EC_gen("P-256");
  if (*pkey == NULL)
    return -1;
  *cert = X509_new();
  if (*cert == NULL)
    return -1;
  if (X509_set_version(*cert, 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(*cert),
                       (long)(uv_hrtime() & 0x7fffffff)) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(*cert), -3600) == NULL ||
      X509_gmtime_adj(X509_getm_notAfter(*cert), 10L * 365 * 86400) == NULL ||
      X509_set_pubkey(*cert, *pkey) != 1)
    return -1;
  name = X509_get_subject_name(*cert);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 (const unsigned char *)cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(*cert, name) != 1 ||
      X509_sign(*cert, *pkey, EVP_sha256()) == 0)
    return -1;
  return 0;
}

int chat_tls_server_ctx_ephemeral(chat_tls_ctx_t **out, const char *common_name,
                                  char *err, size_t errlen) {
  chat_tls_ctx_t *c = ctx_new(1, err, errlen);
  EVP_PKEY *pkey = NULL;
  X509 *cert = NULL;
  int ok;

  *out = NULL;
  if (c == NULL)
    return CHAT_ETLS;
  ok = self_signed(&pkey, &cert, common_name) == 0 &&
       SSL_CTX_use_certificate(c->ssl, cert) == 1 &&
       SSL_CTX_use_PrivateKey(c->ssl, pkey) == 1;
  X509_free(cert);
  EVP_PKEY_free(pkey);
  if (!ok) {
    ssl_err(err, errlen, "cannot make a certificate");
    chat_tls_ctx_free(c);
    return CHAT_ETLS;
  }
  *out = c;
  return 0;
}

/* PEM text of what a memory BIO holds, NUL-terminated, malloc'd. */
static char *bio_text(BIO *b) {
  char *data, *out;
  long n = BIO_get_mem_data(b, &data);

  if (n <= 0 || (out = malloc((size_t)n + 1)) == NULL)
    return NULL;
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
  return out;
}

int chat_tls_self_signed_pem(const char *common_name, char **cert_pem,
                             char **key_pem, char *err, size_t errlen) {
  EVP_PKEY *pkey = NULL;
  X509 *cert = NULL;
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  int ok;

  *cert_pem = *key_pem = NULL;
  ok = cb != NULL && kb != NULL &&
       self_signed(&pkey, &cert, common_name) == 0 &&
       PEM_write_bio_X509(cb, cert) == 1 &&
       PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
       (*cert_pem = bio_text(cb)) != NULL && (*key_pem = bio_text(kb)) != NULL;
  if (!ok) {
    ssl_err(err, errlen, "cannot make a certificate");
    free(*cert_pem);
    *cert_pem = NULL;
  }
  X509_free(cert);
  EVP_PKEY_free(pkey);
  BIO_free(cb);
  BIO_free(kb);
  return ok ? 0 : CHAT_ETLS;
}

int chat_tls_client_ctx(chat_tls_ctx_t **out, const char *ca_file, char *err,
                        size_t errlen) {
  chat_tls_ctx_t *c = ctx_new(0, err, errlen);
  int ok;

  *out = NULL;
  if (c == NULL)
    return CHAT_ETLS;
  /* Verification runs and records its verdict; the owner applies it. */
  SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
  if (ca_file != NULL)
    ok = SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL) == 1;
  else
    ok = SSL_CTX_set_default_verify_paths(c->ssl) == 1;
  if (!ok) {
    ssl_err(err, errlen,
            ca_file != NULL ? "cannot load the CA file"
                            : "cannot load the system's CAs");
    chat_tls_ctx_free(c);
    return CHAT_ETLS;
  }
  *out = c;
  return 0;
}

void chat_tls_ctx_free(chat_tls_ctx_t *ctx) {
  if (ctx == NULL)
    return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

static void hex(const unsigned char *md, unsigned len, char *out) {
  static const char digits[] = "0123456789abcdef";

  for (unsigned i = 0; i < len && i < 32; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[2 * (len < 32 ? len : 32)] = '\0';
}

static int fingerprints(X509 *cert, char *cert_fp, char *key_fp) {
  unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
  unsigned len = 0;
  int n;

  cert_fp[0] = key_fp[0] = '\0';
  if (cert == NULL)
    return 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
    return CHAT_ETLS;
  hex(md, len, cert_fp);
  n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
  if (n <= 0)
    return CHAT_ETLS;
  len = 0;
  n = EVP_Digest(der, (size_t)n, md, &len, EVP_sha256(), NULL);
  OPENSSL_free(der);
  if (n != 1)
    return CHAT_ETLS;
  hex(md, len, key_fp);
  return 0;
}

int chat_tls_ctx_fingerprints(const chat_tls_ctx_t *ctx,
                              char cert_fp[CHAT_TLS_FP_MAX],
                              char key_fp[CHAT_TLS_FP_MAX]) {
  return fingerprints(SSL_CTX_get0_certificate(ctx->ssl), cert_fp, key_fp);
}

/* ---- the filter: writing ------------------------------------------------- */

/* The base reads while the handshake runs (whether or not the stream
 * reads) and after it while the stream wants plaintext. */
static int base_reading(chat_stream_t *s) {
  chat__tls_t *t = s->tls;
  int want = !(t->flags & (T_EOF | T_CLOSING)) &&
             (!(t->flags & T_HANDSHAKEN) || (t->flags & T_READING));
  int rc = 0;

  if (want && !(t->flags & T_BASE_READ)) {
    rc = s->base->read_start(s);
    if (rc == 0)
      t->flags |= T_BASE_READ;
  } else if (!want && (t->flags & T_BASE_READ)) {
    t->flags &= ~T_BASE_READ;
    rc = s->base->read_stop(s);
  }
  return rc;
}

static void pump(chat_stream_t *s);

/* Moves what the write BIO holds to `out`. */
static int collect(chat__tls_t *t) {
  size_t n = BIO_ctrl_pending(t->wbio);

  if (n == 0)
    return 0;
  if (t->out_len + n > t->out_cap) {
    size_t cap = t->out_cap ? t->out_cap : 4096;
    char *p;
    while (cap < t->out_len + n)
      cap *= 2;
    p = realloc(t->out, cap);
    if (p == NULL)
      return UV_ENOMEM;
    t->out = p;
    t->out_cap = cap;
  }
  if (BIO_read(t->wbio, t->out + t->out_len, (int)n) != (int)n)
    return CHAT_ETLS;
  t->out_len += n;
  return 0;
}

/* SSL_write of bufs, packed into records of up to 16 KiB. */
static int encrypt(chat__tls_t *t, const uv_buf_t *bufs, unsigned n) {
  char stage[TLS_RECORD];
  size_t used = 0, done;

  for (unsigned i = 0; i < n; i++) {
    const char *p = bufs[i].base;
    size_t len = bufs[i].len;
    while (len > 0) {
      if (used == 0 && len >= TLS_RECORD) {
        /* Big: straight from the caller's bytes, whole records. */
        size_t k = len - len % TLS_RECORD;
        if (SSL_write_ex(t->ssl, p, k, &done) != 1 || done != k)
          return CHAT_ETLS;
        p += k;
        len -= k;
        continue;
      }
      size_t k = TLS_RECORD - used < len ? TLS_RECORD - used : len;
      memcpy(stage + used, p, k);
      used += k;
      p += k;
      len -= k;
      if (used == TLS_RECORD) {
        if (SSL_write_ex(t->ssl, stage, used, &done) != 1 || done != used)
          return CHAT_ETLS;
        used = 0;
      }
    }
  }
  if (used > 0 &&
      (SSL_write_ex(t->ssl, stage, used, &done) != 1 || done != used))
    return CHAT_ETLS;
  return collect(t);
}

static void fail(chat_stream_t *s, int status);

/* Hands `out` to the base when no write is in flight; when everything has
 * left, completes the stream's write and then a pending shutdown. */
static void pump(chat_stream_t *s) {
  chat__tls_t *t = s->tls;
  uv_buf_t b;
  int rc;

  while (!(t->flags & (T_WRITING | T_CLOSING))) {
    if (t->out_len > 0) {
      free(t->wr);
      t->wr = t->out;
      t->wr_len = t->out_len;
      t->out = NULL;
      t->out_len = t->out_cap = 0;
      b = uv_buf_init(t->wr, (unsigned)t->wr_len);
      t->flags |= T_WRITING;
      rc = s->base->write(s, &b, 1);
      if (rc != 0) {
        t->flags &= ~T_WRITING;
        fail(s, rc);
      }
      return;
    }
    if ((t->flags & T_PLAIN) && (t->flags & T_HANDSHAKEN) && t->early == NULL) {
      t->flags &= ~T_PLAIN;
      chat__stream_wrote(s, 0); /* may write again, or shut down */
      continue;
    }
    if ((t->flags & T_SHUT) && !(t->flags & T_SHUT_SENT)) {
      t->flags |= T_SHUT_SENT;
      rc = s->base->shutdown(s);
      if (rc != 0)
        chat__stream_shut(s, rc);
    }
    return;
  }
}

static int tls_try_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  chat__tls_t *t = s->tls;
  size_t total = 0;
  uv_buf_t b;
  int rc, w;

  if (!(t->flags & T_HANDSHAKEN) || (t->flags & (T_WRITING | T_PLAIN)) ||
      t->out_len > 0)
    return UV_EAGAIN;
  if (t->flags & T_FAILED)
    return CHAT_ETLS;
  for (unsigned i = 0; i < n; i++)
    total += bufs[i].len;
  if (total > INT_MAX)
    return UV_EAGAIN; /* the queue's path takes it */
  rc = encrypt(t, bufs, n);
  if (rc != 0)
    return rc;
  b = uv_buf_init(t->out, (unsigned)t->out_len);
  w = s->base->try_write(s, &b, 1);
  if (w > 0) {
    memmove(t->out, t->out + w, t->out_len - (size_t)w);
    t->out_len -= (size_t)w;
  } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
    return w;
  }
  if (t->out_len == 0) {
    /* All gone at once: an idle connection keeps no buffer. */
    free(t->out);
    t->out = NULL;
    t->out_cap = 0;
  }
  pump(s); /* the rest of the ciphertext, if any, goes on its own */
  return (int)total;
}

static int tls_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  chat__tls_t *t = s->tls;
  int rc;

  if (t->flags & T_FAILED)
    return CHAT_ETLS;
  if (!(t->flags & T_HANDSHAKEN)) {
    /* Kept until the handshake is done; the stream's budget bounds it. */
    size_t total = 0, off = t->early_len;
    char *p;
    for (unsigned i = 0; i < n; i++)
      total += bufs[i].len;
    p = realloc(t->early, t->early_len + total);
    if (p == NULL)
      return UV_ENOMEM;
    t->early = p;
    for (unsigned i = 0; i < n; i++) {
      memcpy(p + off, bufs[i].base, bufs[i].len);
      off += bufs[i].len;
    }
    t->early_len = off;
    t->flags |= T_PLAIN;
    return 0;
  }
  rc = encrypt(t, bufs, n);
  if (rc != 0)
    return rc;
  t->flags |= T_PLAIN;
  pump(s);
  return 0;
}

static int tls_shutdown(chat_stream_t *s) {
  chat__tls_t *t = s->tls;

  if ((t->flags & T_HANDSHAKEN) && !(t->flags & T_FAILED)) {
    SSL_shutdown(t->ssl); /* queues our close_notify */
    if (collect(t) != 0)
      ERR_clear_error();
  }
  t->flags |= T_SHUT;
  pump(s);
  return 0;
}

static void tls_up_wrote(chat_stream_t *s, int status) {
  chat__tls_t *t = s->tls;

  t->flags &= ~T_WRITING;
  free(t->wr);
  t->wr = NULL;
  t->wr_len = 0;
  if (status < 0) {
    if (t->flags & T_PLAIN) {
      t->flags &= ~T_PLAIN;
      chat__stream_wrote(s, status);
    } else if ((t->flags & T_SHUT) && !(t->flags & T_SHUT_SENT)) {
      t->flags |= T_SHUT_SENT;
      chat__stream_shut(s, status);
    }
    return;
  }
  pump(s);
}

static void tls_up_shut(chat_stream_t *s, int status) {
  chat__stream_shut(s, status);
}

/* ---- the filter: reading ------------------------------------------------- */

/* A fatal error: reported once to the read side (and to the handshake
 * callback if it had not run). */
static void fail(chat_stream_t *s, int status) {
  chat__tls_t *t = s->tls;
  chat_tls_cb cb = t->on_handshake;

  if (t->flags & (T_EOF | T_CLOSING))
    return;
  t->flags |= T_FAILED | T_EOF;
  ERR_clear_error();
  base_reading(s);
  if (!(t->flags & T_HANDSHAKEN) && cb != NULL) {
    t->on_handshake = NULL;
    cb(s, status);
    if (chat__stream_closing(s))
      return;
  }
  chat__stream_read_end(s, status);
}

static int ssl_status(chat__tls_t *t, int r) {
  switch (SSL_get_error(t->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    return UV_EOF;
  default:
    return CHAT_ETLS;
  }
}

/* The handshake just completed: tell the owner, then let what it wrote
 * before go (unless it closed the stream). */
static void handshaken(chat_stream_t *s) {
  chat__tls_t *t = s->tls;
  chat_tls_cb cb = t->on_handshake;
  uv_buf_t b;
  int rc;

  t->flags |= T_HANDSHAKEN;
  t->on_handshake = NULL;
  if (cb != NULL) {
    cb(s, 0);
    if (chat__stream_closing(s))
      return;
  }
  if (base_reading(s) != 0) {
    fail(s, CHAT_ETLS);
    return;
  }
  if (t->early != NULL) {
    b = uv_buf_init(t->early, (unsigned)t->early_len);
    rc = encrypt(t, &b, 1);
    free(t->early);
    t->early = NULL;
    t->early_len = 0;
    if (rc != 0) {
      fail(s, rc);
      return;
    }
  }
  pump(s);
}

/* Runs the handshake and reads what the read BIO holds, while the stream
 * wants plaintext. */
static void decrypt(chat_stream_t *s) {
  chat__tls_t *t = s->tls;
  char plain[TLS_RECORD];
  size_t n;
  int r, st;

  if (!(t->flags & T_HANDSHAKEN)) {
    r = SSL_do_handshake(t->ssl);
    st = collect(t);
    if (st == 0 && r != 1)
      st = ssl_status(t, r);
    if (st != 0) {
      pump(s); /* an alert, if OpenSSL made one */
      fail(s, st == UV_EOF ? CHAT_ETLS : st);
      return;
    }
    pump(s);
    if (r != 1)
      return; /* wants more */
    handshaken(s);
    if (chat__stream_closing(s))
      return;
  }
  while ((t->flags & T_READING) && !(t->flags & (T_EOF | T_CLOSING)) &&
         !chat__stream_closing(s)) {
    r = SSL_read_ex(t->ssl, plain, sizeof(plain), &n);
    st = collect(t);
    if (st == 0 && r != 1)
      st = ssl_status(t, r);
    pump(s); /* tickets, a KeyUpdate answer */
    if (r == 1) {
      chat__stream_read(s, plain, n);
      continue;
    }
    if (st == UV_EOF) {
      /* close_notify: the clean end of the peer's bytes. */
      t->flags |= T_EOF;
      base_reading(s);
      chat__stream_read_end(s, UV_EOF);
    } else if (st != 0) {
      fail(s, st);
    }
    return;
  }
}

static void tls_up_read(chat_stream_t *s, const char *data, size_t len) {
  chat__tls_t *t = s->tls;

  if (t->flags & (T_EOF | T_CLOSING))
    return;
  while (len > 0) {
    int w = BIO_write(t->rbio, data, len > INT_MAX ? INT_MAX : (int)len);
    if (w <= 0) {
      fail(s, UV_ENOMEM);
      return;
    }
    data += w;
    len -= (size_t)w;
  }
  decrypt(s);
}

static void tls_up_read_end(chat_stream_t *s, int status) {
  chat__tls_t *t = s->tls;

  if (t->flags & (T_EOF | T_CLOSING))
    return;
  if (status == UV_EOF) {
    /* Records that arrived with the FIN were decrypted already; an end
     * without close_notify is a cut, not an end. */
    status = (t->flags & T_HANDSHAKEN) ? CHAT_ETRUNC : CHAT_ETLS;
  }
  fail(s, status);
}

static int tls_read_start(chat_stream_t *s) {
  chat__tls_t *t = s->tls;
  int rc;

  if (t->flags & T_EOF)
    return 0;
  t->flags |= T_READING;
  /* Plaintext OpenSSL already holds comes first; it may pause us again. */
  if ((t->flags & T_HANDSHAKEN) &&
      (SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0)) {
    decrypt(s);
    if (!(t->flags & T_READING) || (t->flags & T_EOF) ||
        chat__stream_closing(s))
      return 0;
  }
  rc = base_reading(s);
  if (rc != 0)
    t->flags &= ~T_READING;
  return rc;
}

static int tls_read_stop(chat_stream_t *s) {
  s->tls->flags &= ~T_READING;
  return base_reading(s);
}

/* ---- the filter: the rest --------------------------------------------------
 */

static void tls_close(chat_stream_t *s) {
  s->tls->flags |= T_CLOSING;
  s->base->close(s);
}

static void tls_free(chat__tls_t *t) {
  SSL_free(t->ssl); /* and both BIOs */
  free(t->out);
  free(t->wr);
  free(t->early);
  free(t);
}

static void tls_up_closed(chat_stream_t *s) {
  chat__tls_t *t = s->tls;

  s->tls = NULL;
  s->tp = s->base;
  tls_free(t);
  chat__stream_closed(s);
}

static size_t tls_unsent(const chat_stream_t *s) {
  const chat__tls_t *t = s->tls;

  return t->out_len + t->wr_len + t->early_len + s->base->unsent(s);
}

static int tls_peer(const chat_stream_t *s, struct sockaddr_storage *ss) {
  return s->base->peer(s, ss);
}

static int tls_nodelay(chat_stream_t *s, int on) {
  return s->base->nodelay(s, on);
}

static int tls_keepalive(chat_stream_t *s, int on, unsigned delay) {
  return s->base->keepalive(s, on, delay);
}

static const chat__transport_t tls_tp = {
    .name = "tls",
    .caps = CHAT__TP_BATCH | CHAT__TP_SHUTDOWN,
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .try_write = tls_try_write,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .unsent = tls_unsent,
    .peer = tls_peer,
    .nodelay = tls_nodelay,
    .keepalive = tls_keepalive,
    .up_read = tls_up_read,
    .up_read_end = tls_up_read_end,
    .up_wrote = tls_up_wrote,
    .up_shut = tls_up_shut,
    .up_closed = tls_up_closed,
};

static int is_ip(const char *host) {
  unsigned char buf[16];

  return uv_inet_pton(AF_INET, host, buf) == 0 ||
         uv_inet_pton(AF_INET6, host, buf) == 0;
}

static chat__tls_t *tls_new(chat_tls_ctx_t *ctx, const char *host) {
  chat__tls_t *t = calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->ctx = ctx;
  t->ssl = SSL_new(ctx->ssl);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    return NULL;
  }
  /* The read BIO says "retry" when empty, never "end": the end of the
   * peer's bytes is the base's to report. */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  if (ctx->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (host != NULL && !is_ip(host))
      SSL_set_tlsext_host_name(t->ssl, host);
    if (host != NULL && (is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(
                                           SSL_get0_param(t->ssl), host)
                                     : SSL_set1_host(t->ssl, host)) != 1) {
      tls_free(t);
      return NULL;
    }
  }
  return t;
}

/* Makes s a TLS stream; a client sends its hello at once. */
static int push(chat_stream_t *s, chat_tls_ctx_t *ctx, const char *host,
                chat_tls_cb cb, unsigned flags) {
  chat__tls_t *t;

  if ((s->kind != CHAT_STREAM_TCP && s->kind != CHAT_STREAM_PIPE) ||
      chat__stream_closing(s) || s->tls != NULL)
    return UV_EINVAL;
  t = tls_new(ctx, host);
  if (t == NULL) {
    ERR_clear_error();
    return UV_ENOMEM;
  }
  t->on_handshake = cb;
  t->flags = flags;
  s->tls = t;
  s->tp = &tls_tp;
  if (base_reading(s) != 0) {
    s->tls = NULL;
    s->tp = s->base;
    tls_free(t);
    return UV_EINVAL;
  }
  if (!ctx->server) {
    SSL_do_handshake(t->ssl);
    ERR_clear_error();
    if (collect(t) != 0)
      return UV_ENOMEM;
    pump(s);
  }
  return 0;
}

int chat_stream_start_tls(chat_stream_t *s, chat_tls_ctx_t *ctx,
                          const char *host, chat_tls_cb on_handshake) {
  unsigned flags = chat__stream_reading(s) ? T_READING | T_BASE_READ : 0;

  return push(s, ctx, host, on_handshake, flags);
}

/* ---- the sniffer: the first byte decides --------------------------------- */

/* Until the first byte: the base's ops, but reads come here. The state
 * is a placeholder chat__tls_t with T_SNIFF, holding ctx and the callback,
 * so that the stream needs no second pointer. */
static void sniff_up_read(chat_stream_t *s, const char *data, size_t len) {
  chat__tls_t *t = s->tls;
  chat_tls_ctx_t *ctx = t->ctx;
  chat_tls_cb cb = t->on_handshake;
  unsigned reading = t->flags & T_READING;
  unsigned writing = t->flags & T_WRITING;

  /* Either way the sniffer steps aside for good. */
  s->tp = s->base;
  s->tls = NULL;
  free(t);
  if (len > 0 && (unsigned char)data[0] == 0x16 && writing) {
    /* A plain write of ours is still in flight (a refusal): its end is
     * the stream's, and TLS cannot start under it. */
    chat__stream_read_end(s, CHAT_ETLS);
    return;
  }
  if (len > 0 && (unsigned char)data[0] == 0x16) {
    /* The base is reading: these bytes came from it. */
    if (push(s, ctx, NULL, cb, reading | T_BASE_READ) != 0) {
      chat__stream_read_end(s, UV_ENOMEM);
      return;
    }
    tls_up_read(s, data, len);
    return;
  }
  chat__stream_read(s, data, len);
}

static int sniff_read_start(chat_stream_t *s) {
  s->tls->flags |= T_READING;
  return s->base->read_start(s);
}

static int sniff_read_stop(chat_stream_t *s) {
  s->tls->flags &= ~T_READING;
  return s->base->read_stop(s);
}

static int sniff_try_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  return s->base->try_write(s, bufs, n);
}

static int sniff_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  int rc = s->base->write(s, bufs, n);

  if (rc == 0)
    s->tls->flags |= T_WRITING;
  return rc;
}

static void sniff_up_wrote(chat_stream_t *s, int status) {
  s->tls->flags &= ~T_WRITING;
  chat__stream_wrote(s, status);
}

static int sniff_shutdown(chat_stream_t *s) {
  return s->base->shutdown(s);
}

static void sniff_close(chat_stream_t *s) {
  s->base->close(s);
}

static void sniff_up_closed(chat_stream_t *s) {
  free(s->tls);
  s->tls = NULL;
  s->tp = s->base;
  chat__stream_closed(s);
}

static size_t sniff_unsent(const chat_stream_t *s) {
  return s->base->unsent(s);
}

static const chat__transport_t sniff_tp = {
    .name = "sniff",
    .caps = CHAT__TP_BATCH | CHAT__TP_SHUTDOWN,
    .read_start = sniff_read_start,
    .read_stop = sniff_read_stop,
    .try_write = sniff_try_write,
    .write = sniff_write,
    .shutdown = sniff_shutdown,
    .close = sniff_close,
    .unsent = sniff_unsent,
    .peer = tls_peer,
    .nodelay = tls_nodelay,
    .keepalive = tls_keepalive,
    .up_read = sniff_up_read,
    .up_read_end = NULL, /* an end before any byte: the stream's */
    .up_wrote = sniff_up_wrote,
    .up_shut = NULL,
    .up_closed = sniff_up_closed,
};

int chat_stream_sniff_tls(chat_stream_t *s, chat_tls_ctx_t *ctx,
                          chat_tls_cb on_handshake) {
  chat__tls_t *t;

  if ((s->kind != CHAT_STREAM_TCP && s->kind != CHAT_STREAM_PIPE) ||
      s->tls != NULL || !ctx->server)
    return UV_EINVAL;
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return UV_ENOMEM;
  t->ctx = ctx;
  t->on_handshake = on_handshake;
  t->flags = T_SNIFF;
  s->tls = t;
  s->tp = &sniff_tp;
  return 0;
}

int chat__tls_end_closes(const chat_stream_t *s) {
  return s->tls != NULL && !(s->tls->flags & (T_SNIFF | T_HANDSHAKEN)) &&
         s->tls->ctx->server;
}

int chat_stream_is_tls(const chat_stream_t *s) {
  return s->tls != NULL && !(s->tls->flags & T_SNIFF);
}

int chat_stream_tls_peer(const chat_stream_t *s, chat_tls_peer_t *out) {
  const chat__tls_t *t = s->tls;
  X509 *cert;
  long v;
  int rc;

  memset(out, 0, sizeof(*out));
  if (t == NULL || (t->flags & T_SNIFF) || !(t->flags & T_HANDSHAKEN))
    return UV_EINVAL;
  cert = SSL_get1_peer_certificate(t->ssl);
  rc = fingerprints(cert, out->cert_fp, out->key_fp);
  X509_free(cert);
  if (rc != 0)
    return rc;
  v = SSL_get_verify_result(t->ssl);
  out->ca_ok = cert != NULL && v == X509_V_OK;
  out->ca_why = cert == NULL     ? "no certificate"
                : v == X509_V_OK ? ""
                                 : X509_verify_cert_error_string(v);
  out->version = SSL_get_version(t->ssl);
  out->cipher = SSL_get_cipher_name(t->ssl);
  out->resumed = SSL_session_reused(t->ssl);
  return 0;
}
