/*
 * scrc-guard: the supervisor that runs as PID 1 in every scrc sandbox container, for builds and for test runs.
 *
 *   scrc-guard <wall-limit-ms> <program> [args...]
 *
 * It reads one line from stdin (a nonce chosen by the runner), then runs <program> with the rest of stdin, kills it
 * and everything it started with SIGKILL at the wall-clock limit, kills whatever is left when it exits (daemons,
 * setsid escapees), reaps every zombie, reads the container's cgroup counters, and prints one report line to
 * stderr: "\n<nonce> {json}\n". Only the runner knows the nonce, so the program cannot forge a report.
 *
 * Why it cannot be subverted from inside: as PID 1 of the container's PID namespace it ignores every signal sent
 * from inside that it has no handler for (the kernel protects init), it is not dumpable so the program (same uid)
 * cannot ptrace it or read its memory, and it writes its report only after every other process is dead.
 *
 * Static, libc only, so it runs in any image, including one that holds nothing but the program.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t expired = 0;

static void on_alarm(int signal) {
    (void)signal;
    expired = 1;
}

static int64_t elapsed_ns(const struct timespec *from, const struct timespec *to) {
    return (int64_t)(to->tv_sec - from->tv_sec) * 1000000000LL + (to->tv_nsec - from->tv_nsec);
}

/* Arms the one-shot SIGALRM `ns` from now (at least 1 us: zero would disarm it). */
static void arm_alarm(int64_t ns) {
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    if (ns < 1000) ns = 1000;
    timer.it_value.tv_sec = ns / 1000000000LL;
    timer.it_value.tv_usec = (ns % 1000000000LL) / 1000;
    setitimer(ITIMER_REAL, &timer, NULL);
}

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

/* The value of "<key> <number>" in a flat keyed file such as memory.events or cpu.stat. */
static int64_t read_key(const char *path, const char *key) {
    char buffer[8192]; /* memory.stat of cgroup v2 runs to some 3 KiB */
    if (slurp(path, buffer, sizeof buffer) <= 0) return -1;
    size_t key_len = strlen(key);
    for (char *line = buffer; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ' ') return strtoll(line + key_len + 1, NULL, 10);
    }
    return -1;
}

struct counters {
    int64_t cpu_ns;
    int64_t memory_peak;
    int64_t oom_kills;
    const char *cgroup;
};

/* The container's own cgroup counters: cgroup v2 at /sys/fs/cgroup, v1 under per-controller directories. */
static struct counters read_cgroup(void) {
    struct counters c = {-1, -1, -1, "none"};
    struct stat st;
    if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
        c.cgroup = "v2";
        int64_t usec = read_key("/sys/fs/cgroup/cpu.stat", "usage_usec");
        c.cpu_ns = usec < 0 ? -1 : usec * 1000;
        c.memory_peak = read_number("/sys/fs/cgroup/memory.peak");
        c.oom_kills = read_key("/sys/fs/cgroup/memory.events", "oom_kill");
        return c;
    }
    if (stat("/sys/fs/cgroup/memory", &st) == 0) {
        c.cgroup = "v1";
        c.cpu_ns = read_number("/sys/fs/cgroup/cpuacct/cpuacct.usage");
        if (c.cpu_ns < 0) c.cpu_ns = read_number("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage");
        c.memory_peak = read_number("/sys/fs/cgroup/memory/memory.max_usage_in_bytes");
        c.oom_kills = read_key("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill");
    }
    return c;
}

/* ------------------------------------------------------------------------------------------------------------------
 * A program stalled at its memory limit. Under a tight limit a program whose working set does not fit is not always
 * OOM-killed: while part of its memory is file-backed (its code, the libraries and files it maps), the kernel keeps
 * it under the limit by evicting those pages, the program reads them back, evicts others, and so on until the time
 * limit. Such a run did not fit in its memory. What tells it from a slow program is the cgroup's refault counter
 * (pages read back soon after being evicted, memory.stat workingset_refault_*): a program that fits re-reads
 * nothing, however close to the limit it stands (a full /tmp tmpfs, which the kernel cannot evict, does not make a
 * program refault). So when the time limit stops a run, the guard reports the cgroup's usage and limit then, and
 * the bytes refaulted over the last stretch of the run (a quarter of the time limit, 100 ms to 1 s); the runner
 * decides. The usage and limit count every process of the container, but in a sandbox those are the test's.
 * ------------------------------------------------------------------------------------------------------------------ */

struct pressure {
    int64_t usage;    /* bytes charged to the cgroup */
    int64_t limit;    /* the cgroup's limit in bytes; -1 when unlimited or unknown */
    int64_t refaults; /* pages read back after eviction since the cgroup was made; -1 when unknown */
};

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

