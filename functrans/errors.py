"""Every exception functrans raises on purpose, in one place.

Each class subclasses TypeError or ValueError so existing ``except`` clauses keep working. Messages
say what happened, where (transform, argument key path, primitive), what was seen (an aval such as
``float64[3,4]``, never an array dump) and how to fix it.
"""

from __future__ import annotations


class FunctransError(Exception):
    """Base class of every functrans error (always combined with TypeError or ValueError)."""


class TreeStructureError(FunctransError, ValueError):
    """Two pytrees (or a pytree and a prefix of it) do not have the same structure."""


class ArgnumsError(FunctransError, ValueError):
    """``argnums`` names an argument that does not exist or is repeated."""


class NonScalarOutputError(FunctransError, TypeError):
    """``grad`` was applied to a function whose output is not a real scalar."""


class NonDifferentiableInputError(FunctransError, TypeError):
    """An integer, boolean or otherwise non-float value was passed where a derivative is taken."""


class ShapeDtypeMismatchError(FunctransError, ValueError):
    """A tangent, cotangent or operand does not match the shape/dtype it must have."""


class LeakedTracerError(FunctransError, TypeError):
    """A tracer was used after the transformation that created it had returned."""


class ConcretizationError(FunctransError, TypeError):
    """A traced value was needed as a concrete Python value (bool, int, float, index)."""


class TracerArrayConversionError(FunctransError, TypeError):
    """A traced value was passed to plain NumPy, which would silently drop the transformation."""


class MissingRuleError(FunctransError, TypeError):
    """A primitive has no rule for the transformation being applied to it."""


class NonLinearError(FunctransError, TypeError):
    """Transposition met an operation that is not linear in the value being transposed."""


class BatchingError(FunctransError, ValueError):
    """vmap was given inconsistent axes or sizes, or a batched value was made concrete."""


class NotSupportedError(FunctransError, ValueError):
    """A well-formed request that functrans does not support (an option, a mode, a derivative
    that is not unique); the message says what to use instead."""


class NonFiniteError(FunctransError, ValueError, FloatingPointError):
    """debug_nans: a primitive produced a NaN or inf from finite inputs."""


class JaxprTypeError(FunctransError, TypeError):
    """A staged program failed the type checker (an internal invariant, or a hand-built program)."""


def nonlinear_error(name: str) -> NonLinearError:
    return NonLinearError(
        f"reverse mode: primitive '{name}' was applied to a value that depends linearly on the "
        f"differentiated input, but '{name}' is not linear in that operand, so it cannot be "
        "transposed. This happens when a custom JVP rule applies a non-linear operation to a "
        "tangent; tangents may only be scaled, added, reshaped or contracted."
    )
