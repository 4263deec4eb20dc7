/* Reads stdin line by line with fgets and counts lines and bytes. */
#include <stdio.h>
#include <string.h>

int main(void) {
    char line[64];
    int lines = 0;
    size_t bytes = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        lines++;
        bytes += strlen(line);
    }
    printf("%d lines, %zu bytes\n", lines, bytes);
    return lines == 0;
}
