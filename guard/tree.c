/*
 * Putting a program tree into the sandbox and keeping it as it was (see tree.h). Landlock does not cover a file's
 * mode, times or extended attributes, so a test could change those of the program even when sealed: 'K' records the
 * modes and times once the program is built, and restore_kept puts them back, and removes every extended attribute,
 * before every sealed test.
 */
#define _GNU_SOURCE
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "user.h"

/* The program tree recorded by 'K': its entries' paths, modes and times, parents before children. */
struct kept {
    char *path;
    mode_t mode;
    struct timespec times[2];
};
static struct kept *kept_entries = NULL;
static size_t kept_count = 0, kept_capacity = 0;

int file_request_parse(struct file_request *file, const unsigned char *fixed, uint32_t rest) {
    file->mode = get_u32(fixed) & 07777;
    file->mtime = get_i64(fixed + 4);
    file->path_length = get_u32(fixed + 12);
    return file->path_length == 0 || file->path_length > PATH_MAX || file->path_length > rest ? EINVAL : 0;
}

/* Writes a file, streaming its contents from stdin so that the guard never holds a whole program in memory. */
void op_file(uint32_t length) {
    unsigned char fixed[FILE_HEADER];
    if (length < FILE_HEADER) {
        skip_request(length);
        setup_failed(EINVAL);
        return;
    }
    read_request(fixed, FILE_HEADER);
    struct file_request file;
    uint32_t rest = length - FILE_HEADER;
    if (file_request_parse(&file, fixed, rest) != 0) {
        skip_request(rest);
        setup_failed(EINVAL);
        return;
    }
    char path[PATH_MAX + 1];
    read_request(path, file.path_length);
    path[file.path_length] = '\0';
    rest -= file.path_length;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) setup_failed(errno);
    stream_into(fd, rest);
    if (fd >= 0) {
        struct timespec times[2] = {{file.mtime, 0}, {file.mtime, 0}};
        if (fchmod(fd, file.mode) != 0 || futimens(fd, times) != 0) setup_failed(errno);
        close(fd);
        setup_failed(user_own(path));
    }
}

/* Makes a directory of a program put back from the runner's artifact cache. The owner keeps write access, so that
 * the files beneath it can be put in after it. */
void op_directory(uint32_t length) {
    uint32_t mode_bits;
    char path[PATH_MAX + 1];
    int refused = read_u32_and_path(length, &mode_bits, path);
    if (refused) {
        setup_failed(refused);
        return;
    }
    mode_t mode = (mode_bits & 07777) | S_IRWXU;
    if (mkdir(path, mode) != 0 || chmod(path, mode) != 0) setup_failed(errno);
    else setup_failed(user_own(path));
}

static void keep_entry(const char *path, const struct stat *st) {
    if (kept_count == kept_capacity) {
        size_t capacity = kept_capacity ? kept_capacity * 2 : 64;
        struct kept *grown = realloc(kept_entries, capacity * sizeof *grown);
        if (!grown) {
            setup_failed(ENOMEM);
            return;
        }
        kept_entries = grown;
        kept_capacity = capacity;
    }
    char *copy = strdup(path);
    if (!copy) {
        setup_failed(ENOMEM);
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
        setup_failed(errno);
        return;
    }
    if (S_ISLNK(st.st_mode)) return;
    keep_entry(path, &st);
    if (!S_ISDIR(st.st_mode)) return;
    if (depth <= 0) {
        setup_failed(ELOOP);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        setup_failed(errno);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char child[PATH_MAX];
        int n = snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        if (n < 0 || n >= (int)sizeof child) {
            setup_failed(ENAMETOOLONG);
            continue;
        }
        keep_tree(child, depth - 1);
    }
    closedir(dir);
}

void op_keep(uint32_t length) {
    char path[PATH_MAX + 1];
    int refused = read_path(length, path);
    if (refused) {
        setup_failed(refused);
        return;
    }
    keep_tree(path, 32);
}

/* Removes every extended attribute of `path` the sandbox user may have set: user.* attributes and the ACLs
 * (system.posix_acl_*), which Landlock does not cover either. The build leaves none, so none may be left. */
static int clear_xattrs(const char *path) {
    char names[4096];
    ssize_t length = llistxattr(path, names, sizeof names);
    if (length < 0) return errno == ENOTSUP ? 0 : errno;
    for (ssize_t at = 0; at < length; at += (ssize_t)strlen(names + at) + 1) {
        if (lremovexattr(path, names + at) != 0 && errno != ENODATA) return errno;
    }
    return 0;
}

/* Parents first, so that every path is reachable again. */
int restore_kept(void) {
    for (size_t i = 0; i < kept_count; i++) {
        if (fchmodat(AT_FDCWD, kept_entries[i].path, kept_entries[i].mode | S_IRWXU, 0) != 0) return errno;
        int cleared = clear_xattrs(kept_entries[i].path);
        if (cleared) return cleared;
        if (fchmodat(AT_FDCWD, kept_entries[i].path, kept_entries[i].mode, 0) != 0) return errno;
        if (utimensat(AT_FDCWD, kept_entries[i].path, kept_entries[i].times, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    }
    return 0;
}
