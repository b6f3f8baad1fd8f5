/*
 * config.json of a Hugging Face checkpoint -> architecture, hyperparameters
 * and the weight convention. The accepted values and what they mean are in
 * docs/formats.md; anything else is refused with the field and value named.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format/hf.h"
#include "format/json.h"

#if BITNET_HAVE_JSON

static int req_int(const json_t *o, const char *key, int64_t lo, int64_t hi,
                   int64_t *v, const char *what)
{
    int rc = bitnet__json_int(o, key, lo, hi, v, what);
    if (rc == BITNET_E_NOT_FOUND)
        return bitnet__error(BITNET_E_FORMAT, "%s: missing field '%s'", what, key);
    return rc;
}

/* bos/eos/pad ids: an integer, or (eos) an array of integers */
static int token_ids(const json_t *o, const char *key, int64_t *ids, int cap,
                     int *n, const char *what)
{
    const json_t *x = json_object_get(o, key);
    *n = 0;
    if (!x || json_is_null(x)) return BITNET_OK;
    if (json_is_integer(x)) {
        if (json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is out of "
                                 "range", what, key);
        ids[(*n)++] = json_integer_value(x);
        return BITNET_OK;
    }
    if (json_is_array(x)) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > INT32_MAX)
                return bitnet__error(BITNET_E_FORMAT, "%s: field '%s'[%zu] is "
                                     "not a token id", what, key, i);
            if (*n < cap) ids[(*n)++] = json_integer_value(e);
        }
        return BITNET_OK;
    }
    return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not a token id "
                         "or a list of them", what, key);
}

