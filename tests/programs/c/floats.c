/* printf of floating point: SSE arithmetic, long double on the x87 stack, libc's
   float-to-decimal conversion. */
#include <stdio.h>

int main(void) {
    double x = 1.0;
    long double y = 1.0L;
    for (int i = 1; i <= 20; i++) {
        x = x * 1.5 + 0.25 / i;
        y = y / 3.0L + (long double)i;
    }
    printf("%.6f %g %e\n", x, x / 7.0, x * 1e-10);
    printf("%.10Lf\n", y);
    printf("%f %f\n", 0.1 + 0.2, -0.0);
    return 0;
}
