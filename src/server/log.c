/* Timestamped logging: see log.h. Log lines go to stderr with one blocking
 * write each; they are rare (connects, names, errors), never per message.
 *
 * What a line says comes partly from peers (names, file names, error
 * texts), so the message passes through chat_sanitize(): no byte a peer
 * chose can end the line early, move the cursor, colour the terminal or
 * reorder the text of whoever reads the log. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

#define LOG_MSG_MAX 1024 /* formatted message, before sanitising */

static const char *log_prog = "chat";

void log_init(const char *prog) {
  log_prog = prog;
}

void log_msg(const char *fmt, ...) {
  char msg[LOG_MSG_MAX];
  char line[CHAT_SANITIZE_MAX(LOG_MSG_MAX) + 128];
  uv_timeval64_t tv;
  struct tm *tm;
  time_t secs;
  va_list ap;
  int n, m;

  va_start(ap, fmt);
  m = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  if ((size_t)m >= sizeof(msg))
    m = (int)sizeof(msg) - 1; /* cut; the sanitiser keeps whole characters */
  uv_gettimeofday(&tv);
  secs = (time_t)tv.tv_sec;
  tm = gmtime(&secs);
  n = snprintf(
      line, sizeof(line),
      "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d]: ", tm->tm_year + 1900,
      tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
      (int)(tv.tv_usec / 1000), log_prog, (int)uv_os_getpid());
  if (n < 0 || (size_t)n >= sizeof(line) - 1)
    return;
  /* One byte is kept for the '\n'. */
  n += (int)chat_sanitize(msg, (size_t)m, line + n,
                          sizeof(line) - 1 - (size_t)n);
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, stderr);
}

const char *log_quote(char *out, size_t cap, const char *s) {
  size_t o = 0;

  if (cap < 3) {
    if (cap > 0)
      out[0] = '\0';
    return out;
  }
  out[o++] = '"';
  for (; *s != '\0' && o + 3 < cap; s++) {
    if (*s == '"' || *s == '\\')
      out[o++] = '\\';
    out[o++] = *s;
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}
