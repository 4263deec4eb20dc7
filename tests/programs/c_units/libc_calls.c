/* The questions a C program asks libc at run time, and so the kernel: is stdout a terminal,
   where is my executable, what are my limits, signal dispositions and mask, who am I, what
   does the CPU offer. Prints one line per answer. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(void) {
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n < 0 ? 0 : n] = '\0';
    printf("exe %s\n", exe);
    printf("isatty %d %d %d\n", isatty(0), isatty(1), isatty(2));

    struct rlimit stack;
    getrlimit(RLIMIT_STACK, &stack);
    printf("stack limit %lu\n", (unsigned long)stack.rlim_cur);

    struct sigaction act = {0}, old;
    act.sa_handler = on_usr1;
    printf("sigaction USR1 %d\n", sigaction(SIGUSR1, &act, NULL));
    sigaction(SIGUSR1, NULL, &old);
    printf("handler kept %d\n", old.sa_handler == on_usr1);
    errno = 0;
    int refused = sigaction(SIGKILL, &act, NULL);
    printf("sigaction KILL %d %s\n", refused, errno == EINVAL ? "EINVAL" : strerror(errno));

    sigset_t set, back;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigprocmask(SIG_SETMASK, NULL, &back);
    printf("USR2 blocked %d\n", sigismember(&back, SIGUSR2));

    struct utsname u;
    uname(&u);
    printf("uname %s %s\n", u.sysname, u.machine);
    printf("pid %d\n", getpid());
    char cwd[64];
    printf("uid %d gid %d cwd %s\n", (int)getuid(), (int)getgid(), getcwd(cwd, sizeof cwd));
    cpu_set_t cpus;
    sched_getaffinity(0, sizeof cpus, &cpus);
    printf("cpus %d yield %d\n", CPU_COUNT(&cpus), sched_yield());

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("clock advances %d\n", t1.tv_sec > t0.tv_sec
           || (t1.tv_sec == t0.tv_sec && t1.tv_nsec > t0.tv_nsec));

    __builtin_cpu_init();
    printf("cpu sse4.2 %d avx %d avx2 %d\n", __builtin_cpu_supports("sse4.2") != 0,
           __builtin_cpu_supports("avx") != 0, __builtin_cpu_supports("avx2") != 0);
    unsigned eax, ebx, ecx, edx;
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    printf("rdrand %d\n", (ecx >> 30) & 1);
    return 0;
}
