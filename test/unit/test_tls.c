/* Loop-level unit tests of the TLS filter (include/chat/tls.h): a client
 * stream and a server stream on one loop, each over one end of its own
 * socket pair; the test relays the bytes between the other two ends in
 * slices of a chosen size (one byte: the records arrive split at every
 * byte boundary), and can cut the relay. Every test closes what it opened
 * and ends with uv_loop_close() == 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/chat.h"

#define MAX_EVENTS 8

typedef struct fixture_s fixture_t;

typedef struct {
  chat_stream_t s; /* first: the callbacks get &e->s */
  fixture_t *fx;
  char *got; /* lines read, each with '\n' */
  size_t got_len, got_cap;
  int nlines;
  int events[MAX_EVENTS];
  int nevents;
  int hs_calls, hs_status;
  int pause_after; /* read_stop() after this many lines, 0 = never */
  int closed;
  int raw; /* the test's end of this stream's socket pair */
} end_t;

typedef struct {
  char buf[65536];
  size_t len, off;
} pipe_buf_t;

struct fixture_s {
  uv_loop_t loop;
  uv_idle_t idle;
  end_t cli, srv;
  pipe_buf_t c2s, s2c;
  size_t slice; /* bytes relayed per write */
  int cut;      /* stop relaying */
  uint64_t relayed_c2s;
  chat_tls_ctx_t *sctx, *cctx;
};

static void on_line(chat_stream_t *s, const char *line, size_t len) {
  end_t *e = (end_t *)s;

  if (e->got_len + len + 1 > e->got_cap) {
    e->got_cap = (e->got_len + len + 1) * 2;
    e->got = realloc(e->got, e->got_cap);
    assert_non_null(e->got);
  }
  memcpy(e->got + e->got_len, line, len);
  e->got_len += len;
  e->got[e->got_len++] = '\n';
  e->nlines++;
  if (e->pause_after > 0 && e->nlines == e->pause_after)
    chat_stream_read_stop(s);
}

static void on_event(chat_stream_t *s, int status) {
  end_t *e = (end_t *)s;

  assert_true(e->nevents < MAX_EVENTS);
  e->events[e->nevents++] = status;
}

static void on_handshake(chat_stream_t *s, int status) {
  end_t *e = (end_t *)s;

  e->hs_calls++;
  e->hs_status = status;
}

static void on_closed(chat_stream_t *s) {
  ((end_t *)s)->closed = 1;
}

/* Moves what one raw end has to the other, at most a slice per call. */
static void relay(fixture_t *fx, int from, int to, pipe_buf_t *b,
                  uint64_t *count) {
  ssize_t n;

  if (b->off == b->len) {
    b->off = b->len = 0;
    n = read(from, b->buf, sizeof(b->buf));
    if (n <= 0)
      return;
    b->len = (size_t)n;
  }
  n = write(to, b->buf + b->off,
            b->len - b->off < fx->slice ? b->len - b->off : fx->slice);
  if (n > 0) {
    b->off += (size_t)n;
    if (count != NULL)
      *count += (uint64_t)n;
  }
}

static void on_idle(uv_idle_t *h) {
  fixture_t *fx = h->data;

  if (fx->cut)
    return;
  relay(fx, fx->cli.raw, fx->srv.raw, &fx->c2s, &fx->relayed_c2s);
  relay(fx, fx->srv.raw, fx->cli.raw, &fx->s2c, NULL);
}

typedef int (*pred_t)(fixture_t *fx);

