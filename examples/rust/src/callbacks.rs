//! The log, progress and abort callbacks: closures behind the C function
//! pointers. Each closure lives in a heap block whose address is the C
//! `user` pointer, so it stays put while the C library may call it. A panic
//! in a closure never unwinds through C frames: it is caught, the call is
//! cancelled (progress and abort return non-zero), and the panic resumes in
//! the Rust caller once the C call has returned.

use std::any::Any;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// Receives library messages: a `BITNET_LOG_*` level and the text.
pub type LogFn = dyn Fn(i32, &str) + Send + Sync;
/// Model loading progress in [0, 1]; return `true` to cancel the load.
pub type ProgressFn = dyn Fn(f32) -> bool + Send + Sync;
/// Polled during eval; return `true` to stop it (status `BITNET_E_ABORTED`).
pub type AbortFn = dyn Fn() -> bool + Send + Sync;

/// The closures of one C object, at a stable address.
pub(crate) struct Callbacks {
    pub log: Option<Arc<LogFn>>,
    pub progress: Option<Arc<ProgressFn>>,
    pub abort: Option<Arc<AbortFn>>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Callbacks {
    pub fn new(
        log: Option<Arc<LogFn>>,
        progress: Option<Arc<ProgressFn>>,
        abort: Option<Arc<AbortFn>>,
    ) -> Box<Callbacks> {
        Box::new(Callbacks {
            log,
            progress,
            abort,
            panic: Mutex::new(None),
        })
    }

    pub fn user(&self) -> *mut c_void {
        self as *const Callbacks as *mut c_void
    }

    fn keep_panic(&self, p: Box<dyn Any + Send>) {
        if let Ok(mut slot) = self.panic.lock() {
            if slot.is_none() {
                *slot = Some(p);
            }
        }
    }

    /// Re-raise a panic caught in a closure during the last C call.
    pub fn resume_panic(&self) {
        let p = self.panic.lock().ok().and_then(|mut s| s.take());
        if let Some(p) = p {
            panic::resume_unwind(p);
        }
    }
}

pub(crate) unsafe extern "C" fn log_tramp(user: *mut c_void, level: i32, msg: *const c_char) {
    let cb = &*(user as *const Callbacks);
    if let Some(f) = &cb.log {
        let text = if msg.is_null() {
            String::new()
        } else {
            CStr::from_ptr(msg).to_string_lossy().into_owned()
        };
        // A log call cannot be cancelled: a panic is kept and resumed later.
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| f(level, &text))) {
            cb.keep_panic(p);
        }
    }
}

pub(crate) unsafe extern "C" fn progress_tramp(user: *mut c_void, progress: f32) -> c_int {
    let cb = &*(user as *const Callbacks);
    match &cb.progress {
        Some(f) => match panic::catch_unwind(AssertUnwindSafe(|| f(progress))) {
            Ok(stop) => stop as c_int,
            Err(p) => {
                cb.keep_panic(p);
                1
            }
        },
        None => 0,
    }
}

pub(crate) unsafe extern "C" fn abort_tramp(user: *mut c_void) -> c_int {
    let cb = &*(user as *const Callbacks);
    match &cb.abort {
        Some(f) => match panic::catch_unwind(AssertUnwindSafe(|| f())) {
            Ok(stop) => stop as c_int,
            Err(p) => {
                cb.keep_panic(p);
                1
            }
        },
        None => 0,
    }
}
