/* escape: try the ways out of a Stockade sandbox and print what happened.
 *
 * Run only inside a container: on the host these calls would really happen.
 * Each line is "NAME RESULT": "errno=N" for a call that failed with errno N,
 * "ok" for one that succeeded, "signal=N" for a child killed by signal N.
 *
 *   escape denied NR...   call each syscall NR with zero arguments
 *   escape x32            getpid through the x32 ABI, in a child
 *   escape i386           getpid through int 0x80, in a child
 *   escape sentry         signal, ptrace and read the sandbox process (pid 1)
 *   escape clone          clone with namespace and untraced flags, and clone3
 *   escape lift           add an allow-all seccomp filter, then try mount again
 *   escape notify         add a filter with a user-notification listener
 *   escape targets        aim pid-taking calls at the sandbox process (pid 1)
 *   escape devices        create device nodes and open one shipped in the image
 *   escape forge          add a filter whose TRACE data claims clone is openat, then
 *                         clone with CLONE_NEWUSER and CLONE_UNTRACED
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long result) {
    if (result < 0)
        printf("%s errno=%d\n", name, errno);
    else
        printf("%s ok\n", name);
    fflush(stdout);
}

static void report_child(const char *name, pid_t pid) {
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        printf("%s signal=%d\n", name, WTERMSIG(status));
    else
        printf("%s exit=%d\n", name, WEXITSTATUS(status));
    fflush(stdout);
}

static void x32(void) {
    pid_t pid = fork();
    if (pid == 0) {
        long r = syscall(0x40000000 | SYS_getpid);
        _exit(r < 0 ? 100 + (errno & 0x3f) : 0);
    }
    report_child("x32_getpid", pid);
}

static void i386(void) {
    pid_t pid = fork();
    if (pid == 0) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");  /* i386 getpid */
        _exit(r < 0 ? 100 : 0);
    }
    report_child("i386_getpid", pid);
}

static void sentry(void) {
    report("kill_1_KILL", kill(1, SIGKILL));
    report("kill_1_TERM", kill(1, SIGTERM));
    report("tgkill_1", syscall(SYS_tgkill, 1, 1, SIGTERM));
    report("tkill_1", syscall(SYS_tkill, 1, SIGKILL));
    report("ptrace_attach_1", ptrace(PTRACE_ATTACH, 1, 0, 0));
    report("ptrace_seize_1", ptrace(PTRACE_SEIZE, 1, 0, 0));
    report("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
    char buffer[16];
    struct iovec local = {buffer, sizeof buffer}, remote = {(void *)0x400000, sizeof buffer};
    report("process_vm_readv_1", process_vm_readv(1, &local, 1, &remote, 1, 0));
    report("open_proc_1_mem", open("/proc/1/mem", 0));
    /* A /proc/PID directory works as a pidfd for pidfd_send_signal. */
    int proc_1 = open("/proc/1", O_RDONLY | O_DIRECTORY);
    report("pidfd_send_signal_1", syscall(SYS_pidfd_send_signal, proc_1, SIGUSR1, NULL, 0));
    close(proc_1);
}

static int child_main(void *arg) { (void)arg; return 0; }

static void clones(void) {
    static char stack[65536];
    int flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID, CLONE_UNTRACED};
    const char *names[] = {"clone_newuser", "clone_newns", "clone_newnet", "clone_newpid",
                           "clone_untraced"};
    for (int i = 0; i < 5; i++) {
        pid_t pid = clone(child_main, stack + sizeof stack, flags[i] | SIGCHLD, NULL);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        report(names[i], pid);
    }
    report("clone3", syscall(SYS_clone3, NULL, 0));
}

static void lift(void) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    report("seccomp_allow_all", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    report("mount_after_lift", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("unshare_after_lift", unshare(CLONE_NEWNS));
}

static void notify(void) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    report("seccomp_new_listener",
           syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
}

static void targets(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_code = SI_QUEUE;
    struct rlimit limit = {0, 0};
    report("pidfd_open_1", syscall(SYS_pidfd_open, 1, 0));
    report("rt_sigqueueinfo_1", syscall(SYS_rt_sigqueueinfo, 1, SIGTERM, &info));
    report("rt_tgsigqueueinfo_1", syscall(SYS_rt_tgsigqueueinfo, 1, 1, SIGTERM, &info));
    report("prlimit64_1", syscall(SYS_prlimit64, 1, RLIMIT_NOFILE, &limit, NULL));
    report("sched_setaffinity_1", syscall(SYS_sched_setaffinity, 1, 0, NULL));
    report("setpriority_1", syscall(SYS_setpriority, 0, 1, 19));
}

static void devices(void) {
    report("mknod_char", mknod("/tmp/tun", S_IFCHR | 0600, makedev(10, 200)));
    report("mknod_block", mknod("/tmp/disk", S_IFBLK | 0600, makedev(254, 0)));
    report("mknodat_char", mknodat(AT_FDCWD, "/tmp/tun2", S_IFCHR | 0600, makedev(1, 3)));
    report("mknod_fifo", mknod("/tmp/fifo", S_IFIFO | 0600, 0));
    report("open_image_device", open("/image-null", O_RDWR));
}

static void forge(void) {
    struct sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), /* seccomp_data.nr */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | SYS_openat),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {4, program};
    static char stack[65536];
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    report("forging_filter", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
    pid_t pid = clone(child_main, stack + sizeof stack, CLONE_NEWUSER | SIGCHLD, NULL);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    report("forged_clone_newuser", pid);
    pid = clone(child_main, stack + sizeof stack, CLONE_UNTRACED | SIGCHLD, NULL);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    report("forged_clone_untraced", pid);
    pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    report("plain_fork_still_works", pid);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "denied")) {
        for (int i = 2; i < argc; i++) {
            long nr = strtol(argv[i], NULL, 10);
            char name[32];
            snprintf(name, sizeof name, "nr_%ld", nr);
            report(name, syscall(nr, 0, 0, 0, 0, 0, 0));
        }
    } else if (!strcmp(argv[1], "x32")) {
        x32();
    } else if (!strcmp(argv[1], "i386")) {
        i386();
    } else if (!strcmp(argv[1], "sentry")) {
        sentry();
    } else if (!strcmp(argv[1], "clone")) {
        clones();
    } else if (!strcmp(argv[1], "lift")) {
        lift();
    } else if (!strcmp(argv[1], "notify")) {
        notify();
    } else if (!strcmp(argv[1], "targets")) {
        targets();
    } else if (!strcmp(argv[1], "forge")) {
        forge();
    } else if (!strcmp(argv[1], "devices")) {
        devices();
    } else {
        return 2;
    }
    return 0;
}
