"""Contamination gate: hash-only n-gram containment of benchmark test items in every byte an
agent could have trained on.

- :mod:`.tokens`: byte-level vectorised tokenisation, the hash scheme, prefiltered hash sets;
- :mod:`.index`: the index of the test items (minus the allowed training data and boilerplate):
  exact n-grams, the fuzzy channel's anchors, question-prefix/answer pairs; cached on disk
  outside any sandbox;
- :mod:`.decode`: what a byte stream holds, decoded by content (compression, archives, arrays,
  text encodings, base64/hex runs, token ids), within bomb limits, sparse-aware;
- :mod:`.scan`: :class:`IncrementalScan` and the gate :func:`scan` built on it.

Scanning during a run (the API the sandbox observer calls)::

    inc = IncrementalScan(index, evidence_dir, decode_ids=tok_decode, vocab_size=vocab)
    inc.feed_path(path)                       # a file written in the sandbox (memoised)
    inc.feed(name, stream, size)              # content that may be gone later (e.g. deleted)
    inc.save_results(run_paths.contamination_observed)  # at the end of the run, for verify
    verdict = scan(index, roots, evidence_dir, incremental=inc)  # or, in one process, the rest of the tree
    # or inc.verdict() for what was fed alone

``feed``/``feed_path`` decode by content and return a :class:`FileResult` (its hits); a file
already scanned (same device, inode, size, mtime and ctime, or a stream whose digest the caller
passes and which was seen before) is not read again; everything fed counts in the verdict. The
gate (``integrity.gates.ContaminationGate``) loads ``RunPaths.contamination_observed`` when it
exists and scans the workspace and ``RunPaths.sandbox_tmp`` on top of it.
"""

from .files import texts_from_files
from .index import ContaminationIndex, build_index, build_index_cached, load_index, save_index
from .scan import GATE, FileResult, IncrementalScan, scan
from .tokens import tokenize

__all__ = [
    "GATE",
    "ContaminationIndex",
    "FileResult",
    "IncrementalScan",
    "build_index",
    "build_index_cached",
    "load_index",
    "save_index",
    "scan",
    "texts_from_files",
    "tokenize",
]
