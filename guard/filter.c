/*
 * The strict syscall filter (see filter.h). A classic BPF program over struct seccomp_data: the architecture first
 * (any other is refused, x32 included, so that no other table of syscall numbers slips past), then the syscall
 * number, then for clone and personality their first argument.
 */
#define _GNU_SOURCE
#include "filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "the strict filter knows x86_64 and aarch64"
#endif

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Every namespace a clone could make: a judged program has no use for one, and each is kernel surface. */
#define NEW_NAMESPACES                                                                                                 \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP |        \
     CLONE_NEWTIME)

/* The calls refused outright. */
static const long DENIED[] = {
    SYS_ptrace,        SYS_process_vm_readv, SYS_process_vm_writev, SYS_keyctl,         SYS_add_key,
    SYS_request_key,   SYS_bpf,              SYS_perf_event_open,   SYS_userfaultfd,    SYS_io_uring_setup,
    SYS_io_uring_enter, SYS_io_uring_register, SYS_mount,           SYS_umount2,        SYS_unshare,
    SYS_setns,         SYS_pivot_root,       SYS_open_tree,         SYS_move_mount,     SYS_fsopen,
    SYS_fsconfig,      SYS_fsmount,          SYS_fspick,            SYS_mount_setattr,
};

/* The personalities a program may ask for: Linux itself, the query (0xffffffff), and what glibc's and the JVM's
 * starts may set (a 32-bit view, 2.6-style uname), as Docker's default profile allows. */
static const unsigned PERSONALITIES[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

#define DENIED_COUNT (sizeof DENIED / sizeof DENIED[0])
#define PERSONALITY_COUNT (sizeof PERSONALITIES / sizeof PERSONALITIES[0])

int filter_strict(void) {
    struct sock_filter program[16 + 2 * DENIED_COUNT + PERSONALITY_COUNT + 8];
    unsigned n = 0;
#define PUT(statement) program[n++] = (struct sock_filter)statement
    const unsigned refuse = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    PUT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0));
    PUT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    PUT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
    /* The x32 ABI's numbers have this bit set: none is a call a judged program makes. */
    PUT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
    PUT(BPF_STMT(BPF_RET | BPF_K, refuse));
#endif
    for (unsigned i = 0; i < DENIED_COUNT; i++) {
        PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)DENIED[i], 0, 1));
        PUT(BPF_STMT(BPF_RET | BPF_K, refuse));
    }
    PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1));
    PUT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
    /* clone: its flags are the first argument; the namespace flags live in its low 32 bits. */
    PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4));
    PUT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
    PUT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NEW_NAMESPACES, 0, 1));
    PUT(BPF_STMT(BPF_RET | BPF_K, refuse));
    PUT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    /* personality: only the personalities above. */
    PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_personality, 0, (unsigned char)(PERSONALITY_COUNT + 2)));
    PUT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
    for (unsigned i = 0; i < PERSONALITY_COUNT; i++) {
        PUT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PERSONALITIES[i], (unsigned char)(PERSONALITY_COUNT - i), 0));
    }
    PUT(BPF_STMT(BPF_RET | BPF_K, refuse));
    PUT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
#undef PUT
    struct sock_fprog filter = {.len = (unsigned short)n, .filter = program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) != 0) return errno;
    return 0;
}
