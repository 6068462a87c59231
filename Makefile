# The two quick-start commands: `make demo` and `make test`. Each sets up its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean fuzz stress

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m openmi.demo

test: $(STAMP)
	bash scripts/test-deps.sh
	$(PY) -m pytest -q -rs

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# make fuzz: the hypothesis properties of tests/security long, then atheris (coverage-guided) over each reader,
# from and into the corpus kept in tests/fuzz/corpus (minimized after each run); an input atheris finds lands in
# tests/fuzz/findings, which the normal suite replays. FUZZ_EXAMPLES per property, FUZZ_SECONDS per atheris target.
FUZZ_EXAMPLES ?= 5000
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?= request service response mof brace objectpath datetime
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/security/test_fuzz.py
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet -e '.[fuzz]' \
		|| echo "atheris does not install here: hypothesis only"
	@if $(PY) -c "import atheris" 2>/dev/null; then \
		mkdir -p tests/fuzz/findings; \
		for t in $(FUZZ_TARGETS); do echo "== atheris $$t ($(FUZZ_SECONDS) s)"; \
			$(PY) tests/fuzz/fuzz_codec.py $$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=30 \
				-artifact_prefix=tests/fuzz/findings/$$t- -print_final_stats=1 > .fuzz-$$t.log 2>&1 \
				|| { grep -v Instrumenting .fuzz-$$t.log | tail -40; exit 1; }; \
			grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" .fuzz-$$t.log; rm -f .fuzz-$$t.log; \
			rm -rf .fuzz-min && mkdir .fuzz-min && $(PY) tests/fuzz/fuzz_codec.py $$t -merge=1 -max_len=16384 \
				.fuzz-min tests/fuzz/corpus/$$t > /dev/null 2>&1 \
				&& rm -rf tests/fuzz/corpus/$$t && mv .fuzz-min tests/fuzz/corpus/$$t; \
		done; \
	fi

# make stress: STRESS_CLIENTS clients of mixed operations for STRESS_MINUTES against one openmi serve, then
# STRESS_ROUNDS SIGKILL rounds each for openmi serve and the embedded API (normal and full durability).
STRESS_CLIENTS ?= 16
STRESS_MINUTES ?= 3
STRESS_ROUNDS ?= 25
stress: $(STAMP)
	$(PY) -m tests.security.stress --clients $(STRESS_CLIENTS) --minutes $(STRESS_MINUTES) --crash-rounds $(STRESS_ROUNDS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
