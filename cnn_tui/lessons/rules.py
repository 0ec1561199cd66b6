"""What each phase of the conv and pool lessons computes, as the chain rule says it.

The step panel writes one step's arithmetic (`step_text.step_text`); this module writes what that
arithmetic stands for: the rule of the phase in general (the forward sum, or for a backward
phase ∂L/∂v = Σ ∂L/∂out · ∂out/∂v), the local derivative ∂out/∂v in general and at the current
step, and where `dout` comes from. The trace prints the same rules as its phase titles, so the
screen and `--no-ui` say the same thing. Indices follow `step_text.array_ref`: the sample,
channel and filter axes appear only when they have more than one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnn_tui.lessons.naive import StepEvent
from cnn_tui.lessons.step_text import axes_of


def _lead(example: Any, name: str) -> list[str]:
    """The leading axes of array `name` that have more than one entry (n, c, f)."""
    n, c = example.x.shape[:2]
    f = example.w.shape[0] if example.w is not None else c
    sizes = {"n": n, "c": c, "f": f}
    axes = axes_of(example.naive_op, name, 1 if name in ("b", "db") else 4)
    return [axis for axis in axes if axis is not None and sizes[axis] > 1]


def _at(example: Any, name: str, *spatial: str) -> str:
    """`name[axes, spatial]` with the leading axes that matter: out[f,i,j], b (one filter)."""
    parts = [*_lead(example, name), *spatial]
    return f"{name}[{','.join(parts)}]" if parts else name


def _tap(stride: int, dilation: int, outer: str, inner: str) -> str:
    """Where tap `inner` of window `outer` lands: i+ki, 2i+ki, i+2ki."""
    first = outer if stride == 1 else f"{stride}{outer}"
    second = inner if dilation == 1 else f"{dilation}{inner}"
    return f"{first}+{second}"


def _sum(*loops: str) -> str:
    return "Σ_" + ",".join(loops)


def _kernel_cell(example: Any, rotated: bool) -> tuple[str, str]:
    """The kernel index a tap (ki, kj) reads: (ki, kj), or rotated by 180°: (2−ki, 2−kj)."""
    kh, kw = example.kernel
    if not rotated:
        return "ki", "kj"
    return f"{kh - 1}−ki", f"{kw - 1}−kj"


def _window(example: Any) -> tuple[str, str]:
    (sh, sw), (dh, dw) = example.stride, getattr(example, "dilation", (1, 1))
    return _tap(sh, dh, "i", "ki"), _tap(sw, dw, "j", "kj")


def _reduce(example: Any, *spatial: str) -> list[str]:
    """The loops a gradient sums over: the batch when it has more than one image, then these."""
    return [*(["n"] if example.x.shape[0] > 1 else []), *spatial]


def phase_rule(example: Any, phase: str) -> str:
    """The rule of a phase in general, e.g. "∂L/∂w[ki,kj] = Σ_i,j ∂L/∂out[i,j]·∂out[i,j]/∂w[ki,kj]"
    for the grad-weight phase; the forward rule is the sum the loops compute."""
    rows, cols = _window(example)
    if example.op == "conv":
        wi, wj = _kernel_cell(example, example.flip)
        x_tap = _at(example, "x_pad", rows, cols)
        channels = ["c"] if example.x.shape[1] > 1 else []
        out_ij = _at(example, "out", "i", "j")
        if phase == "forward":
            b = _at(example, "b")
            w = _at(example, "w", wi, wj)
            return f"{out_ij} = {b} + {_sum(*channels, 'ki', 'kj')} {x_tap}·{w}"
        target = {"grad_bias": ("b",), "grad_weight": ("w", "ki", "kj")}.get(phase)
        if target is not None:
            name, *spatial = target
            if name == "w" and example.flip:
                spatial = [wi, wj]
            v = _at(example, name, *spatial)
            over = _reduce(example, "i", "j")
            return f"∂L/∂{v} = {_sum(*over)} ∂L/∂{out_ij}·∂{out_ij}/∂{v}"
        if phase == "grad_input":
            v = _at(example, "x_pad", "r", "s")
            over = _reduce(example, *(["f"] if example.w.shape[0] > 1 else []), "i", "j")
            return f"∂L/∂{v} = {_sum(*over)} ∂L/∂{out_ij}·∂{out_ij}/∂{v}"
        # grad_input_transposed: the same sum, gathered as one convolution
        ti, tj = _kernel_cell(example, not example.flip)
        up = _at(example, "dout_up", _tap(1, example.dilation[0], "r", "ki"))
        up = up[:-1] + "," + _tap(1, example.dilation[1], "s", "kj") + "]"
        filters = ["f"] if example.w.shape[0] > 1 else []
        return (
            f"{_at(example, 'dx_pad', 'r', 's')} = {_sum(*filters, 'ki', 'kj')} "
            f"{up}·{_at(example, 'w', ti, tj)}"
        )
    out_ij = _at(example, "out", "i", "j")
    x_tap = _at(example, "x", rows, cols)
    if phase == "forward":
        if example.pool_type == "max":
            return f"{out_ij} = max over ki,kj of {x_tap}"
        kh, kw = example.kernel
        return f"{out_ij} = {_sum('ki', 'kj')} {x_tap}·1/{kh * kw}"
    v = _at(example, "x", "r", "s")
    return f"∂L/∂{v} = {_sum(*_reduce(example, 'i', 'j'))} ∂L/∂{out_ij}·∂{out_ij}/∂{v}"


def local_rule(example: Any, phase: str) -> str:
    """The local derivative ∂out/∂v of a backward phase in general ("" for forward); for the
    transposed view, how dout_up is made from dout."""
    rows, cols = _window(example)
    if example.op == "conv":
        wi, wj = _kernel_cell(example, example.flip)
        if phase == "grad_bias":
            return "∂out/∂b = 1"
        if phase == "grad_weight":
            return f"∂out/∂w = {_at(example, 'x_pad', rows, cols)}"
        if phase == "grad_input":
            return f"∂out/∂x_pad = {_at(example, 'w', wi, wj)} at x_pad[{rows},{cols}], else 0"
        if phase == "grad_input_transposed":
            (sh, sw), (kh, kw) = example.stride, example.kernel
            (dh, dw) = example.dilation
            return (
                f"dout_up = dout with S−1 = {_gaps(sh - 1, sw - 1)} zeros between cells, "
                f"D·(K−1) = {_gaps(dh * (kh - 1), dw * (kw - 1))} around"
            )
        return ""
    if phase == "forward":
        return ""
    if example.pool_type == "max":
        return "∂out/∂x = 1 at the window's max, else 0"
    kh, kw = example.kernel
    return f"∂out/∂x = 1/{kh * kw} inside the window, else 0"


def _gaps(h: int, w: int) -> str:
    return str(h) if h == w else f"{h}×{w}"


def step_derivative(
    e: StepEvent, ref: Callable[[str, tuple[int, ...]], str], cell: Callable[[str, float], str]
) -> str:
    """The local derivative at this step, with its value, e.g.
    "here ∂out[0,0]/∂w[0,1] = x_pad[0,1] = 0.4" ("" for a forward step)."""
    if e.phase == "forward":
        return ""
    read = {o.name: o for o in e.operands}
    if e.phase == "grad_input_transposed":
        return ""  # a plain multiply-add of a convolution: the step's line says it all
    dout = read.get("dout")
    if dout is None:
        return ""
    out = ref("out", dout.index)
    target = {"db": "b", "dw": "w", "dx_pad": "x_pad", "dx": "x"}.get(e.target, e.target)
    v = ref(target, e.target_index)
    if e.kind == "add":
        return f"here ∂{out}/∂{v} = 1"
    if e.kind == "route":
        return f"here ∂{out}/∂{v} = 1 ({v} was the window's max)"
    other = next(o for o in e.operands if o.name != "dout")
    if other.name == "scale":
        return f"here ∂{out}/∂{v} = 1/{round(1 / other.value)}"
    return f"here ∂{out}/∂{v} = {ref(other.name, other.index)} = {cell(other.name, other.value)}"


def dout_source(example: Any) -> str:
    """Where dout = ∂L/∂out comes from, said plainly: this lesson has no loss of its own, so
    dout stands for what the layers above would send back, and L = Σ out·dout is the loss
    that has exactly this gradient (the one the numerical check differentiates)."""
    head = "dout = ∂L/∂out, the upstream gradient"
    origin = getattr(example, "dout_from", "")
    if origin == "seed":
        return f"{head}; here random (seed {example.seed}): L = Σ out·dout"
    if origin == "file":
        return f"{head}; here the example's: L = Σ out·dout"
    if origin == "edited":
        return f"{head}; here as typed: L = Σ out·dout"
    return f"{head}, as from the loss L = Σ out·dout"


# --------------------------------------------------------------------------- the network lesson
#
# The texts of the network lesson (`network.run_network`'s stages, `net_replay`'s step panel)
# that say more than one layer's loop: where p − y comes from, and Adam's update.

# ∂L/∂z2 for softmax cross-entropy, derived: the chain rule through p, then the sum collapses
SOFTMAX_CE_GRADIENT = (
    "∂L/∂z2[j] = Σ_i ∂L/∂p[i]·∂p[i]/∂z2[j] = Σ_i (−y[i]/p[i])·p[i](δij − p[j]) "
    "= −y[j] + p[j]·Σ_i y[i] = p[j] − y[j]"
)

# why the softmax subtracts the largest score first
MAX_SUBTRACTION = (
    "softmax(z) = softmax(z − c) for any c (the factor exp(−c) cancels); c = max z keeps every "
    "exp ≤ 1, so none overflows"
)


def softmax_ce_chain(
    p: list[float], y: list[float], j: int, cell: Callable[[str, float], str]
) -> str:
    """The chain rule for one score j with the example's numbers: Σ_i ∂L/∂p[i]·∂p[i]/∂z2[j],
    written term by term (∂L/∂p[i] = −y[i]/p[i], ∂p[i]/∂z2[j] = p[i](δij − p[j])), and what it
    sums to (p[j] − y[j]). `cell(name, value)` writes a value of array `name` the way its grid
    does: p in p's format, y and δij (0 or 1) in y's, the sum in dz2's."""
    terms = []
    total = 0.0
    for i, (pi, yi) in enumerate(zip(p, y, strict=True)):
        delta = 1.0 if i == j else 0.0
        dp = -yi / pi
        jac = pi * (delta - p[j])
        total += dp * jac
        if yi:  # the other terms are 0·(...): only the true class's term is written
            ps, pj = cell("p", pi), cell("p", p[j])
            terms.append(f"(−{cell('y', yi)}/{ps})·{ps}·({cell('y', delta)} − {pj})")
    written = " + ".join(terms) or "0"
    total_text = cell("dz2", total)
    return f"Σ_i ∂L/∂p[i]·∂p[i]/∂z2[{j}] = {written} = {total_text}  (only i = y: y = 0 elsewhere)"


