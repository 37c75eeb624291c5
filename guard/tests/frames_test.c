/*
 * The supervisor's side of the golden frames in guard/fixtures (see fixtures/README.md): every reply is encoded by
 * the guard's own functions and compared byte for byte with its fixture, and every request, as the runner encodes
 * it, is decoded by the guard's own parsing. The runner's codec (src/adapters/docker/protocol.rs) is held to the
 * same files, so the two sides cannot drift apart. Also the gather's byte accounting (names and metadata count
 * against the limit), on trees made in a scratch directory, the wipe, and the strict syscall filter (in a child).
 *
 *   frames_test <fixtures-dir> <scratch-dir>
 *
 * Linked with every guard source but main.c and run by tests/guard_frames.rs. It needs neither PID 1 nor a
 * container: nothing here runs a test or sends a frame, and kill_everything does nothing outside PID 1. Its last line
 * on stdout says how many checks passed; a run that ends without it did not get to the end, whatever its status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cgroup.h"
#include "../filter.h"
#include "../frame.h"
#include "../gather.h"
#include "../reply.h"
#include "../run.h"
#include "../tree.h"
#include "../wipe.h"

static int checks = 0, failures = 0;

#define CHECK(condition, ...)                                                                                          \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(condition)) {                                                                                            \
            failures++;                                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #condition);                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static const char *fixtures_dir;
static char scratch_dir[PATH_MAX];

static void fail_setup(const char *what, const char *path) {
    fprintf(stderr, "frames_test: %s %s: %s\n", what, path, strerror(errno));
    exit(2);
}

/* `dir`/`name` into `path` (PATH_MAX bytes). */
static void join(char *path, const char *dir, const char *name) {
    int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        fprintf(stderr, "frames_test: %s/%s is too long a path\n", dir, name);
        exit(2);
    }
}

static void fixture_path(char *path, const char *name) {
    join(path, fixtures_dir, name);
}

