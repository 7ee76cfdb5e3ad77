"""The array protocol of tracers: Python operators, `@`, `.T`, `.mT`, array methods, and NumPy's
`__array_ufunc__` / `__array_function__`, so that plain NumPy calls on traced values dispatch to
functrans.numpy. Attached to `core.Tracer` here, because the core knows no NumPy semantics."""

from __future__ import annotations

import numpy as np

from functrans import numpy as fnp
from functrans.core import Tracer


def _swap(fn):
    return lambda self, other: fn(other, self)


def _setitem(self, idx, value):
    raise TypeError(
        f"traced arrays are immutable: x[...] = v on a traced {self.aval.str_short()} is not "
        "supported. Use the functional update y = x.at[idx].set(v) (also .add, .multiply, .min, "
        ".max), which returns a new array."
    )


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    fn = getattr(fnp, ufunc.__name__, None)
    if method != "__call__" or fn is None or kwargs.get("out") is not None:
        return NotImplemented
    kwargs.pop("out", None)
    return fn(*inputs, **kwargs)


def _array_function(self, func, types, args, kwargs):
    namespace = _SUBMODULES.get(func.__module__, fnp)
    fn = getattr(namespace, func.__name__, None)
    if fn is None or fn is func:
        raise TypeError(
            f"numpy.{func.__name__} was called on a traced value, and functrans.numpy has no "
            f"{func.__name__} yet; it cannot be traced. Rewrite it with functrans.numpy "
            "functions, or apply it to concrete arrays outside the transformation."
        )
    return fn(*args, **kwargs)


_SUBMODULES = {"numpy.linalg": fnp.linalg, "numpy.fft": fnp.fft}


def _operator_power(x, y):
    """`x ** y` as NumPy's operator computes it: for an inexact x and the Python exponents 0.5
    and -1 (an int) it takes sqrt and reciprocal, and for 2 (an int) square, whose special values
    (and, for complex x, last bits) differ from np.power's; every other case is np.power."""
    if (type(y) is float and y == 0.5) or (type(y) is int and y == -1):
        if x.aval.dtype.kind in "fc":
            return fnp.sqrt(x) if y == 0.5 else fnp.reciprocal(x)
    if type(y) is int and y == 2:
        return fnp.square(x)  # NumPy's square: for complex x, not np.power's bits
    return fnp.power(x, y)


_METHODS = {
    "__add__": fnp.add,
    "__radd__": _swap(fnp.add),
    "__sub__": fnp.subtract,
    "__rsub__": _swap(fnp.subtract),
    "__mul__": fnp.multiply,
    "__rmul__": _swap(fnp.multiply),
    "__truediv__": fnp.true_divide,
    "__rtruediv__": _swap(fnp.true_divide),
    "__floordiv__": fnp.floor_divide,
    "__rfloordiv__": _swap(fnp.floor_divide),
    "__pow__": _operator_power,
    "__rpow__": _swap(fnp.power),
    "__matmul__": fnp.matmul,
    "__rmatmul__": _swap(fnp.matmul),
    "__neg__": fnp.negative,
    "__pos__": fnp.positive,
    "__abs__": fnp.absolute,
    "__lt__": fnp.less,
    "__le__": fnp.less_equal,
    "__gt__": fnp.greater,
    "__ge__": fnp.greater_equal,
    "__eq__": fnp.equal,
    "__ne__": fnp.not_equal,
    "__and__": fnp.bitwise_and,
    "__rand__": _swap(fnp.bitwise_and),
    "__or__": fnp.bitwise_or,
    "__ror__": _swap(fnp.bitwise_or),
    "__invert__": fnp.invert,
    "__getitem__": fnp._indexing.getitem,
    "__setitem__": _setitem,
    "__array_ufunc__": _array_ufunc,
    "__array_function__": _array_function,
    "sum": fnp.sum,
    "prod": fnp.prod,
    "mean": fnp.mean,
    "max": fnp.max,
    "min": fnp.min,
    "argmax": fnp.argmax,
    "argmin": fnp.argmin,
    "dot": fnp.dot,
    "ravel": fnp.ravel,
    "copy": fnp.copy,
    "flatten": fnp.ravel,
    "squeeze": fnp.squeeze,
    "swapaxes": fnp.swapaxes,
    "astype": fnp.astype,
    "clip": fnp.clip,
    "conj": fnp.conj,
    "conjugate": fnp.conjugate,
    "__mod__": fnp.remainder,
    "__rmod__": _swap(fnp.remainder),
    "__xor__": fnp.bitwise_xor,
    "__rxor__": _swap(fnp.bitwise_xor),
    "round": fnp.round,
    "all": fnp.all,
    "any": fnp.any,
    "cumsum": fnp.cumsum,
    "cumprod": fnp.cumprod,
    "var": fnp.var,
    "std": fnp.std,
    "trace": fnp.trace,
    "diagonal": fnp.diagonal,
    "repeat": fnp.repeat,
    "take": fnp.take,
    "argsort": fnp.argsort,
    "searchsorted": fnp.searchsorted,
    "nonzero": fnp.nonzero,
    "sort": lambda self, *args, **kwargs: _sort_in_place(self),
}


def _sort_in_place(self):
    raise TypeError(
        f"x.sort() sorts in place, but a traced {self.aval.str_short()} is immutable; use "
        "y = functrans.numpy.sort(x, axis=...) (or np.sort(x)), which returns a sorted copy."
    )


def _reshape(self, *shape, order="C"):
    return fnp.reshape(self, shape[0] if len(shape) == 1 else shape, order=order)


def _transpose(self, *axes):
    return fnp.transpose(self, axes[0] if len(axes) == 1 else (axes or None))


def _matrix_transpose(self):
    if self.aval.ndim < 2:
        raise ValueError(
            f"matrix transpose with ndim < 2 is undefined (x.mT of a traced "
            f"{self.aval.str_short()})"
        )
    return fnp.swapaxes(self, -1, -2)


def attach() -> None:
    for name, fn in _METHODS.items():
        setattr(Tracer, name, fn)
    Tracer.reshape = _reshape
    Tracer.transpose = _transpose
    Tracer.T = property(lambda self: fnp.transpose(self))
    Tracer.mT = property(_matrix_transpose)
    Tracer.itemsize = property(lambda self: self.aval.dtype.itemsize)
    Tracer.nbytes = property(lambda self: self.aval.size * self.aval.dtype.itemsize)
    Tracer.at = property(lambda self: fnp.at(self))
    Tracer.real = property(lambda self: fnp.real(self))
    Tracer.imag = property(lambda self: fnp.imag(self))


__all__ = ["attach", "np"]
