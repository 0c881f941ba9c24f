/* The server's certificate: from --cert/--key, or (--tls alone) the one
 * kept in the state directory, made there on first start.
 *
 * This runs once at start-up, before the loop serves anyone, so its file
 * calls are libuv's synchronous uv_fs_* (no callback): portable, and
 * nothing is waiting on the loop yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define STATE_SUBDIR "chat-server"

/* The default state directory: $XDG_STATE_HOME/chat-server, else
 * ~/.local/state/chat-server. */
static int default_state_dir(char *out, size_t cap) {
  const char *x = getenv("XDG_STATE_HOME");
  char home[1024];
  size_t n = sizeof(home);

  if (x != NULL && x[0] == '/')
    return snprintf(out, cap, "%s/" STATE_SUBDIR, x) < (int)cap ? 0 : -1;
  if (uv_os_homedir(home, &n) != 0)
    return -1;
  return snprintf(out, cap, "%s/.local/state/" STATE_SUBDIR, home) < (int)cap
             ? 0
             : -1;
}

/* mkdir -p, each new directory 0700. */
static int make_dirs(const char *path) {
  char p[1024];
  uv_fs_t req;
  size_t n = strlen(path);
  int rc;

  if (n == 0 || n >= sizeof(p))
    return UV_ENAMETOOLONG;
  memcpy(p, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\\' && p[i] != '\0')
      continue;
    char c = p[i];
    p[i] = '\0';
    rc = uv_fs_mkdir(NULL, &req, p, 0700, NULL);
    uv_fs_req_cleanup(&req);
    p[i] = c;
    if (rc != 0 && rc != UV_EEXIST)
      return rc;
  }
  return 0;
}

static int exists(const char *path) {
  uv_fs_t req;
  int rc = uv_fs_stat(NULL, &req, path, NULL);

  uv_fs_req_cleanup(&req);
  return rc == 0;
}

/* Writes text to path through a temporary name, created with mode. */
static int write_file(const char *path, const char *text, int mode) {
  char tmp[1100];
  uv_fs_t req;
  uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
  uv_file fd;
  int rc;

  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  uv_fs_unlink(NULL, &req, tmp, NULL);
  uv_fs_req_cleanup(&req);
  fd = uv_fs_open(NULL, &req, tmp,
                  UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL, mode, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0)
    return fd;
  rc = uv_fs_write(NULL, &req, fd, &b, 1, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (rc >= 0 && (size_t)rc != b.len)
    rc = UV_EIO;
  if (rc >= 0) {
    rc = uv_fs_fsync(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (rc >= 0) {
    rc = uv_fs_rename(NULL, &req, tmp, path, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (rc < 0) {
    uv_fs_unlink(NULL, &req, tmp, NULL);
    uv_fs_req_cleanup(&req);
    return rc;
  }
  return 0;
}

/* Makes a key and certificate in dir (key first, mode 0600). */
static int make_cert(const char *dir, const char *cert, const char *key) {
  char err[CHAT_TLS_ERR_MAX], host[256];
  char *cert_pem, *key_pem;
  size_t hn = sizeof(host);
  int rc;

  if (uv_os_gethostname(host, &hn) != 0)
    snprintf(host, sizeof(host), "chat-server");
  rc = chat_tls_self_signed_pem(host, &cert_pem, &key_pem, err, sizeof(err));
  if (rc != 0) {
    log_msg("TLS: %s", err);
    return rc;
  }
  rc = write_file(key, key_pem, 0600);
  if (rc == 0)
    rc = write_file(cert, cert_pem, 0644);
  memset(key_pem, 0, strlen(key_pem));
  free(key_pem);
  free(cert_pem);
  if (rc != 0)
    log_msg("TLS: cannot write the certificate in %s: %s", dir,
            chat_strerror(rc));
  else
    log_msg("TLS: made a self-signed certificate for %s in %s", host, dir);
  return rc;
}

int server_tls_setup(server_config_t *cfg) {
  char dir[1024], cert[1100], key[1100], err[CHAT_TLS_ERR_MAX];
  char cert_fp[CHAT_TLS_FP_MAX], key_fp[CHAT_TLS_FP_MAX];
  const char *cf = cfg->tls_cert, *kf = cfg->tls_key;
  int rc;

  if (cf == NULL && !cfg->tls)
    return 0;
  if (cf == NULL) {
    if (cfg->state_dir != NULL)
      snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
    else if (default_state_dir(dir, sizeof(dir)) != 0) {
      log_msg("TLS: no home directory for the state; use --state-dir");
      return CHAT_EARG;
    }
    rc = make_dirs(dir);
    if (rc != 0) {
      log_msg("TLS: cannot make the state directory %s: %s", dir,
              chat_strerror(rc));
      return rc;
    }
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    if (!exists(cert) || !exists(key)) {
      rc = make_cert(dir, cert, key);
      if (rc != 0)
        return rc;
    }
    cf = cert;
    kf = key;
  }
  rc = chat_tls_server_ctx(&cfg->tls_ctx, cf, kf, err, sizeof(err));
  if (rc != 0) {
    log_msg("TLS: %s (%s, %s)", err, cf, kf);
    return rc;
  }
  chat_tls_ctx_fingerprints(cfg->tls_ctx, cert_fp, key_fp);
  log_msg("TLS on, certificate %s", cf);
  log_msg("TLS certificate SHA256 %s", cert_fp);
  log_msg("TLS key SHA256 %s", key_fp);
  return 0;
}
