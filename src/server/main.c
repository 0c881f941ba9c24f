/* chat-server: command line, then the loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "server.h"

static const char usage_text[] =
    "Usage: chat-server [options] <port>\n"
    "\n"
    "Serves a chat on <port> (0 picks a free port) on every IPv4 and IPv6\n"
    "address. Each line a client sends reaches every other client as\n"
    "\"<name>: <message>\". Logs go to stderr.\n"
    "\n"
    "Options:\n"
    "  --max-line BYTES     longest line accepted (default 8192)\n"
    "  --sendq BYTES        unsent output a client may have queued before it\n"
    "                       is disconnected as a slow consumer (default "
    "1048576)\n"
    "  --max-clients N      connected clients in total (default 10000)\n"
    "  --max-per-ip N       connections per source address (an IPv6 /64\n"
    "                       counts as one), 0 = unlimited (default 100)\n"
    "  --rate N             sustained lines per second per client, 0 = no\n"
    "                       flood control (default 20)\n"
    "  --burst N            lines a client may send at once before --rate\n"
    "                       applies (default 100)\n"
    "  --register-timeout S seconds to send a name before being closed\n"
    "                       (default 30)\n"
    "  --no-relay           never relay file transfers through this server\n"
    "  --max-relays N       file relays at once (default 64)\n"
    "  --max-relays-per-user N\n"
    "                       relays one user has asked for (as requester; an\n"
    "                       owner is not counted), 0 = unlimited (default 4)\n"
    "  --max-relays-per-ip N\n"
    "                       relays asked for from one address (the\n"
    "                       requester's), 0 = unlimited (default 16)\n"
    "  --relay-rate BYTES   bytes per second per relay, 0 = unlimited\n"
    "                       (default 0)\n"
    "  --relay-wait S       seconds a relay waits for the owner to connect\n"
    "                       (default 5)\n"
    "  --tls                also accept TLS on <port> (a connection whose\n"
    "                       first byte is a TLS handshake is TLS, anything\n"
    "                       else the plain line protocol), with a self-\n"
    "                       signed ECDSA P-256 certificate made on first\n"
    "                       start and kept in the state directory; its\n"
    "                       SHA-256 fingerprint is logged at start-up\n"
    "  --cert FILE          TLS with this PEM certificate (and chain)\n"
    "  --key FILE           the private key for --cert (PEM)\n"
    "  --require-tls        refuse plain connections (implies --tls)\n"
    "  --state-dir DIR      where --tls keeps cert.pem and key.pem\n"
    "                       (default $XDG_STATE_HOME/chat-server, else\n"
    "                       ~/.local/state/chat-server)\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n";

static int usage_error(const char *fmt, ...) CHAT_PRINTF(1, 2);
static int usage_error(const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "chat-server: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (try 'chat-server --help')\n");
  return 2;
}

/* Parses a whole decimal number in [min, max]. */
static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out) {
  char *end;
  unsigned long long v;

  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name,
                             int *matched) {
  size_t n = strlen(name);
  const char *a = argv[*i];

  *matched = 0;
  if (strncmp(a, name, n) != 0)
    return NULL;
  if (a[n] == '=') {
    *matched = 1;
    return a + n + 1;
  }
  if (a[n] != '\0')
    return NULL;
  *matched = 1;
  if (*i + 1 >= argc)
    return NULL;
  return argv[++*i];
}

typedef struct {
  const char *name;
  unsigned long long min, max;
  size_t *dst;
} num_opt_t;

