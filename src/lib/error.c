/* Error codes: see include/chat/error.h. */
#include "chat/chat.h"

#include <uv.h>

const char *chat_strerror(int err) {
  switch (err) {
#define XX(name, off, msg)                                                     \
  case CHAT_##name:                                                            \
    return msg;
    CHAT_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (err < 0 && err > CHAT__ERRNO_BASE)
    return uv_strerror(err);
  return "unknown error";
}

const char *chat_err_name(int err) {
  switch (err) {
#define XX(name, off, msg)                                                     \
  case CHAT_##name:                                                            \
    return "CHAT_" #name;
    CHAT_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (err < 0 && err > CHAT__ERRNO_BASE)
    return uv_err_name(err);
  return "UNKNOWN";
}

const char *chat_version(void) {
  return CHAT_VERSION_STRING;
}
