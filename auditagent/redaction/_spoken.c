/* spoken.runs() over an ASCII text in one native pass (auditagent/redaction/spoken.py).
 *
 * Optional, like _screen.c: without it spoken.py reads the text in Python with the same
 * results (tests/redaction/test_native_screen.py compares them). Nothing of the text is kept.
 *
 * init(Item, Run, words) once: the two named-tuple classes to build, and the vocabulary of
 * spoken.py as [(word, flag, value)], one entry per table a word is in (flag: one W_* bit
 * below; value: the digits a unit, teen, ten, ordinal unit, ordinal or month stands for, or a
 * repeat count).
 * runs(text, months, words) -> list[Run], or None for a text that is not an ASCII str.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define W_UNIT 1       /* value: one digit */
#define W_TEEN 2       /* two digits */
#define W_TEN 4        /* one digit (the tens) */
#define W_ORD_UNIT 8   /* one digit */
#define W_ORDINAL 16   /* two digits */
#define W_MONTH 32     /* two digits */
#define W_REPEAT 64    /* count */
#define W_HUNDRED 128
#define W_ZEROISH 256  /* oh, o, zero, nil, nought, naught: not after a ten */
#define W_OH 512       /* oh, o: not before "hundred" */
#define MAX_WORD 16
#define TABLE 512

typedef struct {
    char word[MAX_WORD];
    unsigned char len;
    unsigned int flags;
    char unit[2], teen[3], ten[2], ord_unit[2], ordinal[3], month[3];
    int repeat;
} Word;

static Word table[TABLE];
static PyObject *ItemType = NULL, *RunType = NULL;

static unsigned char is_space[256], is_gap[256], is_tight[256], is_alpha[256], is_digit[256];
static unsigned char low[256];

static size_t hash_word(const char *w, size_t n) {
    size_t h = 1469598103u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)w[i]) * 16777619u;
    return h;
}

static const Word *find(const unsigned char *s, size_t n) {
    if (n == 0 || n >= MAX_WORD) return NULL;
    char w[MAX_WORD];
    for (size_t i = 0; i < n; i++) w[i] = (char)low[s[i]];
    size_t i = hash_word(w, n) & (TABLE - 1);
    while (table[i].len) {
        if (table[i].len == n && memcmp(table[i].word, w, n) == 0) return &table[i];
        i = (i + 1) & (TABLE - 1);
    }
    return NULL;
}

