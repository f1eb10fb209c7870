"""GGUF v2/v3 reading and writing for the trainer: metadata, tensor infos, and tensor data dequantized
to float32 numpy arrays (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, with ggml's block layouts and the
arithmetic of ggml-quants.c's dequantize_row_*), plus a writer for llama.cpp-format LoRA adapters.

Only the standard library and numpy. Every format problem raises GgufError with a message that says
what is wrong (the trainer reports it as an "invalid_model" error event).
"""

import mmap
import os
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 = range(13)
_SCALAR = {
    T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i", T_F32: "<f",
    T_BOOL: "<B", T_U64: "<Q", T_I64: "<q", T_F64: "<d",
}
_NP_SCALAR = {
    T_U8: np.uint8, T_I8: np.int8, T_U16: np.uint16, T_I16: np.int16, T_U32: np.uint32, T_I32: np.int32,
    T_F32: np.float32, T_BOOL: np.uint8, T_U64: np.uint64, T_I64: np.int64, T_F64: np.float64,
}

# ggml tensor types: id -> (name, elements per block, bytes per block).
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K, GGML_BF16 = 0, 1, 2, 8, 12, 14, 30
GGML_TYPES = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22),
    7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36), 10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110),
    12: ("q4_K", 256, 144), 13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 15: ("q8_K", 256, 292),
    16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74), 18: ("iq3_xxs", 256, 98), 19: ("iq1_s", 256, 50),
    20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110), 22: ("iq2_s", 256, 82), 23: ("iq4_xs", 256, 136),
    24: ("i8", 1, 1), 25: ("i16", 1, 2), 26: ("i32", 1, 4), 27: ("i64", 1, 8), 28: ("f64", 1, 8),
    29: ("iq1_m", 256, 56), 30: ("bf16", 1, 2), 34: ("tq1_0", 256, 54), 35: ("tq2_0", 256, 66),
    39: ("mxfp4", 32, 17),
}
DEQUANT_TYPES = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q6_K}

MAX_DIMS = 4
MAX_NAME = 64


class GgufError(Exception):
    pass


def type_name(t):
    return GGML_TYPES[t][0] if t in GGML_TYPES else "type#%d" % t


