/* Writes one int past the end of a 10-int array: a heap buffer overflow (line 10). */
#include <stdlib.h>

int main(void) {
    int *a = malloc(10 * sizeof(int));
    int *b = malloc(16);
    for (int i = 0; i < 10; i++)
        a[i] = i;
    b[0] = 1;
    a[10] = 99;
    int sum = a[9] + b[0];
    free(a);
    free(b);
    return sum == 10 ? 0 : 1;
}
