// Package bitnet uses libbitnet (BitNet b1.58 inference on CPUs) from Go
// through cgo. The compiler and linker flags come from pkg-config
// (bitnet.pc), so PKG_CONFIG_PATH / PKG_CONFIG_SYSROOT_DIR select the copy.
//
//	model, err := bitnet.Load("model.gguf")
//	ctx, err := model.NewContext(bitnet.ContextOptions{NContext: 2048})
//	smp, err := model.NewSampler(bitnet.GreedySampler())
//	prompt, err := model.Tokenize("Once upon a time", true, true)
//	g, err := bitnet.Generate(ctx, smp, prompt, 64)
//	for g.Next() { fmt.Print(g.Text()) }
//	err = g.Err()
//
// Ownership follows the C rules: a Context, Sampler or Detokenizer keeps a
// reference to its Model; Close the model only after them. Every object has
// an idempotent Close and a finalizer as a safety net. A Model may be used
// from any number of goroutines; a Context, Sampler, Detokenizer or
// Generator from one goroutine at a time.
//
// Errors are *Error values carrying the status code and the message from
// bitnet_last_error(). That message is thread-local in C, so each fallible
// call runs with its goroutine locked to its OS thread until the message has
// been read.
package bitnet

/*
#cgo pkg-config: bitnet
#include <stdlib.h>
#include <bitnet.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// ABIVersion is the ABI this package is written for; the header it is
// compiled against must agree (checked at compile time below).
const ABIVersion = 1

// Fails to compile when bitnet.h's BITNET_ABI_VERSION differs.
var _ [ABIVersion - C.BITNET_ABI_VERSION]struct{}
var _ [C.BITNET_ABI_VERSION - ABIVersion]struct{}

// Status codes (bitnet_status).
const (
	OK             = int(C.BITNET_OK)
	ErrInvalidArg  = int(C.BITNET_E_INVALID_ARG)
	ErrNoMem       = int(C.BITNET_E_NOMEM)
	ErrIO          = int(C.BITNET_E_IO)
	ErrFormat      = int(C.BITNET_E_FORMAT)
	ErrUnsupported = int(C.BITNET_E_UNSUPPORTED)
	ErrBufferSmall = int(C.BITNET_E_BUFFER_TOO_SMALL)
	ErrContextFull = int(C.BITNET_E_CONTEXT_FULL)
	ErrAborted     = int(C.BITNET_E_ABORTED)
	ErrInternal    = int(C.BITNET_E_INTERNAL)
	ErrNotFound    = int(C.BITNET_E_NOT_FOUND)
	ErrState       = int(C.BITNET_E_STATE)
	ErrGrammar     = int(C.BITNET_E_GRAMMAR)
)

// Error is a failed libbitnet call.
type Error struct {
	Status  int    // negative bitnet_status
	Message string // bitnet_last_error() right after the failure
	Func    string // the C function that failed
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (%d)", e.Func, Strerror(e.Status), e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsStatus reports whether err is an *Error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// call runs f on a locked OS thread and turns a failure into an *Error with
// that thread's bitnet_last_error().
func call(name string, f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st == C.BITNET_OK {
		return nil
	}
	return &Error{Status: int(st), Message: C.GoString(C.bitnet_last_error()), Func: name}
}

// fillBytes calls a buffer-filling function, growing the buffer on
// BITNET_E_BUFFER_TOO_SMALL.
func fillBytes(name string, start int, f func(buf *C.char, cap C.size_t, n *C.size_t) C.int) ([]byte, error) {
	if start < 1 {
		start = 1
	}
	buf := make([]byte, start)
	for {
		var n C.size_t
		err := call(name, func() C.int {
			return f((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
		})
		if IsStatus(err, ErrBufferSmall) && int(n)+1 > len(buf) {
			buf = make([]byte, int(n)+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// Strerror is bitnet_strerror.
func Strerror(status int) string { return C.GoString(C.bitnet_strerror(C.int(status))) }

// Version is the loaded library's version string.
func Version() string { return C.GoString(C.bitnet_version_string()) }

// LoadedABIVersion is bitnet_abi_version() of the loaded library.
func LoadedABIVersion() int { return int(C.bitnet_abi_version()) }

// SystemInfo describes the version, CPU features and chosen kernels.
func SystemInfo() string { return C.GoString(C.bitnet_system_info()) }

// CPUFeatures returns the BITNET_CPU_* bits usable here.
func CPUFeatures() uint32 { return uint32(C.bitnet_cpu_features()) }

// ---- model ------------------------------------------------------------------

// ModelOptions are load options; the zero value means library defaults.
type ModelOptions struct {
	NoMmap       bool
	VocabOnly    bool
	Int8Head     bool
	PreTokenizer int // BITNET_PRETOK_*; 0 = auto
	HeadType     int // BITNET_HEAD_*; 0 = the file's head (1 F16, 2 int8, 3 Q8_0, 4 Q6_K)

	// Log receives the library's messages about the model at LogLevel
	// (LogError .. LogDebug; 0 = errors only) and below, as long as the
	// model lives. It may be called from any goroutine.
	Log      func(level int, msg string)
	LogLevel int
	// Progress is called while loading with the fraction done; returning
	// true cancels the load (ErrAborted).
	Progress func(fraction float32) bool
}

// Model is a loaded model: immutable and safe for concurrent use.
type Model struct {
	p     *C.bitnet_model
	buf   unsafe.Pointer // C copy of a LoadBuffer image, freed after the model
	cbKey unsafe.Pointer // registered Log callback, released after the model
}

// withCallbacks points p's callbacks at a registered set built from o and
// returns its key (nil when o has none) and the set.
func withCallbacks(p *C.bitnet_model_params, o ModelOptions) (unsafe.Pointer, *callbacks) {
	if o.Log == nil && o.Progress == nil {
		return nil, nil
	}
	cb := &callbacks{log: o.Log, progress: o.Progress}
	key := register(cb)
	if o.Log != nil {
		p.log_fn = C.bitnet_log_fn(logTramp)
		p.log_user = key
		p.log_level = C.int32_t(o.LogLevel)
	}
	if o.Progress != nil {
		p.progress_fn = C.bitnet_progress_fn(progressTramp)
		p.progress_user = key
	}
	return key, cb
}

// afterLoad keeps the registration only for a loaded model with a Log
// callback, then raises a panic recovered in a callback.
func afterLoad(key unsafe.Pointer, cb *callbacks, o ModelOptions, loaded bool) unsafe.Pointer {
	if key != nil && (!loaded || o.Log == nil) {
		unregister(key)
		key = nil
	}
	cb.repanic()
	return key
}

func modelParams(o ModelOptions) C.bitnet_model_params {
	var p C.bitnet_model_params
	C.bitnet_model_params_init_(&p, C.size_t(unsafe.Sizeof(p)))
	p.struct_size = C.uint32_t(unsafe.Sizeof(p))
	if o.NoMmap {
		p.flags |= C.BITNET_MODEL_NO_MMAP
	}
	if o.VocabOnly {
		p.flags |= C.BITNET_MODEL_VOCAB_ONLY
	}
	if o.Int8Head {
		p.flags |= C.BITNET_MODEL_INT8_HEAD
	}
	p.pre_tokenizer = C.int32_t(o.PreTokenizer)
	p.head_type = C.int32_t(o.HeadType)
	return p
}

func newModel(p *C.bitnet_model, buf unsafe.Pointer) *Model {
	m := &Model{p: p, buf: buf}
	runtime.SetFinalizer(m, (*Model).Close)
	return m
}

// Load loads a GGUF file with default options.
func Load(path string) (*Model, error) { return LoadWithOptions(path, ModelOptions{}) }

// LoadWithOptions loads a GGUF file.
func LoadWithOptions(path string, o ModelOptions) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	p := modelParams(o)
	key, cb := withCallbacks(&p, o)
	var out *C.bitnet_model
	err := call("bitnet_model_load_file", func() C.int {
		return C.bitnet_model_load_file(&out, cpath, &p)
	})
	key = afterLoad(key, cb, o, err == nil)
	if err != nil {
		return nil, err
	}
	m := newModel(out, nil)
	m.cbKey = key
	return m, nil
}

// LoadBuffer loads a GGUF image from memory (copied into C memory that lives
// as long as the model).
func LoadBuffer(data []byte, o ModelOptions) (*Model, error) {
	if len(data) == 0 {
		return nil, &Error{Status: ErrInvalidArg, Message: "empty buffer", Func: "bitnet_model_load_buffer"}
	}
	buf := C.CBytes(data)
	p := modelParams(o)
	key, cb := withCallbacks(&p, o)
	var out *C.bitnet_model
	err := call("bitnet_model_load_buffer", func() C.int {
		return C.bitnet_model_load_buffer(&out, buf, C.size_t(len(data)), &p)
	})
	if err != nil {
		C.free(buf)
	}
	key = afterLoad(key, cb, o, err == nil)
	if err != nil {
		return nil, err
	}
	m := newModel(out, buf)
	m.cbKey = key
	return m, nil
}

// Close frees the model. Close its contexts, samplers and detokenizers first.
func (m *Model) Close() {
	if m.p != nil {
		C.bitnet_model_free(m.p)
		m.p = nil
		runtime.SetFinalizer(m, nil)
	}
	if m.buf != nil {
		C.free(m.buf)
		m.buf = nil
	}
	unregister(m.cbKey)
	m.cbKey = nil
}

func (m *Model) Arch() string    { return C.GoString(C.bitnet_model_arch(m.p)) }
func (m *Model) NVocab() int     { return int(C.bitnet_model_n_vocab(m.p)) }
func (m *Model) NCtxTrain() int  { return int(C.bitnet_model_n_ctx_train(m.p)) }
func (m *Model) NEmbd() int      { return int(C.bitnet_model_n_embd(m.p)) }
func (m *Model) NLayer() int     { return int(C.bitnet_model_n_layer(m.p)) }
func (m *Model) TokenBOS() int32 { return int32(C.bitnet_token_bos(m.p)) }
func (m *Model) TokenEOS() int32 { return int32(C.bitnet_token_eos(m.p)) }
func (m *Model) TokenEOT() int32 { return int32(C.bitnet_token_eot(m.p)) }

// IsEOG reports whether a token ends generation (EOS, EOT, EOM).
func (m *Model) IsEOG(tok int32) bool { return C.bitnet_token_is_eog(m.p, C.int32_t(tok)) != 0 }

// Meta returns a metadata value as text; ok is false when the key is absent.
func (m *Model) Meta(key string) (value string, ok bool, err error) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	b, err := fillBytes("bitnet_model_meta", 256, func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_model_meta(m.p, ckey, buf, cap, n)
	})
	if IsStatus(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// Tokenize returns the token ids of UTF-8 text.
func (m *Model) Tokenize(text string, addBOS, parseSpecial bool) ([]int32, error) {
	var flags C.uint32_t
	if addBOS {
		flags |= C.BITNET_TOKENIZE_ADD_BOS
	}
	if parseSpecial {
		flags |= C.BITNET_TOKENIZE_PARSE_SPECIAL
	}
	ctext := C.CString(text) // C memory: the text may be long-lived in the call
	defer C.free(unsafe.Pointer(ctext))
	out := make([]int32, len(text)+8)
	for {
		var n C.size_t
		err := call("bitnet_tokenize", func() C.int {
			return C.bitnet_tokenize(m.p, ctext, C.size_t(len(text)), flags,
				(*C.int32_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &n)
		})
		if IsStatus(err, ErrBufferSmall) && int(n) > len(out) {
			out = make([]int32, int(n))
			continue
		}
		if err != nil {
			return nil, err
		}
		return out[:n], nil
	}
}

func detokFlags(special bool) C.uint32_t {
	if special {
		return C.BITNET_DETOK_SPECIAL
	}
	return 0
}

// TokenToPiece returns the raw bytes of one token (possibly part of a
// UTF-8 character).
func (m *Model) TokenToPiece(tok int32, special bool) ([]byte, error) {
	return fillBytes("bitnet_token_to_piece", 64, func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_token_to_piece(m.p, C.int32_t(tok), detokFlags(special), buf, cap, n)
	})
}

// Detokenize returns the bytes of many tokens.
func (m *Model) Detokenize(toks []int32, special bool) ([]byte, error) {
	var tp *C.int32_t
	if len(toks) > 0 {
		tp = (*C.int32_t)(unsafe.Pointer(&toks[0]))
	}
	return fillBytes("bitnet_detokenize", 16*len(toks)+16, func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_detokenize(m.p, tp, C.size_t(len(toks)), detokFlags(special), buf, cap, n)
	})
}

// ChatMessage is one turn of a conversation.
type ChatMessage struct{ Role, Content string }

// chatArgs puts msgs and the template name in C memory; free releases it.
func chatArgs(template string, msgs []ChatMessage) (arr *C.bitnet_chat_message, name *C.char, free func()) {
	n := len(msgs)
	if n == 0 {
		n = 1
	}
	raw := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.bitnet_chat_message{})))
	sl := unsafe.Slice((*C.bitnet_chat_message)(raw), n)
	var cstrs []*C.char
	for i, msg := range msgs {
		r, c := C.CString(msg.Role), C.CString(msg.Content)
		cstrs = append(cstrs, r, c)
		sl[i].role, sl[i].content = r, c
	}
	if template != "" {
		name = C.CString(template)
		cstrs = append(cstrs, name)
	}
	return &sl[0], name, func() {
		for _, s := range cstrs {
			C.free(unsafe.Pointer(s))
		}
		C.free(raw)
	}
}

// ChatRender renders messages with a chat template ("" = the model's own),
// for display. To evaluate a conversation use ChatTokenize, which keeps
// message content plain text.
func (m *Model) ChatRender(template string, msgs []ChatMessage, addAssistant bool) (string, error) {
	arr, name, free := chatArgs(template, msgs)
	defer free()
	add := C.int(0)
	if addAssistant {
		add = 1
	}
	b, err := fillBytes("bitnet_chat_render", 1024, func(buf *C.char, cap C.size_t, nout *C.size_t) C.int {
		return C.bitnet_chat_render(m.p, name, arr, C.size_t(len(msgs)), add, buf, cap, nout)
	})
	return string(b), err
}

// ChatTokenize returns the token ids of a conversation: the template's markup
// becomes control tokens and message content is always plain text, so a
// message cannot forge turns. This is the way to build a chat prompt.
func (m *Model) ChatTokenize(template string, msgs []ChatMessage, addAssistant bool) ([]int32, error) {
	arr, name, free := chatArgs(template, msgs)
	defer free()
	add := C.int(0)
	if addAssistant {
		add = 1
	}
	size := 64
	for _, msg := range msgs {
		size += len(msg.Role) + len(msg.Content)
	}
	out := make([]int32, size)
	for {
		var n C.size_t
		err := call("bitnet_chat_tokenize", func() C.int {
			return C.bitnet_chat_tokenize(m.p, name, arr, C.size_t(len(msgs)), add,
				(*C.int32_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &n)
		})
		if IsStatus(err, ErrBufferSmall) && int(n) > len(out) {
			out = make([]int32, int(n))
			continue
		}
		if err != nil {
			return nil, err
		}
		return out[:n], nil
	}
}

// ---- context ------------------------------------------------------------------

// ContextOptions are context options; zero values mean library defaults.
type ContextOptions struct {
	NContext      int    // KV cache length; 0: the model's, at most 4096
	NThreads      int    // 0: all online CPUs
	NBatch        int    // 0: library default (512)
	CPUMask       uint32 // allowed BITNET_CPU_* bits; 0: all (BITNET_CPU_ALL)
	ReferenceOnly bool   // cpu_mask 0: the plain C reference kernels
	Int8Head      bool

	// Log receives the library's messages about the context at LogLevel
	// (LogError .. LogDebug; 0 = errors only) and below.
	Log      func(level int, msg string)
	LogLevel int
	// Abort is polled between layers during Eval; returning true stops it
	// (ErrAborted; the position is unchanged).
	Abort func() bool
}

// Context is a session (KV cache, scratch memory, worker threads).
type Context struct {
	p     *C.bitnet_context
	model *Model
	cbKey unsafe.Pointer // registered Log/Abort callbacks
	cb    *callbacks
}

// NewContext creates a context on the model.
func (m *Model) NewContext(o ContextOptions) (*Context, error) {
	var p C.bitnet_context_params
	C.bitnet_context_params_init_(&p, C.size_t(unsafe.Sizeof(p)))
	p.struct_size = C.uint32_t(unsafe.Sizeof(p))
	p.n_ctx = C.int32_t(o.NContext)
	p.n_threads = C.int32_t(o.NThreads)
	if o.NBatch != 0 {
		p.n_batch = C.int32_t(o.NBatch)
	}
	if o.ReferenceOnly {
		p.cpu_mask = 0
	} else if o.CPUMask != 0 {
		p.cpu_mask = C.uint32_t(o.CPUMask)
	}
	if o.Int8Head {
		p.flags |= C.BITNET_CONTEXT_INT8_HEAD
	}
	var key unsafe.Pointer
	var cb *callbacks
	if o.Log != nil || o.Abort != nil {
		cb = &callbacks{log: o.Log, abort: o.Abort}
		key = register(cb)
		if o.Log != nil {
			p.log_fn = C.bitnet_log_fn(logTramp)
			p.log_user = key
			p.log_level = C.int32_t(o.LogLevel)
		}
		if o.Abort != nil {
			p.abort_fn = C.bitnet_abort_fn(abortTramp)
			p.abort_user = key
		}
	}
	var out *C.bitnet_context
	err := call("bitnet_context_create", func() C.int {
		return C.bitnet_context_create(&out, m.p, &p)
	})
	if err != nil {
		unregister(key)
		cb.repanic()
		return nil, err
	}
	cb.repanic()
	c := &Context{p: out, model: m, cbKey: key, cb: cb}
	runtime.SetFinalizer(c, (*Context).Close)
	return c, nil
}

// Close frees the context and joins its threads.
func (c *Context) Close() {
	if c.p != nil {
		C.bitnet_context_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	unregister(c.cbKey)
	c.cbKey = nil
}

// Model returns the model the context was created on.
func (c *Context) Model() *Model { return c.model }

func (c *Context) eval(toks []int32, flags C.uint32_t) error {
	var tp *C.int32_t
	if len(toks) > 0 {
		tp = (*C.int32_t)(unsafe.Pointer(&toks[0]))
	}
	err := call("bitnet_context_eval", func() C.int {
		return C.bitnet_context_eval(c.p, tp, C.size_t(len(toks)), flags)
	})
	c.cb.repanic()
	return err
}

// Eval evaluates tokens at the current position and advances it.
func (c *Context) Eval(toks []int32) error { return c.eval(toks, 0) }

// EvalAllLogits is Eval keeping the logits of every token.
func (c *Context) EvalAllLogits(toks []int32) error { return c.eval(toks, C.BITNET_EVAL_ALL_LOGITS) }

// Logits returns a copy of token i's logits (-1: last) from the last eval.
func (c *Context) Logits(i int) ([]float32, error) {
	var p *C.float
	if err := call("bitnet_context_logits", func() C.int {
		return C.bitnet_context_logits(c.p, C.int32_t(i), &p)
	}); err != nil {
		return nil, err
	}
	n := c.model.NVocab()
	out := make([]float32, n)
	copy(out, unsafe.Slice((*float32)(unsafe.Pointer(p)), n))
	return out, nil
}

func (c *Context) Pos() int  { return int(C.bitnet_context_pos(c.p)) }
func (c *Context) NCtx() int { return int(C.bitnet_context_n_ctx(c.p)) }

// Rewind forgets every token at position >= pos.
func (c *Context) Rewind(pos int) error {
	return call("bitnet_context_rewind", func() C.int { return C.bitnet_context_rewind(c.p, C.int32_t(pos)) })
}

// Reset forgets everything.
func (c *Context) Reset() { C.bitnet_context_reset(c.p) }

// SaveState returns the position, KV cache and last logits as a blob.
func (c *Context) SaveState() ([]byte, error) {
	size := C.bitnet_context_state_size(c.p)
	buf := C.malloc(size + 1)
	defer C.free(buf)
	var n C.size_t
	if err := call("bitnet_context_state_save", func() C.int {
		return C.bitnet_context_state_save(c.p, buf, size, &n)
	}); err != nil {
		return nil, err
	}
	return C.GoBytes(buf, C.int(n)), nil
}

// LoadState restores a blob from SaveState.
func (c *Context) LoadState(blob []byte) error {
	if len(blob) == 0 {
		return call("bitnet_context_state_load", func() C.int { return C.bitnet_context_state_load(c.p, nil, 0) })
	}
	return call("bitnet_context_state_load", func() C.int {
		return C.bitnet_context_state_load(c.p, unsafe.Pointer(&blob[0]), C.size_t(len(blob)))
	})
}

// ---- sampler ------------------------------------------------------------------

// SamplerOptions mirror bitnet_sampler_params. Use DefaultSampler() or
// GreedySampler() to start from the library's defaults.
type SamplerOptions struct {
	Temperature      float32
	TopK             int
	TopP             float32
	MinP             float32
	RepeatPenalty    float32
	FrequencyPenalty float32
	PresencePenalty  float32
	PenaltyLastN     int
	Seed             uint64
	LogitBias        map[int32]float32
	// Grammar is GBNF text constraining the output ("" = none); see
	// JSONSchemaToGrammar. With a grammar, Accept fails with ErrGrammar
	// for a token the grammar does not allow.
	Grammar string
	// GrammarRoot names the start rule ("" = "root").
	GrammarRoot string
}

// DefaultSampler returns the library's default sampling options.
func DefaultSampler() SamplerOptions {
	var p C.bitnet_sampler_params
	C.bitnet_sampler_params_init_(&p, C.size_t(unsafe.Sizeof(p)))
	return SamplerOptions{
		Temperature:      float32(p.temperature),
		TopK:             int(p.top_k),
		TopP:             float32(p.top_p),
		MinP:             float32(p.min_p),
		RepeatPenalty:    float32(p.repeat_penalty),
		FrequencyPenalty: float32(p.frequency_penalty),
		PresencePenalty:  float32(p.presence_penalty),
		PenaltyLastN:     int(p.penalty_last_n),
		Seed:             uint64(p.seed),
	}
}

// GreedySampler returns the defaults with temperature 0 (argmax).
func GreedySampler() SamplerOptions {
	o := DefaultSampler()
	o.Temperature = 0
	return o
}

// Sampler turns logits into a token id.
type Sampler struct {
	p     *C.bitnet_sampler
	model *Model
}

// NewSampler creates a sampler for the model's vocabulary.
func (m *Model) NewSampler(o SamplerOptions) (*Sampler, error) {
	var p C.bitnet_sampler_params
	C.bitnet_sampler_params_init_(&p, C.size_t(unsafe.Sizeof(p)))
	p.struct_size = C.uint32_t(unsafe.Sizeof(p))
	p.temperature = C.float(o.Temperature)
	p.top_k = C.int32_t(o.TopK)
	p.top_p = C.float(o.TopP)
	p.min_p = C.float(o.MinP)
	p.repeat_penalty = C.float(o.RepeatPenalty)
	p.frequency_penalty = C.float(o.FrequencyPenalty)
	p.presence_penalty = C.float(o.PresencePenalty)
	p.penalty_last_n = C.int32_t(o.PenaltyLastN)
	p.seed = C.uint64_t(o.Seed)
	if n := len(o.LogitBias); n > 0 {
		// C memory: a Go pointer may not be stored in memory passed to C.
		sz := C.size_t(n) * C.size_t(unsafe.Sizeof(C.bitnet_logit_bias{}))
		raw := C.malloc(sz)
		defer C.free(raw) // copied by bitnet_sampler_create
		arr := unsafe.Slice((*C.bitnet_logit_bias)(raw), n)
		i := 0
		for tok, b := range o.LogitBias {
			arr[i].token, arr[i].bias = C.int32_t(tok), C.float(b)
			i++
		}
		p.logit_bias = (*C.bitnet_logit_bias)(raw)
		p.n_logit_bias = C.size_t(n)
	}
	if o.Grammar != "" {
		g := C.CString(o.Grammar)
		defer C.free(unsafe.Pointer(g)) // compiled by bitnet_sampler_create
		p.grammar = g
	}
	if o.GrammarRoot != "" {
		r := C.CString(o.GrammarRoot)
		defer C.free(unsafe.Pointer(r))
		p.grammar_root = r
	}
	var out *C.bitnet_sampler
	if err := call("bitnet_sampler_create", func() C.int {
		return C.bitnet_sampler_create(&out, m.p, &p)
	}); err != nil {
		return nil, err
	}
	s := &Sampler{p: out, model: m}
	runtime.SetFinalizer(s, (*Sampler).Close)
	return s, nil
}

// Close frees the sampler.
func (s *Sampler) Close() {
	if s.p != nil {
		C.bitnet_sampler_free(s.p)
		s.p = nil
		runtime.SetFinalizer(s, nil)
	}
}

// Sample picks a token from logits i (-1: last) of ctx's last eval; the
// token is not accepted.
func (s *Sampler) Sample(ctx *Context, i int) (int32, error) {
	var tok C.int32_t
	err := call("bitnet_sampler_sample", func() C.int {
		return C.bitnet_sampler_sample(s.p, ctx.p, C.int32_t(i), &tok)
	})
	return int32(tok), err
}

// SampleLogits picks a token from caller logits (length = vocabulary size).
func (s *Sampler) SampleLogits(logits []float32) (int32, error) {
	var tok C.int32_t
	var lp *C.float
	if len(logits) > 0 {
		lp = (*C.float)(unsafe.Pointer(&logits[0]))
	}
	err := call("bitnet_sampler_sample_logits", func() C.int {
		return C.bitnet_sampler_sample_logits(s.p, lp, C.size_t(len(logits)), &tok)
	})
	return int32(tok), err
}

// Accept records a token in the penalty history and advances the grammar.
func (s *Sampler) Accept(tok int32) error {
	return call("bitnet_sampler_accept", func() C.int { return C.bitnet_sampler_accept(s.p, C.int32_t(tok)) })
}

// Reset clears the history and re-seeds.
func (s *Sampler) Reset() { C.bitnet_sampler_reset(s.p) }

// JSONSchemaToGrammar converts a JSON Schema (JSON text) into GBNF grammar
// text for SamplerOptions.Grammar. The schema "{}" gives a grammar for any
// JSON value; a keyword that is not supported gives ErrUnsupported with a
// message naming it.
func JSONSchemaToGrammar(schema string) (string, error) {
	cs := C.CString(schema)
	defer C.free(unsafe.Pointer(cs))
	b, err := fillBytes("bitnet_json_schema_to_grammar", 4096, func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_json_schema_to_grammar(cs, buf, cap, n)
	})
	return string(b), err
}

// ---- streaming detokenizer ----------------------------------------------------------

// Detokenizer turns a token stream into complete UTF-8 text.
type Detokenizer struct {
	p     *C.bitnet_detokenizer
	model *Model
	buf   []byte
}

// NewDetokenizer creates a streaming detokenizer.
func (m *Model) NewDetokenizer(special bool) (*Detokenizer, error) {
	var out *C.bitnet_detokenizer
	if err := call("bitnet_detokenizer_create", func() C.int {
		return C.bitnet_detokenizer_create(&out, m.p, detokFlags(special))
	}); err != nil {
		return nil, err
	}
	d := &Detokenizer{p: out, model: m, buf: make([]byte, 256)}
	runtime.SetFinalizer(d, (*Detokenizer).Close)
	return d, nil
}

// Close frees the detokenizer.
func (d *Detokenizer) Close() {
	if d.p != nil {
		C.bitnet_detokenizer_free(d.p)
		d.p = nil
		runtime.SetFinalizer(d, nil)
	}
}

func (d *Detokenizer) run(name string, f func(buf *C.char, cap C.size_t, n *C.size_t) C.int) (string, error) {
	for {
		var n C.size_t
		err := call(name, func() C.int {
			return f((*C.char)(unsafe.Pointer(&d.buf[0])), C.size_t(len(d.buf)), &n)
		})
		if IsStatus(err, ErrBufferSmall) && int(n) > len(d.buf) {
			d.buf = make([]byte, int(n))
			continue
		}
		if err != nil {
			return "", err
		}
		return string(d.buf[:n]), nil
	}
}

// Feed adds one token and returns the text that is now complete.
func (d *Detokenizer) Feed(tok int32) (string, error) {
	return d.run("bitnet_detokenizer_feed", func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_detokenizer_feed(d.p, C.int32_t(tok), buf, cap, n)
	})
}

// Flush returns what is held back (U+FFFD if incomplete) and resets.
func (d *Detokenizer) Flush() (string, error) {
	return d.run("bitnet_detokenizer_flush", func(buf *C.char, cap C.size_t, n *C.size_t) C.int {
		return C.bitnet_detokenizer_flush(d.p, buf, cap, n)
	})
}

// ---- generation -----------------------------------------------------------------

// Generator streams generated tokens and text, like bufio.Scanner:
//
//	for g.Next() { use(g.Token(), g.Text()) }
//	if err := g.Err(); err != nil { ... }
//
// Each Next samples one token (greedy or not, as the sampler says),
// accepts it and returns true; Text is the UTF-8 text it completed (may be
// ""). Generation stops after n tokens, at an end-of-generation token (not
// returned), or when the context is full. If the detokenizer still holds
// bytes then, one last Next returns true with Token() == -1 and the rest.
type Generator struct {
	ctx       *Context
	smp       *Sampler
	detok     *Detokenizer
	remaining int
	pending   bool
	tok       int32
	text      string
	err       error
	done      bool
}

// Generate evaluates prompt and returns a Generator for up to n tokens.
func Generate(ctx *Context, smp *Sampler, prompt []int32, n int) (*Generator, error) {
	detok, err := ctx.model.NewDetokenizer(false)
	if err != nil {
		return nil, err
	}
	if len(prompt) > 0 {
		if err := ctx.Eval(prompt); err != nil {
			detok.Close()
			return nil, err
		}
	}
	return &Generator{ctx: ctx, smp: smp, detok: detok, remaining: n}, nil
}

func (g *Generator) finish() bool {
	g.done = true
	if g.err == nil {
		tail, err := g.detok.Flush()
		g.err = err
		if err == nil && tail != "" {
			g.tok, g.text = -1, tail
			g.detok.Close()
			return true
		}
	}
	g.detok.Close()
	return false
}

// Next advances to the next token; false at the end or on error.
func (g *Generator) Next() bool {
	if g.done {
		return false
	}
	if g.remaining <= 0 {
		return g.finish()
	}
	if g.pending {
		g.pending = false
		if err := g.ctx.Eval([]int32{g.tok}); err != nil {
			if !IsStatus(err, ErrContextFull) {
				g.err = err
			}
			return g.finish()
		}
	}
	tok, err := g.smp.Sample(g.ctx, -1)
	if err != nil {
		g.err = err
		return g.finish()
	}
	if g.ctx.model.IsEOG(tok) {
		return g.finish()
	}
	if err := g.smp.Accept(tok); err != nil {
		g.err = err
		return g.finish()
	}
	text, err := g.detok.Feed(tok)
	if err != nil {
		g.err = err
		return g.finish()
	}
	g.tok, g.text = tok, text
	g.remaining--
	g.pending = true
	return true
}

// Token is the id produced by the last Next (-1 for the final flush).
func (g *Generator) Token() int32 { return g.tok }

// Text is the complete UTF-8 text released by the last Next.
func (g *Generator) Text() string { return g.text }

// Err is the error that stopped generation, if any.
func (g *Generator) Err() error { return g.err }

// Close releases the generator's detokenizer (Next does it at the end).
func (g *Generator) Close() {
	if !g.done {
		g.done = true
		g.detok.Close()
	}
}

// ---- synthetic models ---------------------------------------------------------------

// SynthOptions select a synthetic model's shape; zero values mean the
// library's defaults (see bitnet_synth_params).
type SynthOptions struct {
	NEmbd, NLayer, NFF, NHead, NHeadKV, NVocab int
	Seed                                       uint64
}

// SynthWrite writes a GGUF model with random ternary weights and a generated
// byte-level vocabulary (for tests and benchmarks).
func SynthWrite(path string, o SynthOptions) error {
	var p C.bitnet_synth_params
	C.bitnet_synth_params_init_(&p, C.size_t(unsafe.Sizeof(p)))
	p.struct_size = C.uint32_t(unsafe.Sizeof(p))
	set := func(dst *C.int32_t, v int) {
		if v != 0 {
			*dst = C.int32_t(v)
		}
	}
	set(&p.n_embd, o.NEmbd)
	set(&p.n_layer, o.NLayer)
	set(&p.n_ff, o.NFF)
	set(&p.n_head, o.NHead)
	set(&p.n_head_kv, o.NHeadKV)
	set(&p.n_vocab, o.NVocab)
	if o.Seed != 0 {
		p.seed = C.uint64_t(o.Seed)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return call("bitnet_synth_write", func() C.int { return C.bitnet_synth_write(cpath, &p) })
}
