"""Input sets for parity checks and calibration, built by the shared preprocessing pipeline."""

from feredge.calibration.reference import ReferenceSet, demo_image_path, reference_faces

__all__ = ["ReferenceSet", "demo_image_path", "reference_faces"]
