//! Safe Rust bindings to libbitnet, written by hand over `extern "C"`.
//!
//! ```no_run
//! use bitnet::{Context, Model, Sampler};
//! # fn main() -> bitnet::Result<()> {
//! let model = Model::load("model.gguf")?;
//! let mut ctx = Context::builder(&model).n_ctx(2048).build()?;
//! let mut smp = Sampler::builder(&model).temperature(0.0).build()?;
//! let prompt = model.tokenize("Once upon a time", true, true)?;
//! for piece in bitnet::generate(&mut ctx, &mut smp, &prompt, 64)? {
//!     print!("{}", piece?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Ownership follows the C rules, enforced by lifetimes: a [`Context`],
//! [`Sampler`] or [`Detokenizer`] borrows its [`Model`], so the model cannot
//! be dropped while they exist. Every object frees its C handle in `Drop`.
//! A `Model` is `Send + Sync` (immutable, shareable across threads); the
//! others are `Send` but not `Sync` (one thread at a time).
//!
//! Every failure is an [`Error`] carrying the status code and the message
//! from `bitnet_last_error()`.

pub mod sys;
mod callbacks;

pub use callbacks::{AbortFn, LogFn, ProgressFn};
use callbacks::Callbacks;
use std::sync::Arc;

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};

// ---- errors ---------------------------------------------------------------

/// A failed libbitnet call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The negative `bitnet_status` (e.g. [`sys::BITNET_E_IO`]).
    pub status: i32,
    /// `bitnet_last_error()` right after the failure (may be empty).
    pub message: String,
}

impl Error {
    /// Capture the calling thread's last error message for `status`.
    fn last(status: c_int) -> Error {
        let message = unsafe { cstr_lossy(sys::bitnet_last_error()) };
        Error { status, message }
    }

    fn invalid(message: &str) -> Error {
        Error {
            status: sys::BITNET_E_INVALID_ARG,
            message: message.to_string(),
        }
    }

    /// The library's fixed description of the status (`bitnet_strerror`).
    pub fn strerror(&self) -> String {
        strerror(self.status)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.strerror(), self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(status: c_int) -> Result<()> {
    if status == sys::BITNET_OK {
        Ok(())
    } else {
        Err(Error::last(status))
    }
}

unsafe fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid("string contains a NUL byte"))
}

/// Call a C function that fills a byte buffer and reports the needed size
/// with BITNET_E_BUFFER_TOO_SMALL; grow and retry until it fits.
fn fill_bytes<F>(start: usize, mut f: F) -> Result<Vec<u8>>
where
    F: FnMut(*mut c_char, usize, *mut usize) -> c_int,
{
    let mut buf: Vec<u8> = vec![0; start.max(1)];
    loop {
        let mut n: usize = 0;
        let st = f(buf.as_mut_ptr() as *mut c_char, buf.len(), &mut n);
        if st == sys::BITNET_E_BUFFER_TOO_SMALL && n + 1 > buf.len() {
            buf.resize(n + 1, 0);
            continue;
        }
        check(st)?;
        buf.truncate(n);
        return Ok(buf);
    }
}

// ---- free functions ---------------------------------------------------------

/// `bitnet_strerror(status)`.
pub fn strerror(status: i32) -> String {
    unsafe { cstr_lossy(sys::bitnet_strerror(status)) }
}

/// The loaded library's version string, e.g. "0.1.0".
pub fn version() -> String {
    unsafe { cstr_lossy(sys::bitnet_version_string()) }
}

/// The loaded library's ABI version (this crate is written for
/// [`sys::BITNET_ABI_VERSION`]).
pub fn abi_version() -> i32 {
    unsafe { sys::bitnet_abi_version() }
}

/// Version, CPU features and chosen kernels, as text.
/// GBNF grammar text for a JSON Schema (for [`SamplerBuilder::grammar`]).
/// The schema `{}` gives a grammar for any JSON value. A keyword that is not
/// supported gives an error with status `BITNET_E_UNSUPPORTED` naming it.
pub fn json_schema_to_grammar(schema: &str) -> Result<String> {
    let s = cstring(schema)?;
    let bytes = fill_bytes(4096, |b, c, n| unsafe {
        sys::bitnet_json_schema_to_grammar(s.as_ptr(), b, c, n)
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn system_info() -> String {
    unsafe { cstr_lossy(sys::bitnet_system_info()) }
}

/// `BITNET_CPU_*` bits usable on this machine.
pub fn cpu_features() -> u32 {
    unsafe { sys::bitnet_cpu_features() }
}

fn path_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid("path contains a NUL byte"))
    }
    #[cfg(not(unix))]
    {
        match path.to_str() {
            Some(s) => cstring(s),
            None => Err(Error::invalid("path is not valid UTF-8")),
        }
    }
}

