/* The known-hosts file's lines, as a pure function (see known.h). */
#include <stdio.h>
#include <string.h>

#include "known.h"

/* ASCII case folding of letters only ("| 0x20" would make "[" "{"). */
static char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

int trust_known_lookup(const char *text, size_t len, const char *hostport,
                       char fp[CHAT_TLS_FP_MAX]) {
  size_t hl = strlen(hostport);
  const char *p = text, *end = text + len;

  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl != NULL ? nl : end;
    const char *sp;
    char f[128]; /* "sha256:" and 32 colon-separated pairs fit */
    size_t fl;

    while (p < le && (*p == ' ' || *p == '\t'))
      p++;
    if (p < le && *p != '#') {
      sp = p;
      while (sp < le && *sp != ' ' && *sp != '\t')
        sp++;
      if ((size_t)(sp - p) == hl) {
        size_t i = 0;
        while (i < hl && lower(p[i]) == lower(hostport[i]))
          i++;
        if (i == hl) {
          while (sp < le && (*sp == ' ' || *sp == '\t'))
            sp++;
          fl = (size_t)(le - sp);
          while (fl > 0 && (sp[fl - 1] == ' ' || sp[fl - 1] == '\t' ||
                            sp[fl - 1] == '\r'))
            fl--;
          if (fl < sizeof(f)) {
            memcpy(f, sp, fl);
            f[fl] = '\0';
            if (chat_tls_fp_parse(f, fp) == 0)
              return 1;
          }
          return -1; /* our host, but a line we cannot read */
        }
      }
    }
    p = le + 1;
  }
  return 0;
}

void trust_hostport(const char *host, int port, char *out, size_t cap) {
  snprintf(out, cap, "[%s]:%d", host, port);
}
