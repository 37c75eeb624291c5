/*
 * Running one test (see run.h). Every process of the test is dead and reaped before its report is written, so the
 * report speaks of the test alone: its CPU time is the change in RUSAGE_CHILDREN, its memory peak is the cgroup's
 * watermark when the test raised it and otherwise the largest ru_maxrss of its processes (the watermark cannot be
 * reset from inside), and its OOM kills are the change in the cgroup's counter. A test the time limit stops also gets
 * the memory facts that tell whether it was stalled at its memory limit (see cgroup.c).
 */
#define _GNU_SOURCE
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "filter.h"
#include "frame.h"
#include "reply.h"
#include "seal.h"
#include "tree.h"
#include "user.h"
#include "wipe.h"

/* Written to by the SIGCHLD handler, so that a test's end wakes the poll that waits on its output. */
static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int signal) {
    (void)signal;
    int saved = errno;
    char byte = 0;
    ssize_t ignored = write(sigchld_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

int watch_children(void) {
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction child_action;
    memset(&child_action, 0, sizeof child_action);
    child_action.sa_handler = on_sigchld;
    child_action.sa_flags = SA_NOCLDSTOP;
    return sigaction(SIGCHLD, &child_action, NULL);
}

void run_request_parse(struct run_request *request, const unsigned char *fixed) {
    request->limit_ms = get_u32(fixed);
    request->output_limit = get_u32(fixed + 4);
    request->flags = get_u32(fixed + 8);
    request->argc = get_u32(fixed + 12);
    request->envc = get_u32(fixed + 16);
    request->strings_length = get_u32(fixed + 20);
    request->cpu_limit_ms = get_u32(fixed + 24);
}

int run_request_check(const struct run_request *request, uint32_t rest) {
    if (request->strings_length > rest || request->strings_length > 1024 * 1024 || request->argc == 0 ||
        (uint64_t)request->argc + request->envc > 65536)
        return EINVAL;
    return 0;
}

int run_request_strings(const struct run_request *request, char *strings, const char **workdir, char **vector,
                        const char **output_file) {
    char *at = strings + strlen(strings) + 1, *end = strings + request->strings_length;
    *workdir = strings;
    for (uint32_t i = 0; i < request->argc + request->envc; i++) {
        if (at >= end) return EINVAL;
        vector[i + (i >= request->argc ? 1 : 0)] = at;
        at += strlen(at) + 1;
    }
    *output_file = NULL;
    if (request->flags & RUN_OUTPUT_FILE) {
        if (at >= end || *at != '/') return EINVAL;
        *output_file = at;
    }
    return 0;
}

/* Reads an 'X' request up to its stdin: the fixed fields and the strings (into `*strings`, NUL-terminated). Returns
 * the length of the stdin that follows; a request that cannot be run is a setup failure and has no stdin. */
static uint32_t read_run_request(uint32_t length, struct run_request *request, char **strings) {
    unsigned char fixed[RUN_HEADER];
    if (length < RUN_HEADER) {
        skip_request(length);
        setup_failed(EINVAL);
        return 0;
    }
    read_request(fixed, RUN_HEADER);
    run_request_parse(request, fixed);
    uint32_t rest = length - RUN_HEADER;
    if (run_request_check(request, rest) != 0) {
        skip_request(rest);
        setup_failed(EINVAL);
        return 0;
    }
    *strings = malloc(request->strings_length + 1);
    if (!*strings) _exit(0); /* no room for a MiB: the guard cannot go on serving */
    read_request(*strings, request->strings_length);
    (*strings)[request->strings_length] = '\0';
    return rest - request->strings_length;
}

/* Output of one stream of a test, kept up to the limit. */
struct stream {
    int fd;            /* the read end of the test's pipe; -1 once closed */
    struct bytes kept; /* what the test wrote, up to the output limit */
    int exceeded;      /* the test wrote more, and was killed for it */
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

/* The test's output file, as the guard finds it once every process of the test is dead: a plain file of the
 * sandbox's user, opened without following a link, read into `kept` up to `limit` bytes; one more sets
 * `*exceeded` (OL). "written", or "missing" for anything else (no file, a link, a directory, a FIFO, a file of
 * someone else's), which the guard never reads. */
static const char *read_output_file(const char *path, uint32_t limit, struct bytes *kept, int *exceeded) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return "missing";
    struct stat st;
    uid_t owner = user_uid();
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (owner != (uid_t)-1 && st.st_uid != owner)) {
        close(fd);
        return "missing";
    }
    char buffer[65536];
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        size_t room = limit > kept->length ? limit - kept->length : 0;
        bytes_add(kept, buffer, (size_t)got < room ? (size_t)got : room);
        if ((size_t)got > room) {
            *exceeded = 1;
            break;
        }
    }
    close(fd);
    return "written";
}

