/* arcade-cpuc: an Arcade exec plugin in C, written from docs/protocol.md alone.
 *
 * Protocol version 1: JSON lines on stdin (from the agent) and stdout (to the agent).
 *   - first line out: hello, declaring the "notify" hook;
 *   - in: config (data.interval, seconds): pushes one metric batch every interval, and a
 *     new config changes the schedule at once;
 *   - in: call (hook "notify"): answered with a result carrying the same id;
 *   - out: a heartbeat when 5 s would otherwise pass silently;
 *   - in: shutdown, or end of file on stdin: exit 0.
 * Metrics: cpuc.busy (percent of CPU time not idle since the previous round, from the first
 * line of /proc/stat, or $ARCADE_CPUC_STAT) and cpuc.round (a counter of rounds).
 * One poll() loop: wait for stdin with the time left until the next round as the timeout.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT 5.0

static double now(int clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_line(const char *line) {
    /* one write per line: lines stay whole even if stdout is shared */
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* The number after "key": in a compact or spaced JSON line, or -1 if there is none. */
static double number_after(const char *line, const char *key) {
    const char *at = strstr(line, key);
    if (at == NULL) return -1;
    at += strlen(key);
    while (*at == ' ' || *at == '\t') at++;
    if (*at != ':') return -1;
    at++;
    char *end;
    double value = strtod(at, &end);
    return end == at ? -1 : value;
}

/* Whether the line's "type" is `type` (spaces around the colon allowed). */
static int has_type(const char *line, const char *type) {
    const char *at = strstr(line, "\"type\"");
    if (at == NULL) return 0;
    at += 6;
    while (*at == ' ' || *at == '\t' || *at == ':') at++;
    size_t n = strlen(type);
    return at[0] == '"' && strncmp(at + 1, type, n) == 0 && at[1 + n] == '"';
}

static int read_stat(unsigned long long *busy, unsigned long long *total) {
    const char *path = getenv("ARCADE_CPUC_STAT");
    FILE *f = fopen(path ? path : "/proc/stat", "r");
    if (f == NULL) return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) return -1;
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    *busy = *total - v[3] - v[4]; /* idle and iowait are not busy */
    return 0;
}

static unsigned long long last_busy, last_total;
static long rounds;

static void push_metrics(void) {
    unsigned long long busy, total;
    char line[512];
    if (read_stat(&busy, &total) != 0) {
        send_line("{\"type\":\"log\",\"level\":\"error\",\"message\":\"cannot read /proc/stat\"}");
        return;
    }
    double percent = total > last_total
        ? 100.0 * (double)(busy - last_busy) / (double)(total - last_total) : 0.0;
    last_busy = busy;
    last_total = total;
    rounds++;
    snprintf(line, sizeof line,
             "{\"type\":\"metric\",\"data\":["
             "{\"name\":\"cpuc.busy\",\"value\":%.3f,\"timestamp\":%.3f,\"unit\":\"percent\"},"
             "{\"name\":\"cpuc.round\",\"value\":%ld,\"labels\":{\"source\":\"c\"}}]}",
             percent, now(CLOCK_REALTIME), rounds);
    send_line(line);
}

static void handle(const char *line, double *interval, double *next_round) {
    char out[256];
    if (has_type(line, "config")) {
        double value = number_after(line, "\"interval\"");
        if (value > 0) {
            *interval = value;
            *next_round = now(CLOCK_MONOTONIC); /* a round now, then every new interval */
            snprintf(out, sizeof out,
                     "{\"type\":\"log\",\"level\":\"info\",\"message\":\"interval %gs\"}", value);
        } else {
            snprintf(out, sizeof out, "{\"type\":\"log\",\"level\":\"warning\","
                     "\"message\":\"config without a positive interval: ignored\"}");
        }
        send_line(out);
    } else if (has_type(line, "call")) {
        long id = (long)number_after(line, "\"id\"");
        snprintf(out, sizeof out, "{\"type\":\"result\",\"id\":%ld,\"data\":null}", id);
        send_line(out);
    } else if (has_type(line, "shutdown")) {
        exit(0);
    }
    /* anything else: a message of a newer agent, ignored as the protocol says */
}

int main(void) {
    char buffer[65536];
    size_t used = 0;
    double interval = 0; /* no rounds until the first config */
    double next_round = 0;
    double last_sent = now(CLOCK_MONOTONIC);

    send_line("{\"type\":\"hello\",\"protocol\":1,\"hooks\":[\"notify\"]}");
    for (;;) {
        double t = now(CLOCK_MONOTONIC);
        if (interval > 0 && t >= next_round) {
            push_metrics();
            last_sent = t;
            next_round += interval;
            if (next_round < t) next_round = t + interval;
        } else if (t - last_sent >= HEARTBEAT) {
            send_line("{\"type\":\"heartbeat\"}");
            last_sent = t;
        }
        double wait = last_sent + HEARTBEAT - t;
        if (interval > 0 && next_round - t < wait) wait = next_round - t;
        struct pollfd in = {.fd = 0, .events = POLLIN};
        int ready = poll(&in, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0);
        if (ready < 0 && errno != EINTR) return 1;
        if (ready <= 0) continue;
        ssize_t n = read(0, buffer + used, sizeof buffer - 1 - used);
        if (n == 0) return 0; /* stdin closed: the agent is gone or wants us to stop */
        if (n < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        used += (size_t)n;
        /* memchr, not strchr: a NUL byte in the input must not hide the lines after it */
        char *start = buffer, *end;
        while ((end = memchr(start, '\n', used - (size_t)(start - buffer))) != NULL) {
            *end = '\0';
            handle(start, &interval, &next_round);
            start = end + 1;
        }
        used -= (size_t)(start - buffer);
        memmove(buffer, start, used);
        if (used == sizeof buffer - 1) used = 0; /* an over-long line: dropped */
    }
}
