/* chat-bot: a small bot built only on the public libchat API.
 *
 * It joins a chat server under a name and answers two commands sent as chat
 * messages by anyone: "!time" (the current UTC time) and "!ping" ("pong").
 *
 *   chat-bot -p <server-port> [-s <host>] [-n <name>]
 */
#include <chat/chat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  chat_stream_t conn;
  const char *name;
  int registered;
} bot_t;

static void reply(bot_t *bot, const char *text) {
  char line[256];
  int n = snprintf(line, sizeof(line), "%s\n", text);

  chat_stream_write_copy(&bot->conn, line, (size_t)n);
}

static void on_line(chat_stream_t *s, const char *line, size_t len) {
  bot_t *bot = s->data;
  char text[128];
  chat_line_t l;
  time_t now;

  if (chat_line_parse(line, len, &l) != 0)
    return;
  if (!bot->registered) {
    if (l.kind == CHAT_LINE_ERROR) {
      fprintf(stderr, "chat-bot: name refused: %.*s\n", (int)l.text_len,
              l.text);
      chat_stream_close(s, NULL);
      return;
    }
    bot->registered = l.kind == CHAT_LINE_NOTICE;
    if (bot->registered)
      printf("chat-bot: joined as %s\n", bot->name);
    fflush(stdout);
    return;
  }
  if (l.kind != CHAT_LINE_CHAT)
    return;
  if (l.text_len == 5 && memcmp(l.text, "!ping", 5) == 0) {
    reply(bot, "pong");
  } else if (l.text_len == 5 && memcmp(l.text, "!time", 5) == 0) {
    now = time(NULL);
    strftime(text, sizeof(text), "it is %Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    reply(bot, text);
  }
}

static void on_event(chat_stream_t *s, int status) {
  if (status == CHAT_ELINE)
    return;
  fprintf(stderr, "chat-bot: connection ended: %s\n", chat_strerror(status));
  chat_stream_close(s, NULL);
}

static void on_connected(chat_stream_t *s, int status) {
  bot_t *bot = s->data;

  if (status != 0) {
    fprintf(stderr, "chat-bot: cannot connect: %s\n", chat_strerror(status));
    return;
  }
  s->data = bot;
  reply(bot, bot->name);
  chat_stream_read_start(s, on_line, on_event);
}

int main(int argc, char **argv) {
  bot_t bot = {.name = "timebot"};
  const char *host = "localhost";
  int port = 0;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-p") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-s") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "-n") == 0)
      bot.name = argv[i + 1];
  }
  if (port <= 0 || port > 65535 ||
      chat_name_check(bot.name, strlen(bot.name)) != 0) {
    fprintf(stderr, "usage: chat-bot -p <port> [-s <host>] [-n <name>]\n");
    return 2;
  }
  chat_platform_init();
  bot.conn.data = &bot;
  if (chat_connect(uv_default_loop(), &bot.conn, host, port,
                   CHAT_MAX_LINE_DEFAULT * 2, on_connected) != 0)
    return 1;
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  uv_loop_close(uv_default_loop());
  return 0;
}