class TensorInfo:
    __slots__ = ("name", "ne", "type", "offset", "n_bytes")

    def __init__(self, name, ne, typ, offset, n_bytes):
        self.name, self.ne, self.type, self.offset, self.n_bytes = name, ne, typ, offset, n_bytes

    @property
    def shape(self):  # numpy / torch order: the contiguous dimension last
        return tuple(reversed(self.ne))

    def n_elements(self):
        n = 1
        for d in self.ne:
            n *= d
        return n


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def need(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GgufError("file truncated while reading %s (at byte %d of %d)" % (what, self.pos, len(self.buf)))

    def scalar(self, fmt, what):
        n = struct.calcsize(fmt)
        self.need(n, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += n
        return v

    def string(self, what):
        n = self.scalar("<Q", what + " length")
        if n > (1 << 30):
            raise GgufError("%s: string of %d bytes is too long" % (what, n))
        self.need(n, what)
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise GgufError("%s is not valid UTF-8" % what)


class GgufFile:
    """A GGUF file opened read-only (memory-mapped). kv: {key: python value}; tensors: [TensorInfo]."""

    def __init__(self, path):
        self.path = path
        try:
            self._f = open(path, "rb")
        except OSError as e:
            raise GgufError("cannot open %s: %s" % (path, e.strerror))
        size = os.fstat(self._f.fileno()).st_size
        if size < 24:
            self._f.close()
            raise GgufError("%s: file of %d bytes is too small to be GGUF" % (path, size))
        self._map = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
        self.buf = memoryview(self._map)
        self.kv, self.kv_types = {}, {}
        self.tensors, self.by_name = [], {}
        self._parse()

    def close(self):
        self._f.close()
        try:
            self.buf.release()
            self._map.close()
        except BufferError:  # numpy views still alive: the mapping goes when they do
            pass

    def _value(self, c, t, key):
        if t in _SCALAR:
            v = c.scalar(_SCALAR[t], "value of '%s'" % key)
            return bool(v) if t == T_BOOL else v
        if t == T_STRING:
            return c.string("value of '%s'" % key)
        if t == T_ARRAY:
            et = c.scalar("<I", "array type of '%s'" % key)
            n = c.scalar("<Q", "array length of '%s'" % key)
            if et == T_STRING:
                if n > (len(c.buf) - c.pos) // 8:
                    raise GgufError("metadata key '%s': %d strings cannot fit in the file" % (key, n))
                out = []
                for _ in range(n):  # lengths must be walked; only short arrays are decoded
                    ln = c.scalar("<Q", "string in '%s'" % key)
                    c.need(ln, "string in '%s'" % key)
                    if n <= 4096:
                        out.append(bytes(c.buf[c.pos:c.pos + ln]).decode("utf-8", "replace"))
                    c.pos += ln
                return out if n <= 4096 else _LongArray(n)
            if et not in _NP_SCALAR:
                raise GgufError("metadata key '%s': array of unknown element type %d" % (key, et))
            es = np.dtype(_NP_SCALAR[et]).itemsize
            c.need(n * es, "array '%s'" % key)
            arr = np.frombuffer(c.buf, dtype=_NP_SCALAR[et], count=n, offset=c.pos).copy()
            c.pos += n * es
            return arr
        raise GgufError("metadata key '%s' has unknown type %d" % (key, t))

    def _parse(self):
        c = _Cursor(self.buf)
        c.need(4, "magic")
        if bytes(self.buf[:4]) != GGUF_MAGIC:
            raise GgufError("%s is not a GGUF file (bad magic)" % self.path)
        c.pos = 4
        self.version = c.scalar("<I", "version")
        if self.version not in (2, 3):
            raise GgufError("GGUF version %d is not supported (2, 3 are)" % self.version)
        n_tensors = c.scalar("<Q", "tensor count")
        n_kv = c.scalar("<Q", "metadata count")
        if n_tensors > len(self.buf) // 24 or n_kv > len(self.buf) // 12:
            raise GgufError("header counts (%d tensors, %d keys) cannot fit in the file" % (n_tensors, n_kv))
        for _ in range(n_kv):
            key = c.string("metadata key")
            t = c.scalar("<I", "type of '%s'" % key)
            if key in self.kv:
                raise GgufError("duplicate metadata key '%s'" % key)
            self.kv[key] = self._value(c, t, key)
            self.kv_types[key] = t
        self.alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.kv:
            a = self.kv["general.alignment"]
            if self.kv_types["general.alignment"] != T_U32 or a == 0 or (a & (a - 1)) != 0:
                raise GgufError("general.alignment must be a u32 power of two")
            self.alignment = a
        for k in range(n_tensors):
            name = c.string("tensor name")
            if len(name.encode()) >= MAX_NAME:
                raise GgufError("tensor name '%s' is too long" % name)
            nd = c.scalar("<I", "dims of '%s'" % name)
            if nd > MAX_DIMS:
                raise GgufError("tensor '%s' has %d dimensions" % (name, nd))
            ne = [c.scalar("<q", "shape of '%s'" % name) for _ in range(nd)]
            if any(d < 0 for d in ne):
                raise GgufError("tensor '%s' has a negative dimension" % name)
            t = c.scalar("<I", "type of '%s'" % name)
            off = c.scalar("<Q", "offset of '%s'" % name)
            if t not in GGML_TYPES:
                raise GgufError("tensor '%s' has unknown type id %d" % (name, t))
            _, be, bb = GGML_TYPES[t]
            ne = ne + [1] * (MAX_DIMS - nd)
            if ne[0] % be != 0:
                raise GgufError("tensor '%s' row length %d is not a multiple of %s's block %d" % (name, ne[0], type_name(t), be))
            n = ne[0] * ne[1] * ne[2] * ne[3]
            if name in self.by_name:
                raise GgufError("duplicate tensor name '%s'" % name)
            ti = TensorInfo(name, ne[:max(nd, 1)], t, off, n // be * bb)
            self.by_name[name] = ti
            self.tensors.append(ti)
        self.data_offset = (c.pos + self.alignment - 1) // self.alignment * self.alignment
        for ti in self.tensors:
            if ti.offset % self.alignment != 0:
                raise GgufError("tensor '%s' offset %d is not aligned to %d" % (ti.name, ti.offset, self.alignment))
            if self.data_offset + ti.offset + ti.n_bytes > len(self.buf):
                raise GgufError("file truncated: tensor '%s' data [%d, %d) lies past the end of the file (%d bytes)" % (
                    ti.name, self.data_offset + ti.offset, self.data_offset + ti.offset + ti.n_bytes, len(self.buf)))

    # -- metadata accessors (GgufError naming the key when missing or of the wrong type)
    def get(self, key, default=None):
        return self.kv.get(key, default)

    def get_typed(self, key, types, default=KeyError):
        if key not in self.kv:
            if default is KeyError:
                raise GgufError("required metadata key '%s' is missing" % key)
            return default
        if self.kv_types[key] not in types:
            raise GgufError("metadata key '%s' has type %d, expected one of %s" % (key, self.kv_types[key], types))
        return self.kv[key]

    def u32(self, key, default=KeyError):
        return self.get_typed(key, (T_U32,), default)

    def f32(self, key, default=KeyError):
        return self.get_typed(key, (T_F32,), default)

    def string(self, key, default=KeyError):
        return self.get_typed(key, (T_STRING,), default)

    def tensor(self, name):
        return self.by_name.get(name)

    def raw(self, ti):
        start = self.data_offset + ti.offset
        return np.frombuffer(self.buf, dtype=np.uint8, count=ti.n_bytes, offset=start)

    def dequantize(self, ti):
        """The tensor as a float32 numpy array of shape ti.shape (a new array)."""
        if ti.type not in DEQUANT_TYPES:
            raise GgufError("tensor '%s' has type %s; the trainer supports f32, f16, bf16, q8_0, q4_0, q4_K, q6_K" % (
                ti.name, type_name(ti.type)))
        out = dequantize_bytes(self.raw(ti), ti.type, ti.n_elements())
        return out.reshape(ti.shape)


class _LongArray:
    """A long string array (the tokenizer's tokens) that was walked but not decoded: only its length."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def _f16(u8, offset_bytes, stride):
    """fp16 scalars at the start of fixed-size blocks, as float32: [n_blocks]."""
    blocks = u8.reshape(-1, stride)
    return blocks[:, offset_bytes:offset_bytes + 2].copy().view(np.float16).reshape(-1).astype(np.float32)


def dequantize_bytes(u8, typ, n):
    if typ == GGML_F32:
        return u8.view(np.float32)[:n].copy()
    if typ == GGML_F16:
        return u8.view(np.float16)[:n].astype(np.float32)
    if typ == GGML_BF16:
        return (u8.view(np.uint16)[:n].astype(np.uint32) << 16).view(np.float32)
    if typ == GGML_Q8_0:  # {f16 d; int8 qs[32]}: x = d * q
        b = u8.reshape(-1, 34)
        d = _f16(u8, 0, 34)
        q = b[:, 2:].view(np.int8).astype(np.float32)
        return (q * d[:, None]).reshape(-1)
    if typ == GGML_Q4_0:  # {f16 d; u8 qs[16]}: x[j] = ((qs[j] & 15) - 8) d, x[j+16] = ((qs[j] >> 4) - 8) d
        b = u8.reshape(-1, 18)
        d = _f16(u8, 0, 18)
        qs = b[:, 2:]
        q = np.concatenate([(qs & 15).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8], axis=1)
        return (q.astype(np.float32) * d[:, None]).reshape(-1)
    if typ == GGML_Q4_K:  # {f16 d, dmin; u8 scales[12]; u8 qs[128]} per 256
        b = u8.reshape(-1, 144)
        d = _f16(u8, 0, 144)
        dmin = _f16(u8, 2, 144)
        sc = b[:, 4:16].astype(np.uint8)
        qs = b[:, 16:]
        # get_scale_min_k4 for j = 0..7
        scale = np.empty((b.shape[0], 8), np.uint8)
        mins = np.empty((b.shape[0], 8), np.uint8)
        scale[:, :4] = sc[:, 0:4] & 63
        mins[:, :4] = sc[:, 4:8] & 63
        scale[:, 4:] = (sc[:, 8:12] & 0xF) | ((sc[:, 0:4] >> 6) << 4)
        mins[:, 4:] = (sc[:, 8:12] >> 4) | ((sc[:, 4:8] >> 6) << 4)
        d1 = d[:, None] * scale.astype(np.float32)  # [nb, 8] (f32 products as ggml)
        m1 = dmin[:, None] * mins.astype(np.float32)
        q = qs.reshape(-1, 4, 32)  # 4 chunks of 32 bytes: low nibbles -> sub-block 2c, high -> 2c+1
        lo = (q & 15).astype(np.float32)
        hi = (q >> 4).astype(np.float32)
        y = np.empty((b.shape[0], 4, 2, 32), np.float32)
        y[:, :, 0, :] = d1[:, 0::2, None] * lo - m1[:, 0::2, None]
        y[:, :, 1, :] = d1[:, 1::2, None] * hi - m1[:, 1::2, None]
        return y.reshape(-1)
    if typ == GGML_Q6_K:  # {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d} per 256
        b = u8.reshape(-1, 210)
        ql = b[:, 0:128].reshape(-1, 2, 64)
        qh = b[:, 128:192].reshape(-1, 2, 32)
        scl = b[:, 192:208].view(np.int8).astype(np.float32).reshape(-1, 2, 8)
        d = _f16(u8, 208, 210)
        q1 = ((ql[:, :, 0:32] & 0xF) | (((qh >> 0) & 3) << 4)).astype(np.int8) - 32
        q2 = ((ql[:, :, 32:64] & 0xF) | (((qh >> 2) & 3) << 4)).astype(np.int8) - 32
        q3 = ((ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)).astype(np.int8) - 32
        q4 = ((ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4)).astype(np.int8) - 32
        ds = d[:, None, None] * scl  # [nb, 2, 8]: (d * sc[is]) as ggml, then * q
        y = np.empty((b.shape[0], 2, 4, 32), np.float32)
        # is = l // 16: scales is+0 (q1), is+2 (q2), is+4 (q3), is+6 (q4) for l in [0,16) and [16,32)
        for k, qk in enumerate((q1, q2, q3, q4)):
            s = np.repeat(ds[:, :, 2 * k:2 * k + 2], 16, axis=2)  # [nb, 2, 32]
            y[:, :, k, :] = s * qk.astype(np.float32)
        return y.reshape(-1)
    raise GgufError("cannot dequantize type %s" % type_name(typ))


# ---------------------------------------------------------------------------------------------- writer

def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs, tensors, alignment=DEFAULT_ALIGNMENT):
    """Writes a GGUF v3 file atomically (path + ".tmp.<pid>", fsync, rename).

    kvs: list of (key, type, value) with type one of T_STRING, T_F32, T_U32, T_BOOL.
    tensors: list of (name, ggml type F32|F16, numpy array); the numpy array's last axis is ne0.
    """
    head = bytearray()
    head += GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        head += _pack_string(key) + struct.pack("<I", t)
        if t == T_STRING:
            head += _pack_string(v)
        elif t in _SCALAR:
            head += struct.pack(_SCALAR[t], v)
        else:
            raise ValueError("unsupported kv type %d" % t)
    blobs, offset = [], 0
    for name, t, arr in tensors:
        if t == GGML_F32:
            data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        elif t == GGML_F16:
            data = np.ascontiguousarray(arr, dtype=np.float16).tobytes()
        else:
            raise ValueError("unsupported tensor type %d" % t)
        ne = list(reversed(arr.shape))
        head += _pack_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", d) for d in ne)
        head += struct.pack("<IQ", t, offset)
        pad = (-len(data)) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head += b"\0" * ((-len(head)) % alignment)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(head)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
