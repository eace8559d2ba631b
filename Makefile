# Two commands do all the set-up on a fresh Debian/Ubuntu machine (see README):
#   make demo   lab packages + venv + sipkit, start the local lab, run `sipkit check` against it
#   make test   lab packages + venv + sipkit, run the whole test suite
.PHONY: setup demo test lab-down clean

setup:
	@./scripts/bootstrap.sh

demo: setup
	@./scripts/demo.sh

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

lab-down:
	.venv/bin/sipkit lab down

clean: lab-down
	rm -rf .venv