/* The whole of a fixture file. */
static struct bytes fixture(const char *name) {
    char path[PATH_MAX];
    fixture_path(path, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_setup("cannot open the fixture", path);
    struct bytes contents = {0};
    char buffer[4096];
    ssize_t got;
    while ((got = read(fd, buffer, sizeof buffer)) > 0) bytes_add(&contents, buffer, (size_t)got);
    close(fd);
    return contents;
}

static void dump(const char *label, const unsigned char *data, size_t length, size_t from) {
    fprintf(stderr, "  %s (%zu bytes) from byte %zu:", label, length, from);
    for (size_t i = from; i < length && i < from + 48; i++) fprintf(stderr, " %02x", data[i]);
    fputc('\n', stderr);
}

/* The frame `op` with `payload`, as send_frame writes it, must be the fixture to the byte. */
static void expect_frame(const char *name, char op, const struct bytes *payload) {
    struct bytes frame = {0}, expected = fixture(name);
    unsigned char header[FRAME_HEADER];
    frame_header(header, op, payload->length);
    bytes_add(&frame, header, FRAME_HEADER);
    bytes_add(&frame, payload->data, payload->length);
    int same = frame.length == expected.length && memcmp(frame.data, expected.data, frame.length) == 0;
    CHECK(same, "the guard's %c frame differs from %s", op, name);
    if (!same) {
        size_t at = 0;
        while (at < frame.length && at < expected.length && frame.data[at] == expected.data[at]) at++;
        dump("encoded", frame.data, frame.length, at);
        dump("fixture", expected.data, expected.length, at);
    }
    free(frame.data);
    free(expected.data);
}

/* A request fixture: its op and payload, the length checked against the frame's header. */
static struct bytes request(const char *name, char op) {
    struct bytes frame = fixture(name);
    CHECK(frame.length >= FRAME_HEADER && frame.data[0] == (unsigned char)op, "%s is not a %c frame", name, op);
    CHECK(get_u32(frame.data + 1) == frame.length - FRAME_HEADER, "%s: the header's length is not the payload's",
          name);
    return frame;
}

/* Puts a request fixture's payload on stdin, where the guard reads requests from, and returns its length. */
static uint32_t request_on_stdin(const char *name, char op) {
    struct bytes frame = request(name, op);
    uint32_t length = (uint32_t)(frame.length - FRAME_HEADER);
    free(frame.data);
    char path[PATH_MAX];
    fixture_path(path, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || lseek(fd, FRAME_HEADER, SEEK_SET) != FRAME_HEADER || dup2(fd, 0) != 0)
        fail_setup("cannot put on stdin", path);
    close(fd);
    return length;
}

static void test_hello(void) {
    struct bytes payload = {0};
    hello_payload(&payload, 6);
    expect_frame("reply-H-hello.bin", 'H', &payload);
    free(payload.data);
}

static void test_cleared(void) {
    struct bytes payload = {0};
    cleared_payload(&payload, 0, 1500000);
    expect_frame("reply-C-cleared.bin", 'C', &payload);
    free(payload.data);
    struct bytes failed = {0};
    cleared_payload(&failed, ENOTEMPTY, 5000000123LL);
    expect_frame("reply-C-errno.bin", 'C', &failed);
    free(failed.data);
}

static void expect_report(const char *name, const struct report *report, const char *out, const char *err) {
    struct bytes payload = {0}, out_bytes = {0}, err_bytes = {0};
    bytes_add(&out_bytes, out, strlen(out));
    bytes_add(&err_bytes, err, strlen(err));
    report_payload(&payload, report, &out_bytes, &err_bytes);
    expect_frame(name, 'R', &payload);
    free(payload.data);
    free(out_bytes.data);
    free(err_bytes.data);
}

static void test_reports(void) {
    struct memory_at_timeout none = {-1, -1, -1};
    struct report exited = {
        .started = 1,
        .exit_code = 0,
        .signal = -1,
        .wall_ns = 14140904,
        .exec_errno = 0,
        .cgroup = "v2",
        .cpu_ns = 24991543,
        .memory_peak = 4087808,
        .oom_kills = 0,
        .at_timeout = none,
    };
    expect_report("reply-R-exited.bin", &exited, "3\n", "warning: unused\n");

    /* The memory facts as the guard works them out: the refaults are pages, the report says bytes. */
    long page = sysconf(_SC_PAGESIZE);
    struct pressure late = {16000000, 16777216, 1000};
    struct pressure stopped = {16687104, 16777216, 1000 + 215875584 / page};
    struct report timed_out = {
        .started = 1,
        .exit_code = -1,
        .signal = 9,
        .wall_ns = 1500412345,
        .timed_out = 1,
        .cgroup = "v1",
        .cpu_ns = 1498000000,
        .memory_peak = 16777216,
        .oom_kills = -1,
        .at_timeout = memory_at_timeout(1, &late, &stopped),
    };
    expect_report("reply-R-timed-out.bin", &timed_out, "partial", "");

    struct memory_at_timeout ended = memory_at_timeout(0, &late, &stopped);
    CHECK(ended.limit == -1 && ended.usage == -1 && ended.refaulted == -1, "a run that ended by itself has no facts");
    struct pressure unknown = {-1, -1, -1};
    struct memory_at_timeout unread = memory_at_timeout(1, &unknown, &stopped);
    CHECK(unread.refaulted == -1 && unread.usage == 16687104, "refaults not read at the window's start are unknown");

    struct report setup = {.setup_errno = 28};
    expect_report("reply-R-setup-errno.bin", &setup, "", "");
}

static void make_directory(const char *path, mode_t mode) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST) fail_setup("cannot make", path);
    if (chmod(path, mode) != 0) fail_setup("cannot chmod", path);
}

static void make_file(const char *path, const void *contents, size_t length, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_full(fd, contents, length) != 0 || fchmod(fd, mode) != 0) fail_setup("cannot write", path);
    close(fd);
}