static struct pressure read_pressure(void) {
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

/* How long before the time limit the guard first reads the refault counter. */
static int64_t stall_window_ns(int64_t limit_ns) {
    int64_t window = limit_ns / 4;
    if (window < 100000000LL) window = 100000000LL;
    if (window > 1000000000LL) window = 1000000000LL;
    return window < limit_ns ? window : limit_ns;
}

/* The largest ru_maxrss (KiB) of the processes reaped since the serve mode's last test started. */
static int64_t test_max_rss_kb = 0;

/* Kills every process in the namespace but this one, until none is left to reap, remembering their peak RSS. */
static void kill_everything(void) {
    for (int round = 0; round < 10000; round++) {
        kill(-1, SIGKILL);
        for (;;) {
            struct rusage usage;
            pid_t pid = wait4(-1, NULL, WNOHANG, &usage);
            if (pid > 0) {
                if (usage.ru_maxrss > test_max_rss_kb) test_max_rss_kb = usage.ru_maxrss;
                continue;
            }
            if (pid < 0 && errno == ECHILD) return;
            break;
        }
        usleep(1000);
    }
}

/* What the child wrote to the close-on-exec pipe before its exec failed: 0 when the exec succeeded. */
static int read_exec_errno(int fd) {
    int exec_errno = 0;
    for (;;) {
        ssize_t n = read(fd, &exec_errno, sizeof exec_errno);
        if (n < 0 && errno == EINTR) continue;
        if (n != (ssize_t)sizeof exec_errno) exec_errno = 0;
        break;
    }
    close(fd);
    return exec_errno;
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

/* The report's memory facts of a run the time limit stopped: usage and limit at the stop, and the bytes refaulted
 * between `late` (the start of the stall window) and the stop. All null for a run that ended by itself. */
static void append_pressure(char **at, char *end, int timed_out, const struct pressure *late,
                            const struct pressure *stopped) {
    int known = timed_out && late->refaults >= 0 && stopped->refaults >= late->refaults;
    int64_t refaulted = known ? (stopped->refaults - late->refaults) * sysconf(_SC_PAGESIZE) : -1;
    append_optional(at, end, "memory_limit", timed_out ? stopped->limit : -1);
    append_optional(at, end, "memory_at_timeout", timed_out ? stopped->usage : -1);
    append_optional(at, end, "refaulted_before_timeout", refaulted);
}

static int serve(int argc, char **argv);

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0) return serve(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: scrc-guard <wall-limit-ms> <program> [args...]\n");
        return 120;
    }
    /* kill(-1, SIGKILL) is how the guard clears the sandbox. Outside a fresh PID namespace it would kill every process
     * the user can signal, so the guard refuses to run anywhere but as PID 1. */
    if (getpid() != 1) {
        fprintf(stderr, "scrc-guard: refusing to run: not PID 1 of a container\n");
        return 123;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    long limit_ms = strtol(argv[1], NULL, 10);
    if (limit_ms <= 0) limit_ms = 1;

    /* The nonce: the first line of stdin, read byte by byte so that not one byte of the program's input is taken. */
    char nonce[80];
    size_t nonce_len = 0;
    for (;;) {
        char byte;
        ssize_t n = read(0, &byte, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || byte == '\n') break;
        if (nonce_len < sizeof nonce - 1) nonce[nonce_len++] = byte;
    }
    nonce[nonce_len] = '\0';

    int exec_pipe[2];
    if (pipe2(exec_pipe, O_CLOEXEC) != 0) return 121;

    struct sigaction alarm_action;
    memset(&alarm_action, 0, sizeof alarm_action);
    alarm_action.sa_handler = on_alarm; /* no SA_RESTART: the alarm must interrupt wait4 */
    sigaction(SIGALRM, &alarm_action, NULL);

    /* CPU already charged to the container (runc's setup, this process) is not the program's. */
    struct counters before = read_cgroup();
    /* The alarm goes off twice: at the start of the stall window, to read the refault counter, then at the limit. */
    int64_t limit_ns = (int64_t)limit_ms * 1000000LL, late_at_ns = limit_ns - stall_window_ns(limit_ns);
    struct pressure late = {-1, -1, -1}, stopped = {-1, -1, -1};
    int late_taken = late_at_ns <= 0;
    if (late_taken) late = read_pressure();
    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    pid_t child = fork();
    if (child < 0) return 122;
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGALRM, SIG_DFL);
        close(exec_pipe[0]);
        execvp(argv[2], &argv[2]);
        int error = errno;
        ssize_t ignored = write(exec_pipe[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    close(exec_pipe[1]);

    arm_alarm(late_taken ? limit_ns : late_at_ns);

    int exec_errno = read_exec_errno(exec_pipe[0]);

    int status = 0, timed_out = 0, finished_child = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (!finished_child) {
        int any_status;
        struct rusage any_usage;
        pid_t reaped = wait4(-1, &any_status, 0, &any_usage);
        if (reaped == child) {
            status = any_status;
            usage = any_usage;
            finished_child = 1;
        } else if (reaped < 0 && errno == EINTR) {
            if (expired && !timed_out) {
                expired = 0;
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                int64_t elapsed = elapsed_ns(&started, &now);
                if (!late_taken && elapsed < limit_ns) {
                    late = read_pressure();
                    late_taken = 1;
                    arm_alarm(limit_ns - elapsed);
                } else {
                    stopped = read_pressure();
                    timed_out = 1;
                    kill(-1, SIGKILL);
                }
            }
        } else if (reaped < 0) {
            break;
        }
        /* Any other pid is an orphan reparented to us: reaping it is all it needs. */
    }
    clock_gettime(CLOCK_MONOTONIC, &finished);
    struct itimerval disarmed;
    memset(&disarmed, 0, sizeof disarmed);
    setitimer(ITIMER_REAL, &disarmed, NULL);
    kill_everything();

    struct counters counters = read_cgroup();
    int64_t rusage_cpu_ns = ((int64_t)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000LL +
                            ((int64_t)usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;

    char report[1024];
    char *at = report, *end = report + sizeof report;
    append(&at, end, "\n%s {\"v\":1", nonce);
    if (finished_child && WIFEXITED(status))
        append(&at, end, ",\"exit_code\":%d,\"signal\":null", WEXITSTATUS(status));
    else if (finished_child && WIFSIGNALED(status))
        append(&at, end, ",\"exit_code\":null,\"signal\":%d", WTERMSIG(status));
    else
        append(&at, end, ",\"exit_code\":null,\"signal\":null");
    append(&at, end, ",\"wall_ns\":%" PRId64, elapsed_ns(&started, &finished));
    append(&at, end, ",\"timed_out\":%s", timed_out ? "true" : "false");
    append(&at, end, ",\"exec_errno\":%d", exec_errno);
    append(&at, end, ",\"cgroup\":\"%s\"", counters.cgroup);
    int64_t cgroup_cpu_ns = counters.cpu_ns >= 0 && before.cpu_ns >= 0 ? counters.cpu_ns - before.cpu_ns : -1;
    append_optional(&at, end, "cpu_ns", cgroup_cpu_ns >= 0 ? cgroup_cpu_ns : rusage_cpu_ns);
    append_optional(&at, end, "memory_peak", counters.memory_peak >= 0 ? counters.memory_peak
                                                                       : (int64_t)usage.ru_maxrss * 1024);
    append_optional(&at, end, "oom_kills", counters.oom_kills);
    append_pressure(&at, end, timed_out, &late, &stopped);
    append(&at, end, "}\n");
    size_t length = (size_t)(at - report), sent = 0;
    while (sent < length) {
        ssize_t n = write(2, report + sent, length - sent);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        sent += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------------
 * Serve mode: one started container judges a whole script, one test after another.
 *
 *   scrc-guard --serve <writable-dir>...
 *
 * The runner drives the guard with frames on stdin and reads frames on stdout; both are the container's attached
 * streams, which no test process can reach (every test gets its own pipes and memfd as fds 0-2, everything else is
 * close-on-exec, and PID 1 is not dumpable, so /proc/1/fd is closed to it). A frame is one op byte, a little-endian
 * u32 payload length, and the payload.
 *
 * Runner to guard:
 *   'W'  wipe: kill every process but PID 1, then empty every <writable-dir> (no reply)
 *   'F'  write a file: u32 mode, i64 mtime (s), u32 path length, path, contents (no reply)
 *   'X'  run a test: u32 limit ms, u32 output limit, u32 flags, u32 argc, u32 envc, u32 length of the strings,
 *        then workdir, argv and env as NUL-terminated strings, then stdin to the end of the frame. Reply 'R'.
 *        Flag 1, seal: the test may write only beneath the <writable-dir>s and to devices in /dev; everything else,
 *        the program directory included, is read-only to it (Landlock, unprivileged, applied in the test's own
 *        process before exec, so it binds the test and everything it starts). Landlock does not cover a file's
 *        mode and times, so before a sealed test the guard puts back those of the tree 'K' recorded.
 *   'K'  keep: record the mode and times of every entry under a path (the built program), to restore them before
 *        every sealed test (no reply)
 *   'D'  u32 mode, path: make a directory of a program put back from the runner's artifact cache (no reply)
 *   'G'  u32 byte limit, path: gather the built program under path for the artifact cache; reply 'A'
 * Guard to runner:
 *   'H'  hello, once, when the guard is ready: "scrc-guard 1 landlock=<ABI version, 0 without Landlock>"
 *   'R'  u32 report length, report JSON, u32 stdout length, stdout, u32 stderr length, stderr
 *   'A'  u32 errno (0: the whole tree follows; a pending setup errno comes first), then per entry, parents first:
 *        kind 'd' or 'f', u32 mode, i64 mtime, u32 path length, path relative to the gathered one, and for a file
 *        u32 length and contents. Anything but plain files and directories makes the errno non-zero, and so do
 *        entries of more bytes, all of them counted, than the limit (EFBIG): the reply is at most 4 + limit.
 * A failed 'W', 'F' or 'D' is remembered and returned in the next reply as "setup_errno"; a test is then not run.
 *
 * Between tests nothing carries over: every process of the previous test is dead before its report is written,
 * and the writable directories are emptied by the next 'W'. The program itself is on a volume mounted read-only
 * in the container that runs the tests, so no test can change it.
 * The test's CPU time is the change in RUSAGE_CHILDREN (every process of the test is reaped by then), its memory
 * peak is the cgroup's watermark when the test raised it and otherwise the largest ru_maxrss of its processes (the
 * watermark cannot be reset from inside), and its OOM kills are the change in the cgroup's counter. A test the time
 * limit stops also gets the memory facts that tell whether it was stalled at its memory limit (see read_pressure).
 * ------------------------------------------------------------------------------------------------------------------ */

#define FRAME_LIMIT (256u * 1024u * 1024u)
#define RUN_HEADER 24
#define RUN_SEAL 1u
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

static int setup_errno = 0;

/* The program tree recorded by 'K': its entries' paths, modes and times, parents before children. */
struct kept {
    char *path;
    mode_t mode;
    struct timespec times[2];
};
static struct kept *kept_entries = NULL;
static size_t kept_count = 0, kept_capacity = 0;
static int writable_count = 0;
static char **writable_dirs = NULL;
static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int signal) {
    (void)signal;
    int saved = errno;
    char byte = 0;
    ssize_t ignored = write(sigchld_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

/* 0 when all n bytes were read, -1 at end of stream or on error. */
static int read_full(int fd, void *buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = read(fd, (char *)buffer + done, n - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

static int write_full(int fd, const void *buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t put = write(fd, (const char *)buffer + done, n - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return -1;
        done += (size_t)put;
    }
    return 0;
}

static uint32_t get_u32(const unsigned char *at) {
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

static void put_u32(unsigned char *at, uint32_t value) {
    for (int i = 0; i < 4; i++) at[i] = (unsigned char)(value >> (8 * i));
}

/* A growable byte buffer for replies. */
struct bytes {
    unsigned char *data;
    size_t length, capacity;
    int failed;
};

static void bytes_add(struct bytes *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->length + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->length + n) capacity *= 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, data, n);
    b->length += n;
}

static void bytes_u32(struct bytes *b, uint32_t value) {
    unsigned char at[4];
    put_u32(at, value);
    bytes_add(b, at, 4);
}

static void send_frame(char op, const struct bytes *payload) {
    unsigned char header[5];
    header[0] = (unsigned char)op;
    put_u32(header + 1, (uint32_t)payload->length);
    if (write_full(1, header, 5) != 0 || write_full(1, payload->data, payload->length) != 0) {
        /* The runner is gone: nothing is left to serve. */
        kill_everything();
        _exit(0);
    }
}

/* Reads and discards n bytes, so that the stream stays in step after a refused frame. */
static int skip(size_t n) {
    char buffer[65536];
    while (n > 0) {
        size_t chunk = n < sizeof buffer ? n : sizeof buffer;
        if (read_full(0, buffer, chunk) != 0) return -1;
        n -= chunk;
    }
    return 0;
}

/* Reaps whatever has exited, remembering the largest ru_maxrss of this test; returns the status of `child` if it
 * was among them. */
static int reap(pid_t child, int *child_status, struct timespec *finished) {
    int reaped_child = 0;
    for (;;) {
        int status;
        struct rusage usage;
        pid_t pid = wait4(-1, &status, WNOHANG, &usage);
        if (pid <= 0) break;
        if (usage.ru_maxrss > test_max_rss_kb) test_max_rss_kb = usage.ru_maxrss;
        if (pid == child) {
            *child_status = status;
            clock_gettime(CLOCK_MONOTONIC, finished);
            reaped_child = 1;
        }
    }
    return reaped_child;
}

/* Empties `root` without following links. It walks with chdir, holding one descriptor at a time, so that no depth
 * of nesting a program leaves can exhaust the guard's descriptors or stack; it makes each directory writable before
 * entering it, since the program (same user) may have taken the permissions away. */
static int wipe_tree(const char *root) {
    if (chdir(root) != 0) return errno;
    int depth = 0, error = 0;
    for (long steps = 0; steps < 10000000L; steps++) {
        DIR *dir = opendir(".");
        if (!dir) {
            error = errno;
            break;
        }
        char sub[NAME_MAX + 1] = "";
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            struct stat st;
            if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                if (sub[0] == '\0') snprintf(sub, sizeof sub, "%s", entry->d_name);
            } else if (unlinkat(dirfd(dir), entry->d_name, 0) != 0) {
                error = errno;
            }
        }
        closedir(dir);
        if (error) break;
        if (sub[0] != '\0') {
            if (fchmodat(AT_FDCWD, sub, 0700, 0) != 0 || chdir(sub) != 0) {
                error = errno;
                break;
            }
            depth++;
            continue;
        }
        if (depth == 0) {
            if (chdir("/") != 0) error = errno;
            return error;
        }
        /* This directory is empty: go up and remove it by its inode. */
        struct stat self;
        if (stat(".", &self) != 0 || chdir("..") != 0) {
            error = errno;
            break;
        }
        depth--;
        DIR *parent = opendir(".");
        if (!parent) {
            error = errno;
            break;
        }
        int removed = 0;
        while ((entry = readdir(parent)) != NULL) {
            struct stat st;
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (fstatat(dirfd(parent), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == self.st_ino &&
                st.st_dev == self.st_dev) {
                removed = unlinkat(dirfd(parent), entry->d_name, AT_REMOVEDIR) == 0;
                if (!removed) error = errno;
                break;
            }
        }
        closedir(parent);
        if (error) break;
        if (!removed) {
            error = ENOTEMPTY;
            break;
        }
    }
    if (chdir("/") != 0 && !error) error = errno;
    return error ? error : EAGAIN;
}

static void op_wipe(int dirs, char **dir_names) {
    kill_everything();
    for (int i = 0; i < dirs; i++) {
        int error = wipe_tree(dir_names[i]);
        if (error && !setup_errno) setup_errno = error;
    }
}

/* Copies the next `rest` bytes of the frame into `fd` (or drops them when `fd` is negative), so that the stream
 * stays in step whatever happens to the file; a failed write is remembered for the next reply. */
static void stream_into(int fd, uint32_t rest) {
    char buffer[65536];
    while (rest > 0) {
        size_t chunk = rest < sizeof buffer ? rest : sizeof buffer;
        if (read_full(0, buffer, chunk) != 0) _exit(0);
        if (fd >= 0 && write_full(fd, buffer, chunk) != 0 && !setup_errno) setup_errno = errno ? errno : EIO;
        rest -= (uint32_t)chunk;
    }
}

/* Writes a file, streaming its contents from stdin so that the guard never holds a whole program in memory. */
static void op_file(uint32_t length) {
    unsigned char fixed[16];
    if (length < 16) {
        if (skip(length) != 0) _exit(0);
        if (!setup_errno) setup_errno = EINVAL;
        return;
    }
    if (read_full(0, fixed, 16) != 0) _exit(0);
    mode_t mode = get_u32(fixed) & 07777;
    int64_t mtime = 0;
    for (int i = 0; i < 8; i++) mtime |= (int64_t)fixed[4 + i] << (8 * i);
    uint32_t path_length = get_u32(fixed + 12);
    uint32_t rest = length - 16;
    if (path_length == 0 || path_length > PATH_MAX || path_length > rest) {
        if (skip(rest) != 0) _exit(0);
        if (!setup_errno) setup_errno = EINVAL;
        return;
    }
    char path[PATH_MAX + 1];
    if (read_full(0, path, path_length) != 0) _exit(0);
    path[path_length] = '\0';
    rest -= path_length;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && !setup_errno) setup_errno = errno;
    stream_into(fd, rest);
    if (fd >= 0) {
        struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
        if ((fchmod(fd, mode) != 0 || futimens(fd, times) != 0) && !setup_errno) setup_errno = errno;
        close(fd);
    }
}

static void keep_entry(const char *path, const struct stat *st) {
    if (kept_count == kept_capacity) {
        size_t capacity = kept_capacity ? kept_capacity * 2 : 64;
        struct kept *grown = realloc(kept_entries, capacity * sizeof *grown);
        if (!grown) {
            if (!setup_errno) setup_errno = ENOMEM;
            return;
        }
        kept_entries = grown;
        kept_capacity = capacity;
    }
    char *copy = strdup(path);
    if (!copy) {
        if (!setup_errno) setup_errno = ENOMEM;
        return;
    }
    kept_entries[kept_count].path = copy;
    kept_entries[kept_count].mode = st->st_mode & 07777;
    kept_entries[kept_count].times[0] = st->st_atim;
    kept_entries[kept_count].times[1] = st->st_mtim;
    kept_count++;
}

/* Records `path` and what is beneath it, parents first, at most `depth` levels down. */
static void keep_tree(const char *path, int depth) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (!setup_errno) setup_errno = errno;
        return;
    }
    if (S_ISLNK(st.st_mode)) return;
    keep_entry(path, &st);
    if (!S_ISDIR(st.st_mode)) return;
    if (depth <= 0) {
        if (!setup_errno) setup_errno = ELOOP;
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        if (!setup_errno) setup_errno = errno;
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char child[PATH_MAX];
        int n = snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        if (n < 0 || n >= (int)sizeof child) {
            if (!setup_errno) setup_errno = ENAMETOOLONG;
            continue;
        }
        keep_tree(child, depth - 1);
    }
    closedir(dir);
}

static void op_keep(uint32_t length) {
    char path[PATH_MAX + 1];
    if (length == 0 || length > PATH_MAX) {
        if (skip(length) != 0) _exit(0);
        if (!setup_errno) setup_errno = EINVAL;
        return;
    }
    if (read_full(0, path, length) != 0) _exit(0);
    path[length] = '\0';
    keep_tree(path, 32);
}

/* Makes a directory of a program put back from the runner's artifact cache. The owner keeps write access, so that
 * the files beneath it can be put in after it. */
static void op_directory(uint32_t length) {
    unsigned char fixed[4];
    if (length <= 4 || length - 4 > PATH_MAX) {
        if (skip(length) != 0) _exit(0);
        if (!setup_errno) setup_errno = EINVAL;
        return;
    }
    if (read_full(0, fixed, 4) != 0) _exit(0);
    char path[PATH_MAX + 1];
    if (read_full(0, path, length - 4) != 0) _exit(0);
    path[length - 4] = '\0';
    mode_t mode = (get_u32(fixed) & 07777) | S_IRWXU;
    if ((mkdir(path, mode) != 0 || chmod(path, mode) != 0) && !setup_errno) setup_errno = errno;
}

/* The program tree gathered by 'G', for the runner's artifact cache. `total` counts every byte of the entries sent
 * so far, names and metadata included, so that the reply never exceeds the limit by what the contents leave out. */
struct gathered {
    struct bytes out;
    uint64_t total, limit;
    int error;
};

/* Counts `n` more bytes of the reply against the limit: 0 when they fit, else the tree is too large (EFBIG). */
static int charge(struct gathered *g, uint64_t n) {
    if (n > g->limit - g->total) {
        g->error = EFBIG;
        return -1;
    }
    g->total += n;
    return 0;
}

/* An entry's kind, mode, mtime and path; for a file, the length of the contents that follow. */
static int gathered_entry(struct gathered *g, char kind, const struct stat *st, const char *relative) {
    size_t path_length = strlen(relative);
    if (charge(g, 1 + 4 + 8 + 4 + (uint64_t)path_length + (kind == 'f' ? 4 : 0)) != 0) return -1;
    bytes_add(&g->out, &kind, 1);
    bytes_u32(&g->out, (uint32_t)(st->st_mode & 07777));
    bytes_u32(&g->out, (uint32_t)((uint64_t)st->st_mtim.tv_sec & 0xffffffffu));
    bytes_u32(&g->out, (uint32_t)((uint64_t)st->st_mtim.tv_sec >> 32));
    bytes_u32(&g->out, (uint32_t)path_length);
    bytes_add(&g->out, relative, path_length);
    return 0;
}

/* Appends a regular file's metadata and contents; anything that is not a plain file or directory (a link, a
 * FIFO, a device) makes the tree uncacheable rather than being followed or opened. */
static void gather_file(struct gathered *g, const char *path, const char *relative) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        g->error = errno ? errno : EIO;
        if (fd >= 0) close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        g->error = ENOTSUP;
        close(fd);
        return;
    }
    if (gathered_entry(g, 'f', &st, relative) != 0 || charge(g, (uint64_t)st.st_size) != 0) {
        close(fd);
        return;
    }
    /* The size was charged; a file that grows past it while being read is refused, one that shrinks refunded. */
    uint64_t charged = (uint64_t)st.st_size;
    size_t at = g->out.length;
    bytes_u32(&g->out, 0);
    uint64_t size = 0;
    char buffer[65536];
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            g->error = errno;
            break;
        }
        if (got == 0) break;
        size += (uint64_t)got;
        if (size > charged) {
            g->error = EFBIG;
            break;
        }
        bytes_add(&g->out, buffer, (size_t)got);
    }
    close(fd);
    g->total -= charged - (size < charged ? size : charged);
    if (!g->out.failed) put_u32(g->out.data + at, (uint32_t)size);
}

