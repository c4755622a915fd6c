"""The per-layer summary agrees with the model's geometry and counts, and the script prints it."""

import subprocess
import sys
from pathlib import Path

import pytest

from audioconv import geometry
from audioconv.models import Conv1dDetector, SpectrogramDetector
from audioconv.summary import format_table, summarize

ROOT = Path(__file__).resolve().parents[1]
MODELS = [Conv1dDetector, SpectrogramDetector]


@pytest.mark.parametrize("model_class", MODELS)
def test_rows_match_geometry(model_class) -> None:
    model = model_class()
    rows = summarize(model)
    assert rows[-1].receptive_field == model.receptive_field
    assert rows[-1].hop == model.hop
    assert sum(row.parameters for row in rows) == geometry.count_parameters(model)
    assert sum(row.macs_per_second for row in rows) == pytest.approx(geometry.macs_per_second(model, model.sample_rate))
    # every time layer lands on exactly one row, in order
    assert [layer for row in rows for layer in row.time_layers] == model.time_layers
    # the receptive field never shrinks, and the last row is one logit per frame
    assert all(a.receptive_field <= b.receptive_field for a, b in zip(rows, rows[1:]))
    assert rows[-1].output_shape == (1, model.output_length(model.sample_rate))
    assert model.training  # summarize restores the mode it found


def test_table_has_a_row_per_operation_and_totals() -> None:
    model = Conv1dDetector()
    table = format_table(summarize(model), model.sample_rate)
    for name in ("filterbank", "pool", "downsample", "blocks.3", "head", "total"):
        assert name in table
    assert f"{geometry.count_parameters(model):,}" in table


@pytest.mark.parametrize("model_name", ["conv1d", "spectrogram"])
def test_script_prints_the_table(model_name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "summary.py"), f"model={model_name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout and "blocks.0" in result.stdout
    assert list(tmp_path.iterdir()) == []  # a read-only tool writes nothing
