/* Allocates in a loop and frees only some blocks: 3 blocks from line 9 leak, as does the
   one from line 14. */
#include <stdlib.h>

int main(void) {
    char *keep[6];
    long sum = 0;
    for (int i = 0; i < 6; i++) {
        keep[i] = malloc(24 + i);
        keep[i][0] = (char)i;
    }
    for (int i = 0; i < 6; i += 2)
        free(keep[i]);
    char *lost = malloc(100);
    lost[0] = 1;
    for (int i = 1; i < 6; i += 2)
        sum += keep[i][0];
    return sum == 9 ? 0 : 1;
}