// ---- model --------------------------------------------------------------------

/// Weights, hyperparameters and vocabulary; immutable once loaded.
pub struct Model {
    ptr: NonNull<sys::bitnet_model>,
    // Keeps a buffer passed to load_buffer alive until bitnet_model_free.
    _buffer: Option<Vec<u8>>,
    // The log closure, which the library may call as long as the model lives.
    _callbacks: Option<Box<Callbacks>>,
}

// The C library documents a loaded model as immutable and thread-safe.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

/// Options for loading a model; start with [`Model::builder`].
#[derive(Clone)]
pub struct ModelBuilder {
    params: sys::bitnet_model_params,
    log: Option<Arc<LogFn>>,
    progress: Option<Arc<ProgressFn>>,
}

impl ModelBuilder {
    fn flag(mut self, bit: u32, on: bool) -> Self {
        if on {
            self.params.flags |= bit;
        } else {
            self.params.flags &= !bit;
        }
        self
    }
    /// Read the file into memory instead of mapping it.
    pub fn no_mmap(self, on: bool) -> Self {
        self.flag(sys::BITNET_MODEL_NO_MMAP, on)
    }
    /// Load only hyperparameters and the vocabulary (no contexts possible).
    pub fn vocab_only(self, on: bool) -> Self {
        self.flag(sys::BITNET_MODEL_VOCAB_ONLY, on)
    }
    /// Build the int8 output head at load.
    pub fn int8_head(self, on: bool) -> Self {
        self.flag(sys::BITNET_MODEL_INT8_HEAD, on)
    }
    /// A `BITNET_PRETOK_*` value.
    pub fn pre_tokenizer(mut self, pretok: i32) -> Self {
        self.params.pre_tokenizer = pretok;
        self
    }
    /// The output head's format, a `BITNET_HEAD_*` value (0: the file's;
    /// 1 F16, 2 int8, 3 Q8_0, 4 Q6_K, converted at load).
    pub fn head_type(mut self, head: i32) -> Self {
        self.params.head_type = head;
        self
    }

    /// Receive the library's messages about this model (`BITNET_LOG_*`
    /// level, text) at `level` and below, for as long as the model lives.
    /// A panic in `f` during the load resumes when the load returns; one in
    /// a later call is dropped (it never unwinds through C).
    pub fn log<F: Fn(i32, &str) + Send + Sync + 'static>(mut self, level: i32, f: F) -> Self {
        self.params.log_level = level;
        self.log = Some(Arc::new(f));
        self
    }
    /// Called while loading with the progress in [0, 1]; return `true` to
    /// cancel (the load then fails with status `BITNET_E_ABORTED`).
    pub fn progress<F: Fn(f32) -> bool + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The params with the callbacks pointed at `cb`, and `cb` itself.
    fn prepare(&self) -> (sys::bitnet_model_params, Option<Box<Callbacks>>) {
        let mut params = self.params;
        if self.log.is_none() && self.progress.is_none() {
            return (params, None);
        }
        let cb = Callbacks::new(self.log.clone(), self.progress.clone(), None);
        if cb.log.is_some() {
            params.log_fn = Some(callbacks::log_tramp);
            params.log_user = cb.user();
        }
        if cb.progress.is_some() {
            params.progress_fn = Some(callbacks::progress_tramp);
            params.progress_user = cb.user();
        }
        (params, Some(cb))
    }

    /// After a load: resume a closure's panic; drop the progress closure
    /// (the library calls it only while loading).
    fn finish(cb: Option<Box<Callbacks>>) -> Option<Box<Callbacks>> {
        let mut cb = cb?;
        cb.resume_panic();
        cb.progress = None;
        if cb.log.is_some() {
            Some(cb)
        } else {
            None
        }
    }

    /// Load a GGUF file.
    pub fn load<P: AsRef<Path>>(&self, path: P) -> Result<Model> {
        let c = path_cstring(path.as_ref())?;
        let (params, cb) = self.prepare();
        let mut out: *mut sys::bitnet_model = ptr::null_mut();
        let st = unsafe { sys::bitnet_model_load_file(&mut out, c.as_ptr(), &params) };
        let cb = ModelBuilder::finish(cb);
        check(st)?;
        match NonNull::new(out) {
            Some(ptr) => Ok(Model {
                ptr,
                _buffer: None,
                _callbacks: cb,
            }),
            None => Err(Error::invalid("bitnet_model_load_file returned no model")),
        }
    }

    /// Load a GGUF image held in memory (the bytes are moved into the model).
    pub fn load_buffer(&self, data: Vec<u8>) -> Result<Model> {
        let (params, cb) = self.prepare();
        let mut out: *mut sys::bitnet_model = ptr::null_mut();
        let st = unsafe {
            sys::bitnet_model_load_buffer(
                &mut out,
                data.as_ptr() as *const c_void,
                data.len(),
                &params,
            )
        };
        let cb = ModelBuilder::finish(cb);
        check(st)?;
        match NonNull::new(out) {
            Some(ptr) => Ok(Model {
                ptr,
                _buffer: Some(data),
                _callbacks: cb,
            }),
            None => Err(Error::invalid("bitnet_model_load_buffer returned no model")),
        }
    }
}

