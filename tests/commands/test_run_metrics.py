"""`cnn-tui runs --metrics RUN_DIR [--json] [--csv FILE]` on a run folder written by hand."""

from __future__ import annotations

import csv
import json

from train_ui_fixtures import write_run

from cnn_tui import cli


def _run(tmp_path):
    run = write_run(tmp_path / "run", state="finished", epochs=2, batches=5)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as handle:  # a field no table knows
        handle.write(json.dumps({"event": "system", "time": 1.0, "fan_percent": 40.0}) + "\n")
    return run


def test_the_table_lists_every_metric_with_last_min_and_max(tmp_path, capsys) -> None:
    run = _run(tmp_path)
    assert cli.main(["runs", "--metrics", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "line", "field", "points", "last", "min", "max"]
    by_field = {line.split()[-5]: line for line in lines[1:]}
    assert by_field["val_acc"].startswith("accuracy (%)") and "%" in by_field["val_acc"]
    assert any(
        line.startswith("learning rate") and "(the planned schedule)" in line for line in lines
    )
    assert by_field["fan_percent"].startswith("fan (%)") and by_field["fan_percent"].split()[
        -3:
    ] == [
        "40",
        "40",
        "40",
    ]
    assert by_field["loss"].split()[-4] == "10"  # every batch event of both epochs


def test_json_and_csv_hold_every_series_and_point(tmp_path, capsys) -> None:
    run = _run(tmp_path)
    out = tmp_path / "points.csv"
    assert cli.main(["runs", "--metrics", str(run), "--json", "--csv", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    val = next(row for row in rows if row["field"] == "val_loss")
    assert (val["metric"], val["line"], val["kind"], val["points"]) == ("loss", "val", "epoch", 2)
    assert val["min"] <= val["last"] <= val["max"]
    with out.open(newline="") as handle:
        points = list(csv.DictReader(handle))
    batch_loss = [p for p in points if (p["kind"], p["field"]) == ("batch", "loss")]
    assert len(batch_loss) == 10 and float(batch_loss[-1]["epoch"]) == 2.0
    assert any(p["kind"] == "plan" for p in points)


def test_bad_uses_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert cli.main(["runs", "--metrics", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert cli.main(["runs", "--no-ui", "--csv", str(tmp_path / "x.csv")]) == 2
    assert "give --metrics too" in capsys.readouterr().err
    run = _run(tmp_path)
    assert cli.main(["runs", "--metrics", str(run), "--csv", str(tmp_path)]) == 2
    assert "--csv" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
