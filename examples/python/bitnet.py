"""libbitnet from Python, using only the standard library's ctypes.

The module mirrors include/bitnet.h (ABI version 1): the params structs are
ctypes.Structure copies of the C structs, every exported function gets its
argtypes/restype, and every failing call raises BitnetError carrying the
status code, its bitnet_strerror() text and the bitnet_last_error() message.

Finding the library: the environment variable BITNET_LIBRARY (a path to
libbitnet.so.1 or any file dlopen accepts) wins; otherwise the system loader
is asked for "libbitnet.so.1" (so LD_LIBRARY_PATH and the ld.so cache are
honoured), then ctypes.util.find_library("bitnet").

    import bitnet
    with bitnet.Model("model.gguf") as model:
        ctx = model.context(n_ctx=2048)
        smp = model.sampler(temperature=0.0)
        for text in bitnet.generate(ctx, smp, "Once upon a time", 64):
            print(text, end="", flush=True)

Objects own their C handles and free them on close(), on leaving a `with`
block, or when garbage collected. A Context, Sampler or Detokenizer keeps a
reference to its Model, so the model always outlives them (the C rule).
"""

import ctypes
import ctypes.util
import os
import sys
import weakref
from array import array

__all__ = [
    "ABI_VERSION", "BitnetError", "Model", "Context", "Sampler", "Detokenizer",
    "generate", "generate_tokens", "version", "system_info", "cpu_features",
    "synth_write", "library_path",
]

#: The ABI this module was written for (BITNET_ABI_VERSION in bitnet.h).
ABI_VERSION = 1

# ---- constants (values pinned by the ABI) ----------------------------------

OK = 0
E_INVALID_ARG = -1
E_NOMEM = -2
E_IO = -3
E_FORMAT = -4
E_UNSUPPORTED = -5
E_BUFFER_TOO_SMALL = -6
E_CONTEXT_FULL = -7
E_ABORTED = -8
E_INTERNAL = -9
E_NOT_FOUND = -10
E_STATE = -11
E_GRAMMAR = -12

LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3

CPU_AVX2 = 1 << 0
CPU_AVX_VNNI = 1 << 1
CPU_AVX512 = 1 << 2
CPU_AMX = 1 << 3
CPU_NEON = 1 << 8
CPU_DOTPROD = 1 << 9
CPU_ALL = 0xFFFFFFFF

MODEL_NO_MMAP = 1 << 0
MODEL_VOCAB_ONLY = 1 << 1
MODEL_INT8_HEAD = 1 << 2

PRETOK_AUTO, PRETOK_DEFAULT, PRETOK_LLAMA3, PRETOK_GPT2 = 0, 1, 2, 3
HEAD_AUTO, HEAD_F16, HEAD_INT8, HEAD_Q8_0, HEAD_Q6_K = 0, 1, 2, 3, 4

TOKENIZE_ADD_BOS = 1 << 0
TOKENIZE_PARSE_SPECIAL = 1 << 1
DETOK_SPECIAL = 1 << 0
CONTEXT_INT8_HEAD = 1 << 0
EVAL_ALL_LOGITS = 1 << 0

TYPE_F32, TYPE_F16, TYPE_Q4_0, TYPE_Q8_0 = 0, 1, 2, 8
TYPE_Q6_K, TYPE_BF16, TYPE_TQ1_0, TYPE_TQ2_0, TYPE_I2_S = 14, 30, 34, 35, 36

# ---- C types ----------------------------------------------------------------

_c_int_p = ctypes.POINTER(ctypes.c_int32)
_size_p = ctypes.POINTER(ctypes.c_size_t)
_float_p = ctypes.POINTER(ctypes.c_float)

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_float)
ABORT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("log_fn", LOG_FN),
        ("log_user", ctypes.c_void_p),
        ("log_level", ctypes.c_int32),
        ("pre_tokenizer", ctypes.c_int32),
        ("progress_fn", PROGRESS_FN),
        ("progress_user", ctypes.c_void_p),
        ("head_type", ctypes.c_int32),
    ]


class ContextParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("n_ctx", ctypes.c_int32),
        ("n_threads", ctypes.c_int32),
        ("n_batch", ctypes.c_int32),
        ("cpu_mask", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("log_fn", LOG_FN),
        ("log_user", ctypes.c_void_p),
        ("log_level", ctypes.c_int32),
        ("abort_fn", ABORT_FN),
        ("abort_user", ctypes.c_void_p),
    ]


