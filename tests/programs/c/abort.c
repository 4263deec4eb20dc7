/* abort(): libc sends the process SIGABRT, which kills it (after the output is flushed by
   hand: abort does not flush stdio). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    puts("about to abort");
    fflush(stdout);
    abort();
}
