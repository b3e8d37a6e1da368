"""Engine keys and the pre-flight decision (load / build / refuse), pure and without TensorRT."""

from __future__ import annotations

import pytest

from feredge.runtimes.tensorrt.engine_key import EngineKey, engine_entries, preflight

ORIN_TRT10 = EngineKey.of((8, 7), "10.3.0")


def _files(*keys: EngineKey, recorded_key: bool = True) -> dict[str, dict[str, str]]:
    files: dict[str, dict[str, str]] = {"model.onnx": {"role": "onnx", "sha256": "x"}}
    for key in keys:
        entry = {"role": "trt_engine", "sha256": "x"}
        if recorded_key:
            entry["key"] = str(key)
        files[key.engine_path()] = entry
    return files


def test_key_format_and_parse():
    assert str(ORIN_TRT10) == "sm87-trt10.3.0"
    assert ORIN_TRT10.engine_path() == "engines/sm87-trt10.3.0/model.engine"
    assert EngineKey.parse("sm90-trt11.2.1.4") == EngineKey("90", "11.2.1.4")
    assert EngineKey.parse("sm90-trt") is None and EngineKey.parse("../x") is None
    assert ORIN_TRT10.trt_major == 10


def test_keys_come_from_the_entry_or_its_path():
    assert engine_entries(_files(ORIN_TRT10, recorded_key=False)) == {ORIN_TRT10: ORIN_TRT10.engine_path()}
    assert engine_entries({"engines/garbage/model.engine": {"role": "trt_engine"}}) == {}


def test_matching_engine_is_loaded():
    decision = preflight(_files(EngineKey("90", "10.13.0"), ORIN_TRT10), ORIN_TRT10, build_allowed=False)
    assert decision.action == "load" and decision.engine == ORIN_TRT10.engine_path()


@pytest.mark.parametrize(("engines", "words"), [
    ((), "no TensorRT engine yet"),
    ((EngineKey("87", "10.2.0"),), "stale"),
    ((EngineKey("90", "10.3.0"),), "foreign"),
])
def test_missing_stale_or_foreign_engine_is_built(engines, words):
    decision = preflight(_files(*engines), ORIN_TRT10, build_allowed=True)
    assert decision.action == "build" and decision.key == ORIN_TRT10 and words in decision.reason


def test_no_build_refuses_with_a_message_instead_of_loading():
    decision = preflight(_files(EngineKey("87", "10.2.0")), ORIN_TRT10, build_allowed=False)
    assert decision.action == "refuse" and decision.engine is None
    assert "TensorRT 10.2.0" in decision.reason and "feredge build" in decision.reason
