/* chat-client: command line, then the loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    "  --share DIR          serve files from DIR (default: the current\n"
    "                       directory); only regular files directly in it\n"
    "  --downloads DIR      save received files in DIR (default: the\n"
    "                       current directory)\n"
    "  --max-transfers N    transfers at once in each direction (default 8);\n"
    "                       one requester may hold half of them (at least 1)\n"
    "  --max-handshakes N   connections to the file port that have not yet\n"
    "                       presented a valid token (default 32, at most 4\n"
    "                       from one address); when full, the oldest goes\n"
    "  --header-timeout S   seconds a connection to the file port may take\n"
    "                       to present its token (default 5)\n"
    "  --stall-timeout S    fail a transfer that moves nothing for S seconds\n"
    "                       (default 30)\n"
    "  --transfer MODE      auto: connect to the owner, relay through the\n"
    "                       server if that fails (default); direct: never\n"
    "                       relay; relay: always relay\n"
    "  --connect-timeout S  seconds a direct connection may take before\n"
    "                       auto mode relays (default 3)\n"
    "  --tls                talk to the server over TLS; its certificate is\n"
    "                       trusted by, in this order: --pin, --ca, the\n"
    "                       system's CAs, else on first use (the key's\n"
    "                       fingerprint is kept in the known-hosts file and\n"
    "                       a later change is refused)\n"
    "  --pin SHA256         trust only the certificate or key with this\n"
    "                       SHA-256 fingerprint (as chat-server logs it)\n"
    "  --ca FILE            trust only certificates these PEM CAs sign\n"
    "  --known-hosts FILE   the known-hosts file (default\n"
    "                       $XDG_CONFIG_HOME/chat-client/known_hosts, else\n"
    "                       ~/.config/chat-client/known_hosts)\n"
    "  --insecure           trust ANY certificate: no protection against a\n"
    "                       man in the middle; for tests only\n"
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
  int n;

  cfg->host = "localhost";
  cfg->share = ".";
  cfg->downloads = ".";
  cfg->max_transfers = CLIENT_DEFAULT_MAX_TRANSFERS;
  cfg->stall_s = CLIENT_DEFAULT_STALL_S;
  cfg->connect_s = CLIENT_DEFAULT_CONNECT_S;
  cfg->header_s = CLIENT_DEFAULT_HEADER_S;
  cfg->max_handshakes = CLIENT_DEFAULT_MAX_HANDSHAKES;
  cfg->transfer = XFER_AUTO;
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
    } else if (take_value(argc, argv, &i, "--share", "--share", &v)) {
      if (v == NULL || *v == '\0')
        return usage_error("%s", "--share needs a directory");
      cfg->share = v;
    } else if (take_value(argc, argv, &i, "--downloads", "--downloads", &v)) {
      if (v == NULL || *v == '\0')
        return usage_error("%s", "--downloads needs a directory");
      cfg->downloads = v;
    } else if (take_value(argc, argv, &i, "--max-transfers", "--max-transfers",
                          &v)) {
      if (parse_port(v, 1, &n) != 0 || n > 1000)
        return usage_error("%s", "--max-transfers takes 1-1000");
      cfg->max_transfers = (unsigned)n;
    } else if (take_value(argc, argv, &i, "--stall-timeout", "--stall-timeout",
                          &v)) {
      if (parse_port(v, 1, &n) != 0 || n > 86400)
        return usage_error("%s", "--stall-timeout takes 1-86400 seconds");
      cfg->stall_s = (unsigned)n;
    } else if (take_value(argc, argv, &i, "--transfer", "--transfer", &v)) {
      if (v != NULL && strcmp(v, "auto") == 0)
        cfg->transfer = XFER_AUTO;
      else if (v != NULL && strcmp(v, "direct") == 0)
        cfg->transfer = XFER_DIRECT;
      else if (v != NULL && strcmp(v, "relay") == 0)
        cfg->transfer = XFER_RELAY;
      else
        return usage_error("%s", "--transfer takes auto, direct or relay");
    } else if (take_value(argc, argv, &i, "--connect-timeout",
                          "--connect-timeout", &v)) {
      if (parse_port(v, 1, &n) != 0 || n > 3600)
        return usage_error("%s", "--connect-timeout takes 1-3600 seconds");
      cfg->connect_s = (unsigned)n;
    } else if (take_value(argc, argv, &i, "--max-handshakes",
                          "--max-handshakes", &v)) {
      if (parse_port(v, 1, &n) != 0 || n > 10000)
        return usage_error("%s", "--max-handshakes takes 1-10000");
      cfg->max_handshakes = (unsigned)n;
    } else if (take_value(argc, argv, &i, "--header-timeout",
                          "--header-timeout", &v)) {
      if (parse_port(v, 1, &n) != 0 || n > 3600)
        return usage_error("%s", "--header-timeout takes 1-3600 seconds");
      cfg->header_s = (unsigned)n;
    } else if (strcmp(a, "--tls") == 0) {
      cfg->tls = 1;
    } else if (strcmp(a, "--insecure") == 0) {
      cfg->insecure = 1;
    } else if (take_value(argc, argv, &i, "--pin", "--pin", &v)) {
      if (v == NULL || chat_tls_fp_parse(v, cfg->pin) != 0)
        return usage_error("%s", "--pin takes a SHA-256 fingerprint: 64 hex "
                                 "digits, colons allowed");
    } else if (take_value(argc, argv, &i, "--ca", "--ca", &v)) {
      if (v == NULL || *v == '\0')
        return usage_error("%s", "--ca needs a file");
      cfg->ca_file = v;
    } else if (take_value(argc, argv, &i, "--known-hosts", "--known-hosts",
                          &v)) {
      if (v == NULL || *v == '\0')
        return usage_error("%s", "--known-hosts needs a file");
      cfg->known_hosts = v;
    } else {
      return usage_error("unexpected argument '%s'", a);
    }
  }
  if ((cfg->pin[0] != '\0' || cfg->ca_file != NULL || cfg->insecure ||
       cfg->known_hosts != NULL) &&
      !cfg->tls)
    return usage_error("%s", "--pin, --ca, --known-hosts and --insecure go "
                             "with --tls");
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

/* Resolves a directory option to an absolute path without links, at start-up
 * (before the loop runs, so the synchronous calls block nobody). */
