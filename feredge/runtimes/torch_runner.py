"""PyTorch eager: the reference every other runtime is compared against.

Runs the registered model's deploy graph from safetensors weights (a bundle's or a checkpoint's);
never unpickles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from feredge.runtimes.base import Runner, TensorMeta


class TorchRunner(Runner):
    name = "torch"

    @classmethod
    def _from_bundle_file(cls, bundle: Any, role: str, **options: Any) -> Runner:
        model = bundle.manifest["model"]
        options.setdefault("model_name", model["name"])
        options.setdefault("model_kwargs", model.get("kwargs", {}))
        options.setdefault("input_shape", tuple(bundle.spec.input_shape))
        return cls(bundle.path(role), **options)

    @classmethod
    def from_module(cls, module: Any, input_shape: tuple[int, int, int], **options: Any) -> TorchRunner:
        """Wrap an in-memory model (export verification, training evaluation)."""
        runner = cls(Path("<memory>"), input_shape=input_shape, **options)
        runner.module = module
        return runner

    def _activate(self) -> TensorMeta:
        import torch

        from feredge.models import create_model, deploy_graph

        if self.threads:
            torch.set_num_threads(self.threads)
        if getattr(self, "module", None) is None:
            from safetensors.torch import load_file

            model = create_model(self.options["model_name"], **self.options.get("model_kwargs", {}))
            model.load_state_dict(load_file(str(self.model_path)))
            self.module = model
        self.graph = deploy_graph(self.module)
        self.settings = {"runtime": self.name, "version": torch.__version__, "precision": "fp32",
                         "threads": torch.get_num_threads()}
        return TensorMeta("input", (None, *self.options["input_shape"]), "float32")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.graph(torch.from_numpy(batch)).float().numpy()