/* Walks the tree under `root`, parents before children, at most `depth` levels down. */
static void gather_tree(struct gathered *g, const char *root, const char *relative, int depth) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", root, relative);
    if (n < 0 || n >= (int)sizeof path) {
        g->error = ENAMETOOLONG;
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        g->error = errno;
        return;
    }
    struct dirent *entry;
    while (!g->error && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char child[PATH_MAX], child_relative[PATH_MAX];
        int a = snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        int b = snprintf(child_relative, sizeof child_relative, "%s%s%s", relative, *relative ? "/" : "",
                         entry->d_name);
        if (a < 0 || a >= (int)sizeof child || b < 0 || b >= (int)sizeof child_relative) {
            g->error = ENAMETOOLONG;
            break;
        }
        struct stat st;
        if (lstat(child, &st) != 0) {
            g->error = errno;
        } else if (S_ISDIR(st.st_mode)) {
            if (depth <= 0) {
                g->error = ELOOP;
            } else if (gathered_entry(g, 'd', &st, child_relative) == 0) {
                gather_tree(g, root, child_relative, depth - 1);
            }
        } else {
            gather_file(g, child, child_relative);
        }
    }
    closedir(dir);
}

/* Sends the built program back, every file and directory under a path, up to a byte limit: reply 'A' with an
 * errno (0 when the whole tree is there) and the entries. */
