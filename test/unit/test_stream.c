/* Loop-level unit tests of chat_stream_t (include/chat/stream.h): a stream
 * over one end of a socket pair, fed from the other end by the test. Every
 * test closes what it opened and ends with uv_loop_close() == 0. */
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
#include "internal.h"

#define MAX_LINES 16

typedef struct {
  chat_stream_t s; /* first: the callbacks get &t->s */
  uv_loop_t loop;
  uv_timer_t timer;
  int peer; /* the test's end of the socket pair */
  char lines[MAX_LINES][32];
  int nlines;
  int events[MAX_LINES];
  int nevents;
  int pause_after; /* read_stop() after this many lines, 0 = never */
  int fail_holds;  /* chat__hold_alloc fails while set */
  int closed;
} fixture_t;

static fixture_t *current;

static void *failing_alloc(size_t len) {
  return current->fail_holds ? NULL : malloc(len);
}

static void on_line(chat_stream_t *s, const char *line, size_t len) {
  fixture_t *t = (fixture_t *)s;

  assert_true(t->nlines < MAX_LINES);
  assert_true(len < sizeof(t->lines[0]));
  memcpy(t->lines[t->nlines], line, len);
  t->lines[t->nlines][len] = '\0';
  t->nlines++;
  if (t->pause_after > 0 && t->nlines == t->pause_after)
    chat_stream_read_stop(s); /* the rest of this read must be held */
}

static void on_event(chat_stream_t *s, int status) {
  fixture_t *t = (fixture_t *)s;

  assert_true(t->nevents < MAX_LINES);
  t->events[t->nevents++] = status;
}

static void on_closed(chat_stream_t *s) {
  ((fixture_t *)s)->closed = 1;
}

static void on_timer(uv_timer_t *h) {
  uv_stop(h->loop);
}

/* Runs the loop for about ms milliseconds. */
static void run_for(fixture_t *t, uint64_t ms) {
  assert_int_equal(uv_timer_start(&t->timer, on_timer, ms, 0), 0);
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

static void put(fixture_t *t, const char *bytes) {
  size_t n = strlen(bytes);

  assert_int_equal(write(t->peer, bytes, n), (ssize_t)n);
}

static int setup(void **state) {
  fixture_t *t = calloc(1, sizeof(*t));
  int fds[2];

  assert_non_null(t);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  assert_int_equal(uv_timer_init(&t->loop, &t->timer), 0);
  assert_int_equal(chat_stream_open_fd(&t->loop, &t->s, fds[0], 1, 1024), 0);
  assert_int_equal(t->s.kind, CHAT_STREAM_PIPE);
  t->peer = fds[1];
  current = t;
  chat__hold_alloc = failing_alloc;
  *state = t;
  return 0;
}

static int teardown(void **state) {
  fixture_t *t = *state;

  chat__hold_alloc = malloc;
  chat_stream_close(&t->s, on_closed);
  uv_close((uv_handle_t *)&t->timer, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_true(t->closed);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  close(t->peer);
  free(t);
  current = NULL;
  return 0;
}

/* The baseline: a pause mid-chunk holds the rest, and a resume delivers it
 * in order before anything read later. */
static void test_pause_holds_rest_of_chunk(void **state) {
  fixture_t *t = *state;

  t->pause_after = 1;
  put(t, "one\ntwo\nthree\n");
  assert_int_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 1);
  put(t, "four\n");
  t->pause_after = 0;
  assert_int_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 4);
  assert_string_equal(t->lines[1], "two");
  assert_string_equal(t->lines[2], "three");
  assert_string_equal(t->lines[3], "four");
  assert_int_equal(t->nevents, 0);
}

/* When the held bytes cannot be allocated, the owner hears UV_ENOMEM once
 * and the stream never reads past the lost bytes: resuming fails, and
 * nothing sent later is delivered as if it followed "one". */
