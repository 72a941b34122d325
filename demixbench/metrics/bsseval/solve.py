"""Step 2 of BSS Eval v4: the least-squares projection filters. The Gram system of delayed
reference channels is block Toeplitz; it is solved by block Levinson after scaling every
channel to unit energy, refined against an FFT product until the residual is a dense solve's
(1e-12). The own-reference systems are solved on the other core by numpy's LU. A system on
which Levinson and Cholesky both fail is numerically singular: its filters are not unique."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import fft as sfft
from scipy.linalg import cho_factor, cho_solve
from threadpoolctl import threadpool_limits

_EPS = np.finfo(float).eps

_USE_LEVINSON = True  # structured solve of the Gram systems (falls back to dense solves)

# Levinson's relative residual at which refinement stops: each step gains about two orders on
# music (1e-8 -> 1e-10 -> 1e-12); a dense solve reaches about 1e-13. (Stopping at 1e-10 moved
# museval agreement from 1e-7 to 5e-4 dB on an ill-conditioned own-reference system.)
_REFINED = 1e-12
# the largest residual accepted from the structured solve before a dense factorisation is
# tried instead; 1e-10 kept every frame within 5e-4 dB of museval on real music
_ACCEPTED = 1e-11
_MAX_REFINEMENTS = 8
# added to the equilibrated Gram system's unit diagonal for the factorisation only (see
# _toeplitz_solve): small enough that refinement removes it in one or two steps
_PRECONDITION = 1e-14
# the equilibrated zero-lag block's smallest eigenvalue above which channels count as
# independent (so that _PRECONDITION is added; see _toeplitz_solve)
_INDEPENDENT = 1e-8

# -- the Gram systems -----------------------------------------------------------------------------
def gram_matrix(r_refs: np.ndarray) -> np.ndarray:
    """museval's Gram matrix of delayed reference channels plus ``eps I``.

    Rows and columns are ordered (channel signal m, delay a) as museval orders them;
    ``G[(m, a), (n, b)] = <a_m delayed by a, a_n delayed by b> = R_mn(a - b)``.
    """
    m, _, lags = r_refs.shape
    # R_mn(k) for k = -(L-1)..L-1 (index k + L - 1), using R_mn(-k) = R_nm(k)
    seq = np.concatenate([r_refs.transpose(1, 0, 2)[:, :, :0:-1], r_refs], axis=-1)
    # row a of block (m, n) is R_mn(a - b) for b = 0..L-1: a reversed window of the sequence
    windows = np.lib.stride_tricks.sliding_window_view(seq[:, :, ::-1], lags, axis=-1)
    g = np.empty((m, lags, m, lags))
    g[...] = windows[:, :, ::-1].transpose(0, 2, 1, 3)  # window L-1-a holds R(a - b), b = 0..
    g = g.reshape(m * lags, m * lags)
    g[np.diag_indices_from(g)] += _EPS
    return g

def solve_gram(g: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, str]:
    """Solve ``(G + eps I) x = d`` (``g`` already holds the eps) for the columns of ``d``.

    The Gram matrix is symmetric positive (semi-)definite: a Cholesky factorisation solves it
    with half the work of museval's LU. Where it is not numerically positive definite, museval's
    own route is taken: LU, then least squares on ``G`` if LU meets an exactly zero pivot.
    """
    try:
        return cho_solve(cho_factor(g, check_finite=False), d, check_finite=False), "cholesky"
    except np.linalg.LinAlgError:
        pass
    try:
        return np.linalg.solve(g, d), "lu"
    except np.linalg.LinAlgError:
        g = g.copy()
        g[np.diag_indices_from(g)] -= _EPS
        return np.linalg.lstsq(g, d, rcond=None)[0], "lstsq"

class BlockLevinson:
    """Block Levinson factorisation of symmetric positive definite block-Toeplitz systems.

    ``T[a, b] = B(a - b)`` with ``B(-k) = B(k)^T``; ``blocks`` holds ``B(0..L-1)`` as
    ``(S, L, M, M)`` for S systems factorised together. The recursion (Whittle; Wiggins &
    Robinson) grows forward and backward solutions one block at a time, ``O(L^2 M^3)``
    operations instead of the ``O((L M)^3)`` of a dense factorisation, and keeps the backward
    solutions, so that each :meth:`solve` costs ``O(L^2 M^2 R)`` (the iterative refinement's
    solves are cheap). It is only weakly stable: callers refine against :meth:`matvec`.
    """

    def __init__(self, blocks: np.ndarray):
        S, L, M, _ = blocks.shape
        self.shape = (S, L, M)
        # row layout: C[:, :, (L-1-k) M : (L-k) M] = B(k); D[:, :, (k-1) M : k M] = B(k)^T
        self.C = np.ascontiguousarray(blocks[:, ::-1].transpose(0, 2, 1, 3).reshape(S, M, L * M))
        D = np.ascontiguousarray(blocks[:, 1:].transpose(0, 3, 1, 2).reshape(S, M, (L - 1) * M))
        # Z[:, :, :M] holds the forward solution f, Z[:, :, M:] the backward one b one block
        # down, so that Z[:, :(n+1) M] = [[f; 0], [0; b]] and one product updates both
        Z = np.zeros((S, (L + 1) * M, 2 * M))
        self.inv0 = np.linalg.inv(blocks[:, 0])
        Z[:, :M, :M] = self.inv0
        Z[:, M:2 * M, M:] = self.inv0
        self.backward = []  # b of every order n >= 1: (S, (n+1) M, M)
        # the update [f, b] <- [[f; 0], [0; b]] K uses K = [[a, -eb d], [-ef a, d]] with
        # a = (I - eb ef)^-1, d = (I - ef eb)^-1: the inverse of P = [[I, eb], [ef, I]]
        P = np.zeros((S, 2 * M, 2 * M))
        P[:, np.arange(2 * M), np.arange(2 * M)] = 1.0
        for n in range(1, L):
            nm = n * M
            P[:, M:, :M] = self.C[:, :, (L - 1 - n) * M:(L - 1) * M] @ Z[:, :nm, :M]  # ef
            P[:, :M, M:] = D[:, :, :nm] @ Z[:, M:nm + M, M:]  # eb
            K = np.linalg.inv(P)
            f_new = Z[:, :nm + M] @ K[:, :, :M]
            b_new = Z[:, :nm + M] @ K[:, :, M:]
            Z[:, :nm + M, :M] = f_new
            Z[:, M:nm + 2 * M, M:] = b_new
            self.backward.append(b_new)
        self._set_products(blocks)

    def _set_products(self, blocks: np.ndarray) -> None:
        """Products by FFT: S(k) for k = -(L-1)..L-1 at index k + L - 1, S(-k) = B(k)^T."""
        L = blocks.shape[1]
        seq = np.concatenate([blocks[:, :0:-1].transpose(0, 1, 3, 2), blocks], axis=1)
        self.nfft = sfft.next_fast_len(3 * L - 2, real=True)
        self.seq_f = sfft.rfft(seq, self.nfft, axis=1)  # (S, F, M, M)

    @classmethod
    def products(cls, blocks: np.ndarray) -> BlockLevinson:
        """An object whose :meth:`matvec` multiplies by the system of ``blocks``, without the
        factorisation (for refining against the exact system)."""
        out = cls.__new__(cls)
        out.shape = blocks.shape[:3]
        out._set_products(blocks)
        return out

    def solve(self, y: np.ndarray) -> np.ndarray:
        """``T^-1 y`` for ``y`` ``(S, L, M, R)``."""
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

def block_levinson(blocks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Solve ``T x = y`` by :class:`BlockLevinson` (``blocks`` ``(L, M, M)``, ``y``
    ``(L, M, R)``), without refinement."""
    return BlockLevinson(blocks[None]).solve(y[None])[0]

