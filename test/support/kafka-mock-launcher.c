/*
 * Kafka mock cluster launcher for tests.
 *
 * Starts Confluent's mock cluster inside librdkafka (rdkafka_mock.h) on
 * loopback, prints one line `bootstrap <host:port,...>` on stdout, then
 * reads commands from stdin, one per line, and answers each with one line,
 * `ok` or `error <text>`. The process exits when stdin closes (so it never
 * outlives the test that started it) or on `quit`.
 *
 * Commands (numbers are decimal; errors are Kafka protocol error codes,
 * e.g. 29 TOPIC_AUTHORIZATION_FAILED, 10 MESSAGE_TOO_LARGE, or librdkafka's
 * -195 _TRANSPORT which makes the broker drop the connection):
 *   topic <name> <partitions>        create a topic (replication factor 1)
 *   down <broker|-1>                 disconnect a broker and refuse new connections
 *   up <broker|-1>                   accept connections again
 *   rtt <broker|-1> <ms>             delay every response
 *   errors <apiKey> <err> [err...]   the next requests of that API fail, in order
 *   clear <apiKey>                   forget pushed errors of that API
 *   topic_error <name> <err>         Metadata reports this error for the topic
 *   leader <topic> <partition> <broker>
 *   quit
 *
 * Usage: kafka-mock-launcher <brokers>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ERRS 64

static void reply(const char *fmt, const char *detail) {
  fprintf(stdout, fmt, detail);
  fputc('\n', stdout);
  fflush(stdout);
}

static int parse_int(const char *s, long *out) {
  char *end;
  if (s == NULL) return -1;
  errno = 0;
  *out = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s) return -1;
  return 0;
}

static void answer(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    reply("ok", "");
  else
    reply("error %s", rd_kafka_err2str(err));
}

int main(int argc, char **argv) {
  long brokers = 3;
  char errstr[512];
  char line[4096];
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mc;

  if (argc > 1 && (parse_int(argv[1], &brokers) != 0 || brokers < 1 || brokers > 16)) {
    fprintf(stderr, "usage: %s [brokers 1..16]\n", argv[0]);
    return 2;
  }
  conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "conf: %s\n", errstr);
    return 1;
  }
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == NULL) {
    fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
  if (mc == NULL) {
    fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
    return 1;
  }
  fprintf(stdout, "bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  while (fgets(line, sizeof(line), stdin) != NULL) {
    char *argv2[MAX_ERRS + 4];
    int n = 0;
    char *save = NULL;
    char *tok;
    long a, b, c;
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
    for (tok = strtok_r(line, " \t", &save); tok != NULL && n < MAX_ERRS + 4; tok = strtok_r(NULL, " \t", &save))
      argv2[n++] = tok;
    if (n == 0) continue;
    if (strcmp(argv2[0], "quit") == 0) {
      reply("ok", "");
      break;
    } else if (strcmp(argv2[0], "topic") == 0 && n == 3 && parse_int(argv2[2], &a) == 0) {
      answer(rd_kafka_mock_topic_create(mc, argv2[1], (int)a, 1));
    } else if (strcmp(argv2[0], "down") == 0 && n == 2 && parse_int(argv2[1], &a) == 0) {
      answer(rd_kafka_mock_broker_set_down(mc, (int32_t)a));
    } else if (strcmp(argv2[0], "up") == 0 && n == 2 && parse_int(argv2[1], &a) == 0) {
      answer(rd_kafka_mock_broker_set_up(mc, (int32_t)a));
    } else if (strcmp(argv2[0], "rtt") == 0 && n == 3 && parse_int(argv2[1], &a) == 0 && parse_int(argv2[2], &b) == 0) {
      answer(rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b));
    } else if (strcmp(argv2[0], "errors") == 0 && n >= 3 && parse_int(argv2[1], &a) == 0) {
      rd_kafka_resp_err_t errs[MAX_ERRS];
      int i, ok = 1;
      for (i = 2; i < n; i++) {
        if (parse_int(argv2[i], &b) != 0) { ok = 0; break; }
        errs[i - 2] = (rd_kafka_resp_err_t)b;
      }
      if (!ok) { reply("error bad error code %s", argv2[i]); continue; }
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)(n - 2), errs);
      reply("ok", "");
    } else if (strcmp(argv2[0], "clear") == 0 && n == 2 && parse_int(argv2[1], &a) == 0) {
      rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
      reply("ok", "");
    } else if (strcmp(argv2[0], "topic_error") == 0 && n == 3 && parse_int(argv2[2], &a) == 0) {
      rd_kafka_mock_topic_set_error(mc, argv2[1], (rd_kafka_resp_err_t)a);
      reply("ok", "");
    } else if (strcmp(argv2[0], "leader") == 0 && n == 4 && parse_int(argv2[2], &b) == 0 && parse_int(argv2[3], &c) == 0) {
      answer(rd_kafka_mock_partition_set_leader(mc, argv2[1], (int32_t)b, (int32_t)c));
    } else {
      reply("error unknown command: %s", argv2[0]);
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