static void op_gather(uint32_t length) {
    unsigned char fixed[4];
    if (length <= 4 || length - 4 > PATH_MAX) {
        if (skip(length) != 0) _exit(0);
        struct bytes reply = {0};
        bytes_u32(&reply, EINVAL);
        send_frame('A', &reply);
        free(reply.data);
        return;
    }
    if (read_full(0, fixed, 4) != 0) _exit(0);
    char root[PATH_MAX + 1];
    if (read_full(0, root, length - 4) != 0) _exit(0);
    root[length - 4] = '\0';
    struct gathered g = {.limit = get_u32(fixed)};
    bytes_u32(&g.out, 0);
    /* A 'D' or 'F' that failed before is this reply's errno: the tree is not what the runner put in. */
    g.error = setup_errno;
    setup_errno = 0;
    if (!g.error) gather_tree(&g, root, "", 16);
    if (g.out.failed) {
        free(g.out.data);
        g = (struct gathered){.error = ENOMEM};
        bytes_u32(&g.out, ENOMEM);
    }
    if (g.error) {
        g.out.length = 0;
        bytes_u32(&g.out, (uint32_t)g.error);
    }
    send_frame('A', &g.out);
    free(g.out.data);
}

/* Puts back the recorded modes and times, parents first so that every path is reachable again. */
static int restore_kept(void) {
    for (size_t i = 0; i < kept_count; i++) {
        if (fchmodat(AT_FDCWD, kept_entries[i].path, kept_entries[i].mode, 0) != 0) return errno;
        if (utimensat(AT_FDCWD, kept_entries[i].path, kept_entries[i].times, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    }
    return 0;
}

/* Output of one stream of a test, kept up to the limit. */
struct stream {
    int fd;
    struct bytes kept;
    int exceeded;
};

/* Reads what a stream has; 1 when the stream went past `limit`. */
static int drain(struct stream *s, uint32_t limit) {
    char buffer[65536];
    for (;;) {
        ssize_t got = read(s->fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) return 0;
        if (got <= 0) {
            close(s->fd);
            s->fd = -1;
            return 0;
        }
        size_t room = limit > s->kept.length ? limit - s->kept.length : 0;
        bytes_add(&s->kept, buffer, (size_t)got < room ? (size_t)got : room);
        if ((size_t)got > room) {
            s->exceeded = 1;
            close(s->fd);
            s->fd = -1;
            return 1;
        }
    }
}

static void send_report(const char *json, struct stream *out, struct stream *err) {
    struct bytes reply = {0};
    size_t json_length = strlen(json);
    bytes_u32(&reply, (uint32_t)json_length);
    bytes_add(&reply, json, json_length);
    bytes_u32(&reply, (uint32_t)out->kept.length);
    bytes_add(&reply, out->kept.data, out->kept.length);
    bytes_u32(&reply, (uint32_t)err->kept.length);
    bytes_add(&reply, err->kept.data, err->kept.length);
    if (reply.failed) {
        /* Not even the report fits in memory: say so without the output. */
        reply.length = 0;
        reply.failed = 0;
        const char *oom = "{\"v\":1,\"setup_errno\":12}";
        bytes_u32(&reply, (uint32_t)strlen(oom));
        bytes_add(&reply, oom, strlen(oom));
        bytes_u32(&reply, 0);
        bytes_u32(&reply, 0);
    }
    send_frame('R', &reply);
    free(reply.data);
}

/* The Landlock ABI version the kernel offers, or 0. */
static int landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

/* Applies the seal in the test's process: from here on it may write only beneath the writable directories, and to
 * device files under /dev (/dev/null); everything else is read-only to it and to whatever it starts. 0 or errno. */
static int seal(void) {
    int abi = landlock_abi();
    if (abi < 3) return EOPNOTSUPP;
    __u64 write = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                  LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                  LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                  LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE;
    struct landlock_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = write;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0) return errno;
    for (int i = 0; i <= writable_count; i++) {
        const char *dir = i < writable_count ? writable_dirs[i] : "/dev";
        struct landlock_path_beneath_attr beneath;
        memset(&beneath, 0, sizeof beneath);
        beneath.allowed_access =
            i < writable_count ? write : LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
        beneath.parent_fd = open(dir, O_PATH | O_CLOEXEC);
        if (beneath.parent_fd < 0) return errno;
        if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) != 0) return errno;
        close(beneath.parent_fd);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) return errno;
    close(ruleset);
    return 0;
}

