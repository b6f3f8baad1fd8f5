//! Prints the size and field offsets of every #[repr(C)] struct in
//! bitnet::sys, one per line, in the same format as the C program in
//! .ci/bindings.sh, so CI can diff the two and catch a mismatched mirror.

use bitnet::sys;
use std::mem::{size_of, MaybeUninit};

macro_rules! layout {
    ($ty:ident { $($field:ident),* }) => {{
        println!("{} size {}", stringify!($ty), size_of::<sys::$ty>());
        let u = MaybeUninit::<sys::$ty>::uninit();
        let base = u.as_ptr();
        $(
            // addr_of! never reads the (uninitialised) field.
            let off = unsafe { std::ptr::addr_of!((*base).$field) } as usize - base as usize;
            println!("{}.{} {}", stringify!($ty), stringify!($field), off);
        )*
    }};
}

fn main() {
    layout!(bitnet_model_params {
        struct_size,
        flags,
        log_fn,
        log_user,
        log_level,
        pre_tokenizer,
        progress_fn,
        progress_user,
        head_type
    });
    layout!(bitnet_context_params {
        struct_size,
        n_ctx,
        n_threads,
        n_batch,
        cpu_mask,
        flags,
        log_fn,
        log_user,
        log_level,
        abort_fn,
        abort_user
    });
    layout!(bitnet_logit_bias { token, bias });
    layout!(bitnet_sampler_params {
        struct_size,
        reserved0,
        seed,
        temperature,
        top_k,
        top_p,
        min_p,
        repeat_penalty,
        frequency_penalty,
        presence_penalty,
        penalty_last_n,
        logit_bias,
        n_logit_bias,
        grammar,
        grammar_root
    });
    layout!(bitnet_chat_message { role, content });
    layout!(bitnet_synth_params {
        struct_size,
        reserved0,
        arch,
        n_embd,
        n_layer,
        n_ff,
        n_head,
        n_head_kv,
        n_vocab,
        n_ctx_train,
        weight_type,
        embd_type,
        seed,
        vocab_from,
        rope_freq_base
    });
}
