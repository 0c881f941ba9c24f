/* libchat error codes.
 *
 * Every function that can fail returns an int: 0 on success, a negative
 * code on failure. libuv's UV_E* codes pass through unchanged; libchat's own
 * codes live in a separate range below CHAT__ERRNO_BASE so the two never
 * collide. chat_strerror() explains either kind.
 */
#ifndef CHAT_ERROR_H
#define CHAT_ERROR_H

#define CHAT__ERRNO_BASE (-30000)

#define CHAT_ERRNO_MAP(XX)                                                     \
  XX(ELINE, -1, "line too long")                                               \
  XX(ENAME, -2, "invalid name: use 1-32 characters from A-Z a-z 0-9 _ . -")    \
  XX(ETAKEN, -3, "name already in use")                                        \
  XX(ETEXT, -4, "text holds control characters or invalid UTF-8")              \
  XX(ESENDQ, -5, "send queue over its limit (slow consumer)")                  \
  XX(ECLOSED, -6, "stream is closing")                                         \
  XX(EEMPTY, -7, "empty message")                                              \
  XX(EARG, -8, "invalid argument")                                             \
  XX(EPROTO, -9, "protocol error")                                             \
  XX(EFILENAME, -10, "invalid file name")                                      \
  XX(EREFUSED, -11, "refused by the peer")                                     \
  XX(ESIZE, -12, "size mismatch")                                              \
  XX(EDIGEST, -13, "SHA-256 digest mismatch")                                  \
  XX(ESTALL, -14, "transfer stalled")                                          \
  XX(ETIMEDOUT, -15, "timed out")                                              \
  XX(ETLS, -16, "TLS handshake or record failed")                              \
  XX(ETRUNC, -17, "TLS stream cut off without close_notify")                   \
  XX(EUNTRUSTED, -18, "the peer's certificate is not trusted")

enum chat_errno {
#define XX(name, off, msg) CHAT_##name = CHAT__ERRNO_BASE + (off),
  CHAT_ERRNO_MAP(XX)
#undef XX
};

/* Returns a static, human-readable description of a libchat or libuv error
 * code. Never returns NULL. */
const char *chat_strerror(int err);

/* Returns the symbolic name of an error ("CHAT_ELINE", "ECONNREFUSED"). */
const char *chat_err_name(int err);

#endif /* CHAT_ERROR_H */
