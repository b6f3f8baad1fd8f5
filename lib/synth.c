/* Placeholder: replaced by the module implementation. */
#include "internal.h"

void bitnet_synth_params_init_(bitnet_synth_params *p, size_t size)
{
}

int bitnet_synth_write(const char *path, const bitnet_synth_params *params)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_synth_write: not available yet");
}
