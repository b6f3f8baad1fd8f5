// The public header must compile alone as C++.
#include "bitnet.h"

int main()
{
    bitnet_context_params p;
    bitnet_context_params_init(&p);
    return (bitnet_version() >> 16) == BITNET_VERSION_MAJOR && p.n_batch > 0 ? 0 : 1;
}
