/* Assignment: print the sum 1 + 2 + ... + 100, computed by a recursive function.
 * grace: correct, in C; the text is built in a heap buffer, which is freed. */
#include <stdio.h>
#include <stdlib.h>

static long sum(long n) { return n == 0 ? 0 : n + sum(n - 1); }

int main(void) {
    char *text = malloc(32);
    if (text == NULL)
        return 1;
    snprintf(text, 32, "%ld\n", sum(100));
    fputs(text, stdout);
    free(text);
    return 0;
}
