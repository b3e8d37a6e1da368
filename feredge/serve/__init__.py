"""Serving a bundle from NVIDIA Triton Inference Server (device side: no torch).

- :mod:`feredge.serve.repository`: the model repository's records (config text, static check).
- :mod:`feredge.serve.python_models`: the ``python``-backend models Triton runs (classifier, pipeline),
  built on :mod:`feredge.runtimes` — the same code as local inference.
- :mod:`feredge.serve.server`: find a ``tritonserver``, start it on a repository, health-check, stop.
- :mod:`feredge.serve.client`: ``tritonclient`` helpers giving the records local inference gives.
"""
