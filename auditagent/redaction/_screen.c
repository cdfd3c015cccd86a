/* The redaction screen in one pass over an ASCII text (auditagent/redaction/redactor.py).
 *
 * Optional: when this module is not built, redactor.py does the same in Python, with the same
 * results (tests/redaction/test_native_screen.py compares the two). It reads the text only and
 * keeps nothing of it.
 *
 * Screen(words) takes {word: bits} (lower-case ASCII words, bits < 2**31). Screen.scan(text)
 * returns None when text is not an ASCII str, else (digits, counted, bits, cluster):
 *   digits   ASCII digits in the text;
 *   counted  words whose bits include bit 0 (the number words);
 *   bits     the OR of the bits of every word found;
 *   cluster  whether CLUSTER_MIN digits stand with only whitespace, ",./-" and the letters of
 *            the fillers (uhmera, any case) between them.
 * A word is what Python's str.split() gives after lower-casing the text and turning
 * -,.;:!?"'()[]{}/\*# into spaces and every digit into "#".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_WORD 32
#define CLUSTER_MIN 12
#define SPOKEN_CARD_WORDS 4
#define MAX_HINTS 32

typedef struct {
    char word[MAX_WORD];
    unsigned char len;
    unsigned int bits;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *table;
    size_t mask; /* table size - 1 (a power of two) */
    size_t max_len;
    char hints[MAX_HINTS][MAX_WORD]; /* lower-case substrings for quiet(..., hints=True) */
    unsigned char hint_len[MAX_HINTS];
    int n_hints;
} Screen;

/* byte classes */
#define C_SEP 1   /* ends a word */
#define C_DIGIT 2
#define C_GAP 4   /* may stand between the digits of a cluster */
static unsigned char cls[256];
static unsigned char low[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        low[c] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        cls[c] = 0;
    }
    /* str.isspace() over ASCII */
    const char *space = " \t\n\v\f\r\x1c\x1d\x1e\x1f";
    for (const char *p = space; *p; p++) cls[(unsigned char)*p] |= C_SEP | C_GAP;
    const char *punct = "-,.;:!?\"'()[]{}/\\*#";
    for (const char *p = punct; *p; p++) cls[(unsigned char)*p] |= C_SEP;
    const char *gap = ",./-uhmeraUHMERA";
    for (const char *p = gap; *p; p++) cls[(unsigned char)*p] |= C_GAP;
    for (int c = '0'; c <= '9'; c++) cls[c] |= C_DIGIT;
}

static inline size_t hash_word(const char *w, size_t n) {
    size_t h = 1469598103u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)w[i]) * 16777619u;
    return h;
}

static void Screen_dealloc(Screen *self) {
    PyMem_Free(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Screen_init(Screen *self, PyObject *args, PyObject *kwds) {
    PyObject *words, *hints = NULL;
    static char *kwlist[] = {"words", "hints", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|O!", kwlist, &PyDict_Type, &words,
                                     &PyTuple_Type, &hints))
        return -1;
    Py_ssize_t nh = hints == NULL ? 0 : PyTuple_GET_SIZE(hints);
    if (nh > MAX_HINTS) {
        PyErr_SetString(PyExc_ValueError, "too many hints");
        return -1;
    }
    for (Py_ssize_t k = 0; k < nh; k++) {
        PyObject *h = PyTuple_GET_ITEM(hints, k);
        Py_ssize_t hl;
        const char *hs = PyUnicode_Check(h) ? PyUnicode_AsUTF8AndSize(h, &hl) : NULL;
        if (hs == NULL || hl < 1 || hl >= MAX_WORD || !PyUnicode_IS_ASCII(h)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "hints: short ASCII str");
            return -1;
        }
        for (Py_ssize_t c = 0; c < hl; c++) self->hints[k][c] = (char)low[(unsigned char)hs[c]];
        self->hint_len[k] = (unsigned char)hl;
    }
    self->n_hints = (int)nh;
    size_t n = (size_t)PyDict_Size(words);
    size_t size = 16;
    while (size < 4 * n) size <<= 1;
    Entry *table = PyMem_Calloc(size, sizeof(Entry));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t max_len = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(words, &pos, &key, &value)) {
        Py_ssize_t len;
        const char *w = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : NULL;
        long bits = PyLong_Check(value) ? PyLong_AsLong(value) : -1;
        if (w == NULL || len < 1 || len >= MAX_WORD || !PyUnicode_IS_ASCII(key) || bits < 0 ||
            bits > 0x7fffffffL) {
            PyMem_Free(table);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "words: short ASCII str -> int in 0..2**31-1");
            return -1;
        }
        size_t i = hash_word(w, (size_t)len) & (size - 1);
        while (table[i].len && !(table[i].len == len && memcmp(table[i].word, w, len) == 0))
            i = (i + 1) & (size - 1);
        memcpy(table[i].word, w, (size_t)len);
        table[i].len = (unsigned char)len;
        table[i].bits |= (unsigned int)bits;
        if ((size_t)len > max_len) max_len = (size_t)len;
    }
    PyMem_Free(self->table);
    self->table = table;
    self->mask = size - 1;
    self->max_len = max_len;
    return 0;
}

