"""Step 2 of BSS Eval v4: the least-squares projection filters. The Gram systems of delayed
reference channels (all references, and each source's own) are block Toeplitz; each is
factorised by block Levinson after scaling every channel to unit energy, and solved by
conjugate gradients against an FFT product, preconditioned by the factorisation's
Gohberg-Semencul inverse, until the residual is a dense solve's (1e-12). A system on which
Levinson and Cholesky both fail is numerically singular: its filters are not unique."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
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
# conjugate gradients: at most this many iterations, and stopped when the residual has not
# reached a new low for _STALLED of them (7-9 iterations reach 1e-12 on the demo excerpts)
_MAX_ITERATIONS = 40
_STALLED = 4
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
        # Z[:, :, :M] holds the forward solution f, Z[:, :, M:] the backward one b one block
        # down, so that Z[:, :(n+1) M] = [[f; 0], [0; b]] and one product updates both
        Z = np.zeros((S, (L + 1) * M, 2 * M))
        self.inv0 = np.linalg.inv(blocks[:, 0])
        Z[:, :M, :M] = self.inv0
        Z[:, M:2 * M, M:] = self.inv0
        self.backward = [] if keep_backward else None  # b of every order n >= 1
        # the update [f, b] <- [[f; 0], [0; b]] K uses K = [[a, -eb d], [-ef a, d]] with
        # a = (I - eb ef)^-1, d = (I - ef eb)^-1: the inverse of P = [[I, eb], [ef, I]]
        P = np.zeros((S, 2 * M, 2 * M))
        P[:, np.arange(2 * M), np.arange(2 * M)] = 1.0
        for n in range(1, L):
            nm = n * M
            P[:, M:, :M] = self.C[:, :, (L - 1 - n) * M:(L - 1) * M] @ Z[:, :nm, :M]  # ef
            P[:, :M, M:] = D[:, :, :nm] @ Z[:, M:nm + M, M:]  # eb
            updated = Z[:, :nm + M] @ np.linalg.inv(P)  # [f_new, b_new]
            Z[:, :nm + M, :M] = updated[:, :, :M]
            Z[:, M:nm + 2 * M, M:] = updated[:, :, M:]
            if keep_backward:
                self.backward.append(updated[:, :, M:])
        self._set_products(blocks)
        self._set_inverse(Z[:, :L * M, :M].reshape(S, L, M, M),
                          Z[:, M:, M:].reshape(S, L, M, M))
        if not keep_backward:
            del self.C  # (only the back substitution reads the blocks' rows)

    def nbytes(self) -> int:
        """The memory its arrays hold."""
        arrays = [v for v in vars(self).values() if isinstance(v, np.ndarray)]
        return sum(a.nbytes for a in arrays) + sum(b.nbytes for b in self.backward or [])

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
        out.backward = None
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

def _relative(residual: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each stacked system's relative residual (``(S, L, M, R)`` against ``(S,)``)."""
    return np.sqrt(np.einsum("slmr,slmr->s", residual, residual)) / scale

