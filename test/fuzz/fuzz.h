/* Shared by the fuzz targets and the standalone driver.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput(). With -Dfuzzing=true
 * and clang it is linked against libFuzzer; otherwise against driver.c, which
 * replays a corpus plus deterministic pseudo-random inputs (a meson test).
 *
 * Invariant checks use FUZZ_CHECK, never assert(): they must hold in every
 * build type, NDEBUG or not, and must abort() so that libFuzzer records the
 * input as a crash.
 */
#ifndef CHAT_FUZZ_H
#define CHAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__,   \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Non-zero when p .. p+n lies inside base .. base+len (n may be 0). */
static inline int fuzz_inside(const void *p, size_t n, const void *base,
                              size_t len) {
  const char *c = p;
  const char *b = base;

  return c != NULL && c >= b && c <= b + len && n <= (size_t)(b + len - c);
}

#endif /* CHAT_FUZZ_H */
