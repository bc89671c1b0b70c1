# autotosis — `make demo` and `make test` work on a fresh Debian machine (they install what is missing).
.PHONY: demo test setup setup-test bench clean

demo: setup
	.venv/bin/autotosis demo --force

test: setup-test
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh test

clean:
	rm -rf autotosis-demo .pytest_cache