/* Sets a path's mtime, and checks the file system holds it. */
static void set_mtime(const char *path, time_t mtime) {
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    struct stat st;
    if (utimensat(AT_FDCWD, path, times, 0) != 0 || stat(path, &st) != 0) fail_setup("cannot set the time of", path);
    if (st.st_mtim.tv_sec != mtime) {
        fprintf(stderr, "frames_test: the file system of %s cannot hold the time %lld: give a scratch directory on "
                        "one that can (ext4, tmpfs, btrfs)\n", path, (long long)mtime);
        exit(2);
    }
}

static void scratch(char *path, const char *relative) {
    join(path, scratch_dir, relative);
}

/* An error-only 'A' payload: its errno and nothing after it. */
static uint32_t gathered_errno(const struct bytes *payload) {
    return payload->length == 4 ? get_u32(payload->data) : UINT32_MAX;
}

static void test_gathered_tree(void) {
    char root[PATH_MAX], pkg[PATH_MAX], class_file[PATH_MAX];
    scratch(root, "tree");
    scratch(pkg, "tree/pkg");
    scratch(class_file, "tree/pkg/Main.class");
    make_directory(root, 0755);
    make_directory(pkg, 0755);
    make_file(class_file, "\xca\xfe\xba\xbe", 4, 0644);
    /* Past 2106 and before 1970, so that both halves of the i64 carry a value and its sign is kept. */
    set_mtime(class_file, (time_t)4294967298LL);
    set_mtime(pkg, -2);

    struct bytes payload = {0};
    gather(&payload, root, 65536, 0);
    expect_frame("reply-A-tree.bin", 'A', &payload);
    free(payload.data);

    payload = (struct bytes){0};
    gather(&payload, root, 10, 0);
    expect_frame("reply-A-errno.bin", 'A', &payload);
    free(payload.data);

    payload = (struct bytes){0};
    gather(&payload, root, 65536, 27);
    CHECK(gathered_errno(&payload) == 27, "a pending setup errno is the reply's errno, before any tree");
    free(payload.data);
}

/* The gather counts every byte of an entry against the limit: 1 kind, 4 mode, 8 mtime, 4 + the path's length, and
 * for a file 4 + the contents' length. */
static void test_gather_accounting(void) {
    char root[PATH_MAX], path[PATH_MAX];
    scratch(root, "many");
    make_directory(root, 0755);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "many/%02d", i);
        scratch(path, name);
        make_file(path, "", 0, 0644);
    }
    /* 100 empty files: no contents at all, but 100 entries of 1 + 4 + 8 + 4 + 2 + 4 = 23 bytes. */
    struct bytes payload = {0};
    gather(&payload, root, 1000, 0);
    CHECK(gathered_errno(&payload) == EFBIG, "empty files whose entries do not fit: errno %u",
          gathered_errno(&payload));
    free(payload.data);
    payload = (struct bytes){0};
    gather(&payload, root, 2300, 0);
    CHECK(get_u32(payload.data) == 0 && payload.length == 4 + 2300, "entries of exactly the limit: %zu bytes",
          payload.length);
    free(payload.data);

    /* A directory (1 + 4 + 8 + 4 + 1 = 18 bytes) holding a file of 10 bytes (1 + 4 + 8 + 4 + 3 + 4 + 10 = 34). */
    char sub[PATH_MAX];
    scratch(root, "one");
    scratch(sub, "one/d");
    scratch(path, "one/d/f");
    make_directory(root, 0755);
    make_directory(sub, 0755);
    make_file(path, "0123456789", 10, 0644);
    uint32_t limits[] = {10, 51, 52, 53}, expected[] = {EFBIG, EFBIG, 0, 0};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        payload = (struct bytes){0};
        gather(&payload, root, limits[i], 0);
        uint32_t error = get_u32(payload.data);
        CHECK(error == expected[i], "a limit of %u: errno %u, not %u", limits[i], error, expected[i]);
        if (expected[i] == 0)
            CHECK(payload.length == 4 + 52, "a limit of %u: %zu bytes, not 56", limits[i], payload.length);
        free(payload.data);
    }
}

