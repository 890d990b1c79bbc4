"""The lab summary's own parts: wall times of the run's seeds, tables without 'nan'."""

from labkit.results import report, summary


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


def test_times_read_in_the_unit_that_suits_them_to_three_significant_figures():
    import pandas as pd

    assert [report.readable_ms(ms) for ms in (0.0234, 0.5, 3.456, 12.34, 999.96, 1234, None)] == [
        "23.4 µs", "500 µs", "3.46 ms", "12.3 ms", "1.00 s", "1.23 s", ""]
    table = pd.DataFrame({"accuracy": [0.9], "latency median (ms)": [0.02345678]}, index=["base-fp32"])
    assert "23.5 µs" in report.markdown(table) and "| latency median " in report.markdown(table)
    html = report.styled(table).to_html()
    assert "23.5 µs" in html and ">latency median<" in html and "0.023457" not in html
