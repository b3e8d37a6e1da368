import json

import pytest

from feredge.errors import FeredgeError
from feredge.preprocess.spec import SCHEMA_VERSION, DetectorSpec, PreprocessSpec


def test_json_round_trip_keeps_every_field():
    spec = PreprocessSpec(input_size=(224, 200), channels="rgb", scale=1 / 255, mean=(0.485, 0.456, 0.406),
                          std=(0.229, 0.224, 0.225), interpolation="linear", crop_margin=0.2,
                          detector=DetectorSpec(name="none", min_size=40))
    again = PreprocessSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["schema_version"] == SCHEMA_VERSION
    assert again.input_shape == (3, 224, 200)


@pytest.mark.parametrize("changes, fragment", [
    ({"channels": "cmyk"}, "channels"),
    ({"input_size": (4, 4)}, "input_size"),
    ({"mean": (0.1, 0.2)}, "mean/std"),
    ({"std": (0.0,)}, "std"),
    ({"crop_margin": 2.0}, "crop_margin"),
    ({"interpolation": "lanczos9"}, "interpolation"),
    ({"schema_version": SCHEMA_VERSION + 1}, "newer"),
])
def test_invalid_specs_are_refused_with_the_reason(changes, fragment):
    with pytest.raises(FeredgeError, match=fragment):
        PreprocessSpec(**changes)


def test_unknown_fields_and_bad_json_are_refused():
    with pytest.raises(FeredgeError, match="unknown fields"):
        PreprocessSpec.from_dict({**PreprocessSpec().to_dict(), "gamma": 2.2})
    with pytest.raises(FeredgeError, match="not valid JSON"):
        PreprocessSpec.from_json("{nope")