/* The wipe empties a directory a test left locked, and removes a link without following it. */
static void test_wipe(void) {
    char dir[PATH_MAX], locked[PATH_MAX], inner[PATH_MAX], link[PATH_MAX], elsewhere[PATH_MAX], kept[PATH_MAX];
    scratch(dir, "wiped");
    scratch(locked, "wiped/locked");
    scratch(inner, "wiped/locked/inner");
    scratch(link, "wiped/link");
    scratch(elsewhere, "elsewhere");
    scratch(kept, "elsewhere/kept");
    make_directory(dir, 0755);
    make_directory(locked, 0755);
    make_file(inner, "x", 1, 0644);
    make_directory(elsewhere, 0755);
    make_file(kept, "x", 1, 0644);
    if (symlink(elsewhere, link) != 0) fail_setup("cannot link", link);
    if (chmod(locked, 0) != 0) fail_setup("cannot chmod", locked);
    CHECK(wipe_tree(dir) == 0, "the wipe of %s", dir);
    CHECK(rmdir(dir) == 0, "the wiped %s is empty: %s", dir, strerror(errno));
    CHECK(access(kept, F_OK) == 0, "what a link points to stays");

    /* Wide and deep at once, as many entries as a test's /tmp may hold: 20,000 directories side by side (which the
     * walk once went through again for each one it removed), a chain 3,000 deep, and locked directories among them. */
    char wide[PATH_MAX], entry[PATH_MAX];
    scratch(wide, "wide");
    make_directory(wide, 0755);
    for (int n = 0; n < 20000; n++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", n);
        join(entry, wide, name);
        make_directory(entry, n % 97 == 0 ? 0 : 0755);
    }
    join(entry, wide, "chain");
    make_directory(entry, 0755);
    if (chdir(entry) != 0) fail_setup("cannot enter", entry);
    for (int n = 0; n < 3000; n++) {
        if (mkdir("c", 0700) != 0 || chdir("c") != 0) fail_setup("cannot nest", "c");
    }
    if (chdir("/") != 0) fail_setup("cannot leave", entry);
    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    CHECK(wipe_tree(wide) == 0, "the wipe of %s", wide);
    clock_gettime(CLOCK_MONOTONIC, &finished);
    double seconds = (double)(finished.tv_sec - started.tv_sec) + (finished.tv_nsec - started.tv_nsec) / 1e9;
    CHECK(rmdir(wide) == 0, "the wide and deep %s is empty: %s", wide, strerror(errno));
    printf("wiped 23,000 directories in %.3f s\n", seconds);
}

/* The errno of a raw syscall: 0 when it succeeded. */
static int errno_of(long result) {
    return result < 0 ? errno : 0;
}

/* The strict filter, installed in a child that tries the calls it refuses and a few it must let through, and
 * writes what each gave to a pipe; the filter cannot be taken off, so it must not touch this process. */
