"""Exercise 07: the backward pass of a Linear layer, checked by finite differences.  <- the file you edit.

Read first: docs "Learn 7: A tiny training library", sections 1-3
(docs/learn/training-library.md).
Check your work: ``python -m exercises 07`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only (the tests compare with ``refquant.nn.Linear`` and with finite differences). Shapes, as in
``torch.nn.Linear``: input ``x`` (N, K), weight ``w`` (J, K), bias ``b`` (J,), output (N, J).
``grad_y`` is G = dL/dY, the gradient of a scalar loss L with respect to the output, (N, J).
Keep the input's dtype (float32 or float64) in everything you return.
"""

import numpy as np


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Learn 7, eq. (2): ``Y = X W^T + b``, shape (N, J)."""
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("linear_forward")
    # END YOUR SOLUTION


def linear_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learn 7, eqs. (3)-(5). Return ``(grad_x, grad_w, grad_b)``:

    * ``grad_x`` = dL/dX, shape (N, K) like ``x``           (eq. (5));
    * ``grad_w`` = dL/dW, shape (J, K) like ``w``           (eq. (3));
    * ``grad_b`` = dL/db, shape (J,), like the bias         (eq. (4)).

    Every example in the batch used the same ``w`` and ``b``: their gradients add up over the batch.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("linear_backward")
    # END YOUR SOLUTION


def numerical_gradient(f, a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Learn 7, eq. (6): the central-difference estimate of dL/da, an array of ``a``'s shape.

    ``f()`` takes no argument and returns the scalar loss L computed from the *current* contents
    of ``a``. For each element ``a[i]``: set it to ``a[i] + h``, call ``f``; set it to ``a[i] - h``,
    call ``f``; restore it; the estimate is ``(L_plus - L_minus) / (2 h)``. When you return, ``a``
    must hold exactly its original values.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("numerical_gradient")
    # END YOUR SOLUTION
