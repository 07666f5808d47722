# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native (C) interpreters of the Avro programs that `esr.codec.native` compiles from schemas, and the
sink's change-event reader.

Readers and writers here handle the common case and raise on anything else; the pure-Python code (the
reference) then reads or writes the datum, or raises what it raises. The contract: whatever this module
returns, the reference would have returned it too (values equal, bytes identical). So it may refuse more
than the reference does (exotic values, 64-bit overflows, negative enum indexes...), never less.

Every read is bounds-checked against the bytes left and every count is bounded by them, so garbage can
neither crash, spin, nor allocate without limit.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Check, PyDict_CheckExact, PyDict_Next, PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_Append, PyList_CheckExact
from cpython.long cimport PyLong_CheckExact, PyLong_FromLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyObject_IsTrue
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_CheckExact
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy


cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    dict _PyDict_NewPresized(Py_ssize_t size)
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    void* PyUnicode_DATA(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1


class Refused(ValueError):
    """Not the common case (or not valid): the reference code decides."""


# ---------------------------------------------------------------------------------------------- opcodes
# The numbers are part of the program format shared with esr/codec/native.py.
cdef enum:
    R_NULL = 0
    R_BOOL = 1
    R_LONG = 2
    R_FLOAT = 3
    R_DOUBLE = 4
    R_STRING = 5
    R_BYTES = 6
    R_FIXED = 7
    R_ENUM = 8
    R_RECORD = 9
    R_TEXT_RECORD = 10
    R_NULLABLE = 11
    R_UNION = 12
    R_ARRAY = 13
    R_MAP = 14
    R_MEMO_INT = 15
    R_MEMO_LONG = 16
    R_MEMO_BYTES = 17
    R_CALL_BYTES = 18
    R_TEXT_BOOL = 19
    R_TEXT_STR = 20

cdef enum:
    W_NULL = 0
    W_BOOL = 1
    W_LONG = 2
    W_CALL = 3
    W_STRING = 5
    W_BYTES = 6
    W_FIXED = 7
    W_ENUM = 8
    W_RECORD = 9
    W_NULLABLE = 11
    W_UNION = 12
    W_ARRAY = 13
    W_MAP = 14
    W_MEMO = 15

OPCODES = {
    "R_NULL": R_NULL, "R_BOOL": R_BOOL, "R_LONG": R_LONG, "R_FLOAT": R_FLOAT, "R_DOUBLE": R_DOUBLE,
    "R_STRING": R_STRING, "R_BYTES": R_BYTES, "R_FIXED": R_FIXED, "R_ENUM": R_ENUM, "R_RECORD": R_RECORD,
    "R_TEXT_RECORD": R_TEXT_RECORD, "R_NULLABLE": R_NULLABLE, "R_UNION": R_UNION, "R_ARRAY": R_ARRAY,
    "R_MAP": R_MAP, "R_MEMO_INT": R_MEMO_INT, "R_MEMO_LONG": R_MEMO_LONG, "R_MEMO_BYTES": R_MEMO_BYTES,
    "R_CALL_BYTES": R_CALL_BYTES, "R_TEXT_BOOL": R_TEXT_BOOL, "R_TEXT_STR": R_TEXT_STR,
    "W_NULL": W_NULL, "W_BOOL": W_BOOL, "W_LONG": W_LONG, "W_CALL": W_CALL, "W_STRING": W_STRING,
    "W_BYTES": W_BYTES, "W_FIXED": W_FIXED, "W_ENUM": W_ENUM, "W_RECORD": W_RECORD,
    "W_NULLABLE": W_NULLABLE, "W_UNION": W_UNION, "W_ARRAY": W_ARRAY, "W_MAP": W_MAP, "W_MEMO": W_MEMO,
}


cdef inline int refuse(str why) except -1:
    raise Refused(why)


# ---------------------------------------------------------------------------------------------- reading

cdef inline int64_t read_long(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p) except? -1:
    """Zigzag varint at p[0], p advanced past it; refused past the end, or beyond 64 bits."""
    cdef uint64_t acc = 0
    cdef int shift = 0
    cdef unsigned char c
    cdef Py_ssize_t i = p[0]
    while True:
        if i >= n:
            refuse("truncated varint")
        c = b[i]
        i += 1
        if shift == 63 and c > 1:
            refuse("varint beyond 64 bits")
        acc |= (<uint64_t>(c & 0x7F)) << shift
        if c < 0x80:
            p[0] = i
            return <int64_t>(acc >> 1) ^ -(<int64_t>(acc & 1))
        shift += 7
        if shift > 63:
            refuse("varint longer than 10 bytes")


cdef inline Py_ssize_t read_size(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p) except -1:
    """A length: a long, neither negative nor more than the bytes left."""
    cdef int64_t size
    if p[0] < n and (b[p[0]] & 0x81) == 0:  # one byte, not negative
        size = b[p[0]] >> 1
        p[0] += 1
    else:
        size = read_long(b, n, p)
    if size < 0 or size > n - p[0]:
        refuse("impossible length")
    return <Py_ssize_t>size


cdef inline Py_ssize_t read_count(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p) except -1:
    """An array or map block's item count (0: the end); every item takes a byte or more."""
    cdef int64_t count = read_long(b, n, p)
    if count < 0:
        if count < -0x7FFFFFFFFFFFFFFF:  # the most negative long: no positive counterpart
            refuse("impossible count")
        count = -count
        read_size(b, n, p)  # the block's size in bytes, as the reference reads it
    if count > n - p[0]:
        refuse("block count exceeds the bytes left")
    return <Py_ssize_t>count


cdef inline int union_byte(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p) except -1:
    if p[0] >= n:
        refuse("truncated")
    p[0] += 1
    return b[p[0] - 1]


cdef enum:
    SLOT_BITS = 12


cdef class Slots:
    """A direct-mapped cache in front of a memo (keyed by a varint's or a short byte string's bytes as a
    number, or by an int): no key object to build, no dict lookup. It holds what the memo returned (the value
    of a pure function of the key), so it can never disagree with the memo. One per memo, made and kept by
    the memo's owner (esr/codec/reader.py) and given with it in the programs."""
    cdef uint64_t keys[1 << SLOT_BITS]
    cdef PyObject* values[1 << SLOT_BITS]

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(1 << SLOT_BITS):
            Py_XDECREF(self.values[i])


cdef inline Py_ssize_t slot_index(uint64_t key):
    return <Py_ssize_t>((key * <uint64_t>0x9E3779B97F4A7C15) >> (64 - SLOT_BITS))


cdef inline object memo_int(RNode node, int64_t value):
    cdef Slots slots = node.slots
    cdef Py_ssize_t i = slot_index(<uint64_t>value)
    cdef PyObject* found = slots.values[i]
    if found != NULL and slots.keys[i] == <uint64_t>value:
        return <object>found
    result = memo(node.a, node.b, PyLong_FromLongLong(value))
    slot_put(slots, i, <uint64_t>value, result)
    return result


cdef inline object memo_bytes(RNode node, const unsigned char* data, Py_ssize_t size, uint64_t tag):
    """Keyed by the bytes: through the slots when they fit a number (with `tag`, telling lengths apart)."""
    cdef Slots slots = node.slots
    cdef uint64_t key = 0
    cdef Py_ssize_t i
    cdef PyObject* found
    if size > 8 or (tag != 0 and size > 7):
        return memo(node.a, node.b, PyBytes_FromStringAndSize(<const char*>data, size))
    memcpy(&key, data, size)
    key |= tag
    i = slot_index(key)
    found = slots.values[i]
    if found != NULL and slots.keys[i] == key:
        return <object>found
    result = memo(node.a, node.b, PyBytes_FromStringAndSize(<const char*>data, size))
    slot_put(slots, i, key, result)
    return result


cdef inline void slot_put(Slots slots, Py_ssize_t i, uint64_t key, object value):
    Py_XDECREF(slots.values[i])
    Py_INCREF(value)
    slots.values[i] = <PyObject*>value
    slots.keys[i] = key


cdef class RNode:
    """A node of a reader program (see esr/codec/native.py for the tuple form)."""
    cdef int op
    cdef int leaf  # R_NULLABLE: its branch's opcode (for `read_any`)
    cdef Py_ssize_t size
    cdef object a
    cdef object b
    cdef tuple keys
    cdef list children
    cdef Slots slots  # memos

    def __init__(self, tuple program):
        self.op = program[0]
        self.leaf = -1
        self.size = 0
        self.keys = ()
        self.children = []
        op = self.op
        if op == R_FIXED:
            self.size = program[1]
        elif op == R_ENUM:
            self.a = program[1]
            self.size = len(self.a)
        elif op == R_RECORD:
            self.keys = program[1]
            self.children = [RNode(c) for c in program[2]]
        elif op == R_TEXT_RECORD:
            self.a = program[1]
            self.keys = program[2]
            self.children = [RNode(c) for c in program[3]]
        elif op == R_NULLABLE:
            self.size = program[1]  # the branch index of null: 0 or 1
            self.children = [RNode(program[2])]
            self.leaf = (<RNode>self.children[0]).op
        elif op == R_UNION:
            self.children = [RNode(c) for c in program[1]]
            self.size = len(self.children)
        elif op in (R_ARRAY, R_MAP, R_TEXT_STR):
            self.children = [RNode(program[1])]
        elif op in (R_MEMO_INT, R_MEMO_LONG, R_MEMO_BYTES):
            self.a = program[1]  # the memo's cache (a dict)
            self.b = program[2]  # its miss function
            self.slots = program[3]  # the memo's Slots
            if not PyDict_CheckExact(self.a):
                raise TypeError("a memo's cache is a dict")
        elif op == R_CALL_BYTES:
            self.a = program[1]
        elif op not in (R_NULL, R_BOOL, R_LONG, R_FLOAT, R_DOUBLE, R_STRING, R_BYTES, R_TEXT_BOOL):
            raise ValueError(f"unknown reader opcode {op}")
        if len(self.keys) != len(self.children) and op in (R_RECORD, R_TEXT_RECORD):
            raise ValueError("a record needs one key per field")


cdef inline object memo(object cache, object miss, object key):
    cdef PyObject* found = PyDict_GetItemWithError(cache, key)
    if found == NULL:
        return miss(key)
    return <object>found


cdef inline object read_string(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    cdef Py_ssize_t size = read_size(b, n, p)
    result = PyUnicode_DecodeUTF8(<const char*>b + p[0], size, NULL)
    p[0] += size
    return result


cdef enum:
    KEY_BITS = 10


cdef PyObject* KEYS[1 << KEY_BITS]  # map keys as read lately (ASCII str, owned): the same few, again and again


cdef inline object read_key(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    """A map key: a string, from `KEYS` when it was read lately (no decoding, its hash already known)."""
    cdef Py_ssize_t size = read_size(b, n, p)
    cdef const unsigned char* data = b + p[0]
    cdef uint64_t head = 0, tail = 0
    cdef Py_ssize_t i
    cdef PyObject* found
    if size > 64:
        return _decoded(data, size, p)
    memcpy(&head, data, size if size < 8 else 8)
    if size > 8:
        memcpy(&tail, data + size - 8, 8)
    i = <Py_ssize_t>(((head ^ (tail * <uint64_t>0xC2B2AE3D27D4EB4F) ^ <uint64_t>size) * <uint64_t>0x9E3779B97F4A7C15)
                     >> (64 - KEY_BITS))
    found = KEYS[i]
    if (found != NULL and PyUnicode_GET_LENGTH(<object>found) == size
            and memcmp(PyUnicode_DATA(<object>found), data, size) == 0):
        p[0] += size
        return <object>found
    key = _decoded(data, size, p)
    if PyUnicode_IS_COMPACT_ASCII(key):  # its characters are the bytes: comparable as above
        Py_XDECREF(found)
        Py_INCREF(key)
        KEYS[i] = <PyObject*>key
    return key


cdef inline object _decoded(const unsigned char* data, Py_ssize_t size, Py_ssize_t* p):
    result = PyUnicode_DecodeUTF8(<const char*>data, size, NULL)
    p[0] += size
    return result


cdef inline object read_any(RNode node, const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    """`read_value`, the commonest values (strings, nullable strings, longs) without a call."""
    cdef int index
    if node.op == R_STRING:
        return read_string(b, n, p)
    if node.op == R_NULLABLE and node.leaf == R_STRING:
        index = union_byte(b, n, p)
        if index == 2 * node.size:
            return None
        if index != 2 * (1 - node.size):
            refuse("union branch")
        return read_string(b, n, p)
    if node.op == R_LONG:
        return PyLong_FromLongLong(read_long(b, n, p))
    return read_value(node, b, n, p)


cdef object read_value(RNode node, const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    cdef int op = node.op
    cdef Py_ssize_t size, i, count, start
    cdef int64_t value
    cdef int index
    cdef double d
    cdef float f
    cdef RNode child
    cdef object result, key
    if op == R_STRING:
        size = read_size(b, n, p)
        result = PyUnicode_DecodeUTF8(<const char*>b + p[0], size, NULL)
        p[0] += size
        return result
    if op == R_LONG:
        return PyLong_FromLongLong(read_long(b, n, p))
    if op == R_NULLABLE:
        index = union_byte(b, n, p)
        if index == 2 * node.size:
            return None
        if index != 2 * (1 - node.size):
            refuse("union branch")
        return read_value(<RNode>node.children[0], b, n, p)
    if op == R_MEMO_INT:
        value = read_long(b, n, p)
        return memo_int(node, value)
    if op == R_MEMO_LONG:  # keyed by the varint's bytes
        start = p[0]
        read_long(b, n, p)
        return memo_bytes(node, b + start, p[0] - start, 0)
    if op == R_MEMO_BYTES:
        size = read_size(b, n, p)
        p[0] += size
        return memo_bytes(node, b + p[0] - size, size, <uint64_t>size << 56)
    if op == R_ENUM:
        value = read_long(b, n, p)
        if value < 0 or value >= node.size:
            refuse("enum index")
        return (<tuple>node.a)[value]
    if op == R_RECORD:
        result = _PyDict_NewPresized(len(node.children))
        for i in range(len(node.children)):
            PyDict_SetItem(result, (<tuple>node.keys)[i], read_any(<RNode>node.children[i], b, n, p))
        return result
    if op == R_TEXT_RECORD:
        return read_text_record(node, b, n, p)
    if op == R_BOOL:
        return union_byte(b, n, p) != 0
    if op == R_NULL:
        return None
    if op == R_BYTES:
        size = read_size(b, n, p)
        result = PyBytes_FromStringAndSize(<const char*>b + p[0], size)
        p[0] += size
        return result
    if op == R_FIXED:
        if node.size > n - p[0]:
            refuse("truncated")
        result = PyBytes_FromStringAndSize(<const char*>b + p[0], node.size)
        p[0] += node.size
        return result
    if op == R_CALL_BYTES:
        size = read_size(b, n, p)
        key = PyBytes_FromStringAndSize(<const char*>b + p[0], size)
        p[0] += size
        return node.a(key)
    if op == R_UNION:
        value = read_long(b, n, p)
        if value < 0 or value >= node.size:
            refuse("union branch")
        return read_value(<RNode>node.children[value], b, n, p)
    if op == R_ARRAY or op == R_MAP:
        child = <RNode>node.children[0]
        result = [] if op == R_ARRAY else {}
        while True:
            count = read_count(b, n, p)
            if count == 0:
                return result
            for i in range(count):
                if op == R_ARRAY:
                    PyList_Append(result, read_any(child, b, n, p))
                else:
                    PyDict_SetItem(result, read_key(b, n, p), read_any(child, b, n, p))
    if op == R_FLOAT:
        if 4 > n - p[0]:
            refuse("truncated")
        memcpy(&f, b + p[0], 4)  # little-endian only: native.py checks
        p[0] += 4
        return PyFloat_FromDouble(f)
    if op == R_DOUBLE:
        if 8 > n - p[0]:
            refuse("truncated")
        memcpy(&d, b + p[0], 8)
        p[0] += 8
        return PyFloat_FromDouble(d)
    if op == R_TEXT_BOOL:
        return "true" if union_byte(b, n, p) != 0 else "false"
    if op == R_TEXT_STR:
        return str(read_value(<RNode>node.children[0], b, n, p))
    refuse("unknown opcode")


cdef object read_text_record(RNode node, const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    """The non-null fields as text: a field is a value node, or R_NULLABLE around one."""
    cdef object d = node.a()
    cdef Py_ssize_t i
    cdef RNode child
    cdef int index
    for i in range(len(node.children)):
        child = <RNode>node.children[i]
        if child.op == R_NULLABLE:
            index = union_byte(b, n, p)
            if index == 2 * (1 - child.size):
                PyDict_SetItem(d, (<tuple>node.keys)[i], read_any(<RNode>child.children[0], b, n, p))
            elif index != 2 * child.size:
                refuse("union branch")
        else:
            PyDict_SetItem(d, (<tuple>node.keys)[i], read_any(child, b, n, p))
    return d


cdef class Reader:
    """`Reader(program, reference)(data, offset)`: the record encoded in data[offset:], read natively, or
    by `reference(data, offset)` (which raises what it raises) when the native code refuses the bytes."""
    cdef RNode root
    cdef readonly object reference
    cdef bytes header

    def __init__(self, tuple program, reference, bytes header=b""):
        self.root = RNode(program)
        self.reference = reference
        self.header = header

    def decode(self, data):
        """The record after `header` (the constructor's) in `data`, natively; `Refused` when `data` does not
        start with it, or when the native reading refuses the rest (the caller decides what follows)."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(self.header)
        if (not PyBytes_CheckExact(data) or PyBytes_GET_SIZE(data) < size
                or memcmp(PyBytes_AS_STRING(data), PyBytes_AS_STRING(self.header), size) != 0):
            refuse("not this reader's header")
        return self.native(data, size)

    def __call__(self, data, Py_ssize_t offset):
        try:
            return self.native(data, offset)
        except Exception:
            return self.reference(data, offset)

    def read(self, data, Py_ssize_t offset):
        """The native reading alone: `Refused` (or what a memo's conversion raises) when the bytes are not
        a valid record of the program."""
        return self.native(data, offset)

    cdef object native(self, data, Py_ssize_t offset):
        if not PyBytes_CheckExact(data):
            refuse("not bytes")
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t p = offset
        if p < 0 or p > n:
            refuse("offset")
        result = read_value(self.root, <const unsigned char*>PyBytes_AS_STRING(data), n, &p)
        if p != n:
            refuse("bytes after the record")
        return result


# ---------------------------------------------------------------------------------------------- writing

cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef int buf_reserve(Buf* buf, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap
    cdef char* grown
    if buf.size + extra <= buf.cap:
        return 0
    cap = buf.cap * 2 if buf.cap >= 512 else 1024
    if cap < buf.size + extra:
        cap = buf.size + extra
    grown = <char*>PyMem_Realloc(buf.data, cap)
    if grown == NULL:
        raise MemoryError()
    buf.data = grown
    buf.cap = cap
    return 0


cdef inline int buf_write(Buf* buf, const char* data, Py_ssize_t size) except -1:
    if buf.size + size > buf.cap:
        buf_reserve(buf, size)
    memcpy(buf.data + buf.size, data, size)
    buf.size += size
    return 0


cdef inline int buf_byte(Buf* buf, char c) except -1:
    if buf.size + 1 > buf.cap:
        buf_reserve(buf, 1)
    buf.data[buf.size] = c
    buf.size += 1
    return 0


cdef inline int buf_varint(Buf* buf, uint64_t z) except -1:
    if buf.size + 10 > buf.cap:
        buf_reserve(buf, 10)
    while z > 0x7F:
        buf.data[buf.size] = <char>((z & 0x7F) | 0x80)
        buf.size += 1
        z >>= 7
    buf.data[buf.size] = <char>z
    buf.size += 1
    return 0


cdef inline int buf_long(Buf* buf, int64_t v) except -1:
    return buf_varint(buf, (<uint64_t>v << 1) ^ <uint64_t>(v >> 63))


cdef inline int buf_bytes(Buf* buf, object data) except -1:
    """Bytes (exactly) as they are: what memos and callbacks return."""
    if not PyBytes_CheckExact(data):
        refuse("not bytes")
    return buf_write(buf, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef inline int buf_string(Buf* buf, object s) except -1:
    """A str (exactly: a subclass may encode otherwise) as its length and UTF-8 bytes."""
    cdef Py_ssize_t size
    cdef const char* data
    if not PyUnicode_CheckExact(s):
        refuse("not a str")
    if PyUnicode_IS_COMPACT_ASCII(s):  # its characters are its UTF-8 bytes
        data = <const char*>PyUnicode_DATA(s)
        size = PyUnicode_GET_LENGTH(s)
    else:
        data = PyUnicode_AsUTF8AndSize(s, &size)
    if buf.size + size + 10 > buf.cap:
        buf_reserve(buf, size + 10)
    if size < 64:  # the length in one byte
        buf.data[buf.size] = <char>(size << 1)
        buf.size += 1
    else:
        buf_long(buf, size)
    memcpy(buf.data + buf.size, data, size)
    buf.size += size
    return 0


cdef class WNode:
    """A node of a writer program (see esr/codec/native.py for the tuple form)."""
    cdef int op
    cdef int leaf  # W_NULLABLE: its branch's opcode (for `write_any`)
    cdef Py_ssize_t size
    cdef object a
    cdef object b
    cdef bytes index  # R_NULLABLE: the branch index written before the value (b"" if the value has it)
    cdef bytes null  # the null branch's index
    cdef tuple keys
    cdef list children
    cdef Slots slots  # memos

    def __init__(self, tuple program):
        self.op = program[0]
        self.leaf = -1
        self.keys = ()
        self.children = []
        self.index = b""
        self.null = b""
        op = self.op
        if op == W_FIXED:
            self.size = program[1]
        elif op == W_ENUM:
            self.a = program[1]  # symbol -> its encoding
            if not PyDict_CheckExact(self.a):
                raise TypeError("an enum's table is a dict")
        elif op == W_RECORD:
            self.keys = program[1]
            self.children = [WNode(c) for c in program[2]]
            if len(self.keys) != len(self.children):
                raise ValueError("a record needs one key per field")
        elif op == W_NULLABLE:
            self.null = program[1]
            self.index = program[2]
            self.children = [WNode(program[3])]
            self.leaf = (<WNode>self.children[0]).op
        elif op == W_UNION:  # (op, null index or None, {branch name: (index bytes, program)})
            self.null = program[1]
            self.size = program[1] is not None
            self.a = {name: (index, WNode(branch)) for name, (index, branch) in program[2].items()}
        elif op in (W_ARRAY, W_MAP):
            self.children = [WNode(program[1])]
        elif op == W_MEMO:
            self.a = program[1]
            self.b = program[2]
            if not PyDict_CheckExact(self.a):
                raise TypeError("a memo's cache is a dict")
        elif op == W_CALL:
            self.a = program[1]
        elif op not in (W_NULL, W_BOOL, W_LONG, W_STRING, W_BYTES):
            raise ValueError(f"unknown writer opcode {op}")


#: the mapping methods the reference writer may call on a record or map (`.get`, `.items`, ...)
cdef tuple DICT_METHODS = ("__getitem__", "__iter__", "__len__", "__contains__", "get", "items", "keys", "values")
cdef dict PLAIN_DICT_TYPES = {}  # dict subclass -> whether it overrides none of them


cdef inline bint plain_dict(object v):
    """A dict, or an instance of a dict subclass that overrides none of `DICT_METHODS` (`reader.TextRecord`,
    the worker's maps): its items are the dict's own, so it is written as a dict."""
    if PyDict_CheckExact(v):
        return True
    if not PyDict_Check(v):
        return False
    kind = type(v)
    found = PLAIN_DICT_TYPES.get(kind)
    if found is None:
        found = PLAIN_DICT_TYPES[kind] = all(getattr(kind, name) is getattr(dict, name) for name in DICT_METHODS)
    return found


cdef inline int write_any(WNode node, object v, Buf* buf) except -1:
    """`write_value`, the commonest values (strings, nullable strings) without a call."""
    if node.op == W_STRING:
        return buf_string(buf, v)
    if node.op == W_NULLABLE and node.leaf == W_STRING:
        if v is None:
            return buf_write(buf, PyBytes_AS_STRING(node.null), PyBytes_GET_SIZE(node.null))
        buf_write(buf, PyBytes_AS_STRING(node.index), PyBytes_GET_SIZE(node.index))
        return buf_string(buf, v)
    return write_value(node, v, buf)


cdef int write_value(WNode node, object v, Buf* buf) except -1:
    cdef int op = node.op
    cdef int overflow
    cdef long long number
    cdef Py_ssize_t i, count, pos
    cdef PyObject* found
    cdef PyObject* key
    cdef PyObject* item
    cdef WNode child
    cdef object value, field
    cdef bint in_order
    if op == W_STRING:
        return buf_string(buf, v)
    if op == W_NULLABLE:
        if v is None:
            return buf_write(buf, PyBytes_AS_STRING(node.null), PyBytes_GET_SIZE(node.null))
        buf_write(buf, PyBytes_AS_STRING(node.index), PyBytes_GET_SIZE(node.index))
        return write_value(<WNode>node.children[0], v, buf)
    if op == W_MEMO:
        found = PyDict_GetItemWithError(node.a, v)
        if found != NULL:
            return buf_bytes(buf, <object>found)
        return buf_bytes(buf, node.b(v))
    if op == W_LONG:
        if not PyLong_CheckExact(v):
            refuse("not an int")
        number = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            refuse("beyond a long")
        return buf_long(buf, number)
    if op == W_RECORD:
        if not plain_dict(v):
            refuse("a record is a dict")
        pos = 0
        in_order = True  # while the dict's keys are the fields' own str objects, in order: no lookups
        for i in range(len(node.children)):
            field = (<tuple>node.keys)[i]
            if in_order and PyDict_Next(v, &pos, &key, &item) and key == <PyObject*>field:
                found = item
            else:
                in_order = False
                found = PyDict_GetItemWithError(v, field)
                if found == NULL:
                    refuse("a field is missing")
            value = <object>found  # a reference held while the value is written
            write_any(<WNode>node.children[i], value, buf)
        return 0
    if op == W_ENUM:
        found = PyDict_GetItemWithError(node.a, v)
        if found == NULL:
            refuse("not a symbol")
        return buf_bytes(buf, <object>found)
    if op == W_ARRAY:
        if not (PyList_CheckExact(v) or PyTuple_CheckExact(v)):
            refuse("an array is a list")
        count = len(v)
        if count:
            buf_long(buf, count)
            child = <WNode>node.children[0]
            for i in range(count):
                if len(v) != count:
                    refuse("the list changed")
                write_any(child, v[i], buf)
        return buf_byte(buf, 0)
    if op == W_MAP:
        if not plain_dict(v):
            refuse("a map is a dict")
        count = len(v)
        if count:
            buf_long(buf, count)
            child = <WNode>node.children[0]
            pos = 0
            i = 0
            while PyDict_Next(v, &pos, &key, &item):
                i += 1
                value = <object>item  # a reference held while the value is written
                buf_string(buf, <object>key)
                write_any(child, value, buf)
            if i != count or len(v) != count:
                refuse("the dict changed")
        return buf_byte(buf, 0)
    if op == W_BOOL:
        return buf_byte(buf, 1 if PyObject_IsTrue(v) else 0)
    if op == W_NULL:
        if v is not None:
            refuse("not None")
        return 0
    if op == W_UNION:
        if v is None and node.size:
            return buf_write(buf, PyBytes_AS_STRING(node.null), PyBytes_GET_SIZE(node.null))
        if not PyTuple_CheckExact(v) or len(v) != 2:
            refuse("a union value is a (branch name, value) tuple")
        found = PyDict_GetItemWithError(node.a, v[0])
        if found == NULL:
            refuse("not a branch name")
        branch = <tuple>found
        buf_bytes(buf, branch[0])
        return write_value(<WNode>branch[1], v[1], buf)
    if op == W_BYTES:
        if not PyBytes_CheckExact(v):
            refuse("not bytes")
        buf_long(buf, PyBytes_GET_SIZE(v))
        return buf_bytes(buf, v)
    if op == W_FIXED:
        if not PyBytes_CheckExact(v) or PyBytes_GET_SIZE(v) != node.size:
            refuse("not bytes of the fixed size")
        return buf_bytes(buf, v)
    if op == W_CALL:
        return buf_bytes(buf, node.a(v))
    refuse("unknown opcode")


cdef class Writer:
    """`Writer(program, prefix, reference)(datum)`: prefix + the datum's Avro encoding, written natively,
    or by `reference(datum)` (which raises what it raises) when the native code refuses the datum."""
    cdef WNode root
    cdef bytes prefix
    cdef readonly object reference
    cdef Buf spare  # kept from call to call (no allocation), unless a call is under way (a memo may re-enter)
    cdef bint busy

    def __init__(self, tuple program, bytes prefix, reference):
        self.root = WNode(program)
        self.prefix = prefix
        self.reference = reference

    def __dealloc__(self):
        PyMem_Free(self.spare.data)

    def __call__(self, datum):
        try:
            return self.native(datum)
        except Exception:
            return self.reference(datum)

    def write(self, datum):
        """The native writing alone: `Refused` (or another exception) when the datum is not the common
        case the program writes."""
        return self.native(datum)

    cdef object native(self, datum):
        cdef Buf buf
        cdef bint own = not self.busy
        if own:
            buf = self.spare
            self.busy = True
        else:
            buf.data = NULL
            buf.cap = 0
        buf.size = 0
        try:
            buf_bytes(&buf, self.prefix)
            write_value(self.root, datum, &buf)
            return PyBytes_FromStringAndSize(buf.data, buf.size)
        finally:
            if own:
                if buf.cap > 1 << 16:  # an outsized datum: not kept
                    PyMem_Free(buf.data)
                    buf.data = NULL
                    buf.cap = 0
                self.spare = buf
                self.busy = False
            else:
                PyMem_Free(buf.data)


# ---------------------------------------------------------------------------------------------- the sink

cdef RNode AFTER = RNode((R_MAP, (R_NULLABLE, 0, (R_STRING,))))  # map of [null, string]


cdef unsigned char ESCAPED[256]  # the bytes json.encoder.encode_basestring escapes: controls, quote, backslash
for _c in range(256):
    ESCAPED[_c] = _c < 0x20 or _c == 0x22 or _c == 0x5C


cdef inline int json_string(Buf* buf, const unsigned char* b, Py_ssize_t size) except -1:
    """A JSON string of UTF-8 bytes, escaped as json.encoder.encode_basestring escapes the decoded text
    (only ASCII characters are escaped, so escaping the bytes is the same); validated by the caller's final
    decode."""
    cdef Py_ssize_t i
    cdef unsigned char c
    cdef const char* hexdigits = "0123456789abcdef"
    if buf.size + size * 6 + 2 > buf.cap:
        buf_reserve(buf, size * 6 + 2)  # the worst case: every byte a control character
    buf.data[buf.size] = b'"'
    buf.size += 1
    i = 0
    while i < size and not ESCAPED[b[i]]:
        i += 1
    memcpy(buf.data + buf.size, b, i)  # the common case: all of it
    buf.size += i
    for i in range(i, size):
        c = b[i]
        if not ESCAPED[c]:
            buf.data[buf.size] = <char>c
            buf.size += 1
            continue
        buf.data[buf.size] = b'\\'
        if c == b'"' or c == b'\\':
            buf.data[buf.size + 1] = <char>c
        elif c == b'\n':
            buf.data[buf.size + 1] = b'n'
        elif c == b'\r':
            buf.data[buf.size + 1] = b'r'
        elif c == b'\t':
            buf.data[buf.size + 1] = b't'
        elif c == 0x08:
            buf.data[buf.size + 1] = b'b'
        elif c == 0x0C:
            buf.data[buf.size + 1] = b'f'
        else:
            memcpy(buf.data + buf.size + 1, b"u00", 3)
            buf.data[buf.size + 4] = hexdigits[c >> 4]
            buf.data[buf.size + 5] = hexdigits[c & 0xF]
            buf.size += 4
        buf.size += 2
    buf.data[buf.size] = b'"'
    buf.size += 1
    return 0


cdef inline int json_optional(Buf* buf, const unsigned char* b, Py_ssize_t n, Py_ssize_t* p) except -1:
    """A [null, string] union as JSON: null, or the string."""
    cdef int index = union_byte(b, n, p)
    cdef Py_ssize_t size
    if index == 0:
        return buf_write(buf, "null", 4)
    if index != 2:
        refuse("union branch")
    size = read_size(b, n, p)
    json_string(buf, b + p[0], size)
    p[0] += size
    return 0


cdef inline object optional_string(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    cdef int index = union_byte(b, n, p)
    if index == 0:
        return None
    if index != 2:
        refuse("union branch")
    return read_string(b, n, p)


cdef inline object optional_long(const unsigned char* b, Py_ssize_t n, Py_ssize_t* p):
    cdef int index = union_byte(b, n, p)
    if index == 0:
        return None
    if index != 2:
        refuse("union branch")
    return PyLong_FromLongLong(read_long(b, n, p))


cdef inline object symbol(tuple symbols, int64_t index):
    if index < 0 or index >= len(symbols):
        refuse("enum index")
    return symbols[index]



cdef Buf JSON_SPARE  # read_change's buffer, kept from call to call, unless a call is under way
JSON_SPARE.data = NULL
JSON_SPARE.cap = 0
cdef bint JSON_BUSY = False


def read_change(
    tuple event_types, tuple ops, tuple entity_types, tuple extract_types, dict dates, date_of, dict run_dates,
    run_date_of, json_text, data, Py_ssize_t offset,
):
    """The body of connectors/sink/fastread.py's FastChangeReader._read (which see), natively: `changes`
    as JSON text (`json_text(str)`), `before` skipped. `dates` and `run_dates` are the reader's memos (by
    days, by milliseconds), `date_of` and `run_date_of` what fills them."""
    global JSON_SPARE, JSON_BUSY
    if not PyBytes_CheckExact(data):
        refuse("not bytes")
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t p = offset
    cdef Py_ssize_t count, i, size
    cdef int index
    cdef bint first = True
    cdef Buf buf
    if p < 0 or p > n:
        refuse("offset")
    event_id = read_string(b, n, &p)
    event_type = symbol(event_types, read_long(b, n, &p))
    op = symbol(ops, read_long(b, n, &p))
    entity_type = symbol(entity_types, read_long(b, n, &p))
    entity_id = read_string(b, n, &p)
    vpd = read_string(b, n, &p)
    person_id = optional_string(b, n, &p)
    employee_number = optional_string(b, n, &p)

    cdef bint own = not JSON_BUSY
    if own:
        buf = JSON_SPARE
        JSON_BUSY = True
    else:
        buf.data = NULL
        buf.cap = 0
    buf.size = 0
    try:
        buf_byte(&buf, b'[')
        while True:
            count = read_count(b, n, &p)
            if count == 0:
                break
            for i in range(count):
                if not first:
                    buf_byte(&buf, b',')
                first = False
                buf_write(&buf, '{"field":', 9)
                size = read_size(b, n, &p)
                json_string(&buf, b + p, size)
                p += size
                buf_write(&buf, ',"old":', 7)
                json_optional(&buf, b, n, &p)
                buf_write(&buf, ',"new":', 7)
                json_optional(&buf, b, n, &p)
                buf_byte(&buf, b'}')
        buf_byte(&buf, b']')
        changes = json_text(PyUnicode_DecodeUTF8(buf.data, buf.size, NULL))
    finally:
        if own:
            if buf.cap > 1 << 16:  # an outsized event: not kept
                PyMem_Free(buf.data)
                buf.data = NULL
                buf.cap = 0
            JSON_SPARE = buf
            JSON_BUSY = False
        else:
            PyMem_Free(buf.data)

    index = union_byte(b, n, &p)  # before: skipped (its strings unchecked, as the reference skips them)
    if index == 2:
        while True:
            count = read_count(b, n, &p)
            if count == 0:
                break
            for i in range(count):
                p += read_size(b, n, &p)
                index = union_byte(b, n, &p)
                if index == 2:
                    p += read_size(b, n, &p)
                elif index != 0:
                    refuse("union branch")
    elif index != 0:
        refuse("union branch")

    after = None
    index = union_byte(b, n, &p)
    if index == 2:
        after = read_value(AFTER, b, n, &p)
    elif index != 0:
        refuse("union branch")

    effective_date = optional_long(b, n, &p)
    if effective_date is not None:
        effective_date = memo(dates, date_of, effective_date)
    file_name = read_string(b, n, &p)
    file_sha256 = read_string(b, n, &p)
    sequence = optional_long(b, n, &p)
    extract_type = optional_long(b, n, &p)
    if extract_type is not None:
        extract_type = symbol(extract_types, extract_type)
    run_date = optional_long(b, n, &p)
    if run_date is not None:
        run_date = memo(run_dates, run_date_of, run_date)
    record_code = optional_string(b, n, &p)
    line_no = optional_long(b, n, &p)
    topic = optional_string(b, n, &p)
    partition = optional_long(b, n, &p)
    offset_ = optional_long(b, n, &p)
    ts_ms = PyLong_FromLongLong(read_long(b, n, &p))
    if p != n:
        refuse("bytes after the record")
    return {
        "event_id": event_id, "event_type": event_type, "op": op, "entity_type": entity_type,
        "entity_id": entity_id, "vpd": vpd, "person_id": person_id, "employee_number": employee_number,
        "changes": changes, "before": None, "after": after, "effective_date": effective_date,
        "source": {
            "file_name": file_name, "file_sha256": file_sha256, "sequence": sequence,
            "extract_type": extract_type, "run_date": run_date, "record_code": record_code,
            "line_no": line_no, "topic": topic, "partition": partition, "offset": offset_,
        },
        "ts_ms": ts_ms,
    }

