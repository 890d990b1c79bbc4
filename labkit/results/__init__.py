"""Measuring and judging results: metrics, evaluation of a TFLite variant into its record (evaluate), statistics
(stats: intervals of accuracies, paired differences, seeds and speed-ups), the verdicts read from those intervals
(verdicts), simulated labs that check the intervals cover what they claim (simulate), speed-ups in words (speed),
seeds and their folders (seeds), the pruners compared (pruners), the tables and plots (report), the answers
(answers), the lab summary (summary), the HTML reports (html) and the quick preset's sentence (scale).

It reads records and files; it trains nothing. It may import the shared basics, labkit.data, labkit.deploy and
labkit.models.
"""
