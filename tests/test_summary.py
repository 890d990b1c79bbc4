"""The lab summary's own parts: wall times of the run's seeds, tables without 'nan'."""

from labkit import report, summary


def test_each_seeds_wall_time_is_the_sum_of_its_notebooks(tmp_path):
    import json

    for seed, durations in ((42, [60, 120]), (43, [30])):
        notebooks = tmp_path / f"seed-{seed}" / "notebooks"
        notebooks.mkdir(parents=True)
        for i, seconds in enumerate(durations):
            (notebooks / f"0{i + 1}_x.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))
    assert summary.seed_durations(tmp_path, [42, 43]) == {42: 180.0, 43: 30.0}
    assert summary.seed_durations(tmp_path, [43]) == {43: 30.0}  # only the seeds of the run


def test_markdown_tables_leave_missing_values_blank():
    import pandas as pd

    table = pd.DataFrame({"accuracy": [0.9, 0.91234], "Δ vs control": [float("nan"), "-0.10 (n.s.)"]},
                         index=["base-fp32", "pruned-0.5-fp32"])
    text = report.markdown(table)
    assert "nan" not in text.lower() and "0.9123" in text and "-0.10 (n.s.)" in text
