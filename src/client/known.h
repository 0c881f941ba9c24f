/* The client's known-hosts file: "[host]:port fingerprint" lines, '#'
 * comments. Pure (no I/O), so that unit tests and a fuzz target use it. */
#ifndef CHAT_CLIENT_KNOWN_H
#define CHAT_CLIENT_KNOWN_H

#include <stddef.h>

#include "chat/chat.h"

/* Looks hostport ("[host]:port", case-insensitive) up in known-hosts text:
 * 1 and fp set when found, 0 when not, -1 when its line holds no
 * fingerprint we can read. */
int trust_known_lookup(const char *text, size_t len, const char *hostport,
                       char fp[CHAT_TLS_FP_MAX]);

/* "[host]:port" for host and port. */
void trust_hostport(const char *host, int port, char *out, size_t cap);

#endif
