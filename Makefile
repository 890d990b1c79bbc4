# The two commands of the README: `make lab` runs the whole lab, `make test` runs the tests.
# The student edition: `make assignment` writes it, `make autograde SUBMISSIONS=folder` grades it, `make grades`
# refreshes feedback and grades after grading answers by hand.
.PHONY: setup lab book quick test test-fast lint bench assignment autograde grades ui
# The suite's workers (pytest-xdist): two, one per core; WORKERS=0 runs it in this process, one test at a time.
WORKERS ?= 2
# The edit-test loop's tier: everything that needs no notebook, browser, server, Ray or signal (about 2 minutes).
FAST = not notebook and not browser and not server and not ray and not kill
SUBMISSIONS ?= assignment/submissions

setup:
	bash scripts/setup.sh

# one seed (42) by default; `make lab SEEDS="42 43 44"` (how the committed summary is made) gives every verdict
# seed-level intervals
lab: setup
	.venv/bin/python -m labkit run --tasks all $(if $(SEEDS),--seeds $(SEEDS))

# the executed lab and docs/ as one offline, searchable site in results/<dataset>/book (make lab ends with it):
# make book [RESULTS=results/<dataset>]
book: setup
	.venv/bin/python -m labkit book $(RESULTS)

# a first look in a few minutes (less data, a short fine-tuning, fewer variants): its summary says its verdicts are
# not the methods', in results/fashion-mnist-quick/summary
quick: setup
	.venv/bin/python -m labkit run --scale quick

test: setup
	.venv/bin/python -m pytest -n $(WORKERS) --dist loadgroup

test-fast: setup
	.venv/bin/python -m pytest -m "$(FAST)"

lint: setup
	.venv/bin/ruff check labkit tests benchmarks

bench: setup
	.venv/bin/python benchmarks/run.py

assignment: setup
	.venv/bin/python -m labkit assignment

autograde: setup
	.venv/bin/python -m labkit autograde $(SUBMISSIONS)

grades: setup
	.venv/bin/python -m labkit grades

# the MLflow UI on 127.0.0.1:5000 over a results folder's own store: make ui [RESULTS=results/<dataset>] [PORT=5001]
ui: setup
	.venv/bin/python -m labkit ui $(RESULTS) --port $(or $(PORT),5000)