static void send_report(const struct report *report, const struct bytes *out, const struct bytes *err) {
    struct bytes reply = {0};
    report_payload(&reply, report, out, err);
    send_frame('R', &reply);
    free(reply.data);
}

/* How often a test's memory is sampled where it must be (run_configure). */
#define SAMPLE_MS 2

static int own_ipc, sample_memory;

void run_configure(int own_ipc_namespace, int sample_memory_usage) {
    own_ipc = own_ipc_namespace;
    sample_memory = sample_memory_usage;
}

/* What the test's process needs between the fork and the exec. */
struct test {
    const char *workdir;
    char **argv, **env;    /* NULL-terminated; env goes over the image's variables */
    int seal;              /* seal the test before exec (RUN_SEAL) */
    int strict;            /* filter its syscalls (RUN_STRICT) */
    const char *output_file; /* where its output is read from after it (RUN_OUTPUT_FILE); NULL for stdout */
    char *const *writable; /* what a sealed test may still write beneath */
    int writable_count;
    int input;       /* its stdin: a memfd holding the request's stdin */
    int out, err;    /* the write ends of its stdout and stderr pipes */
    int exec_report; /* a close-on-exec pipe: what is written to it before exec is why the test did not start */
};

/* The image's variables, with the test's own over them. */
static void merge_environment(char **env) {
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
}

static void tell_exec_failure(const struct test *test, int error) __attribute__((noreturn));
static void tell_exec_failure(const struct test *test, int error) {
    ssize_t ignored = write(test->exec_report, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

/* The forked child: becomes the test, or tells why it could not. */
static void become_test(const struct test *test) __attribute__((noreturn));
static void become_test(const struct test *test) {
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
    dup2(test->input, 0);
    dup2(test->out, 1);
    dup2(test->err, 2);
    /* Its IPC objects die with the test's last process, where the kernel's sysctls do not see to it. */
    if (own_ipc && unshare(CLONE_NEWIPC) != 0) tell_exec_failure(test, -errno);
    /* Nothing of the test runs as root: a test that cannot drop to the sandbox's user is a sandbox failure. */
    int dropped = user_become();
    if (dropped != 0) tell_exec_failure(test, -dropped);
    if (test->seal) {
        /* A test that cannot be sealed must not run unsealed: report it as a sandbox failure (negative). */
        int sealed = seal(test->writable, test->writable_count);
        if (sealed != 0) tell_exec_failure(test, -sealed);
    }
    if (test->strict) {
        /* Last before the exec, so that the guard's own setup is not filtered; unfiltered it must not run. */
        int filtered = filter_strict();
        if (filtered != 0) tell_exec_failure(test, -filtered);
    }
    if (chdir(test->workdir) != 0) tell_exec_failure(test, errno);
    merge_environment(test->env);
    execvp(test->argv[0], test->argv);
    tell_exec_failure(test, errno);
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

static int64_t elapsed_ns(const struct timespec *from, const struct timespec *to) {
    return (int64_t)(to->tv_sec - from->tv_sec) * 1000000000LL + (to->tv_nsec - from->tv_nsec);
}

static int64_t rusage_cpu_ns(const struct rusage *usage) {
    return ((int64_t)usage->ru_utime.tv_sec + usage->ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)usage->ru_utime.tv_usec + usage->ru_stime.tv_usec) * 1000LL;
}

/* How often the CPU time of a test with a CPU-time limit is added up: it may overrun by about this much per CPU.
 * Never more often, however often output wakes the guard: a count walks /proc when the cgroup does not say. */
#define CPU_CHECK_MS 10

/* The CPU time in nanoseconds of every live process but the guard, each with what it has reaped of its own
 * children: utime, stime, cutime and cstime of /proc/<pid>/stat. With what the guard itself reaped since the test
 * began (RUSAGE_CHILDREN), the CPU time of the whole test so far, every process and thread of it. */
static int64_t live_cpu_ns(void) {
    DIR *proc = opendir("/proc");
    if (!proc) return 0;
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0) ticks = 100;
    int64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(proc))) {
        char *end = NULL;
        long pid = strtol(entry->d_name, &end, 10);
        if (!end || *end || pid <= 1) continue;
        char path[64], buffer[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t got = read(fd, buffer, sizeof buffer - 1);
        close(fd);
        if (got <= 0) continue;
        buffer[got] = '\0';
        /* The command name may hold spaces and parentheses: the fields start after the last ')'. From the state
         * on, utime, stime, cutime and cstime are the 12th to 15th. */
        char *after = strrchr(buffer, ')');
        unsigned long long utime, stime;
        long long cutime, cstime;
        if (!after || sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &utime,
                             &stime, &cutime, &cstime) != 4)
            continue;
        total += (int64_t)(utime + stime + (unsigned long long)cutime + (unsigned long long)cstime) * 1000000000LL /
                 ticks;
    }
    closedir(proc);
    return total;
}

