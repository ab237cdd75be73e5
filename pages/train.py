"""Step 4 -- Train: the live view of an experiment, polled from the store (survives reloads and tabs)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from automl_core.errors import AutoMLInputError
from studio import live
from studio.charts import best_score_chart
from studio.downloads import model_downloads
from studio.jobs import MIN_RESUME_SECONDS, resume_plan, spec_from_experiment
from studio.nav import go, step_header
from studio.state import EMPTY_CELL, friendly, get_jobs, get_store, wizard
from studio.safe import md, show_error
from studio.understand import guardrails_section
from studio.wording import metric_label

POLL_SECONDS = 1.5


def pick_experiment() -> str | None:
    """The experiment to show: ?experiment=<id>, else this session's last one, else the latest running
    (so a reload or a second tab finds it), else the latest of all. The choice is put in the URL."""
    store = get_store()
    wanted = st.query_params.get("experiment") or wizard().get("experiment_id")
    if wanted and store.get_experiment(wanted) is not None:
        chosen = wanted
    else:
        history = store.list_experiments()
        if history.empty:
            return None
        running = history[history["status"].isin(live.LIVE)]
        chosen = str((running if not running.empty else history).iloc[0]["experiment_id"])
    if st.query_params.get("experiment") != chosen:
        st.query_params["experiment"] = chosen
    return chosen


def _status(exp: dict[str, Any], position: int | None, current: live.Stage | None = None) -> None:
    word = live.status_word(exp["status"])
    # Material icons, not emoji: headless and minimal Linux browsers often lack an emoji font.
    icon = {"Running": ":blue[:material/progress_activity:]", "Completed": ":green[:material/check_circle:]",
            "Stopped": ":orange[:material/stop_circle:]", "Failed": ":red[:material/error:]",
            "Interrupted": ":orange[:material/warning:]", "Cancelled": ":gray[:material/cancel:]"}.get(word, "")
    if position is not None:
        word, icon = live.queued_text(position), ":gray[:material/hourglass_top:]"
    with st.container(key="experiment_status"):
        st.markdown(f"### {icon} {word}")
    jobs = get_jobs()
    if position is not None:
        at_once = "One experiment trains" if jobs.max_concurrent == 1 else f"{jobs.max_concurrent} experiments train"
        st.caption(f"{at_once} at a time on this server; this one starts automatically when a slot frees.")
    elif exp["status"] == "queued":
        st.caption("Preparing the data…")
    elif current is not None and current.name == "explaining":
        # a Stop pressed during the search does not skip them, one pressed now does: say what holds for both
        st.caption("The model is trained and saved; the explanations end at once or within their budget."
                   if jobs.stopping(exp["experiment_id"])
                   else "The model is trained and saved; now working out which columns drive it. "
                        "Skip explanations ends this step.")
    elif jobs.stopping(exp["experiment_id"]):
        st.caption("Stopping: refitting the best model found so far…")
    elif exp["status"] == "cancelled":
        st.caption("Cancelled before it started. Clone it on the Experiments page to run it again.")


def _stop_button(exp: dict[str, Any], position: int | None, current: live.Stage | None = None) -> None:
    if exp["status"] not in live.LIVE:
        return
    label, tip = (("Cancel", "Take it out of the line; nothing has been trained yet.") if position is not None else
                  ("Skip explanations", "The model is saved; stop working out which columns drive it.")
                  if current is not None and current.name == "explaining" else
                  ("Stop", "Stop now; finished trials are kept and the best one becomes the model."))
    if st.button(label, key="stop_training", icon=":material/stop_circle:", help=tip):
        if not get_jobs().stop(exp["experiment_id"], store=get_store()):
            st.warning("This experiment is not running in this server any more.")


def _live_body(experiment_id: str, was_live: bool) -> None:
    """Everything that changes while training; re-run every POLL_SECONDS by the fragment.

    Wrapped in ``friendly`` itself: a fragment rerun does not pass through the page's wrapper.
    """
    friendly(lambda: _draw_live(experiment_id, was_live))


def _draw_live(experiment_id: str, was_live: bool) -> None:
    store = get_store()
    exp = store.get_experiment(experiment_id)
    if exp is None:
        st.warning("This experiment was deleted.")
        return
    if was_live and exp["status"] not in live.LIVE:
        st.rerun()  # finished: redraw the whole page once, without polling, with the downloads
    trials = store.trials(experiment_id)
    metric = exp.get("metric") or ""
    position = get_jobs().queue_position(experiment_id) if exp["status"] == "queued" else None
    recent = store.events(experiment_id, limit=40)
    # after the search: a named stage with its own progress, not "about 0 s left" on a full bar
    current = live.stage(recent, task=exp.get("task")) if exp["status"] == "running" else None
    head, stop = st.columns([4, 1])
    with head:
        _status(exp, position, current)
    with stop:
        _stop_button(exp, position, current)
    frac, text = live.stage_progress(current) if current is not None else live.progress(exp, len(trials))
    st.progress(frac, text=text)
    board = live.leaderboard(trials, metric, task=exp.get("task"))
    ok = trials[trials["status"] == "ok"] if not trials.empty else trials
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Trials done", f"{len(ok)}", help=f"{len(trials)} including failed ones")
    c2.metric(f"Best {metric_label(metric)}", "—" if board.empty else f"{board.iloc[0][metric]:.4g}")
    c3.metric("Best model", "—" if board.empty else live.short_label(str(board.iloc[0]["model"])))
    c4.metric("Elapsed", live.clock(live.elapsed_seconds(exp)))
    if exp["status"] == "failed" and exp.get("error"):
        show_error(f"The experiment failed: {exp['error']}")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown("**Leaderboard**")
        with st.container(key="leaderboard"):
            if board.empty:
                st.caption("Trials will appear here as they finish.")
            else:
                st.dataframe(board.head(50), placeholder=EMPTY_CELL, hide_index=True, height=live.table_height(len(board), 300), column_config=live.leaderboard_columns(board))
    with right:
        st.markdown(f"**Best {metric_label(metric)} over time**")
        st.plotly_chart(best_score_chart(live.best_over_time(trials, metric, exp.get("task")), metric), width="stretch",
                        key="best_chart")
    ev, bad = st.columns([3, 2], gap="medium")
    with ev:
        st.markdown("**Recent events**")
        events = live.events_frame(recent, task=exp.get("task"))
        st.dataframe(events, placeholder=EMPTY_CELL, hide_index=True, height=live.table_height(len(events), 300),
                     width="stretch", column_config=live.EVENT_COLUMNS)
    with bad:
        failed = live.failed_trials(trials, exp.get("task"))
        st.markdown(f"**Failed trials** ({len(failed)})")
        if failed.empty:
            st.caption("None so far.")
        else:
            st.dataframe(failed, placeholder=EMPTY_CELL, hide_index=True, height=live.table_height(len(failed), 300))
    guardrails_section(exp)


def _resume(exp: dict[str, Any]) -> None:
    """Offer Resume for an interrupted run: the same experiment continues with the remaining budget."""
    st.warning("The server stopped while this experiment was running; its finished trials are kept.",
               icon=":material/warning:")
    changes, left = resume_plan(exp, get_store().trials(exp["experiment_id"]))
    label = f"Resume with the remaining budget ({left})"
    if "time_budget" in changes:  # more time is what a person resuming often wants: offer it here
        remaining = int(round(changes["time_budget"]))
        seconds = st.number_input("Time budget for the rest (seconds)", min_value=int(MIN_RESUME_SECONDS),
                                  max_value=86_400, value=remaining, step=30, key="resume_budget",
                                  help="What the run had not used yet; raise it to search longer.")
        if seconds != remaining:
            changes["time_budget"] = float(seconds)
            label = f"Resume with a budget of {live.clock(seconds)}"
    if st.button(label, key="resume_training", type="primary", icon=":material/replay:"):
        try:
            spec = spec_from_experiment(exp, config_changes=changes)
        except AutoMLInputError as exc:
            show_error(exc)
            return
        experiment_id = get_jobs().start(get_store(), spec, resume_id=exp["experiment_id"])
        wizard()["experiment_id"] = experiment_id
        go("Train", experiment=experiment_id)
    st.caption("Resume keeps the finished trials and continues the same experiment, starting by re-running its "
               "best settings (marked 'same settings as #…') so that the final model can use them.")


def main() -> None:
    step_header("Train")
    experiment_id = pick_experiment()
    if experiment_id is None:
        st.info("No experiment yet. Choose data, a target and settings, then press Start.",
                icon=":material/model_training:")
        st.page_link("pages/data.py", label="Start with your data", icon=":material/table_view:")
        return
    exp = get_store().get_experiment(experiment_id)
    st.subheader(md(exp.get("name") or experiment_id))
    cfg = exp.get("config") or {}
    st.caption(f"{experiment_id} · dataset **{md(exp.get('dataset_name') or exp.get('dataset_id') or 'from the command line')}** · "
               f"target **{md(cfg.get('target'))}** · {exp.get('task')} · metric {metric_label(exp.get('metric'))}")
    is_live = exp["status"] in live.LIVE
    st.fragment(run_every=POLL_SECONDS if is_live else None)(_live_body)(experiment_id, is_live)
    if exp["status"] == "interrupted":
        _resume(exp)
    if exp["status"] in ("completed", "stopped"):
        summary = exp.get("summary") or {}
        test = (summary.get("test") or {}).get("score")
        best = exp.get("best_score")  # 0.0 is a real score (an R² of 0, an RMSE of 0): test for None only
        st.success(f"Best model: **{live.family_label(exp.get('best_model') or '', exp.get('task'))}** · validation "
                   f"{metric_label(exp.get('metric'))} {'not recorded' if best is None else format(best, '.4g')}"
                   + (f" · test {test:.4g}" if test is not None else ""), icon=":material/emoji_events:")
        model_downloads(get_store(), experiment_id)
        if st.button("See all results →", key="to_results", type="primary"):
            go("Results", experiment=experiment_id)


friendly(main)
