"""The spec's `diagnosis:` block (experiments/thresholds.py): thresholds validated by pydantic at
load time like every other field, typed, and kept out of the study's identity (new thresholds
re-judge the same trials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import SpecError
from experiments.registry import parse_spec
from experiments.thresholds import FitThresholds
from fitscope.cli import main

MINIMAL = {"name": "toy", "task": "binary", "data": {"source": "generated", "dataset": "xor"}}


def with_diagnosis(block: object) -> dict:
    return {**MINIMAL, "diagnosis": block}


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"gap_ration": 0.5}, "diagnosis.gap_ration: unknown key (did you mean 'gap_ratio'?)"),
        ({"tail_window": 2.5}, "diagnosis.tail_window: Input should be a valid integer"),
        ({"roughness": "high"}, "diagnosis.roughness: expected a number, got 'high'"),
        ({"gap_ratio": True}, "diagnosis.gap_ratio: expected a number, got True"),
        ({"val_rise": -0.1}, "diagnosis.val_rise: Input should be greater than 0"),
        ({"roughness": float("nan")}, "diagnosis.roughness: Input should be greater than 0"),
        ({"tail_window": 1}, "diagnosis.tail_window: Input should be greater than 1"),
        ({"explode_factor": 1.0}, "diagnosis.explode_factor: Input should be greater than 1"),
        ([0.5], "diagnosis: Input should be a valid dictionary"),
    ],
)
def test_a_bad_override_fails_at_load_time_naming_the_field(block: object, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(with_diagnosis(block))
    assert message in str(caught.value)


def test_overrides_are_typed_and_the_rest_keep_their_defaults() -> None:
    spec = parse_spec(with_diagnosis({"tail_window": 7.0, "gap_ratio": 1, "val_rise": 0.2}))
    assert spec.diagnosis.changed() == {"tail_window": 7, "gap_ratio": 1.0, "val_rise": 0.2}
    assert type(spec.diagnosis.tail_window) is int
    assert type(spec.diagnosis.gap_ratio) is float
    assert spec.diagnosis.roughness == FitThresholds().roughness
    # a study keeps its spec as JSON: the thresholds come back the same from that dict
    assert FitThresholds(**dict(spec.diagnosis)) == spec.diagnosis
    assert parse_spec(spec.model_dump(mode="json")) == spec


def test_thresholds_do_not_change_the_study_name() -> None:
    plain = parse_spec(MINIMAL)
    judged = parse_spec(with_diagnosis({"gap_ratio": 0.5}))
    assert judged.fingerprint() == plain.fingerprint()
    assert parse_spec({**MINIMAL, "search": {"seed": 1}}).fingerprint() != plain.fingerprint()


def test_the_cli_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(with_diagnosis({"gap_ration": 0.5})))
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diagnosis.gap_ration: unknown key" in err
