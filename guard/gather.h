/*
 * Gathering the built program for the runner's artifact cache: 'G' asks for every file and directory under a path,
 * up to a byte limit, and the guard replies 'A' with an errno (0 when the whole tree is there) and the entries.
 */
#ifndef SCRC_GUARD_GATHER_H
#define SCRC_GUARD_GATHER_H

#include <stdint.h>

#include "frame.h"

/* Builds the payload of an 'A' reply for the tree under `root` into `reply` (empty on entry). A non-zero `pending`
 * errno (a 'D' or 'F' that failed before) is the reply's errno: the tree is not what the runner put in. */
void gather(struct bytes *reply, const char *root, uint32_t limit, int pending);

void op_gather(uint32_t length);

#endif
