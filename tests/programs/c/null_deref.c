/* Writes through a NULL pointer: SIGSEGV (after the buffered output is lost, as natively). */
#include <stdio.h>

int main(void) {
    int *volatile p = NULL;
    puts("before the crash");
    fflush(stdout);
    *p = 42;
    puts("not reached");
    return 0;
}
