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
#include <errno.h>
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

static int64_t read_number(const char *path) {
    char buffer[64];
    if (slurp(path, buffer, sizeof buffer) <= 0) return -1;
    return strtoll(buffer, NULL, 10);
}

/* The value of "<key> <number>" in a flat keyed file such as memory.events or cpu.stat. */
static int64_t read_key(const char *path, const char *key) {
    char buffer[4096];
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

/* Kills every process in the namespace but this one, until none is left to reap. */
static void kill_everything(void) {
    for (int round = 0; round < 10000; round++) {
        kill(-1, SIGKILL);
        pid_t reaped;
        while ((reaped = waitpid(-1, NULL, WNOHANG)) > 0) {
        }
        if (reaped < 0 && errno == ECHILD) return;
        usleep(1000);
    }
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

int main(int argc, char **argv) {
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

    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = limit_ms / 1000;
    timer.it_value.tv_usec = (limit_ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &timer, NULL);

    int exec_errno = 0;
    for (;;) {
        ssize_t n = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
        if (n < 0 && errno == EINTR) continue;
        if (n != (ssize_t)sizeof exec_errno) exec_errno = 0;
        break;
    }
    close(exec_pipe[0]);

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
                timed_out = 1;
                kill(-1, SIGKILL);
            }
        } else if (reaped < 0) {
            break;
        }
        /* Any other pid is an orphan reparented to us: reaping it is all it needs. */
    }
    clock_gettime(CLOCK_MONOTONIC, &finished);
    memset(&timer, 0, sizeof timer);
    setitimer(ITIMER_REAL, &timer, NULL);
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