static int parse_args(int argc, char **argv, server_config_t *cfg) {
  size_t relay_wait = cfg->relay_wait_s;
  size_t register_timeout = cfg->register_timeout_s;
  num_opt_t opts[] = {
      {"--max-line", 16, 16 * 1024 * 1024, &cfg->max_line},
      {"--sendq", 1024, (unsigned long long)1 << 40, &cfg->sendq},
      {"--max-clients", 1, 10000000, &cfg->max_clients},
      {"--max-relays-per-user", 0, 100000, &cfg->max_relays_per_user},
      {"--max-relays-per-ip", 0, 100000, &cfg->max_relays_per_ip},
      {"--max-relays", 1, 100000, &cfg->max_relays},
      {"--relay-rate", 0, (unsigned long long)1 << 40, &cfg->relay_rate},
      {"--relay-wait", 1, 3600, &relay_wait},
      {"--max-per-ip", 0, 10000000, &cfg->max_per_ip},
      {"--rate", 0, 1000000, &cfg->rate},
      {"--burst", 1, 1000000, &cfg->burst},
      {"--register-timeout", 1, 86400, &register_timeout},
  };
  const char *port = NULL, *v;
  unsigned long long num;
  int matched;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      exit(0);
    }
    if (strcmp(a, "--no-relay") == 0) {
      cfg->relay = 0;
      continue;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("chat-server %s (libchat %s, libuv %s)\n", CHAT_PROGRAM_VERSION,
             chat_version(), uv_version_string());
      exit(0);
    }
    if (strcmp(a, "--tls") == 0) {
      cfg->tls = 1;
      continue;
    }
    if (strcmp(a, "--require-tls") == 0) {
      cfg->tls = cfg->require_tls = 1;
      continue;
    }
    {
      static const char *const str_opts[] = {"--cert", "--key", "--state-dir"};
      const char **dst[] = {&cfg->tls_cert, &cfg->tls_key, &cfg->state_dir};
      matched = 0;
      for (size_t k = 0; k < 3 && !matched; k++) {
        v = opt_value(argc, argv, &i, str_opts[k], &matched);
        if (matched && (v == NULL || *v == '\0'))
          return usage_error("%s needs a value", str_opts[k]);
        if (matched)
          *dst[k] = v;
      }
      if (matched)
        continue;
    }
    matched = 0;
    for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !matched; k++) {
      v = opt_value(argc, argv, &i, opts[k].name, &matched);
      if (!matched)
        continue;
      if (parse_num(v, opts[k].min, opts[k].max, &num) != 0)
        return usage_error("invalid value for %s", opts[k].name);
      *opts[k].dst = (size_t)num;
    }
    if (matched)
      continue;
    if (a[0] == '-' && a[1] != '\0')
      return usage_error("unknown option '%s'", a);
    if (port != NULL)
      return usage_error("unexpected argument '%s'", a);
    port = a;
  }
  if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
    return usage_error("%s", "--cert and --key go together");
  if (cfg->tls_cert != NULL)
    cfg->tls = 1;
  cfg->relay_wait_s = (unsigned)relay_wait;
  cfg->register_timeout_s = (unsigned)register_timeout;
  if (port == NULL)
    return usage_error("%s", "missing <port>");
  if (parse_num(port, 0, 65535, &num) != 0)
    return usage_error("invalid port '%s': use a number from 0 to 65535", port);
  cfg->port = (int)num;
  return 0;
}

/* Logs one handle that a shutdown path forgot to close. */
static void log_open_handle(uv_handle_t *h, void *arg) {
  unsigned *n = arg;

  (*n)++;
  log_msg(
      "handle left open: %s%s%s", uv_handle_type_name(uv_handle_get_type(h)),
      uv_is_active(h) ? ", active" : "", uv_is_closing(h) ? ", closing" : "");
}

int main(int argc, char **argv) {
  server_config_t cfg;
  server_t srv;
  uv_loop_t *loop;
  unsigned left = 0;
  int rc;

  chat_platform_init();
  log_init("chat-server");
  server_config_init(&cfg);
  rc = parse_args(argc, argv, &cfg);
  if (rc != 0)
    return rc;
  if (server_tls_setup(&cfg) != 0) {
    fprintf(stderr, "chat-server: cannot set up TLS (see the log above)\n");
    return 1;
  }
  loop = uv_default_loop();
  if (loop == NULL) {
    fprintf(stderr, "chat-server: cannot start the event loop (out of "
                    "memory or descriptors)\n");
    return 1;
  }
  rc = server_start(&srv, loop, &cfg);
  if (rc != 0) {
    if (strcmp(srv.start_error, "cannot listen") == 0)
      fprintf(stderr, "chat-server: cannot listen on port %d: %s\n", cfg.port,
              chat_strerror(rc));
    else
      fprintf(stderr, "chat-server: %s: %s\n", srv.start_error,
              chat_strerror(rc));
    uv_run(loop, UV_RUN_DEFAULT); /* let what was opened finish closing */
    server_free(&srv);
    chat_tls_ctx_free(cfg.tls_ctx);
    if (uv_loop_close(loop) != 0)
      uv_walk(loop, log_open_handle, &left);
    return 1;
  }
  log_msg("listening on port %d (IPv4%s), max line %zu, sendq %zu, rate "
          "%zu/s burst %zu, relay %s, TLS %s",
          srv.port, srv.listener.ipv6 ? " and IPv6" : "", cfg.max_line,
          cfg.sendq, cfg.rate, cfg.burst, cfg.relay ? "on" : "off",
          cfg.require_tls ? "required"
          : cfg.tls       ? "on"
                          : "off");
  uv_run(loop, UV_RUN_DEFAULT);
  server_free(&srv);
  chat_tls_ctx_free(cfg.tls_ctx);
  rc = uv_loop_close(loop);
  if (rc == 0) {
    log_msg("stopped");
    return 0;
  }
  uv_walk(loop, log_open_handle, &left);
  log_msg("stopped (handles left open: %u)", left);
#ifndef NDEBUG
  return 70; /* EX_SOFTWARE: a shutdown path forgot a handle; tests see it */
#else
  return 0;
#endif
}
