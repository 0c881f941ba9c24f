/* Fuzz target: the client's known-hosts lookup (src/client/known.c) and
 * fingerprint parsing (chat_tls_fp_parse), the two parsers of text that
 * TLS brought: a known-hosts file is the user's to edit, and a fingerprint
 * comes from the command line or, in GET-OK, from the server.
 *
 * The input's first line is the "[host]:port" looked up, the rest the
 * file. Checks: the lookup answers -1, 0 or 1; a found fingerprint is 64
 * lower-case hex digits and parses to itself; a host that appears on no
 * line (model: a plain substring search) is never found; and
 * chat_tls_fp_parse agrees with a plain model (optional "sha256:" in any
 * case, colons dropped, exactly 64 hex digits, lower-cased). The input
 * buffer has exactly the input's size, so ASan reports any read past it.
 */
#include "fuzz.h"

#include <string.h>

#include "chat/chat.h"
#include "known.h"

static int is_lower_hex64(const char *s) {
  if (strlen(s) != 64)
    return 0;
  for (size_t i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* chat_tls_fp_parse as docs say it: the model. */
static int model_fp(const char *s, char *out) {
  size_t n = 0;

  if (strlen(s) >= 7) {
    char p[8];
    for (int i = 0; i < 7; i++)
      p[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    p[7] = '\0';
    if (strcmp(p, "sha256:") == 0)
      s += 7;
  }
  for (; *s; s++) {
    char c = *s;
    if (c == ':')
      continue;
    if (c >= 'A' && c <= 'F')
      c = (char)(c + 32);
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n >= 64)
      return -1;
    out[n++] = c;
  }
  out[n] = '\0';
  return n == 64 ? 0 : -1;
}

static char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static int contains_ci(const char *hay, size_t hlen, const char *needle) {
  size_t n = strlen(needle);

  for (size_t i = 0; n > 0 && i + n <= hlen; i++) {
    size_t k = 0;
    while (k < n && lower(hay[i + k]) == lower(needle[k]))
      k++;
    if (k == n)
      return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  const char *nl = memchr(in, '\n', size);
  size_t hl = nl != NULL ? (size_t)(nl - in) : size;
  char host[128], fp[CHAT_TLS_FP_MAX], fp2[CHAT_TLS_FP_MAX], want[80];
  const char *text = nl != NULL ? nl + 1 : in + size;
  size_t tlen = (size_t)(in + size - text);
  int r, m;

  if (hl >= sizeof(host))
    hl = sizeof(host) - 1;
  memcpy(host, in, hl);
  host[hl] = '\0';
  if (memchr(host, '\0', hl) != NULL)
    return 0; /* a C string cannot hold it */

  /* The fingerprint parser on the host line, against the model. */
  r = chat_tls_fp_parse(host, fp);
  m = model_fp(host, want);
  FUZZ_CHECK(r == 0 || r == CHAT_EARG);
  FUZZ_CHECK((r == 0) == (m == 0));
  if (r == 0) {
    FUZZ_CHECK(strcmp(fp, want) == 0);
    FUZZ_CHECK(chat_tls_fp_parse(fp, fp2) == 0 && strcmp(fp, fp2) == 0);
  }

  /* The lookup of that line in the rest. */
  memset(fp, 'X', sizeof(fp));
  r = trust_known_lookup(text, tlen, host, fp);
  FUZZ_CHECK(r == -1 || r == 0 || r == 1);
  if (r == 1) {
    FUZZ_CHECK(is_lower_hex64(fp));
    FUZZ_CHECK(chat_tls_fp_parse(fp, fp2) == 0 && strcmp(fp, fp2) == 0);
  }
  if (r != 0)
    FUZZ_CHECK(hl > 0 && contains_ci(text, tlen, host));
  return 0;
}
