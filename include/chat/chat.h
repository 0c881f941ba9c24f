/* libchat: the shared core of chat-server and chat-client.
 *
 * Include this one header. Public names start with chat_; chat__ names are
 * private to the library.
 */
#ifndef CHAT_CHAT_H
#define CHAT_CHAT_H

#define CHAT_VERSION_STRING "0.1.0"

#include "buf.h"
#include "error.h"
#include "framer.h"
#include "net.h"
#include "proto.h"
#include "stream.h"
#include "tls.h"
#include "xfer.h"

/* Returns CHAT_VERSION_STRING of the library actually linked. */
const char *chat_version(void);

#endif /* CHAT_CHAT_H */
