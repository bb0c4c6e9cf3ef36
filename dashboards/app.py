"""The roitune dashboard's router: ``roitune dashboard`` runs it, or
``streamlit run dashboards/app.py -- --config roitune.yaml [--set key=value ...]``.

It reads the study storage and the config's economics, nothing else: it never trains, never
imports torch, and takes no file path from the browser (query parameters and widgets).
"""

from __future__ import annotations

import sys
from functools import partial

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboards import cascade_page, labels_page, pages
from dashboards.data import REFRESH_S, Context, Source, load_snapshot, make_context, parse_source
from evals.storage import redact_url

PAGES = [  # (function, title, url path, icon)
    (pages.overview, "Overview", "overview", ":material/insights:"),
    (pages.pareto, "Pareto front", "pareto", ":material/scatter_plot:"),
    (pages.roi_calculator, "ROI calculator", "roi", ":material/calculate:"),
    (pages.trials, "Trials", "trials", ":material/science:"),
    (pages.errors, "Errors", "errors", ":material/error:"),
    (cascade_page.cascades, "Cascades", "cascades", ":material/alt_route:"),
    (labels_page.labels, "More labels", "labels", ":material/trending_up:"),
]


def _context() -> Context:
    """The study and its report, or a message and a stop when there is nothing to show yet."""
    try:
        source = parse_source(sys.argv[1:])
    except ValueError as problem:  # a ConfigError lists every problem, one per line
        st.error("The config has problems:\n\n" + "\n".join(f"- {line}" for line in str(problem).splitlines()))
        st.stop()
    try:
        return make_context(source)
    except LookupError as missing:
        st.info(f"{missing}. This page will show the study as soon as it exists.")
        _follow(source, shown="")
        st.stop()
    except SQLAlchemyError as problem:  # unreachable server, wrong password...
        first_line = str(problem).strip().splitlines()[0]
        st.error(f"Cannot read {redact_url(source.storage)}: {redact_url(first_line)}")
        st.stop()


@st.fragment(run_every=REFRESH_S)
def _follow(source: Source, shown: str) -> None:
    """Rerun the whole app when the study changes (a sweep writing), so every page stays current."""
    try:
        latest = load_snapshot(source.storage, source.study).fingerprint
    except LookupError:
        return
    if latest != shown:
        st.rerun()


def _sidebar(ctx: Context) -> None:
    snap = ctx.snapshot
    with st.sidebar:
        st.markdown(f"**Study** `{snap.study}`")
        st.caption(f"{redact_url(ctx.source.storage)}  \ncandidates: {len(ctx.report.ranked)}, "
                   f"sweep trials: {len(snap.trials)}; read at {snap.loaded_at:%H:%M:%S}")
        if st.toggle("Follow the sweep", value=True, key="follow",
                     help=f"Re-read the study every {REFRESH_S} s and refresh when a trial changes."):
            _follow(ctx.source, shown=snap.fingerprint)


def main() -> None:
    st.set_page_config(page_title="roitune", page_icon=":material/insights:", layout="wide")
    ctx = _context()
    _sidebar(ctx)
    navigation = st.navigation([
        st.Page(partial(page, ctx), title=title, url_path=url_path, icon=icon, default=url_path == "overview")
        for page, title, url_path, icon in PAGES
    ])
    navigation.run()


main()