static int64_t rusage_cpu_ns(const struct rusage *usage) {
    return ((int64_t)usage->ru_utime.tv_sec + usage->ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)usage->ru_utime.tv_usec + usage->ru_stime.tv_usec) * 1000LL;
}

static void op_run(uint32_t length) {
    struct stream out = {-1, {0}, 0}, err = {-1, {0}, 0};
    unsigned char fixed[RUN_HEADER] = {0};
    int whole = length >= RUN_HEADER;
    if (!whole) {
        if (skip(length) != 0) _exit(0);
        if (!setup_errno) setup_errno = EINVAL;
    } else if (read_full(0, fixed, RUN_HEADER) != 0) {
        _exit(0);
    }
    uint32_t limit_ms = get_u32(fixed), output_limit = get_u32(fixed + 4), flags = get_u32(fixed + 8);
    uint32_t argc = get_u32(fixed + 12), envc = get_u32(fixed + 16), strings_length = get_u32(fixed + 20);
    uint32_t rest = whole ? length - RUN_HEADER : 0;
    char *strings = NULL;
    if (whole && (strings_length > rest || strings_length > 1024 * 1024 || argc == 0 || argc + envc > 65536)) {
        if (skip(rest) != 0) _exit(0);
        rest = 0;
        if (!setup_errno) setup_errno = EINVAL;
    } else if (whole) {
        strings = malloc(strings_length + 1);
        if (!strings || read_full(0, strings, strings_length) != 0) _exit(0);
        strings[strings_length] = '\0';
        rest -= strings_length;
    }
    /* stdin: a memfd the test reads at its own pace, so a program that never reads cannot stall anyone. */
    int input = memfd_create("stdin", MFD_CLOEXEC);
    if (input < 0 && !setup_errno) setup_errno = errno;
    stream_into(input, rest);
    if ((flags & RUN_SEAL) && !setup_errno) {
        int restored = restore_kept();
        if (restored) setup_errno = restored;
    }
    char **vector = NULL;
    const char *workdir = strings;
    if (!setup_errno) {
        /* workdir, argv..., env... as consecutive NUL-terminated strings */
        vector = calloc((size_t)argc + envc + 2, sizeof *vector);
        const char *at = strings + strlen(strings) + 1, *end = strings + strings_length;
        for (uint32_t i = 0; vector && i < argc + envc; i++) {
            if (at >= end) {
                setup_errno = EINVAL;
                break;
            }
            vector[i + (i >= argc ? 1 : 0)] = (char *)at;
            at += strlen(at) + 1;
        }
        if (!vector) setup_errno = ENOMEM;
    }
    if (setup_errno) {
        char json[64];
        snprintf(json, sizeof json, "{\"v\":1,\"setup_errno\":%d}", setup_errno);
        setup_errno = 0;
        send_report(json, &out, &err);
        if (input >= 0) close(input);
        free(strings);
        free(vector);
        return;
    }
    lseek(input, 0, SEEK_SET);
    char **argv = vector, **env = vector + argc + 1;

    int out_pipe[2], err_pipe[2], exec_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) _exit(121);

    struct counters before = read_cgroup();
    struct rusage children_before;
    getrusage(RUSAGE_CHILDREN, &children_before);
    test_max_rss_kb = 0;
    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    pid_t child = fork();
    if (child < 0) _exit(122);
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        /* The test, not the guard, is what the OOM killer takes when the container runs out of memory. */
        int adjust = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (adjust >= 0) {
            ssize_t ignored = write(adjust, "1000", 4);
            (void)ignored;
            close(adjust);
        }
        dup2(input, 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        int error = 0;
        if (flags & RUN_SEAL) {
            /* A test that cannot be sealed must not run unsealed: report it as a sandbox failure (negative). */
            int sealed = seal();
            if (sealed != 0) {
                int failure = -sealed;
                ssize_t ignored = write(exec_pipe[1], &failure, sizeof failure);
                (void)ignored;
                _exit(127);
            }
        }
        if (chdir(workdir) != 0) error = errno;
        if (!error) {
            /* The image's variables, with the test's own over them. */
            extern char **environ;
            size_t count = 0, own = 0;
            while (environ[count]) count++;
            while (env[own]) own++;
            char **merged = calloc(count + own + 1, sizeof *merged);
            size_t n = 0;
            for (size_t i = 0; merged && i < count; i++) {
                const char *equals = strchr(environ[i], '=');
                size_t key = equals ? (size_t)(equals - environ[i]) + 1 : strlen(environ[i]);
                int overridden = 0;
                for (size_t j = 0; j < own && !overridden; j++) overridden = strncmp(env[j], environ[i], key) == 0;
                if (!overridden) merged[n++] = environ[i];
            }
            for (size_t j = 0; merged && j < own; j++) merged[n++] = env[j];
            if (merged) environ = merged;
            execvp(argv[0], argv);
            error = errno;
        }
        ssize_t ignored = write(exec_pipe[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    close(input);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(exec_pipe[1]);
    out.fd = out_pipe[0];
    err.fd = err_pipe[0];
    fcntl(out.fd, F_SETFL, O_NONBLOCK);
    fcntl(err.fd, F_SETFL, O_NONBLOCK);

    int exec_errno = read_exec_errno(exec_pipe[0]);
    int seal_errno = exec_errno < 0 ? -exec_errno : 0;
    if (seal_errno) exec_errno = 0;

    int64_t limit_ns = (int64_t)(limit_ms ? limit_ms : 1) * 1000000LL;
    int64_t late_at_ns = limit_ns - stall_window_ns(limit_ns);
    struct pressure late = {-1, -1, -1}, stopped = {-1, -1, -1};
    int status = 0, timed_out = 0, finished_child = 0, late_taken = 0;
    while (!finished_child) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed = elapsed_ns(&started, &now), remaining = limit_ns - elapsed;
        if (remaining <= 0 && !timed_out) {
            stopped = read_pressure();
            timed_out = 1;
            kill(-1, SIGKILL);
        } else if (!timed_out && !late_taken && elapsed >= late_at_ns) {
            late = read_pressure();
            late_taken = 1;
        }
        int64_t until = late_taken ? remaining : late_at_ns - elapsed;
        struct pollfd fds[3] = {{sigchld_pipe[0], POLLIN, 0}, {out.fd, POLLIN, 0}, {err.fd, POLLIN, 0}};
        int wait_ms = timed_out ? 50 : (int)((until + 999999) / 1000000);
        if (poll(fds, 3, wait_ms) < 0 && errno != EINTR) break;
        char sink[64];
        while (read(sigchld_pipe[0], sink, sizeof sink) > 0) {
        }
        if ((out.fd >= 0 && drain(&out, output_limit)) || (err.fd >= 0 && drain(&err, output_limit))) kill(-1, SIGKILL);
        finished_child = reap(child, &status, &finished);
    }
    kill_everything();
    /* Every writer is dead: what is left in the pipes is the last of the output. */
    if (out.fd >= 0) drain(&out, output_limit);
    if (err.fd >= 0) drain(&err, output_limit);
    if (out.fd >= 0) close(out.fd);
    if (err.fd >= 0) close(err.fd);

    struct counters after = read_cgroup();
    struct rusage children_after;
    getrusage(RUSAGE_CHILDREN, &children_after);
    int64_t cpu_ns = rusage_cpu_ns(&children_after) - rusage_cpu_ns(&children_before);
    int64_t peak = after.memory_peak > before.memory_peak ? after.memory_peak : test_max_rss_kb * 1024;
    int64_t oom_kills = after.oom_kills >= 0 && before.oom_kills >= 0 ? after.oom_kills - before.oom_kills : -1;

    char json[768];
    char *at = json, *end = json + sizeof json;
    append(&at, end, "{\"v\":1");
    if (WIFEXITED(status))
        append(&at, end, ",\"exit_code\":%d,\"signal\":null", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        append(&at, end, ",\"exit_code\":null,\"signal\":%d", WTERMSIG(status));
    else
        append(&at, end, ",\"exit_code\":null,\"signal\":null");
    append(&at, end, ",\"wall_ns\":%" PRId64, elapsed_ns(&started, &finished));
    append(&at, end, ",\"timed_out\":%s", timed_out ? "true" : "false");
    append(&at, end, ",\"exec_errno\":%d", exec_errno);
    append(&at, end, ",\"cgroup\":\"%s\"", after.cgroup);
    append_optional(&at, end, "cpu_ns", cpu_ns);
    append_optional(&at, end, "memory_peak", peak);
    append_optional(&at, end, "oom_kills", oom_kills);
    append(&at, end, ",\"output_exceeded\":%s", out.exceeded || err.exceeded ? "true" : "false");
    append(&at, end, ",\"setup_errno\":%d", seal_errno);
    append_pressure(&at, end, timed_out, &late, &stopped);
    append(&at, end, "}");
    send_report(json, &out, &err);
    free(out.kept.data);
    free(err.kept.data);
    free(strings);
    free(vector);
}

static int serve(int argc, char **argv) {
    if (getpid() != 1) {
        fprintf(stderr, "scrc-guard: refusing to run: not PID 1 of a container\n");
        return 123;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 121;
    struct sigaction child_action;
    memset(&child_action, 0, sizeof child_action);
    child_action.sa_handler = on_sigchld;
    child_action.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &child_action, NULL);

    /* Docker gives a tmpfs the mode of the image's directory it covers: an image whose program directory is not
     * writable by every user cannot host warm sandboxes, and saying so here beats failing every test. */
    for (int i = 2; i < argc; i++) {
        if (access(argv[i], W_OK | X_OK) != 0) {
            fprintf(stderr, "scrc-guard: %s is not writable by the sandbox user (%s): the image must not have it, or "
                            "have it with mode 1777\n", argv[i], strerror(errno));
            return 124;
        }
    }
    writable_count = argc - 2;
    writable_dirs = argv + 2;
    char greeting[64];
    int greeting_length = snprintf(greeting, sizeof greeting, "scrc-guard 1 landlock=%d", landlock_abi());
    struct bytes hello = {0};
    bytes_add(&hello, greeting, (size_t)greeting_length);
    send_frame('H', &hello);
    free(hello.data);
    for (;;) {
        unsigned char header[5];
        if (read_full(0, header, 5) != 0) break;
        uint32_t length = get_u32(header + 1);
        if (length > FRAME_LIMIT) break;
        switch (header[0]) {
        case 'W':
            if (skip(length) != 0) goto done;
            op_wipe(writable_count, writable_dirs);
            break;
        case 'F':
            op_file(length);
            break;
        case 'X':
            op_run(length);
            break;
        case 'K':
            op_keep(length);
            break;
        case 'D':
            op_directory(length);
            break;
        case 'G':
            op_gather(length);
            break;
        default:
            goto done;
        }
    }
done:
    /* The runner closed the stream (it finished, or it died): nothing may outlive it. */
    kill_everything();
    return 0;
}
