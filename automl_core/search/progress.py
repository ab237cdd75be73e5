"""Progress lines for a terminal: a callback on the search's event stream."""
from __future__ import annotations

from typing import TextIO

from .results import Event


class ProgressPrinter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.budget: float | None = None
        self.best: float | None = None

    def __call__(self, event: Event) -> None:
        p, t = event.payload, event.trial
        if event.kind == "experiment_started":
            self.budget = p.get("time_budget")
            self._say(event, f"task {p['task']} ({p['task_reason']}); metric {p['metric']}; "
                             f"validation: {p['validation']}; {p['n_rows']:,} rows")
            for note in p.get("notes", []):
                self._say(event, f"note: {note}")
        elif event.kind == "trial_finished" and t is not None:
            if t.status == "ok":
                self._say(event, f"trial {t.trial_id:>3} {t.family:<22} score {t.score:.5g}  fit {t.fit_seconds:.1f}s")
            else:
                self._say(event, f"trial {t.trial_id:>3} {t.family:<22} {t.status}: {t.error}")
        elif event.kind == "new_best":
            self._say(event, f"new best: {p['family']} {p['score']:.5g}")
        elif event.kind == "refit_started":
            self._say(event, f"refitting {p['family']} (trial {p['trial_id']}) on all training rows")
        elif event.kind == "message":
            self._say(event, f"note: {p.get('text')}")
        elif event.kind == "experiment_finished":
            self._say(event, f"finished: {p['stopped_by']}")
        elif event.kind == "explaining_started":
            self._say(event, f"explaining the model (at most {p['budget_seconds']:.0f} s)")
        elif event.kind == "explaining_finished":
            how = p.get("method") or p.get("skipped") or f"failed: {p.get('error')}"
            self._say(event, f"explained in {p['seconds']:.1f} s: {how}")

    def _say(self, event: Event, text: str) -> None:
        left = "" if self.budget is None else f" / {self.budget:.0f}s"
        print(f"[{event.elapsed:6.1f}s{left}] {text}", file=self.out, flush=True)