static int parse(bitnet_hf_config *c, const json_t *root, const char *what)
{
    if (!json_is_object(root))
        return bitnet__error(BITNET_E_FORMAT, "%s: not a JSON object", what);
    const json_t *archs = json_object_get(root, "architectures");
    const char *arch = NULL;
    if (json_is_array(archs) && json_array_size(archs) >= 1)
        arch = json_string_value(json_array_get(archs, 0));
    if (!arch)
        return bitnet__error(BITNET_E_FORMAT, "%s: field 'architectures' is "
                             "not a list of class names", what);
    if (json_array_size(archs) != 1)
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field 'architectures' "
                             "lists %zu classes (one expected)", what,
                             json_array_size(archs));
    if (!strcmp(arch, "BitNetForCausalLM")) c->arch = HF_ARCH_B158;
    else if (!strcmp(arch, "BitnetForCausalLM")) c->arch = HF_ARCH_BITNET;
    else if (!strcmp(arch, "LlamaForCausalLM")) c->arch = HF_ARCH_LLAMA;
    else
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field 'architectures': "
                             "'%.64s' is not supported (BitNetForCausalLM, "
                             "BitnetForCausalLM, LlamaForCausalLM with "
                             "quant_method 'bitnet')", what, arch);

    /* quantisation: BitNet's own method only */
    int rc;
    const json_t *q = json_object_get(root, "quantization_config");
    int quantized = 0;
    c->scale_mul = 0;
    if (q && !json_is_null(q)) {
        if (!json_is_object(q))
            return bitnet__error(BITNET_E_FORMAT, "%s: field "
                                 "'quantization_config' is not an object", what);
        const char *qm = NULL, *lc = NULL, *mode = NULL;
        if ((rc = bitnet__json_str(q, "quant_method", &qm, what)) != BITNET_OK)
            return rc == BITNET_E_NOT_FOUND ?
                bitnet__error(BITNET_E_FORMAT, "%s: missing field "
                              "'quantization_config.quant_method'", what) : rc;
        if (strcmp(qm, "bitnet"))
            return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field "
                                 "'quantization_config.quant_method': '%.64s' "
                                 "is not supported (bitnet)", what, qm);
        quantized = 1;
        rc = bitnet__json_str(q, "linear_class", &lc, what);
        if (rc && rc != BITNET_E_NOT_FOUND) return rc;
        if (!lc || !strcmp(lc, "bitlinear")) c->scale_mul = 0;
        else if (!strcmp(lc, "autobitlinear")) c->scale_mul = 1;
        else
            return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field "
                                 "'quantization_config.linear_class': '%.64s' "
                                 "is not supported (bitlinear, autobitlinear)",
                                 what, lc);
        rc = bitnet__json_str(q, "quantization_mode", &mode, what);
        if (rc && rc != BITNET_E_NOT_FOUND) return rc;
        if (mode && strcmp(mode, "offline") && strcmp(mode, "online"))
            return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field "
                                 "'quantization_config.quantization_mode': "
                                 "'%.64s' is not supported (offline, online)",
                                 what, mode);
    }
    if (c->arch == HF_ARCH_LLAMA && !quantized)
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: 'LlamaForCausalLM' "
                             "without quantization_config.quant_method "
                             "'bitnet' is not a ternary model", what);

    const char *act = NULL;
    rc = bitnet__json_str(root, "hidden_act", &act, what);
    if (rc && rc != BITNET_E_NOT_FOUND) return rc;
    const char *want = c->arch == HF_ARCH_B158 ? "relu2" : "silu";
    if (!act) act = want;
    if (strcmp(act, want))
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field 'hidden_act': "
                             "'%.32s' is not supported for %s (%s)", what, act,
                             arch, want);

    if ((rc = req_int(root, "vocab_size", 1, INT32_MAX, &c->n_vocab, what)) ||
        (rc = req_int(root, "hidden_size", 1, 1 << 20, &c->n_embd, what)) ||
        (rc = req_int(root, "num_hidden_layers", 1, 4096, &c->n_layer, what)) ||
        (rc = req_int(root, "intermediate_size", 1, 1 << 22, &c->n_ff, what)) ||
        (rc = req_int(root, "num_attention_heads", 1, 1 << 16, &c->n_head, what)) ||
        (rc = req_int(root, "max_position_embeddings", 1, INT32_MAX, &c->n_ctx, what)))
        return rc;
    rc = bitnet__json_int(root, "num_key_value_heads", 1, c->n_head, &c->n_head_kv, what);
    if (rc == BITNET_E_NOT_FOUND) c->n_head_kv = c->n_head;
    else if (rc) return rc;
    if (c->n_embd % c->n_head)
        return bitnet__error(BITNET_E_FORMAT, "%s: field 'num_attention_heads' "
                             "(%" PRId64 ") does not divide hidden_size (%" PRId64
                             ")", what, c->n_head, c->n_embd);
    if (c->n_head % c->n_head_kv)
        return bitnet__error(BITNET_E_FORMAT, "%s: field 'num_key_value_heads' "
                             "(%" PRId64 ") does not divide num_attention_heads",
                             what, c->n_head_kv);
    int64_t hd;
    rc = bitnet__json_int(root, "head_dim", 1, 1 << 16, &hd, what);
    if (rc && rc != BITNET_E_NOT_FOUND) return rc;
    if (!rc && hd != c->n_embd / c->n_head)
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field 'head_dim': %"
                             PRId64 " differs from hidden_size / "
                             "num_attention_heads", what, hd);
    if ((c->n_embd / c->n_head) % 2)
        return bitnet__error(BITNET_E_FORMAT, "%s: the head dimension is odd", what);
    rc = bitnet__json_num(root, "rms_norm_eps", &c->norm_eps, what);
    if (rc == BITNET_E_NOT_FOUND)
        return bitnet__error(BITNET_E_FORMAT, "%s: missing field "
                             "'rms_norm_eps'", what);
    if (rc) return rc;
    if (c->norm_eps < 0 || c->norm_eps > 1)
        return bitnet__error(BITNET_E_FORMAT, "%s: field 'rms_norm_eps' is "
                             "out of range", what);
    rc = bitnet__json_num(root, "rope_theta", &c->rope_theta, what);
    if (rc == BITNET_E_NOT_FOUND) c->rope_theta = 10000.0;
    else if (rc) return rc;
    if (!(c->rope_theta > 0 && c->rope_theta < 1e12))
        return bitnet__error(BITNET_E_FORMAT, "%s: field 'rope_theta' is out "
                             "of range", what);
    const json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *ty = NULL;
        if (json_is_object(rs)) {
            ty = json_string_value(json_object_get(rs, "rope_type"));
            if (!ty) ty = json_string_value(json_object_get(rs, "type"));
        }
        if (!ty || strcmp(ty, "default"))
            return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field "
                                 "'rope_scaling': type '%.32s' is not supported",
                                 what, ty ? ty : "?");
    }
    static const char *const no_bias[] = { "attention_bias", "mlp_bias" };
    for (int k = 0; k < 2; k++) {
        int b = 0;
        rc = bitnet__json_bool(root, no_bias[k], &b, what);
        if (rc && rc != BITNET_E_NOT_FOUND) return rc;
        if (b)
            return bitnet__error(BITNET_E_UNSUPPORTED, "%s: field '%s': true "
                                 "is not supported", what, no_bias[k]);
    }
    int tied;
    rc = bitnet__json_bool(root, "tie_word_embeddings", &tied, what);
    if (rc == BITNET_E_NOT_FOUND) c->tied = -1;
    else if (rc) return rc;
    else c->tied = tied;

    int n;
    c->bos = c->pad = -1;
    if ((rc = token_ids(root, "bos_token_id", &c->bos, 1, &n, what)) ||
        (rc = token_ids(root, "pad_token_id", &c->pad, 1, &n, what)) ||
        (rc = token_ids(root, "eos_token_id", c->eos, 8, &c->n_eos, what)))
        return rc;
    return BITNET_OK;
}

int bitnet__hf_config_parse(bitnet_hf_config *c, const char *text, size_t len,
                            const char *what)
{
    memset(c, 0, sizeof(*c));
    json_t *root;
    int rc = bitnet__json_parse(&root, text, len, (size_t)16 << 20, what);
    if (rc) return rc;
    rc = parse(c, root, what);
    json_decref(root);
    return rc;
}

#else

int bitnet__hf_config_parse(bitnet_hf_config *c, const char *text, size_t len,
                            const char *what)
{
    (void)text; (void)len;
    memset(c, 0, sizeof(*c));
    return bitnet__error(BITNET_E_UNSUPPORTED, "%s: reading a Hugging Face "
                         "checkpoint needs JSON support, and this libbitnet was "
                         "built without it (Meson feature 'json', jansson)", what);
}

#endif