/* A test under way, as the guard watches it. */
struct running {
    pid_t child;             /* the test's process; what it starts is the test's too */
    struct timespec started; /* just before the fork: the start of the wall-clock limit */
    struct stream out, err;
    uint32_t output_limit;
    int64_t max_rss_kb;   /* the largest ru_maxrss (KiB) of the test's processes reaped so far */
    int64_t sampled_peak; /* the most memory in use sampled from /proc/meminfo (sample_memory), else -1 */
    int64_t cpu_limit_ns; /* the test's CPU-time limit; 0 for none */
    struct rusage reaped_before; /* the guard's RUSAGE_CHILDREN when the test began */
    int64_t cgroup_cpu_before;   /* the container's CPU time when the test began (read_cpu_usage_ns), or -1 */
    int64_t guard_cpu_before;    /* the guard's own CPU time then */
};

static int64_t own_cpu_ns(void) {
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    return rusage_cpu_ns(&self);
}

/* The test's CPU time so far, every process and thread of it: by the container's cgroup less the guard's own when
 * the cgroup says, which also counts children no wait reports; else what the guard reaped and the live processes'
 * counts (live_cpu_ns). */
static int64_t test_cpu_ns(const struct running *run) {
    if (run->cgroup_cpu_before >= 0) {
        int64_t now = read_cpu_usage_ns();
        if (now >= 0) return now - run->cgroup_cpu_before - (own_cpu_ns() - run->guard_cpu_before);
    }
    struct rusage reaped;
    getrusage(RUSAGE_CHILDREN, &reaped);
    return rusage_cpu_ns(&reaped) - rusage_cpu_ns(&run->reaped_before) + live_cpu_ns();
}

/* How a test ended. */
struct ending {
    int reaped;    /* the test's process was reaped, and `status` is its wait status */
    int status;
    int timed_out; /* the guard killed everything at the time limit */
    int cpu_exceeded; /* the guard killed everything at the CPU-time limit */
    struct timespec finished;
    struct pressure late, stopped; /* read at the start of the stall window, and at the stop */
};

/* Reaps whatever has exited, remembering the largest ru_maxrss of this test; notes the end of the test's process if
 * it was among them. */
static void reap(struct running *run, struct ending *ending) {
    for (;;) {
        int status;
        struct rusage usage;
        pid_t pid = wait4(-1, &status, WNOHANG, &usage);
        if (pid <= 0) break;
        if (usage.ru_maxrss > run->max_rss_kb) run->max_rss_kb = usage.ru_maxrss;
        if (pid == run->child) {
            ending->status = status;
            clock_gettime(CLOCK_MONOTONIC, &ending->finished);
            ending->reaped = 1;
        }
    }
}

/* Waits for the test's process to end, keeping its output as it comes. At the start of the stall window the guard
 * reads the memory pressure; at the time limit, or when a stream goes past the output limit, it kills everything. */
