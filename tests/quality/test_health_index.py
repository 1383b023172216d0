"""The OHI settings file and formula (quality/health_index.py): validation errors that name the
file, the key and the fix; the weighted mean with missing sub-scores; the dbt var that must
mirror config/health_index.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.channels_config import load_channels
from kernel.config import ConfigError
from quality.health_index import DEFAULT_PATH, SUB_SCORES, Weights, load_health_index, ohi

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = Weights(
    timeliness=0.25, completeness=0.2, consistency=0.2, accuracy=0.15, controllability=0.2
)


def _scores(**given: float | None) -> dict[str, float | None]:
    return {name: given.get(name, 100.0) for name in SUB_SCORES}


def _write(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "health_index.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_ohi_is_the_weighted_mean_of_the_sub_scores() -> None:
    assert ohi(_scores(), WEIGHTS) == pytest.approx(100)
    assert ohi(_scores(timeliness=60), WEIGHTS) == pytest.approx(90)  # 100 - 0.25 * 40
    scores = _scores(timeliness=80, completeness=90, consistency=70, accuracy=50, controllability=0)
    assert ohi(scores, WEIGHTS) == pytest.approx(0.25 * 80 + 0.2 * 90 + 0.2 * 70 + 0.15 * 50)


def test_a_sub_score_with_nothing_to_measure_is_left_out_and_the_rest_scaled() -> None:
    # accuracy null (no routed orders): the other four keep their proportions
    got = ohi(_scores(accuracy=None, timeliness=0), WEIGHTS)
    assert got == pytest.approx(100 * (1 - 0.25 / 0.85))
    assert ohi(dict.fromkeys(SUB_SCORES), WEIGHTS) is None


def test_ohi_refuses_a_missing_name_or_a_score_out_of_range() -> None:
    with pytest.raises(ValueError, match="give all five"):
        ohi({"timeliness": 90}, WEIGHTS)
    with pytest.raises(ValueError, match="out of range"):
        ohi(_scores(consistency=120), WEIGHTS)


def test_the_repository_settings_load() -> None:
    settings = load_health_index()
    assert sum(settings.weights.as_dict().values()) == pytest.approx(1)
    assert settings.timeliness.window("taobao").target_minutes == 15
    assert settings.timeliness.window("regional_a").target_minutes == 1500


def test_weights_that_do_not_sum_to_one_name_file_key_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["weights"].update(timeliness=0.35))
    with pytest.raises(ConfigError) as err:
        load_health_index(path)
    message = str(err.value)
    assert str(path) in message
    assert "weights:" in message
    assert "sum to 1.1, not 1" in message and "add up to 1" in message


def test_a_weight_out_of_range_and_a_missing_weight_are_named(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        d["weights"]["accuracy"] = -0.15
        del d["weights"]["controllability"]

    with pytest.raises(ConfigError) as err:
        load_health_index(_write(tmp_path, edit))
    message = str(err.value)
    assert "weights.accuracy: Input should be greater than or equal to 0" in message
    assert "weights.controllability: Field required" in message


def test_a_sync_window_upside_down_and_an_unknown_field_are_named(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        d["timeliness"]["channels"]["pos"] = {"target_minutes": 60, "limit_minutes": 30}
        d["completeness"]["required_fields"].append("reciever_phone")
        d["controllability"]["stuck_status"] = ["allocated"]

    with pytest.raises(ConfigError) as err:
        load_health_index(_write(tmp_path, edit))
    message = str(err.value)
    assert "timeliness.channels.pos: Value error, limit_minutes 30 must be above" in message
    assert "completeness.required_fields: Value error, ['reciever_phone'] are not order" in message
    assert "controllability.stuck_status: Extra inputs are not permitted" in message


def test_the_dbt_var_mirrors_the_settings_file() -> None:
    dbt_vars = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    expected = load_health_index().dbt_var()
    assert dbt_vars["order_health_index"] == expected, (
        "dbt_project/dbt_project.yml vars.order_health_index must equal config/health_index.yaml "
        f"(without version): set it to {expected}"
    )


def test_per_channel_sync_windows_name_registry_channels() -> None:
    registry = set(load_channels(ROOT / "config" / "channels.yaml").channels)
    assert set(load_health_index().timeliness.channels) <= registry
