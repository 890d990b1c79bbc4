"""Running the lab: the task runner (runner), one notebook executed by papermill (execution), the same on Ray
(ray_backend), MLflow tracking (tracking) and the command line (cli).

It is the only stage that knows all the others, and nothing imports it but `python -m labkit`.
"""