static char *resolve_dir(uv_loop_t *loop, const char *opt, const char *dir) {
  uv_fs_t req;
  char *path = NULL;
  int rc;

  rc = uv_fs_realpath(loop, &req, dir, NULL);
  if (rc == 0)
    path = strdup(req.ptr);
  uv_fs_req_cleanup(&req);
  if (rc == 0) {
    rc = uv_fs_stat(loop, &req, path, NULL);
    if (rc == 0 && !(req.statbuf.st_mode & S_IFDIR))
      rc = UV_ENOTDIR;
    uv_fs_req_cleanup(&req);
  }
  if (rc != 0) {
    fprintf(stderr, "chat-client: %s %s: %s\n", opt, dir, chat_strerror(rc));
    free(path);
    return NULL;
  }
  return path;
}

/* The default known-hosts file; its directory is made when missing. */
static char *known_hosts_path(uv_loop_t *loop) {
  const char *x = getenv("XDG_CONFIG_HOME");
  char home[1024], dir[1100], *path;
  size_t n = sizeof(home);
  uv_fs_t req;

  if (x != NULL && x[0] == '/') {
    snprintf(dir, sizeof(dir), "%s/chat-client", x);
  } else {
    if (uv_os_homedir(home, &n) != 0)
      return NULL;
    snprintf(dir, sizeof(dir), "%s/.config", home);
    uv_fs_mkdir(loop, &req, dir, 0700, NULL);
    uv_fs_req_cleanup(&req);
    snprintf(dir, sizeof(dir), "%s/.config/chat-client", home);
  }
  uv_fs_mkdir(loop, &req, dir, 0700, NULL);
  uv_fs_req_cleanup(&req);
  n = strlen(dir) + sizeof("/known_hosts");
  path = malloc(n);
  if (path != NULL)
    snprintf(path, n, "%s/known_hosts", dir);
  return path;
}

/* Reads the known-hosts file at start-up (at most 1 MiB); a missing file
 * is an empty one. */
