"""The INT8 recipe every feredge quantizer follows, in one place.

What TensorRT, OpenVINO and ONNX Runtime all run well (``shared/docs/backends.md``): symmetric
INT8 (zero point 0), per-channel weights on axis 0, per-tensor activations, max calibration,
Q/DQ also on residual-Add inputs. The ModelOpt config is written out rather than taken from
``mtq.INT8_DEFAULT_CFG`` because the default also disables quantizers by LLM-oriented name
patterns (``*output_layer*``, ``*visual*``, ``*router*`` ...) that could silently leave one of
our layers in float; here only BatchNorm (folded by every runtime) is excluded.
"""

from __future__ import annotations

from typing import Any

#: smallest weight amax kept: a dead channel (all-zero weights) would otherwise give a zero or
#: denormal Q/DQ scale, which TensorRT rejects and other runtimes handle inconsistently
MIN_WEIGHT_AMAX = 1e-6
MIN_ACTIVATION_AMAX = 1e-4

#: Overflow fix (NNCF's name): weights use 7 of their 8 bits (scale = amax / 63.5 instead of / 127).
#: x86 CPUs without VNNI (AVX2 and plain AVX-512; the project machine) multiply u8 activations by
#: s8 weights with ``vpmaddubsw``, whose int16 pair sums saturate for full-range weights: measured
#: here, OpenVINO INT8 then agreed with the fake-quant model on only 88 % of real faces. With the
#: fix the products cannot saturate. TensorRT and VNNI CPUs do not need it; it costs a little
#: weight resolution, which QAT fine-tuning recovers. On by default, ``--no-overflow-fix`` to drop it.
OVERFLOW_FIX_FACTOR = 127.0 / 63.5


def modelopt_int8_config() -> dict[str, Any]:
    return {
        "quant_cfg": [
            {"quantizer_name": "*", "enable": False},
            {"quantizer_name": "*weight_quantizer", "cfg": {"num_bits": 8, "axis": 0}},
            {"quantizer_name": "*input_quantizer", "cfg": {"num_bits": 8, "axis": None}},
            {"quantizer_name": "*", "parent_class": "nn.BatchNorm1d", "enable": False},
            {"quantizer_name": "*", "parent_class": "nn.BatchNorm2d", "enable": False},
        ],
        "algorithm": "max",
    }
