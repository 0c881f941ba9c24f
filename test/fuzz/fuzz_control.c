/* Fuzz target: server-to-client line classification, control-line argument
 * splitting, text and name checks, and the terminal sanitiser
 * (include/chat/proto.h, chat_args_split in include/chat/xfer.h).
 *
 * The input is one line (terminator removed), as chat-client gets it from
 * the framer. Every result is checked against the documented contract, and
 * where that is simple enough against an independent reference model:
 * chat_text_check and chat_sanitize against a UTF-8 decoder built on the
 * Unicode well-formed byte sequence table (Table 3-7), chat_args_split
 * against a plain split. Lines made by the chat_format_* functions from
 * parts of the input must parse back into the same parts.
 */
#include "fuzz.h"

#include <string.h>

#include "chat/chat.h"

/* ---- reference UTF-8 decoder (Unicode 15, Table 3-7) ---- */

/* Length of the well-formed sequence at s (n bytes left) and its code
 * point, or 0 when none starts there. */
static size_t ref_utf8(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  size_t len;

  if (c <= 0x7F) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c == 0xE0)
    len = 3, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
    len = 3;
  else if (c == 0xED)
    len = 3, hi = 0x9F;
  else if (c == 0xF0)
    len = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3)
    len = 4;
  else if (c == 0xF4)
    len = 4, hi = 0x8F;
  else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  if (len == 2)
    *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
  else if (len == 3)
    *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
  else
    *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
          (s[3] & 0x3Fu);
  return len;
}

