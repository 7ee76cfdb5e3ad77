"""Staged control flow: higher-order primitives whose params hold programs (ClosedJaxprs).

`lax` uses these only when a predicate or index is a traced value that is not known while
tracing (jit, make_jaxpr); otherwise control flow runs as Python. Each primitive has the full set
of rules, built from the transformations of its sub-programs:
- `cond(index, *operands, branches)`: JVP = cond of the branches' JVPs; batching = cond of
  batched branches, or a select over all branches when the index is batched; partial evaluation
  splits every branch into the work known now and a linear remainder (residual slots shared by
  the branches), and the remainder transposes branch by branch.
- `while_loop(*consts, *carry, cond, body)`: JVP = a loop over (primal, tangent) carries;
  batching = a loop that runs until every lane is done; reverse mode through a run-time tape.
- `scan(*consts, *carry, *xs, body)`: a loop over a leading axis; reverse mode stacks the
  residuals of each step (loop-invariant ones are computed once, before the loop) and
  transposes into a scan in the opposite direction.
Sub-programs never close over tracers: their captured values become explicit operands.
"""

from functrans.control_flow.cond import cond_p, staged_cond
from functrans.control_flow.scan import scan_p, staged_scan
from functrans.control_flow.while_loop import staged_while, while_p

__all__ = ["cond_p", "scan_p", "staged_cond", "staged_scan", "staged_while", "while_p"]
