//! Raw declarations of include/bitnet.h (ABI version 1), written by hand.
//!
//! Every type is `#[repr(C)]` and matches the C layout on every platform the
//! library supports; `bitnet-layout` prints sizes and offsets so CI can
//! compare them with the C compiler's (.ci/bindings.sh). Use the safe
//! wrapper in the crate root unless you need something it does not cover.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

/// The ABI these declarations describe (BITNET_ABI_VERSION).
pub const BITNET_ABI_VERSION: i32 = 1;

pub const BITNET_OK: c_int = 0;
pub const BITNET_E_INVALID_ARG: c_int = -1;
pub const BITNET_E_NOMEM: c_int = -2;
pub const BITNET_E_IO: c_int = -3;
pub const BITNET_E_FORMAT: c_int = -4;
pub const BITNET_E_UNSUPPORTED: c_int = -5;
pub const BITNET_E_BUFFER_TOO_SMALL: c_int = -6;
pub const BITNET_E_CONTEXT_FULL: c_int = -7;
pub const BITNET_E_ABORTED: c_int = -8;
pub const BITNET_E_INTERNAL: c_int = -9;
pub const BITNET_E_NOT_FOUND: c_int = -10;
pub const BITNET_E_STATE: c_int = -11;
pub const BITNET_E_GRAMMAR: c_int = -12;

pub const BITNET_LOG_ERROR: i32 = 0;
pub const BITNET_LOG_WARN: i32 = 1;
pub const BITNET_LOG_INFO: i32 = 2;
pub const BITNET_LOG_DEBUG: i32 = 3;

pub const BITNET_CPU_AVX2: u32 = 1 << 0;
pub const BITNET_CPU_AVX_VNNI: u32 = 1 << 1;
pub const BITNET_CPU_AVX512: u32 = 1 << 2;
pub const BITNET_CPU_AMX: u32 = 1 << 3;
pub const BITNET_CPU_NEON: u32 = 1 << 8;
pub const BITNET_CPU_DOTPROD: u32 = 1 << 9;
pub const BITNET_CPU_ALL: u32 = 0xffff_ffff;

pub const BITNET_MODEL_NO_MMAP: u32 = 1 << 0;
pub const BITNET_MODEL_VOCAB_ONLY: u32 = 1 << 1;
pub const BITNET_MODEL_INT8_HEAD: u32 = 1 << 2;

pub const BITNET_PRETOK_AUTO: i32 = 0;
pub const BITNET_PRETOK_DEFAULT: i32 = 1;
pub const BITNET_PRETOK_LLAMA3: i32 = 2;
pub const BITNET_PRETOK_GPT2: i32 = 3;

pub const BITNET_TOKENIZE_ADD_BOS: u32 = 1 << 0;
pub const BITNET_TOKENIZE_PARSE_SPECIAL: u32 = 1 << 1;
pub const BITNET_DETOK_SPECIAL: u32 = 1 << 0;
pub const BITNET_CONTEXT_INT8_HEAD: u32 = 1 << 0;
pub const BITNET_EVAL_ALL_LOGITS: u32 = 1 << 0;

pub const BITNET_TYPE_F32: i32 = 0;
pub const BITNET_TYPE_F16: i32 = 1;
pub const BITNET_TYPE_Q4_0: i32 = 2;
pub const BITNET_TYPE_Q8_0: i32 = 8;
pub const BITNET_TYPE_Q6_K: i32 = 14;
pub const BITNET_TYPE_BF16: i32 = 30;
pub const BITNET_TYPE_TQ1_0: i32 = 34;
pub const BITNET_TYPE_TQ2_0: i32 = 35;
pub const BITNET_TYPE_I2_S: i32 = 36;