# Adam, one quantity at a time: (stage part, rule) with {p} the parameter's name
ADAM_RULES: dict[str, tuple[str, str]] = {
    "m": ("m_{p}", "m_{p}′ = β1·m_{p} + (1 − β1)·d{p}: the running mean of the gradient"),
    "v": ("v_{p}", "v_{p}′ = β2·v_{p} + (1 − β2)·d{p}²: the running mean of the squared gradient"),
    "mhat": ("m̂_{p}", "m̂_{p} = m_{p}′ / (1 − β1^t): bias correction (m started at 0)"),
    "vhat": ("v̂_{p}", "v̂_{p} = v_{p}′ / (1 − β2^t): bias correction (v started at 0)"),
    "update": ("{p}", "{p}′ = {p} − α·m̂_{p} / (√v̂_{p} + ε): a step of about α per weight"),
}


def adam_note(t: int) -> str:
    """Why Adam moves differently from SGD, at step t."""
    if t == 1:
        return (
            "step 1: m̂ = g and v̂ = g², so every weight moves by α·g/|g| = ±α, whatever the "
            "gradient's size (SGD moves by α·g)"
        )
    return (
        "each weight's step is α·m̂/√v̂: about α while its gradient keeps its sign, smaller "
        "where the sign flips; the gradient's size cancels out"
    )
