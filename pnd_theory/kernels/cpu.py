r"""The numba kernels (CPU) of the fused per-sample masked linear map.

They compute the masks of the counter-based generator of :mod:`pnd_theory.kernels.counter`
inside the multiply-accumulate (see that module for the generator and the maps).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor

from .counter import GAMMA, MIX1, MIX2, counter_normals, drop_threshold, seed_key

try:
    import numba
    from llvmlite import ir as _llvm_ir
    from numba import njit, prange, types as _nb_types
    from numba.cpython.unsafe.numbers import leading_zeros
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - the torch route still works
    numba = None

__all__ = ["HAVE_NUMBA", "masked_linear_cpu", "masked_linear_grad_input_cpu", "masked_linear_grad_weight_cpu",
           "masked_linear_backward_cpu", "masked_linear_backward_conditional_cpu", "conditional_gaussian_cpu"]

HAVE_NUMBA = numba is not None

if HAVE_NUMBA:
    _G = np.uint64(GAMMA)
    _M1 = np.uint64(MIX1)
    _M2 = np.uint64(MIX2)
    _LO = np.uint64(0xFFFFFFFF)
    _ONE = np.uint64(1)
    _LN2 = math.log(2.0)
    _TWO_PI = 2.0 * math.pi
    # 1 / (2k + 1): ln m = 2 t sum_k t^(2k) / (2k + 1), t = (m - 1) / (m + 1), |t| < 0.172
    _LOG_C = tuple(1.0 / (2 * k + 1) for k in range(12))
    # Taylor coefficients of sin and cos on [0, pi/2): the terms left out are below 3e-16
    _SIN_C = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(11))
    _COS_C = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(12))

    @njit(inline="always")
    def _mix(z):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))

    @njit(inline="always")
    def _log_u_parts(a):
        """``(t, e)`` with ``(a + 1) 2^-32 = 2^(e - 32) (1 + t) / (1 - t)``, ``|t| < 0.172``: the
        range reduction of ``ln((a + 1) 2^-32)`` for a 32-bit ``a``, in integer operations."""
        v = a + _ONE  # in [1, 2^32]
        e = np.int64(63) - np.int64(leading_zeros(v))  # floor(log2 v)
        m = np.float64(v << np.uint64(32 - e)) * 2.0**-32  # v / 2^e in [1, 2)
        big = m > 1.4142135623730951
        m = m * 0.5 if big else m
        e = e + 1 if big else e
        return m, e

    @njit(inline="always")
    def _atanh_series(t, coef):
        """``ln((1 + t) / (1 - t)) = 2 t sum_k t^(2k) / (2k + 1)``, truncated to ``coef``."""
        t2 = t * t
        acc = coef[len(coef) - 1]
        for k in range(len(coef) - 2, -1, -1):
            acc = acc * t2 + coef[k]
        return 2.0 * t * acc

    @njit(inline="always")
    def _cos_sin(b, sin_c, cos_c):
        """``(cos, sin)`` of ``2 pi b 2^-32`` for a 32-bit ``b``: quadrant from the top two bits."""
        quadrant = np.int64(b >> np.uint64(30))
        x = np.float64(b & np.uint64(0x3FFFFFFF)) * (0.5 * math.pi * 2.0**-30)  # in [0, pi/2)
        x2 = x * x
        sn = sin_c[len(sin_c) - 1]
        for k in range(len(sin_c) - 2, -1, -1):
            sn = sn * x2 + sin_c[k]
        sn = sn * x
        cs = cos_c[len(cos_c) - 1]
        for k in range(len(cos_c) - 2, -1, -1):
            cs = cs * x2 + cos_c[k]
        odd = (quadrant & 1) == 1
        c = sn if odd else cs
        s = cs if odd else sn
        c = -c if ((quadrant + 1) >> 1) & 1 == 1 else c
        s = -s if quadrant >= 2 else s
        return c, s

    @njit(inline="always")
    def _box_muller64(h):
        """Two independent N(0, 1) values from one 64-bit output, to float64 rounding."""
        m, e = _log_u_parts(h >> np.uint64(32))
        log_u = _atanh_series((m - 1.0) / (m + 1.0), _LOG_C) + np.float64(e - 32) * _LN2
        rho = math.sqrt(-2.0 * log_u)
        c, s = _cos_sin(h & _LO, _SIN_C, _COS_C)
        return rho * c, rho * s

    @intrinsic
    def _f32_bits(typingctx, x):
        """The bit pattern of a float32 as a uint32 (a free reinterpretation)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.IntType(32))
        return _nb_types.uint32(_nb_types.float32), codegen

    @intrinsic
    def _bits_f32(typingctx, x):
        """The float32 of a uint32 bit pattern."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.FloatType())
        return _nb_types.float32(_nb_types.uint32), codegen

    _F = np.float32
    _F_ONE, _F_TWO, _F_M2 = _F(1.0), _F(2.0), _F(-2.0)
    _F_LN2 = _F(_LN2)
    _F_2P16 = _F(65536.0)
    _F_OCTANT = _F(0.25 * math.pi * 2.0**-29)
    # ln m = 2 t (1 + t^2/3 + ...): five terms leave out below 3e-10 for |t| < 0.172
    _LOG_F = tuple(_F(1.0 / (2 * k + 1)) for k in range(5))
    # sin and cos on [0, pi/4]: the terms left out are below 2e-9 and 3e-8
    _SIN_F = tuple(_F((-1.0) ** k / math.factorial(2 * k + 1)) for k in range(5))
    _COS_F = tuple(_F((-1.0) ** k / math.factorial(2 * k)) for k in range(5))

    @njit(inline="always")
    def _box_muller32(h):
        """Two N(0, 1) values to float32 accuracy, in float32 operations only (twice the vector
        width of float64), with no division by zero check and no branch, so that the loops
        around it vectorize.

        ``ln u``: ``v = a + 1 = 2^e (1 + f)`` with ``e`` the nearest power (``|f| <= 0.42``);
        ``f = (v - 2^e) 2^-e`` is formed from an exact integer difference, so ``ln u`` keeps
        its relative accuracy near ``u = 1`` (where ``rho`` is small).  ``cos`` and ``sin`` of
        ``2 pi b 2^-32``: octant from the top three bits, polynomials on ``[0, pi/4]``.
        """
        v = np.int64(h >> np.uint64(32)) + np.int64(1)  # in [1, 2^32]
        approx = _F(np.int32(v >> np.int64(16))) * _F_2P16 + _F(np.int32(v & np.int64(0xFFFF)))
        bits = _f32_bits(approx)
        up = np.int32((bits & np.uint32(0x7FFFFF)) > np.uint32(0x3504F3))  # mantissa above sqrt 2
        e = np.int32(bits >> np.uint32(23)) - np.int32(127) + up
        f = _F(np.int32(v - (np.int64(1) << np.int64(e)))) * _bits_f32(np.uint32(127 - e) << np.uint32(23))
        t = f / (_F_TWO + f)
        t2 = t * t
        acc = (((_LOG_F[4] * t2 + _LOG_F[3]) * t2 + _LOG_F[2]) * t2 + _LOG_F[1]) * t2 + _LOG_F[0]
        log_u = _F_TWO * t * acc + _F(e - np.int32(32)) * _F_LN2
        rho = np.sqrt(_F_M2 * log_u)
        b = np.uint32(h & _LO)
        octant = b >> np.uint32(29)
        low = b & np.uint32(0x1FFFFFFF)
        odd = octant & np.uint32(1)
        y = _F(np.int32(low + odd * (np.uint32(0x20000000) - low - low))) * _F_OCTANT  # in [0, pi/4]
        y2 = y * y
        sn = ((((_SIN_F[4] * y2 + _SIN_F[3]) * y2 + _SIN_F[2]) * y2 + _SIN_F[1]) * y2 + _SIN_F[0]) * y
        cs = (((_COS_F[4] * y2 + _COS_F[3]) * y2 + _COS_F[2]) * y2 + _COS_F[1]) * y2 + _COS_F[0]
        # angle = k pi/2 + phi, k = octant // 2; phi = y (even octant) or pi/2 - y (odd)
        cphi = sn if odd == np.uint32(1) else cs
        sphi = cs if odd == np.uint32(1) else sn
        k = octant >> np.uint32(1)
        swap = (k & np.uint32(1)) == np.uint32(1)
        c = sphi if swap else cphi
        s = cphi if swap else sphi
        c = -c if (k == np.uint32(1) or k == np.uint32(2)) else c
        s = -s if k >= np.uint32(2) else s
        return rho * c, rho * s

    @njit(inline="always")
    def _pair_drop(h, thr, scale, sigma):
        zero = scale - scale  # of the type of scale: float32 work stays in float32
        m0 = scale if (h >> np.uint64(32)) >= thr else zero
        m1 = scale if (h & _LO) >= thr else zero
        return m0, m1

    @njit(inline="always")
    def _pair_gauss32(h, thr, scale, sigma):
        z0, z1 = _box_muller32(h)
        return _F_ONE + sigma * z0, _F_ONE + sigma * z1

    @njit(inline="always")
    def _pair_gauss64(h, thr, scale, sigma):
        z0, z1 = _box_muller64(h)
        return 1.0 + sigma * z0, 1.0 + sigma * z1

    def _make_kernels(_pair):
        """The three kernels for one kind of mask value.

        One compiled loop per kind: with the kind a run-time flag the compiler kept the branch
        inside the inner loop and the Bernoulli kernels ran about twice as slow.  Kernels
        made here are compiled on first use in each process (about a second each): numba
        cannot cache closures.
        """

        @njit(parallel=True, fastmath=False, nogil=True, error_model="numpy")
        def _forward(x, wt, key, thr, scale, sigma, positions, out):
            rows, n_in = x.shape
            n_out = wt.shape[1]
            half = n_in // 2
            pairs = np.uint64((n_in + 1) // 2)
            step = pairs * _G  # from output j to j + 1
            for r in prange(rows):
                o = out[r]
                for j in range(n_out):
                    o[j] = 0.0
                s = np.uint64(r // positions)
                # two pairs of inputs per sweep over the outputs: two independent hash chains
                # in flight (the same values and order of summation as one pair at a time)
                for q2 in range(half // 2):
                    q = 2 * q2
                    base = key + (s * np.uint64(n_out) * pairs + np.uint64(q) + _ONE) * _G
                    x0 = x[r, 2 * q]
                    x1 = x[r, 2 * q + 1]
                    x2 = x[r, 2 * q + 2]
                    x3 = x[r, 2 * q + 3]
                    w0 = wt[2 * q]
                    w1 = wt[2 * q + 1]
                    w2 = wt[2 * q + 2]
                    w3 = wt[2 * q + 3]
                    for j in range(n_out):
                        c = base + np.uint64(j) * step
                        m0, m1 = _pair(_mix(c), thr, scale, sigma)
                        m2, m3 = _pair(_mix(c + _G), thr, scale, sigma)
                        o[j] += w0[j] * m0 * x0
                        o[j] += w1[j] * m1 * x1
                        o[j] += w2[j] * m2 * x2
                        o[j] += w3[j] * m3 * x3
                if half % 2 == 1:
                    q = half - 1
                    base = key + (s * np.uint64(n_out) * pairs + np.uint64(q) + _ONE) * _G
                    x0 = x[r, 2 * q]
                    x1 = x[r, 2 * q + 1]
                    w0 = wt[2 * q]
                    w1 = wt[2 * q + 1]
                    for j in range(n_out):
                        m0, m1 = _pair(_mix(base + np.uint64(j) * step), thr, scale, sigma)
                        o[j] += w0[j] * m0 * x0
                        o[j] += w1[j] * m1 * x1
                if n_in % 2 == 1:
                    base = key + (s * np.uint64(n_out) * pairs + np.uint64(half) + _ONE) * _G
                    x0 = x[r, n_in - 1]
                    w0 = wt[n_in - 1]
                    for j in range(n_out):
                        m0, m1 = _pair(_mix(base + np.uint64(j) * step), thr, scale, sigma)
                        o[j] += w0[j] * m0 * x0
            return out

        @njit(parallel=True, fastmath=False, nogil=True, error_model="numpy")
        def _grad_input(g, w, key, thr, scale, sigma, positions, out):
            rows, n_out = g.shape
            n_in = w.shape[1]
            half = n_in // 2
            pairs = np.uint64((n_in + 1) // 2)
            for r in prange(rows):
                o = out[r]
                for i in range(n_in):
                    o[i] = 0.0
                s = np.uint64(r // positions)
                for j in range(n_out):
                    gj = g[r, j]
                    wj = w[j]
                    base = key + ((s * np.uint64(n_out) + np.uint64(j)) * pairs + _ONE) * _G
                    for q in range(half):
                        m0, m1 = _pair(_mix(base + np.uint64(q) * _G), thr, scale, sigma)
                        o[2 * q] += gj * m0 * wj[2 * q]
                        o[2 * q + 1] += gj * m1 * wj[2 * q + 1]
                    if n_in % 2 == 1:
                        m0, m1 = _pair(_mix(base + np.uint64(half) * _G), thr, scale, sigma)
                        o[n_in - 1] += gj * m0 * wj[n_in - 1]
            return out

        @njit(parallel=True, fastmath=False, nogil=True, error_model="numpy")
        def _grad_weight(g, x, key, thr, scale, sigma, positions, out):
            rows, n_out = g.shape
            n_in = x.shape[1]
            half = n_in // 2
            pairs = np.uint64((n_in + 1) // 2)
            for j in prange(n_out):
                o = out[j]
                for i in range(n_in):
                    o[i] = 0.0
                for r in range(rows):
                    s = np.uint64(r // positions)
                    gj = g[r, j]
                    xr = x[r]
                    base = key + ((s * np.uint64(n_out) + np.uint64(j)) * pairs + _ONE) * _G
                    for q in range(half):
                        m0, m1 = _pair(_mix(base + np.uint64(q) * _G), thr, scale, sigma)
                        o[2 * q] += gj * m0 * xr[2 * q]
                        o[2 * q + 1] += gj * m1 * xr[2 * q + 1]
                    if n_in % 2 == 1:
                        m0, m1 = _pair(_mix(base + np.uint64(half) * _G), thr, scale, sigma)
                        o[n_in - 1] += gj * m0 * xr[n_in - 1]
            return out

        @njit(parallel=True, fastmath=False, nogil=True, error_model="numpy")
        def _backward(g, w, x, key, thr, scale, sigma, positions, gx, parts):
            """Both gradients from one regeneration of the masks: ``gx``, and for each fixed block
            of rows a partial weight gradient ``parts[block]`` (summed in block order after)."""
            rows, n_out = g.shape
            n_in = w.shape[1]
            half = n_in // 2
            pairs = np.uint64((n_in + 1) // 2)
            blocks = parts.shape[0]
            for blk in prange(blocks):
                part = parts[blk]
                for j in range(n_out):
                    for i in range(n_in):
                        part[j, i] = 0.0
                for r in range(blk * rows // blocks, (blk + 1) * rows // blocks):
                    o = gx[r]
                    for i in range(n_in):
                        o[i] = 0.0
                    s = np.uint64(r // positions)
                    xr = x[r]
                    for j in range(n_out):
                        gj = g[r, j]
                        wj = w[j]
                        pj = part[j]
                        base = key + ((s * np.uint64(n_out) + np.uint64(j)) * pairs + _ONE) * _G
                        for q in range(half):
                            m0, m1 = _pair(_mix(base + np.uint64(q) * _G), thr, scale, sigma)
                            a0 = gj * m0
                            a1 = gj * m1
                            o[2 * q] += a0 * wj[2 * q]
                            o[2 * q + 1] += a1 * wj[2 * q + 1]
                            pj[2 * q] += a0 * xr[2 * q]
                            pj[2 * q + 1] += a1 * xr[2 * q + 1]
                        if n_in % 2 == 1:
                            m0, m1 = _pair(_mix(base + np.uint64(half) * _G), thr, scale, sigma)
                            a0 = gj * m0
                            o[n_in - 1] += a0 * wj[n_in - 1]
                            pj[n_in - 1] += a0 * xr[n_in - 1]
            return gx

        return _forward, _grad_input, _grad_weight, _backward

    #: kernels by kind of mask: Bernoulli, Gaussian for float32 work, Gaussian for float64 work
    KERNELS = {"drop": _make_kernels(_pair_drop), "gauss32": _make_kernels(_pair_gauss32),
               "gauss64": _make_kernels(_pair_gauss64)}

    @njit(parallel=True, fastmath=False, nogil=True, error_model="numpy")
    def _conditional_forward(x, wt, sn, out):
        """``out[r, j] = W_j . x_r + sn[r, j] * sqrt(sum_i W_ji^2 x_ri^2)``, the forward of the
        conditional Gaussian map (``sn = sigma n``), in a fixed order of summation."""
        rows, n_in = x.shape
        n_out = wt.shape[1]
        for r in prange(rows):
            o = out[r]
            v2 = np.zeros(n_out, dtype=out.dtype)
            for j in range(n_out):
                o[j] = 0.0
            for i in range(n_in):
                xi = x[r, i]
                wi = wt[i]
                for j in range(n_out):
                    t = wi[j] * xi
                    o[j] += t
                    v2[j] += t * t
            for j in range(n_out):
                o[j] += sn[r, j] * np.sqrt(v2[j])
        return out

    def _make_conditional_backward(_box_muller):
        """The one-pass backward of the conditional Gaussian map (see
        :func:`masked_linear_backward_conditional_cpu`) for one float width."""

        # reassociation only: the sums over inputs vectorize; their order of summation then
        # depends on the vector width the compiler picks, never on threads or chunking
        @njit(parallel=True, fastmath={"reassoc"}, nogil=True, error_model="numpy")
        def _backward(g, w, x, key, sigma, sn, gx, parts):
            rows, n_out = g.shape
            n_in = w.shape[1]
            half = n_in // 2
            pairs = np.uint64((n_in + 1) // 2)
            blocks = parts.shape[0]
            for blk in prange(blocks):
                part = parts[blk]
                for j in range(n_out):
                    for i in range(n_in):
                        part[j, i] = 0.0
                for r in range(blk * rows // blocks, (blk + 1) * rows // blocks):
                    o = gx[r]
                    for i in range(n_in):
                        o[i] = 0.0
                    xr = x[r]
                    for j in range(n_out):
                        gj = g[r, j]
                        wj = w[j]
                        pj = part[j]
                        sd = gj - gj  # zero of the work type: sigma v . xi
                        v2 = gj - gj  # |v|^2
                        base = key + ((np.uint64(r) * np.uint64(n_out) + np.uint64(j)) * pairs + _ONE) * _G
                        for q in range(half):
                            z0, z1 = _box_muller(_mix(base + np.uint64(q) * _G))
                            e0 = sigma * z0
                            e1 = sigma * z1
                            a0 = gj + gj * e0
                            a1 = gj + gj * e1
                            w0 = wj[2 * q]
                            w1 = wj[2 * q + 1]
                            x0 = xr[2 * q]
                            x1 = xr[2 * q + 1]
                            o[2 * q] += a0 * w0
                            o[2 * q + 1] += a1 * w1
                            pj[2 * q] += a0 * x0
                            pj[2 * q + 1] += a1 * x1
                            v0 = w0 * x0
                            v1 = w1 * x1
                            sd += v0 * e0 + v1 * e1
                            v2 += v0 * v0 + v1 * v1
                        if n_in % 2 == 1:
                            z0, z1 = _box_muller(_mix(base + np.uint64(half) * _G))
                            e0 = sigma * z0
                            a0 = gj + gj * e0
                            o[n_in - 1] += a0 * wj[n_in - 1]
                            pj[n_in - 1] += a0 * xr[n_in - 1]
                            v0 = wj[n_in - 1] * xr[n_in - 1]
                            sd += v0 * e0
                            v2 += v0 * v0
                        if v2 > 0.0:
                            # the part of the masks along v: sigma c v, c = (n |v| - v . xi) / |v|^2
                            gc = gj * ((sn[r, j] * np.sqrt(v2) - sd) / v2)
                            for i in range(n_in):
                                t = gc * wj[i] * xr[i]
                                o[i] += t * wj[i]
                                pj[i] += t * xr[i]
            return gx

        return _backward

    #: the conditional Gaussian backward by float width
    CONDITIONAL_BACKWARD = {np.dtype(np.float32): _make_conditional_backward(_box_muller32),
                            np.dtype(np.float64): _make_conditional_backward(_box_muller64)}


def _numpy_float(t: Tensor) -> np.ndarray:
    """A contiguous float32/float64 numpy view (half and bfloat16 work in float32)."""
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.detach().contiguous().numpy()


@contextlib.contextmanager
def kernel_threads():
    """Run the numba kernels inside on ``torch.get_num_threads()`` threads (at most numba's pool),
    and leave torch's and numba's thread counts as the caller had them.

    Numba's OpenMP layer shares the OpenMP runtime with torch: starting its pool and setting
    its count move torch's intra-op count too, so both are read before and put back after.
    """
    wanted = torch.get_num_threads()
    caller_numba = numba.get_num_threads()  # starts numba's pool on first use
    numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(caller_numba)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)


def _call(which: int, a: Tensor, b: Tensor, out_shape, seed: int, p: float, gaussian: bool, positions: int,
          result_dtype) -> Tensor:
    """Run kernel ``which`` (0 forward, 1 input gradient, 2 weight gradient) for the mask kind."""
    an, bn = _numpy_float(a), _numpy_float(b)
    work = np.promote_types(an.dtype, bn.dtype)
    an, bn = an.astype(work, copy=False), bn.astype(work, copy=False)
    out = np.empty(out_shape, dtype=work)
    kind = "drop" if not gaussian else ("gauss64" if work == np.float64 else "gauss32")
    with kernel_threads():
        KERNELS[kind][which](an, bn, np.uint64(seed_key(seed)), np.uint64(drop_threshold(p)),
                             work.type(1.0 / (1.0 - p)), work.type(math.sqrt(p / (1.0 - p))), int(positions), out)
    return torch.from_numpy(out).to(result_dtype)


def masked_linear_cpu(x: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool, positions: int = 1):
    r""":math:`z_r = (W \circ M_{s(r)}) x_r` for ``x`` of shape ``(rows, in)`` (numba, CPU)."""
    return _call(0, x, weight.t(), (x.shape[0], weight.shape[0]), seed, p, gaussian, positions,
                 torch.promote_types(x.dtype, weight.dtype))


def masked_linear_grad_input_cpu(grad: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool,
                                 positions: int = 1):
    r""":math:`(W \circ M_{s(r)})^\top g_r` for ``grad`` of shape ``(rows, out)`` (numba, CPU)."""
    return _call(1, grad, weight, (grad.shape[0], weight.shape[1]), seed, p, gaussian, positions,
                 torch.promote_types(grad.dtype, weight.dtype))


def masked_linear_grad_weight_cpu(grad: Tensor, x: Tensor, seed: int, p: float, gaussian: bool,
                                  positions: int = 1):
    r""":math:`\sum_r M_{s(r)} \circ (g_r x_r^\top)`, shape ``(out, in)`` (numba, CPU)."""
    return _call(2, grad, x, (grad.shape[1], x.shape[1]), seed, p, gaussian, positions,
                 torch.promote_types(grad.dtype, x.dtype))


#: row blocks of the one-pass backward, each with its own partial weight gradient (a fixed
#: number, so that the order of summation does not depend on the number of threads)
BACKWARD_BLOCKS = 4
#: the one-pass backward is used while its partial weight gradients take at most this many bytes
BACKWARD_MAX_BYTES = 2**26


def _one_pass_backward(grad: Tensor, x: Tensor, weight: Tensor, launch):
    """Buffers, launch and block sum shared by the one-pass backward kernels.

    ``launch(g, w, x, work, gx, parts)`` runs the kernel on float arrays of the work type;
    the kernel zeroes ``gx`` and each ``parts[block]`` itself.  Returns ``(gx, gw)``, or None
    when the partial weight gradients would exceed ``BACKWARD_MAX_BYTES``.
    """
    gn, xn, wn = _numpy_float(grad), _numpy_float(x), _numpy_float(weight)
    work = np.promote_types(np.promote_types(gn.dtype, xn.dtype), wn.dtype)
    rows, n_out = gn.shape
    n_in = wn.shape[1]
    blocks = max(1, min(BACKWARD_BLOCKS, rows))
    if blocks * n_out * n_in * work.itemsize > BACKWARD_MAX_BYTES:
        return None
    gn, xn, wn = (a.astype(work, copy=False) for a in (gn, xn, wn))
    gx = np.empty((rows, n_in), dtype=work)
    parts = np.zeros((blocks, n_out, n_in), dtype=work) if rows == 0 else np.empty((blocks, n_out, n_in), dtype=work)
    if rows:
        with kernel_threads():
            launch(gn, wn, xn, work, gx, parts)
    gw = parts[0]
    for blk in range(1, blocks):
        gw += parts[blk]
    return torch.from_numpy(gx), torch.from_numpy(gw)


def masked_linear_backward_cpu(grad: Tensor, x: Tensor, weight: Tensor, seed: int, p: float, gaussian: bool,
                               positions: int = 1):
    r"""Both gradients from one regeneration of the masks (numba, CPU), or None when too large.

    :math:`(W \circ M_{s(r)})^\top g_r` (bit for bit that of
    :func:`masked_linear_grad_input_cpu`) and :math:`\sum_r M_{s(r)} \circ (g_r x_r^\top)`
    (summed over ``min(BACKWARD_BLOCKS, rows)`` fixed blocks of rows, then over the blocks in
    order).  Returns None when the partial weight gradients would exceed ``BACKWARD_MAX_BYTES``.
    """
    def launch(gn, wn, xn, work, gx, parts):
        kind = "drop" if not gaussian else ("gauss64" if work == np.float64 else "gauss32")
        KERNELS[kind][3](gn, wn, xn, np.uint64(seed_key(seed)), np.uint64(drop_threshold(p)),
                         work.type(1.0 / (1.0 - p)), work.type(math.sqrt(p / (1.0 - p))), int(positions), gx, parts)

    return _one_pass_backward(grad, x, weight, launch)


def conditional_gaussian_cpu(x: Tensor, weight: Tensor, seed: int, p: float) -> Tensor:
    r"""Forward of the conditional Gaussian map (numba, CPU):
    :math:`z_{rj} = W_j \cdot x_r + \sigma n_{rj} \sqrt{\sum_i W_{ji}^2 x_{ri}^2}` with the
    normals of :func:`counter_normals`."""
    xn, wn = _numpy_float(x), _numpy_float(weight)
    work = np.promote_types(xn.dtype, wn.dtype)
    xn, wtn = xn.astype(work, copy=False), np.ascontiguousarray(wn.T, dtype=work)
    sn = (math.sqrt(p / (1.0 - p)) * counter_normals(seed, xn.shape[0], wn.shape[0])).numpy().astype(work)
    out = np.empty((xn.shape[0], wn.shape[0]), dtype=work)
    if xn.shape[0]:
        with kernel_threads():
            _conditional_forward(xn, wtn, sn, out)
    return torch.from_numpy(out)


def masked_linear_backward_conditional_cpu(grad: Tensor, x: Tensor, weight: Tensor, seed: int, p: float):
    r"""Both gradients of the conditional Gaussian map in one pass over its masks (numba, CPU),
    or None when the partial weight gradients would exceed ``BACKWARD_MAX_BYTES``.

    For each row ``r`` and output ``j`` the pass computes, from the masks ``1 + sigma xi`` of
    ``seed`` (those of :func:`counter_masks`), the products with ``g`` and the sums
    :math:`\sigma v_{rj} \cdot \xi_{rj}` and :math:`\lVert v_{rj} \rVert^2`; then it adds the
    part of the masks along :math:`v_{rj} = W_j \circ x_r`,
    :math:`\sigma c_{rj} v_{rj}` with
    :math:`\sigma c_{rj} = (\sigma n_{rj} \lVert v_{rj} \rVert - \sigma v_{rj} \cdot \xi_{rj})
    / \lVert v_{rj} \rVert^2` (see :func:`pnd_theory.sampling.masked_linear`).
    """
    sigma = math.sqrt(p / (1.0 - p))

    def launch(gn, wn, xn, work, gx, parts):
        sn = (sigma * counter_normals(seed, gn.shape[0], gn.shape[1])).numpy().astype(work)
        CONDITIONAL_BACKWARD[work](gn, wn, xn, np.uint64(seed_key(seed)), work.type(sigma), sn, gx, parts)

    return _one_pass_backward(grad, x, weight, launch)
