/*
 * Clearing the sandbox between tests (see wipe.h). The test's processes run as the same user as the guard, so they
 * can do anything to the writable directories that user can: leave them nested without end, take away the
 * permissions, fill them with links. The wipe copes with all of it.
 */
#define _GNU_SOURCE
#include "wipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "reply.h"

void kill_everything(int64_t *max_rss_kb) {
    /* kill(-1, SIGKILL) is how the guard clears the sandbox. Outside a fresh PID namespace it would kill every
     * process the user can signal, so only PID 1 does it (main refuses to serve elsewhere, and the C tests link this
     * file without being PID 1). */
    if (getpid() != 1) return;
    for (int round = 0; round < 10000; round++) {
        kill(-1, SIGKILL);
        for (;;) {
            struct rusage usage;
            pid_t pid = wait4(-1, NULL, WNOHANG, &usage);
            if (pid > 0) {
                if (max_rss_kb && usage.ru_maxrss > *max_rss_kb) *max_rss_kb = usage.ru_maxrss;
                continue;
            }
            if (pid < 0 && errno == ECHILD) return;
            break;
        }
        usleep(1000);
    }
}

/* The directories entered on the way down, each with the names of its subdirectories not yet emptied: a walk that
 * lists every directory once and visits every entry once, so its cost is linear in the entries left behind. The
 * names are kept in memory rather than as open directories, so that no depth of nesting can exhaust the guard's
 * descriptors; their number is bounded by the inodes the tmpfs may hold. */
struct level {
    char name[NAME_MAX + 1]; /* this directory's name in its parent ("" for the root) */
    char *pending;           /* the names of its subdirectories still to empty, each NUL-terminated */
    size_t pending_length;   /* bytes used in `pending` */
};

/* Lists the directory we are in: removes every entry that is not a directory, and keeps the names of those that are
 * in `level`. 0 or an errno. */
static int list_level(struct level *level) {
    DIR *dir = opendir(".");
    if (!dir) return errno;
    size_t capacity = 0;
    int error = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISDIR(st.st_mode)) {
            if (unlinkat(dirfd(dir), entry->d_name, 0) != 0) error = errno;
            continue;
        }
        size_t length = strlen(entry->d_name) + 1;
        if (level->pending_length + length > capacity) {
            size_t grown = capacity ? capacity * 2 : 4096;
            while (grown < level->pending_length + length) grown *= 2;
            char *more = realloc(level->pending, grown);
            if (!more) {
                error = ENOMEM;
                break;
            }
            level->pending = more;
            capacity = grown;
        }
        memcpy(level->pending + level->pending_length, entry->d_name, length);
        level->pending_length += length;
    }
    closedir(dir);
    return error;
}

/* Takes the last pending subdirectory's name off `level` into `name`; 0 when there is none left. */
static int next_pending(struct level *level, char *name) {
    if (level->pending_length == 0) return 0;
    size_t end = level->pending_length - 1, start = end;
    while (start > 0 && level->pending[start - 1] != '\0') start--;
    memcpy(name, level->pending + start, end - start + 1);
    level->pending_length = start;
    return 1;
}

/* It walks with chdir, holding no descriptor across levels, and makes each directory writable before entering it,
 * since the program (same user) may have taken the permissions away. Nothing runs while it does: every process of
 * the test is dead, so the tree cannot change under it. */
int wipe_tree(const char *root) {
    if (chdir(root) != 0) return errno;
    struct level *levels = NULL;
    size_t depth = 0, capacity = 0;
    int error = 0;
    for (;;) {
        if (depth == capacity) {
            size_t grown = capacity ? capacity * 2 : 16;
            struct level *more = realloc(levels, grown * sizeof *levels);
            if (!more) {
                error = ENOMEM;
                break;
            }
            levels = more;
            capacity = grown;
        }
        struct level *level = &levels[depth];
        if (depth == 0) level->name[0] = '\0';
        level->pending = NULL;
        level->pending_length = 0;
        depth++;
        if ((error = list_level(level)) != 0) break;
        /* Down into the next subdirectory still pending, or up as far as the directories are empty. */
        char name[NAME_MAX + 1];
        while (depth > 0 && !next_pending(&levels[depth - 1], name)) {
            struct level *done = &levels[depth - 1];
            free(done->pending);
            done->pending = NULL;
            depth--;
            if (depth == 0) break;
            if (chdir("..") != 0 || unlinkat(AT_FDCWD, done->name, AT_REMOVEDIR) != 0) {
                error = errno;
                break;
            }
        }
        if (error || depth == 0) break;
        if (fchmodat(AT_FDCWD, name, 0700, 0) != 0 || chdir(name) != 0) {
            error = errno;
            break;
        }
        if (depth == capacity) {
            size_t grown = capacity * 2;
            struct level *more = realloc(levels, grown * sizeof *levels);
            if (!more) {
                error = ENOMEM;
                break;
            }
            levels = more;
            capacity = grown;
        }
        memcpy(levels[depth].name, name, sizeof name);
    }
    for (size_t i = 0; i < depth; i++) free(levels[i].pending);
    free(levels);
    if (chdir("/") != 0 && !error) error = errno;
    return error;
}

void op_wipe(char *const *writable, int writable_count) {
    struct timespec started, finished;
    clock_gettime(CLOCK_MONOTONIC, &started);
    kill_everything(NULL);
    int error = setup_take();
    for (int i = 0; i < writable_count; i++) {
        int wiped = wipe_tree(writable[i]);
        if (!error) error = wiped;
    }
    clock_gettime(CLOCK_MONOTONIC, &finished);
    int64_t took = (int64_t)(finished.tv_sec - started.tv_sec) * 1000000000LL + (finished.tv_nsec - started.tv_nsec);
    struct bytes reply = {0};
    cleared_payload(&reply, error, took);
    send_frame('C', &reply);
    free(reply.data);
}
