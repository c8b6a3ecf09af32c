"""Thread counts for the small products of this package's training loops.

A training step of a small network is a few small matrix products: torch's intra-op threads
and the BLAS threads then only add synchronization, and on a machine with few cores shared by
other processes their spinning can slow a run several times over.  :func:`threads_for` picks
one thread for small steps and torch's own count otherwise; :func:`limit_threads` and
:func:`thread_limit` apply a count to torch, to BLAS/OpenMP (through ``threadpoolctl`` when it
is installed) and to numba's kernels (which follow torch's count), and restore the previous
counts afterwards.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np
import torch

from ._validation import invalid

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - torch's own count is still set
    threadpool_limits = None

__all__ = ["SMALL_STEP", "threads_for", "limit_threads", "thread_limit"]

#: steps of fewer multiply-adds than this run on one thread by default
SMALL_STEP = 2**22


def threads_for(threads, multiply_adds: float) -> int:
    r"""The thread count for a step of ``multiply_adds`` multiply-adds.

    .. math::

        \text{threads} = \begin{cases} 1 & \text{multiply-adds} < 2^{22} \\
        \text{torch.get\_num\_threads()} & \text{otherwise} \end{cases}

    unless ``threads`` is given.

    Parameters
    ----------
    threads : int or None
        A positive count to use as is, or None to choose from the size of the step.
    multiply_adds : float
        Work of one step (e.g. ``3 * N * width * (n_in + n_out)`` for a forward and backward
        pass of a one-hidden-layer network over ``N`` samples).

    Returns
    -------
    int
    """
    if threads is None:
        return 1 if multiply_adds < SMALL_STEP else max(1, torch.get_num_threads())
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise invalid("threads", "None or a positive integer", threads)
    return int(threads)


def limit_threads(threads: int):
    """Set torch's (and, with ``threadpoolctl``, BLAS/OpenMP's) thread count to ``threads``.

    Returns a function without arguments that restores the previous counts.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    pools = threadpool_limits(limits=threads) if threadpool_limits is not None else None

    def restore():
        if pools is not None:
            pools.restore_original_limits()
        torch.set_num_threads(previous)

    return restore


@contextlib.contextmanager
def thread_limit(threads: int):
    """Context manager form of :func:`limit_threads`: the counts are restored on exit."""
    restore = limit_threads(threads)
    try:
        yield threads
    finally:
        restore()