class LogitBias(ctypes.Structure):
    _fields_ = [("token", ctypes.c_int32), ("bias", ctypes.c_float)]


class SamplerParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
        ("seed", ctypes.c_uint64),
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("repeat_penalty", ctypes.c_float),
        ("frequency_penalty", ctypes.c_float),
        ("presence_penalty", ctypes.c_float),
        ("penalty_last_n", ctypes.c_int32),
        ("logit_bias", ctypes.POINTER(LogitBias)),
        ("n_logit_bias", ctypes.c_size_t),
        ("grammar", ctypes.c_char_p),
        ("grammar_root", ctypes.c_char_p),
    ]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class SynthParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
        ("arch", ctypes.c_char_p),
        ("n_embd", ctypes.c_int32),
        ("n_layer", ctypes.c_int32),
        ("n_ff", ctypes.c_int32),
        ("n_head", ctypes.c_int32),
        ("n_head_kv", ctypes.c_int32),
        ("n_vocab", ctypes.c_int32),
        ("n_ctx_train", ctypes.c_int32),
        ("weight_type", ctypes.c_int32),
        ("embd_type", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("vocab_from", ctypes.c_char_p),
        ("rope_freq_base", ctypes.c_float),
    ]


# ---- loading the library ----------------------------------------------------

def _load():
    tried = []
    path = os.environ.get("BITNET_LIBRARY")
    candidates = [path] if path else []
    if not path:
        candidates.append("libbitnet.so.%d" % ABI_VERSION)
        found = ctypes.util.find_library("bitnet")
        if found:
            candidates.append(found)
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s (%s)" % (name, e))
            continue
        lib.bitnet_abi_version.restype = ctypes.c_int32
        lib.bitnet_abi_version.argtypes = []
        abi = lib.bitnet_abi_version()
        if abi != ABI_VERSION:
            tried.append("%s (ABI %d, this module needs %d)" % (name, abi, ABI_VERSION))
            continue
        return lib, name
    raise OSError("libbitnet not found; set BITNET_LIBRARY to the path of "
                  "libbitnet.so.%d or add its directory to LD_LIBRARY_PATH. Tried: %s"
                  % (ABI_VERSION, "; ".join(tried) or "nothing"))


_lib, library_path = _load()

