"""Block-Toeplitz systems for BSS Eval's filters: the block Levinson factorisation
(:class:`BlockLevinson`), its Gohberg-Semencul inverse, FFT products with the system, and the
two ways a solution is brought to a dense solve's accuracy against the exact product:
conjugate gradients preconditioned by the factorisation (:func:`conjugate_gradients`), and
iterative refinement of the recursion's back substitution (:func:`refined`)."""

from __future__ import annotations

import threading

import numpy as np
from scipy import fft as sfft

# the relative residual at which iterations stop: a dense solve reaches about 1e-13 on these
# systems. (Stopping at 1e-10 moved museval agreement from 1e-7 to 5e-4 dB on an
# ill-conditioned own-reference system.)
REFINED = 1e-12
_MAX_REFINEMENTS = 8  # refinement: each step gains about two orders on music
# conjugate gradients: at most this many iterations (7-9 reach 1e-12 on the demo excerpts;
# where more are needed the back substitution is cheaper), and stopped when the residual has
# not reached a new low for _STALLED of them
_MAX_ITERATIONS = 15
_STALLED = 4

# Buffers for the backward solutions, kept between factorisations: ~40 MB (M = 6) to ~70 MB
# (M = 8) that a fresh allocation page-faults in on every call (which made keeping them cost
# ~40 % of a factorisation; taken from here, ~10 %). A factorisation's buffer returns here
# when it is dropped; at most _POOLED are kept (a full system's and a stack of own-reference
# systems', up to ~90 MB).
_POOL: list[np.ndarray] = []
_POOLED = 2
_POOL_LOCK = threading.Lock()

def _take_buffer(size: int) -> np.ndarray:
    with _POOL_LOCK:
        for i, buf in enumerate(_POOL):
            if buf.size == size:
                return _POOL.pop(i)
    return np.empty(size)

def _give_buffer(buf: np.ndarray) -> None:
    with _POOL_LOCK:
        _POOL.append(buf)
        del _POOL[:-_POOLED]

