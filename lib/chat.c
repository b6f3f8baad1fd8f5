/* Placeholder: replaced by the module implementation. */
#include "internal.h"

int bitnet_chat_render(const bitnet_model *model, const char *name, const bitnet_chat_message *messages, size_t n_messages, int add_assistant, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_chat_render: not available yet");
}