def _toeplitz_solve(blocks: np.ndarray, y: np.ndarray, accept: float = _ACCEPTED):
    """Solve a Gram system by block Levinson, refined iteratively until its relative residual
    is below ``_REFINED`` or stops falling (a direct solve reaches about 1e-13 on these
    systems). ``None`` where it ends above ``accept``: the caller then factorises the dense
    matrix.

    The factorisation is of the system with ``_PRECONDITION`` added to its (unit) diagonal:
    band-limited references (lossy-coded music has no energy above ~16 kHz) make the Gram
    system numerically singular (condition ~1e17), where Levinson's recursion overflows; the
    slightly regularised one is factorised stably, and refinement against the exact system's
    product removes the regularisation wherever the system determines the solution."""
    if not np.all(np.isfinite(blocks)):
        return None
    # equilibrate: channels scaled to unit energy (D T D x' = D y, x = D x'), which keeps the
    # block-Toeplitz structure and lowers Levinson's error where channel energies differ
    diag = np.diagonal(blocks[0]).copy()
    if np.any(diag <= 0):
        return None
    d = 1.0 / np.sqrt(diag)
    blocks = blocks * d[None, :, None] * d[None, None, :]
    y = y * d[None, :, None]
    scale = np.linalg.norm(y)
    if scale == 0:
        return np.zeros_like(y)
    try:
        with np.errstate(all="ignore"):
            factored = blocks.copy()
            # only where the channels themselves are independent: identical reference
            # channels (an exactly singular system, whose filters are not unique) must still
            # fail here, so that the caller hands them to museval's own solver
            if np.linalg.eigvalsh(blocks[0])[0] > _INDEPENDENT:
                factored[0] += _PRECONDITION * np.eye(blocks.shape[1])
            system = BlockLevinson(factored[None])  # (stacked arrays: faster products here)
            exact = BlockLevinson.products(blocks[None])
            y = y[None]
            x = system.solve(y)
            res = y - exact.matvec(x)
            rel = np.linalg.norm(res) / scale
            for _ in range(_MAX_REFINEMENTS):
                if not np.isfinite(rel) or rel < _REFINED:
                    break
                step = x + system.solve(res)
                new_res = y - exact.matvec(step)
                new_rel = np.linalg.norm(new_res) / scale
                if not new_rel < rel:
                    break
                falling = new_rel < 0.8 * rel  # keep refining while the residual falls
                x, res, rel = step, new_res, new_rel
                if not falling:
                    break
    except np.linalg.LinAlgError:
        return None
    if not (np.isfinite(rel) and rel <= accept):
        return None
    return x[0] * d[None, :, None]

