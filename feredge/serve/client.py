"""``tritonclient`` helpers: the classifier's logits and the pipeline's face records from a server.

The records are those of local inference (:meth:`FaceResult.to_dict`: box, label, probability,
probabilities), so ``feredge infer --server`` and a test can compare them with a local run.
Outputs are requested as binary tensors (the JSON encoding of floats would round them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from feredge.errors import FeredgeError


def _http() -> Any:
    try:
        import tritonclient.http as http
    except ImportError:
        raise FeredgeError("talking to Triton needs tritonclient: pip install 'feredge[serve]'") from None
    return http


@dataclass
class TritonClient:
    url: str  # host:port of the HTTP endpoint
    classifier: str = "classifier"
    pipeline: str = "pipeline"
    timeout_s: float = 60.0
    concurrency: int = 1

    def __post_init__(self) -> None:
        http = _http()
        url = self.url.removeprefix("http://")
        self._client = http.InferenceServerClient(url, concurrency=self.concurrency,
                                                  connection_timeout=self.timeout_s, network_timeout=self.timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def raw(self) -> Any:
        """The ``tritonclient.http.InferenceServerClient`` (statistics, async requests)."""
        return self._client

    def classifier_request(self, batch: np.ndarray) -> tuple[list[Any], list[Any]]:
        http = _http()
        tensor = http.InferInput("input", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch, dtype=np.float32), binary_data=True)
        outputs = [http.InferRequestedOutput(name, binary_data=True) for name in ("logits", "probabilities")]
        return [tensor], outputs

    def logits(self, batch: np.ndarray) -> np.ndarray:
        inputs, outputs = self.classifier_request(batch)
        return self._call(self.classifier, inputs, outputs).as_numpy("logits")

    def logits_concurrent(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """One request per batch, all in flight at once (up to ``concurrency`` connections): what lets
        the server batch them. ``tritonclient.http`` is gevent-based and not thread-safe, so this, not threads."""
        from tritonclient.utils import InferenceServerException

        requests = [self.classifier_request(b) for b in batches]
        pending = [self._client.async_infer(self.classifier, inputs, outputs=outputs) for inputs, outputs in requests]
        try:
            return [p.get_result().as_numpy("logits") for p in pending]
        except InferenceServerException as exc:
            raise FeredgeError(f"Triton {self.classifier}: {str(exc.message()).splitlines()[0]}") from None

    def faces(self, image_bytes: bytes) -> list[dict[str, Any]]:
        """One encoded image → the local face records (box, label, probability, probabilities)."""
        http = _http()
        tensor = http.InferInput("image", [len(image_bytes)], "UINT8")
        tensor.set_data_from_numpy(np.frombuffer(image_bytes, dtype=np.uint8), binary_data=True)
        result = self._call(self.pipeline, [tensor], [http.InferRequestedOutput("faces", binary_data=True)])
        return list(json.loads(result.as_numpy("faces").tobytes().decode()))

    def _call(self, model: str, inputs: list[Any], outputs: list[Any]) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            return self._client.infer(model, inputs, outputs=outputs)
        except InferenceServerException as exc:
            raise FeredgeError(f"Triton {model}: {str(exc.message()).splitlines()[0]}") from None

    def statistics(self, model: str) -> dict[str, int]:
        """inference_count and execution_count: fewer executions than inferences means batching."""
        stats = self._client.get_inference_statistics(model)["model_stats"][0]
        return {"inferences": int(stats["inference_count"]), "executions": int(stats["execution_count"])}
