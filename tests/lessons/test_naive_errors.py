"""Bad arguments to the naive engine, and the rule that it computes with scalar loops only."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from cnn_tui.lessons import naive, network

X = np.zeros((1, 2, 4, 4))
W = np.zeros((3, 2, 3, 3))
B = np.zeros(3)


def conv(**overrides):
    kwargs = {"x": X, "w": W, "b": B, "stride": 1, "padding": 0, **overrides}
    return naive.conv2d_forward(**kwargs)


_, CONV_CACHE = conv()
_, MAX_CACHE = naive.maxpool2d_forward(X)
_, AVG_CACHE = naive.avgpool2d_forward(X)

BAD_CALLS = {
    "kernel larger than padded input": (
        lambda: conv(w=np.zeros((3, 2, 5, 5))),
        r"kernel_size \(5, 5\) \(from w\) is larger than the padded input \(4, 4\): use a smaller",
    ),
    "kernel larger than padded input, wide": (
        lambda: conv(w=np.zeros((3, 2, 3, 7)), padding=1),
        r"kernel_size \(3, 7\).*padded input \(6, 6\)",
    ),
    "stride 0": (lambda: conv(stride=0), r"stride must be positive, got 0"),
    "negative stride pair": (lambda: conv(stride=(1, -2)), r"stride must be positive"),
    "negative padding": (lambda: conv(padding=-1), r"padding must be at least 0, got -1"),
    "padding not an int": (lambda: conv(padding=1.5), r"padding must be an int or an \(h, w\)"),
    "stride triple": (lambda: conv(stride=(1, 1, 1)), r"stride must be an int or an \(h, w\)"),
    "channel mismatch": (lambda: conv(w=np.zeros((3, 1, 3, 3))), r"w has 1 input channels but x"),
    "bias shape": (lambda: conv(b=np.zeros(2)), r"b must have shape \(F,\) = \(3,\)"),
    "3-D input": (lambda: conv(x=np.zeros((2, 4, 4))), r"x must be 4-D \(N, C, H, W\)"),
    "3-D weights": (lambda: conv(w=np.zeros((2, 3, 3))), r"w must be 4-D"),
    "conv dout shape": (
        lambda: naive.conv2d_backward(np.zeros((1, 3, 3, 3)), CONV_CACHE),
        r"dout has shape \(1, 3, 3, 3\) but the forward output had shape \(1, 3, 2, 2\)",
    ),
    "conv wrong cache": (
        lambda: naive.conv2d_backward(np.zeros((1, 3, 2, 2)), MAX_CACHE),
        r"cache must be the ConvCache returned by conv2d_forward",
    ),
    "pool kernel too big": (
        lambda: naive.maxpool2d_forward(X, kernel_size=5),
        r"kernel_size \(5, 5\) is larger than the input \(4, 4\)",
    ),
    "pool kernel 0": (lambda: naive.avgpool2d_forward(X, 0), r"kernel_size must be positive"),
    "pool stride 0": (lambda: naive.maxpool2d_forward(X, 2, 0), r"stride must be positive"),
    "pool 2-D input": (lambda: naive.maxpool2d_forward(np.zeros((4, 4))), r"x must be 4-D"),
    "maxpool dout shape": (
        lambda: naive.maxpool2d_backward(np.zeros((1, 2, 3, 3)), MAX_CACHE),
        r"dout has shape \(1, 2, 3, 3\)",
    ),
    "avgpool dout shape": (
        lambda: naive.avgpool2d_backward(np.zeros((2, 2, 2, 2)), AVG_CACHE),
        r"dout has shape \(2, 2, 2, 2\)",
    ),
    "gradient check op": (lambda: naive.gradient_check("conv3d", X), r"op must be 'conv2d'"),
    "output_size kernel": (lambda: naive.output_size(4, 7, 1, 1), r"kernel_size 7 is larger"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_raise_value_error_naming_the_argument(case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message):
        call()


# Names whose use would let numpy do the arithmetic the lesson is about.
FORBIDDEN_WORDS = (
    "matmul", "einsum", "tensordot", "convolve", "correlate", "as_strided",
    "sliding_window_view", "stride_tricks", "torch", "scipy", "vdot",
)  # fmt: skip
FORBIDDEN_NUMPY = {
    "dot", "inner", "outer", "kron", "sum", "max", "min", "mean", "prod", "amax", "amin",
    "argmax", "argmin", "cumsum", "average", "maximum", "minimum", "nansum", "nanmax",
}  # fmt: skip
ALLOWED_IMPORTS = {"__future__", "math", "collections.abc", "dataclasses", "typing", "numpy"}
FORBIDDEN_METHODS = {"dot", "sum", "max", "min", "mean", "prod", "argmax", "argmin", "cumsum"}


def vectorised_arithmetic(tree: ast.AST, allowed_imports: set[str]) -> list[str]:
    """The @ operator, numpy products and reductions, and imports outside `allowed_imports`."""
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
            problems.append(f"line {node.lineno}: the @ operator")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in ("np", "numpy") and node.attr in FORBIDDEN_NUMPY:
                problems.append(f"line {node.lineno}: np.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in FORBIDDEN_METHODS:
                problems.append(f"line {node.lineno}: .{node.func.attr}()")
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        problems += [f"line {node.lineno}: import {m}" for m in modules if m not in allowed_imports]
    return problems


def test_the_engine_uses_no_vectorised_arithmetic():
    source = inspect.getsource(naive)
    for word in FORBIDDEN_WORDS:
        assert word not in source, f"naive.py mentions {word!r}"
    problems = vectorised_arithmetic(ast.parse(source), ALLOWED_IMPORTS)
    assert not problems, problems


# The network lesson chains the naive ops; it reads example files (through `library`: no
# arithmetic) and, in its PyTorch check only, imports torch.
NETWORK_IMPORTS = ALLOWED_IMPORTS | {
    "cnn_tui.errors", "cnn_tui.lessons", "cnn_tui.lessons.library", "cnn_tui.text",
    "cnn_tui.lessons.settings", "cnn_tui.lessons.naive",
    "cnn_tui.lessons.rules",  # the rule texts (p − y derived, Adam): no arithmetic
    "cnn_tui.lessons.number_format",  # how L is written in a sentence: no lesson arithmetic
}  # fmt: skip


def test_the_network_lesson_computes_only_through_the_naive_ops():
    tree = ast.parse(inspect.getsource(network))
    check = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "compare_with_torch"
    )
    tree.body.remove(check)  # the PyTorch comparison may use torch, in its own body only
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for word in FORBIDDEN_WORDS:
        used = [name for name in names if word in name]
        assert not used, f"network.py uses {used} outside compare_with_torch"
    problems = vectorised_arithmetic(tree, NETWORK_IMPORTS)
    problems += vectorised_arithmetic(ast.Module(body=check.body, type_ignores=[]), set())
    allowed_in_check = {"torch", "torch.nn.functional"}
    problems = [p for p in problems if p.split("import ")[-1] not in allowed_in_check]
    assert not problems, problems
    # every layer is a naive op: the forward pass and the run call them, nothing else computes
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "naive"
    }
    ops = {
        "conv2d_forward", "conv2d_backward", "relu_forward", "relu_backward",
        "maxpool2d_forward", "maxpool2d_backward", "flatten_forward", "flatten_backward",
        "linear_forward", "linear_backward", "softmax_cross_entropy_forward",
        "softmax_cross_entropy_backward", "sgd_update",
    }  # fmt: skip
    assert ops <= calls, ops - calls
