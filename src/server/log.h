/* Timestamped log lines on stderr. */
#ifndef CHAT_SERVER_LOG_H
#define CHAT_SERVER_LOG_H

#include "chat/chat.h"

/* Sets the program name shown in every line. */
void log_init(const char *prog);

/* Writes "<UTC ISO-8601 time> <prog>[<pid>]: <message>\n" to stderr in one
 * write, so lines from one process never interleave. */
void log_msg(const char *fmt, ...) CHAT_PRINTF(1, 2);

#endif /* CHAT_SERVER_LOG_H */
