/*
 * Reading the container's cgroup (see cgroup.h). The usage and limit count every process of the container, but in a
 * sandbox those are the test's.
 *
 * A program stalled at its memory limit. Under a tight limit a program whose working set does not fit is not always
 * OOM-killed: while part of its memory is file-backed (its code, the libraries and files it maps), the kernel keeps
 * it under the limit by evicting those pages, the program reads them back, evicts others, and so on until the time
 * limit. Such a run did not fit in its memory. What tells it from a slow program is the cgroup's refault counter
 * (pages read back soon after being evicted, memory.stat workingset_refault_*): a program that fits re-reads
 * nothing, however close to the limit it stands (a full /tmp tmpfs, which the kernel cannot evict, does not make a
 * program refault). So when the time limit stops a run, the guard reports the cgroup's usage and limit then, and
 * the bytes refaulted over the last stretch of the run (a quarter of the time limit, 100 ms to 1 s); the runner
 * decides.
 */
#define _GNU_SOURCE
#include "cgroup.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads a whole small file; returns -1 when it cannot. */
static ssize_t slurp(const char *path, char *buffer, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t total = 0, n;
    while (total < (ssize_t)size - 1 && (n = read(fd, buffer + total, size - 1 - total)) > 0) total += n;
    close(fd);
    buffer[total < 0 ? 0 : total] = '\0';
    return total;
}

/* A file holding one number; -1 when it cannot be read or holds a word (cgroup v2 writes "max" for no limit). */
static int64_t read_number(const char *path) {
    char buffer[64];
    if (slurp(path, buffer, sizeof buffer) <= 0 || buffer[0] < '0' || buffer[0] > '9') return -1;
    return strtoll(buffer, NULL, 10);
}

/* The value of "<key> <number>" in a flat keyed file such as memory.events or memory.stat. */
static int64_t read_key(const char *path, const char *key) {
    char buffer[8192]; /* memory.stat of cgroup v2 runs to some 3 KiB */
    if (slurp(path, buffer, sizeof buffer) <= 0) return -1;
    size_t key_len = strlen(key);
    for (char *line = buffer; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ' ') return strtoll(line + key_len + 1, NULL, 10);
    }
    return -1;
}

struct counters read_cgroup(void) {
    struct counters c = {-1, -1, "none"};
    struct stat st;
    if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
        c.cgroup = "v2";
        c.memory_peak = read_number("/sys/fs/cgroup/memory.peak");
        c.oom_kills = read_key("/sys/fs/cgroup/memory.events", "oom_kill");
    } else if (stat("/sys/fs/cgroup/memory", &st) == 0) {
        c.cgroup = "v1";
        c.memory_peak = read_number("/sys/fs/cgroup/memory/memory.max_usage_in_bytes");
        c.oom_kills = read_key("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill");
    }
    return c;
}

int64_t read_cpu_usage_ns(void) {
    int64_t usec = read_key("/sys/fs/cgroup/cpu.stat", "usage_usec");
    if (usec >= 0) return usec * 1000;
    int64_t ns = read_number("/sys/fs/cgroup/cpuacct/cpuacct.usage");
    return ns >= 0 ? ns : read_number("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage");
}

int64_t read_meminfo_usage(void) {
    char buffer[4096];
    if (slurp("/proc/meminfo", buffer, sizeof buffer) <= 0) return -1;
    int64_t anon_kb = -1, shmem_kb = -1;
    for (char *line = buffer; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "AnonPages:", 10) == 0) anon_kb = strtoll(line + 10, NULL, 10);
        if (strncmp(line, "Shmem:", 6) == 0) shmem_kb = strtoll(line + 6, NULL, 10);
    }
    if (anon_kb < 0 || shmem_kb < 0) return -1;
    return (anon_kb + shmem_kb) * 1024;
}

/* Refaults from a memory.stat: anon plus file (kernel 5.9 on), else the older single counter. */
static int64_t read_refaults(const char *path, const char *prefix) {
    char anon[64], file[64], both[64];
    snprintf(anon, sizeof anon, "%sworkingset_refault_anon", prefix);
    snprintf(file, sizeof file, "%sworkingset_refault_file", prefix);
    snprintf(both, sizeof both, "%sworkingset_refault", prefix);
    int64_t anon_pages = read_key(path, anon), file_pages = read_key(path, file);
    if (anon_pages < 0 && file_pages < 0) return read_key(path, both);
    return (anon_pages > 0 ? anon_pages : 0) + (file_pages > 0 ? file_pages : 0);
}

struct pressure read_pressure(void) {
    struct pressure p = {-1, -1, -1};
    struct stat st;
    if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
        p.usage = read_number("/sys/fs/cgroup/memory.current");
        p.limit = read_number("/sys/fs/cgroup/memory.max");
        p.refaults = read_refaults("/sys/fs/cgroup/memory.stat", "");
    } else if (stat("/sys/fs/cgroup/memory", &st) == 0) {
        p.usage = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        p.limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        p.refaults = read_refaults("/sys/fs/cgroup/memory/memory.stat", "total_");
    }
    if (p.limit >= (INT64_C(1) << 62)) p.limit = -1; /* v1 writes a huge number for no limit */
    return p;
}

int64_t stall_window_ns(int64_t limit_ns) {
    int64_t window = limit_ns / 4;
    if (window < 100000000LL) window = 100000000LL;
    if (window > 1000000000LL) window = 1000000000LL;
    return window < limit_ns ? window : limit_ns;
}

struct memory_at_timeout memory_at_timeout(int timed_out, const struct pressure *late, const struct pressure *stopped) {
    struct memory_at_timeout facts = {-1, -1, -1};
    if (!timed_out) return facts;
    facts.limit = stopped->limit;
    facts.usage = stopped->usage;
    if (late->refaults >= 0 && stopped->refaults >= late->refaults)
        facts.refaulted = (stopped->refaults - late->refaults) * sysconf(_SC_PAGESIZE);
    return facts;
}
