/* Frees a pointer into the middle of a block (line 9). */
#include <stdlib.h>

int main(void) {
    char *p = malloc(64);
    for (int i = 0; i < 64; i++)
        p[i] = (char)i;
    int last = p[63];
    free(p + 16);
    return last;
}
