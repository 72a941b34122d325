"""Step 2 of BSS Eval v4: the least-squares projection filters. The Gram systems of delayed
reference channels (all references, and each source's own) are block Toeplitz; each is
factorised by block Levinson after scaling every channel to unit energy, and solved by
conjugate gradients against an FFT product, preconditioned by the factorisation's
Gohberg-Semencul inverse, until the residual is a dense solve's (1e-12); the factorisations
are kept for the next estimate of the same references. A system on which Levinson and
Cholesky both fail is numerically singular: its filters are not unique."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ..memo import KeptBytes
from .correlations import one_blas_thread
from .levinson import BlockLevinson, conjugate_gradients, refined

_EPS = np.finfo(float).eps

_USE_LEVINSON = True  # structured solve of the Gram systems (falls back to dense solves)

# the largest residual accepted from the structured solve before a dense factorisation is
# tried instead; 1e-10 kept every frame within 5e-4 dB of museval on real music
_ACCEPTED = 1e-11
# added to the equilibrated Gram system's unit diagonal for the factorisation only (see
# _toeplitz_solve): small enough that refinement removes it in one or two steps
_PRECONDITION = 1e-14
# the leading blocks on which conjugate gradients are tried before the route is chosen (see
# _factorise)
_PROBE_ORDER = 64
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

# Factorisations of recently solved Gram systems, by the digest of their blocks. A benchmark
# scores every separator and strategy step of a track against the same references, whose
# Gram system is then bitwise the same (the correlation pass is deterministic), and so is its
# factorisation: it is computed once per track, not once per estimate (about half of a call
# on excerpts up to 30 s). Bounded by FACTORED_KEPT_BYTES (a 4-stem stereo system ~4 MB;
# one that needed the recursion's back substitution keeps its backward solutions, ~70 MB).
FACTORED_KEPT_BYTES = 128 << 20
# (sized when kept, and again when kept after its route changed: the backward solutions)
_FACTORED = KeptBytes(FACTORED_KEPT_BYTES,
                      lambda entry: entry["exact"].nbytes() + entry["system"].nbytes())

def _factorise(blocks: np.ndarray, factored: np.ndarray, y: np.ndarray, scale: np.ndarray):
    """Factorise and choose the route: conjugate gradients where the Gohberg-Semencul inverse
    is a usable preconditioner, else the recursion's back substitution, which needs the
    backward solutions kept (cancellation ruins the inverse on the synthetic set).

    The choice is made before the factorisation, on the leading ``_PROBE_ORDER`` blocks
    (the leading part of a block-Toeplitz system is one): conjugate gradients preconditioned
    by their inverse either reach ``_ACCEPTED`` there or they do not, as at the full order.
    On the demo music they reach it in 5-8 iterations wherever the full system's do; on the
    synthetic set's full systems they stall at 2e-2 to 2e-8, as the full ones do. (One
    application of the inverse is no such test: its residual on music is set by a few
    rounding-dominated directions that conjugate gradients remove in a few steps, and it
    moved from 0.13 to 0.97 when one sample of a 10 s excerpt changed by 1e-9, which sent
    about half of the music's systems to the slower back substitution.) So each system is
    factorised once; a wrong guess costs either the backward solutions' storage (~10 % of a
    factorisation) or, where conjugate gradients fail, a second factorisation (see
    :func:`_toeplitz_solve`)."""
    n = min(blocks.shape[1], _PROBE_ORDER)
    head = y[:, :n]
    head_scale = np.sqrt(np.einsum("slmr,slmr->s", head, head))
    head_scale[head_scale == 0] = 1.0
    _, probe = conjugate_gradients(BlockLevinson.products(blocks[:, :n]),
                                   BlockLevinson(factored[:, :n]).solve, head, head_scale)
    usable = bool(np.all(probe <= _ACCEPTED))  # (False where NaN)
    return {"exact": BlockLevinson.products(blocks),
            "system": BlockLevinson(factored, keep_backward=not usable),
            "route": "cg" if usable else "recursive"}

def _toeplitz_solve(blocks: np.ndarray, y: np.ndarray, accept: float = _ACCEPTED):
    """Solve stacked Gram systems (``blocks`` ``(S, L, M, M)``, ``y`` ``(S, L, M, R)``) by
    block Levinson, refined iteratively until every relative residual is below ``REFINED``
    or stops falling (a direct solve reaches about 1e-13 on these systems): conjugate
    gradients preconditioned by the factorisation's Gohberg-Semencul inverse
    (:func:`conjugate_gradients`), or, where that inverse is not usable or they end above
    ``accept``, the recursion's back substitution, refined (it amplifies rounding less, at
    ten times the cost a solve). Returns each system's
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
            # (factored follows from blocks: the blocks' digest names both)
            key = (hashlib.blake2b(blocks.tobytes(), digest_size=16).digest(), blocks.shape)
            entry = _FACTORED.get(key) or _factorise(blocks, factored, y, scale)
            exact = entry["exact"]
            x, rel = np.zeros_like(y), np.full(S, np.inf)
            if entry["route"] == "cg":
                x, rel = conjugate_gradients(exact, entry["system"].solve, y, scale)
            if not np.all(rel <= accept):  # (False where NaN)
                if entry["system"].backward is None:
                    entry["system"] = BlockLevinson(factored, keep_backward=True)
                entry["route"] = "recursive"
                start = np.where((rel < 1)[:, None, None, None], x, 0.0)
                x2, rel2 = refined(entry["system"].solve_recursive, exact, y, scale, start)
                took = ~(rel <= accept) & (rel2 <= accept)
                x[took], rel[took] = x2[took], rel2[took]
            _FACTORED.put(key, entry)
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
        if not _USE_LEVINSON:
            return solve_own()
        solved = _toeplitz_solve(np.stack([blocks[:, c, c] for c in own]),
                                 np.stack([y[:, c, c] for c in own]))
        if any(xj is None for xj in solved):
            return solve_own()
        # in museval's row order (channel, delay)
        return [(xj.transpose(1, 0, 2).reshape(size, nchan), "levinson") for xj in solved]

    # the own systems' recursion runs on one core while the full system's runs on the other
    # (their matrix products release the interpreter lock)
    with one_blas_thread(), ThreadPoolExecutor(1) as pool:
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