static int ref_control(unsigned cp) {
  return (cp < 0x20 && cp != '\t') || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

static int ref_bidi(unsigned cp) {
  return cp == 0x061C || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

/* Prints as nothing or as a line break. */
static int ref_invisible(unsigned cp) {
  return cp == 0x00AD || (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 ||
         cp == 0x2029 || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xFEFF;
}

static int ref_text_check(const unsigned char *s, size_t n) {
  unsigned cp;

  if (n == 0)
    return CHAT_EEMPTY;
  for (size_t i = 0, k; i < n; i += k) {
    k = ref_utf8(s + i, n - i, &cp);
    if (k == 0 || ref_control(cp))
      return CHAT_ETEXT;
  }
  return 0;
}

/* Sanitised form of s, per proto.h, into out (big enough); returns length. */
static size_t ref_sanitize(const unsigned char *s, size_t n, char *out) {
  size_t o = 0;
  unsigned cp;

  for (size_t i = 0, k; i < n; i += k) {
    k = ref_utf8(s + i, n - i, &cp);
    if (k == 0) {
      o += (size_t)sprintf(out + o, "\\x%02x", s[i]);
      k = 1;
    } else if (cp < 0x20 && cp != '\t') {
      out[o++] = '^';
      out[o++] = (char)('@' + cp);
    } else if (cp == 0x7F) {
      out[o++] = '^';
      out[o++] = '?';
    } else if (ref_control(cp) || ref_bidi(cp) || ref_invisible(cp)) {
      o += (size_t)sprintf(out + o, "\\u%04x", cp);
    } else {
      memcpy(out + o, s + i, k);
      o += k;
    }
  }
  out[o] = '\0';
  return o;
}

static int ref_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static int ref_name_check(const unsigned char *s, size_t n) {
  if (n == 0 || n > CHAT_NAME_MAX)
    return CHAT_ENAME;
  for (size_t i = 0; i < n; i++)
    if (!ref_name_char(s[i]))
      return CHAT_ENAME;
  return 0;
}

/* ---- chat_line_parse ---- */

static void check_line_parse(const char *line, size_t len) {
  chat_line_t l;
  int rc = chat_line_parse(line, len, &l);
  const char *sp;

  FUZZ_CHECK(rc == 0 || rc == CHAT_EPROTO);
  FUZZ_CHECK((rc == 0) == (l.kind != CHAT_LINE_INVALID));
  switch (l.kind) {
  case CHAT_LINE_INVALID:
    FUZZ_CHECK(rc == CHAT_EPROTO);
    FUZZ_CHECK(l.word == NULL && l.word_len == 0);
    FUZZ_CHECK(l.text == NULL && l.text_len == 0);
    /* Anything starting with SOH, "* " or "! " is always classified. */
    FUZZ_CHECK(len == 0 || line[0] != CHAT_CONTROL_CHAR);
    FUZZ_CHECK(
        !(len >= 2 && (line[0] == '*' || line[0] == '!') && line[1] == ' '));
    break;
  case CHAT_LINE_CONTROL:
    FUZZ_CHECK(len >= 1 && line[0] == CHAT_CONTROL_CHAR);
    FUZZ_CHECK(l.word == line + 1);
    FUZZ_CHECK(fuzz_inside(l.word, l.word_len, line, len));
    FUZZ_CHECK(fuzz_inside(l.text, l.text_len, line, len));
    FUZZ_CHECK(l.word_len == 0 || memchr(l.word, ' ', l.word_len) == NULL);
    sp = memchr(line + 1, ' ', len - 1);
    if (sp == NULL) {
      FUZZ_CHECK(l.word_len == len - 1 && l.text_len == 0);
    } else {
      FUZZ_CHECK(l.word + l.word_len == sp && l.text == sp + 1);
      FUZZ_CHECK(l.text + l.text_len == line + len);
    }
    break;
  case CHAT_LINE_NOTICE:
    FUZZ_CHECK(len >= 2 && line[0] == '*' && line[1] == ' ');
    FUZZ_CHECK(l.word == NULL && l.word_len == 0);
    FUZZ_CHECK(l.text == line + 2 && l.text_len == len - 2);
    break;
  case CHAT_LINE_ERROR:
    FUZZ_CHECK(len >= 2 && line[0] == '!' && line[1] == ' ');
    FUZZ_CHECK(l.word == line + 2);
    FUZZ_CHECK(fuzz_inside(l.word, l.word_len, line, len));
    FUZZ_CHECK(fuzz_inside(l.text, l.text_len, line, len));
    FUZZ_CHECK(l.word_len == 0 || memchr(l.word, ' ', l.word_len) == NULL);
    sp = memchr(line + 2, ' ', len - 2);
    if (sp == NULL) {
      FUZZ_CHECK(l.word_len == len - 2 && l.text_len == 0);
    } else {
      FUZZ_CHECK(l.word + l.word_len == sp && l.text == sp + 1);
      FUZZ_CHECK(l.text + l.text_len == line + len);
    }
    break;
  case CHAT_LINE_CHAT:
    FUZZ_CHECK(l.word == line);
    FUZZ_CHECK(ref_name_check((const unsigned char *)l.word, l.word_len) == 0);
    FUZZ_CHECK(l.word_len + 2 <= len);
    FUZZ_CHECK(line[l.word_len] == ':' && line[l.word_len + 1] == ' ');
    FUZZ_CHECK(l.text == line + l.word_len + 2);
    FUZZ_CHECK(l.text_len == len - l.word_len - 2);
    /* Never confused with the other kinds: a name starts with none of
     * SOH, '*', '!'. */
    FUZZ_CHECK(line[0] != CHAT_CONTROL_CHAR && line[0] != '*' &&
               line[0] != '!');
    break;
  default:
    FUZZ_CHECK(!"unknown line kind");
  }
  /* A "<name>: " prefix is always recognised as a chat line, unless the
   * line is a notice, error or control line. */
  if (l.kind == CHAT_LINE_INVALID && len > 0) {
    const char *colon = memchr(line, ':', len);
    if (colon != NULL && colon + 1 < line + len && colon[1] == ' ')
      FUZZ_CHECK(ref_name_check((const unsigned char *)line,
                                (size_t)(colon - line)) != 0);
  }
}

/* ---- chat_args_split ---- */

/* Plain model: fields at single spaces; with rest the last takes the
 * remainder. Returns max or CHAT_EPROTO, and the fields. */
static int ref_args_split(const char *s, size_t len, int max, int rest,
                          size_t *start, size_t *flen) {
  size_t pos = 0;

  for (int i = 0; i < max; i++) {
    size_t end;
    if (i == max - 1) {
      if (!rest && memchr(s + pos, ' ', len - pos) != NULL)
        return CHAT_EPROTO;
      end = len;
    } else {
      const char *sp = memchr(s + pos, ' ', len - pos);
      if (sp == NULL)
        return CHAT_EPROTO;
      end = (size_t)(sp - s);
    }
    if (end == pos)
      return CHAT_EPROTO;
    start[i] = pos;
    flen[i] = end - pos;
    pos = end + 1;
  }
  return max;
}

static void check_args_split(const char *s, size_t len) {
  for (int max = 1; max <= 4; max++) {
    for (int rest = 0; rest <= 1; rest++) {
      const char *field[5];
      size_t field_len[5], ref_start[5], ref_len[5];
      int n = chat_args_split(s, len, max, rest, field, field_len);
      int want = ref_args_split(s, len, max, rest, ref_start, ref_len);

      FUZZ_CHECK(n == want);
      if (n < 0) {
        FUZZ_CHECK(n == CHAT_EPROTO);
        continue;
      }
      FUZZ_CHECK(n == max);
      for (int i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_inside(field[i], field_len[i], s, len));
        FUZZ_CHECK(field_len[i] > 0);
        FUZZ_CHECK(field[i] == s + ref_start[i] && field_len[i] == ref_len[i]);
        if (!rest || i < n - 1)
          FUZZ_CHECK(memchr(field[i], ' ', field_len[i]) == NULL);
        if (i > 0)
          FUZZ_CHECK(field[i] == field[i - 1] + field_len[i - 1] + 1 &&
                     field[i][-1] == ' ');
      }
      FUZZ_CHECK(field[0] == s);
      FUZZ_CHECK(field[n - 1] + field_len[n - 1] == s + len);
    }
  }
}

/* ---- text, names, sanitiser ---- */

static void check_text_and_name(const char *s, size_t len) {
  int text = chat_text_check(s, len);
  int name = chat_name_check(s, len);

  FUZZ_CHECK(text == ref_text_check((const unsigned char *)s, len));
  FUZZ_CHECK(name == ref_name_check((const unsigned char *)s, len));
  if (name == 0) {
    char upper[CHAT_NAME_MAX];
    FUZZ_CHECK(text == 0); /* a valid name is valid text */
    FUZZ_CHECK(chat_name_equal(s, len, s, len));
    for (size_t i = 0; i < len; i++)
      upper[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    FUZZ_CHECK(chat_name_equal(s, len, upper, len));
    FUZZ_CHECK(chat_name_check(upper, len) == 0);
  }
  if (text == 0) /* text can never look like a control line */
    FUZZ_CHECK(s[0] != CHAT_CONTROL_CHAR);

  /* chat_name_equal on the two halves: ASCII case-insensitive, exact
   * otherwise. */
  {
    size_t h = len / 2, bl = len - h;
    int eq = h == bl;
    for (size_t i = 0; eq && i < h; i++) {
      unsigned char a = (unsigned char)s[i], b = (unsigned char)s[h + i];
      if (a >= 'A' && a <= 'Z')
        a = (unsigned char)(a + 32);
      if (b >= 'A' && b <= 'Z')
        b = (unsigned char)(b + 32);
      eq = a == b;
    }
    FUZZ_CHECK(!chat_name_equal(s, h, s + h, bl) == !eq);
  }
}

static void check_sanitize(const char *s, size_t len, uint8_t cut) {
  size_t cap = CHAT_SANITIZE_MAX(len);
  char *out = malloc(cap); /* exactly the documented worst case */
  char *ref = malloc(cap);
  char *again, *part;
  size_t n, rn, m;
  unsigned char canary = 0xA5;

  FUZZ_CHECK(out != NULL && ref != NULL);
  n = chat_sanitize(s, len, out, cap);
  FUZZ_CHECK(n < cap && out[n] == '\0');
  FUZZ_CHECK(strlen(out) == n); /* NUL comes out as "^@" */
  FUZZ_CHECK(n >= len);         /* every escape is at least as long */
  FUZZ_CHECK((n == 0) == (len == 0));
  rn = ref_sanitize((const unsigned char *)s, len, ref);
  FUZZ_CHECK(rn == n && memcmp(ref, out, n) == 0);
  if (n > 0)
    FUZZ_CHECK(chat_text_check(out, n) == 0);

  /* Sanitising is idempotent: its output holds nothing to escape. */
  again = malloc(CHAT_SANITIZE_MAX(n));
  FUZZ_CHECK(again != NULL);
  m = chat_sanitize(out, n, again, CHAT_SANITIZE_MAX(n));
  FUZZ_CHECK(m == n && memcmp(again, out, n) == 0);
  free(again);

  /* A smaller buffer gets a NUL-terminated prefix of the full output that
   * ends at a character boundary. */
  {
    size_t small = 1 + (size_t)cut % cap;
    part = malloc(small);
    FUZZ_CHECK(part != NULL);
    m = chat_sanitize(s, len, part, small);
    FUZZ_CHECK(m < small && part[m] == '\0');
    FUZZ_CHECK(m <= n && memcmp(part, out, m) == 0);
    FUZZ_CHECK(m == 0 || chat_text_check(part, m) == 0);
    free(part);
  }
  /* cap 0 writes nothing. */
  FUZZ_CHECK(chat_sanitize(s, len, (char *)&canary, 0) == 0 && canary == 0xA5);
  free(out);
  free(ref);
}

/* ---- formatted lines parse back ---- */

static void expect_parse(chat_buf_t *b, chat_line_kind kind, const char *word,
                         size_t word_len, const char *text, size_t text_len) {
  chat_line_t l;

  FUZZ_CHECK(b != NULL);
  FUZZ_CHECK(b->len >= 1 && b->data[b->len - 1] == '\n');
  FUZZ_CHECK(memchr(b->data, '\n', b->len - 1) == NULL);
  FUZZ_CHECK(chat_line_parse(b->data, b->len - 1, &l) == 0);
  FUZZ_CHECK(l.kind == kind);
  if (word != NULL)
    FUZZ_CHECK(l.word_len == word_len && memcmp(l.word, word, word_len) == 0);
  FUZZ_CHECK(l.text_len == text_len &&
             (text_len == 0 || memcmp(l.text, text, text_len) == 0));
  chat_buf_unref(b);
}

static void check_roundtrip(const char *s, size_t len) {
  char word[CHAT_NAME_MAX + 1];
  size_t wl = 0;
  const char *text;
  size_t tl;

  while (wl < len && ref_name_char((unsigned char)s[wl]))
    wl++;
  if (wl == 0 || wl > CHAT_NAME_MAX || wl >= len)
    return;
  memcpy(word, s, wl);
  word[wl] = '\0';
  text = s + wl + 1; /* skip one separator byte, whatever it is */
  tl = len - wl - 1;
  if (tl > 0 && chat_text_check(text, tl) != 0)
    return;

  expect_parse(chat_format_chat(word, wl, text, tl), CHAT_LINE_CHAT, word, wl,
               text, tl);
  expect_parse(chat_format_notice("%.*s", (int)tl, text), CHAT_LINE_NOTICE,
               NULL, 0, text, tl);
  expect_parse(chat_format_error(word, "%.*s", (int)tl, text), CHAT_LINE_ERROR,
               word, wl, text, tl);
  expect_parse(chat_format_control(word, "%.*s", (int)tl, text),
               CHAT_LINE_CONTROL, word, wl, text, tl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  chat_line_t l;

  check_line_parse(s, size);
  check_args_split(s, size);
  /* The arguments of a control line, as the client splits them. */
  if (chat_line_parse(s, size, &l) == 0 && l.kind == CHAT_LINE_CONTROL)
    check_args_split(l.text, l.text_len);
  check_text_and_name(s, size);
  check_sanitize(s, size, size > 0 ? data[size - 1] : 0);
  check_roundtrip(s, size);
  return 0;
}
