/* Timestamped log lines on stderr. */
#ifndef CHAT_SERVER_LOG_H
#define CHAT_SERVER_LOG_H

#include "chat/chat.h"

/* Sets the program name shown in every line. */
void log_init(const char *prog);

/* Writes "<UTC ISO-8601 time> <prog>[<pid>]: <message>\n" to stderr in one
 * write, so lines from one process never interleave. The message goes
 * through chat_sanitize(): control characters, bidirectional overrides and
 * invalid UTF-8 appear escaped ("^[", "\u202e", "\xff"), never raw. */
void log_msg(const char *fmt, ...) CHAT_PRINTF(1, 2);

/* Room log_quote() needs for a string of len bytes. */
#define LOG_QUOTE_MAX(len) ((len)*2 + 3)

/* Writes s into out as a double-quoted string with '"' and '\\' escaped
 * by a backslash, so a peer's name or file name holding quotes and spaces
 * cannot pass for more of the log line; cut to fit cap. Returns out. */
const char *log_quote(char *out, size_t cap, const char *s);

#endif /* CHAT_SERVER_LOG_H */
