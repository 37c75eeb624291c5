/*
 * The guard's hello and a test's report (see reply.h). The report is JSON so that the runner can add a field without
 * a new protocol, but it is written here with snprintf: the guard is static and libc-only.
 */
#define _GNU_SOURCE
#include "reply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void hello_payload(struct bytes *hello, int landlock) {
    char greeting[64];
    int length = snprintf(greeting, sizeof greeting, HELLO " landlock=%d", landlock);
    bytes_add(hello, greeting, (size_t)length);
}

void cleared_payload(struct bytes *reply, int error, int64_t took_ns) {
    bytes_u32(reply, (uint32_t)error);
    uint64_t took = took_ns < 0 ? 0 : (uint64_t)took_ns;
    bytes_u32(reply, (uint32_t)(took & 0xffffffffu));
    bytes_u32(reply, (uint32_t)(took >> 32));
}

static void append(char **at, char *end, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void append(char **at, char *end, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int written = vsnprintf(*at, (size_t)(end - *at), format, args);
    va_end(args);
    if (written > 0) *at += written < end - *at ? written : end - *at - 1;
}

static void append_optional(char **at, char *end, const char *name, int64_t value) {
    if (value < 0)
        append(at, end, ",\"%s\":null", name);
    else
        append(at, end, ",\"%s\":%" PRId64, name, value);
}

static void append_flag(char **at, char *end, const char *name, int value) {
    append(at, end, ",\"%s\":%s", name, value ? "true" : "false");
}

size_t report_json(const struct report *report, char *json) {
    char *at = json, *end = json + REPORT_JSON_MAX;
    *at = '\0';
    append(&at, end, "{\"v\":1");
    if (!report->started) {
        append(&at, end, ",\"setup_errno\":%d}", report->setup_errno);
        return (size_t)(at - json);
    }
    append_optional(&at, end, "exit_code", report->exit_code);
    append_optional(&at, end, "signal", report->signal);
    append(&at, end, ",\"wall_ns\":%" PRId64, report->wall_ns);
    append_flag(&at, end, "timed_out", report->timed_out);
    append(&at, end, ",\"exec_errno\":%d", report->exec_errno);
    append(&at, end, ",\"cgroup\":\"%s\"", report->cgroup);
    append_optional(&at, end, "cpu_ns", report->cpu_ns);
    append_optional(&at, end, "memory_peak", report->memory_peak);
    append_optional(&at, end, "oom_kills", report->oom_kills);
    append_flag(&at, end, "output_exceeded", report->output_exceeded);
    append(&at, end, ",\"setup_errno\":%d", report->setup_errno);
    append_optional(&at, end, "memory_limit", report->at_timeout.limit);
    append_optional(&at, end, "memory_at_timeout", report->at_timeout.usage);
    append_optional(&at, end, "refaulted_before_timeout", report->at_timeout.refaulted);
    if (report->cpu_exceeded) append_flag(&at, end, "cpu_exceeded", 1);
    if (report->output_file) append(&at, end, ",\"output_file\":\"%s\"", report->output_file);
    append(&at, end, "}");
    return (size_t)(at - json);
}

void report_payload(struct bytes *reply, const struct report *report, const struct bytes *out,
                    const struct bytes *err) {
    char json[REPORT_JSON_MAX];
    bytes_chunk(reply, json, report_json(report, json));
    bytes_chunk(reply, out->data, out->length);
    bytes_chunk(reply, err->data, err->length);
    if (reply->failed) {
        /* Not even the report fits in memory: say so without the output. */
        struct report unreported = {.setup_errno = ENOMEM};
        reply->length = 0;
        reply->failed = 0;
        bytes_chunk(reply, json, report_json(&unreported, json));
        bytes_chunk(reply, NULL, 0);
        bytes_chunk(reply, NULL, 0);
    }
}
