"""Property-test your own code: a softmax cross-entropy and its hand-written gradient.

functrans.testing checks the hand-written gradient against functrans.grad on inputs hypothesis
draws (float64 and float32), runs every applicable transform property on the loss, and then
shows the report for a deliberately wrong gradient. Run:  python examples/property_testing.py
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import functrans.numpy as fnp
from functrans.testing import assert_grad_matches, check_transforms
from functrans.testing import strategies as fts


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against label distributions (rows sum to 1)."""
    shifted = logits - fnp.max(logits, axis=-1, keepdims=True)
    log_probs = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=-1, keepdims=True))
    return -fnp.sum(labels * log_probs) / logits.shape[0]


def softmax_cross_entropy_grad(logits, labels):
    """d loss / d logits = (softmax(logits) - labels) / batch, for rows of labels summing to 1."""
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return (e / np.sum(e, axis=-1, keepdims=True) - labels) / logits.shape[0]


def wrong_softmax_cross_entropy_grad(logits, labels):
    """The classic slip: forgetting the 1/batch of the mean."""
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True) - labels


@st.composite
def logits_and_labels(draw, dtype):
    logits = draw(fts.arrays(fts.shapes(2, 2, 1, 5), dtype, min_value=-5.0, max_value=5.0))
    weights = draw(fts.arrays(logits.shape, dtype, min_value=0.1, max_value=1.0))
    return logits, weights / np.sum(weights, axis=-1, keepdims=True)  # soft labels


for dtype in (np.float64, np.float32):

    @settings(max_examples=10, derandomize=True, deadline=None)
    @given(logits_and_labels(dtype))
    def test_hand_written_gradient(args):
        assert_grad_matches(softmax_cross_entropy, softmax_cross_entropy_grad, args)
        check_transforms(softmax_cross_entropy, *args)

    test_hand_written_gradient()
    print(f"{np.dtype(dtype).name}: the hand-written gradient and every transform property hold")

logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.3, -2.0]])
ran = check_transforms(softmax_cross_entropy, logits, np.eye(3)[[0, 2]])
print("check_transforms ran:", ", ".join(ran))


@settings(max_examples=10, derandomize=True, deadline=None, database=None, print_blob=False)
@given(logits_and_labels(np.float64))
def test_wrong_gradient(args):
    assert_grad_matches(softmax_cross_entropy, wrong_softmax_cross_entropy_grad, args)


try:
    test_wrong_gradient()
except AssertionError as report:
    print("\nThe wrong gradient is caught; hypothesis shrinks the input and functrans reports:\n")
    print(report)
else:
    raise SystemExit("the wrong gradient was not caught")
