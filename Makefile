# The two commands of the README: `make lab` runs the whole lab, `make test` runs the tests.
.PHONY: setup lab test lint bench

setup:
	bash scripts/setup.sh

lab: setup
	.venv/bin/python -m labkit run --tasks all

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check labkit tests benchmarks

bench: setup
	.venv/bin/python benchmarks/run.py
