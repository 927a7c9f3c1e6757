"""Run folders on disk (the source of truth) and the records inside them."""

from .layout import RunPaths, baseline_dir, run_paths
from .store import RecordError, load_record, save_baseline, save_record

__all__ = ["RecordError", "RunPaths", "baseline_dir", "load_record", "run_paths", "save_baseline", "save_record"]
