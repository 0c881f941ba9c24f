/* Trust in the chat server's certificate (trust.c). */
#ifndef CHAT_CLIENT_TRUST_H
#define CHAT_CLIENT_TRUST_H

#include "client.h"
#include "known.h"

/* After the handshake: 0 when the client trusts the server (a first use
 * says so on stderr and is kept), CHAT_EUNTRUSTED (said why on stderr). */
int trust_check(client_t *c, const chat_tls_peer_t *p);

#endif
