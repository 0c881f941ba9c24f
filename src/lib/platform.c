/* The one place for platform differences. */
#include "chat/chat.h"

#ifndef _WIN32
#include <signal.h>
#endif

void chat_platform_init(void) {
#ifndef _WIN32
  /* A peer that closed its end must give UV_EPIPE, not kill us. */
  signal(SIGPIPE, SIG_IGN);
#ifdef SIGXFSZ
  /* A write past the file-size limit must fail with EFBIG, so a transfer
   * fails cleanly instead of the process dying. */
  signal(SIGXFSZ, SIG_IGN);
#endif
#endif
}
