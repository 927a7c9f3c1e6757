"""What to rank: the options ``ptb leaderboard``, ``ptb report`` and the live view share, in one object.

Each layer (the report's site, its data, the leaderboard's tables) takes a :class:`RankOptions` and
passes it on whole, so an option added here reaches every place that ranks without changing their
signatures; :meth:`RankOptions.check` is the one place the combinations are validated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .suites import get_suite


@dataclass(frozen=True)
class RankOptions:
    """How a results folder is ranked (as the options of ``ptb leaderboard``).

    ``weights``: benchmark weights (else from recorded baselines, else the suite's published factors,
    else equal); ``protocol``: rank the runs evaluated under this protocol (else the one protocol of
    the runs, ``strict`` when they have several); ``suite``: rank on that suite's benchmarks;
    ``published``: also list the agents of that published leaderboard, which implies its suite and
    its factors for every agent, ours included; ``full``: rebuild the results index first;
    ``db_path``: where the index lives (default ``ROOT/results.db``).
    """

    weights: dict[str, float] | None = None
    protocol: str | None = None
    suite: str | None = None
    published: str | None = None
    full: bool = False
    db_path: Path | None = None

    def check(self) -> RankOptions:
        """Itself if the combination is valid, else ``ValueError`` with a one-line reason: an unknown
        suite or published leaderboard, a published leaderboard with another suite or a weights file."""
        for name in (self.suite, self.published):
            if name is not None:
                get_suite(name)
        if self.published is not None:
            if self.suite not in (None, self.published):
                raise ValueError(f"--published {self.published} ranks under suite {self.published}, not {self.suite}")
            if self.weights is not None:
                raise ValueError(
                    f"--published {self.published} scores every agent with that suite's factors, not a weights file"
                )
        return self

    def resolved(self) -> RankOptions:
        """Checked, with a published leaderboard turned into what it implies: its suite, and its
        published factors as the weights (ours scored exactly as the published agents were)."""
        self.check()
        if self.published is None:
            return self
        return replace(self, suite=self.published, weights=dict(get_suite(self.published).factors))