/* Runs the loop until pred holds or about ms milliseconds passed. */
static void run_until(fixture_t *fx, pred_t pred, uint64_t ms) {
  uint64_t end = uv_hrtime() + ms * 1000000;

  while ((pred == NULL || !pred(fx)) && uv_hrtime() < end)
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void end_open(fixture_t *fx, end_t *e) {
  int fds[2];

  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
  e->fx = fx;
  e->raw = fds[1];
  assert_int_equal(chat_stream_open_fd(&fx->loop, &e->s, fds[0], 1, 1 << 20),
                   0);
  assert_int_equal(e->s.kind, CHAT_STREAM_PIPE);
}

static int setup(void **state) {
  fixture_t *fx = calloc(1, sizeof(*fx));
  char err[CHAT_TLS_ERR_MAX];

  assert_non_null(fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(uv_idle_init(&fx->loop, &fx->idle), 0);
  fx->idle.data = fx;
  assert_int_equal(uv_idle_start(&fx->idle, on_idle), 0);
  fx->slice = sizeof(fx->c2s.buf);
  assert_int_equal(
      chat_tls_server_ctx_ephemeral(&fx->sctx, "test", err, sizeof(err)), 0);
  assert_int_equal(chat_tls_client_ctx(&fx->cctx, NULL, err, sizeof(err)), 0);
  end_open(fx, &fx->cli);
  end_open(fx, &fx->srv);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture_t *fx = *state;

  chat_stream_close(&fx->cli.s, on_closed);
  chat_stream_close(&fx->srv.s, on_closed);
  uv_close((uv_handle_t *)&fx->idle, NULL);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_true(fx->cli.closed);
  assert_true(fx->srv.closed);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  close(fx->cli.raw);
  close(fx->srv.raw);
  free(fx->cli.got);
  free(fx->srv.got);
  chat_tls_ctx_free(fx->sctx);
  chat_tls_ctx_free(fx->cctx);
  free(fx);
  return 0;
}

/* Both ends TLS: the server sniffs, the client pushes TLS and writes at
 * once (before the handshake). */
static void start(fixture_t *fx) {
  assert_int_equal(chat_stream_sniff_tls(&fx->srv.s, fx->sctx, on_handshake),
                   0);
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  assert_int_equal(
      chat_stream_start_tls(&fx->cli.s, fx->cctx, "test", on_handshake), 0);
  assert_int_equal(chat_stream_read_start(&fx->cli.s, on_line, on_event), 0);
  assert_true(chat_stream_is_tls(&fx->cli.s));
}

static int srv_has_two(fixture_t *fx) {
  return fx->srv.nlines >= 2;
}

static int cli_has_one(fixture_t *fx) {
  return fx->cli.nlines >= 1;
}

static void exchange(fixture_t *fx) {
  chat_tls_peer_t peer;
  char cert_fp[CHAT_TLS_FP_MAX], key_fp[CHAT_TLS_FP_MAX];

  start(fx);
  assert_int_equal(chat_stream_write_copy(&fx->cli.s, "alice\nhi there\n", 15),
                   0);
  run_until(fx, srv_has_two, 5000);
  assert_int_equal(fx->srv.nlines, 2);
  assert_memory_equal(fx->srv.got, "alice\nhi there\n", 15);
  assert_true(chat_stream_is_tls(&fx->srv.s));
  assert_int_equal(fx->cli.hs_calls, 1);
  assert_int_equal(fx->cli.hs_status, 0);
  assert_int_equal(fx->srv.hs_calls, 1);
  assert_int_equal(fx->srv.hs_status, 0);
  /* The client sees the server's certificate: self-signed, so no CA
   * vouches for it, and its fingerprints are the context's own. */
  assert_int_equal(chat_stream_tls_peer(&fx->cli.s, &peer), 0);
  assert_int_equal(chat_tls_ctx_fingerprints(fx->sctx, cert_fp, key_fp), 0);
  assert_string_equal(peer.cert_fp, cert_fp);
  assert_string_equal(peer.key_fp, key_fp);
  assert_int_equal(strlen(peer.cert_fp), 64);
  assert_false(peer.ca_ok);
  assert_string_equal(peer.version, "TLSv1.3");
  assert_int_equal(chat_stream_write_copy(&fx->srv.s, "* welcome\n", 10), 0);
  run_until(fx, cli_has_one, 5000);
  assert_int_equal(fx->cli.nlines, 1);
  assert_memory_equal(fx->cli.got, "* welcome\n", 10);
  assert_int_equal(fx->srv.nevents, 0);
  assert_int_equal(fx->cli.nevents, 0);
}

static void test_lines_both_ways(void **state) {
  exchange(*state);
}

/* The same with every byte of every record (the handshake's too) arriving
 * on its own. */
static void test_records_split_at_every_byte(void **state) {
  fixture_t *fx = *state;

  fx->slice = 1;
  exchange(fx);
}

static int srv_ended(fixture_t *fx) {
  return fx->srv.nevents > 0;
}

/* chat_stream_end() sends close_notify: the far end reads every line, then
 * a clean UV_EOF. */
static void test_end_is_a_clean_eof(void **state) {
  fixture_t *fx = *state;

  start(fx);
  assert_int_equal(chat_stream_write_copy(&fx->cli.s, "a\nb\nc\n", 6), 0);
  chat_stream_end(&fx->cli.s, on_closed);
  run_until(fx, srv_ended, 5000);
  assert_int_equal(fx->srv.nlines, 3);
  assert_memory_equal(fx->srv.got, "a\nb\nc\n", 6);
  assert_int_equal(fx->srv.nevents, 1);
  assert_int_equal(fx->srv.events[0], UV_EOF);
}

/* The bytes end without close_notify (a cut connection, or an attacker
 * dropping the tail): CHAT_ETRUNC, never UV_EOF. */
static void test_end_without_close_notify_is_truncation(void **state) {
  fixture_t *fx = *state;

  start(fx);
  assert_int_equal(chat_stream_write_copy(&fx->cli.s, "a\n", 2), 0);
  run_until(fx, srv_has_two, 300); /* the line arrives */
  assert_int_equal(fx->srv.nlines, 1);
  /* The client's end closes without TLS knowing: its raw end shuts. */
  shutdown(fx->srv.raw, SHUT_WR);
  fx->cut = 1;
  run_until(fx, srv_ended, 5000);
  assert_int_equal(fx->srv.nevents, 1);
  assert_int_equal(fx->srv.events[0], CHAT_ETRUNC);
}

static int srv_has_all(fixture_t *fx) {
  return fx->srv.got_len >= 3 * 100000 + 3;
}

/* A write of several records, and a pause in the middle of a record that
 * holds three lines: nothing lost, nothing twice, order kept. */
static void test_big_lines_and_pause(void **state) {
  fixture_t *fx = *state;
  char *line = malloc(100001);

  assert_non_null(line);
  start(fx);
  for (int i = 0; i < 3; i++) {
    memset(line, 'a' + i, 100000);
    line[100000] = '\n';
    assert_int_equal(chat_stream_write_copy(&fx->cli.s, line, 100001), 0);
  }
  fx->srv.pause_after = 1;
  run_until(fx, srv_has_all, 500);
  assert_int_equal(fx->srv.nlines, 1); /* paused */
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  run_until(fx, srv_has_all, 5000);
  assert_int_equal(fx->srv.nlines, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(fx->srv.got[i * 100001], 'a' + i);
    assert_int_equal(fx->srv.got[i * 100001 + 99999], 'a' + i);
    assert_int_equal(fx->srv.got[i * 100001 + 100000], '\n');
  }
  free(line);
}

/* A plain peer on a sniffing server is the line protocol, untouched. */
static void test_plain_peer_on_sniffing_server(void **state) {
  fixture_t *fx = *state;

  assert_int_equal(chat_stream_sniff_tls(&fx->srv.s, fx->sctx, on_handshake),
                   0);
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  fx->cut = 1; /* the test is the server's peer */
  assert_int_equal(write(fx->srv.raw, "bob\nhello\n", 10), 10);
  run_until(fx, srv_has_two, 5000);
  assert_int_equal(fx->srv.nlines, 2);
  assert_memory_equal(fx->srv.got, "bob\nhello\n", 10);
  assert_false(chat_stream_is_tls(&fx->srv.s));
  assert_int_equal(fx->srv.hs_calls, 0);
  /* What the server writes goes out as it is. */
  assert_int_equal(chat_stream_write_copy(&fx->srv.s, "* hi\n", 5), 0);
  run_until(fx, NULL, 100);
  {
    char buf[16];
    ssize_t n = read(fx->srv.raw, buf, sizeof(buf));
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "* hi\n", 5);
  }
}

/* A first byte of 0x16 and then garbage: the handshake fails, once, and
 * the owner hears it. */
static void test_garbage_handshake_fails(void **state) {
  fixture_t *fx = *state;
  static const char junk[] = "\x16\x03\x01\x00\x05hello world\n";

  assert_int_equal(chat_stream_sniff_tls(&fx->srv.s, fx->sctx, on_handshake),
                   0);
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  fx->cut = 1;
  assert_int_equal(write(fx->srv.raw, junk, sizeof(junk) - 1),
                   (ssize_t)sizeof(junk) - 1);
  run_until(fx, srv_ended, 5000);
  assert_int_equal(fx->srv.hs_calls, 1);
  assert_int_equal(fx->srv.hs_status, CHAT_ETLS);
  assert_int_equal(fx->srv.nevents, 1);
  assert_int_equal(fx->srv.events[0], CHAT_ETLS);
  assert_int_equal(fx->srv.nlines, 0);
}

/* The client rejects the peer from the handshake callback: nothing it
 * wrote before leaves. */
static void reject(chat_stream_t *s, int status) {
  on_handshake(s, status);
  chat_stream_close(s, on_closed);
}

static int cli_closed(fixture_t *fx) {
  return fx->cli.closed;
}

static void test_rejected_peer_gets_nothing(void **state) {
  fixture_t *fx = *state;

  assert_int_equal(chat_stream_sniff_tls(&fx->srv.s, fx->sctx, on_handshake),
                   0);
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  assert_int_equal(chat_stream_start_tls(&fx->cli.s, fx->cctx, "test", reject),
                   0);
  assert_int_equal(chat_stream_write_copy(&fx->cli.s, "secret\n", 7), 0);
  run_until(fx, cli_closed, 5000);
  assert_true(fx->cli.closed);
  run_until(fx, srv_ended, 2000);
  assert_int_equal(fx->srv.nlines, 0);
}

static int srv_closed(fixture_t *fx) {
  return fx->srv.closed;
}

/* A server ending a stream whose handshake never completes (a silent TLS
 * client, at its registration deadline) closes it at once: what it wrote
 * can never reach that peer. */
static void test_server_end_during_handshake_closes(void **state) {
  fixture_t *fx = *state;

  assert_int_equal(chat_stream_sniff_tls(&fx->srv.s, fx->sctx, on_handshake),
                   0);
  assert_int_equal(chat_stream_read_start(&fx->srv.s, on_line, on_event), 0);
  fx->cut = 1; /* half a hello, then silence */
  assert_int_equal(write(fx->srv.raw, "\x16\x03\x01", 3), 3);
  run_until(fx, NULL, 50);
  assert_true(chat_stream_is_tls(&fx->srv.s));
  assert_int_equal(chat_stream_write_copy(&fx->srv.s, "! bye\n", 6), 0);
  chat_stream_end(&fx->srv.s, on_closed);
  run_until(fx, srv_closed, 2000);
  assert_true(fx->srv.closed);
  assert_int_equal(fx->srv.hs_calls, 0);
}

static void test_fingerprint_parse(void **state) {
  char out[CHAT_TLS_FP_MAX];
  const char *hex =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  (void)state;
  assert_int_equal(chat_tls_fp_parse(hex, out), 0);
  assert_string_equal(out, hex);
  assert_int_equal(
      chat_tls_fp_parse("SHA256:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
                        "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF",
                        out),
      0);
  assert_string_equal(out, hex);
  assert_int_equal(chat_tls_fp_parse("0123", out), CHAT_EARG);
  assert_int_equal(chat_tls_fp_parse("", out), CHAT_EARG);
  assert_int_equal(
      chat_tls_fp_parse("g123456789abcdef0123456789abcdef0123456789abcdef"
                        "0123456789abcdef",
                        out),
      CHAT_EARG);
  assert_int_equal(
      chat_tls_fp_parse("0123456789abcdef0123456789abcdef0123456789abcdef"
                        "0123456789abcdef00",
                        out),
      CHAT_EARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lines_both_ways, setup, teardown),
      cmocka_unit_test_setup_teardown(test_records_split_at_every_byte, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_end_is_a_clean_eof, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_end_without_close_notify_is_truncation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_big_lines_and_pause, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plain_peer_on_sniffing_server, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_garbage_handshake_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rejected_peer_gets_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_end_during_handshake_closes,
                                      setup, teardown),
      cmocka_unit_test(test_fingerprint_parse),
  };
  chat_platform_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
