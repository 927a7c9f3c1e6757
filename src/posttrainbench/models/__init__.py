"""Model folders: the canonical submission, strict safetensors I/O, and the post-load check."""

from .canonical import CanonicalSubmission, SubmissionRejected, base_weight_bytes, canonicalize
from .safetensors_strict import SafetensorsError, read_header, weights_digest

__all__ = [
    "CanonicalSubmission",
    "SafetensorsError",
    "SubmissionRejected",
    "base_weight_bytes",
    "canonicalize",
    "read_header",
    "weights_digest",
]