_M = ctypes.c_void_p   # opaque handles travel as void pointers
_PROTOS = {
    "bitnet_version": (ctypes.c_uint32, []),
    "bitnet_version_string": (ctypes.c_char_p, []),
    "bitnet_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "bitnet_last_error": (ctypes.c_char_p, []),
    "bitnet_cpu_features": (ctypes.c_uint32, []),
    "bitnet_system_info": (ctypes.c_char_p, []),
    "bitnet_model_params_init_": (None, [ctypes.POINTER(ModelParams), ctypes.c_size_t]),
    "bitnet_model_load_file": (ctypes.c_int, [ctypes.POINTER(_M), ctypes.c_char_p,
                                              ctypes.POINTER(ModelParams)]),
    "bitnet_model_load_buffer": (ctypes.c_int, [ctypes.POINTER(_M), ctypes.c_void_p,
                                                ctypes.c_size_t, ctypes.POINTER(ModelParams)]),
    "bitnet_model_free": (None, [_M]),
    "bitnet_model_arch": (ctypes.c_char_p, [_M]),
    "bitnet_model_n_vocab": (ctypes.c_int32, [_M]),
    "bitnet_model_n_ctx_train": (ctypes.c_int32, [_M]),
    "bitnet_model_n_embd": (ctypes.c_int32, [_M]),
    "bitnet_model_n_layer": (ctypes.c_int32, [_M]),
    "bitnet_model_meta": (ctypes.c_int, [_M, ctypes.c_char_p, ctypes.c_char_p,
                                         ctypes.c_size_t, _size_p]),
    "bitnet_tokenize": (ctypes.c_int, [_M, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                       _c_int_p, ctypes.c_size_t, _size_p]),
    "bitnet_token_to_piece": (ctypes.c_int, [_M, ctypes.c_int32, ctypes.c_uint32,
                                             ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "bitnet_detokenize": (ctypes.c_int, [_M, _c_int_p, ctypes.c_size_t, ctypes.c_uint32,
                                         ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "bitnet_token_bos": (ctypes.c_int32, [_M]),
    "bitnet_token_eos": (ctypes.c_int32, [_M]),
    "bitnet_token_eot": (ctypes.c_int32, [_M]),
    "bitnet_token_is_eog": (ctypes.c_int, [_M, ctypes.c_int32]),
    "bitnet_detokenizer_create": (ctypes.c_int, [ctypes.POINTER(_M), _M, ctypes.c_uint32]),
    "bitnet_detokenizer_feed": (ctypes.c_int, [_M, ctypes.c_int32, ctypes.c_char_p,
                                               ctypes.c_size_t, _size_p]),
    "bitnet_detokenizer_flush": (ctypes.c_int, [_M, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "bitnet_detokenizer_free": (None, [_M]),
    "bitnet_context_params_init_": (None, [ctypes.POINTER(ContextParams), ctypes.c_size_t]),
    "bitnet_context_create": (ctypes.c_int, [ctypes.POINTER(_M), _M,
                                             ctypes.POINTER(ContextParams)]),
    "bitnet_context_free": (None, [_M]),
    "bitnet_context_eval": (ctypes.c_int, [_M, _c_int_p, ctypes.c_size_t, ctypes.c_uint32]),
    "bitnet_context_logits": (ctypes.c_int, [_M, ctypes.c_int32, ctypes.POINTER(_float_p)]),
    "bitnet_context_pos": (ctypes.c_int32, [_M]),
    "bitnet_context_n_ctx": (ctypes.c_int32, [_M]),
    "bitnet_context_model": (_M, [_M]),
    "bitnet_context_rewind": (ctypes.c_int, [_M, ctypes.c_int32]),
    "bitnet_context_reset": (None, [_M]),
    "bitnet_context_state_size": (ctypes.c_size_t, [_M]),
    "bitnet_context_state_save": (ctypes.c_int, [_M, ctypes.c_void_p, ctypes.c_size_t, _size_p]),
    "bitnet_context_state_load": (ctypes.c_int, [_M, ctypes.c_void_p, ctypes.c_size_t]),
    "bitnet_sampler_params_init_": (None, [ctypes.POINTER(SamplerParams), ctypes.c_size_t]),
    "bitnet_sampler_create": (ctypes.c_int, [ctypes.POINTER(_M), _M,
                                             ctypes.POINTER(SamplerParams)]),
    "bitnet_sampler_free": (None, [_M]),
    "bitnet_sampler_reset": (None, [_M]),
    "bitnet_sampler_sample": (ctypes.c_int, [_M, _M, ctypes.c_int32, _c_int_p]),
    "bitnet_sampler_sample_logits": (ctypes.c_int, [_M, _float_p, ctypes.c_size_t, _c_int_p]),
    "bitnet_sampler_accept": (ctypes.c_int, [_M, ctypes.c_int32]),
    "bitnet_chat_render": (ctypes.c_int, [_M, ctypes.c_char_p, ctypes.POINTER(ChatMessage),
                                          ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_size_t, _size_p]),
    "bitnet_chat_tokenize": (ctypes.c_int, [_M, ctypes.c_char_p, ctypes.POINTER(ChatMessage),
                                            ctypes.c_size_t, ctypes.c_int, _c_int_p,
                                            ctypes.c_size_t, _size_p]),
    "bitnet_json_schema_to_grammar": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p,
                                                      ctypes.c_size_t, _size_p]),
    "bitnet_synth_params_init_": (None, [ctypes.POINTER(SynthParams), ctypes.c_size_t]),
    "bitnet_synth_write": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(SynthParams)]),
}
for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args
del _name, _res, _args, _f


# ---- errors -----------------------------------------------------------------

class BitnetError(Exception):
    """A libbitnet call failed.

    status    the negative bitnet_status code (e.g. bitnet.E_IO)
    strerror  bitnet_strerror(status), a short fixed description
    message   bitnet_last_error() right after the failure: the details
    function  the name of the C function that failed
    """

    def __init__(self, status, function, message):
        self.status = status
        self.strerror = _lib.bitnet_strerror(status).decode("utf-8", "replace")
        self.message = message
        self.function = function
        text = "%s: %s (%d)" % (function, self.strerror, status)
        if message:
            text += ": " + message
        super().__init__(text)


def _check(status, function):
    if status != OK:
        msg = _lib.bitnet_last_error().decode("utf-8", "replace")
        raise BitnetError(status, function, msg)


def _call(name, *args):
    _check(getattr(_lib, name)(*args), name)


def _to_bytes(text):
    if isinstance(text, str):
        return text.encode("utf-8")
    return bytes(text)


def _grow(name, fill, start):
    """Call a buffer-filling C function, growing the buffer on
    BITNET_E_BUFFER_TOO_SMALL; fill(buf, cap, n_out_ptr) returns a status."""
    cap = start
    n = ctypes.c_size_t(0)
    while True:
        buf = ctypes.create_string_buffer(cap)
        st = fill(buf, cap, ctypes.byref(n))
        if st == E_BUFFER_TOO_SMALL and n.value + 1 > cap:
            cap = n.value + 1
            continue
        _check(st, name)
        return buf.raw[:n.value]


# ---- free functions -----------------------------------------------------------

def version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return _lib.bitnet_version_string().decode()


def system_info():
    return _lib.bitnet_system_info().decode("utf-8", "replace")


def cpu_features():
    return _lib.bitnet_cpu_features()


def json_schema_to_grammar(schema):
    """GBNF grammar text (str) for a JSON Schema given as a str or as a
    dict/list/bool (then serialised with json.dumps). The schema {} gives a
    grammar for any JSON value. Raises BitnetError (E_UNSUPPORTED names the
    keyword that is not supported)."""
    if not isinstance(schema, (str, bytes)):
        import json
        schema = json.dumps(schema)
    s = _to_bytes(schema)
    raw = _grow("bitnet_json_schema_to_grammar",
                lambda b, c, n: _lib.bitnet_json_schema_to_grammar(s, b, c, n), 4096)
    return raw.decode("utf-8")


def synth_write(path, **fields):
    """Write a synthetic model (see bitnet_synth_params); keyword arguments
    name fields, e.g. synth_write("m.gguf", n_embd=128, n_vocab=300)."""
    p = SynthParams()
    _lib.bitnet_synth_params_init_(ctypes.byref(p), ctypes.sizeof(p))
    p.struct_size = ctypes.sizeof(p)
    for k, v in fields.items():
        if k in ("arch", "vocab_from") and isinstance(v, str):
            v = v.encode()
        setattr(p, k, v)
    _call("bitnet_synth_write", os.fsencode(path), ctypes.byref(p))


def _callback_error(holder):
    def wrap(fn):
        def inner(*a):
            try:
                return fn(*a)
            except BaseException as e:  # never let an exception cross C frames
                holder.append(e)
                return 1
        return inner
    return wrap


# ---- owned C objects ------------------------------------------------------------

class _Handle:
    """Owns one C object: close() frees it, as do leaving a `with` block and
    garbage collection. Subclasses name the C destructor and the object."""
    _free_name = None
    _kind = "object"
    _h = None

    def close(self):
        if getattr(self, "_h", None):
            getattr(_lib, self._free_name)(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise ValueError(self._kind + " is closed")
        return self._h


# ---- model --------------------------------------------------------------------

class Model(_Handle):
    """A loaded model: weights, hyperparameters and vocabulary.

    Model(path, vocab_only=False, no_mmap=False, int8_head=False,
          pre_tokenizer=PRETOK_AUTO, head_type=HEAD_AUTO, log=None,
          log_level=LOG_WARN, progress=None)

    head_type chooses the output head's format (HEAD_F16, HEAD_INT8,
    HEAD_Q8_0, HEAD_Q6_K; HEAD_AUTO keeps the file's); docs/api.md.

    log(level, message) receives library messages; progress(fraction)
    is called while loading and may return True to cancel.
    """

    def __init__(self, path=None, *, buffer=None, vocab_only=False, no_mmap=False,
                 int8_head=False, pre_tokenizer=PRETOK_AUTO, head_type=HEAD_AUTO,
                 log=None, log_level=LOG_WARN, progress=None):
        self._h = None
        self._children = weakref.WeakSet()
        p = ModelParams()
        _lib.bitnet_model_params_init_(ctypes.byref(p), ctypes.sizeof(p))
        p.struct_size = ctypes.sizeof(p)
        p.flags = ((MODEL_VOCAB_ONLY if vocab_only else 0) |
                   (MODEL_NO_MMAP if no_mmap else 0) |
                   (MODEL_INT8_HEAD if int8_head else 0))
        p.pre_tokenizer = pre_tokenizer
        p.head_type = head_type
        p.log_level = log_level
        self._log = None
        if log is not None:
            def _log(user, level, msg):
                try:
                    log(level, msg.decode("utf-8", "replace"))
                except BaseException:
                    pass
            self._log = LOG_FN(_log)   # kept alive as long as the model
            p.log_fn = self._log
        errors = []
        prog = None
        if progress is not None:
            prog = PROGRESS_FN(_callback_error(errors)(lambda u, f: 1 if progress(f) else 0))
            p.progress_fn = prog
        h = _M()
        if buffer is not None:
            # The C library borrows the buffer until bitnet_model_free: keep a copy.
            self._buffer = ctypes.create_string_buffer(bytes(buffer), len(buffer))
            st = _lib.bitnet_model_load_buffer(ctypes.byref(h), self._buffer, len(buffer),
                                               ctypes.byref(p))
            name = "bitnet_model_load_buffer"
        else:
            if path is None:
                raise TypeError("Model() needs a path or buffer=")
            st = _lib.bitnet_model_load_file(ctypes.byref(h), os.fsencode(path), ctypes.byref(p))
            name = "bitnet_model_load_file"
        if errors:
            raise errors[0]
        _check(st, name)
        self._h = h.value

    _free_name = "bitnet_model_free"
    _kind = "model"

    # lifecycle
    def close(self):
        """Free the model, after closing every context, sampler and
        detokenizer still open on it (the C library requires that order).
        Without close(), the model lives as long as any of them."""
        if getattr(self, "_h", None):
            for child in list(self._children):
                child.close()
        super().close()

    # metadata
    @property
    def arch(self):
        return _lib.bitnet_model_arch(self.handle).decode("utf-8", "replace")

    @property
    def n_vocab(self):
        return _lib.bitnet_model_n_vocab(self.handle)

    @property
    def n_ctx_train(self):
        return _lib.bitnet_model_n_ctx_train(self.handle)

    @property
    def n_embd(self):
        return _lib.bitnet_model_n_embd(self.handle)

    @property
    def n_layer(self):
        return _lib.bitnet_model_n_layer(self.handle)

    @property
    def bos(self):
        return _lib.bitnet_token_bos(self.handle)

    @property
    def eos(self):
        return _lib.bitnet_token_eos(self.handle)

    @property
    def eot(self):
        return _lib.bitnet_token_eot(self.handle)

    def is_eog(self, token):
        return bool(_lib.bitnet_token_is_eog(self.handle, token))

    def meta(self, key, default=None):
        """A metadata value as text; default when the key does not exist."""
        h, k = self.handle, key.encode()
        try:
            raw = _grow("bitnet_model_meta",
                        lambda b, c, n: _lib.bitnet_model_meta(h, k, b, c, n), 256)
        except BitnetError as e:
            if e.status == E_NOT_FOUND:
                return default
            raise
        return raw.decode("utf-8", "replace")

    # tokenizer
    def tokenize(self, text, add_bos=True, parse_special=False):
        """Token ids (a list of int) for str or bytes text."""
        data = _to_bytes(text)
        flags = ((TOKENIZE_ADD_BOS if add_bos else 0) |
                 (TOKENIZE_PARSE_SPECIAL if parse_special else 0))
        n = ctypes.c_size_t(0)
        cap = len(data) + 8
        while True:
            out = (ctypes.c_int32 * cap)()
            st = _lib.bitnet_tokenize(self.handle, data, len(data), flags, out, cap,
                                      ctypes.byref(n))
            if st == E_BUFFER_TOO_SMALL and n.value > cap:
                cap = n.value
                continue
            _check(st, "bitnet_tokenize")
            return list(out[:n.value])

    def token_to_piece(self, token, special=False):
        """The raw bytes of one token (possibly part of a UTF-8 character)."""
        h, fl = self.handle, DETOK_SPECIAL if special else 0
        return _grow("bitnet_token_to_piece",
                     lambda b, c, n: _lib.bitnet_token_to_piece(h, token, fl, b, c, n), 64)

    def detokenize_bytes(self, tokens, special=False):
        h, fl = self.handle, DETOK_SPECIAL if special else 0
        toks = (ctypes.c_int32 * len(tokens))(*tokens)
        return _grow("bitnet_detokenize",
                     lambda b, c, n: _lib.bitnet_detokenize(h, toks, len(tokens), fl, b, c, n),
                     16 * len(tokens) + 16)

    def detokenize(self, tokens, special=False):
        """Text of many tokens; invalid UTF-8 becomes U+FFFD."""
        return self.detokenize_bytes(tokens, special).decode("utf-8", "replace")

    @staticmethod
    def _chat_messages(messages):
        """A ChatMessage array for [(role, content), ...] or
        [{"role":..., "content":...}], and the bytes it points to."""
        msgs = (ChatMessage * len(messages))()
        keep = []
        for i, m in enumerate(messages):
            role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
            r, c = _to_bytes(role), _to_bytes(content)
            keep += [r, c]
            msgs[i].role, msgs[i].content = r, c
        return msgs, keep

    def chat_render(self, messages, template=None, add_assistant=True):
        """Render [(role, content), ...] or [{"role":..., "content":...}] as
        prompt text (for display; to evaluate a conversation use
        chat_tokenize, which keeps message content plain text)."""
        msgs, keep = self._chat_messages(messages)
        h = self.handle
        name = template.encode() if template else None
        raw = _grow("bitnet_chat_render",
                    lambda b, c, n: _lib.bitnet_chat_render(h, name, msgs, len(messages),
                                                            1 if add_assistant else 0, b, c, n),
                    1024)
        del keep
        return raw.decode("utf-8", "replace")

    def chat_tokenize(self, messages, template=None, add_assistant=True):
        """Token ids of a conversation (messages as for chat_render): the
        template's markup becomes control tokens, message content is always
        plain text, so a message cannot forge turns. This is the way to
        build a chat prompt."""
        msgs, keep = self._chat_messages(messages)
        name = template.encode() if template else None
        add = 1 if add_assistant else 0
        n = ctypes.c_size_t(0)
        cap = 64 + sum(len(k) for k in keep)
        while True:
            out = (ctypes.c_int32 * cap)()
            st = _lib.bitnet_chat_tokenize(self.handle, name, msgs, len(messages), add,
                                           out, cap, ctypes.byref(n))
            if st == E_BUFFER_TOO_SMALL and n.value > cap:
                cap = n.value
                continue
            _check(st, "bitnet_chat_tokenize")
            del keep
            return list(out[:n.value])

    # factories
    def context(self, **kw):
        return Context(self, **kw)

    def sampler(self, **kw):
        return Sampler(self, **kw)

    def detokenizer(self, special=False):
        return Detokenizer(self, special)


# ---- context ------------------------------------------------------------------

class Context(_Handle):
    """A session on a model: KV cache, scratch memory and worker threads.

    Context(model, n_ctx=0, n_threads=0, n_batch=None, cpu_mask=CPU_ALL,
            int8_head=False, log=None, log_level=LOG_WARN, abort=None)

    abort() is polled between layers during eval; return True to stop
    (eval then raises BitnetError with status E_ABORTED).
    Use from one thread at a time.
    """

    def __init__(self, model, *, n_ctx=0, n_threads=0, n_batch=None, cpu_mask=CPU_ALL,
                 int8_head=False, log=None, log_level=LOG_WARN, abort=None):
        self._h = None
        self.model = model       # keeps the model alive while the context lives
        p = ContextParams()
        _lib.bitnet_context_params_init_(ctypes.byref(p), ctypes.sizeof(p))
        p.struct_size = ctypes.sizeof(p)
        p.n_ctx = n_ctx
        p.n_threads = n_threads
        if n_batch is not None:
            p.n_batch = n_batch
        p.cpu_mask = cpu_mask
        p.flags = CONTEXT_INT8_HEAD if int8_head else 0
        p.log_level = log_level
        self._cbs = []
        if log is not None:
            def _log(user, level, msg):
                try:
                    log(level, msg.decode("utf-8", "replace"))
                except BaseException:
                    pass
            cb = LOG_FN(_log)
            self._cbs.append(cb)
            p.log_fn = cb
        self._abort_errors = []
        if abort is not None:
            cb = ABORT_FN(_callback_error(self._abort_errors)(lambda u: 1 if abort() else 0))
            self._cbs.append(cb)
            p.abort_fn = cb
        h = _M()
        _call("bitnet_context_create", ctypes.byref(h), model.handle, ctypes.byref(p))
        self._h = h.value
        model._children.add(self)
        self._n_vocab = model.n_vocab

    _free_name = "bitnet_context_free"
    _kind = "context"

    def eval(self, tokens, all_logits=False):
        """Evaluate token ids at the current position and advance it."""
        n = len(tokens)
        arr = (ctypes.c_int32 * max(n, 1))(*tokens)
        st = _lib.bitnet_context_eval(self.handle, arr, n,
                                      EVAL_ALL_LOGITS if all_logits else 0)
        if self._abort_errors:
            raise self._abort_errors.pop(0)
        _check(st, "bitnet_context_eval")

    def logits(self, i=-1):
        """A copy (array('f') of n_vocab floats) of token i's logits from the
        last eval; -1 is the last token."""
        ptr = _float_p()
        _call("bitnet_context_logits", self.handle, i, ctypes.byref(ptr))
        out = array("f", bytes(self._n_vocab * 4))
        ctypes.memmove(out.buffer_info()[0], ptr, self._n_vocab * 4)
        return out

    @property
    def pos(self):
        return _lib.bitnet_context_pos(self.handle)

    @property
    def n_ctx(self):
        return _lib.bitnet_context_n_ctx(self.handle)

    def rewind(self, pos):
        _call("bitnet_context_rewind", self.handle, pos)

    def reset(self):
        _lib.bitnet_context_reset(self.handle)

    def save_state(self):
        size = _lib.bitnet_context_state_size(self.handle)
        buf = ctypes.create_string_buffer(max(size, 1))
        n = ctypes.c_size_t(0)
        _call("bitnet_context_state_save", self.handle, buf, size, ctypes.byref(n))
        return buf.raw[:n.value]

    def load_state(self, blob):
        data = bytes(blob)
        _call("bitnet_context_state_load", self.handle, data, len(data))


# ---- sampler ------------------------------------------------------------------

class Sampler(_Handle):
    """Turns logits into a token id.

    Sampler(model, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
            repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0,
            penalty_last_n=64, seed=0, logit_bias=None, grammar=None,
            grammar_root=None)

    Omitted arguments keep the library's defaults. temperature 0 is greedy.
    logit_bias is a {token: bias} dict (float("-inf") bans a token).
    grammar is GBNF text (see json_schema_to_grammar() for JSON); with it
    only tokens the grammar allows are sampled, and accept() raises
    BitnetError (E_GRAMMAR) for a token it does not allow.
    """

    _FIELDS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty",
               "frequency_penalty", "presence_penalty", "penalty_last_n", "seed")

    def __init__(self, model, *, logit_bias=None, grammar=None, grammar_root=None, **kw):
        self._h = None
        self.model = model
        p = SamplerParams()
        _lib.bitnet_sampler_params_init_(ctypes.byref(p), ctypes.sizeof(p))
        p.struct_size = ctypes.sizeof(p)
        # compiled by bitnet_sampler_create: the bytes need not outlive it
        p.grammar = None if grammar is None else _to_bytes(grammar)
        p.grammar_root = None if grammar_root is None else _to_bytes(grammar_root)
        for k, v in kw.items():
            if k not in self._FIELDS:
                raise TypeError("unknown sampler parameter %r" % k)
            if v is not None:
                setattr(p, k, v)
        if logit_bias:
            items = list(logit_bias.items())
            bias = (LogitBias * len(items))(*[LogitBias(t, b) for t, b in items])
            p.logit_bias = ctypes.cast(bias, ctypes.POINTER(LogitBias))
            p.n_logit_bias = len(items)   # copied by bitnet_sampler_create
        h = _M()
        _call("bitnet_sampler_create", ctypes.byref(h), model.handle, ctypes.byref(p))
        self._h = h.value
        model._children.add(self)

    _free_name = "bitnet_sampler_free"
    _kind = "sampler"

    def sample(self, ctx, i=-1):
        """A token from ctx's logits of token i of its last eval (not accepted)."""
        tok = ctypes.c_int32(0)
        _call("bitnet_sampler_sample", self.handle, ctx.handle, i, ctypes.byref(tok))
        return tok.value

    def sample_logits(self, logits):
        arr = (ctypes.c_float * len(logits))(*logits)
        tok = ctypes.c_int32(0)
        _call("bitnet_sampler_sample_logits", self.handle, arr, len(logits), ctypes.byref(tok))
        return tok.value

    def accept(self, token):
        _call("bitnet_sampler_accept", self.handle, token)

    def reset(self):
        _lib.bitnet_sampler_reset(self.handle)


# ---- streaming detokenizer -----------------------------------------------------------

class Detokenizer(_Handle):
    """Feed tokens, get back only complete UTF-8 text (str)."""

    def __init__(self, model, special=False):
        self._h = None
        self.model = model
        h = _M()
        _call("bitnet_detokenizer_create", ctypes.byref(h), model.handle,
              DETOK_SPECIAL if special else 0)
        self._h = h.value
        model._children.add(self)
        self._cap = 256
        self._buf = ctypes.create_string_buffer(self._cap)

    _free_name = "bitnet_detokenizer_free"
    _kind = "detokenizer"

    def _run(self, name, call):
        n = ctypes.c_size_t(0)
        while True:
            st = call(self._buf, self._cap, ctypes.byref(n))
            if st == E_BUFFER_TOO_SMALL and n.value > self._cap:
                self._cap = n.value
                self._buf = ctypes.create_string_buffer(self._cap)
                continue
            _check(st, name)
            # The library emits only complete, valid UTF-8.
            return self._buf.raw[:n.value].decode("utf-8", "replace")

    def feed(self, token):
        h = self.handle
        return self._run("bitnet_detokenizer_feed",
                         lambda b, c, n: _lib.bitnet_detokenizer_feed(h, token, b, c, n))

    def flush(self):
        h = self.handle
        return self._run("bitnet_detokenizer_flush",
                         lambda b, c, n: _lib.bitnet_detokenizer_flush(h, b, c, n))


# ---- generation -----------------------------------------------------------------

def generate_tokens(ctx, sampler, prompt, n_predict, add_bos=True, parse_special=True,
                    stop_at_eog=True):
    """Evaluate the prompt (text or a list of ids), then yield up to
    n_predict sampled token ids. Stops early at an end-of-generation token
    (which is not yielded) or when the context is full."""
    model = ctx.model
    ids = model.tokenize(prompt, add_bos, parse_special) if isinstance(prompt, (str, bytes)) \
        else list(prompt)
    if ids:
        ctx.eval(ids)
    for i in range(n_predict):
        tok = sampler.sample(ctx)
        if stop_at_eog and model.is_eog(tok):
            return
        sampler.accept(tok)
        yield tok
        if i + 1 == n_predict:
            return
        try:
            ctx.eval([tok])
        except BitnetError as e:
            if e.status == E_CONTEXT_FULL:
                return
            raise


def generate(ctx, sampler, prompt, n_predict, **kw):
    """Like generate_tokens(), but yields text pieces (str): every piece is
    complete UTF-8; characters split across tokens arrive whole."""
    with Detokenizer(ctx.model) as detok:
        for tok in generate_tokens(ctx, sampler, prompt, n_predict, **kw):
            piece = detok.feed(tok)
            if piece:
                yield piece
        tail = detok.flush()
        if tail:
            yield tail


# ---- layout self-check (used by .ci/bindings.sh) ------------------------------------

def _layout():
    """Sizes and field offsets of the mirrored structs, one per line."""
    lines = []
    for name, cls in (("bitnet_model_params", ModelParams),
                      ("bitnet_context_params", ContextParams),
                      ("bitnet_logit_bias", LogitBias),
                      ("bitnet_sampler_params", SamplerParams),
                      ("bitnet_chat_message", ChatMessage),
                      ("bitnet_synth_params", SynthParams)):
        lines.append("%s size %d" % (name, ctypes.sizeof(cls)))
        for field in cls._fields_:
            lines.append("%s.%s %d" % (name, field[0], getattr(cls, field[0]).offset))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--layout"]:
        print(_layout())
    else:
        print("libbitnet %s from %s" % (version(), library_path))
        print(system_info())
