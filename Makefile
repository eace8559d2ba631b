# Two commands do all the set-up on a fresh Debian/Ubuntu machine (see README):
#   make demo   lab packages + venv + sipkit, start the local lab, run `sipkit check` against it
#   make test   lab packages + venv + sipkit, run the whole test suite
#   make fuzz   the long hostile-input run (docs/reliability.md): thousands of hostile
#               registrars and site files, then atheris on the SIP parser
.PHONY: setup demo test fuzz fuzz-only lab-down clean

FUZZ_PY ?= .venv/bin/python
FUZZ_SEEDS ?= 2500
FUZZ_SECONDS ?= 300

setup:
	@./scripts/bootstrap.sh

demo: setup
	@./scripts/demo.sh

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

fuzz: setup
	@$(MAKE) --no-print-directory fuzz-only

fuzz-only:
	@rm -f .fuzz-figures.jsonl .fuzz-atheris.log
	SIPKIT_FUZZ_SEEDS=$(FUZZ_SEEDS) SIPKIT_FUZZ_FIRST_SEED=100000 SIPKIT_FUZZ_CLI_SEEDS=40 \
	  SIPKIT_FUZZ_SITE_FILES=5000 SIPKIT_FUZZ_FIGURES=$(CURDIR)/.fuzz-figures.jsonl \
	  $(FUZZ_PY) -m pytest -q tests/integration/test_hostile_fuzz.py \
	  tests/unit/test_sitefile.py::test_mangled_site_files_load_or_fail_cleanly
	$(FUZZ_PY) tests/fuzz/atheris_sip.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
	  -print_final_stats=1 2> .fuzz-atheris.log || (tail -40 .fuzz-atheris.log; exit 1)
	$(FUZZ_PY) tests/fuzz/figures.py .fuzz-figures.jsonl .fuzz-atheris.log

lab-down:
	.venv/bin/sipkit lab down

clean: lab-down
	rm -rf .venv