static struct ending watch(struct running *run, uint32_t limit_ms) {
    struct ending ending = {.late = {-1, -1, -1}, .stopped = {-1, -1, -1}};
    int64_t limit_ns = (int64_t)(limit_ms ? limit_ms : 1) * 1000000LL;
    int64_t late_at_ns = limit_ns - stall_window_ns(limit_ns);
    int late_taken = 0;
    int64_t cpu_checked_at = -CPU_CHECK_MS * 1000000LL;
    while (!ending.reaped) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed = elapsed_ns(&run->started, &now), remaining = limit_ns - elapsed;
        if (remaining <= 0 && !ending.timed_out) {
            ending.stopped = read_pressure();
            ending.timed_out = 1;
            kill(-1, SIGKILL);
        } else if (!ending.timed_out && !late_taken && elapsed >= late_at_ns) {
            ending.late = read_pressure();
            late_taken = 1;
        }
        int64_t until = late_taken ? remaining : late_at_ns - elapsed;
        int64_t wait_ms = ending.timed_out ? 50 : (until + 999999) / 1000000;
        if (sample_memory && !ending.timed_out && wait_ms > SAMPLE_MS) wait_ms = SAMPLE_MS;
        if (run->cpu_limit_ns && !ending.timed_out && !ending.cpu_exceeded) {
            if (elapsed - cpu_checked_at >= CPU_CHECK_MS * 1000000LL) {
                cpu_checked_at = elapsed;
                if (test_cpu_ns(run) > run->cpu_limit_ns) {
                    ending.cpu_exceeded = 1;
                    kill(-1, SIGKILL);
                }
            }
            if (!ending.cpu_exceeded && wait_ms > CPU_CHECK_MS) wait_ms = CPU_CHECK_MS;
        }
        struct pollfd fds[3] = {{sigchld_pipe[0], POLLIN, 0}, {run->out.fd, POLLIN, 0}, {run->err.fd, POLLIN, 0}};
        if (poll(fds, 3, wait_ms < INT_MAX ? (int)wait_ms : INT_MAX) < 0 && errno != EINTR) break;
        /* Sampled as soon as the poll wakes, output included: a runtime reports its heap full on stderr while it
         * still holds that heap, and is gone a moment later. */
        if (sample_memory && !ending.timed_out) {
            int64_t usage = read_meminfo_usage();
            if (usage > run->sampled_peak) run->sampled_peak = usage;
        }
        char sink[64];
        while (read(sigchld_pipe[0], sink, sizeof sink) > 0) {
        }
        if ((run->out.fd >= 0 && drain(&run->out, run->output_limit)) ||
            (run->err.fd >= 0 && drain(&run->err, run->output_limit)))
            kill(-1, SIGKILL);
        reap(run, &ending);
    }
    /* The poll failed: the test's status is lost with it, and the report says neither an exit code nor a signal. */
    if (!ending.reaped) clock_gettime(CLOCK_MONOTONIC, &ending.finished);
    return ending;
}