static void test_failed_hold_breaks_reading_for_good(void **state) {
  fixture_t *t = *state;

  t->pause_after = 1;
  t->fail_holds = 1;
  put(t, "one\ntwo\nthree\n");
  assert_int_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 1);
  assert_string_equal(t->lines[0], "one");
  assert_int_equal(t->nevents, 1);
  assert_int_equal(t->events[0], UV_ENOMEM);
  t->fail_holds = 0;
  t->pause_after = 0;
  put(t, "four\n");
  assert_int_not_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 1);
  assert_int_equal(t->nevents, 1);
}

/* The same when the pause happens again while held bytes are redelivered:
 * the second hold fails, and what was held is not skipped over either. */
static void test_failed_hold_during_redelivery_breaks_reading(void **state) {
  fixture_t *t = *state;

  t->pause_after = 1;
  put(t, "one\ntwo\nthree\n");
  assert_int_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 1);
  t->pause_after = 2;
  t->fail_holds = 1;
  assert_int_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  assert_int_equal(t->nlines, 2);
  assert_string_equal(t->lines[1], "two");
  assert_int_equal(t->nevents, 1);
  assert_int_equal(t->events[0], UV_ENOMEM);
  t->fail_holds = 0;
  t->pause_after = 0;
  put(t, "four\n");
  assert_int_not_equal(chat_stream_read_start(&t->s, on_line, on_event), 0);
  run_for(t, 50);
  assert_int_equal(t->nlines, 2);
  assert_int_equal(t->nevents, 1);
}

static int iterations;

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  iterations++;
}

/* Coalesced writes into a socket that is full: the stream neither spins
 * the loop while the peer reads nothing (a full write is retried on the
 * next iteration at most twice, then waits for POLLOUT) nor loses or
 * reorders a byte once the peer reads again. */
