/* Frees the same block twice (line 10). glibc notices and aborts; musl crashes. */
#include <stdlib.h>

int main(void) {
    char *p = malloc(40);
    char *q = malloc(40);
    p[0] = q[0] = 1;
    free(p);
    free(q);
    free(p);
    return 0;
}
