/* Optional C accelerator of websync: XOR masking of frame payloads (RFC 6455 section 5.3).
 *
 * websync.frames uses it when it was compiled at install and falls back to its pure-Python
 * apply_mask otherwise; both give the same bytes.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RELEASE_GIL_SIZE 65536

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
        const unsigned char *in = (const unsigned char *)data.buf;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        const unsigned char *mask = (const unsigned char *)key.buf;
        Py_ssize_t size = data.len, i = 0;
        uint64_t wide;
        unsigned char pattern[8];

        for (int j = 0; j < 8; j++) {
            pattern[j] = mask[j & 3];
        }
        memcpy(&wide, pattern, 8);
        /* Let other threads run while a large payload is masked; not worth it for small ones. */
        PyThreadState *state = size >= RELEASE_GIL_SIZE ? PyEval_SaveThread() : NULL;
        for (; i + 8 <= size; i += 8) {
            uint64_t chunk;
            memcpy(&chunk, in + i, 8);
            chunk ^= wide;
            memcpy(out + i, &chunk, 8);
        }
        for (; i < size; i++) {
            out[i] = in[i] ^ mask[i & 3];
        }
        if (state != NULL) {
            PyEval_RestoreThread(state);
        }
    }
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "websync._speedups",
    .m_doc = "Optional C accelerator of websync (masking).",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
