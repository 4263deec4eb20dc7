/* Waits on a futex whose value matches, with no other thread: Linux blocks forever. */
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    static int word = 7;
    puts("waiting");
    fflush(stdout);
    syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 7, NULL, NULL, 0);
    puts("woken");
    return 0;
}
