"""The notation legend (this app's symbols beside the lecture's) and the conv mode's wording:
one table, in the trace headers, the `--mode` help and the docs."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.layer_lesson import build_layer_example
from cnn_tui.lessons.layer_trace import layer_trace_text
from cnn_tui.lessons.net_trace import net_trace_text
from cnn_tui.lessons.network import build_net_example
from cnn_tui.lessons.notation import LEGEND_TITLE, LESSONS, NOTATION, legend, legend_lines
from cnn_tui.lessons.settings import CONV_MODES, SETTINGS, conv_mode_text
from cnn_tui.lessons.trace import trace_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lessons" / "notation.md"


def rows(lesson: str) -> dict[str, str]:
    return {row.here: row.lecture for row in legend(lesson)}


def test_the_legend_maps_the_symbols_that_differ_from_the_lecture() -> None:
    conv = rows("conv")
    # the lecture: N the input size, F the filter (kernel) size; here K, F filters, N batch
    assert conv["H×W"].startswith("N×N") and conv["K"].startswith("F")
    assert conv["F"] == "the number of kernels" and conv["N"].startswith("—")
    assert conv["OH×OW"] == "⌊(N + 2P − F)/S⌋ + 1"
    assert conv["out[i,j]"].startswith("X[m,n]")  # careful: the lecture's X is the output
    assert "F" not in rows("pool") and rows("net")["K"] == "the number of classes"
    assert legend("a lesson without a legend yet") == [] and not legend_lines("other")


def test_batch_norm_and_dropout_have_legends_mapped_to_the_lectures_code() -> None:
    batchnorm, dropout = rows("batchnorm"), rows("dropout")
    for symbol in ("μ[c], σ²[c]", "ε", "x̂", "γ[c], β[c]", "m", "running_mean, running_var"):
        assert symbol in batchnorm, symbol
    # the lecture writes no formulas for them: only its CustomCNN's nn.BatchNorm2d / nn.Dropout
    assert "nn.BatchNorm2d" in batchnorm["batch norm"] and "nn.Dropout" in dropout["dropout"]
    assert batchnorm["x̂"] == "— (not in the lecture)"
    assert "not in the lecture" in batchnorm["ε"] and "eps" in batchnorm["ε"]
    assert "momentum" in batchnorm["m"]
    assert dropout["p"] == "p, as in nn.Dropout(p=0.25)"
    assert {"1 − p", "mask", "u"} <= set(dropout) and "μ[c], σ²[c]" not in dropout
    # the trace's columns stay aligned though x̂ is two characters (x and a combining hat)
    lines = legend_lines("batchnorm")
    column = {
        sum(not unicodedata.combining(ch) for ch in line[: line.index("—")])
        for line in lines
        if "—" in line
    }
    assert len(column) == 1 and any(line.lstrip().startswith("x̂ ") for line in lines)


def test_every_trace_header_prints_its_lessons_legend() -> None:
    traces = {
        "conv": trace_text(build_example("conv")),
        "pool": trace_text(build_example("pool")),
        "net": net_trace_text(build_net_example()),
        "batchnorm": layer_trace_text(build_layer_example("batchnorm")),
        "dropout": layer_trace_text(build_layer_example("dropout")),
    }
    for lesson, text in traces.items():
        header = text.split("\n\n", 1)[0]  # the header ends at the first blank line
        block = "\n".join(legend_lines(lesson))
        assert block in header, lesson
        assert header.index(LEGEND_TITLE) > 0  # after the shapes and the example


def test_the_lectures_layer_formula_labels_cross_correlation_not_the_true_convolution() -> None:
    correlation, convolution = (conv_mode_text(mode) for mode in CONV_MODES)
    assert "the lecture's layer formula X[m,n] = Σ o[m+i,n+j]·w[i,j] + b" in correlation
    assert "rotated by 180°" in convolution and "not the lecture's layer formula" in convolution
    texts = [
        SETTINGS["conv_mode"].help,
        trace_text(build_example("conv", conv_mode="convolution")),
        trace_text(build_example("conv")),
        *(row.lecture for row in NOTATION),
    ]
    assert not any("lecture's definition" in text for text in texts)
    assert f"computes: {convolution}" in texts[1] and f"computes: {correlation}" in texts[2]
    assert correlation in texts[0] and convolution in texts[0]


def test_the_docs_notation_table_is_the_legend() -> None:
    """docs/lessons/notation.md holds one table per lesson: the rows of `legend`, in order."""
    page = DOCS.read_text(encoding="utf-8")
    for lesson in LESSONS:
        section = page.split(f"<!-- legend: {lesson} -->", 1)[1].split("\n\n", 1)[0]
        table = [
            [cell.strip().strip("`") for cell in line.strip("|").split("|")]
            for line in section.strip().splitlines()[2:]
        ]
        expected = [[row.here, row.meaning, row.lecture] for row in legend(lesson)]
        assert table == [[re.sub(r"\\\|", "|", c) for c in row] for row in expected], lesson
