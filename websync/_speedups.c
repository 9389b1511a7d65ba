/* Optional C accelerator of websync: XOR masking of frame payloads (RFC 6455 section 5.3),
 * encoding a whole frame and reading a frame header (section 5.2).
 *
 * websync.frames uses it when it was compiled at install and falls back to its pure-Python
 * functions otherwise; both give the same results (tests/test_frames.py runs both).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
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
    {
        /* Let other threads run while a large payload is masked; not worth it for small ones. */
        PyThreadState *state = data.len >= RELEASE_GIL_SIZE ? PyEval_SaveThread() : NULL;
        xor_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len,
                 (const unsigned char *)key.buf);
        if (state != NULL) {
            PyEval_RestoreThread(state);
        }
    }
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
            PyThreadState *state = size >= RELEASE_GIL_SIZE ? PyEval_SaveThread() : NULL;
            xor_mask((const unsigned char *)payload.buf, out + 4, size, (const unsigned char *)key.buf);
            if (state != NULL) {
                PyEval_RestoreThread(state);
            }
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

PyDoc_STRVAR(parse_header_doc,
"parse_header(data, position, /)\n--\n\n"
"The frame header at ``position`` in the bytes-like ``data``: ``(first, second, start, length)``\n"
"with the two first header bytes, where the payload starts (after the mask key, if any) and\n"
"its length; None while the header is incomplete.");

static PyObject *
parse_header(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t position, available, start;
    const unsigned char *bytes;
    unsigned long long length;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_header() takes exactly 2 arguments");
        return NULL;
    }
    position = PyLong_AsSsize_t(args[1]);
    if (position == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (position < 0 || position > data.len) {
        PyErr_SetString(PyExc_ValueError, "position outside the data");
        goto done;
    }
    available = data.len - position;
    bytes = (const unsigned char *)data.buf + position;
    if (available < 2) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    length = bytes[1] & 0x7F;
    start = position + 2;
    if (length == 126) {
        if (available < 4) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        length = ((unsigned long long)bytes[2] << 8) | bytes[3];
        start += 2;
    } else if (length == 127) {
        if (available < 10) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        length = 0;
        for (int j = 0; j < 8; j++) {
            length = (length << 8) | bytes[2 + j];
        }
        start += 8;
    }
    if (bytes[1] & 0x80) {
        start += 4;
    }
    result = Py_BuildValue("(iinK)", bytes[0], bytes[1], start, length);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"encode_frame", (PyCFunction)(void (*)(void))encode_frame, METH_FASTCALL, encode_frame_doc},
    {"parse_header", (PyCFunction)(void (*)(void))parse_header, METH_FASTCALL, parse_header_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "websync._speedups",
    .m_doc = "Optional C accelerator of websync (masking, frame encoding, header parsing).",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
