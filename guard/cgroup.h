/*
 * What the container's cgroup says of a test: its memory peak and OOM kills, and, when the time limit stops a run,
 * the memory facts that tell a program stalled at its memory limit from a slow one. Every number is -1 when the
 * cgroup does not say.
 */
#ifndef SCRC_GUARD_CGROUP_H
#define SCRC_GUARD_CGROUP_H

#include <stdint.h>

struct counters {
    int64_t memory_peak; /* the cgroup's memory watermark in bytes, which cannot be reset from inside */
    int64_t oom_kills;   /* OOM kills in the cgroup since it was made */
    const char *cgroup;  /* which interface the counters came from: "v1", "v2" or "none" */
};

/* The container's own cgroup counters: cgroup v2 at /sys/fs/cgroup, v1 under per-controller directories. */
struct counters read_cgroup(void);

/* The CPU time in nanoseconds that every process of the container has used since it was made (cgroup v2's
 * cpu.stat usage_usec, v1's cpuacct.usage); -1 when the cgroup does not say (gVisor offers none). It counts what no
 * wait reports: a child reaped by the kernel because its parent ignores SIGCHLD, and one still running. */
int64_t read_cpu_usage_ns(void);

/* The sandbox's own memory by the account of its kernel's /proc/meminfo: anonymous pages and shared memory (the
 * tmpfs files of /tmp and /dev/shm among them), in bytes; -1 when it cannot be read. Under gVisor, whose kernel
 * offers no cgroup to its sandbox, the guard samples it through a test for the test's peak: gVisor's ru_maxrss
 * counts memory a process mapped but never touched (a JVM's reserved heap), and its MemTotal less MemFree counts the
 * files it caches (150 MiB of a JDK's modules, read once). Under runc it would be the host's, and the guard never
 * reads it. */
int64_t read_meminfo_usage(void);

struct pressure {
    int64_t usage;    /* bytes charged to the cgroup */
    int64_t limit;    /* the cgroup's limit in bytes; -1 when unlimited or unknown */
    int64_t refaults; /* pages read back after eviction since the cgroup was made; -1 when unknown */
};

struct pressure read_pressure(void);

/* How long before the time limit the guard first reads the refault counter. */
int64_t stall_window_ns(int64_t limit_ns);

/* The report's memory facts of a run the time limit stopped; all -1 (null) for a run that ended by itself. */
struct memory_at_timeout {
    int64_t limit;     /* the cgroup's limit at the stop */
    int64_t usage;     /* the bytes charged to the cgroup at the stop */
    int64_t refaulted; /* the bytes read back after eviction over the stall window */
};

/* `late` is read at the start of the stall window, `stopped` at the stop. */
struct memory_at_timeout memory_at_timeout(int timed_out, const struct pressure *late, const struct pressure *stopped);

#endif
