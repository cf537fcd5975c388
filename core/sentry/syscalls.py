"""The x86-64 system call table: numbers, names and argument kinds.

The numbers follow the kernel's ``arch/x86/entry/syscalls/syscall_64.tbl``
up to ``listns`` (470, Linux 6.19). Entries whose ABI column is ``x32`` (512 to
547) are left out because the seccomp filter rejects every call that has the
x32 bit set, so a tracee can never reach them.

Each entry lists the kinds of its arguments in order, so a tracer can print a
stop the way strace does. For example, a ``path`` or ``str`` argument is a
pointer to a NUL-terminated string in tracee memory, and a ``sockaddr``
argument points to a socket address whose length is the next argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .cache import cached

# Values of seccomp_data.arch (linux/audit.h) for the two ABIs of an x86-64 CPU.
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003

# The x32 ABI shares AUDIT_ARCH_X86_64 and marks its calls with this bit in the
# system call number (asm/unistd.h, __X32_SYSCALL_BIT).
X32_SYSCALL_BIT = 0x40000000


class ArgKind(StrEnum):
    """The kind of a system call argument, which sets how a tracer decodes it."""

    INT = "int"
    FD = "fd"
    DIRFD = "dirfd"  # a file descriptor, or AT_FDCWD (-100)
    PATH = "path"  # char * to a file name in tracee memory
    STR = "str"  # char * to any other NUL-terminated string
    ARGV = "argv"  # char *const[] ending in NULL, as for execve
    PTR = "ptr"  # an address in tracee memory (buffer, struct, hint)
    SIZE = "size"
    OFF = "off"
    FLAGS = "flags"
    MODE = "mode"
    PID = "pid"
    SIGNAL = "signal"
    UID = "uid"
    GID = "gid"
    SOCKADDR = "sockaddr"  # struct sockaddr *, its length is the next argument


@dataclass(frozen=True, slots=True)
class Syscall:
    """One x86-64 system call: its number, name and argument kinds."""

    nr: int
    name: str
    args: tuple[ArgKind, ...]


# One line per system call: number, name, then the kind of each argument.
# Numbers with no entry point (uselib, nfsservctl, ...) are kept, so a trace
# names them and the policy can state why they are denied.
_TABLE = """
0 read fd ptr size
1 write fd ptr size
2 open path flags mode
3 close fd
4 stat path ptr
5 fstat fd ptr
6 lstat path ptr
7 poll ptr int int
8 lseek fd off int
9 mmap ptr size flags flags fd off
10 mprotect ptr size flags
11 munmap ptr size
12 brk ptr
13 rt_sigaction signal ptr ptr size
14 rt_sigprocmask int ptr ptr size
15 rt_sigreturn
16 ioctl fd int ptr
17 pread64 fd ptr size off
18 pwrite64 fd ptr size off
19 readv fd ptr int
20 writev fd ptr int
21 access path mode
22 pipe ptr
23 select int ptr ptr ptr ptr
24 sched_yield
25 mremap ptr size size flags ptr
26 msync ptr size flags
27 mincore ptr size ptr
28 madvise ptr size int
29 shmget int size flags
30 shmat int ptr flags
31 shmctl int int ptr
32 dup fd
33 dup2 fd fd
34 pause
35 nanosleep ptr ptr
36 getitimer int ptr
37 alarm int
38 setitimer int ptr ptr
39 getpid
40 sendfile fd fd ptr size
41 socket int int int
42 connect fd sockaddr size
43 accept fd ptr ptr
44 sendto fd ptr size flags sockaddr size
45 recvfrom fd ptr size flags ptr ptr
46 sendmsg fd ptr flags
47 recvmsg fd ptr flags
48 shutdown fd int
49 bind fd sockaddr size
50 listen fd int
51 getsockname fd ptr ptr
52 getpeername fd ptr ptr
53 socketpair int int int ptr
54 setsockopt fd int int ptr size
55 getsockopt fd int int ptr ptr
56 clone flags ptr ptr ptr ptr
57 fork
58 vfork
59 execve path argv argv
60 exit int
61 wait4 pid ptr flags ptr
62 kill pid signal
63 uname ptr
64 semget int int flags
65 semop int ptr size
66 semctl int int int ptr
67 shmdt ptr
68 msgget int flags
69 msgsnd int ptr size flags
70 msgrcv int ptr size int flags
71 msgctl int int ptr
72 fcntl fd int int
73 flock fd int
74 fsync fd
75 fdatasync fd
76 truncate path off
77 ftruncate fd off
78 getdents fd ptr size
79 getcwd ptr size
80 chdir path
81 fchdir fd
82 rename path path
83 mkdir path mode
84 rmdir path
85 creat path mode
86 link path path
87 unlink path
88 symlink str path
89 readlink path ptr size
90 chmod path mode
91 fchmod fd mode
92 chown path uid gid
93 fchown fd uid gid
94 lchown path uid gid
95 umask mode
96 gettimeofday ptr ptr
97 getrlimit int ptr
98 getrusage int ptr
99 sysinfo ptr
100 times ptr
101 ptrace int pid ptr ptr
102 getuid
103 syslog int ptr int
104 getgid
105 setuid uid
106 setgid gid
107 geteuid
108 getegid
109 setpgid pid pid
110 getppid
111 getpgrp
112 setsid
113 setreuid uid uid
114 setregid gid gid
115 getgroups int ptr
116 setgroups int ptr
117 setresuid uid uid uid
118 getresuid ptr ptr ptr
119 setresgid gid gid gid
120 getresgid ptr ptr ptr
121 getpgid pid
122 setfsuid uid
123 setfsgid gid
124 getsid pid
125 capget ptr ptr
126 capset ptr ptr
127 rt_sigpending ptr size
128 rt_sigtimedwait ptr ptr ptr size
129 rt_sigqueueinfo pid signal ptr
130 rt_sigsuspend ptr size
131 sigaltstack ptr ptr
132 utime path ptr
133 mknod path mode int
134 uselib path
135 personality int
136 ustat int ptr
137 statfs path ptr
138 fstatfs fd ptr
139 sysfs int ptr ptr
140 getpriority int int
141 setpriority int int int
142 sched_setparam pid ptr
143 sched_getparam pid ptr
144 sched_setscheduler pid int ptr
145 sched_getscheduler pid
146 sched_get_priority_max int
147 sched_get_priority_min int
148 sched_rr_get_interval pid ptr
149 mlock ptr size
150 munlock ptr size
151 mlockall flags
152 munlockall
153 vhangup
154 modify_ldt int ptr size
155 pivot_root path path
156 _sysctl ptr
157 prctl int int int int int
158 arch_prctl int ptr
159 adjtimex ptr
160 setrlimit int ptr
161 chroot path
162 sync
163 acct path
164 settimeofday ptr ptr
165 mount str path str flags ptr
166 umount2 path flags
167 swapon path flags
168 swapoff path
169 reboot int int int ptr
170 sethostname str size
171 setdomainname str size
172 iopl int
173 ioperm int int int
174 create_module str size
175 init_module ptr size str
176 delete_module str flags
177 get_kernel_syms ptr
178 query_module str int ptr size ptr
179 quotactl int path int ptr
180 nfsservctl int ptr ptr
181 getpmsg
182 putpmsg
183 afs_syscall
184 tuxcall
185 security
186 gettid
187 readahead fd off size
188 setxattr path str ptr size flags
189 lsetxattr path str ptr size flags
190 fsetxattr fd str ptr size flags
191 getxattr path str ptr size
192 lgetxattr path str ptr size
193 fgetxattr fd str ptr size
194 listxattr path ptr size
195 llistxattr path ptr size
196 flistxattr fd ptr size
197 removexattr path str
198 lremovexattr path str
199 fremovexattr fd str
200 tkill pid signal
201 time ptr
202 futex ptr int int ptr ptr int
203 sched_setaffinity pid size ptr
204 sched_getaffinity pid size ptr
205 set_thread_area ptr
206 io_setup int ptr
207 io_destroy int
208 io_getevents int int int ptr ptr
209 io_submit int int ptr
210 io_cancel int ptr ptr
211 get_thread_area ptr
212 lookup_dcookie int ptr size
213 epoll_create int
214 epoll_ctl_old
215 epoll_wait_old
216 remap_file_pages ptr size int int flags
217 getdents64 fd ptr size
218 set_tid_address ptr
219 restart_syscall
220 semtimedop int ptr size ptr
221 fadvise64 fd off size int
222 timer_create int ptr ptr
223 timer_settime int flags ptr ptr
224 timer_gettime int ptr
225 timer_getoverrun int
226 timer_delete int
227 clock_settime int ptr
228 clock_gettime int ptr
229 clock_getres int ptr
230 clock_nanosleep int flags ptr ptr
231 exit_group int
232 epoll_wait fd ptr int int
233 epoll_ctl fd int fd ptr
234 tgkill pid pid signal
235 utimes path ptr
236 vserver
237 mbind ptr size int ptr int flags
238 set_mempolicy int ptr int
239 get_mempolicy ptr ptr int ptr flags
240 mq_open str flags mode ptr
241 mq_unlink str
242 mq_timedsend fd ptr size int ptr
243 mq_timedreceive fd ptr size ptr ptr
244 mq_notify fd ptr
245 mq_getsetattr fd ptr ptr
246 kexec_load ptr int ptr flags
247 waitid int pid ptr flags ptr
248 add_key str str ptr size int
249 request_key str str str int
250 keyctl int int int int int
251 ioprio_set int int int
252 ioprio_get int int
253 inotify_init
254 inotify_add_watch fd path flags
255 inotify_rm_watch fd int
256 migrate_pages pid int ptr ptr
257 openat dirfd path flags mode
258 mkdirat dirfd path mode
259 mknodat dirfd path mode int
260 fchownat dirfd path uid gid flags
261 futimesat dirfd path ptr
262 newfstatat dirfd path ptr flags
263 unlinkat dirfd path flags
264 renameat dirfd path dirfd path
265 linkat dirfd path dirfd path flags
266 symlinkat str dirfd path
267 readlinkat dirfd path ptr size
268 fchmodat dirfd path mode
269 faccessat dirfd path mode
270 pselect6 int ptr ptr ptr ptr ptr
271 ppoll ptr int ptr ptr size
272 unshare flags
273 set_robust_list ptr size
274 get_robust_list pid ptr ptr
275 splice fd ptr fd ptr size flags
276 tee fd fd size flags
277 sync_file_range fd off off flags
278 vmsplice fd ptr int flags
279 move_pages pid int ptr ptr ptr flags
280 utimensat dirfd path ptr flags
281 epoll_pwait fd ptr int int ptr size
282 signalfd fd ptr size
283 timerfd_create int flags
284 eventfd int
285 fallocate fd int off off
286 timerfd_settime fd flags ptr ptr
287 timerfd_gettime fd ptr
288 accept4 fd ptr ptr flags
289 signalfd4 fd ptr size flags
290 eventfd2 int flags
291 epoll_create1 flags
292 dup3 fd fd flags
293 pipe2 ptr flags
294 inotify_init1 flags
295 preadv fd ptr int off off
296 pwritev fd ptr int off off
297 rt_tgsigqueueinfo pid pid signal ptr
298 perf_event_open ptr pid int fd flags
299 recvmmsg fd ptr int flags ptr
300 fanotify_init flags flags
301 fanotify_mark fd flags flags dirfd path
302 prlimit64 pid int ptr ptr
303 name_to_handle_at dirfd path ptr ptr flags
304 open_by_handle_at fd ptr flags
305 clock_adjtime int ptr
306 syncfs fd
307 sendmmsg fd ptr int flags
308 setns fd flags
309 getcpu ptr ptr ptr
310 process_vm_readv pid ptr int ptr int flags
311 process_vm_writev pid ptr int ptr int flags
312 kcmp pid pid int int int
313 finit_module fd str flags
314 sched_setattr pid ptr flags
315 sched_getattr pid ptr size flags
316 renameat2 dirfd path dirfd path flags
317 seccomp int flags ptr
318 getrandom ptr size flags
319 memfd_create str flags
320 kexec_file_load fd fd size str flags
321 bpf int ptr size
322 execveat dirfd path argv argv flags
323 userfaultfd flags
324 membarrier int flags int
325 mlock2 ptr size flags
326 copy_file_range fd ptr fd ptr size flags
327 preadv2 fd ptr int off off flags
328 pwritev2 fd ptr int off off flags
329 pkey_mprotect ptr size flags int
330 pkey_alloc flags flags
331 pkey_free int
332 statx dirfd path flags flags ptr
333 io_pgetevents int int int ptr ptr ptr
334 rseq ptr size flags int
335 uretprobe
336 uprobe
424 pidfd_send_signal fd signal ptr flags
425 io_uring_setup int ptr
426 io_uring_enter fd int int flags ptr size
427 io_uring_register fd int ptr int
428 open_tree dirfd path flags
429 move_mount dirfd path dirfd path flags
430 fsopen str flags
431 fsconfig fd int str ptr int
432 fsmount fd flags flags
433 fspick dirfd path flags
434 pidfd_open pid flags
435 clone3 ptr size
436 close_range fd fd flags
437 openat2 dirfd path ptr size
438 pidfd_getfd fd fd flags
439 faccessat2 dirfd path mode flags
440 process_madvise fd ptr size int flags
441 epoll_pwait2 fd ptr int ptr ptr size
442 mount_setattr dirfd path flags ptr size
443 quotactl_fd fd int int ptr
444 landlock_create_ruleset ptr size flags
445 landlock_add_rule fd int ptr flags
446 landlock_restrict_self fd flags
447 memfd_secret flags
448 process_mrelease fd flags
449 futex_waitv ptr int flags ptr int
450 set_mempolicy_home_node ptr size int flags
451 cachestat fd ptr ptr flags
452 fchmodat2 dirfd path mode flags
453 map_shadow_stack ptr size flags
454 futex_wake ptr int int flags
455 futex_wait ptr int int flags ptr int
456 futex_requeue ptr flags int int
457 statmount ptr ptr size flags
458 listmount ptr ptr size flags
459 lsm_get_self_attr int ptr ptr flags
460 lsm_set_self_attr int ptr size flags
461 lsm_list_modules ptr ptr flags
462 mseal ptr size flags
463 setxattrat dirfd path flags str ptr size
464 getxattrat dirfd path flags str ptr size
465 listxattrat dirfd path flags ptr size
466 removexattrat dirfd path flags str
467 open_tree_attr dirfd path flags ptr size
468 file_getattr dirfd path ptr size flags
469 file_setattr dirfd path ptr size flags
470 listns ptr ptr size flags
"""


def _parse_rows(text: str) -> list[tuple[int, str, tuple[str, ...]]]:
    rows = []
    for line in text.strip().splitlines():
        nr, name, *kinds = line.split()
        rows.append((int(nr), name, tuple(kinds)))
    return rows


def _parse_table(text: str) -> dict[int, Syscall]:
    kinds_by_value = {kind.value: kind for kind in ArgKind}
    rows = cached("syscalls", [__file__], lambda: _parse_rows(text))
    return {
        nr: Syscall(nr, name, tuple(kinds_by_value[k] for k in kinds))
        for nr, name, kinds in rows
    }


SYSCALLS: Mapping[int, Syscall] = MappingProxyType(_parse_table(_TABLE))
BY_NAME: Mapping[str, Syscall] = MappingProxyType(
    {entry.name: entry for entry in SYSCALLS.values()}
)
MAX_SYSCALL = max(SYSCALLS)


def number(name: str) -> int:
    """Return the x86-64 number of the system call NAME; raise KeyError if unknown."""
    return BY_NAME[name].nr


def name(nr: int) -> str:
    """Return the name of system call NR, or ``syscall_NR`` for a number not in use.

    The fallback keeps traces readable when a tracee issues a number that no
    kernel assigns, or one newer than this table.
    """
    entry = SYSCALLS.get(nr)
    return entry.name if entry else f"syscall_{nr}"


def is_x32(nr: int) -> bool:
    """Tell whether NR, as seen in orig_rax or seccomp_data.nr, is an x32 call."""
    low = nr & 0xFFFFFFFF  # the kernel reads the number as a 32-bit int
    return bool(low & X32_SYSCALL_BIT) and low < 0x80000000
