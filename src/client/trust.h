/* Trust in the chat server's certificate (trust.c). */
#ifndef CHAT_CLIENT_TRUST_H
#define CHAT_CLIENT_TRUST_H

#include "client.h"

/* Looks hostport ("[host]:port", case-insensitive) up in known-hosts text
 * (lines "[host]:port fingerprint", '#' comments): 1 and fp set when found,
 * 0 when not, -1 when its line holds no fingerprint we can read. */
int trust_known_lookup(const char *text, size_t len, const char *hostport,
                       char fp[CHAT_TLS_FP_MAX]);

void trust_hostport(const char *host, int port, char *out, size_t cap);

/* After the handshake: 0 when the client trusts the server (a first use
 * says so on stderr and is kept), CHAT_EUNTRUSTED (said why on stderr). */
int trust_check(client_t *c, const chat_tls_peer_t *p);

#endif
