/* SHA-256 through OpenSSL's libcrypto (EVP), for transfer integrity. */
#ifndef CHAT_CLIENT_SHA256_H
#define CHAT_CLIENT_SHA256_H

#include <stddef.h>

#define SHA256_BYTES 32

typedef struct sha256_s sha256_t;

/* A new digest context, or NULL when out of memory. */
sha256_t *sha256_new(void);
void sha256_update(sha256_t *h, const void *data, size_t len);
/* Writes the digest; the context may not be updated afterwards. */
void sha256_final(sha256_t *h, unsigned char out[SHA256_BYTES]);
void sha256_free(sha256_t *h);

#endif /* CHAT_CLIENT_SHA256_H */
