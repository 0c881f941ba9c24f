/* chat-client: command line, then the loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"

static const char usage_text[] =
    "Usage: chat-client -l <file-port> -p <server-port> [-s <host>]\n"
    "\n"
    "Joins the chat server at <host> (default localhost) port <server-port>.\n"
    "The first line typed is your user name; then a menu offers:\n"
    "  m  send a message      f  request a file      x  exit\n"
    "Messages from others are printed as \"<name>: <message>\".\n"
    "\n"
    "Options:\n"
    "  -l, --listen PORT    port to serve file requests on (0 = none)\n"
    "  -p, --port PORT      the chat server's port\n"
    "  -s, --server HOST    the chat server's host (default localhost)\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n";

static int usage_error(const char *fmt, ...) CHAT_PRINTF(1, 2);
static int usage_error(const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "chat-client: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (try 'chat-client --help')\n");
  return 2;
}

static int parse_port(const char *s, int min, int *out) {
  char *end;
  long v;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > 65535)
    return -1;
  *out = (int)v;
  return 0;
}

/* "-x VALUE", "-xVALUE", "--long VALUE" or "--long=VALUE". */
static int take_value(int argc, char **argv, int *i, const char *shrt,
                      const char *lng, const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(lng);

  if (strcmp(a, shrt) == 0 || strcmp(a, lng) == 0) {
    *val = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
  }
  if (strncmp(a, shrt, 2) == 0 && a[2] != '\0' && a[1] != '-') {
    *val = a + 2;
    return 1;
  }
  if (strncmp(a, lng, n) == 0 && a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, client_config_t *cfg) {
  const char *lport = NULL, *port = NULL, *v;

  cfg->host = "localhost";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      exit(0);
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("chat-client %s (libchat %s, libuv %s)\n", CHAT_PROGRAM_VERSION,
             chat_version(), uv_version_string());
      exit(0);
    }
    if (take_value(argc, argv, &i, "-l", "--listen", &v)) {
      lport = v;
      if (v == NULL)
        return usage_error("%s", "-l needs a port");
    } else if (take_value(argc, argv, &i, "-p", "--port", &v)) {
      port = v;
      if (v == NULL)
        return usage_error("%s", "-p needs a port");
    } else if (take_value(argc, argv, &i, "-s", "--server", &v)) {
      if (v == NULL || *v == '\0')
        return usage_error("%s", "-s needs a host");
      cfg->host = v;
    } else {
      return usage_error("unexpected argument '%s'", a);
    }
  }
  if (port == NULL)
    return usage_error("%s", "missing -p <server-port>");
  if (parse_port(port, 1, &cfg->port) != 0)
    return usage_error("invalid server port '%s': use 1-65535", port);
  if (lport == NULL)
    return usage_error("%s", "missing -l <file-port>");
  if (parse_port(lport, 0, &cfg->file_port) != 0)
    return usage_error("invalid file port '%s': use 0-65535", lport);
  return 0;
}

int main(int argc, char **argv) {
  client_config_t cfg;
  client_t client;
  uv_loop_t *loop = uv_default_loop();
  int rc;

  chat_platform_init();
  memset(&cfg, 0, sizeof(cfg));
  rc = parse_args(argc, argv, &cfg);
  if (rc != 0)
    return rc;
  rc = client_start(&client, loop, &cfg);
  if (rc != 0) {
    fprintf(stderr, "chat-client: cannot start: %s\n", chat_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return client.exit_code;
}
