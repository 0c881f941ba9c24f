/* TLS on a chat_stream_t: a filter pushed on top of the TCP transport.
 *
 * After chat_stream_start_tls() everything the owner writes is encrypted on
 * its way out and everything it reads was decrypted on its way in; lines,
 * raw reads, pauses, byte budgets, shutdown and end work as before, at the
 * level of the plaintext. chat_stream_end() and chat_stream_shutdown() send
 * a close_notify before the FIN, and an end of the peer's bytes without one
 * reads as CHAT_ETRUNC, never as a clean UV_EOF.
 *
 * Writes made before the handshake completes wait for it; reads start
 * delivering after it. The handshake callback runs once: with 0 when the
 * handshake completed (a client then decides whether it trusts the peer,
 * from chat_stream_tls_peer(), and closes the stream if not; nothing it
 * wrote has left yet), or with an error, after which the event callback
 * also hears it.
 *
 * The library under this is OpenSSL 3; none of its types shows here.
 */
#ifndef CHAT_TLS_H
#define CHAT_TLS_H

#include <stddef.h>

#include "stream.h"

typedef struct chat_tls_ctx_s chat_tls_ctx_t;

/* The length of a fingerprint in text: 64 lowercase hex digits and a NUL. */
#define CHAT_TLS_FP_MAX 65

/* Why chat_tls_*() failed, in words; error functions write at most this. */
#define CHAT_TLS_ERR_MAX 256

/* A server context from PEM files: cert_file holds the certificate, then
 * any chain; key_file its private key. TLS 1.2 at least, no
 * renegotiation, session tickets on. On failure err says why. */
int chat_tls_server_ctx(chat_tls_ctx_t **out, const char *cert_file,
                        const char *key_file, char *err, size_t errlen);

/* A server context with a self-signed ECDSA P-256 certificate for
 * common_name, made in memory (the key never touches a disk). Used for the
 * end-to-end encryption of file connections, and by tests. */
int chat_tls_server_ctx_ephemeral(chat_tls_ctx_t **out, const char *common_name,
                                  char *err, size_t errlen);

/* A new ECDSA P-256 key and a self-signed certificate for it as PEM text
 * (malloc'd; the caller frees both, and should clear the key's first), for
 * a server that keeps them in its state directory. */
int chat_tls_self_signed_pem(const char *common_name, char **cert_pem,
                             char **key_pem, char *err, size_t errlen);

/* A client context. ca_file: PEM CAs to verify with; NULL for the
 * system's. The handshake never fails on trust: the verdict is in
 * chat_stream_tls_peer(), for the owner to apply with its own rules (pins,
 * known hosts). */
int chat_tls_client_ctx(chat_tls_ctx_t **out, const char *ca_file, char *err,
                        size_t errlen);

void chat_tls_ctx_free(chat_tls_ctx_t *ctx);

/* The fingerprints of a context's own certificate (a server's): SHA-256 of
 * the certificate (DER) and of its public key (SubjectPublicKeyInfo DER). */
int chat_tls_ctx_fingerprints(const chat_tls_ctx_t *ctx,
                              char cert_fp[CHAT_TLS_FP_MAX],
                              char key_fp[CHAT_TLS_FP_MAX]);

typedef void (*chat_tls_cb)(chat_stream_t *s, int status);

/* Pushes TLS on s, a TCP stream (or a pipe) that is connected (a client) or
 * accepted (a server), before any byte was read. host: for a client, the name
 * or address it connected to (SNI for a name, and what the certificate must
 * match); NULL on a server. The context must outlive the stream. */
int chat_stream_start_tls(chat_stream_t *s, chat_tls_ctx_t *ctx,
                          const char *host, chat_tls_cb on_handshake);

/* For an accepted stream: the first byte the peer sends decides. A TLS
 * handshake record (0x16) pushes TLS with ctx (and on_handshake runs as
 * for chat_stream_start_tls()); anything else stays the line protocol and
 * on_handshake never runs. Nothing is copied and a plain peer waits for
 * nothing. Call before chat_stream_read_start(). */
int chat_stream_sniff_tls(chat_stream_t *s, chat_tls_ctx_t *ctx,
                          chat_tls_cb on_handshake);

/* Non-zero when s runs TLS (also while its handshake is in progress). */
int chat_stream_is_tls(const chat_stream_t *s);

typedef struct {
  char cert_fp[CHAT_TLS_FP_MAX]; /* SHA-256 of the peer's certificate */
  char key_fp[CHAT_TLS_FP_MAX];  /* SHA-256 of its public key */
  int ca_ok;           /* the chain verified against the CAs, host included */
  const char *ca_why;  /* why not, in words (static), when !ca_ok */
  const char *version; /* "TLSv1.3" */
  const char *cipher;
  int resumed; /* the session was resumed */
} chat_tls_peer_t;

/* What the handshake established; UV_EINVAL before it completed or on a
 * stream without TLS. A server normally has no peer certificate: the
 * fingerprints are then empty strings. */
int chat_stream_tls_peer(const chat_stream_t *s, chat_tls_peer_t *out);

/* Normalises a fingerprint as a user types it ("AB:CD..", "sha256:abcd..",
 * either case) into 64 lowercase hex digits. Returns 0, or CHAT_EARG. */
int chat_tls_fp_parse(const char *text, char out[CHAT_TLS_FP_MAX]);

#endif /* CHAT_TLS_H */
