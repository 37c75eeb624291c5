/*
 * The seal of a test ('X' flag 1): Landlock, unprivileged, applied in the test's own process before exec, so that it
 * binds the test and everything it starts.
 */
#ifndef SCRC_GUARD_SEAL_H
#define SCRC_GUARD_SEAL_H

/* The Landlock ABI version the kernel offers, or 0. Sealing needs 3, from which truncation is restricted too. */
int landlock_abi(void);

/* From here on this process may write only beneath the writable directories, and to device files under /dev
 * (/dev/null); everything else is read-only to it and to whatever it starts. 0 or an errno. */
int seal(char *const *writable, int writable_count);

#endif
