/* Takes its message from a header in an --include directory. */
#include <stdio.h>
#include "message.h"

int main(void) {
    puts(MESSAGE);
    return 0;
}