impl Model {
    /// Default load options (filled by `bitnet_model_params_init_`).
    pub fn builder() -> ModelBuilder {
        let mut params: sys::bitnet_model_params = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<sys::bitnet_model_params>();
        unsafe { sys::bitnet_model_params_init_(&mut params, size) };
        params.struct_size = size as u32;
        ModelBuilder {
            params,
            log: None,
            progress: None,
        }
    }

    /// Load a GGUF file with default options.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Model> {
        Model::builder().load(path)
    }

    pub fn as_ptr(&self) -> *const sys::bitnet_model {
        self.ptr.as_ptr()
    }

    pub fn arch(&self) -> String {
        unsafe { cstr_lossy(sys::bitnet_model_arch(self.as_ptr())) }
    }
    pub fn n_vocab(&self) -> i32 {
        unsafe { sys::bitnet_model_n_vocab(self.as_ptr()) }
    }
    pub fn n_ctx_train(&self) -> i32 {
        unsafe { sys::bitnet_model_n_ctx_train(self.as_ptr()) }
    }
    pub fn n_embd(&self) -> i32 {
        unsafe { sys::bitnet_model_n_embd(self.as_ptr()) }
    }
    pub fn n_layer(&self) -> i32 {
        unsafe { sys::bitnet_model_n_layer(self.as_ptr()) }
    }

    fn special(id: i32) -> Option<i32> {
        if id < 0 {
            None
        } else {
            Some(id)
        }
    }
    pub fn token_bos(&self) -> Option<i32> {
        Model::special(unsafe { sys::bitnet_token_bos(self.as_ptr()) })
    }
    pub fn token_eos(&self) -> Option<i32> {
        Model::special(unsafe { sys::bitnet_token_eos(self.as_ptr()) })
    }
    pub fn token_eot(&self) -> Option<i32> {
        Model::special(unsafe { sys::bitnet_token_eot(self.as_ptr()) })
    }
    /// True for tokens that end generation (EOS, EOT, EOM).
    pub fn is_eog(&self, token: i32) -> bool {
        unsafe { sys::bitnet_token_is_eog(self.as_ptr(), token) != 0 }
    }

    /// A metadata value as text; `Ok(None)` when the key does not exist.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let k = cstring(key)?;
        let r = fill_bytes(256, |b, c, n| unsafe {
            sys::bitnet_model_meta(self.as_ptr(), k.as_ptr(), b, c, n)
        });
        match r {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Err(e) if e.status == sys::BITNET_E_NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Token ids of UTF-8 text (or any bytes).
    pub fn tokenize<T: AsRef<[u8]>>(
        &self,
        text: T,
        add_bos: bool,
        parse_special: bool,
    ) -> Result<Vec<i32>> {
        let text = text.as_ref();
        let mut flags = 0;
        if add_bos {
            flags |= sys::BITNET_TOKENIZE_ADD_BOS;
        }
        if parse_special {
            flags |= sys::BITNET_TOKENIZE_PARSE_SPECIAL;
        }
        let mut out: Vec<i32> = vec![0; text.len() + 8];
        loop {
            let mut n: usize = 0;
            let st = unsafe {
                sys::bitnet_tokenize(
                    self.as_ptr(),
                    text.as_ptr() as *const c_char,
                    text.len(),
                    flags,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut n,
                )
            };
            if st == sys::BITNET_E_BUFFER_TOO_SMALL && n > out.len() {
                out.resize(n, 0);
                continue;
            }
            check(st)?;
            out.truncate(n);
            return Ok(out);
        }
    }

    /// The raw bytes of one token (may be part of a UTF-8 character).
    pub fn token_to_piece(&self, token: i32, special: bool) -> Result<Vec<u8>> {
        let flags = if special {
            sys::BITNET_DETOK_SPECIAL
        } else {
            0
        };
        fill_bytes(64, |b, c, n| unsafe {
            sys::bitnet_token_to_piece(self.as_ptr(), token, flags, b, c, n)
        })
    }

    /// The bytes of many tokens.
    pub fn detokenize(&self, tokens: &[i32], special: bool) -> Result<Vec<u8>> {
        let flags = if special {
            sys::BITNET_DETOK_SPECIAL
        } else {
            0
        };
        fill_bytes(16 * tokens.len() + 16, |b, c, n| unsafe {
            sys::bitnet_detokenize(self.as_ptr(), tokens.as_ptr(), tokens.len(), flags, b, c, n)
        })
    }

    /// Render `(role, content)` messages as prompt text with a chat template
    /// (`None`: the model's own), for display. To evaluate a conversation use
    /// [`Model::chat_tokenize`], which keeps message content plain text.
    pub fn chat_render(
        &self,
        template: Option<&str>,
        messages: &[(&str, &str)],
        add_assistant: bool,
    ) -> Result<String> {
        let owned = chat_strings(messages)?;
        let msgs = chat_array(&owned);
        let name = match template {
            Some(t) => Some(cstring(t)?),
            None => None,
        };
        let name_ptr = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        let bytes = fill_bytes(1024, |b, c, n| unsafe {
            sys::bitnet_chat_render(
                self.as_ptr(),
                name_ptr,
                msgs.as_ptr(),
                msgs.len(),
                add_assistant as c_int,
                b,
                c,
                n,
            )
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The token ids of a conversation: the template's markup becomes control
    /// tokens and message content is always plain text, so a message cannot
    /// forge turns. This is the way to build a chat prompt.
    pub fn chat_tokenize(
        &self,
        template: Option<&str>,
        messages: &[(&str, &str)],
        add_assistant: bool,
    ) -> Result<Vec<i32>> {
        let owned = chat_strings(messages)?;
        let msgs = chat_array(&owned);
        let name = match template {
            Some(t) => Some(cstring(t)?),
            None => None,
        };
        let name_ptr = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        let text_len: usize = messages.iter().map(|(r, c)| r.len() + c.len()).sum();
        let mut out: Vec<i32> = vec![0; text_len + 64];
        loop {
            let mut n: usize = 0;
            let st = unsafe {
                sys::bitnet_chat_tokenize(
                    self.as_ptr(),
                    name_ptr,
                    msgs.as_ptr(),
                    msgs.len(),
                    add_assistant as c_int,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut n,
                )
            };
            if st == sys::BITNET_E_BUFFER_TOO_SMALL && n > out.len() {
                out.resize(n, 0);
                continue;
            }
            check(st)?;
            out.truncate(n);
            return Ok(out);
        }
    }
}

fn chat_strings(messages: &[(&str, &str)]) -> Result<Vec<(CString, CString)>> {
    let mut owned: Vec<(CString, CString)> = Vec::with_capacity(messages.len());
    for (role, content) in messages {
        owned.push((cstring(role)?, cstring(content)?));
    }
    Ok(owned)
}

/// C views of `owned`, valid while it lives.
fn chat_array(owned: &[(CString, CString)]) -> Vec<sys::bitnet_chat_message> {
    owned
        .iter()
        .map(|(r, c)| sys::bitnet_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect()
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::bitnet_model_free(self.ptr.as_ptr()) }
    }
}

// ---- context ------------------------------------------------------------------

/// A session: KV cache, scratch memory and worker threads. Borrows its model.
pub struct Context<'m> {
    ptr: NonNull<sys::bitnet_context>,
    model: &'m Model,
    n_vocab: usize,
    // The log and abort closures, called during eval.
    callbacks: Option<Box<Callbacks>>,
}

// One thread at a time may use a context; moving it between threads is fine.
unsafe impl<'m> Send for Context<'m> {}

/// Options for a context; start with [`Context::builder`].
pub struct ContextBuilder<'m> {
    model: &'m Model,
    params: sys::bitnet_context_params,
    log: Option<Arc<LogFn>>,
    abort: Option<Arc<AbortFn>>,
}