static void init_classes(void) {
    for (int c = 0; c < 256; c++) {
        low[c] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        is_alpha[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        is_digit[c] = c >= '0' && c <= '9';
    }
    const char *space = " \t\n\v\f\r\x1c\x1d\x1e\x1f"; /* \s over ASCII */
    for (const char *p = space; *p; p++) {
        is_space[(unsigned char)*p] = 1;
        is_gap[(unsigned char)*p] = 1;
        is_tight[(unsigned char)*p] = 1;
    }
    for (const char *p = ",.-/:"; *p; p++) is_gap[(unsigned char)*p] = 1;
    is_tight['-'] = 1;
}

typedef struct {
    Py_ssize_t start, end;
    const Word *w; /* NULL: a digit group */
} Tok;

/* _tight: only spacing or hyphens between */
static int tight(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) {
    for (Py_ssize_t i = a; i < b; i++)
        if (!is_tight[s[i]]) return 0;
    return 1;
}

/* _AND: [\s\-]*(?:and[\s\-]+)? over the whole of s[a:b] */
static int and_gap(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t i = a;
    while (i < b && (is_space[s[i]] || s[i] == '-')) i++;
    if (i == b) return 1;
    if (b - i < 4 || low[s[i]] != 'a' || low[s[i + 1]] != 'n' || low[s[i + 2]] != 'd') return 0;
    i += 3;
    for (; i < b; i++)
        if (!(is_space[s[i]] || s[i] == '-')) return 0;
    return 1;
}

static int is_filler(const unsigned char *s, Py_ssize_t n) {
    static const char *fillers[] = {"uh", "um", "umm", "er", "erm", "ah", "hmm", "mm", NULL};
    for (const char **f = fillers; *f; f++) {
        if ((Py_ssize_t)strlen(*f) != n) continue;
        Py_ssize_t k = 0;
        while (k < n && low[s[k]] == (unsigned char)(*f)[k]) k++;
        if (k == n) return 1;
    }
    return 0;
}

/* _joined: only spacing, light punctuation and fillers between a and b */
static int joined(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) {
    if (b - a > 24) return 0;
    Py_ssize_t i = a;
    while (i < b) {
        unsigned char c = s[i];
        if (is_gap[c]) {
            i++;
        } else if (is_alpha[c] || is_digit[c]) {
            Py_ssize_t j = i;
            if (is_alpha[c])
                while (j < b && is_alpha[s[j]]) j++;
            else
                while (j < b && is_digit[s[j]]) j++;
            if (is_digit[c] || !is_filler(s + i, j - i)) return 0;
            i = j;
        } else {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    PyObject *digits;
    Py_ssize_t start, end;
    int month, ordinal;
} Got;

static PyObject *str_of(const char *p, Py_ssize_t n) { return PyUnicode_FromStringAndSize(p, n); }

/* _item_at: the item at token i (got.digits NULL: none), the index after it in *next */
static int item_at(const unsigned char *s, Tok *t, Py_ssize_t n, Py_ssize_t i, int months, Got *g,
                   Py_ssize_t *next);

/* Whether item_at(j) would read "<unit> hundred ...": three digits or more, which hundred()
 * never takes as its rest. Said before asking, so that "one hundred and one hundred and ..."
 * costs no recursion: nested calls, one per repeat, ran out of C stack on a long tool output. */
static int starts_hundred(const unsigned char *s, const Tok *t, Py_ssize_t n, Py_ssize_t j) {
    const Word *w = t[j].w;
    if (w == NULL || !(w->flags & W_UNIT) || (w->flags & (W_REPEAT | W_OH)) || j + 1 >= n)
        return 0;
    const Word *b = t[j + 1].w;
    return b != NULL && (b->flags & W_HUNDRED) && tight(s, t[j].end, t[j + 1].start);
}

static int hundred(const unsigned char *s, Tok *t, Py_ssize_t n, Py_ssize_t i, char unit, Got *g,
                   Py_ssize_t *next) {
    Py_ssize_t start = t[i].start, end = t[i + 1].end, j = i + 2;
    if (j < n && and_gap(s, end, t[j].start) && !starts_hundred(s, t, n, j)) {
        Got rest = {NULL, 0, 0, 0, 0};
        Py_ssize_t k;
        if (item_at(s, t, n, j, 0, &rest, &k) < 0) return -1;
        if (rest.digits != NULL) {
            Py_ssize_t len = PyUnicode_GET_LENGTH(rest.digits);
            if (len <= 2 && !rest.ordinal) {
                char buf[4] = {unit, '0', '0', 0};
                const char *d = (const char *)PyUnicode_DATA(rest.digits);
                if (len == 2) {
                    buf[1] = d[0];
                    buf[2] = d[1];
                } else if (len == 1) {
                    buf[2] = d[0];
                }
                Py_DECREF(rest.digits);
                g->digits = str_of(buf, 3);
                g->start = start;
                g->end = rest.end;
                *next = k;
                return g->digits == NULL ? -1 : 0;
            }
            Py_DECREF(rest.digits);
        }
    }
    char buf[3] = {unit, '0', '0'};
    g->digits = str_of(buf, 3);
    g->start = start;
    g->end = end;
    *next = i + 2;
    return g->digits == NULL ? -1 : 0;
}

static int item_at(const unsigned char *s, Tok *t, Py_ssize_t n, Py_ssize_t i, int months, Got *g,
                   Py_ssize_t *next) {
    Tok *a = &t[i];
    Tok *b = i + 1 < n ? &t[i + 1] : NULL;
    const Word *w = a->w;
    g->digits = NULL;
    g->month = g->ordinal = 0;
    g->start = a->start;
    g->end = a->end;
    *next = i + 1;
    if (w == NULL) { /* digits */
        g->digits = str_of((const char *)s + a->start, a->end - a->start);
        return g->digits == NULL ? -1 : 0;
    }
    unsigned int f = w->flags;
    if ((f & W_REPEAT) && b != NULL && tight(s, a->end, b->start)) {
        char d = 0;
        if (b->w != NULL && (b->w->flags & W_UNIT))
            d = b->w->unit[0];
        else if (b->w == NULL && b->end - b->start == 1)
            d = (char)s[b->start];
        if (d) {
            char buf[8];
            int r = w->repeat < 8 ? w->repeat : 7;
            for (int k = 0; k < r; k++) buf[k] = d;
            g->digits = str_of(buf, r);
            g->end = b->end;
            *next = i + 2;
            return g->digits == NULL ? -1 : 0;
        }
        return 0;
    }
    if (f & W_UNIT) {
        if (b != NULL && b->w != NULL && (b->w->flags & W_HUNDRED) && !(f & W_OH) &&
            tight(s, a->end, b->start))
            return hundred(s, t, n, i, w->unit[0], g, next);
        g->digits = str_of(w->unit, 1);
        return g->digits == NULL ? -1 : 0;
    }
    if (f & W_TEEN) {
        g->digits = str_of(w->teen, 2);
        return g->digits == NULL ? -1 : 0;
    }
    if (f & W_TEN) {
        if (b != NULL && b->w != NULL && tight(s, a->end, b->start)) {
            unsigned int bf = b->w->flags;
            if ((bf & W_UNIT) && !(bf & W_ZEROISH)) {
                char buf[2] = {w->ten[0], b->w->unit[0]};
                g->digits = str_of(buf, 2);
                g->end = b->end;
                *next = i + 2;
                return g->digits == NULL ? -1 : 0;
            }
            if (bf & W_ORD_UNIT) {
                char buf[2] = {w->ten[0], b->w->ord_unit[0]};
                g->digits = str_of(buf, 2);
                g->end = b->end;
                g->ordinal = 1;
                *next = i + 2;
                return g->digits == NULL ? -1 : 0;
            }
        }
        char buf[2] = {w->ten[0], '0'};
        g->digits = str_of(buf, 2);
        return g->digits == NULL ? -1 : 0;
    }
    if (f & W_ORDINAL) {
        g->digits = str_of(w->ordinal, 2);
        g->ordinal = 1;
        return g->digits == NULL ? -1 : 0;
    }
    if (months && (f & W_MONTH)) {
        g->digits = str_of(w->month, 2);
        g->month = 1;
        return g->digits == NULL ? -1 : 0;
    }
    return 0;
}

static PyObject *as_type(PyObject *type, PyObject *values) {
    /* tuple.__new__(type, values) for a named tuple class: what its own __new__ does, without
     * the Python frame; values (a tuple) is released */
    if (values == NULL) return NULL;
    PyObject *args = PyTuple_Pack(1, values);
    Py_DECREF(values);
    if (args == NULL) return NULL;
    PyObject *out = PyTuple_Type.tp_new((PyTypeObject *)type, args, NULL);
    Py_DECREF(args);
    return out;
}

static int close_run(PyObject *out, PyObject *cur) {
    /* Run(items, digits, start, end) from the Items in cur (a list, emptied) */
    Py_ssize_t k = PyList_GET_SIZE(cur);
    if (k == 0) return 0;
    PyObject *items = PyList_AsTuple(cur);
    if (items == NULL) return -1;
    PyObject *empty = PyUnicode_New(0, 127);
    PyObject *digits = NULL;
    if (empty != NULL) {
        PyObject *parts = PyList_New(k);
        if (parts != NULL) {
            for (Py_ssize_t i = 0; i < k; i++) {
                PyObject *d = PyTuple_GET_ITEM(PyTuple_GET_ITEM(items, i), 0);
                Py_INCREF(d);
                PyList_SET_ITEM(parts, i, d);
            }
            digits = PyUnicode_Join(empty, parts);
            Py_DECREF(parts);
        }
        Py_DECREF(empty);
    }
    if (digits == NULL) {
        Py_DECREF(items);
        return -1;
    }
    PyObject *start = PyTuple_GET_ITEM(PyTuple_GET_ITEM(items, 0), 1);
    PyObject *end = PyTuple_GET_ITEM(PyTuple_GET_ITEM(items, k - 1), 2);
    PyObject *values = PyTuple_New(4);
    if (values == NULL) {
        Py_DECREF(items);
        Py_DECREF(digits);
        return -1;
    }
    Py_INCREF(start);
    Py_INCREF(end);
    PyTuple_SET_ITEM(values, 0, items);
    PyTuple_SET_ITEM(values, 1, digits);
    PyTuple_SET_ITEM(values, 2, start);
    PyTuple_SET_ITEM(values, 3, end);
    PyObject *run = as_type(RunType, values);
    if (run == NULL) return -1;
    int rc = PyList_Append(out, run);
    Py_DECREF(run);
    if (rc < 0) return -1;
    return PyList_SetSlice(cur, 0, k, NULL);
}

static PyObject *new_item(Got *g) {
    PyObject *item = PyTuple_New(5);
    if (item == NULL) return NULL;
    PyObject *a = PyLong_FromSsize_t(g->start), *b = PyLong_FromSsize_t(g->end);
    if (a == NULL || b == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_DECREF(item);
        return NULL;
    }
    PyObject *m = g->month ? Py_True : Py_False, *o = g->ordinal ? Py_True : Py_False;
    Py_INCREF(m);
    Py_INCREF(o);
    PyTuple_SET_ITEM(item, 0, g->digits); /* steals */
    g->digits = NULL;
    PyTuple_SET_ITEM(item, 1, a);
    PyTuple_SET_ITEM(item, 2, b);
    PyTuple_SET_ITEM(item, 3, m);
    PyTuple_SET_ITEM(item, 4, o);
    return as_type(ItemType, item);
}

static PyObject *runs(PyObject *self, PyObject *args) {
    PyObject *text;
    int months, words;
    if (!PyArg_ParseTuple(args, "Opp", &text, &months, &words)) return NULL;
    if (ItemType == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_spoken.init() was not called");
        return NULL;
    }
    if (!PyUnicode_Check(text) || PyUnicode_READY(text) < 0 || !PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    words = words || months;
    /* the numeric tokens: digit groups, and (words) the vocabulary's words */
    Tok *toks = PyMem_Malloc(sizeof(Tok) * (size_t)(len / 1 + 1));
    if (toks == NULL) return PyErr_NoMemory();
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < len;) {
        Py_ssize_t j = i;
        if (is_digit[s[i]]) {
            while (j < len && is_digit[s[j]]) j++;
            toks[n].start = i;
            toks[n].end = j;
            toks[n].w = NULL;
            n++;
        } else if (is_alpha[s[i]]) {
            while (j < len && is_alpha[s[j]]) j++;
            if (words) {
                const Word *w = find(s + i, (size_t)(j - i));
                if (w != NULL && (months || !(w->flags == W_MONTH))) {
                    toks[n].start = i;
                    toks[n].end = j;
                    toks[n].w = w;
                    n++;
                }
            }
        } else {
            j = i + 1;
        }
        i = j;
    }
    PyObject *out = PyList_New(0), *cur = PyList_New(0);
    if (out == NULL || cur == NULL) goto fail;
    Py_ssize_t last_end = -1;
    for (Py_ssize_t i = 0; i < n;) {
        Got g = {NULL, 0, 0, 0, 0};
        Py_ssize_t next;
        if (item_at(s, toks, n, i, months, &g, &next) < 0) goto fail;
        if (g.digits == NULL) {
            if (close_run(out, cur) < 0) goto fail;
            i = next;
            continue;
        }
        if (PyList_GET_SIZE(cur) && !joined(s, last_end, g.start)) {
            if (close_run(out, cur) < 0) {
                Py_DECREF(g.digits);
                goto fail;
            }
        }
        last_end = g.end;
        PyObject *item = new_item(&g);
        if (item == NULL) {
            Py_XDECREF(g.digits);
            goto fail;
        }
        int rc = PyList_Append(cur, item);
        Py_DECREF(item);
        if (rc < 0) goto fail;
        i = next;
    }
    if (close_run(out, cur) < 0) goto fail;
    Py_DECREF(cur);
    PyMem_Free(toks);
    return out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(cur);
    PyMem_Free(toks);
    return NULL;
}

static int copy_value(PyObject *v, char *into, Py_ssize_t want) {
    Py_ssize_t len;
    const char *p = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &len) : NULL;
    if (p == NULL || len != want) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad vocabulary value");
        return -1;
    }
    memcpy(into, p, (size_t)len);
    return 0;
}

static PyObject *init(PyObject *self, PyObject *args) {
    PyObject *item, *run, *words;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &item, &PyType_Type, &run, &PyList_Type,
                          &words))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)item, &PyTuple_Type) ||
        !PyType_IsSubtype((PyTypeObject *)run, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "Item and Run must be named tuples");
        return NULL;
    }
    memset(table, 0, sizeof(table));
    Py_ssize_t count = PyList_GET_SIZE(words);
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *spec = PyList_GET_ITEM(words, k);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3) {
            PyErr_SetString(PyExc_ValueError, "vocabulary: (word, flag, value) tuples");
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(spec, 0);
        Py_ssize_t len;
        const char *w = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : NULL;
        if (w == NULL || len < 1 || len >= MAX_WORD || !PyUnicode_IS_ASCII(key)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad vocabulary word");
            return NULL;
        }
        size_t i = hash_word(w, (size_t)len) & (TABLE - 1);
        size_t probes = 0;
        while (table[i].len && !(table[i].len == len && memcmp(table[i].word, w, len) == 0)) {
            i = (i + 1) & (TABLE - 1);
            if (++probes >= TABLE) {
                PyErr_SetString(PyExc_ValueError, "vocabulary too large");
                return NULL;
            }
        }
        Word *e = &table[i];
        memcpy(e->word, w, (size_t)len);
        e->len = (unsigned char)len;
        long flag = PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
        if (flag < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad flag");
            return NULL;
        }
        e->flags |= (unsigned int)flag;
        PyObject *v = PyTuple_GET_ITEM(spec, 2);
        int rc = 0;
        if (flag == W_UNIT) rc = copy_value(v, e->unit, 1);
        else if (flag == W_TEEN) rc = copy_value(v, e->teen, 2);
        else if (flag == W_TEN) rc = copy_value(v, e->ten, 1);
        else if (flag == W_ORD_UNIT) rc = copy_value(v, e->ord_unit, 1);
        else if (flag == W_ORDINAL) rc = copy_value(v, e->ordinal, 2);
        else if (flag == W_MONTH) rc = copy_value(v, e->month, 2);
        else if (flag == W_REPEAT) {
            long r = PyLong_AsLong(v);
            if (r < 1 || r > 7) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad repeat");
                return NULL;
            }
            e->repeat = (int)r;
        }
        if (rc < 0) return NULL;
    }
    Py_INCREF(item);
    Py_INCREF(run);
    Py_XSETREF(ItemType, item);
    Py_XSETREF(RunType, run);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"init", init, METH_VARARGS, "init(Item, Run, words): the classes and the vocabulary [(word, flag, value)]"},
    {"runs", runs, METH_VARARGS, "runs(text, months, words) -> list[Run] | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_spoken", "spoken.runs() in one native pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__spoken(void) {
    init_classes();
    return PyModule_Create(&module);
}