class BlockLevinson:
    """Block Levinson factorisation of symmetric positive definite block-Toeplitz systems.

    ``T[a, b] = B(a - b)`` with ``B(-k) = B(k)^T``; ``blocks`` holds ``B(0..L-1)`` as
    ``(S, L, M, M)`` for S systems factorised together. The recursion (Whittle; Wiggins &
    Robinson) grows forward and backward solutions one block at a time, ``O(L^2 M^3)``
    operations instead of the ``O((L M)^3)`` of a dense factorisation. Its last forward and
    backward solutions are the first and last block columns of ``T^-1``, which determine all
    of it (the block Gohberg-Semencul formula, ``T^-1 = L(a) F0 L(a)^T - L(c) Bl L(c)^T`` with
    lower-triangular block-Toeplitz factors): :meth:`solve` applies it by FFTs in
    ``O(L log L M^2 R)``. With ``keep_backward`` the backward solutions of every order are
    kept, for :meth:`solve_recursive` (``O(L^2 M^2 R)``, the recursion's own back
    substitution). Both are only weakly stable: callers refine against :meth:`matvec`.
    """

    def __init__(self, blocks: np.ndarray, keep_backward: bool = False):
        S, L, M, _ = blocks.shape
        self.shape = (S, L, M)
        # row layout: C[:, :, (L-1-k) M : (L-k) M] = B(k); D[:, :, (k-1) M : k M] = B(k)^T
        self.C = np.ascontiguousarray(blocks[:, ::-1].transpose(0, 2, 1, 3).reshape(S, M, L * M))
        D = np.ascontiguousarray(blocks[:, 1:].transpose(0, 3, 1, 2).reshape(S, M, (L - 1) * M))
        # Z holds the forward solution f in its first M rows and the backward one b, one block
        # further along, in the last M, so that Z[:, :, :(n+1) M] = [[f, 0], [0, b]] (the
        # solutions transposed: their rows are contiguous, which made a step ~25 % faster than
        # columns M wide) and one product updates both; the update is written into the other
        # of two buffers, b one block further on (what lies beyond a solution is never written:
        # zero)
        buffers = np.zeros((2, S, 2 * M, (L + 1) * M))
        Z = buffers[0]
        self.inv0 = np.linalg.inv(blocks[:, 0])
        Z[:, :M, :M] = self.inv0.transpose(0, 2, 1)
        Z[:, M:, M:2 * M] = self.inv0.transpose(0, 2, 1)
        # b of every order n >= 1, (S, (n+1) M, M) each, views of one pooled buffer
        self.backward = [] if keep_backward else None
        self._buffer = _take_buffer(S * M * M * (L - 1) * (L + 2) // 2) if keep_backward else None
        used = 0
        # the update [f, b] <- [[f; 0], [0; b]] K uses K = [[a, -eb d], [-ef a, d]] with
        # a = (I - eb ef)^-1, d = (I - ef eb)^-1: the inverse of P = [[I, eb], [ef, I]]
        P = np.zeros((S, 2 * M, 2 * M))
        P[:, np.arange(2 * M), np.arange(2 * M)] = 1.0
        for n in range(1, L):
            nm = n * M
            Z, updated = buffers[(n - 1) % 2], buffers[n % 2]
            np.matmul(self.C[:, :, (L - 1 - n) * M:(L - 1) * M],
                      Z[:, :M, :nm].transpose(0, 2, 1), out=P[:, M:, :M])  # ef
            np.matmul(D[:, :, :nm], Z[:, M:, M:nm + M].transpose(0, 2, 1), out=P[:, :M, M:])  # eb
            k = np.linalg.inv(P).transpose(0, 2, 1)
            np.matmul(k[:, :M], Z[:, :, :nm + M], out=updated[:, :M, :nm + M])
            np.matmul(k[:, M:], Z[:, :, :nm + M], out=updated[:, M:, M:nm + 2 * M])
            if keep_backward:
                b = self._buffer[used:used + S * (nm + M) * M].reshape(S, nm + M, M)
                b[...] = updated[:, M:, M:nm + 2 * M].transpose(0, 2, 1)
                self.backward.append(b)
                used += b.size
        Z = buffers[(L - 1) % 2].transpose(0, 2, 1)
        self._set_products(blocks)
        self._set_inverse(Z[:, :L * M, :M].reshape(S, L, M, M),
                          Z[:, M:, M:].reshape(S, L, M, M))
        if not keep_backward:
            del self.C  # (only the back substitution reads the blocks' rows)

    def nbytes(self) -> int:
        """The memory its arrays hold."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def __del__(self):  # the backward solutions' buffer serves the next factorisation
        if getattr(self, "_buffer", None) is not None:
            _give_buffer(self._buffer)

    def _set_products(self, blocks: np.ndarray) -> None:
        """Products by FFT: S(k) for k = -(L-1)..L-1 at index k + L - 1, S(-k) = B(k)^T."""
        L = blocks.shape[1]
        seq = np.concatenate([blocks[:, :0:-1].transpose(0, 1, 3, 2), blocks], axis=1)
        self.nfft = sfft.next_fast_len(3 * L - 2, real=True)
        self.seq_f = sfft.rfft(seq, self.nfft, axis=1)  # (S, F, M, M)

    def _set_inverse(self, first: np.ndarray, last: np.ndarray) -> None:
        """The Gohberg-Semencul factors from the first and last block columns of ``T^-1``
        (``(S, L, M, M)`` each): ``a = first F0^-1`` (``a[0] = I``), ``c`` = ``last Bl^-1``
        shifted one block down (``c[0] = 0``), their spectra and conjugate transposes."""
        L = first.shape[1]
        self.f0, self.bl = first[:, :1], last[:, -1:]
        a = first @ np.linalg.inv(self.f0)
        c = np.zeros_like(last)
        c[:, 1:] = (last @ np.linalg.inv(self.bl))[:, :-1]
        self.inv_nfft = sfft.next_fast_len(2 * L - 1, real=True)
        self.a_f = sfft.rfft(a, self.inv_nfft, axis=1)  # (S, F, M, M)
        self.c_f = sfft.rfft(c, self.inv_nfft, axis=1)
        # L(a)^T u is the correlation of a with u: the conjugate transposed spectra
        self.ac_h = np.concatenate([self.a_f, self.c_f], axis=-1).conj().swapaxes(-1, -2)

    @classmethod
    def products(cls, blocks: np.ndarray) -> BlockLevinson:
        """An object whose :meth:`matvec` multiplies by the system of ``blocks``, without the
        factorisation (for refining against the exact system)."""
        out = cls.__new__(cls)
        out.shape = blocks.shape[:3]
        out.backward = out._buffer = None
        out._set_products(blocks)
        return out

    def solve(self, y: np.ndarray) -> np.ndarray:
        """``T^-1 y`` for ``y`` ``(S, L, M, R)``, by the Gohberg-Semencul formula."""
        S, L, M = self.shape
        R = y.shape[-1]
        n = self.inv_nfft
        u = sfft.irfft(self.ac_h @ sfft.rfft(y, n, axis=1), n, axis=1)[:, :L]  # (S, L, 2M, R)
        w = sfft.rfft(np.concatenate([self.f0 @ u[:, :, :M], self.bl @ u[:, :, M:]], axis=-1),
                      n, axis=1)
        return sfft.irfft(self.a_f @ w[..., :R] - self.c_f @ w[..., R:], n, axis=1)[:, :L]

    def solve_recursive(self, y: np.ndarray) -> np.ndarray:
        """``T^-1 y`` for ``y`` ``(S, L, M, R)`` by the recursion's back substitution (needs
        ``keep_backward``)."""
        S, L, M = self.shape
        x = np.zeros((S, L * M, y.shape[-1]))
        x[:, :M] = self.inv0 @ y[:, 0]
        for n, b in enumerate(self.backward, start=1):
            nm = n * M
            row = self.C[:, :, (L - 1 - n) * M:(L - 1) * M]  # B(n), B(n-1), ..., B(1)
            x[:, :nm + M] += b @ (y[:, n] - row @ x[:, :nm])
        return x.reshape(S, L, M, -1)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``T x`` for ``x`` ``(S, L, M, R)``."""
        L = self.shape[1]
        xf = sfft.rfft(x, self.nfft, axis=1)
        return sfft.irfft(np.matmul(self.seq_f, xf), self.nfft, axis=1)[:, L - 1:2 * L - 1]

