"""Measuring and judging results: metrics, evaluation of a TFLite variant into its record (evaluate), statistics
(stats: intervals, paired tests, Holm, non-inferiority), speed-ups with their intervals (speed), seeds and their
folders (seeds), the pruners compared (pruners), the tables and plots (report), the four answers (answers), the
lab summary (summary), the HTML reports (html) and the quick preset's sentence (scale).

It reads records and files; it trains nothing. It may import the shared basics, labkit.data, labkit.deploy and
labkit.models.
"""