static void test_filter(void) {
    struct {
        const char *call;
        int expected;
    } cases[] = {
        {"ptrace", EPERM},      {"process_vm_readv", EPERM}, {"keyctl", EPERM},  {"bpf", EPERM},
        {"perf_event_open", EPERM}, {"userfaultfd", EPERM},  {"io_uring_setup", EPERM}, {"unshare", EPERM},
        {"clone(CLONE_NEWUSER)", EPERM}, {"mount", EPERM},   {"clone3", ENOSYS}, {"personality(READ_IMPLIES_EXEC)", EPERM},
        {"personality(query)", 0},  {"fork", 0},             {"getpid", 0},
    };
    enum { COUNT = sizeof cases / sizeof cases[0] };
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) fail_setup("cannot make a pipe", "for the filter's child");
    pid_t child = fork();
    if (child < 0) fail_setup("cannot fork", "the filter's child");
    if (child == 0) {
        close(pipe_fds[0]);
        int got[COUNT + 1];
        got[0] = filter_strict();
        int n = 1;
        got[n++] = errno_of(syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
        got[n++] = errno_of(syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
        got[n++] = errno_of(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0));
        got[n++] = errno_of(syscall(SYS_bpf, 0, NULL, 0));
        got[n++] = errno_of(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        got[n++] = errno_of(syscall(SYS_userfaultfd, 0));
        got[n++] = errno_of(syscall(SYS_io_uring_setup, 1, NULL));
        got[n++] = errno_of(syscall(SYS_unshare, CLONE_NEWUSER));
        got[n++] = errno_of(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL));
        got[n++] = errno_of(syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL));
        got[n++] = errno_of(syscall(SYS_clone3, NULL, 0));
        got[n++] = errno_of(syscall(SYS_personality, READ_IMPLIES_EXEC));
        got[n++] = errno_of(syscall(SYS_personality, 0xffffffffUL));
        pid_t grandchild = fork();
        if (grandchild == 0) _exit(0);
        got[n++] = grandchild < 0 ? errno : (waitpid(grandchild, NULL, 0) == grandchild ? 0 : errno);
        got[n++] = errno_of(syscall(SYS_getpid));
        ssize_t ignored = write(pipe_fds[1], got, sizeof got);
        (void)ignored;
        _exit(0);
    }
    close(pipe_fds[1]);
    int got[COUNT + 1];
    ssize_t length = read(pipe_fds[0], got, sizeof got);
    close(pipe_fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(length == (ssize_t)sizeof got && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the filter's child reported %zd bytes and ended with status %d", length, status);
    if (length != (ssize_t)sizeof got) return;
    CHECK(got[0] == 0, "the filter is installed: %s", strerror(got[0]));
    for (int i = 0; i < COUNT; i++) {
        CHECK(got[i + 1] == cases[i].expected, "%s under the filter: %s, not %s", cases[i].call,
              got[i + 1] ? strerror(got[i + 1]) : "allowed", cases[i].expected ? strerror(cases[i].expected) : "allowed");
    }
}

static void test_requests(void) {
    struct bytes wipe = request("request-W-wipe.bin", 'W');
    CHECK(wipe.length == FRAME_HEADER, "a wipe has no payload");
    free(wipe.data);

    struct bytes put = request("request-F-file.bin", 'F');
    const unsigned char *payload = put.data + FRAME_HEADER;
    uint32_t rest = (uint32_t)(put.length - FRAME_HEADER - FILE_HEADER);
    struct file_request file;
    CHECK(file_request_parse(&file, payload, rest) == 0, "the file header");
    CHECK(file.mode == 0444 && file.mtime == 4294967298LL && file.path_length == 12, "mode %o, mtime %lld, path %u",
          (unsigned)file.mode, (long long)file.mtime, file.path_length);
    const char *after = (const char *)payload + FILE_HEADER;
    CHECK(memcmp(after, "/box/main.py", 12) == 0, "the path");
    CHECK(rest - file.path_length == 9 && memcmp(after + 12, "print(1)\n", 9) == 0, "the contents");
    CHECK(file_request_parse(&file, payload, 11) == EINVAL, "a path longer than the frame is refused");
    free(put.data);

    struct bytes run = request("request-X-run.bin", 'X');
    struct run_request x;
    run_request_parse(&x, run.data + FRAME_HEADER);
    rest = (uint32_t)(run.length - FRAME_HEADER - RUN_HEADER);
    CHECK(x.limit_ms == 1500 && x.output_limit == 64 && x.flags == (RUN_SEAL | RUN_OUTPUT_FILE) && x.argc == 2 &&
              x.envc == 1 && x.strings_length == 49 && x.cpu_limit_ms == 1000,
          "limit %u, output %u, flags %u, argc %u, envc %u, strings %u, cpu %u", x.limit_ms, x.output_limit, x.flags,
          x.argc, x.envc, x.strings_length, x.cpu_limit_ms);
    CHECK(run_request_check(&x, rest) == 0, "the run header fits its frame");
    char *strings = malloc(x.strings_length + 1);
    memcpy(strings, run.data + FRAME_HEADER + RUN_HEADER, x.strings_length);
    strings[x.strings_length] = '\0';
    char *vector[5] = {0};
    const char *workdir = NULL, *output_file = NULL;
    CHECK(run_request_strings(&x, strings, &workdir, vector, &output_file) == 0, "the strings");
    CHECK(output_file && strcmp(output_file, "/tmp/out.txt") == 0, "the output file %s", output_file);
    CHECK(strcmp(workdir, "/box") == 0, "workdir %s", workdir);
    CHECK(vector[0] && strcmp(vector[0], "python3") == 0 && vector[1] && strcmp(vector[1], "/box/main.py") == 0 &&
              vector[2] == NULL,
          "argv");
    CHECK(vector[3] && strcmp(vector[3], "HOME=/tmp") == 0 && vector[4] == NULL, "env");
    CHECK(rest - x.strings_length == 4 && memcmp(run.data + run.length - 4, "1 2\n", 4) == 0, "stdin");
    struct run_request more = x;
    more.envc = 2;
    char *longer[6] = {0};
    CHECK(run_request_strings(&more, strings, &workdir, longer, &output_file) == EINVAL, "fewer strings than argc and envc say");
    free(strings);
    struct run_request bad = x;
    bad.strings_length = rest + 1;
    CHECK(run_request_check(&bad, rest) == EINVAL, "strings longer than the frame");
    bad = x;
    bad.argc = 0;
    CHECK(run_request_check(&bad, rest) == EINVAL, "no argv");
    bad = x;
    bad.argc = UINT32_MAX;
    bad.envc = 1;
    CHECK(run_request_check(&bad, rest) == EINVAL, "argc and envc that wrap around");
    free(run.data);

    /* 'D', 'G' and 'K' through the guard's own readers, from stdin. */
    uint32_t value = 0;
    char path[PATH_MAX + 1];
    uint32_t length = request_on_stdin("request-D-directory.bin", 'D');
    CHECK(read_u32_and_path(length, &value, path) == 0 && value == 0755 && strcmp(path, "/box/pkg") == 0,
          "directory: mode %o, path %s", value, path);
    length = request_on_stdin("request-G-gather.bin", 'G');
    CHECK(read_u32_and_path(length, &value, path) == 0 && value == 65536 && strcmp(path, "/box") == 0,
          "gather: limit %u, path %s", value, path);
    length = request_on_stdin("request-K-keep.bin", 'K');
    CHECK(read_path(length, path) == 0 && strcmp(path, "/box") == 0, "keep: path %s", path);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: frames_test <fixtures-dir> <scratch-dir>\n");
        return 2;
    }
    fixtures_dir = argv[1];
    if (mkdir(argv[2], 0700) != 0 && errno != EEXIST) fail_setup("cannot make", argv[2]);
    if (!realpath(argv[2], scratch_dir)) fail_setup("cannot resolve", argv[2]);
    /* The gathered modes are the ones set here, whatever the umask. */
    umask(0);

    test_hello();
    test_cleared();
    test_reports();
    test_requests();
    test_gathered_tree();
    test_gather_accounting();
    test_wipe();
    test_filter();
    CHECK(wipe_tree(scratch_dir) == 0 && rmdir(scratch_dir) == 0, "the scratch directory is removed");

    if (failures) {
        fprintf(stderr, "frames_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("frames_test: %d checks passed\n", checks);
    return 0;
}
