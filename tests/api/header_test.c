/* The public header must compile alone as strict C11. */
#include "bitnet.h"
#include "bitnet.h" /* and be idempotent */

int main(void)
{
    return bitnet_version() >> 16 == BITNET_VERSION_MAJOR ? 0 : 1;
}
