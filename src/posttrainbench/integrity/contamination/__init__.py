"""Contamination gate: hash-only n-gram containment of benchmark test items in what an agent
could have trained on.

- :mod:`.tokens`: tokenisation, the n-gram hash scheme, array helpers;
- :mod:`.index`: the index of the test items (minus the allowed training data and boilerplate),
  with the fuzzy channel's anchors, cached on disk outside any sandbox;
- :mod:`.files`: which files are text and how they are read;
- :mod:`.scan`: the gate itself, a scan of every reachable file against the index.
"""

from .files import texts_from_files
from .index import ContaminationIndex, build_index, build_index_cached, load_index, save_index
from .scan import GATE, scan
from .tokens import tokenize

__all__ = [
    "GATE",
    "ContaminationIndex",
    "build_index",
    "build_index_cached",
    "load_index",
    "save_index",
    "scan",
    "texts_from_files",
    "tokenize",
]
