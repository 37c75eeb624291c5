/*
 * Running one test ('X'): its process gets the stdin of the request, pipes for its output and the image's
 * environment with the test's own over it; the guard kills it and everything it started at the time limit or when
 * a stream goes past the output limit, reaps them all, and replies 'R' with the report and the output.
 */
#ifndef SCRC_GUARD_RUN_H
#define SCRC_GUARD_RUN_H

#include <stdint.h>

/* The fixed fields of an 'X' request; the strings and the stdin follow. */
#define RUN_HEADER 28
/* Flag 1: seal the test (see seal.h). */
#define RUN_SEAL 1u
/* Flag 2: the strict syscall filter over the test (see filter.h). */
#define RUN_STRICT 2u
/* Flag 4: the test's output is the file the last string names, not its stdout (which is drained, capped and
 * dropped); the reply's stdout carries the file, and the report says whether it was written. */
#define RUN_OUTPUT_FILE 4u

struct run_request {
    uint32_t limit_ms;       /* the wall-clock limit */
    uint32_t output_limit;   /* the bytes each of stdout and stderr may carry */
    uint32_t flags;          /* RUN_SEAL, RUN_STRICT, RUN_OUTPUT_FILE */
    uint32_t argc, envc;     /* how many of the strings are argv and how many env, after the workdir */
    uint32_t strings_length; /* workdir, argv, env (and the output file) as NUL-terminated strings; stdin follows */
    uint32_t cpu_limit_ms;   /* the CPU time every process of the test may use together; 0 for none */
};

void run_request_parse(struct run_request *request, const unsigned char *fixed);

/* 0 when the strings fit in the `rest` bytes after the fixed fields and make a command, else EINVAL. */
int run_request_check(const struct run_request *request, uint32_t rest);

/* Points `workdir` and `vector` (argc + envc + 2 entries, zeroed) into `strings` (strings_length bytes and a NUL):
 * argv from vector[0], a NULL, then env and a NULL; and `output_file` at the string after them under
 * RUN_OUTPUT_FILE, else NULL. 0, or EINVAL when there are fewer strings than said. */
int run_request_strings(const struct run_request *request, char *strings, const char **workdir, char **vector,
                        const char **output_file);

/* What a sandbox on a kernel of its own (gVisor) needs: each test in an IPC namespace of its own (`own_ipc`, since
 * that kernel ignores the IPC sysctls that otherwise clear what a test leaves), and the test's memory peak sampled
 * from /proc/meminfo (`sample_memory`, since it offers no cgroup and overstates ru_maxrss). */
void run_configure(int own_ipc, int sample_memory);

/* Makes SIGCHLD wake the guard's poll: 0, or -1 when it cannot. */
int watch_children(void);

void op_run(uint32_t length, char *const *writable, int writable_count);

#endif
