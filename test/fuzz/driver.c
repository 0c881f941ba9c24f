/* Standalone driver for the fuzz targets, used when libFuzzer is not (gcc,
 * or a build without -Dfuzzing=true). It makes each target a fast,
 * deterministic regression test:
 *
 *   fuzz-corpus-<name> [PATH...]
 *
 * runs LLVMFuzzerTestOneInput over every file in the given directories (and
 * their subdirectories) and over the given files, then over a fixed set of
 * pseudo-random inputs: protocol fragments strung together, and mutations of
 * the corpus files. Every input is passed in a heap buffer of exactly its
 * size, so ASan and valgrind see reads past its end. A violated invariant
 * aborts (the test fails); so does a missing path or an empty corpus, so the
 * test cannot pass vacuously. CHAT_FUZZ_ITERATIONS sets the number of
 * generated inputs (default 500; mutations of each corpus file come on top).
 *
 * When an input crashes (abort, a signal, or a sanitizer report), the driver
 * prints where it came from and its bytes in hex, and writes it to
 * crash-<program>.bin in the working directory (the path is printed): copy
 * that file into the corpus to keep it as a regression seed.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUT (64 * 1024)
#define MUTATIONS_PER_FILE 8

typedef struct {
  char *path;
  unsigned char *data;
  size_t len;
} input_t;

static input_t *inputs;
static size_t n_inputs, cap_inputs;
static unsigned long long runs;

/* The input being run, for the crash report. */
static const unsigned char *cur_data;
static size_t cur_len;
static char cur_what[512];
static char crash_file[1024] = "crash-fuzz.bin";

/* Async-signal-safe: write(2) only. */
static void say(const char *s) {
  ssize_t w = write(2, s, strlen(s));
  (void)w;
}

static void report_crash(void) {
  static const char hexd[] = "0123456789abcdef";
  static volatile sig_atomic_t reported;
  char line[129];
  size_t o = 0;
  int fd;

  if (reported || cur_data == NULL)
    return;
  reported = 1;
  say("\n*** fuzz driver: crashing input: ");
  say(cur_what);
  say("\n*** hex: ");
  for (size_t i = 0; i < cur_len; i++) {
    line[o++] = hexd[cur_data[i] >> 4];
    line[o++] = hexd[cur_data[i] & 15];
    if (o == sizeof(line) - 1 || i + 1 == cur_len) {
      ssize_t w = write(2, line, o);
      (void)w;
      o = 0;
    }
  }
  fd = open(crash_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, cur_data, cur_len);
    (void)w;
    close(fd);
    say("\n*** written to ");
    say(crash_file);
  }
  say("\n");
}

static void on_signal(int sig) {
  report_crash();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Provided by the ASan/UBSan runtimes when linked in; called before they
 * exit after a report. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void install_crash_report(const char *argv0) {
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  const char *base = strrchr(argv0, '/');
  char cwd[512];

  if (getcwd(cwd, sizeof(cwd)) == NULL)
    strcpy(cwd, ".");
  snprintf(crash_file, sizeof(crash_file), "%s/crash-%s.bin", cwd,
           base ? base + 1 : argv0);
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    signal(sigs[i], on_signal);
  if (__sanitizer_set_death_callback != NULL)
    __sanitizer_set_death_callback(report_crash);
}

static void run_one(const unsigned char *data, size_t len) {
  unsigned char *copy = malloc(len > 0 ? len : 1);

  if (copy == NULL) {
    perror("malloc");
    exit(2);
  }
  if (len > 0)
    memcpy(copy, data, len);
  cur_data = copy;
  cur_len = len;
  LLVMFuzzerTestOneInput(copy, len);
  cur_data = NULL;
  free(copy);
  runs++;
}

static void add_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  unsigned char *buf;
  size_t len;

  if (fp == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    exit(2);
  }
  buf = malloc(MAX_INPUT + 1);
  if (buf == NULL) {
    perror("malloc");
    exit(2);
  }
  len = fread(buf, 1, MAX_INPUT + 1, fp);
  if (ferror(fp)) {
    fprintf(stderr, "%s: read error\n", path);
    exit(2);
  }
  fclose(fp);
  if (len > MAX_INPUT) {
    fprintf(stderr, "%s: over %d bytes; keep seeds small\n", path, MAX_INPUT);
    exit(2);
  }
  if (n_inputs == cap_inputs) {
    cap_inputs = cap_inputs ? 2 * cap_inputs : 64;
    inputs = realloc(inputs, cap_inputs * sizeof(*inputs));
    if (inputs == NULL) {
      perror("realloc");
      exit(2);
    }
  }
  inputs[n_inputs].path = strdup(path);
  inputs[n_inputs].data = buf;
  inputs[n_inputs].len = len;
  n_inputs++;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path) {
  struct stat st;
  DIR *dir;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0;

  if (stat(path, &st) != 0) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    add_file(path);
    return;
  }
  dir = opendir(path);
  if (dir == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    exit(2);
  }
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') /* ., .., and hidden files such as .gitkeep */
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 32;
      names = realloc(names, cap * sizeof(*names));
      if (names == NULL) {
        perror("realloc");
        exit(2);
      }
    }
    names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
    if (names[n] == NULL) {
      perror("malloc");
      exit(2);
    }
    sprintf(names[n], "%s/%s", path, e->d_name);
    n++;
  }
  closedir(dir);
  qsort(names, n, sizeof(*names), by_name); /* same order on every host */
  for (size_t i = 0; i < n; i++) {
    add_path(names[i]);
    free(names[i]);
  }
  free(names);
}

