/* Optional C accelerator of websync: XOR masking of frame payloads (RFC 6455 section 5.3),
 * encoding a whole frame, reading a frame header (section 5.2) and turning a run of plain
 * message frames into Text and Binary values.
 *
 * websync.frames uses it when it was compiled at install and falls back to its pure-Python
 * functions otherwise; both give the same results (tests/core/test_frames.py runs both).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define RELEASE_GIL_SIZE 65536

static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t size, const unsigned char *mask)
{
    Py_ssize_t i = 0;
    uint64_t wide;
    unsigned char pattern[8];

    for (int j = 0; j < 8; j++) {
        pattern[j] = mask[j & 3];
    }
    memcpy(&wide, pattern, 8);
    for (; i + 8 <= size; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, in + i, 8);
        chunk ^= wide;
        memcpy(out + i, &chunk, 8);
    }
    for (; i < size; i++) {
        out[i] = in[i] ^ mask[i & 3];
    }
}

/* xor_mask, letting other threads run while a large payload is masked (not worth it for small ones). */
static void
xor_mask_releasing(const unsigned char *in, unsigned char *out, Py_ssize_t size, const unsigned char *mask)
{
    PyThreadState *state = size >= RELEASE_GIL_SIZE ? PyEval_SaveThread() : NULL;

    xor_mask(in, out, size, mask);
    if (state != NULL) {
        PyEval_RestoreThread(state);
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, key, /)\n--\n\n"
"XOR the bytes-like ``data`` with the 4-byte ``key`` repeated; return bytes.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    xor_mask_releasing((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len,
                       (const unsigned char *)key.buf);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(encode_frame_doc,
"encode_frame(first, payload, key, /)\n--\n\n"
"One frame as bytes: the first header byte ``first`` (flags and opcode), the length, then\n"
"``payload``; masked with the 4-byte ``key`` (mask bit, key, masked payload) unless key is None.");

static PyObject *
encode_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer payload, key = {0};
    PyObject *result = NULL;
    long first;
    int masked;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_frame() takes exactly 3 arguments");
        return NULL;
    }
    first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first header byte out of range");
        return NULL;
    }
    masked = args[2] != Py_None;
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (masked) {
        if (PyObject_GetBuffer(args[2], &key, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&payload);
            return NULL;
        }
        if (key.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
            goto done;
        }
    }
    {
        Py_ssize_t size = payload.len;
        Py_ssize_t header = size < 126 ? 2 : size < 65536 ? 4 : 10;
        unsigned char mask_bit = masked ? 0x80 : 0;
        unsigned char *out;

        result = PyBytes_FromStringAndSize(NULL, header + (masked ? 4 : 0) + size);
        if (result == NULL) {
            goto done;
        }
        out = (unsigned char *)PyBytes_AS_STRING(result);
        out[0] = (unsigned char)first;
        if (header == 2) {
            out[1] = mask_bit | (unsigned char)size;
        } else if (header == 4) {
            out[1] = mask_bit | 126;
            out[2] = (unsigned char)(size >> 8);
            out[3] = (unsigned char)size;
        } else {
            out[1] = mask_bit | 127;
            for (int j = 0; j < 8; j++) {
                out[2 + j] = (unsigned char)((uint64_t)size >> (56 - 8 * j));
            }
        }
        out += header;
        if (masked) {
            memcpy(out, key.buf, 4);
            xor_mask_releasing((const unsigned char *)payload.buf, out + 4, size, (const unsigned char *)key.buf);
        } else {
            memcpy(out, payload.buf, size);
        }
    }
done:
    if (masked) {
        PyBuffer_Release(&key);
    }
    PyBuffer_Release(&payload);
    return result;
}

/* The header at the start of ``bytes`` (``available`` bytes): sets the offset where the payload
 * starts (after the mask key, if any) and its length; returns 0 while the header is incomplete. */
static int
read_header(const unsigned char *bytes, Py_ssize_t available, Py_ssize_t *payload_offset,
            unsigned long long *length)
{
    Py_ssize_t offset = 2;

    if (available < 2) {
        return 0;
    }
    *length = bytes[1] & 0x7F;
    if (*length == 126) {
        if (available < 4) {
            return 0;
        }
        *length = ((unsigned long long)bytes[2] << 8) | bytes[3];
        offset += 2;
    } else if (*length == 127) {
        if (available < 10) {
            return 0;
        }
        *length = 0;
        for (int j = 0; j < 8; j++) {
            *length = (*length << 8) | bytes[2 + j];
        }
        offset += 8;
    }
    *payload_offset = bytes[1] & 0x80 ? offset + 4 : offset;
    return 1;
}

/* Borrow the bytes-like ``data`` argument into ``view`` and read the ``position`` argument, a
 * non-negative index into it; -1 with an exception set (and nothing borrowed) when either is bad. */
static Py_ssize_t
borrow_data(PyObject *data, PyObject *position_argument, Py_buffer *view)
{
    Py_ssize_t position;

    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    position = PyLong_AsSsize_t(position_argument);
    if (position == -1 && PyErr_Occurred()) {
        PyBuffer_Release(view);
        return -1;
    }
    if (position < 0 || position > view->len) {
        PyErr_SetString(PyExc_ValueError, "position outside the data");
        PyBuffer_Release(view);
        return -1;
    }
    return position;
}