impl<'m> ContextBuilder<'m> {
    /// KV cache length in tokens (0: the model's, at most 4096).
    pub fn n_ctx(mut self, n: i32) -> Self {
        self.params.n_ctx = n;
        self
    }
    /// Worker threads including the caller (0: all online CPUs).
    pub fn n_threads(mut self, n: i32) -> Self {
        self.params.n_threads = n;
        self
    }
    /// Largest number of tokens processed together in one step.
    pub fn n_batch(mut self, n: i32) -> Self {
        self.params.n_batch = n;
        self
    }
    /// Allowed `BITNET_CPU_*` bits.
    pub fn cpu_mask(mut self, mask: u32) -> Self {
        self.params.cpu_mask = mask;
        self
    }
    /// Use the int8 output head.
    pub fn int8_head(mut self, on: bool) -> Self {
        if on {
            self.params.flags |= sys::BITNET_CONTEXT_INT8_HEAD;
        } else {
            self.params.flags &= !sys::BITNET_CONTEXT_INT8_HEAD;
        }
        self
    }
    /// Receive the library's messages about this context at `level` and
    /// below.
    pub fn log<F: Fn(i32, &str) + Send + Sync + 'static>(mut self, level: i32, f: F) -> Self {
        self.params.log_level = level;
        self.log = Some(Arc::new(f));
        self
    }
    /// Polled between layers during eval; return `true` to stop it (eval
    /// then fails with status `BITNET_E_ABORTED` and the position is
    /// unchanged).
    pub fn abort<F: Fn() -> bool + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.abort = Some(Arc::new(f));
        self
    }
    pub fn build(&self) -> Result<Context<'m>> {
        let mut params = self.params;
        let mut cb = None;
        if self.log.is_some() || self.abort.is_some() {
            let c = Callbacks::new(self.log.clone(), None, self.abort.clone());
            if c.log.is_some() {
                params.log_fn = Some(callbacks::log_tramp);
                params.log_user = c.user();
            }
            if c.abort.is_some() {
                params.abort_fn = Some(callbacks::abort_tramp);
                params.abort_user = c.user();
            }
            cb = Some(c);
        }
        let mut out: *mut sys::bitnet_context = ptr::null_mut();
        let st = unsafe { sys::bitnet_context_create(&mut out, self.model.as_ptr(), &params) };
        if let Some(c) = &cb {
            c.resume_panic();
        }
        check(st)?;
        match NonNull::new(out) {
            Some(ptr) => Ok(Context {
                ptr,
                model: self.model,
                n_vocab: self.model.n_vocab().max(0) as usize,
                callbacks: cb,
            }),
            None => Err(Error::invalid("bitnet_context_create returned no context")),
        }
    }
}