def block_levinson(blocks: np.ndarray, y: np.ndarray, recursive: bool = False) -> np.ndarray:
    """Solve ``T x = y`` by :class:`BlockLevinson` (``blocks`` ``(L, M, M)``, ``y``
    ``(L, M, R)``), without refinement: by the Gohberg-Semencul formula, or with
    ``recursive`` by back substitution."""
    system = BlockLevinson(blocks[None], keep_backward=recursive)
    return (system.solve_recursive if recursive else system.solve)(y[None])[0]

def relative_residual(residual: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each stacked system's relative residual (``(S, L, M, R)`` against ``(S,)``)."""
    return np.sqrt(np.einsum("slmr,slmr->s", residual, residual)) / scale

def conjugate_gradients(exact: BlockLevinson, precondition, y: np.ndarray, scale: np.ndarray):
    """Preconditioned conjugate gradients on ``exact`` (one recurrence per system and column
    of ``y``, ``(S, L, M, R)``) until every system's relative residual is below
    ``REFINED``, or none reaches a new low for ``_STALLED`` iterations: each system's best
    iterate and its relative residual.

    The Gohberg-Semencul inverse of the factorised system is exact in exact arithmetic but
    loses about 0.2 of its accuracy to cancellation on music's Gram systems (condition
    ~1e12), so applied alone (iterative refinement) it gains only half an order per step; as
    a preconditioner it leaves conjugate gradients 7-9 iterations on the demo excerpts."""
    def dot(a, b):
        return np.einsum("slmr,slmr->sr", a, b)

    x = np.zeros_like(y)
    r = y.copy()
    z = precondition(r)
    p = z.copy()
    rz = dot(r, z)
    best, best_rel, since = x.copy(), np.ones(len(y)), 0
    for _ in range(_MAX_ITERATIONS):
        q = exact.matvec(p)
        pq = dot(p, q)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(pq != 0, rz / pq, 0.0)[:, None, None]
        x += alpha * p
        r -= alpha * q
        rel = relative_residual(r, scale)
        better = rel < best_rel  # (False where NaN)
        best[better], best_rel[better] = x[better], rel[better]
        since = 0 if better.any() else since + 1
        if not np.all(np.isfinite(rel)) or np.all(best_rel < REFINED) or since >= _STALLED:
            break
        z = precondition(r)
        rz_new = dot(r, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(rz != 0, rz_new / rz, 0.0)[:, None, None]
        p = z + beta * p
        rz = rz_new
    # the recurrence's residual drifts from the true one: check it
    return best, relative_residual(y - exact.matvec(best), scale)

def refined(solve, exact: BlockLevinson, y: np.ndarray, scale: np.ndarray,
            start: np.ndarray | None = None):
    """``solve(y)`` (or ``start`` corrected by one solve) refined against ``exact`` until
    every system's relative residual is below ``REFINED`` or the largest stops falling:
    ``(x, relative residual of each)``."""
    x = solve(y) if start is None else start + solve(y - exact.matvec(start))
    res = y - exact.matvec(x)
    rel = float(np.max(relative_residual(res, scale)))
    for _ in range(_MAX_REFINEMENTS):
        if not np.isfinite(rel) or rel < REFINED:
            break
        step = x + solve(res)
        new_res = y - exact.matvec(step)
        new_rel = float(np.max(relative_residual(new_res, scale)))
        if not new_rel < rel:
            break
        falling = new_rel < 0.8 * rel  # keep refining while the residual falls
        x, res, rel = step, new_res, new_rel
        if not falling:
            break
    return x, relative_residual(res, scale)
