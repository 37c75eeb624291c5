/*
 * scrc-guard: the supervisor that runs as PID 1 in every scrc sandbox container, for builds and for test runs. One
 * started container judges a whole script, one test after another:
 *
 *   scrc-guard --serve --uid <uid> [--own-ipc] [--sample-memory] <writable-dir>...
 *
 * --own-ipc and --sample-memory are for a sandbox on a kernel of its own (gVisor; see run_configure in run.h).
 *
 * Why it cannot be subverted from inside: it runs as root inside the container with a handful of capabilities and
 * every build and test runs as the sandbox's own uid with none (user.h), so no test can signal it, ptrace it or open
 * anything under /proc/1, whatever kernel the container runs on; under runc the kernel also protects PID 1 from
 * signals and the guard is not dumpable. It writes a test's report only after every other process is dead.
 *
 * Static, libc only, so it runs in any image, including one that holds nothing but the program. This file checks
 * where it runs, says hello and serves; each request has its own file: wipe.c ('W'), tree.c ('F', 'D', 'K'),
 * gather.c ('G'), run.c ('X', with seal.c and cgroup.c), and frame.c and reply.c hold what goes over the stream.
 *
 * The runner drives the guard with frames on stdin and reads frames on stdout; both are the container's attached
 * streams, which no test process can reach (every test gets its own pipes and memfd as fds 0-2, everything else is
 * close-on-exec, and PID 1 is not dumpable, so /proc/1/fd is closed to it). A frame is one op byte, a little-endian
 * u32 payload length, and the payload. The runner's side is src/adapters/docker/protocol.rs; the byte layouts both
 * sides are held to are in fixtures/ (see fixtures/README.md).
 *
 * Runner to guard:
 *   'W'  wipe: kill every process but PID 1, then empty every <writable-dir>. Reply 'C'.
 *   'F'  write a file: u32 mode, i64 mtime (s), u32 path length, path, contents (no reply)
 *   'X'  run a test: u32 limit ms, u32 output limit, u32 flags, u32 argc, u32 envc, u32 length of the strings,
 *        u32 CPU-time limit ms (0: none), then workdir, argv and env as NUL-terminated strings, with flag 4 the
 *        output file's absolute path after them, then stdin to the end of the frame. Reply 'R'.
 *        Flag 2, strict: the guard's own syscall filter (filter.h) over the test. Flag 4, output file: the report
 *        carries that file's contents, read once the test is over (run.c, read_output_file), instead of stdout.
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
 *   'C'  cleared: u32 errno (0 when every writable directory is empty and no process is left; else the first failure,
 *        a request before the wipe included), u64 nanoseconds the wipe took
 *   'R'  u32 report length, report JSON, u32 stdout length, stdout, u32 stderr length, stderr
 *   'A'  u32 errno (0: the whole tree follows; a pending setup errno comes first), then per entry, parents first:
 *        kind 'd' or 'f', u32 mode, i64 mtime, u32 path length, path relative to the gathered one, and for a file
 *        u32 length and contents. Anything but plain files and directories makes the errno non-zero, and so do
 *        entries of more bytes, all of them counted, than the limit (EFBIG): the reply is at most 4 + limit.
 * A failed 'F', 'D' or 'K' is remembered and returned in the next reply as "setup_errno"; a test is then not run.
 *
 * Between tests nothing carries over: every process of the previous test is dead before its report is written,
 * and the writable directories are emptied by the next 'W'. The program itself is on a volume mounted read-only
 * in the container that runs the tests, so no test can change it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "frame.h"
#include "gather.h"
#include "reply.h"
#include "run.h"
#include "seal.h"
#include "tree.h"
#include "user.h"
#include "wipe.h"

/* Answers requests until the runner closes the stream or sends one the guard does not know. */
static void serve(char *const *writable, int writable_count) {
    for (;;) {
        unsigned char header[FRAME_HEADER];
        if (read_full(0, header, FRAME_HEADER) != 0) return;
        uint32_t length = get_u32(header + 1);
        if (length > FRAME_LIMIT) return;
        switch (header[0]) {
        case 'W':
            skip_request(length);
            op_wipe(writable, writable_count);
            break;
        case 'F':
            op_file(length);
            break;
        case 'X':
            op_run(length, writable, writable_count);
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
            return;
        }
    }
}

/* Moves the environment off the stack, where /proc/1/environ reads it (gVisor lets any uid read that file), and
 * blanks the original there: the image's variables still reach every test, through the copy. */
static void hide_environment(void) {
    extern char **environ;
    size_t count = 0;
    while (environ[count]) count++;
    char **copy = calloc(count + 1, sizeof *copy);
    for (size_t i = 0; copy && i < count; i++) {
        copy[i] = strdup(environ[i]);
        if (!copy[i]) return;
    }
    if (!copy) return;
    for (size_t i = 0; i < count; i++) memset(environ[i], 0, strlen(environ[i]));
    environ = copy;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[1], "--serve") != 0 || strcmp(argv[2], "--uid") != 0 || user_set(argv[3]) != 0) {
        fprintf(stderr, "usage: scrc-guard --serve --uid <uid from %d> [--own-ipc] [--sample-memory] "
                        "<writable-dir>...\n", USER_LOWEST);
        return 120;
    }
    int first_dir = 4, own_ipc = 0, sample_memory = 0;
    for (; first_dir < argc && strncmp(argv[first_dir], "--", 2) == 0; first_dir++) {
        if (strcmp(argv[first_dir], "--own-ipc") == 0) {
            own_ipc = 1;
        } else if (strcmp(argv[first_dir], "--sample-memory") == 0) {
            sample_memory = 1;
        } else {
            fprintf(stderr, "scrc-guard: unknown option %s\n", argv[first_dir]);
            return 120;
        }
    }
    run_configure(own_ipc, sample_memory);
    /* kill(-1, SIGKILL) is how the guard clears the sandbox. Outside a fresh PID namespace it would kill every process
     * the user can signal, so the guard refuses to run anywhere but as PID 1. */
    if (getpid() != 1) {
        fprintf(stderr, "scrc-guard: refusing to run: not PID 1 of a container\n");
        return 123;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    hide_environment();
    signal(SIGPIPE, SIG_IGN);
    if (watch_children() != 0) return 121;

    /* Builds and tests run as the sandbox's user, which the guard, as root, can become: as anyone else it could
     * not, and tests would run as the guard's own uid, within its reach. */
    if (geteuid() != 0) {
        fprintf(stderr, "scrc-guard: refusing to run: the container must start as root (uid 0), with the capabilities "
                        "CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID and SETUID\n");
        return 125;
    }
    /* Docker gives a tmpfs the mode of the image's directory it covers: an image whose program directory is not
     * writable by every user cannot host warm sandboxes, and saying so here beats failing every test. */
    for (int i = first_dir; i < argc; i++) {
        if (!user_can_write(argv[i])) {
            fprintf(stderr, "scrc-guard: %s is not writable by the sandbox user: the image must not have it, or have "
                            "it with mode 1777\n", argv[i]);
            return 124;
        }
    }
    struct bytes hello = {0};
    hello_payload(&hello, landlock_abi());
    send_frame('H', &hello);
    free(hello.data);

    serve(argv + first_dir, argc - first_dir);
    /* The runner closed the stream (it finished, or it died): nothing may outlive it. */
    kill_everything(NULL);
    return 0;
}