/* Runs a test whose request was whole, and replies with its report. */
static void run_test(struct test *test, const struct run_request *request) {
    int out_pipe[2], err_pipe[2], exec_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0)
        _exit(121);
    test->out = out_pipe[1];
    test->err = err_pipe[1];
    test->exec_report = exec_pipe[1];

    struct counters before = read_cgroup();
    struct rusage children_before;
    getrusage(RUSAGE_CHILDREN, &children_before);
    struct running run = {.output_limit = request->output_limit,
                          .sampled_peak = -1,
                          .cpu_limit_ns = (int64_t)request->cpu_limit_ms * 1000000LL,
                          .reaped_before = children_before,
                          .cgroup_cpu_before = read_cpu_usage_ns(),
                          .guard_cpu_before = own_cpu_ns()};
    clock_gettime(CLOCK_MONOTONIC, &run.started);
    run.child = fork();
    if (run.child < 0) _exit(122);
    if (run.child == 0) become_test(test);
    close(test->input);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(exec_pipe[1]);
    run.out.fd = out_pipe[0];
    run.err.fd = err_pipe[0];
    fcntl(run.out.fd, F_SETFL, O_NONBLOCK);
    fcntl(run.err.fd, F_SETFL, O_NONBLOCK);

    int exec_errno = read_exec_errno(exec_pipe[0]);
    int seal_errno = exec_errno < 0 ? -exec_errno : 0;
    if (seal_errno) exec_errno = 0;

    struct ending ending = watch(&run, request->limit_ms);
    kill_everything(&run.max_rss_kb);
    /* Every writer is dead: what is left in the pipes is the last of the output. */
    if (run.out.fd >= 0) drain(&run.out, run.output_limit);
    if (run.err.fd >= 0) drain(&run.err, run.output_limit);
    if (run.out.fd >= 0) close(run.out.fd);
    if (run.err.fd >= 0) close(run.err.fd);

    /* The output file replaces stdout, which was drained and capped all the same. */
    const char *output_file = NULL;
    int file_exceeded = 0;
    if (test->output_file) {
        run.out.kept.length = 0;
        output_file = read_output_file(test->output_file, run.output_limit, &run.out.kept, &file_exceeded);
    }

    struct counters after = read_cgroup();
    struct rusage children_after;
    getrusage(RUSAGE_CHILDREN, &children_after);
    /* What wait reported is a floor; the cgroup's count adds the children no wait reported. Every process of the
     * test is dead, so the live count adds nothing. */
    int64_t reaped_cpu_ns = rusage_cpu_ns(&children_after) - rusage_cpu_ns(&children_before);
    int64_t cgroup_cpu_ns = test_cpu_ns(&run);
    struct report report = {
        .started = 1,
        .setup_errno = seal_errno,
        .exit_code = ending.reaped && WIFEXITED(ending.status) ? WEXITSTATUS(ending.status) : -1,
        .signal = ending.reaped && WIFSIGNALED(ending.status) ? WTERMSIG(ending.status) : -1,
        .wall_ns = elapsed_ns(&run.started, &ending.finished),
        .timed_out = ending.timed_out,
        .exec_errno = exec_errno,
        .cgroup = after.cgroup,
        .cpu_ns = cgroup_cpu_ns > reaped_cpu_ns ? cgroup_cpu_ns : reaped_cpu_ns,
        .memory_peak = run.sampled_peak >= 0                  ? run.sampled_peak
                       : after.memory_peak > before.memory_peak ? after.memory_peak
                                                                : run.max_rss_kb * 1024,
        .oom_kills = after.oom_kills >= 0 && before.oom_kills >= 0 ? after.oom_kills - before.oom_kills : -1,
        .output_exceeded = run.out.exceeded || run.err.exceeded || file_exceeded,
        .at_timeout = memory_at_timeout(ending.timed_out, &ending.late, &ending.stopped),
        .cpu_exceeded = ending.cpu_exceeded,
        .output_file = output_file,
    };
    send_report(&report, &run.out.kept, &run.err.kept);
    free(run.out.kept.data);
    free(run.err.kept.data);
}

void op_run(uint32_t length, char *const *writable, int writable_count) {
    struct run_request request = {0};
    char *strings = NULL;
    uint32_t stdin_length = read_run_request(length, &request, &strings);
    /* stdin: a memfd the test reads at its own pace, so a program that never reads cannot stall anyone. */
    int input = memfd_create("stdin", MFD_CLOEXEC);
    if (input < 0) setup_failed(errno);
    stream_into(input, stdin_length);
    if ((request.flags & RUN_SEAL) && !setup_pending()) setup_failed(restore_kept());
    struct test test = {.seal = request.flags & RUN_SEAL,
                        .strict = (request.flags & RUN_STRICT) != 0,
                        .writable = writable,
                        .writable_count = writable_count};
    char **vector = NULL;
    if (!setup_pending()) {
        vector = calloc((size_t)request.argc + request.envc + 2, sizeof *vector);
        setup_failed(vector ? run_request_strings(&request, strings, &test.workdir, vector, &test.output_file)
                            : ENOMEM);
    }
    if (setup_pending()) {
        struct report report = {.setup_errno = setup_take()};
        struct bytes none = {0};
        send_report(&report, &none, &none);
        if (input >= 0) close(input);
    } else {
        lseek(input, 0, SEEK_SET);
        test.input = input;
        test.argv = vector;
        test.env = vector + request.argc + 1;
        run_test(&test, &request);
    }
    free(strings);
    free(vector);
}