def projection_filters(r: np.ndarray, nsrc: int, nchan: int, singular: str = "solve"):
    """The time-invariant distortion filters of every estimate channel, as museval fits them,
    from whole-signal correlations ``r`` (``(M, 2M, L)``, :func:`correlations`).

    Returns ``(v_all, v_own, methods)``: ``v_all[row, m, a]`` is the coefficient of reference
    channel ``m`` delayed by ``a`` in the projection of estimate channel ``row`` (rows and
    channels indexed ``src * nchan + chan``) onto all references; ``v_own`` onto its own
    reference only (zero on the other sources' channels); ``methods`` names the solver of the
    full system and of each own-reference system. A numerically singular full system (where
    Levinson and Cholesky both fail) is solved museval's way (LU, least squares) with
    ``singular="solve"``; with ``singular="stop"`` the filters are None and ``methods`` is
    ``["singular"]``.
    """
    m, _, lags = r.shape
    blocks = np.ascontiguousarray(r[:, :m].transpose(2, 0, 1))  # B(k)[m, n] = R_mn(k)
    blocks[0] += _EPS * np.eye(m)
    y = np.ascontiguousarray(r[:, m:].transpose(2, 0, 1))  # y[a, m, row] = <a_m delayed a, b_row>
    d = r[:, m:].transpose(0, 2, 1).reshape(m * lags, m)  # the same in museval's row order
    size = nchan * lags
    own = [slice(j * nchan, (j + 1) * nchan) for j in range(nsrc)]

    def solve_own():
        """The own-reference systems, ``(nchan L)^2`` each, by numpy's LU (museval's own
        solver; numpy's LAPACK calls release the interpreter lock, scipy's do not, and its LU
        is faster here than its Cholesky); singular ones museval's way."""
        out = []
        for j, c in enumerate(own):  # one at a time: (nchan L)^2 matrices, bounded memory
            g, rhs = gram_matrix(r[c, c]), d[j * size:(j + 1) * size, c]
            try:
                out.append((np.linalg.solve(g, rhs), "lu"))
            except np.linalg.LinAlgError:
                if singular == "stop":  # the full system is singular too: not needed
                    return []
                out.append(solve_gram(g, rhs))
        return out

    # the own systems' factorisation runs on one core while the full system's Levinson
    # recursion runs on the other
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(1) as pool:
        own_job = pool.submit(solve_own) if nsrc > 1 else None
        x = _toeplitz_solve(blocks, y) if _USE_LEVINSON else None
        own_solutions = own_job.result() if own_job is not None else []
    if x is not None:
        v_all, methods = x.transpose(2, 1, 0), ["levinson"]
    else:  # the dense matrix is built only when the structured solve does not converge
        g = gram_matrix(r[:, :m])
        if singular == "stop":
            try:
                factor = cho_factor(g, check_finite=False)
            except np.linalg.LinAlgError:
                return None, None, ["singular"]
            sol, method = cho_solve(factor, d, check_finite=False), "cholesky"
        else:
            sol, method = solve_gram(g, d)
        v_all, methods = sol.reshape(m, lags, m).transpose(2, 0, 1), [method]
    if nsrc == 1:
        return v_all, v_all, methods * 2
    v_own = np.zeros_like(v_all)
    for c, (sol, method) in zip(own, own_solutions):
        v_own[c, c] = sol.reshape(nchan, lags, nchan).transpose(2, 0, 1)
        methods.append(method)
    return v_all, v_own, methods