static int read_known(uv_loop_t *loop, const char *path, char **text,
                      size_t *len) {
  uv_fs_t req;
  uv_file fd;
  char *buf;
  uv_buf_t b;
  int rc;

  *text = NULL;
  *len = 0;
  fd = uv_fs_open(loop, &req, path, UV_FS_O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd == UV_ENOENT)
    return 0;
  if (fd < 0)
    return fd;
  buf = malloc(1 << 20);
  if (buf == NULL) {
    rc = UV_ENOMEM;
  } else {
    b = uv_buf_init(buf, 1 << 20);
    rc = uv_fs_read(loop, &req, fd, &b, 1, 0, NULL);
    uv_fs_req_cleanup(&req);
  }
  uv_fs_close(loop, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *text = buf;
  *len = (size_t)rc;
  return 0;
}

int main(int argc, char **argv) {
  client_config_t cfg;
  client_t client;
  uv_loop_t *loop = uv_default_loop();
  char *share, *downloads, *known_path = NULL, *known_text = NULL;
  size_t known_len = 0;
  chat_tls_ctx_t *tls_ctx = NULL;
  int rc;

  chat_platform_init();
  memset(&cfg, 0, sizeof(cfg));
  rc = parse_args(argc, argv, &cfg);
  if (rc != 0)
    return rc;
  share = resolve_dir(loop, "--share", cfg.share);
  downloads = resolve_dir(loop, "--downloads", cfg.downloads);
  if (share == NULL || downloads == NULL) {
    free(share);
    free(downloads);
    return 2;
  }
  cfg.share = share;
  cfg.downloads = downloads;
  if (cfg.tls) {
    char err[CHAT_TLS_ERR_MAX];
    if (cfg.known_hosts == NULL &&
        (cfg.known_hosts = known_path = known_hosts_path(loop)) == NULL) {
      fprintf(stderr, "chat-client: no home directory for the known-hosts "
                      "file; use --known-hosts\n");
      return 2;
    }
    rc = read_known(loop, cfg.known_hosts, &known_text, &known_len);
    if (rc != 0) {
      fprintf(stderr, "chat-client: cannot read %s: %s\n", cfg.known_hosts,
              chat_strerror(rc));
      return 2;
    }
    if (chat_tls_client_ctx(&tls_ctx, cfg.ca_file, err, sizeof(err)) != 0) {
      fprintf(stderr, "chat-client: %s%s%s\n", err,
              cfg.ca_file != NULL ? ": " : "",
              cfg.ca_file != NULL ? cfg.ca_file : "");
      return 2;
    }
    cfg.tls_ctx = tls_ctx;
    cfg.known_text = known_text;
    cfg.known_len = known_len;
    if (cfg.insecure)
      fprintf(stderr, "chat-client: --insecure: the server's certificate is "
                      "NOT checked; anyone on the path can read and change "
                      "this chat\n");
  }
  {
    char err[CHAT_TLS_ERR_MAX], cert_fp[CHAT_TLS_FP_MAX];
    if (chat_tls_server_ctx_ephemeral(&cfg.file_tls, "chat-client", err,
                                      sizeof(err)) != 0 ||
        chat_tls_client_ctx(&cfg.fetch_tls, NULL, err, sizeof(err)) != 0 ||
        chat_tls_ctx_fingerprints(cfg.file_tls, cert_fp, cfg.file_fp) != 0) {
      fprintf(stderr,
              "chat-client: file transfers will not be encrypted: "
              "%s\n",
              err);
      chat_tls_ctx_free(cfg.file_tls);
      chat_tls_ctx_free(cfg.fetch_tls);
      cfg.file_tls = cfg.fetch_tls = NULL;
      cfg.file_fp[0] = '\0';
    }
  }
  rc = client_start(&client, loop, &cfg);
  if (rc != 0) {
    fprintf(stderr, "chat-client: cannot start: %s\n", chat_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  chat_tls_ctx_free(tls_ctx);
  chat_tls_ctx_free(cfg.file_tls);
  chat_tls_ctx_free(cfg.fetch_tls);
  free(known_text);
  free(known_path);
  free(share);
  free(downloads);
  return client.exit_code;
}