impl<'m> Context<'m> {
    pub fn builder(model: &'m Model) -> ContextBuilder<'m> {
        let mut params: sys::bitnet_context_params = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<sys::bitnet_context_params>();
        unsafe { sys::bitnet_context_params_init_(&mut params, size) };
        params.struct_size = size as u32;
        ContextBuilder {
            model,
            params,
            log: None,
            abort: None,
        }
    }

    /// A context with default options.
    pub fn new(model: &'m Model) -> Result<Context<'m>> {
        Context::builder(model).build()
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }
    pub fn as_ptr(&self) -> *const sys::bitnet_context {
        self.ptr.as_ptr()
    }

    fn eval_flags(&mut self, tokens: &[i32], flags: u32) -> Result<()> {
        let st = unsafe {
            sys::bitnet_context_eval(self.ptr.as_ptr(), tokens.as_ptr(), tokens.len(), flags)
        };
        if let Some(c) = &self.callbacks {
            c.resume_panic();
        }
        check(st)
    }
    /// Evaluate tokens at the current position; keeps the last token's logits.
    pub fn eval(&mut self, tokens: &[i32]) -> Result<()> {
        self.eval_flags(tokens, 0)
    }
    /// Evaluate tokens and keep the logits of every one of them.
    pub fn eval_all_logits(&mut self, tokens: &[i32]) -> Result<()> {
        self.eval_flags(tokens, sys::BITNET_EVAL_ALL_LOGITS)
    }

    /// Logits of token `i` (-1: last) of the last eval. The borrow ends
    /// before the next eval, so the slice cannot dangle.
    pub fn logits(&self, i: i32) -> Result<&[f32]> {
        let mut p: *const f32 = ptr::null();
        check(unsafe { sys::bitnet_context_logits(self.as_ptr(), i, &mut p) })?;
        if p.is_null() {
            return Err(Error::invalid("bitnet_context_logits returned NULL"));
        }
        Ok(unsafe { std::slice::from_raw_parts(p, self.n_vocab) })
    }

    pub fn pos(&self) -> i32 {
        unsafe { sys::bitnet_context_pos(self.as_ptr()) }
    }
    pub fn n_ctx(&self) -> i32 {
        unsafe { sys::bitnet_context_n_ctx(self.as_ptr()) }
    }
    /// Forget every token at position >= pos.
    pub fn rewind(&mut self, pos: i32) -> Result<()> {
        check(unsafe { sys::bitnet_context_rewind(self.ptr.as_ptr(), pos) })
    }
    pub fn reset(&mut self) {
        unsafe { sys::bitnet_context_reset(self.ptr.as_ptr()) }
    }

    /// Position, KV cache and last logits as a versioned blob.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        let size = unsafe { sys::bitnet_context_state_size(self.as_ptr()) };
        let mut buf: Vec<u8> = vec![0; size.max(1)];
        let mut n: usize = 0;
        check(unsafe {
            sys::bitnet_context_state_save(
                self.as_ptr(),
                buf.as_mut_ptr() as *mut c_void,
                size,
                &mut n,
            )
        })?;
        buf.truncate(n);
        Ok(buf)
    }
    pub fn load_state(&mut self, blob: &[u8]) -> Result<()> {
        check(unsafe {
            sys::bitnet_context_state_load(
                self.ptr.as_ptr(),
                blob.as_ptr() as *const c_void,
                blob.len(),
            )
        })
    }
}

impl<'m> Drop for Context<'m> {
    fn drop(&mut self) {
        unsafe { sys::bitnet_context_free(self.ptr.as_ptr()) }
    }
}

// ---- sampler ------------------------------------------------------------------

/// Turns logits into a token id. Borrows its model.
pub struct Sampler<'m> {
    ptr: NonNull<sys::bitnet_sampler>,
    _model: PhantomData<&'m Model>,
}

