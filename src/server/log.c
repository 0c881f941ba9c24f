/* Timestamped logging: see log.h. Log lines go to stderr with one blocking
 * write each; they are rare (connects, names, errors), never per message. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

static const char *log_prog = "chat";

void log_init(const char *prog) {
  log_prog = prog;
}

void log_msg(const char *fmt, ...) {
  char line[1024];
  uv_timeval64_t tv;
  struct tm *tm;
  time_t secs;
  va_list ap;
  int n;

  uv_gettimeofday(&tv);
  secs = (time_t)tv.tv_sec;
  tm = gmtime(&secs);
  n = snprintf(
      line, sizeof(line),
      "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d]: ", tm->tm_year + 1900,
      tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
      (int)(tv.tv_usec / 1000), log_prog, (int)uv_os_getpid());
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof(line))
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(line) - 1)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, stderr);
}
