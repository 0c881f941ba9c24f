/* SHA-256 over OpenSSL's EVP interface: see sha256.h. */
#include "sha256.h"

#include <openssl/evp.h>

/* sha256_t is never defined: a sha256_t pointer is an EVP_MD_CTX pointer. */

sha256_t *sha256_new(void) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  if (ctx == NULL)
    return NULL;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return NULL;
  }
  return (sha256_t *)ctx;
}

void sha256_update(sha256_t *h, const void *data, size_t len) {
  EVP_DigestUpdate((EVP_MD_CTX *)h, data, len);
}

void sha256_final(sha256_t *h, unsigned char out[SHA256_BYTES]) {
  unsigned int n = SHA256_BYTES;

  EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n);
}

void sha256_free(sha256_t *h) {
  EVP_MD_CTX_free((EVP_MD_CTX *)h);
}