def _conjugate_gradients(exact: BlockLevinson, precondition, y: np.ndarray, scale: np.ndarray):
    """Preconditioned conjugate gradients on ``exact`` (one recurrence per system and column
    of ``y``, ``(S, L, M, R)``) until every system's relative residual is below
    ``_REFINED``, or none reaches a new low for ``_STALLED`` iterations: each system's best
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
        rel = _relative(r, scale)
        better = rel < best_rel  # (False where NaN)
        best[better], best_rel[better] = x[better], rel[better]
        since = 0 if better.any() else since + 1
        if not np.all(np.isfinite(rel)) or np.all(best_rel < _REFINED) or since >= _STALLED:
            break
        z = precondition(r)
        rz_new = dot(r, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(rz != 0, rz_new / rz, 0.0)[:, None, None]
        p = z + beta * p
        rz = rz_new
    # the recurrence's residual drifts from the true one: check it
    return best, _relative(y - exact.matvec(best), scale)

def _refined(solve, exact: BlockLevinson, y: np.ndarray, scale: np.ndarray):
    """``solve(y)`` refined against ``exact`` until every system's relative residual is
    below ``_REFINED`` or the largest stops falling: ``(x, relative residual of each)``."""
    x = solve(y)
    res = y - exact.matvec(x)
    rel = float(np.max(_relative(res, scale)))
    for _ in range(_MAX_REFINEMENTS):
        if not np.isfinite(rel) or rel < _REFINED:
            break
        step = x + solve(res)
        new_res = y - exact.matvec(step)
        new_rel = float(np.max(_relative(new_res, scale)))
        if not new_rel < rel:
            break
        falling = new_rel < 0.8 * rel  # keep refining while the residual falls
        x, res, rel = step, new_res, new_rel
        if not falling:
            break
    return x, _relative(res, scale)

# Factorisations of recently solved Gram systems, by the digest of their blocks. A benchmark
# scores every separator and strategy step of a track against the same references, whose
# Gram system is then bitwise the same (the correlation pass is deterministic), and so is its
# factorisation: it is computed once per track, not once per estimate (about half of a call
# on excerpts up to 30 s). Bounded by FACTORED_KEPT_BYTES (a 4-stem stereo system ~4 MB).
FACTORED_KEPT_BYTES = 64 << 20
_FACTORED: OrderedDict[tuple, tuple[BlockLevinson, BlockLevinson, int]] = OrderedDict()
_FACTORED_LOCK = threading.Lock()

def _factorised(blocks: np.ndarray, factored: np.ndarray) -> tuple[BlockLevinson, BlockLevinson]:
    """The products with ``blocks`` and the factorisation of ``factored`` (both stacked
    ``(S, L, M, M)``), kept for the next call with the same systems."""
    digest = hashlib.blake2b(blocks.tobytes(), digest_size=16)
    digest.update(factored.tobytes())
    key = (digest.digest(), blocks.shape)
    with _FACTORED_LOCK:
        if key in _FACTORED:
            _FACTORED.move_to_end(key)
            return _FACTORED[key][:2]
    exact, system = BlockLevinson.products(blocks), BlockLevinson(factored)
    size = exact.nbytes() + system.nbytes()
    with _FACTORED_LOCK:
        _FACTORED[key] = exact, system, size
        while sum(v[2] for v in _FACTORED.values()) > FACTORED_KEPT_BYTES and len(_FACTORED) > 1:
            _FACTORED.popitem(last=False)
    return exact, system

def _toeplitz_solve(blocks: np.ndarray, y: np.ndarray, accept: float = _ACCEPTED):
    """Solve stacked Gram systems (``blocks`` ``(S, L, M, M)``, ``y`` ``(S, L, M, R)``) by
    block Levinson, refined iteratively until every relative residual is below ``_REFINED``
    or stops falling (a direct solve reaches about 1e-13 on these systems): conjugate
    gradients preconditioned by the factorisation's Gohberg-Semencul inverse
    (:func:`_conjugate_gradients`). Where they end above ``accept``, the factorisation is
    repeated keeping the backward solutions and the recursion's back substitution is refined
    instead (it amplifies rounding less, at ten times the cost). Returns each system's
    solution, ``None`` where that too ends above ``accept`` (the caller then factorises the
    dense matrix).

    The factorisation is of the system with ``_PRECONDITION`` added to its (unit) diagonal:
    band-limited references (lossy-coded music has no energy above ~16 kHz) make the Gram
    system numerically singular (condition ~1e17), where Levinson's recursion overflows; the
    slightly regularised one is factorised stably, and refinement against the exact system's
    product removes the regularisation wherever the system determines the solution."""
    S = len(blocks)
    if not np.all(np.isfinite(blocks)):
        return [None] * S
    # equilibrate: channels scaled to unit energy (D T D x' = D y, x = D x'), which keeps the
    # block-Toeplitz structure and lowers Levinson's error where channel energies differ
    diag = np.diagonal(blocks[:, 0], axis1=-2, axis2=-1).copy()  # (S, M)
    if np.any(diag <= 0):
        return [None] * S
    d = (1.0 / np.sqrt(diag))[:, None, :]  # (S, 1, M)
    blocks = blocks * d[..., :, None] * d[..., None, :]
    y = y * d[..., None]
    scale = np.sqrt(np.einsum("slmr,slmr->s", y, y))
    scale[scale == 0] = 1.0  # (those systems' solution is zero)
    try:
        with np.errstate(all="ignore"):
            factored = blocks.copy()
            # only where the channels themselves are independent: identical reference
            # channels (an exactly singular system, whose filters are not unique) must still
            # fail here, so that the caller hands them to museval's own solver
            independent = np.linalg.eigvalsh(blocks[:, 0])[:, 0] > _INDEPENDENT
            factored[independent, 0] += _PRECONDITION * np.eye(blocks.shape[-1])
            exact, system = _factorised(blocks, factored)
            x, rel = _conjugate_gradients(exact, system.solve, y, scale)
            if not np.all(rel <= accept):  # (False where NaN)
                system = BlockLevinson(factored, keep_backward=True)
                x2, rel2 = _refined(system.solve_recursive, exact, y, scale)
                took = ~(rel <= accept) & (rel2 <= accept)
                x[took], rel[took] = x2[took], rel2[took]
    except np.linalg.LinAlgError:
        return [None] * S
    return [xs * ds[..., None] if r <= accept else None for xs, ds, r in zip(x, d, rel)]

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
        solver) where their structured solve does not converge; singular ones museval's
        way."""
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

    def solve_own_structured():
        """The own systems, block Toeplitz with ``nchan x nchan`` blocks, stacked: one
        structured solve, LU (:func:`solve_own`) where it does not converge."""
        solved = _toeplitz_solve(np.stack([blocks[:, c, c] for c in own]),
                                 np.stack([y[:, c, c] for c in own]))
        if any(xj is None for xj in solved):
            return solve_own()
        # in museval's row order (channel, delay)
        return [(xj.transpose(1, 0, 2).reshape(size, nchan), "levinson") for xj in solved]

    # the own systems' recursion runs on one core while the full system's runs on the other
    # (their matrix products release the interpreter lock)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(1) as pool:
        own_job = pool.submit(solve_own_structured) if nsrc > 1 else None
        x = _toeplitz_solve(blocks[None], y[None])[0] if _USE_LEVINSON else None
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