unsafe impl<'m> Send for Sampler<'m> {}

/// Sampling options, starting from the library's defaults.
pub struct SamplerBuilder<'m> {
    model: &'m Model,
    params: sys::bitnet_sampler_params,
    bias: Vec<sys::bitnet_logit_bias>,
    grammar: Option<String>,
    grammar_root: Option<String>,
}

impl<'m> SamplerBuilder<'m> {
    /// 0 is greedy (argmax).
    pub fn temperature(mut self, t: f32) -> Self {
        self.params.temperature = t;
        self
    }
    pub fn top_k(mut self, k: i32) -> Self {
        self.params.top_k = k;
        self
    }
    pub fn top_p(mut self, p: f32) -> Self {
        self.params.top_p = p;
        self
    }
    pub fn min_p(mut self, p: f32) -> Self {
        self.params.min_p = p;
        self
    }
    pub fn repeat_penalty(mut self, p: f32) -> Self {
        self.params.repeat_penalty = p;
        self
    }
    pub fn frequency_penalty(mut self, p: f32) -> Self {
        self.params.frequency_penalty = p;
        self
    }
    pub fn presence_penalty(mut self, p: f32) -> Self {
        self.params.presence_penalty = p;
        self
    }
    pub fn penalty_last_n(mut self, n: i32) -> Self {
        self.params.penalty_last_n = n;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.params.seed = seed;
        self
    }
    /// Add `bias` to a token's logit (`f32::NEG_INFINITY` bans it).
    pub fn logit_bias(mut self, token: i32, bias: f32) -> Self {
        self.bias.push(sys::bitnet_logit_bias { token, bias });
        self
    }
    /// Constrain the output to a GBNF grammar (start rule "root"); see
    /// [`json_schema_to_grammar`] for JSON. With a grammar, `accept` fails
    /// with `BITNET_E_GRAMMAR` for a token the grammar does not allow.
    pub fn grammar(mut self, gbnf: &str) -> Self {
        self.grammar = Some(gbnf.to_owned());
        self
    }
    /// Another start rule than "root".
    pub fn grammar_root(mut self, rule: &str) -> Self {
        self.grammar_root = Some(rule.to_owned());
        self
    }
    pub fn build(&self) -> Result<Sampler<'m>> {
        let mut params = self.params;
        // compiled by bitnet_sampler_create: they need not outlive the call
        let grammar = match &self.grammar {
            Some(g) => Some(cstring(g)?),
            None => None,
        };
        let root = match &self.grammar_root {
            Some(r) => Some(cstring(r)?),
            None => None,
        };
        params.grammar = grammar.as_ref().map_or(ptr::null(), |g| g.as_ptr());
        params.grammar_root = root.as_ref().map_or(ptr::null(), |r| r.as_ptr());
        if !self.bias.is_empty() {
            params.logit_bias = self.bias.as_ptr(); // copied by bitnet_sampler_create
            params.n_logit_bias = self.bias.len();
        }
        let mut out: *mut sys::bitnet_sampler = ptr::null_mut();
        check(unsafe { sys::bitnet_sampler_create(&mut out, self.model.as_ptr(), &params) })?;
        match NonNull::new(out) {
            Some(ptr) => Ok(Sampler {
                ptr,
                _model: PhantomData,
            }),
            None => Err(Error::invalid("bitnet_sampler_create returned no sampler")),
        }
    }
}

