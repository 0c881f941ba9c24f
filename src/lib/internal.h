/* Private interfaces between libchat's own files; never installed. */
#ifndef CHAT_LIB_INTERNAL_H
#define CHAT_LIB_INTERNAL_H

#include "chat/chat.h"

/* net.c: chat_stream_close() on a stream that is still connecting. The
 * connect callback then runs with UV_ECANCELED, then the close callback. */
void chat__connect_cancel(chat_stream_t *s);

/* stream.c: runs the close callback of a stream whose connect was
 * cancelled (its handle is already closed). */
void chat__stream_cancelled(chat_stream_t *s);

/* platform.c: the error a TCP socket has pending (a reset that arrived
 * with the last data, which libuv reports as EOF), or 0. */
int chat__socket_error(uv_stream_t *stream);

/* platform.c: bytes in a TCP socket's send buffer not yet taken by the
 * peer, where the platform tells; else 0. */
size_t chat__socket_unsent(const uv_stream_t *stream);

/* proto.c: non-zero when text holds a bidirectional control or an
 * invisible character (U+00AD, U+200B-U+200F, U+2028, U+2029,
 * U+2060-U+2064, U+FEFF), which make a name look like another. */
int chat__text_deceptive(const char *text, size_t len);

/* stream.c: allocates the bytes a paused stream holds; malloc. A test
 * hook, compiled into every build: test/unit/test_stream.c and
 * test_client_input.c point it at an allocator that fails, to check that
 * the stream then breaks loudly instead of dropping bytes, and that the
 * client says so. Nothing else may set it. */
extern void *(*chat__hold_alloc)(size_t len);

/* stream.c: the descriptor of a libuv transport (tests set socket buffer
 * sizes through it); UV_EINVAL for any other. */
int chat__stream_fileno(const chat_stream_t *s, uv_os_fd_t *fd);

#endif /* CHAT_LIB_INTERNAL_H */
