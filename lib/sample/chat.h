/*
 * Chat template internals reachable from tests.
 */
#ifndef BITNET_CHAT_H
#define BITNET_CHAT_H

/* The template name ("bitnet", "llama3", "falcon3", "chatml") that a GGUF
 * tokenizer.chat_template text is recognised as, or NULL when it is none of
 * them. */
const char *bitnet__chat_recognise(const char *tmpl);

#endif /* BITNET_CHAT_H */