impl<'m> Sampler<'m> {
    pub fn builder(model: &'m Model) -> SamplerBuilder<'m> {
        let mut params: sys::bitnet_sampler_params = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<sys::bitnet_sampler_params>();
        unsafe { sys::bitnet_sampler_params_init_(&mut params, size) };
        params.struct_size = size as u32;
        SamplerBuilder {
            model,
            params,
            bias: Vec::new(),
            grammar: None,
            grammar_root: None,
        }
    }

    /// A greedy sampler (temperature 0).
    pub fn greedy(model: &'m Model) -> Result<Sampler<'m>> {
        Sampler::builder(model).temperature(0.0).build()
    }

    /// Sample from token `i` (-1: last) of the context's last eval; the
    /// token is not accepted.
    pub fn sample(&mut self, ctx: &Context<'_>, i: i32) -> Result<i32> {
        let mut tok: i32 = 0;
        check(unsafe { sys::bitnet_sampler_sample(self.ptr.as_ptr(), ctx.as_ptr(), i, &mut tok) })?;
        Ok(tok)
    }
    /// Sample from caller logits (length = vocabulary size).
    pub fn sample_logits(&mut self, logits: &[f32]) -> Result<i32> {
        let mut tok: i32 = 0;
        check(unsafe {
            sys::bitnet_sampler_sample_logits(
                self.ptr.as_ptr(),
                logits.as_ptr(),
                logits.len(),
                &mut tok,
            )
        })?;
        Ok(tok)
    }
    /// Record a token in the penalty history and advance the grammar.
    pub fn accept(&mut self, token: i32) -> Result<()> {
        check(unsafe { sys::bitnet_sampler_accept(self.ptr.as_ptr(), token) })
    }
    pub fn reset(&mut self) {
        unsafe { sys::bitnet_sampler_reset(self.ptr.as_ptr()) }
    }
}

impl<'m> Drop for Sampler<'m> {
    fn drop(&mut self) {
        unsafe { sys::bitnet_sampler_free(self.ptr.as_ptr()) }
    }
}

// ---- streaming detokenizer ----------------------------------------------------------

/// Feed tokens, get back complete UTF-8 text only.
pub struct Detokenizer<'m> {
    ptr: NonNull<sys::bitnet_detokenizer>,
    buf: Vec<u8>,
    _model: PhantomData<&'m Model>,
}

unsafe impl<'m> Send for Detokenizer<'m> {}

impl<'m> Detokenizer<'m> {
    pub fn new(model: &'m Model, special: bool) -> Result<Detokenizer<'m>> {
        let flags = if special {
            sys::BITNET_DETOK_SPECIAL
        } else {
            0
        };
        let mut out: *mut sys::bitnet_detokenizer = ptr::null_mut();
        check(unsafe { sys::bitnet_detokenizer_create(&mut out, model.as_ptr(), flags) })?;
        match NonNull::new(out) {
            Some(ptr) => Ok(Detokenizer {
                ptr,
                buf: vec![0; 256],
                _model: PhantomData,
            }),
            None => Err(Error::invalid(
                "bitnet_detokenizer_create returned no detokenizer",
            )),
        }
    }

    fn run<F>(&mut self, mut f: F) -> Result<String>
    where
        F: FnMut(*mut sys::bitnet_detokenizer, *mut c_char, usize, *mut usize) -> c_int,
    {
        loop {
            let mut n: usize = 0;
            let st = f(
                self.ptr.as_ptr(),
                self.buf.as_mut_ptr() as *mut c_char,
                self.buf.len(),
                &mut n,
            );
            if st == sys::BITNET_E_BUFFER_TOO_SMALL && n > self.buf.len() {
                self.buf.resize(n, 0);
                continue;
            }
            check(st)?;
            // The library only emits complete, valid UTF-8.
            return Ok(String::from_utf8_lossy(&self.buf[..n]).into_owned());
        }
    }

    /// Feed one token; returns the text that is now complete (may be empty).
    pub fn feed(&mut self, token: i32) -> Result<String> {
        self.run(|d, b, c, n| unsafe { sys::bitnet_detokenizer_feed(d, token, b, c, n) })
    }
    /// Emit what is held back (U+FFFD if incomplete) and reset.
    pub fn flush(&mut self) -> Result<String> {
        self.run(|d, b, c, n| unsafe { sys::bitnet_detokenizer_flush(d, b, c, n) })
    }
}

impl<'m> Drop for Detokenizer<'m> {
    fn drop(&mut self) {
        unsafe { sys::bitnet_detokenizer_free(self.ptr.as_ptr()) }
    }
}

// ---- generation -----------------------------------------------------------------

/// Iterator over sampled token ids; see [`generate_tokens`].
pub struct Tokens<'a, 'm> {
    ctx: &'a mut Context<'m>,
    smp: &'a mut Sampler<'m>,
    remaining: usize,
    need_eval: Option<i32>,
    done: bool,
}

impl<'a, 'm> Iterator for Tokens<'a, 'm> {
    type Item = Result<i32>;

