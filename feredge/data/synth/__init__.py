"""A procedural synthetic FER set: cartoon faces drawn with OpenCV for the 7 basic expressions.

Why: none of the real FER datasets can be downloaded on the project's machines, yet training,
export, quantisation-calibration and parity code all need images whose labels mean something.
These faces are drawn from a small set of facial-action parameters (mouth curve and opening, brow
height, slope and pinch, eye opening, nose wrinkle, ...), one prototype per expression, so a model
has to look at the same regions a real FER model looks at. Nuisances that real data has (identity,
skin tone, in-plane pose, scale, lighting gradients, blur, noise, background clutter, glasses,
mask bars, hands) are randomised, and ~10 % of images blend two expressions and record the blend
as a soft label.

Determinism: image ``i`` is drawn from ``np.random.default_rng([seed, stream, i])`` alone, so it
is identical whether 10 or 10 000 images are generated and in whatever order or process.

Modules, in the order an image is made: :mod:`~.config` (nuisance ranges),
:mod:`~.expressions` (facial-action parameters per expression), :mod:`~.pen` (posed strokes),
:mod:`~.background`, :mod:`~.face`, :mod:`~.sample` (one image), :mod:`~.render` (many, in
processes), :mod:`~.dataset` (in memory), :mod:`~.splits` and :mod:`~.writers` (on disk), and
:mod:`~.video` (multi-face test videos with known truth). NumPy and OpenCV only, no torch: the
device-side tests and benchmarks use the videos too.
"""

from feredge.data.synth.config import SynthConfig
from feredge.data.synth.dataset import generate
from feredge.data.synth.expressions import PARAMS, PROTOTYPES, SYNTH_LABELS, expression_params
from feredge.data.synth.sample import SynthSample, synth_sample
from feredge.data.synth.splits import DEFAULT_SPLITS, FER2013_USAGE, SPLIT_STREAMS
from feredge.data.synth.writers import write_fer2013_csv, write_folder

__all__ = [
    "DEFAULT_SPLITS",
    "FER2013_USAGE",
    "PARAMS",
    "PROTOTYPES",
    "SPLIT_STREAMS",
    "SYNTH_LABELS",
    "SynthConfig",
    "SynthSample",
    "expression_params",
    "generate",
    "synth_sample",
    "write_fer2013_csv",
    "write_folder",
]