static inline unsigned int lookup(Screen *self, const char *w, size_t n) {
    size_t i = hash_word(w, n) & self->mask;
    const Entry *t = self->table;
    while (t[i].len) {
        if (t[i].len == n && memcmp(t[i].word, w, n) == 0) return t[i].bits;
        i = (i + 1) & self->mask;
    }
    return 0;
}

typedef struct {
    long digits, counted;
    unsigned int bits;
    int cluster;
} Found;

static void pass(Screen *self, const unsigned char *s, Py_ssize_t n, Found *f) {
    long digits = 0, counted = 0;
    unsigned int bits = 0;
    int run = 0, cluster = 0;
    char word[MAX_WORD];
    size_t wlen = 0;
    int in_word = 0, too_long = 0;
    size_t max_len = self->max_len;
    for (Py_ssize_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? s[i] : ' ';
        unsigned char k = cls[c];
        if (k & C_DIGIT) {
            digits++;
            if (++run >= CLUSTER_MIN) cluster = 1;
        } else if (!(k & C_GAP)) {
            run = 0;
        }
        if (k & C_SEP) {
            if (in_word && !too_long) {
                unsigned int b = lookup(self, word, wlen);
                bits |= b;
                counted += b & 1u;
            }
            in_word = 0;
            continue;
        }
        if (!in_word) {
            in_word = 1;
            too_long = 0;
            wlen = 0;
        }
        if (too_long) continue;
        if (wlen >= max_len) {
            too_long = 1;
            continue;
        }
        word[wlen++] = (k & C_DIGIT) ? '#' : (char)low[c];
    }
    f->digits = digits;
    f->counted = counted;
    f->bits = bits;
    f->cluster = cluster;
}

static int ascii_text(Screen *self, PyObject *text) {
    if (self->table == NULL) {
        PyErr_SetString(PyExc_ValueError, "Screen not initialised");
        return -1;
    }
    return PyUnicode_Check(text) && PyUnicode_READY(text) == 0 && PyUnicode_IS_ASCII(text);
}

static PyObject *Screen_scan(Screen *self, PyObject *text) {
    int ok = ascii_text(self, text);
    if (ok < 0) return NULL;
    if (!ok) Py_RETURN_NONE;
    Found f;
    pass(self, (const unsigned char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), &f);
    return Py_BuildValue("llIO", f.digits, f.counted, f.bits, f.cluster ? Py_True : Py_False);
}

static int has_hint(Screen *self, const unsigned char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = low[s[i]];
        for (int h = 0; h < self->n_hints; h++) {
            Py_ssize_t hl = self->hint_len[h];
            if ((unsigned char)self->hints[h][0] != c || i + hl > n) continue;
            Py_ssize_t k = 1;
            while (k < hl && low[s[i + k]] == (unsigned char)self->hints[h][k]) k++;
            if (k == hl) return 1;
        }
    }
    return 0;
}

/* quiet(text, mask, hints): nothing in an ASCII text for a policy that looks for card data only
 * (see screen.py): no word whose bits meet mask, no hint (when hints), and no card number
 * possible. False when not sure (a text that is not ASCII included). */
static PyObject *Screen_quiet(Screen *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "quiet(text, mask, hints)");
        return NULL;
    }
    int ok = ascii_text(self, args[0]);
    if (ok < 0) return NULL;
    if (!ok) Py_RETURN_FALSE;
    unsigned long mask = PyLong_AsUnsignedLong(args[1]);
    if (mask == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    int hints = PyObject_IsTrue(args[2]);
    if (hints < 0) return NULL;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(args[0]);
    Py_ssize_t n = PyUnicode_GET_LENGTH(args[0]);
    Found f;
    pass(self, s, n, &f);
    if (f.bits & mask) Py_RETURN_FALSE;
    if (f.digits + 2 * f.counted >= CLUSTER_MIN && (f.counted >= SPOKEN_CARD_WORDS || f.cluster))
        Py_RETURN_FALSE;
    if (hints && has_hint(self, s, n)) Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

static PyMethodDef Screen_methods[] = {
    {"scan", (PyCFunction)Screen_scan, METH_O,
     "scan(text) -> (digits, counted, bits, cluster), or None for a text that is not ASCII"},
    {"quiet", (PyCFunction)(void (*)(void))Screen_quiet, METH_FASTCALL,
     "quiet(text, mask, hints) -> whether an ASCII text surely holds nothing (see screen.py)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScreenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "auditagent.redaction._screen.Screen",
    .tp_doc = "The redaction screen over a fixed word table.",
    .tp_basicsize = sizeof(Screen),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Screen_init,
    .tp_dealloc = (destructor)Screen_dealloc,
    .tp_methods = Screen_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_screen", "The redaction screen in one native pass.", -1, NULL,
};

PyMODINIT_FUNC PyInit__screen(void) {
    init_tables();
    if (PyType_Ready(&ScreenType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ScreenType);
    if (PyModule_AddObject(m, "Screen", (PyObject *)&ScreenType) < 0) {
        Py_DECREF(&ScreenType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "CLUSTER_MIN", CLUSTER_MIN) < 0 ||
        PyModule_AddIntConstant(m, "SPOKEN_CARD_WORDS", SPOKEN_CARD_WORDS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