    fn next(&mut self) -> Option<Result<i32>> {
        if self.done || self.remaining == 0 {
            return None;
        }
        if let Some(prev) = self.need_eval.take() {
            match self.ctx.eval(&[prev]) {
                Ok(()) => {}
                Err(e) if e.status == sys::BITNET_E_CONTEXT_FULL => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let tok = match self.smp.sample(&*self.ctx, -1) {
            Ok(t) => t,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if self.ctx.model().is_eog(tok) {
            self.done = true;
            return None;
        }
        if let Err(e) = self.smp.accept(tok) {
            self.done = true;
            return Some(Err(e));
        }
        self.remaining -= 1;
        self.need_eval = Some(tok);
        Some(Ok(tok))
    }
}

/// Evaluate `prompt`, then yield up to `n_predict` sampled token ids.
/// Stops early at an end-of-generation token (not yielded) or when the
/// context is full.
pub fn generate_tokens<'a, 'm>(
    ctx: &'a mut Context<'m>,
    smp: &'a mut Sampler<'m>,
    prompt: &[i32],
    n_predict: usize,
) -> Result<Tokens<'a, 'm>> {
    if !prompt.is_empty() {
        ctx.eval(prompt)?;
    }
    Ok(Tokens {
        ctx,
        smp,
        remaining: n_predict,
        need_eval: None,
        done: false,
    })
}

/// Iterator over generated text pieces; see [`generate`].
pub struct Text<'a, 'm> {
    tokens: Tokens<'a, 'm>,
    detok: Option<Detokenizer<'m>>,
}

impl<'a, 'm> Iterator for Text<'a, 'm> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            let detok = self.detok.as_mut()?;
            match self.tokens.next() {
                Some(Ok(tok)) => match detok.feed(tok) {
                    Ok(s) if s.is_empty() => continue,
                    r => return Some(r),
                },
                Some(Err(e)) => {
                    self.detok = None;
                    return Some(Err(e));
                }
                None => {
                    let r = detok.flush();
                    self.detok = None;
                    match r {
                        Ok(s) if s.is_empty() => return None,
                        r => return Some(r),
                    }
                }
            }
        }
    }
}

/// Like [`generate_tokens`], but yields text pieces: each one complete
/// UTF-8, characters split across tokens arrive whole.
pub fn generate<'a, 'm>(
    ctx: &'a mut Context<'m>,
    smp: &'a mut Sampler<'m>,
    prompt: &[i32],
    n_predict: usize,
) -> Result<Text<'a, 'm>> {
    let model: &'m Model = ctx.model();
    let detok = Detokenizer::new(model, false)?;
    let tokens = generate_tokens(ctx, smp, prompt, n_predict)?;
    Ok(Text {
        tokens,
        detok: Some(detok),
    })
}

// ---- synthetic models ---------------------------------------------------------------

/// Shape of a synthetic model; zero fields keep the library's defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct SynthOptions {
    pub n_embd: i32,
    pub n_layer: i32,
    pub n_ff: i32,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub n_vocab: i32,
    pub seed: u64,
}

/// Write a synthetic model: random ternary weights and a generated
/// byte-level vocabulary (see `bitnet_synth_write`).
pub fn synth_write<P: AsRef<Path>>(path: P, o: &SynthOptions) -> Result<()> {
    let mut p: sys::bitnet_synth_params = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<sys::bitnet_synth_params>();
    unsafe { sys::bitnet_synth_params_init_(&mut p, size) };
    p.struct_size = size as u32;
    let set = |dst: &mut i32, v: i32| {
        if v != 0 {
            *dst = v;
        }
    };
    set(&mut p.n_embd, o.n_embd);
    set(&mut p.n_layer, o.n_layer);
    set(&mut p.n_ff, o.n_ff);
    set(&mut p.n_head, o.n_head);
    set(&mut p.n_head_kv, o.n_head_kv);
    set(&mut p.n_vocab, o.n_vocab);
    if o.seed != 0 {
        p.seed = o.seed;
    }
    let c = path_cstring(path.as_ref())?;
    check(unsafe { sys::bitnet_synth_write(c.as_ptr(), &p) })
}
