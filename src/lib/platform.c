/* The one place for platform differences. */
#include "chat/chat.h"

#ifndef _WIN32
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif
#else
#include <winsock2.h>
#endif

#include "internal.h"

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

int chat__socket_error(uv_stream_t *stream) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof(err);

  if (stream->type != UV_TCP || uv_fileno((uv_handle_t *)stream, &fd) != 0)
    return 0;
#ifndef _WIN32
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
    return 0;
  return uv_translate_sys_error(err);
#else
  if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0 ||
      err == 0)
    return 0;
  return uv_translate_sys_error(err);
#endif
}

size_t chat__socket_unsent(const uv_stream_t *stream) {
  uv_os_fd_t fd;

  if (stream->type != UV_TCP ||
      uv_fileno((const uv_handle_t *)stream, &fd) != 0)
    return 0;
#if defined(__linux__)
  {
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0)
      return (size_t)n;
  }
#elif defined(__APPLE__)
  {
    int n = 0;
    socklen_t len = sizeof(n);
    if (getsockopt(fd, SOL_SOCKET, SO_NWRITE, &n, &len) == 0 && n > 0)
      return (size_t)n;
  }
#else
  (void)fd;
#endif
  return 0;
}