/// Opaque objects: only ever used behind pointers.
#[repr(C)]
pub struct bitnet_model {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct bitnet_context {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct bitnet_sampler {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct bitnet_detokenizer {
    _opaque: [u8; 0],
}

pub type bitnet_log_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, level: i32, msg: *const c_char)>;
pub type bitnet_progress_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, progress: f32) -> c_int>;
pub type bitnet_abort_fn = Option<unsafe extern "C" fn(user: *mut c_void) -> c_int>;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bitnet_model_params {
    pub struct_size: u32,
    pub flags: u32,
    pub log_fn: bitnet_log_fn,
    pub log_user: *mut c_void,
    pub log_level: i32,
    pub pre_tokenizer: i32,
    pub progress_fn: bitnet_progress_fn,
    pub progress_user: *mut c_void,
    pub head_type: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bitnet_context_params {
    pub struct_size: u32,
    pub n_ctx: i32,
    pub n_threads: i32,
    pub n_batch: i32,
    pub cpu_mask: u32,
    pub flags: u32,
    pub log_fn: bitnet_log_fn,
    pub log_user: *mut c_void,
    pub log_level: i32,
    pub abort_fn: bitnet_abort_fn,
    pub abort_user: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct bitnet_logit_bias {
    pub token: i32,
    pub bias: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bitnet_sampler_params {
    pub struct_size: u32,
    pub reserved0: u32,
    pub seed: u64,
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub penalty_last_n: i32,
    pub logit_bias: *const bitnet_logit_bias,
    pub n_logit_bias: usize,
    pub grammar: *const c_char,
    pub grammar_root: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bitnet_chat_message {
    pub role: *const c_char,
    pub content: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bitnet_synth_params {
    pub struct_size: u32,
    pub reserved0: u32,
    pub arch: *const c_char,
    pub n_embd: i32,
    pub n_layer: i32,
    pub n_ff: i32,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub n_vocab: i32,
    pub n_ctx_train: i32,
    pub weight_type: i32,
    pub embd_type: i32,
    pub seed: u64,
    pub vocab_from: *const c_char,
    pub rope_freq_base: f32,
}

extern "C" {
    pub fn bitnet_version() -> u32;
    pub fn bitnet_version_string() -> *const c_char;
    pub fn bitnet_abi_version() -> i32;
    pub fn bitnet_strerror(status: c_int) -> *const c_char;
    pub fn bitnet_last_error() -> *const c_char;
    pub fn bitnet_cpu_features() -> u32;
    pub fn bitnet_system_info() -> *const c_char;

    pub fn bitnet_model_params_init_(p: *mut bitnet_model_params, size: usize);
    pub fn bitnet_model_load_file(
        out: *mut *mut bitnet_model,
        path: *const c_char,
        params: *const bitnet_model_params,
    ) -> c_int;
    pub fn bitnet_model_load_buffer(
        out: *mut *mut bitnet_model,
        data: *const c_void,
        size: usize,
        params: *const bitnet_model_params,
    ) -> c_int;
    pub fn bitnet_model_free(model: *mut bitnet_model);
    pub fn bitnet_model_arch(model: *const bitnet_model) -> *const c_char;
    pub fn bitnet_model_n_vocab(model: *const bitnet_model) -> i32;
    pub fn bitnet_model_n_ctx_train(model: *const bitnet_model) -> i32;
    pub fn bitnet_model_n_embd(model: *const bitnet_model) -> i32;
    pub fn bitnet_model_n_layer(model: *const bitnet_model) -> i32;
    pub fn bitnet_model_meta(
        model: *const bitnet_model,
        key: *const c_char,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;

    pub fn bitnet_tokenize(
        model: *const bitnet_model,
        text: *const c_char,
        len: usize,
        flags: u32,
        out: *mut i32,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_token_to_piece(
        model: *const bitnet_model,
        token: i32,
        flags: u32,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_detokenize(
        model: *const bitnet_model,
        tokens: *const i32,
        n_tokens: usize,
        flags: u32,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_token_bos(model: *const bitnet_model) -> i32;
    pub fn bitnet_token_eos(model: *const bitnet_model) -> i32;
    pub fn bitnet_token_eot(model: *const bitnet_model) -> i32;
    pub fn bitnet_token_is_eog(model: *const bitnet_model, token: i32) -> c_int;

    pub fn bitnet_detokenizer_create(
        out: *mut *mut bitnet_detokenizer,
        model: *const bitnet_model,
        flags: u32,
    ) -> c_int;
    pub fn bitnet_detokenizer_feed(
        d: *mut bitnet_detokenizer,
        token: i32,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_detokenizer_flush(
        d: *mut bitnet_detokenizer,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_detokenizer_free(d: *mut bitnet_detokenizer);

    pub fn bitnet_context_params_init_(p: *mut bitnet_context_params, size: usize);
    pub fn bitnet_context_create(
        out: *mut *mut bitnet_context,
        model: *const bitnet_model,
        params: *const bitnet_context_params,
    ) -> c_int;
    pub fn bitnet_context_free(ctx: *mut bitnet_context);
    pub fn bitnet_context_eval(
        ctx: *mut bitnet_context,
        tokens: *const i32,
        n_tokens: usize,
        flags: u32,
    ) -> c_int;
    pub fn bitnet_context_logits(ctx: *const bitnet_context, i: i32, out: *mut *const f32)
        -> c_int;
    pub fn bitnet_context_pos(ctx: *const bitnet_context) -> i32;
    pub fn bitnet_context_n_ctx(ctx: *const bitnet_context) -> i32;
    pub fn bitnet_context_model(ctx: *const bitnet_context) -> *const bitnet_model;
    pub fn bitnet_context_rewind(ctx: *mut bitnet_context, pos: i32) -> c_int;
    pub fn bitnet_context_reset(ctx: *mut bitnet_context);
    pub fn bitnet_context_state_size(ctx: *const bitnet_context) -> usize;
    pub fn bitnet_context_state_save(
        ctx: *const bitnet_context,
        buf: *mut c_void,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;
    pub fn bitnet_context_state_load(
        ctx: *mut bitnet_context,
        buf: *const c_void,
        size: usize,
    ) -> c_int;

    pub fn bitnet_sampler_params_init_(p: *mut bitnet_sampler_params, size: usize);
    pub fn bitnet_sampler_create(
        out: *mut *mut bitnet_sampler,
        model: *const bitnet_model,
        params: *const bitnet_sampler_params,
    ) -> c_int;
    pub fn bitnet_sampler_free(s: *mut bitnet_sampler);
    pub fn bitnet_sampler_reset(s: *mut bitnet_sampler);
    pub fn bitnet_sampler_sample(
        s: *mut bitnet_sampler,
        ctx: *const bitnet_context,
        i: i32,
        out_token: *mut i32,
    ) -> c_int;
    pub fn bitnet_sampler_sample_logits(
        s: *mut bitnet_sampler,
        logits: *const f32,
        n_logits: usize,
        out_token: *mut i32,
    ) -> c_int;
    pub fn bitnet_sampler_accept(s: *mut bitnet_sampler, token: i32) -> c_int;
    pub fn bitnet_json_schema_to_grammar(
        schema: *const c_char,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;

    pub fn bitnet_chat_render(
        model: *const bitnet_model,
        name: *const c_char,
        messages: *const bitnet_chat_message,
        n_messages: usize,
        add_assistant: c_int,
        buf: *mut c_char,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;

    pub fn bitnet_chat_tokenize(
        model: *const bitnet_model,
        name: *const c_char,
        messages: *const bitnet_chat_message,
        n_messages: usize,
        add_assistant: c_int,
        out: *mut i32,
        cap: usize,
        n_out: *mut usize,
    ) -> c_int;

    pub fn bitnet_synth_params_init_(p: *mut bitnet_synth_params, size: usize);
    pub fn bitnet_synth_write(path: *const c_char, params: *const bitnet_synth_params) -> c_int;
}