static void test_full_socket_neither_spins_nor_loses_bytes(void **state) {
  fixture_t *t = *state;
  enum { CHUNK = 1024, CHUNKS = 1024 };
  static unsigned char got[CHUNK * CHUNKS];
  unsigned char chunk[CHUNK];
  static uv_prepare_t prep; /* closed by teardown's loop run */
  uv_os_fd_t fd;
  int small = 4096, flags;
  size_t have = 0;
  ssize_t n;

  assert_int_equal(chat__stream_fileno(&t->s, &fd), 0);
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)),
                   0);
  assert_int_equal(
      setsockopt(t->peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  assert_int_equal(chat_batch_start(&t->loop), 0);
  assert_int_equal(uv_prepare_init(&t->loop, &prep), 0);
  assert_int_equal(uv_prepare_start(&prep, on_prepare), 0);
  for (int i = 0; i < CHUNKS; i++) {
    memset(chunk, i & 0xff, sizeof(chunk));
    chunk[0] = (unsigned char)(i >> 8);
    assert_int_equal(chat_stream_write_copy(&t->s, chunk, sizeof(chunk)), 0);
  }
  iterations = 0;
  run_for(t, 200);
  /* A spinning loop makes hundreds of thousands of iterations in 200 ms;
   * retries and the timer make a handful. */
  assert_true(iterations < 50);
  assert_true(t->s.queued > 0); /* the peer took only what fits */

  flags = fcntl(t->peer, F_GETFL);
  assert_int_equal(fcntl(t->peer, F_SETFL, flags | O_NONBLOCK), 0);
  for (int spins = 0; have < sizeof(got) && spins < 100000; spins++) {
    n = read(t->peer, got + have, sizeof(got) - have);
    if (n > 0)
      have += (size_t)n;
    else
      assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    uv_run(&t->loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(have, sizeof(got));
  assert_int_equal(t->s.queued, 0);
  for (int i = 0; i < CHUNKS; i++) {
    assert_int_equal(got[i * CHUNK], (unsigned char)(i >> 8));
    for (int k = 1; k < CHUNK; k++)
      assert_int_equal(got[i * CHUNK + k], (unsigned char)(i & 0xff));
  }
  assert_int_equal(fcntl(t->peer, F_SETFL, flags), 0);
  uv_close((uv_handle_t *)&prep, NULL);
  chat_batch_stop();
}

static int far_fired;

static void on_far(uv_timer_t *h) {
  (void)h;
  far_fired = 1;
}

static void on_write_now(uv_timer_t *h) {
  fixture_t *t = h->data;

  assert_int_equal(chat_stream_write_copy(&t->s, "hi\n", 3), 0);
}

/* A coalesced write made from a timer callback (as when a throttled
 * client is resumed) goes out in that loop iteration: the poll after the
 * timers must not sleep until the next timer with bytes queued. */
static void test_write_from_timer_goes_out_at_once(void **state) {
  fixture_t *t = *state;
  static uv_timer_t far; /* closed by teardown's loop run */
  char buf[8];

  assert_int_equal(chat_batch_start(&t->loop), 0);
  assert_int_equal(uv_timer_init(&t->loop, &far), 0);
  far_fired = 0;
  assert_int_equal(uv_timer_start(&far, on_far, 2000, 0), 0);
  t->timer.data = t;
  assert_int_equal(uv_timer_start(&t->timer, on_write_now, 0, 0), 0);
  uv_run(&t->loop, UV_RUN_ONCE);
  assert_false(far_fired); /* the poll did not wait for the far timer */
  assert_int_equal(t->s.queued, 0);
  assert_int_equal(read(t->peer, buf, sizeof(buf)), 3);
  assert_memory_equal(buf, "hi\n", 3);
  uv_close((uv_handle_t *)&far, NULL);
  chat_batch_stop();
}

/* One write takes as many as IOV_MAX queued buffers (lines): with 64, a
 * check's 64 writes moved at most 4096 lines, and a 100-client server could
 * hand each recipient only 64 lines per sweep, which was its capacity
 * (issue 11). 5000 lines leave in one check now. */
static void test_one_sweep_writes_a_long_queue(void **state) {
  fixture_t *t = *state;
  enum { LINES = 5000 };
  static char got[LINES * 8 + 1];
  char line[9];
  ssize_t n;
  int flags;

  assert_int_equal(chat_batch_start(&t->loop), 0);
  for (int i = 0; i < LINES; i++) {
    snprintf(line, sizeof(line), "%07d\n", i);
    assert_int_equal(chat_stream_write_copy(&t->s, line, 8), 0);
  }
  /* A referenced handle keeps the loop alive for one iteration: one check,
   * one sweep. */
  assert_int_equal(uv_timer_start(&t->timer, on_timer, 10000, 0), 0);
  uv_run(&t->loop, UV_RUN_NOWAIT);
  uv_timer_stop(&t->timer);
  assert_int_equal(t->s.queued, 0);
  flags = fcntl(t->peer, F_GETFL);
  assert_int_equal(fcntl(t->peer, F_SETFL, flags | O_NONBLOCK), 0);
  n = read(t->peer, got, sizeof(got));
  assert_int_equal(n, LINES * 8);
  assert_memory_equal(got, "0000000\n", 8);
  assert_memory_equal(got + (LINES - 1) * 8, "0004999\n", 8);
  assert_int_equal(fcntl(t->peer, F_SETFL, flags), 0);
  chat_batch_stop();
}

/* A stream that is not a socket has no peer and no TCP options, and says
 * so instead of touching a handle that is not a TCP one. */
static void test_pipe_has_no_peer_or_tcp_options(void **state) {
  fixture_t *t = *state;
  char peer[CHAT_PEER_MAX];

  assert_int_equal(chat_stream_peer(&t->s, peer, sizeof(peer)), UV_ENOTSUP);
  assert_string_equal(peer, "?");
  assert_int_equal(chat_stream_peer_ip(&t->s, peer, sizeof(peer)), UV_ENOTSUP);
  assert_string_equal(peer, "?");
  assert_int_equal(chat_stream_set_nodelay(&t->s, 1), UV_ENOTSUP);
  assert_int_equal(chat_stream_set_keepalive(&t->s, 1, 60), UV_ENOTSUP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pause_holds_rest_of_chunk, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_hold_breaks_reading_for_good,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_failed_hold_during_redelivery_breaks_reading, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_full_socket_neither_spins_nor_loses_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_from_timer_goes_out_at_once,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_sweep_writes_a_long_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pipe_has_no_peer_or_tcp_options,
                                      setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
