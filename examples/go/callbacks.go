package bitnet

// The log, progress and abort callbacks. C cannot hold Go pointers, so each
// set of Go functions is registered under a one-byte C allocation whose
// address is the C user pointer; exported trampolines look the set up. A
// panic in a callback is recovered before it reaches C frames: the call is
// cancelled (progress and abort return non-zero) and the panic is raised
// again in the caller's goroutine once the C call has returned.

/*
#include <stdint.h>
#include <stdlib.h>
extern void bitnetGoLog(void *user, int32_t level, char *msg);
extern int bitnetGoProgress(void *user, float progress);
extern int bitnetGoAbort(void *user);
*/
import "C"

import (
	"sync"
	"unsafe"
)

// Log levels (bitnet_log_level) for ModelOptions.LogLevel and
// ContextOptions.LogLevel.
const (
	LogError = 0
	LogWarn  = 1
	LogInfo  = 2
	LogDebug = 3
)

type callbacks struct {
	log      func(level int, msg string)
	progress func(fraction float32) bool
	abort    func() bool

	mu       sync.Mutex
	panicked bool
	panicVal interface{}
}

var (
	cbMu  sync.Mutex
	cbReg = map[unsafe.Pointer]*callbacks{}
)

// register returns the C user pointer of cb; unregister releases it.
func register(cb *callbacks) unsafe.Pointer {
	key := C.malloc(1)
	cbMu.Lock()
	cbReg[key] = cb
	cbMu.Unlock()
	return key
}

func unregister(key unsafe.Pointer) {
	if key == nil {
		return
	}
	cbMu.Lock()
	delete(cbReg, key)
	cbMu.Unlock()
	C.free(key)
}

func lookup(key unsafe.Pointer) *callbacks {
	cbMu.Lock()
	defer cbMu.Unlock()
	return cbReg[key]
}

func (cb *callbacks) keep(v interface{}) {
	cb.mu.Lock()
	if !cb.panicked {
		cb.panicked, cb.panicVal = true, v
	}
	cb.mu.Unlock()
}

// repanic raises, in the caller, a panic recovered in a callback.
func (cb *callbacks) repanic() {
	if cb == nil {
		return
	}
	cb.mu.Lock()
	p, v := cb.panicked, cb.panicVal
	cb.panicked, cb.panicVal = false, nil
	cb.mu.Unlock()
	if p {
		panic(v)
	}
}

//export bitnetGoLog
func bitnetGoLog(user unsafe.Pointer, level C.int32_t, msg *C.char) {
	cb := lookup(user)
	if cb == nil || cb.log == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			cb.keep(r)
		}
	}()
	cb.log(int(level), C.GoString(msg))
}

//export bitnetGoProgress
func bitnetGoProgress(user unsafe.Pointer, progress C.float) (stop C.int) {
	cb := lookup(user)
	if cb == nil || cb.progress == nil {
		return 0
	}
	defer func() {
		if r := recover(); r != nil {
			cb.keep(r)
			stop = 1
		}
	}()
	if cb.progress(float32(progress)) {
		return 1
	}
	return 0
}

//export bitnetGoAbort
func bitnetGoAbort(user unsafe.Pointer) (stop C.int) {
	cb := lookup(user)
	if cb == nil || cb.abort == nil {
		return 0
	}
	defer func() {
		if r := recover(); r != nil {
			cb.keep(r)
			stop = 1
		}
	}()
	if cb.abort() {
		return 1
	}
	return 0
}

// The trampolines as C function pointers (of the bitnet.h typedefs).
var (
	logTramp      = C.bitnetGoLog
	progressTramp = C.bitnetGoProgress
	abortTramp    = C.bitnetGoAbort
)
