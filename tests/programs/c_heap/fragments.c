/* Four 100-byte blocks, the first and third freed, then a 50-byte and a 100-byte one:
   fragmentation by hand in tests/test_heap_findings.py. */
#include <stdlib.h>

int main(void) {
    char *a = malloc(100), *b = malloc(100), *c = malloc(100), *d = malloc(100);
    a[0] = b[0] = c[0] = d[0] = 1;
    free(a);
    free(c);
    char *e = malloc(50);
    char *f = malloc(100);
    e[0] = f[0] = 2;
    free(b);
    free(d);
    free(e);
    free(f);
    return 0;
}
