/*
 * Putting a program tree into the sandbox and keeping it as it was: 'F' writes a file and 'D' makes a directory (a
 * script's source, or a program put back from the runner's artifact cache), and 'K' records the modes and times of
 * the built program, to be put back before every sealed test. None of them replies: a failure is a setup failure.
 */
#ifndef SCRC_GUARD_TREE_H
#define SCRC_GUARD_TREE_H

#include <stdint.h>
#include <sys/types.h>

/* The fixed fields of an 'F' request: u32 mode, i64 mtime (s), u32 path length; the path and contents follow. */
#define FILE_HEADER 16

struct file_request {
    mode_t mode;          /* the permission bits; the file type is never the runner's to choose */
    int64_t mtime;        /* seconds; Python checks its bytecode cache against the source's */
    uint32_t path_length; /* the path follows the fixed fields, the contents follow the path */
};

/* Decodes the fixed fields of an 'F' request with `rest` bytes after them: 0, or EINVAL when the path cannot be
 * there. */
int file_request_parse(struct file_request *file, const unsigned char *fixed, uint32_t rest);

void op_file(uint32_t length);
void op_directory(uint32_t length);
void op_keep(uint32_t length);

/* Puts back the modes and times 'K' recorded: 0 or an errno. */
int restore_kept(void);

#endif
