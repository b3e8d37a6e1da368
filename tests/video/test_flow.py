"""FlowTracker: the flow scale follows the faces' size, boxes stay in frame pixels, the median helper is numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.preprocess.boxes import Box
from feredge.video.flow import SCALE_STEPS, FlowTracker, _median


@pytest.mark.parametrize("width, sides, expected", [
    (640, [120, 150], 0.5),  # 48 / 120 = 0.4 → the next step up
    (640, [30], 1.0),  # small faces: full resolution
    (640, [76, 200], 0.75),  # the smallest face decides
    (1920, [200], 0.25),  # below max_width's cap of 1/3
    (1920, [40], 640 / 1920),  # small faces on HD: the max_width cap
    (640, [], 1.0),  # nothing held
])
def test_the_flow_scale_keeps_the_smallest_face_at_face_px(width: int, sides: list[int], expected: float) -> None:
    flow = FlowTracker()
    scale = flow._pick_scale(width, [Box(10, 10, s, s) for s in sides])
    assert scale == pytest.approx(expected)
    assert scale in SCALE_STEPS or scale == pytest.approx(640 / width)


def test_a_face_px_of_zero_tracks_at_frame_scale() -> None:
    assert FlowTracker(face_px=0)._pick_scale(640, [Box(0, 0, 300, 300)]) == 1.0


def _textured(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    import cv2

    noise = rng.integers(0, 255, (height // 4, width // 4), dtype=np.uint8)
    return cv2.cvtColor(cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)


def _mover(seed: int, start: tuple[int, int], per_frame: tuple[int, int]):
    """Frame i of a 640×360 grey frame with a textured 120-px patch at ``start + i · per_frame``."""
    patch = _textured(np.random.default_rng(seed), 120, 120)

    def frame(i: int) -> np.ndarray:
        image = np.full((360, 640, 3), 128, np.uint8)
        x, y = start[0] + per_frame[0] * i, start[1] + per_frame[1] * i
        image[y:y + 120, x:x + 120] = patch
        return image

    return frame


def test_a_moving_face_is_followed_in_frame_pixels_at_a_reduced_scale() -> None:
    step = (3, 2)  # px per frame
    frame = _mover(0, (100, 80), step)

    flow = FlowTracker()
    flow.seed(frame(0), {7: Box(100, 80, 120, 120)})
    assert flow._scale == 0.5  # 120-px face tracked at 60 px
    for i in range(1, 9):
        out = flow.step(flow.gray(frame(i)))
        assert out[7].ok
    box = out[7].box
    assert abs(box.x - (100 + 8 * step[0])) <= 2 and abs(box.y - (80 + 8 * step[1])) <= 2, box
    assert abs(box.w - 120) <= 4 and abs(box.h - 120) <= 4, box


def test_a_face_moving_8_flow_pixels_a_frame_is_followed_from_a_standing_start() -> None:
    """16 px a frame of a 120-px face tracked at 60 px: the default window and levels reach it on the
    first step, before any velocity is known (the docstring's figure), and follow it after."""
    per_frame = 16
    frame = _mover(2, (40, 100), (per_frame, 0))

    flow = FlowTracker()
    flow.seed(frame(0), {1: Box(40, 100, 120, 120)})
    assert flow._scale == 0.5
    for i in range(1, 9):
        out = flow.step(flow.gray(frame(i)))
        assert out[1].ok, i
        assert abs(out[1].box.x - (40 + per_frame * i)) <= 2, (i, out[1].box)


def test_a_new_scale_at_a_seed_converts_the_velocity() -> None:
    rng = np.random.default_rng(1)
    image = np.full((360, 640, 3), 128, np.uint8)
    image[100:160, 100:160] = _textured(rng, 60, 60)
    flow = FlowTracker()
    flow.seed(image, {1: Box(100, 100, 200, 200)})  # large: coarse scale
    coarse = flow._scale
    flow._states[1].vx = 4.0
    flow.seed(image, {1: Box(100, 100, 60, 60)})  # small now: finer scale, same frame-pixel velocity
    assert flow._scale > coarse
    assert flow._states[1].vx == pytest.approx(4.0 * flow._scale / coarse)


@pytest.mark.parametrize("n", [1, 2, 5, 24])
def test_median_matches_numpy(n: int) -> None:
    values = np.random.default_rng(n).normal(size=(n, 2)).astype(np.float32)
    np.testing.assert_allclose(_median(values), np.median(values, axis=0), rtol=1e-6)


def test_slow_faces_are_coasted_every_other_frame_and_the_next_step_spans_both() -> None:
    step = (3, 2)  # 0.025 of the box a frame: slow
    frame = _mover(3, (100, 80), step)

    flow = FlowTracker()
    flow.seed(frame(0), {7: Box(100, 80, 120, 120)})
    assert not flow.can_coast()  # no motion measured yet
    coasted = 0
    for i in range(1, 13):
        if flow.can_coast():
            out = flow.coast(frame(i))
            coasted += 1
            assert not flow.can_coast()  # max_coast 1: the next frame gets the flow
        else:
            out = flow.step(flow.gray(frame(i)))
        assert out[7].ok
        box = out[7].box
        assert abs(box.x - (100 + step[0] * i)) <= 2 and abs(box.y - (80 + step[1] * i)) <= 2, (i, box)
    assert coasted == 6  # frames 2, 4, …, 12: the flow on 1, 3, …, 11
    state = flow._states[7]
    assert state.vx / flow._scale == pytest.approx(step[0], abs=0.3)  # px per frame, not per step


def test_a_fast_face_gets_the_flow_on_every_frame() -> None:
    frame = _mover(4, (40, 100), (12, 0))  # 0.1 of the box a frame

    flow = FlowTracker()
    flow.seed(frame(0), {1: Box(40, 100, 120, 120)})
    for i in range(1, 5):
        assert not flow.can_coast(), i
        assert flow.step(flow.gray(frame(i)))[1].ok
