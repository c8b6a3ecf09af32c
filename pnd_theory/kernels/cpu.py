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

from .counter import C32, GAMMA, LB1, LB2, MIX1, MIX2, drop_threshold, seed_key

try:
    import numba
    from llvmlite import ir as _llvm_ir
    from numba import njit, prange, types as _nb_types
    from numba.cpython.unsafe.numbers import leading_zeros
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - the torch route still works
    numba = None

__all__ = ["HAVE_NUMBA", "masked_linear_cpu", "masked_linear_grad_input_cpu", "masked_linear_grad_weight_cpu",
           "masked_linear_backward_cpu", "masked_linear_backward_conditional_cpu", "conditional_gaussian_cpu",
           "counter_normals_cpu"]

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
    def _box_muller64(a, b):
        """Two independent N(0, 1) values from the 32-bit draws ``a`` (radius) and ``b``
        (angle), to float64 rounding."""
        m, e = _log_u_parts(np.uint64(a))
        log_u = _atanh_series((m - 1.0) / (m + 1.0), _LOG_C) + np.float64(e - 32) * _LN2
        rho = math.sqrt(-2.0 * log_u)
        c, s = _cos_sin(np.uint64(b), _SIN_C, _COS_C)
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

    _I32 = _llvm_ir.IntType(32)

    @intrinsic
    def _excess(typingctx, a, e):
        """``v - 2^e`` for ``v = a + 1`` as an int32, in 32-bit operations (``v`` and ``2^e``
        both wrap to 0 at ``2^32``; the difference is below ``2^31`` in size)."""
        def codegen(context, builder, signature, args):
            a, e = args[0], builder.trunc(args[1], _I32)
            pow2 = builder.shl(_llvm_ir.Constant(_I32, 1), builder.and_(e, _llvm_ir.Constant(_I32, 31)))
            pow2 = builder.select(builder.icmp_signed("<", e, _llvm_ir.Constant(_I32, 32)), pow2,
                                  _llvm_ir.Constant(_I32, 0))
            return builder.sub(builder.add(a, _llvm_ir.Constant(_I32, 1)), pow2)
        return _nb_types.int32(_nb_types.uint32, _nb_types.int32), codegen

    def _draw_ir(builder, k0, k1, i):
        """``lowbias32(((k0 + i C) mod 2^32) XOR k1)`` in 32-bit LLVM operations (numba's own
        typing would widen them to 64 bits, which AVX2 cannot multiply in vectors)."""
        def const(v):
            return _llvm_ir.Constant(_I32, v)

        v = builder.xor(builder.add(k0, builder.mul(builder.trunc(i, _I32), const(C32))), k1)
        v = builder.xor(v, builder.lshr(v, const(16)))
        v = builder.mul(v, const(LB1))
        v = builder.xor(v, builder.lshr(v, const(15)))
        v = builder.mul(v, const(LB2))
        return builder.xor(v, builder.lshr(v, const(16)))

    @intrinsic
    def _draw32(typingctx, k0, k1, i):
        """The 32-bit draw ``u`` of connection ``i`` of the row with key halves ``k0``, ``k1``."""
        def codegen(context, builder, signature, args):
            return _draw_ir(builder, *args)
        return _nb_types.uint32(_nb_types.uint32, _nb_types.uint32, _nb_types.int64), codegen

    @intrinsic
    def _keep32(typingctx, k0, k1, i, thr):
        """``u >= thr`` for the draw of :func:`_draw32` (the Bernoulli keep test)."""
        def codegen(context, builder, signature, args):
            return builder.icmp_unsigned(">=", _draw_ir(builder, *args[:3]), args[3])
        return _nb_types.boolean(_nb_types.uint32, _nb_types.uint32, _nb_types.int64, _nb_types.uint32), codegen

    @njit(inline="always")
    def _row_key(key, s, n_out, j):
        """The halves ``(k0, k1)`` of the key ``mix64(K + (s n_out + j + 1) GAMMA)`` of row ``j``
        of sample ``s``."""
        rk = _mix(key + (np.uint64(s) * np.uint64(n_out) + np.uint64(j) + _ONE) * _G)
        return np.uint32(rk & _LO), np.uint32(rk >> np.uint64(32))

    _F = np.float32
    _F_ONE, _F_TWO, _F_M2 = _F(1.0), _F(2.0), _F(-2.0)
    _F_LN2 = _F(_LN2)
    _F_OCTANT = _F(0.25 * math.pi * 2.0**-29)
    # ln m = 2 t (1 + t^2/3 + ...): five terms leave out below 3e-10 for |t| < 0.172
    _LOG_F = tuple(_F(1.0 / (2 * k + 1)) for k in range(5))
    # sin and cos on [0, pi/4]: the terms left out are below 2e-9 and 3e-8
    _SIN_F = tuple(_F((-1.0) ** k / math.factorial(2 * k + 1)) for k in range(5))
    _COS_F = tuple(_F((-1.0) ** k / math.factorial(2 * k)) for k in range(5))

    @njit(inline="always")
    def _box_muller32(a, b):
        """Two N(0, 1) values from the draws ``a`` (radius) and ``b`` (angle) to float32
        accuracy, in float32 operations only (twice the vector width of float64), with no
        division by zero check and no branch, so that the loops around it vectorize.

        ``ln u``: ``v = a + 1 = 2^e (1 + f)`` with ``e`` the nearest power (``|f| <= 0.42``);
        ``f = (v - 2^e) 2^-e`` is formed from an exact integer difference, so ``ln u`` keeps
        its relative accuracy near ``u = 1`` (where ``rho`` is small).  ``cos`` and ``sin`` of
        ``2 pi b 2^-32``: octant from the top three bits, polynomials on ``[0, pi/4]``.
        """
        bits = _f32_bits(_F(a) + _F_ONE)  # a + 1 in [1, 2^32], rounded: only its exponent is used
        up = np.int32((bits & np.uint32(0x7FFFFF)) > np.uint32(0x3504F3))  # mantissa above sqrt 2
        e = np.int32(bits >> np.uint32(23)) - np.int32(127) + up
        f = _F(_excess(a, np.int32(e))) * _bits_f32(np.uint32(127 - e) << np.uint32(23))
        t = f / (_F_TWO + f)
        t2 = t * t
        acc = (((_LOG_F[4] * t2 + _LOG_F[3]) * t2 + _LOG_F[2]) * t2 + _LOG_F[1]) * t2 + _LOG_F[0]
        log_u = _F_TWO * t * acc + _F(e - np.int32(32)) * _F_LN2
        rho = np.sqrt(_F_M2 * log_u)
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

    # The mask values of the Box-Muller partners i and i + h of a row (h = ceil(n_in / 2)), one
    # function per kind of mask: (k0, k1) the row's key halves, thr the drop threshold, scale
    # 1/(1-p), sigma sqrt(p/(1-p)).
    @njit(inline="always")
    def _pair_drop(k0, k1, i, h, thr, scale, sigma):
        zero = scale - scale  # of the type of scale: float32 work stays in float32
        m0 = scale if _keep32(k0, k1, i, thr) else zero
        m1 = scale if _keep32(k0, k1, i + h, thr) else zero
        return m0, m1

    @njit(inline="always")
    def _pair_gauss32(k0, k1, i, h, thr, scale, sigma):
        z0, z1 = _box_muller32(_draw32(k0, k1, i), _draw32(k0, k1, i + h))
        return _F_ONE + sigma * z0, _F_ONE + sigma * z1

    @njit(inline="always")
    def _pair_gauss64(k0, k1, i, h, thr, scale, sigma):
        z0, z1 = _box_muller64(_draw32(k0, k1, i), _draw32(k0, k1, i + h))
        return 1.0 + sigma * z0, 1.0 + sigma * z1

    # Inner loops, written once and compiled per kind (the kind is a run-time flag chosen
    # outside them: inside, the compiler kept the branch in the loop and it ran twice as slow).
    @njit(inline="always")
    def _columns(o, w0, w1, x0, x1, k0, k1, i, h, thr, scale, sigma, pair):
        """``o[j] += W[j, i] M[j, i] x_i + W[j, i+h] M[j, i+h] x_{i+h}`` over the outputs ``j``."""
        for j in range(o.shape[0]):
            m0, m1 = pair(k0[j], k1[j], i, h, thr, scale, sigma)
            o[j] += w0[j] * m0 * x0
            o[j] += w1[j] * m1 * x1

    @njit(inline="always")
    def _row_acc(o, v, k0, k1, gj, thr, scale, sigma, pair):
        """``o[i] += g_j M[j, i] v[i]`` over the inputs ``i`` of one row of the mask."""
        n_in = o.shape[0]
        h = (n_in + 1) // 2
        o1, v1 = o[h:], v[h:]  # views of the partners: the loop runs over both halves at once
        for i in range(n_in - h):
            m0, m1 = pair(k0, k1, i, h, thr, scale, sigma)
            o[i] += gj * m0 * v[i]
            o1[i] += gj * m1 * v1[i]
        if n_in % 2 == 1:
            m0, m1 = pair(k0, k1, h - 1, h, thr, scale, sigma)
            o[h - 1] += gj * m0 * v[h - 1]

    @njit(inline="always")
    def _row_acc2(o, p, w, x, k0, k1, gj, thr, scale, sigma, pair):
        """``o[i] += g_j M[j, i] w[i]`` and ``p[i] += g_j M[j, i] x[i]`` over the inputs ``i``."""
        n_in = o.shape[0]
        h = (n_in + 1) // 2
        o1, p1, w1, x1 = o[h:], p[h:], w[h:], x[h:]
        for i in range(n_in - h):
            m0, m1 = pair(k0, k1, i, h, thr, scale, sigma)
            a0 = gj * m0
            a1 = gj * m1
            o[i] += a0 * w[i]
            o1[i] += a1 * w1[i]
            p[i] += a0 * x[i]
            p1[i] += a1 * x1[i]
        if n_in % 2 == 1:
            m0, m1 = pair(k0, k1, h - 1, h, thr, scale, sigma)
            a0 = gj * m0
            o[h - 1] += a0 * w[h - 1]
            p[h - 1] += a0 * x[h - 1]

    @njit(inline="always")
    def _row_acc_drop(o, v, k0, k1, gj, thr, scale):
        """:func:`_row_acc` for Bernoulli masks, one connection at a time (no interleaving:
        about twice as fast as pairs)."""
        a = gj * scale
        zero = a - a
        for i in range(o.shape[0]):
            o[i] += (a if _keep32(k0, k1, i, thr) else zero) * v[i]

    @njit(inline="always")
    def _row_acc2_drop(o, p, w, x, k0, k1, gj, thr, scale):
        """:func:`_row_acc2` for Bernoulli masks, one connection at a time."""
        a = gj * scale
        zero = a - a
        for i in range(o.shape[0]):
            b = a if _keep32(k0, k1, i, thr) else zero
            o[i] += b * w[i]
            p[i] += b * x[i]

    #: kinds of mask (the ``kind`` argument of the kernels)
    DROP, GAUSS32, GAUSS64 = 0, 1, 2

    _FLAGS = dict(parallel=True, fastmath=False, nogil=True, error_model="numpy", cache=True)

    @njit(**_FLAGS)
    def _forward(x, wt, key, kind, thr, scale, sigma, positions, out):
        """``out[r] = (W o M_{s(r)}) x_r``, ``wt = W^T``; each output summed over inputs in order."""
        rows, n_in = x.shape
        n_out = wt.shape[1]
        zero = scale - scale
        for r in prange(rows):
            o = out[r]
            k0 = np.empty(n_out, dtype=np.uint32)
            k1 = np.empty(n_out, dtype=np.uint32)
            for j in range(n_out):
                k0[j], k1[j] = _row_key(key, r // positions, n_out, j)
                o[j] = zero
            h = (n_in + 1) // 2
            for i in range(h):
                x0 = x[r, i]
                w0 = wt[i]
                # an odd n_in's last partner is a virtual input of value 0 (its term adds 0)
                x1 = x[r, i + h] if i + h < n_in else zero
                w1 = wt[i + h] if i + h < n_in else w0
                if kind == DROP:
                    _columns(o, w0, w1, x0, x1, k0, k1, i, h, thr, scale, sigma, _pair_drop)
                elif kind == GAUSS32:
                    _columns(o, w0, w1, x0, x1, k0, k1, i, h, thr, scale, sigma, _pair_gauss32)
                else:
                    _columns(o, w0, w1, x0, x1, k0, k1, i, h, thr, scale, sigma, _pair_gauss64)
        return out

    @njit(inline="always")
    def _acc(o, v, k0, k1, gj, kind, thr, scale, sigma):
        if kind == DROP:
            _row_acc_drop(o, v, k0, k1, gj, thr, scale)
        elif kind == GAUSS32:
            _row_acc(o, v, k0, k1, gj, thr, scale, sigma, _pair_gauss32)
        else:
            _row_acc(o, v, k0, k1, gj, thr, scale, sigma, _pair_gauss64)

    @njit(**_FLAGS)
    def _grad_input(g, w, key, kind, thr, scale, sigma, positions, out):
        """``out[r] = (W o M_{s(r)})^T g_r``, each entry summed over outputs in order."""
        rows, n_out = g.shape
        for r in prange(rows):
            o = out[r]
            o[:] = 0.0
            for j in range(n_out):
                k0, k1 = _row_key(key, r // positions, n_out, j)
                _acc(o, w[j], k0, k1, g[r, j], kind, thr, scale, sigma)
        return out

    @njit(**_FLAGS)
    def _grad_weight(g, x, key, kind, thr, scale, sigma, positions, out):
        """``out = sum_r M_{s(r)} o (g_r x_r^T)``, each entry summed over rows in order."""
        rows, n_out = g.shape
        for j in prange(n_out):
            o = out[j]
            o[:] = 0.0
            for r in range(rows):
                k0, k1 = _row_key(key, r // positions, n_out, j)
                _acc(o, x[r], k0, k1, g[r, j], kind, thr, scale, sigma)
        return out

    @njit(**_FLAGS)
    def _backward(g, w, x, key, kind, thr, scale, sigma, positions, gx, parts):
        """Both gradients from one regeneration of the masks: ``gx``, and for each fixed block
        of rows a partial weight gradient ``parts[block]`` (summed in block order after).

        Outputs outer, rows of the block inner: a row ``W_j`` and its partial gradient stay in
        the first-level cache while the block's rows pass.  Every ``gx`` entry is summed over
        outputs in order, every ``parts`` entry over the block's rows in order.
        """
        rows, n_out = g.shape
        blocks = parts.shape[0]
        for blk in prange(blocks):
            part = parts[blk]
            part[:] = 0.0
            r0, r1 = blk * rows // blocks, (blk + 1) * rows // blocks
            gx[r0:r1] = 0.0
            for j in range(n_out):
                wj = w[j]
                pj = part[j]
                for r in range(r0, r1):
                    k0, k1 = _row_key(key, r // positions, n_out, j)
                    gj = g[r, j]
                    if kind == DROP:
                        _row_acc2_drop(gx[r], pj, wj, x[r], k0, k1, gj, thr, scale)
                    elif kind == GAUSS32:
                        _row_acc2(gx[r], pj, wj, x[r], k0, k1, gj, thr, scale, sigma, _pair_gauss32)
                    else:
                        _row_acc2(gx[r], pj, wj, x[r], k0, k1, gj, thr, scale, sigma, _pair_gauss64)
        return gx

    @njit(**_FLAGS)
    def _normals(key, out):
        """The normals of :func:`pnd_theory.kernels.counter.counter_normals` (stream key
        ``key``): row ``r`` holds the centred, unit Gaussian mask values of sample ``r``,
        output 0, in float64."""
        rows, n = out.shape
        h = (n + 1) // 2
        for r in prange(rows):
            k0, k1 = _row_key(key, r, 1, 0)
            o = out[r]
            for i in range(h):
                z0, z1 = _box_muller64(_draw32(k0, k1, i), _draw32(k0, k1, i + h))
                o[i] = z0
                if i + h < n:
                    o[i + h] = z1
        return out

    @njit(**_FLAGS)
    def _conditional_forward(x, wt, sn, out):
        """``out[r, j] = W_j . x_r + sn[r, j] * sqrt(sum_i W_ji^2 x_ri^2)``, the forward of the
        conditional Gaussian map (``sn = sigma n``), each sum over inputs in order."""
        rows, n_in = x.shape
        n_out = wt.shape[1]
        for r in prange(rows):
            o = out[r]
            v2 = np.zeros(n_out, dtype=out.dtype)
            o[:] = 0.0
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

    @njit(inline="always")
    def _conditional_row(o, pj, wj, xr, k0, k1, gj, snj, sigma, box):
        """One row ``(r, j)`` of the conditional backward: the products with the masks
        ``1 + sigma xi`` and the sums ``sigma v . xi`` and ``|v|^2``, then the part along ``v``."""
        n_in = o.shape[0]
        sd = gj - gj  # zero of the work type: sigma v . xi
        v2 = gj - gj  # |v|^2
        h = (n_in + 1) // 2
        o_1, p_1, w_1, x_1 = o[h:], pj[h:], wj[h:], xr[h:]
        for i in range(n_in - h):
            z0, z1 = box(_draw32(k0, k1, i), _draw32(k0, k1, i + h))
            e0 = sigma * z0
            e1 = sigma * z1
            a0 = gj + gj * e0
            a1 = gj + gj * e1
            w0 = wj[i]
            w1 = w_1[i]
            x0 = xr[i]
            x1 = x_1[i]
            o[i] += a0 * w0
            o_1[i] += a1 * w1
            pj[i] += a0 * x0
            p_1[i] += a1 * x1
            v0 = w0 * x0
            v1 = w1 * x1
            sd += v0 * e0 + v1 * e1
            v2 += v0 * v0 + v1 * v1
        if n_in % 2 == 1:
            z0, z1 = box(_draw32(k0, k1, h - 1), _draw32(k0, k1, n_in))
            e0 = sigma * z0
            a0 = gj + gj * e0
            o[h - 1] += a0 * wj[h - 1]
            pj[h - 1] += a0 * xr[h - 1]
            v0 = wj[h - 1] * xr[h - 1]
            sd += v0 * e0
            v2 += v0 * v0
        if v2 > 0.0:
            # the part of the masks along v: sigma c v, c = (n |v| - v . xi) / |v|^2
            gc = gj * ((snj * np.sqrt(v2) - sd) / v2)
            for i in range(n_in):
                t = gc * wj[i] * xr[i]
                o[i] += t * wj[i]
                pj[i] += t * xr[i]

    # reassociation only: the sums over inputs vectorize; their order of summation then
    # depends on the vector width the compiler picks, never on threads or chunking
    @njit(parallel=True, fastmath={"reassoc"}, nogil=True, error_model="numpy", cache=True)
    def _conditional_backward(g, w, x, key, kind, sigma, sn, gx, parts):
        """The one-pass backward of the conditional Gaussian map (see
        :func:`masked_linear_backward_conditional_cpu`), blocked as :func:`_backward`."""
        rows, n_out = g.shape
        blocks = parts.shape[0]
        for blk in prange(blocks):
            part = parts[blk]
            part[:] = 0.0
            r0, r1 = blk * rows // blocks, (blk + 1) * rows // blocks
            gx[r0:r1] = 0.0
            for j in range(n_out):
                wj = w[j]
                pj = part[j]
                for r in range(r0, r1):
                    k0, k1 = _row_key(key, r, n_out, j)
                    if kind == GAUSS32:
                        _conditional_row(gx[r], pj, wj, x[r], k0, k1, g[r, j], sn[r, j], sigma, _box_muller32)
                    else:
                        _conditional_row(gx[r], pj, wj, x[r], k0, k1, g[r, j], sn[r, j], sigma, _box_muller64)
        return gx


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
    with kernel_threads():
        (_forward, _grad_input, _grad_weight)[which](an, bn, *_scalars(seed, p, gaussian, work), int(positions), out)
    return torch.from_numpy(out).to(result_dtype)


def _scalars(seed: int, p: float, gaussian: bool, work: np.dtype):
    """``(key, kind, thr, scale, sigma)`` of the kernels for the work dtype.  A threshold of
    ``2**32`` (p within ``2**-33`` of 1) keeps nothing: scale 0 with a 32-bit threshold."""
    thr = drop_threshold(p)
    scale = 1.0 / (1.0 - p) if thr < 2**32 else 0.0
    kind = DROP if not gaussian else (GAUSS64 if work == np.float64 else GAUSS32)
    return (np.uint64(seed_key(seed)), kind, np.uint32(min(thr, 2**32 - 1)), work.type(scale),
            work.type(math.sqrt(p / (1.0 - p))))


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
        _backward(gn, wn, xn, *_scalars(seed, p, gaussian, work), int(positions), gx, parts)

    return _one_pass_backward(grad, x, weight, launch)


def counter_normals_cpu(seed: int, rows: int, n_out: int) -> np.ndarray:
    """:func:`pnd_theory.kernels.counter.counter_normals` computed by a numba kernel (float64;
    equal to the torch reference to the rounding of ``log``, ``cos`` and ``sin``)."""
    out = np.empty((rows, n_out))
    if rows and n_out:
        with kernel_threads():
            _normals(np.uint64(seed_key(int(seed) + GAMMA)), out)
    return out


def conditional_gaussian_cpu(x: Tensor, weight: Tensor, seed: int, p: float) -> Tensor:
    r"""Forward of the conditional Gaussian map (numba, CPU):
    :math:`z_{rj} = W_j \cdot x_r + \sigma n_{rj} \sqrt{\sum_i W_{ji}^2 x_{ri}^2}` with the
    normals of :func:`pnd_theory.kernels.counter.counter_normals` (:func:`counter_normals_cpu`)."""
    xn, wn = _numpy_float(x), _numpy_float(weight)
    work = np.promote_types(xn.dtype, wn.dtype)
    xn, wtn = xn.astype(work, copy=False), np.ascontiguousarray(wn.T, dtype=work)
    sn = (math.sqrt(p / (1.0 - p)) * counter_normals_cpu(seed, xn.shape[0], wn.shape[0])).astype(work)
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
    / \lVert v_{rj} \rVert^2` (see :func:`pnd_theory.laws._sampling.masked_linear`).
    """
    sigma = math.sqrt(p / (1.0 - p))

    def launch(gn, wn, xn, work, gx, parts):
        sn = (sigma * counter_normals_cpu(seed, gn.shape[0], gn.shape[1])).astype(work)
        key, kind, _, _, sig = _scalars(seed, p, True, work)
        _conditional_backward(gn, wn, xn, key, kind, sig, sn, gx, parts)

    return _one_pass_backward(grad, x, weight, launch)
