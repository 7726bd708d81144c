"""The report's confirm section: the table of `fitscope confirm` and each configuration's seeds.

Built from what `confirm` keeps in the study's user attrs (`analysis.confirm.CONFIRM_ATTR`), so
the report still needs nothing but the Optuna storage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.confirm import CONFIRM_ATTR, LOSS, from_json, table_rows, verdict
from reporting import report_html as h
from reporting.plots import new_figure

if TYPE_CHECKING:
    import optuna

    from analysis.confirm import ConfigResult

ANCHOR = "confirm"
PLOT_FILE = "confirm_seeds.png"


def confirm_section(study: optuna.Study, folder: Path, winner: int | None) -> h.Section | None:
    """The section, or None when the study was never confirmed. `winner`: the study's best
    trial, which the verdict compares the confirmed winner with."""
    import pandas as pd

    results = from_json(study.user_attrs.get(CONFIRM_ATTR))
    if not results:
        return None
    judged = verdict(results, winner if winner is not None else results[0].trial_number)
    plot = seed_spread(judged.ranking, folder / PLOT_FILE)
    seeds = max(len(r.seeds) for r in results)
    body = (
        h.note(f"the top {len(results)} configurations retrained with up to {seeds} new seeds "
               "each (`fitscope confirm`); mean ± std over the seeds, ranked on the mean best "
               "val loss; two configurations are within noise when their mean ± std intervals "
               "overlap")
        + h.frame_table(pd.DataFrame(table_rows(judged.ranking)))
        + "<ul>" + "".join(f"<li>{h.esc(line)}</li>" for line in judged.lines) + "</ul>"
        + h.image(plot, "best val loss of every seed, per configuration")
    )
    return h.Section(ANCHOR, "Confirmed with new seeds", body)


def seed_spread(ranking: list[ConfigResult], path: Path) -> Path:
    """Each configuration's best val loss per seed (dots), its mean ± std (bar), and what the
    study measured with the trial's own seed (x), one column per configuration."""
    fig = new_figure((1.6 + 1.2 * len(ranking), 4))
    ax = fig.subplots()
    for x, result in enumerate(ranking):
        values = [s.best_val_loss for s in result.seeds
                  if s.best_val_loss is not None and math.isfinite(s.best_val_loss)]
        ax.scatter([x] * len(values), values, color="#1f77b4", alpha=0.7, zorder=3,
                   label="new seeds" if x == 0 else None)
        st = result.stats(LOSS)
        if st.n:
            ax.errorbar([x + 0.15], [st.mean], yerr=[st.std], fmt="o", color="black", capsize=4,
                        label="mean ± std" if x == 0 else None)
        ax.scatter([x - 0.15], [result.search_val_loss], marker="x", color="#d62728",
                   label="search (trial's seed)" if x == 0 else None)
    ax.set_xticks(range(len(ranking)), [f"trial {r.trial_number}" for r in ranking])
    ax.set_ylabel("best val_loss")
    ax.set_title("best val_loss per seed")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
