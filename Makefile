# autotosis — `make demo` and `make test` work on a fresh Debian machine (they install what is missing).
.PHONY: demo test setup setup-test bench clean

demo: setup
	.venv/bin/autotosis demo --force

test: setup-test
	bash scripts/test.sh

# Every benchmark script (they print ratios measured in one run); one: make bench BENCH=benchmarks/scan.py.
# setup-test: the benchmarks need what the tests need (ray for benchmarks/batch.py).
BENCH ?= $(wildcard benchmarks/*.py)
bench: setup-test
	@for script in $(BENCH); do echo "== $$script"; .venv/bin/python $$script || exit 1; done

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh test

clean:
	rm -rf autotosis-demo .pytest_cache
