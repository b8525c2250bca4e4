"""fastact's compiled loops: chunking and OpenMP over the C kernels.

The Python driver (_api.py) has already validated everything and converted
every array to a C-contiguous, aligned, native-endian 1-D view of float32 or
float64, of the right sizes; these functions only split the work.  Each call
releases the GIL.  With nthreads > 1 the index range is cut into nthreads
contiguous chunks (static schedule, boundaries aligned to CHUNK_ALIGN
elements); every chunk computes exactly what a single call would for its
indices, so results are bit-identical for every thread count.  With
nthreads == 1 no OpenMP region is entered at all, which is also what keeps a
forked child safe (see _threads.py).
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t

cnp.import_array()

cdef extern from "fa_omp.h" nogil:
    int fa_openmp_enabled()
    int fa_omp_max_threads()

cdef extern from "fa_kernels.h" nogil:
    ctypedef struct fa_params:
        double p[4]
        uint64_t key

    ctypedef struct fa_kernel_table:
        const char *name
        void (*forward_f32)(int, const float *, float *, int64_t, int64_t, const float *, int64_t, const fa_params *) noexcept nogil
        void (*forward_f64)(int, const double *, double *, int64_t, int64_t, const double *, int64_t, const fa_params *) noexcept nogil
        void (*backward_f32)(int, const float *, const float *, float *, int64_t, int64_t, const float *, int64_t, const fa_params *) noexcept nogil
        void (*backward_f64)(int, const double *, const double *, double *, int64_t, int64_t, const double *, int64_t, const fa_params *) noexcept nogil
        void (*backward_y_f32)(int, const float *, const float *, float *, int64_t, int64_t, const fa_params *) noexcept nogil
        void (*backward_y_f64)(int, const double *, const double *, double *, int64_t, int64_t, const fa_params *) noexcept nogil
        void (*softmax_f32)(int, const float *, float *, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*softmax_f64)(int, const double *, double *, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*softmax_backward_f32)(int, const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*softmax_backward_f64)(int, const double *, const double *, double *, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*maxout_f32)(const float *, float *, int64_t, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*maxout_f64)(const double *, double *, int64_t, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*maxout_backward_f32)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*maxout_backward_f64)(const double *, const double *, double *, int64_t, int64_t, int64_t, int64_t, int64_t) noexcept nogil
        void (*prelu_f32)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t) noexcept nogil
        void (*prelu_f64)(const double *, const double *, double *, int64_t, int64_t, int64_t, int64_t, const double *, int64_t) noexcept nogil
        void (*prelu_backward_f32)(const float *, const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t) noexcept nogil
        void (*prelu_backward_f64)(const double *, const double *, const double *, double *, int64_t, int64_t, int64_t, int64_t, const double *, int64_t) noexcept nogil
        void (*prelu_weight_grad_f32)(const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t) noexcept nogil
        void (*prelu_weight_grad_f64)(const double *, const double *, double *, int64_t, int64_t, int64_t, int64_t, int64_t, const double *, int64_t) noexcept nogil

    enum:
        FA_ISA_BASELINE
        FA_ISA_X86_64_V3
        FA_ISA_X86_64_V4
        FA_ISA_COUNT
    const fa_kernel_table *fa_kernel_table_for(int isa)
    int fa_best_isa()

ctypedef fused floating:
    float
    double

#: Chunk boundaries are multiples of this many elements (64 bytes of float32).
CHUNK_ALIGN = 16
cdef int64_t _ALIGN = 16

#: ISA level names, indexed by level.
ISA_NAMES = ("baseline", "x86-64-v3", "x86-64-v4")

cdef const fa_kernel_table *_table = fa_kernel_table_for(fa_best_isa())
cdef bint _parallel_used = False


def isa_compiled():
    """Names of the ISA levels built into this extension."""
    return tuple(ISA_NAMES[i] for i in range(FA_ISA_COUNT) if fa_kernel_table_for(i) != NULL)


def isa_best():
    """The best level this CPU runs."""
    return ISA_NAMES[fa_best_isa()]


def isa_in_use():
    return _table.name.decode()


def set_isa(str name):
    """Use the kernels of level `name` (must be compiled and supported by the CPU)."""
    global _table
    cdef int level = ISA_NAMES.index(name)
    if level > fa_best_isa() or fa_kernel_table_for(level) == NULL:
        raise ValueError(f"ISA level {name!r} is not available on this CPU/build; "
                         f"available: {isa_compiled()[:fa_best_isa() + 1]}")
    _table = fa_kernel_table_for(level)


def openmp_enabled():
    return bool(fa_openmp_enabled())


def omp_max_threads():
    return fa_omp_max_threads()


def parallel_used():
    """Whether an OpenMP parallel region has run in this process."""
    return _parallel_used


cdef inline int64_t _bound(int64_t n, int64_t nchunks, int64_t c) noexcept nogil:
    """Start of chunk c when [0, n) is cut into nchunks aligned pieces."""
    if c >= nchunks:
        return n
    cdef int64_t b = <int64_t>((<double>n * c) / nchunks)
    return b - b % _ALIGN


cdef inline int _threads(int nthreads, int64_t units):
    """Threads to use: never more than units of work; records parallel use."""
    global _parallel_used
    if nthreads > units:
        nthreads = <int>units
    if nthreads > 1:
        _parallel_used = True
    return nthreads if nthreads > 1 else 1


cdef fa_params _params(tuple p, uint64_t key) except *:
    cdef fa_params P
    cdef int k
    for k in range(4):
        P.p[k] = p[k] if k < len(p) else 0.0
    P.key = key
    return P


cdef inline const floating *_ptr_or_null(const floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


# ---- element-wise --------------------------------------------------------

cdef inline void _forward(int op, const floating *x, floating *y, int64_t start,
                          int64_t stop, const floating *b, int64_t ncols,
                          const fa_params *P) noexcept nogil:
    if floating is float:
        _table.forward_f32(op, x, y, start, stop, b, ncols, P)
    else:
        _table.forward_f64(op, x, y, start, stop, b, ncols, P)


cdef void _forward_chunks(int op, const floating *xp, floating *yp, int64_t n,
                          const floating *bp, int64_t ncols, const fa_params *pp,
                          int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _forward(op, xp, yp, 0, n, bp, ncols, pp)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _forward(op, xp, yp, _bound(n, nt, c), _bound(n, nt, c + 1), bp, ncols, pp)


def forward(int op, const floating[::1] x, floating[::1] y, const floating[::1] bias,
            tuple params, uint64_t key, int nthreads):
    """y = f(x + bias) for op code `op`; bias empty for none."""
    cdef fa_params P = _params(params, key)
    cdef int64_t n = x.shape[0]
    cdef int nt = _threads(nthreads, n // _ALIGN)
    cdef const floating *xp = &x[0]
    cdef floating *yp = &y[0]
    cdef const floating *bp = _ptr_or_null(bias)
    with nogil:
        _forward_chunks(op, xp, yp, n, bp, bias.shape[0], &P, nt)


def forward_contiguous(int op, cnp.ndarray x, cnp.ndarray y, bint f64, tuple params,
                       uint64_t key, int nthreads):
    """The small-call fast path of forward: x and y C-contiguous, aligned,
    native-endian, writeable (y) arrays of one float dtype (float64 if f64)
    and one size, no bias -- the caller (_api.py) has checked all that.  It
    reads the data pointers from the arrays directly, without typed
    memoryviews (about 0.5 us less per call).  Returns False, computing
    nothing, if y partially overlaps x (the caller then takes the general
    path, which copies first)."""
    cdef fa_params P = _params(params, key)
    cdef int64_t n = cnp.PyArray_SIZE(x)
    cdef char *xs = <char *>cnp.PyArray_DATA(x)
    cdef char *ys = <char *>cnp.PyArray_DATA(y)
    cdef int nt
    if cnp.PyArray_SIZE(y) != n:
        raise ValueError("forward_contiguous: x and y differ in size")
    if _overlaps(x, y):
        return False
    nt = _threads(nthreads, n // _ALIGN)
    with nogil:
        if f64:
            _forward_chunks(op, <const double *>xs, <double *>ys, n, <const double *>NULL, 0, &P, nt)
        else:
            _forward_chunks(op, <const float *>xs, <float *>ys, n, <const float *>NULL, 0, &P, nt)
    return True


cdef inline cnp.ndarray _fast_array(object a):
    """`a` if it is a NumPy ndarray (not a subclass) of native float32 or
    float64, C-contiguous and aligned, of at least one dimension (0-d results
    are the general path's business) and one element; else None."""
    if type(a) is not cnp.ndarray:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        return None
    if (not cnp.PyArray_ISCARRAY_RO(arr) or not cnp.PyArray_ISNOTSWAPPED(arr)
            or cnp.PyArray_NDIM(arr) == 0):
        return None
    if cnp.PyArray_SIZE(arr) == 0:
        return None
    return arr


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd or cnp.PyArray_TYPE(b) != cnp.PyArray_TYPE(a):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


cdef inline bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether two C-contiguous arrays share memory without being the same
    buffer (a partial overlap, which the general path resolves by copying)."""
    return cnp.PyArray_DATA(a) != cnp.PyArray_DATA(b) and _shares(a, b)


cdef inline bint _shares(cnp.ndarray a, cnp.ndarray b):
    """Whether two C-contiguous arrays share any memory (the same buffer too)."""
    cdef char *p = <char *>cnp.PyArray_DATA(a)
    cdef char *q = <char *>cnp.PyArray_DATA(b)
    return p < q + cnp.PyArray_NBYTES(b) and q < p + cnp.PyArray_NBYTES(a)


cdef inline cnp.ndarray _fast_out_shape(object out, int nd, cnp.npy_intp *shape, int dtype):
    """The destination: a new C-contiguous array of that shape and dtype for
    out None, `out` itself if it is an ndarray of that dtype and shape,
    C-contiguous, aligned, native-endian and writeable; else None (the
    general path validates and raises)."""
    if out is None:
        return cnp.PyArray_EMPTY(nd, shape, dtype, 0)
    if type(out) is not cnp.ndarray:
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    cdef int k
    if (not cnp.PyArray_ISCARRAY(o) or not cnp.PyArray_ISNOTSWAPPED(o)
            or cnp.PyArray_TYPE(o) != dtype or cnp.PyArray_NDIM(o) != nd):
        return None
    for k in range(nd):
        if cnp.PyArray_DIMS(o)[k] != shape[k]:
            return None
    return o


cdef inline cnp.ndarray _fast_out(object out, cnp.ndarray like):
    """_fast_out_shape of `like`'s shape and dtype."""
    return _fast_out_shape(out, cnp.PyArray_NDIM(like), cnp.PyArray_DIMS(like),
                           cnp.PyArray_TYPE(like))


cdef inline void _backward(int op, const floating *g, const floating *x, floating *gi,
                           int64_t start, int64_t stop, const floating *b, int64_t ncols,
                           const fa_params *P) noexcept nogil:
    if floating is float:
        _table.backward_f32(op, g, x, gi, start, stop, b, ncols, P)
    else:
        _table.backward_f64(op, g, x, gi, start, stop, b, ncols, P)


cdef void _backward_chunks(int op, const floating *gp, const floating *xp, floating *op_,
                           int64_t n, const floating *bp, int64_t ncols, const fa_params *pp,
                           int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _backward(op, gp, xp, op_, 0, n, bp, ncols, pp)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _backward(op, gp, xp, op_, _bound(n, nt, c), _bound(n, nt, c + 1), bp, ncols, pp)


def backward(int op, const floating[::1] g, const floating[::1] x, floating[::1] gi,
             const floating[::1] bias, tuple params, uint64_t key, int nthreads):
    """gi = g * f'(x + bias)."""
    cdef fa_params P = _params(params, key)
    cdef int64_t n = x.shape[0]
    cdef const floating *gp = &g[0]
    cdef const floating *xp = &x[0]
    cdef floating *op_ = &gi[0]
    cdef const floating *bp = _ptr_or_null(bias)
    cdef int nt = _threads(nthreads, n // _ALIGN)
    with nogil:
        _backward_chunks(op, gp, xp, op_, n, bp, bias.shape[0], &P, nt)


cdef inline int _asked_threads(object threads, int64_t n, bint smooth) except -1:
    """threads_for(n, smooth) of the module _threads (the general path's
    choice), not asked below its threshold, where it is 1 (the threshold is
    read each call: tests lower it; skipping the call saves ~0.1 us at 10^3
    elements)."""
    if n < (threads.PARALLEL_MIN_ELEMENTS_SMOOTH if smooth else threads.PARALLEL_MIN_ELEMENTS):
        return 1
    return threads.threads_for(n, smooth)


cdef class FastOp:
    """The direct path of one element-wise C op with fixed parameters:
    forward(x, out), backward(g, x, out) and, for the ops that have that
    form, backward_y(g, y, out) for arrays with no bias, all of
    one float dtype and shape, C-contiguous, aligned and native-endian, of at
    least one dimension and one element, `out` None or such an array that is
    the input itself or does not overlap it.  A call runs on
    `_threads.threads_for(size, smooth)` threads (which the general path
    asks too; a call below 2*CHUNK_ALIGN elements is never split, so it
    does not ask), in the general path's static chunks.
    They return the result, or None -- having written nothing -- for every
    other call, which then takes the general path of _api.py (the same
    kernels, so the same bits).  The generated public functions call them
    first (_api._fast_lines).  Measured against the general path, whose
    argument handling this skips (two builds alternated, 2 threads, float32
    with out=, 2^16 elements): relu 8.83 -> 8.59 us, tanh' 115.7 -> 108.0 us;
    a 16-element relu takes 0.16 us in both."""
    cdef int op
    cdef fa_params P
    cdef object threads
    cdef bint smooth

    def __init__(self, int op, tuple params, uint64_t key, threads, bint smooth):
        self.op = op
        self.P = _params(params, key)
        self.threads = threads  # the module fastact._threads
        self.smooth = smooth

    cdef int _nt(self, int64_t n) except -1:
        if n < 2 * _ALIGN:
            return 1
        return _threads(_asked_threads(self.threads, n, self.smooth), n // _ALIGN)

    def forward(self, x, out):
        cdef cnp.ndarray xa = _fast_array(x)
        if xa is None:
            return None
        cdef cnp.ndarray ya = _fast_out(out, xa)
        if ya is None or _overlaps(xa, ya):
            return None
        cdef int64_t n = cnp.PyArray_SIZE(xa)
        cdef int nt = self._nt(n)
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *ys = cnp.PyArray_DATA(ya)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _forward_chunks(self.op, <const double *>xs, <double *>ys, n,
                                <const double *>NULL, 0, &self.P, nt)
            else:
                _forward_chunks(self.op, <const float *>xs, <float *>ys, n,
                                <const float *>NULL, 0, &self.P, nt)
        return ya

    def backward(self, g, x, out):
        return self._backward(g, x, out, False)

    def backward_y(self, g, y, out):
        """The gradient from y = f(x) (relu, sigmoid, tanh: the op must have
        that form), as the general path's backward_y computes it."""
        return self._backward(g, y, out, True)

    cdef object _backward(self, g, x, out, bint from_y):
        cdef cnp.ndarray ga = _fast_array(g)
        cdef cnp.ndarray xa = _fast_array(x)
        if ga is None or xa is None or not _same_shape(ga, xa):
            return None
        cdef cnp.ndarray oa = _fast_out(out, xa)
        if oa is None or _overlaps(ga, oa) or _overlaps(xa, oa):
            return None
        cdef int64_t n = cnp.PyArray_SIZE(xa)
        cdef int nt = self._nt(n)
        cdef void *gs = cnp.PyArray_DATA(ga)
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *os_ = cnp.PyArray_DATA(oa)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _gradient_chunks(self.op, from_y, <const double *>gs, <const double *>xs,
                                 <double *>os_, n, &self.P, nt)
            else:
                _gradient_chunks(self.op, from_y, <const float *>gs, <const float *>xs,
                                 <float *>os_, n, &self.P, nt)
        return oa


cdef void _gradient_chunks(int op, bint from_y, const floating *gp, const floating *sp,
                           floating *op_, int64_t n, const fa_params *pp,
                           int nt) noexcept nogil:
    """FastOp's gradient: from y = f(x) (sp = y) or from x (sp = x, no bias)."""
    if from_y:
        _backward_y_chunks(op, gp, sp, op_, n, pp, nt)
    else:
        _backward_chunks(op, gp, sp, op_, n, <const floating *>NULL, 0, pp, nt)


cdef inline void _backward_y(int op, const floating *g, const floating *y, floating *gi,
                             int64_t start, int64_t stop, const fa_params *P) noexcept nogil:
    if floating is float:
        _table.backward_y_f32(op, g, y, gi, start, stop, P)
    else:
        _table.backward_y_f64(op, g, y, gi, start, stop, P)


cdef void _backward_y_chunks(int op, const floating *gp, const floating *yp, floating *op_,
                             int64_t n, const fa_params *pp, int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _backward_y(op, gp, yp, op_, 0, n, pp)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _backward_y(op, gp, yp, op_, _bound(n, nt, c), _bound(n, nt, c + 1), pp)


def backward_y(int op, const floating[::1] g, const floating[::1] y, floating[::1] gi,
               tuple params, int nthreads):
    """gi = g * f'(x) computed from y = f(x)."""
    cdef fa_params P = _params(params, 0)
    cdef const fa_params *pp = &P
    cdef int64_t n = y.shape[0]
    cdef const floating *gp = &g[0]
    cdef const floating *yp = &y[0]
    cdef floating *op_ = &gi[0]
    cdef int nt = _threads(nthreads, n // _ALIGN)
    with nogil:
        _backward_y_chunks(op, gp, yp, op_, n, pp, nt)


# ---- along an axis: (outer, L, inner) layouts, chunked over outer ---------

cdef inline int64_t _obound(int64_t n, int64_t nchunks, int64_t c) noexcept nogil:
    return n if c >= nchunks else (n * c) // nchunks


cdef inline void _softmax(int log_form, const floating *x, floating *y, int64_t o0,
                          int64_t o1, int64_t L, int64_t inner) noexcept nogil:
    if floating is float:
        _table.softmax_f32(log_form, x, y, o0, o1, L, inner)
    else:
        _table.softmax_f64(log_form, x, y, o0, o1, L, inner)


cdef inline void _softmax_chunks(int log_form, const floating *xp, floating *yp,
                                 int64_t outer, int64_t L, int64_t inner, int nt) noexcept nogil:
    """The rows [0, outer) in nt static chunks (nt from _threads)."""
    cdef int64_t c
    if nt == 1:
        _softmax(log_form, xp, yp, 0, outer, L, inner)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _softmax(log_form, xp, yp, _obound(outer, nt, c), _obound(outer, nt, c + 1), L, inner)


def softmax(bint log_form, const floating[::1] x, floating[::1] y, int64_t outer,
            int64_t L, int64_t inner, int nthreads):
    cdef const floating *xp = &x[0]
    cdef floating *yp = &y[0]
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _softmax_chunks(log_form, xp, yp, outer, L, inner, nt)


cdef inline void _softmax_backward(int log_form, const floating *g, const floating *y,
                                   floating *gi, int64_t o0, int64_t o1, int64_t L,
                                   int64_t inner) noexcept nogil:
    if floating is float:
        _table.softmax_backward_f32(log_form, g, y, gi, o0, o1, L, inner)
    else:
        _table.softmax_backward_f64(log_form, g, y, gi, o0, o1, L, inner)


cdef inline void _softmax_backward_chunks(int log_form, const floating *gp,
                                          const floating *yp, floating *op_, int64_t outer,
                                          int64_t L, int64_t inner, int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _softmax_backward(log_form, gp, yp, op_, 0, outer, L, inner)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _softmax_backward(log_form, gp, yp, op_, _obound(outer, nt, c),
                              _obound(outer, nt, c + 1), L, inner)


def softmax_backward(bint log_form, const floating[::1] g, const floating[::1] y,
                     floating[::1] gi, int64_t outer, int64_t L, int64_t inner, int nthreads):
    cdef const floating *gp = &g[0]
    cdef const floating *yp = &y[0]
    cdef floating *op_ = &gi[0]
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _softmax_backward_chunks(log_form, gp, yp, op_, outer, L, inner, nt)


cdef class FastSoftmax:
    """The direct path of softmax or log_softmax along the last axis, as
    FastOp is for the element-wise ops: forward(x, axis, out) and
    backward(g, y, axis, out) for arrays FastOp would serve, axis -1 or
    ndim - 1 (an int), and `out` None or such an array that is an input
    itself or overlaps none (the kernels read each element before writing
    its result).  A call runs on the threads the general path would choose
    (`threads_for(size, True)`, at most one per row) in the same row chunks,
    so the results are the same bits.  They return the result, or None --
    having written nothing -- for every other call, which then takes the
    general path of _api.py, whose argument handling this skips (one thread,
    float32, out=, both paths in one run: softmax of 1000 elements 5.6 ->
    1.6 us, of 16 elements 6.3 -> 0.45; softmax' of 1000, 7.4 -> 0.8)."""
    cdef bint log_form
    cdef object threads

    def __init__(self, bint log_form, threads):
        self.log_form = log_form
        self.threads = threads  # the module fastact._threads

    cdef int _rows(self, cnp.ndarray a, int64_t *outer, int64_t *L) except -1:
        """a's rows along its last axis (*outer of length *L) and the threads
        the general path would choose: threads_for (1 below the module's
        threshold, read each call), then at most one thread per row."""
        cdef int64_t n = cnp.PyArray_SIZE(a)
        L[0] = cnp.PyArray_DIMS(a)[cnp.PyArray_NDIM(a) - 1]
        outer[0] = n // L[0]
        if outer[0] < 2:
            return 1
        return _threads(_asked_threads(self.threads, n, True), outer[0])

    def forward(self, x, axis, out):
        cdef cnp.ndarray xa = _fast_array(x)
        if xa is None or not _last_axis(axis, xa):
            return None
        cdef cnp.ndarray ya = _fast_out(out, xa)
        if ya is None or _overlaps(xa, ya):
            return None
        cdef int64_t outer, L
        cdef int nt = self._rows(xa, &outer, &L)
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *ys = cnp.PyArray_DATA(ya)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _softmax_chunks(self.log_form, <const double *>xs, <double *>ys, outer, L, 1, nt)
            else:
                _softmax_chunks(self.log_form, <const float *>xs, <float *>ys, outer, L, 1, nt)
        return ya

    def backward(self, g, y, axis, out):
        cdef cnp.ndarray ga = _fast_array(g)
        cdef cnp.ndarray ya = _fast_array(y)
        if ga is None or ya is None or not _same_shape(ga, ya) or not _last_axis(axis, ya):
            return None
        cdef cnp.ndarray oa = _fast_out(out, ya)
        if oa is None or _overlaps(ga, oa) or _overlaps(ya, oa):
            return None
        cdef int64_t outer, L
        cdef int nt = self._rows(ya, &outer, &L)
        cdef void *gs = cnp.PyArray_DATA(ga)
        cdef void *ys = cnp.PyArray_DATA(ya)
        cdef void *os_ = cnp.PyArray_DATA(oa)
        with nogil:
            if cnp.PyArray_TYPE(ya) == cnp.NPY_FLOAT64:
                _softmax_backward_chunks(self.log_form, <const double *>gs, <const double *>ys,
                                         <double *>os_, outer, L, 1, nt)
            else:
                _softmax_backward_chunks(self.log_form, <const float *>gs, <const float *>ys,
                                         <float *>os_, outer, L, 1, nt)
        return oa


cdef inline int _axis_index(object axis, int nd):
    """`axis` (a plain int, not a bool) as an index in [0, nd); -1 for every
    other value, which the general path validates."""
    if type(axis) is not int or not (-nd <= axis < nd):
        return -1
    cdef int ax = axis
    return ax + nd if ax < 0 else ax


cdef inline bint _last_axis(object axis, cnp.ndarray a):
    """Whether `axis` is a plain int naming a's last axis."""
    cdef int nd = cnp.PyArray_NDIM(a)
    return _axis_index(axis, nd) == nd - 1


cdef inline void _maxout(const floating *x, floating *y, int64_t o0, int64_t o1, int64_t K,
                         int64_t pieces, int64_t inner) noexcept nogil:
    if floating is float:
        _table.maxout_f32(x, y, o0, o1, K, pieces, inner)
    else:
        _table.maxout_f64(x, y, o0, o1, K, pieces, inner)


cdef void _maxout_chunks(const floating *xp, floating *yp, int64_t outer, int64_t K,
                         int64_t pieces, int64_t inner, int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _maxout(xp, yp, 0, outer, K, pieces, inner)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _maxout(xp, yp, _obound(outer, nt, c), _obound(outer, nt, c + 1), K, pieces, inner)


def maxout(const floating[::1] x, floating[::1] y, int64_t outer, int64_t K,
           int64_t pieces, int64_t inner, int nthreads):
    cdef const floating *xp = &x[0]
    cdef floating *yp = &y[0]
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _maxout_chunks(xp, yp, outer, K, pieces, inner, nt)


cdef inline void _maxout_backward(const floating *g, const floating *x, floating *gi,
                                  int64_t o0, int64_t o1, int64_t K, int64_t pieces,
                                  int64_t inner) noexcept nogil:
    if floating is float:
        _table.maxout_backward_f32(g, x, gi, o0, o1, K, pieces, inner)
    else:
        _table.maxout_backward_f64(g, x, gi, o0, o1, K, pieces, inner)


cdef void _maxout_backward_chunks(const floating *gp, const floating *xp, floating *op_,
                                  int64_t outer, int64_t K, int64_t pieces, int64_t inner,
                                  int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _maxout_backward(gp, xp, op_, 0, outer, K, pieces, inner)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _maxout_backward(gp, xp, op_, _obound(outer, nt, c), _obound(outer, nt, c + 1),
                             K, pieces, inner)


def maxout_backward(const floating[::1] g, const floating[::1] x, floating[::1] gi,
                    int64_t outer, int64_t K, int64_t pieces, int64_t inner, int nthreads):
    cdef const floating *gp = &g[0]
    cdef const floating *xp = &x[0]
    cdef floating *op_ = &gi[0]
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _maxout_backward_chunks(gp, xp, op_, outer, K, pieces, inner, nt)


cdef inline void _prelu(const floating *x, const floating *w, floating *y, int64_t o0,
                        int64_t o1, int64_t C, int64_t inner, const floating *b,
                        int64_t ncols) noexcept nogil:
    if floating is float:
        _table.prelu_f32(x, w, y, o0, o1, C, inner, b, ncols)
    else:
        _table.prelu_f64(x, w, y, o0, o1, C, inner, b, ncols)


cdef void _prelu_chunks(const floating *xp, const floating *wp, floating *yp, int64_t outer,
                        int64_t C, int64_t inner, const floating *bp, int64_t ncols,
                        int nt) noexcept nogil:
    cdef int64_t c
    if nt == 1:
        _prelu(xp, wp, yp, 0, outer, C, inner, bp, ncols)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _prelu(xp, wp, yp, _obound(outer, nt, c), _obound(outer, nt, c + 1), C, inner,
                   bp, ncols)


def prelu(const floating[::1] x, const floating[::1] w, floating[::1] y,
          const floating[::1] bias, int64_t outer, int64_t C, int64_t inner, int nthreads):
    cdef const floating *xp = &x[0]
    cdef const floating *wp = &w[0]
    cdef floating *yp = &y[0]
    cdef const floating *bp = _ptr_or_null(bias)
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _prelu_chunks(xp, wp, yp, outer, C, inner, bp, bias.shape[0], nt)


cdef inline void _prelu_backward(const floating *g, const floating *x, const floating *w,
                                 floating *gi, int64_t o0, int64_t o1, int64_t C,
                                 int64_t inner, const floating *b, int64_t ncols) noexcept nogil:
    if floating is float:
        _table.prelu_backward_f32(g, x, w, gi, o0, o1, C, inner, b, ncols)
    else:
        _table.prelu_backward_f64(g, x, w, gi, o0, o1, C, inner, b, ncols)


cdef inline void _prelu_weight_grad(const floating *g, const floating *x, floating *gw,
                                    int64_t c0, int64_t c1, int64_t outer, int64_t C,
                                    int64_t inner, const floating *b, int64_t ncols) noexcept nogil:
    if floating is float:
        _table.prelu_weight_grad_f32(g, x, gw, c0, c1, outer, C, inner, b, ncols)
    else:
        _table.prelu_weight_grad_f64(g, x, gw, c0, c1, outer, C, inner, b, ncols)


cdef void _prelu_backward_chunks(const floating *gp, const floating *xp, const floating *wp,
                                 floating *op_, floating *gwp, int64_t outer, int64_t C,
                                 int64_t inner, const floating *bp, int64_t ncols, int ntw,
                                 int nt) noexcept nogil:
    """grad_weight into gwp on ntw threads (one channel block each, each
    channel summed in one fixed order), then grad_input into op_ on nt
    threads.  gw is computed before gi is written, so gi may be g."""
    cdef int64_t c
    if ntw == 1:
        _prelu_weight_grad(gp, xp, gwp, 0, C, outer, C, inner, bp, ncols)
    else:
        for c in prange(ntw, schedule="static", num_threads=ntw):
            _prelu_weight_grad(gp, xp, gwp, _obound(C, ntw, c), _obound(C, ntw, c + 1),
                               outer, C, inner, bp, ncols)
    if nt == 1:
        _prelu_backward(gp, xp, wp, op_, 0, outer, C, inner, bp, ncols)
    else:
        for c in prange(nt, schedule="static", num_threads=nt):
            _prelu_backward(gp, xp, wp, op_, _obound(outer, nt, c), _obound(outer, nt, c + 1),
                            C, inner, bp, ncols)


def prelu_backward(const floating[::1] g, const floating[::1] x, const floating[::1] w,
                   floating[::1] gi, floating[::1] gw, const floating[::1] bias,
                   int64_t outer, int64_t C, int64_t inner, int nthreads):
    """grad_input into gi, grad_weight into gw (_prelu_backward_chunks)."""
    cdef const floating *gp = &g[0]
    cdef const floating *xp = &x[0]
    cdef const floating *wp = &w[0]
    cdef floating *op_ = &gi[0]
    cdef floating *gwp = &gw[0]
    cdef const floating *bp = _ptr_or_null(bias)
    cdef int ntw = _threads(nthreads, C)
    cdef int nt = _threads(nthreads, outer)
    with nogil:
        _prelu_backward_chunks(gp, xp, wp, op_, gwp, outer, C, inner, bp, bias.shape[0], ntw, nt)


# ---------------------------------------------------------------------------
# Direct paths of prelu and maxout (as FastOp is for the element-wise ops)

cdef inline int64_t _extent(cnp.ndarray a, int k0, int k1):
    """The product of a's dimensions k0 .. k1 - 1."""
    cdef int64_t n = 1
    cdef int k
    for k in range(k0, k1):
        n *= cnp.PyArray_DIMS(a)[k]
    return n


cdef class FastPrelu:
    """The direct path of prelu: forward(x, weight, axis, out) and
    backward(g, x, weight, axis, out) for arrays FastOp would serve, with no
    bias, `weight` a Python float or a 1-D array of x's dtype (C-contiguous,
    aligned, native-endian) of the general path's length that shares no
    memory with the result, `axis` a plain int in range (ignored for 1-D x,
    as there), and `out` None or such an array that is an input itself or
    overlaps none.  The same kernels, threads and chunks as the general path
    (a float weight rounded to x's dtype as NumPy rounds it), so the same
    bits; every other call gets None, having written nothing, and takes the
    general path of _api.py, whose argument handling this skips."""
    cdef object threads

    def __init__(self, threads):
        self.threads = threads  # the module fastact._threads

    cdef object _weight(self, cnp.ndarray xa, object weight, object axis, int64_t *dims):
        """The weight (a float, or an ndarray that fits x) and dims = (outer,
        C, inner), or None for a call this does not serve."""
        cdef int nd = cnp.PyArray_NDIM(xa), ax = 0
        cdef int64_t n = cnp.PyArray_SIZE(xa), C = 1, inner = 1
        if nd >= 2:
            ax = _axis_index(axis, nd)
            if ax < 0:
                return None
        if type(weight) is float:  # one channel: every element its own row
            dims[0], dims[1], dims[2] = n, 1, 1
            return weight
        cdef cnp.ndarray wa = _fast_array(weight)
        if (wa is None or cnp.PyArray_NDIM(wa) != 1
                or cnp.PyArray_TYPE(wa) != cnp.PyArray_TYPE(xa)):
            return None
        if nd >= 2:
            C = cnp.PyArray_DIMS(xa)[ax]
            inner = _extent(xa, ax + 1, nd)
        if cnp.PyArray_DIMS(wa)[0] != C:
            return None
        dims[0], dims[1], dims[2] = n // (C * inner), C, inner
        return wa

    def forward(self, x, weight, axis, out):
        cdef cnp.ndarray xa = _fast_array(x)
        if xa is None:
            return None
        cdef int64_t dims[3]
        w = self._weight(xa, weight, axis, dims)
        if w is None:
            return None
        cdef cnp.ndarray ya = _fast_out(out, xa)
        if ya is None or _overlaps(xa, ya) or (type(w) is not float and _shares(w, ya)):
            return None
        cdef int nt = _threads(_asked_threads(self.threads, cnp.PyArray_SIZE(xa), False),
                                dims[0])
        cdef double wd = w if type(w) is float else 0.0
        cdef float wf = <float>wd
        cdef void *ws = cnp.PyArray_DATA(w) if type(w) is not float else NULL
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *ys = cnp.PyArray_DATA(ya)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _prelu_chunks(<const double *>xs, <const double *>ws if ws else &wd,
                              <double *>ys, dims[0], dims[1], dims[2], <const double *>NULL,
                              0, nt)
            else:
                _prelu_chunks(<const float *>xs, <const float *>ws if ws else &wf,
                              <float *>ys, dims[0], dims[1], dims[2], <const float *>NULL,
                              0, nt)
        return ya

    def backward(self, g, x, weight, axis, out):
        cdef cnp.ndarray ga = _fast_array(g)
        cdef cnp.ndarray xa = _fast_array(x)
        if ga is None or xa is None or not _same_shape(ga, xa):
            return None
        cdef int64_t dims[3]
        w = self._weight(xa, weight, axis, dims)
        if w is None:
            return None
        cdef cnp.ndarray oa = _fast_out(out, xa)
        if (oa is None or _overlaps(ga, oa) or _overlaps(xa, oa)
                or (type(w) is not float and _shares(w, oa))):
            return None
        cdef cnp.npy_intp C = dims[1]
        cdef cnp.ndarray gw = cnp.PyArray_ZEROS(1, &C, cnp.PyArray_TYPE(xa), 0)
        cdef int nthreads = _asked_threads(self.threads, cnp.PyArray_SIZE(xa), False)
        cdef int ntw = _threads(nthreads, dims[1]), nt = _threads(nthreads, dims[0])
        cdef double wd = w if type(w) is float else 0.0
        cdef float wf = <float>wd
        cdef void *ws = cnp.PyArray_DATA(w) if type(w) is not float else NULL
        cdef void *gs = cnp.PyArray_DATA(ga)
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *os_ = cnp.PyArray_DATA(oa)
        cdef void *gws = cnp.PyArray_DATA(gw)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _prelu_backward_chunks(<const double *>gs, <const double *>xs,
                                       <const double *>ws if ws else &wd, <double *>os_,
                                       <double *>gws, dims[0], dims[1], dims[2],
                                       <const double *>NULL, 0, ntw, nt)
            else:
                _prelu_backward_chunks(<const float *>gs, <const float *>xs,
                                       <const float *>ws if ws else &wf, <float *>os_,
                                       <float *>gws, dims[0], dims[1], dims[2],
                                       <const float *>NULL, 0, ntw, nt)
        return oa, (gw.reshape(()) if type(w) is float else gw)


cdef class FastMaxout:
    """The direct path of maxout: forward(x, pieces, axis, out) and
    backward(g, x, pieces, axis, out) for arrays FastOp would serve, `pieces`
    and `axis` plain ints (axis in range, pieces >= 1 dividing x.shape[axis]),
    and `out` None or such an array of the result's shape that shares no
    memory with x's groups (backward: `out` may be x itself) nor with g.
    The same kernels, threads and chunks as the general path, so the same
    bits; every other call gets None, having written nothing, and takes the
    general path of _api.py."""
    cdef object threads

    def __init__(self, threads):
        self.threads = threads  # the module fastact._threads

    cdef int _groups(self, cnp.ndarray xa, object pieces, object axis, int64_t *dims,
                     cnp.npy_intp *shape) except -2:
        """dims = (outer, K, pieces, inner) and the result's shape (K groups
        along the axis); -1 for a call this does not serve."""
        cdef int nd = cnp.PyArray_NDIM(xa), ax = _axis_index(axis, nd), k
        if ax < 0 or nd > 64:
            return -1
        cdef int64_t length = cnp.PyArray_DIMS(xa)[ax]
        if type(pieces) is not int or not (1 <= pieces <= length):
            return -1
        cdef int64_t p = pieces
        if length % p:
            return -1
        for k in range(nd):
            shape[k] = cnp.PyArray_DIMS(xa)[k]
        shape[ax] = length // p
        dims[0], dims[1], dims[2] = _extent(xa, 0, ax), length // p, p
        dims[3] = _extent(xa, ax + 1, nd)
        return 0

    def forward(self, x, pieces, axis, out):
        cdef cnp.ndarray xa = _fast_array(x)
        if xa is None:
            return None
        cdef int64_t dims[4]
        cdef cnp.npy_intp shape[64]
        if self._groups(xa, pieces, axis, dims, shape) < 0:
            return None
        cdef int nd = cnp.PyArray_NDIM(xa)
        cdef cnp.ndarray ya = _fast_out_shape(out, nd, shape, cnp.PyArray_TYPE(xa))
        if ya is None or _shares(xa, ya):
            return None
        cdef int nt = _threads(_asked_threads(self.threads, cnp.PyArray_SIZE(xa), False),
                                dims[0])
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *ys = cnp.PyArray_DATA(ya)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _maxout_chunks(<const double *>xs, <double *>ys, dims[0], dims[1], dims[2],
                               dims[3], nt)
            else:
                _maxout_chunks(<const float *>xs, <float *>ys, dims[0], dims[1], dims[2],
                               dims[3], nt)
        return ya

    def backward(self, g, x, pieces, axis, out):
        cdef cnp.ndarray ga = _fast_array(g)
        cdef cnp.ndarray xa = _fast_array(x)
        if ga is None or xa is None or cnp.PyArray_TYPE(ga) != cnp.PyArray_TYPE(xa):
            return None
        cdef int64_t dims[4]
        cdef cnp.npy_intp shape[64]
        if self._groups(xa, pieces, axis, dims, shape) < 0:
            return None
        cdef int k, nd = cnp.PyArray_NDIM(xa)
        if cnp.PyArray_NDIM(ga) != nd:
            return None
        for k in range(nd):
            if cnp.PyArray_DIMS(ga)[k] != shape[k]:
                return None
        cdef cnp.ndarray oa = _fast_out(out, xa)
        if oa is None or _overlaps(xa, oa) or _shares(ga, oa):
            return None
        cdef int nt = _threads(_asked_threads(self.threads, cnp.PyArray_SIZE(xa), False),
                                dims[0])
        cdef void *gs = cnp.PyArray_DATA(ga)
        cdef void *xs = cnp.PyArray_DATA(xa)
        cdef void *os_ = cnp.PyArray_DATA(oa)
        with nogil:
            if cnp.PyArray_TYPE(xa) == cnp.NPY_FLOAT64:
                _maxout_backward_chunks(<const double *>gs, <const double *>xs, <double *>os_,
                                        dims[0], dims[1], dims[2], dims[3], nt)
            else:
                _maxout_backward_chunks(<const float *>gs, <const float *>xs, <float *>os_,
                                        dims[0], dims[1], dims[2], dims[3], nt)
        return oa
