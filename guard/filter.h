/*
 * The strict syscall filter of a test or build ('X' flag 2, RUNNER_SECCOMP=strict): a seccomp filter of the
 * supervisor's own, installed in the test's own process before exec, on top of whatever profile the engine applies,
 * so that it binds the test and everything it starts. Filters stack: a call the engine's profile allows may still be
 * refused here, never the other way round.
 */
#ifndef SCRC_GUARD_FILTER_H
#define SCRC_GUARD_FILTER_H

/* From here on this process, and whatever it starts, gets EPERM for the calls no judged program needs (debugging
 * other processes, keyrings, eBPF, perf, userfaultfd, io_uring, mounts and namespaces, personalities beyond the
 * usual), and ENOSYS for clone3, whose flags a filter cannot read, so that the C library falls back to clone, whose
 * flags it can. 0 or an errno. */
int filter_strict(void);

#endif