/* ---- deterministic pseudo-random inputs ---- */

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint32_t rnd(void) {
  /* splitmix64, top bits */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Fragments of the protocol that random bytes would rarely hit. */
/* clang-format off */
static const char *const dict[] = {
    "\n", "\r\n", "\r", "\n\n", " ", "  ", "\t", "\x01", ":", ": ", "* ",
    "! ", "alice", "bob: ", "B0b_.-", "hello world", "CHATFILE", "CHATFILE 1 ",
    "OK ", "ERR ", "bad-token ", "0", "1", "007", "123",
    "9223372036854775807", "9223372036854775808", "18446744073709551615",
    "18446744073709551616", "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789abcdef", "\x01GET 1 bob a file.txt",
    "\x01SERVE-OK ", "\x01GET-OK 7 ::1 6001 ", "\x01RELAY ", "FILEPORT ",
    "file.txt", ".", "..", "/", "\\", ".hidden", "\xc3\xa9", "\xe2\x80\xae",
    "\xe2\x81\xa6", "\xf0\x9f\x98\x80", "\xc2\x9b", "\xc2\x85", "\x1b[31m",
    "\x7f", "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80",
    "\xf8\x88\x80\x80\x80", "\xff", "\xfe", "\xe2\x82", "\x80", "\0",
};
/* clang-format on */

static size_t gen(unsigned char *out, size_t cap) {
  size_t want = rnd() % 3 == 0 ? rnd() % 4096 : rnd() % 160;
  size_t len = 0;

  if (want > cap)
    want = cap;
  while (len < want) {
    uint32_t r = rnd() % 10;
    if (r < 5) {
      const char *d = dict[rnd() % (sizeof(dict) / sizeof(dict[0]))];
      size_t n = d[0] == '\0' ? 1 : strlen(d);
      if (n > want - len)
        n = want - len;
      memcpy(out + len, d, n);
      len += n;
    } else if (r < 8) {
      out[len++] = (unsigned char)rnd();
    } else {
      size_t n = 1 + rnd() % (rnd() % 4 == 0 ? 300 : 40);
      unsigned char c = rnd() % 2 ? 'a' : (unsigned char)rnd();
      if (n > want - len)
        n = want - len;
      memset(out + len, c, n);
      len += n;
    }
  }
  return len;
}

static size_t mutate(const input_t *in, unsigned char *out, size_t cap) {
  size_t len = in->len < cap ? in->len : cap;
  int steps = 1 + (int)(rnd() % 4);

  memcpy(out, in->data, len);
  for (int i = 0; i < steps; i++) {
    size_t pos = len ? rnd() % (len + 1) : 0;
    switch (rnd() % 5) {
    case 0: /* change one byte */
      if (len)
        out[pos % len] = (unsigned char)rnd();
      break;
    case 1: { /* insert generated bytes */
      unsigned char frag[160];
      size_t n = gen(frag, sizeof(frag) < cap - len ? sizeof(frag) : cap - len);
      memmove(out + pos + n, out + pos, len - pos);
      memcpy(out + pos, frag, n);
      len += n;
      break;
    }
    case 2: { /* delete a range */
      size_t n = len - pos ? 1 + rnd() % (len - pos) : 0;
      memmove(out + pos, out + pos + n, len - pos - n);
      len -= n;
      break;
    }
    case 3: /* truncate */
      len = pos;
      break;
    default: { /* splice in another corpus input */
      const input_t *o = &inputs[rnd() % n_inputs];
      size_t n = o->len < cap - len ? o->len : cap - len;
      memmove(out + pos + n, out + pos, len - pos);
      memcpy(out + pos, o->data, n);
      len += n;
      break;
    }
    }
  }
  return len;
}

int main(int argc, char **argv) {
  unsigned long iterations = 500;
  const char *env = getenv("CHAT_FUZZ_ITERATIONS");
  unsigned char *buf;
  unsigned long long corpus_runs;

  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  if (env != NULL && *env != '\0')
    iterations = strtoul(env, NULL, 10);
  install_crash_report(argv[0]);
  for (int i = 1; i < argc; i++)
    add_path(argv[i]);
  if (n_inputs == 0) {
    fprintf(stderr,
            "%s: no corpus inputs found; refusing to pass on "
            "generated inputs alone\n",
            argv[0]);
    return 2;
  }

  for (size_t i = 0; i < n_inputs; i++) {
    snprintf(cur_what, sizeof(cur_what), "corpus file %s (%zu bytes)",
             inputs[i].path, inputs[i].len);
    run_one(inputs[i].data, inputs[i].len);
  }
  corpus_runs = runs;

  buf = malloc(2 * MAX_INPUT);
  if (buf == NULL) {
    perror("malloc");
    return 2;
  }
  /* The sequence is the same on every run. */
  for (unsigned long i = 0; i < iterations; i++) {
    snprintf(cur_what, sizeof(cur_what), "generated input %lu", i);
    run_one(buf, gen(buf, 2 * MAX_INPUT));
  }
  for (size_t i = 0; i < n_inputs; i++) {
    for (int k = 0; k < MUTATIONS_PER_FILE; k++) {
      snprintf(cur_what, sizeof(cur_what), "mutation %d of %s", k,
               inputs[i].path);
      run_one(buf, mutate(&inputs[i], buf, 2 * MAX_INPUT));
    }
  }
  free(buf);

  printf("%llu inputs ok (%llu from the corpus, %llu generated)\n", runs,
         corpus_runs, runs - corpus_runs);
  for (size_t i = 0; i < n_inputs; i++) {
    free(inputs[i].path);
    free(inputs[i].data);
  }
  free(inputs);
  return 0;
}
