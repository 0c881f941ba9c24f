/* The client's standard input breaking: the whole client (client.c,
 * fetch.c, serve.c) runs in a child process whose standard input is a pipe
 * holding everything typed, and standard output and error are files; the
 * test plays the server over loopback. With the hook of src/lib/internal.h
 * the bytes a paused stdin must hold cannot be allocated, so the stream
 * breaks with UV_ENOMEM: the client must say so on stderr and exit 1, not
 * take it for the end of input (goodbye, exit 0). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "internal.h"

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031 /* Linux */
#endif

#define TEXT_LEN 60000 /* one message: under CLIENT_INPUT_MAX_LINE */
#define MESSAGES 7     /* more than CLIENT_INPUT_QUEUE_MAX typed ahead */
#define INPUT_MAX (16 + MESSAGES * (TEXT_LEN + 3))
#define DEADLINE_MS 20000

static void *no_memory(size_t len) {
  (void)len;
  return NULL;
}

typedef struct {
  int status;      /* from waitpid() */
  char out[65536]; /* the child's stdout, NUL-terminated */
  char err[4096];  /* its stderr */
} outcome_t;

static uint64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void read_file(int fd, char *buf, size_t cap) {
  ssize_t n = pread(fd, buf, cap - 1, 0);

  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

static int temp_fd(void) {
  char path[] = "/tmp/chat-test-client-XXXXXX";
  int fd = mkstemp(path);

  assert_true(fd >= 0);
  unlink(path);
  return fd;
}

/* In the child: the client on fds 0-2, as main() runs it. */
static void child(int port, int in, int out, int err, int fail_holds) {
  client_config_t cfg = {
      .host = "127.0.0.1",
      .port = port,
      .file_port = 0,
      .share = ".",
      .downloads = ".",
      .max_transfers = CLIENT_DEFAULT_MAX_TRANSFERS,
      .stall_s = CLIENT_DEFAULT_STALL_S,
      .connect_s = CLIENT_DEFAULT_CONNECT_S,
      .header_s = CLIENT_DEFAULT_HEADER_S,
      .max_handshakes = CLIENT_DEFAULT_MAX_HANDSHAKES,
      .transfer = XFER_AUTO,
  };
  static client_t client;
  uv_loop_t loop;

  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
    _exit(99);
  signal(SIGPIPE, SIG_IGN);
  if (fail_holds)
    chat__hold_alloc = no_memory;
  if (uv_loop_init(&loop) != 0 || client_start(&client, &loop, &cfg) != 0)
    _exit(98);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(client.exit_code);
}

/* Types the name and MESSAGES long messages at once (all in the pipe before
 * the client reads), answers the name only once the client has had time to
 * queue them (so it pauses stdin mid-read and holds the rest), then reads
 * whatever the client sends until it exits. */
static void run(outcome_t *o, int fail_holds) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  int lfd, conn = -1, pipefd[2], out = temp_fd(), err = temp_fd();
  static char input[INPUT_MAX];
  size_t n = 0;
  char buf[65536], got[64];
  size_t gotn = 0;
  uint64_t start, welcome_at = 0;
  pid_t pid;
  int sent_welcome = 0, exited = 0;

  lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(lfd >= 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(lfd, 1), 0);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);

  n += (size_t)sprintf(input, "bob\n");
  for (int i = 0; i < MESSAGES; i++) {
    n += (size_t)sprintf(input + n, "m\n");
    memset(input + n, 'a' + i, TEXT_LEN);
    n += TEXT_LEN;
    input[n++] = '\n';
  }
  assert_true(n <= sizeof(input));
  assert_int_equal(pipe(pipefd), 0);
  assert_true(fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20) >= (int)n);
  assert_int_equal(write(pipefd[1], input, n), (ssize_t)n);
  close(pipefd[1]); /* the end of input follows what was typed */

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(lfd);
    child(ntohs(a.sin_port), pipefd[0], out, err, fail_holds);
  }
  close(pipefd[0]);
  start = now_ms();
  while (!exited) {
    struct pollfd p = {.fd = conn >= 0 ? conn : lfd, .events = POLLIN};
    int rc;

    if (now_ms() - start > DEADLINE_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &o->status, 0);
      fail_msg("the client did not exit within %d ms", DEADLINE_MS);
    }
    if (waitpid(pid, &o->status, WNOHANG) == pid) {
      exited = 1;
      break;
    }
    if (p.fd < 0) {
      poll(NULL, 0, 10);
      continue;
    }
    rc = poll(&p, 1, 20);
    if (rc > 0 && conn < 0) {
      conn = accept(lfd, NULL, NULL);
      assert_true(conn >= 0);
      close(lfd);
      lfd = -1;
    } else if (rc > 0) {
      ssize_t r = read(conn, buf, sizeof(buf));
      if (r <= 0) {
        close(conn);
        conn = -1; /* the client left: p.fd is -1 from now on */
        lfd = -1;
        continue;
      }
      if (gotn < sizeof(got) - 1) {
        size_t k = (size_t)r < sizeof(got) - 1 - gotn ? (size_t)r
                                                      : sizeof(got) - 1 - gotn;
        memcpy(got + gotn, buf, k);
        gotn += k;
        got[gotn] = '\0';
      }
      if (welcome_at == 0 && strstr(got, "bob\n") != NULL)
        welcome_at = now_ms() + 300; /* time to read and queue the rest */
    }
    if (!sent_welcome && welcome_at != 0 && now_ms() >= welcome_at) {
      static const char w[] = "* welcome bob, 0 other users online\n";
      assert_int_equal(write(conn, w, sizeof(w) - 1), (ssize_t)sizeof(w) - 1);
      sent_welcome = 1;
    }
  }
  if (conn >= 0)
    close(conn);
  if (lfd >= 0)
    close(lfd);
  read_file(out, o->out, sizeof(o->out));
  read_file(err, o->err, sizeof(o->err));
}

/* The control: a hold that succeeds pauses and resumes stdin; every message
 * is taken, the end of input is 'x': goodbye, status 0. */
static void test_input_end_is_exit_0(void **state) {
  static outcome_t o;

  (void)state;
  run(&o, 0);
  assert_true(WIFEXITED(o.status));
  assert_int_equal(WEXITSTATUS(o.status), 0);
  assert_non_null(strstr(o.out, MENU_GOODBYE));
  assert_null(strstr(o.err, "standard input"));
}

/* A hold that fails breaks stdin: said on stderr, status 1, no goodbye. */
static void test_broken_input_says_so_and_exits_1(void **state) {
  static outcome_t o;

  (void)state;
  run(&o, 1);
  if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 1)
    print_error("status %#x; stdout:\n%s\nstderr:\n%s\n", o.status, o.out,
                o.err);
  assert_true(WIFEXITED(o.status));
  assert_int_equal(WEXITSTATUS(o.status), 1);
  assert_non_null(
      strstr(o.err, "chat-client: standard input: not enough memory\n"));
  assert_null(strstr(o.out, MENU_GOODBYE));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_input_end_is_exit_0),
      cmocka_unit_test(test_broken_input_says_so_and_exits_1),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