PyDoc_STRVAR(parse_header_doc,
"parse_header(data, position, /)\n--\n\n"
"The frame header at ``position`` in the bytes-like ``data``: ``(first, second, start, length)``\n"
"with the two first header bytes, where the payload starts (after the mask key, if any) and\n"
"its length; None while the header is incomplete.");

static PyObject *
parse_header(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t position, payload_offset;
    const unsigned char *bytes;
    unsigned long long length;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_header() takes exactly 2 arguments");
        return NULL;
    }
    position = borrow_data(args[0], args[1], &data);
    if (position < 0) {
        return NULL;
    }
    bytes = (const unsigned char *)data.buf + position;
    if (!read_header(bytes, data.len - position, &payload_offset, &length)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = Py_BuildValue("(iinK)", bytes[0], bytes[1], position + payload_offset, length);
done:
    PyBuffer_Release(&data);
    return result;
}

/* The attribute name "data", interned when the module is created. */
static PyObject *data_name;

/* A new ``type`` value holding ``data``, set as the frozen dataclass's own __init__ sets it
 * (object.__setattr__) without the cost of calling that __init__. */
static PyObject *
new_value(PyObject *type, PyObject *data)
{
    PyObject *value = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);

    if (value != NULL && PyObject_GenericSetAttr(value, data_name, data) < 0) {
        Py_CLEAR(value);
    }
    return value;
}

/* The Text or Binary value of one whole message frame's payload; NULL with no exception set when
 * the text is not valid UTF-8 (the caller's general path reports it). */
static PyObject *
message_value(PyObject *text_type, PyObject *binary_type, const unsigned char *payload, Py_ssize_t size,
              const unsigned char *key, int text)
{
    PyObject *data, *value;

    if (key != NULL) {
        data = PyBytes_FromStringAndSize(NULL, size);
        if (data == NULL) {
            return NULL;
        }
        xor_mask_releasing(payload, (unsigned char *)PyBytes_AS_STRING(data), size, key);
        if (text) {
            Py_SETREF(data, PyUnicode_DecodeUTF8(PyBytes_AS_STRING(data), size, "strict"));
        }
    } else if (text) {
        data = PyUnicode_DecodeUTF8((const char *)payload, size, "strict");
    } else {
        data = PyBytes_FromStringAndSize((const char *)payload, size);
    }
    if (data == NULL) {
        if (text && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
        }
        return NULL;
    }
    value = new_value(text ? text_type : binary_type, data);
    Py_DECREF(data);
    return value;
}

PyDoc_STRVAR(parse_messages_doc,
"parse_messages(text_type, binary_type, data, position, max_size, masked, events, /)\n--\n\n"
"Append to ``events`` a ``text_type`` or ``binary_type`` value for each whole message frame\n"
"from ``position`` in ``data``: final, no RSV bit, text or binary, masked as ``masked`` says,\n"
"at most ``max_size`` bytes (None: any), text in valid UTF-8. Stop at the first frame that is\n"
"not one (or not whole) and return its position: the caller's general path takes it from there.");

static PyObject *
parse_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t position, payload_offset;
    unsigned long long length, max_size = ULLONG_MAX;
    int masked;
    PyObject *text_type, *binary_type, *events, *result = NULL;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "parse_messages() takes exactly 7 arguments");
        return NULL;
    }
    text_type = args[0];
    binary_type = args[1];
    events = args[6];
    if (!PyType_Check(text_type) || !PyType_Check(binary_type) || !PyList_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "parse_messages() takes two types and a list of events");
        return NULL;
    }
    if (args[4] != Py_None) {
        max_size = PyLong_AsUnsignedLongLong(args[4]);
        if (max_size == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    masked = PyObject_IsTrue(args[5]);
    if (masked < 0) {
        return NULL;
    }
    position = borrow_data(args[2], args[3], &data);
    if (position < 0) {
        return NULL;
    }
    for (;;) {
        const unsigned char *bytes = (const unsigned char *)data.buf + position;
        Py_ssize_t available = data.len - position;
        PyObject *value;

        if (!read_header(bytes, available, &payload_offset, &length)) {
            break;
        }
        if ((bytes[0] != 0x81 && bytes[0] != 0x82) || !(bytes[1] & 0x80) != !masked || length > max_size
            || payload_offset > available || length > (unsigned long long)(available - payload_offset)) {
            break;
        }
        value = message_value(text_type, binary_type, bytes + payload_offset, (Py_ssize_t)length,
                              masked ? bytes + payload_offset - 4 : NULL, bytes[0] == 0x81);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            break;
        }
        if (PyList_Append(events, value) < 0) {
            Py_DECREF(value);
            goto done;
        }
        Py_DECREF(value);
        position += payload_offset + (Py_ssize_t)length;
    }
    result = PyLong_FromSsize_t(position);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"encode_frame", (PyCFunction)(void (*)(void))encode_frame, METH_FASTCALL, encode_frame_doc},
    {"parse_header", (PyCFunction)(void (*)(void))parse_header, METH_FASTCALL, parse_header_doc},
    {"parse_messages", (PyCFunction)(void (*)(void))parse_messages, METH_FASTCALL, parse_messages_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "websync._speedups",
    .m_doc = "Optional C accelerator of websync (masking, frame encoding, header and message parsing).",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    data_name = PyUnicode_InternFromString("data");
    if (data_name == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
