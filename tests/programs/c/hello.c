/* printf to stdout: libc start-up, stdio buffering, exit. */
#include <stdio.h>

int main(void) {
    printf("hello, %s\n", "world");
    return 0;
}
