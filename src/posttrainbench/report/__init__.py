"""The static HTML report (``ptb report``): leaderboard, plots, views, run pages with traces."""

from .data import ReportData, RunEntry, load_report_data
from .site import SiteResult, build_site, render_trace

__all__ = ["ReportData", "RunEntry", "SiteResult", "build_site", "load_report_data", "render_trace"]
