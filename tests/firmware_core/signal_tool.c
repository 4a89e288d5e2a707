/* Test tool: prints `count` windows of firmware/core/signal.c's vibration for each machine
 * state, one line per window: the state, then 128 x 3 samples (g). */
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

int main(int argc, char **argv)
{
    static float w[128 * 3];
    int count = argc > 1 ? atoi(argv[1]) : 10;
    for (int state = 0; state < 3; state++)
        for (int k = 0; k < count; k++) {
            signal_window(state, w, 128);
            printf("%d", state);
            for (int i = 0; i < 128 * 3; i++)
                printf(" %.6g", (double)w[i]);
            putchar('\n');
        }
    return 0;
}
