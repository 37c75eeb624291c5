/*
 * The payloads of the guard's hello ('H') and of a test's report ('R'), each written by one function from the facts
 * it carries, so that tests/frames_test.c can hold them byte for byte to the fixtures the runner's decoder is tested
 * against. ('A', a gathered tree, is built as the tree is walked: see gather.h.)
 */
#ifndef SCRC_GUARD_REPLY_H
#define SCRC_GUARD_REPLY_H

#include <stdint.h>

#include "cgroup.h"
#include "frame.h"

/* The greeting's words: the protocol version, then what the kernel offers. */
#define HELLO "scrc-guard 1"

/* The report JSON's room; the runner sizes its largest reply on it (REPLY_SLACK in protocol.rs). */
#define REPORT_JSON_MAX 768

/* The guard's account of one test. Every int64_t is -1 when unknown, and reported as null. */
struct report {
    int started;         /* 0: nothing ran, and the report holds setup_errno alone */
    int setup_errno;     /* why nothing ran: a failed request before it, or a test that could not be sealed */
    int64_t exit_code;   /* the status the test's process exited with */
    int64_t signal;      /* the signal that killed the test's process */
    int64_t wall_ns;     /* from the fork to the test's process being reaped */
    int timed_out;       /* the guard killed the test at its time limit */
    int exec_errno;      /* why the program could not be executed; 0 when it was */
    const char *cgroup;  /* which cgroup interface the memory counters came from */
    int64_t cpu_ns;      /* CPU time of every process of the test */
    int64_t memory_peak; /* bytes: the cgroup's watermark if the test raised it, else its largest process */
    int64_t oom_kills;   /* OOM kills in the container during the test */
    int output_exceeded; /* a stream went past the output limit, and the test was killed */
    struct memory_at_timeout at_timeout; /* the memory facts of a test the time limit stopped */
    int cpu_exceeded;        /* the guard killed the test at its CPU-time limit; in the JSON only when set */
    const char *output_file; /* "written" or "missing" when the test's output is a file; NULL (left out) else */
};

/* The hello: "scrc-guard 1 landlock=<ABI version, 0 without Landlock>". */
void hello_payload(struct bytes *hello, int landlock);

/* The payload of a 'C' reply, the sandbox cleared: u32 errno (0 when it is clear), u64 nanoseconds the wipe took. */
void cleared_payload(struct bytes *reply, int error, int64_t took_ns);

/* The report as JSON, NUL-terminated in `json` (REPORT_JSON_MAX bytes); returns its length. */
size_t report_json(const struct report *report, char *json);

/* The payload of an 'R' reply: u32 report length, report JSON, u32 stdout length, stdout, u32 stderr length, stderr. */
void report_payload(struct bytes *reply, const struct report *report, const struct bytes *out,
                    const struct bytes *err);

#endif
