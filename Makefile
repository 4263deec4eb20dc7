# vmtrace: `make demo` and `make test` set everything up on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps demo test bench clean

$(BIN)/python: | system-deps
	$(PYTHON) -m venv $(VENV)

# nasm, ld, bubblewrap (the sandbox they run in) and a C compiler (for the native
# recorder); python3-venv where Debian splits it.
system-deps:
	@command -v nasm >/dev/null && command -v ld >/dev/null && command -v cc >/dev/null \
	  && command -v bwrap >/dev/null \
	  && $(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nasm binutils gcc \
	    bubblewrap python3-venv python3-dev; }

# compileall: an editable install writes no bytecode, and with PYTHONDONTWRITEBYTECODE set
# nothing ever does: every `trace` command would compile each vmtrace module it imports anew
# (~0.1 s of `trace record`'s start-up). pip writes it for a regular install.
#
# editable_mode=compat: the editable install is one path line in a .pth file (this
# checkout on sys.path). The default mode installs an import-hook finder instead, whose
# set-up (pathlib, urllib, fnmatch...) every `trace` command paid at start-up: ~15 ms.
setup: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -c "from tracer import native; native.build()"
	$(BIN)/python -m compileall -q tracer analysis vmtrace timetravel

demo: setup
	$(BIN)/trace record examples/brk_tutorial.asm -o traces/brk_tutorial
	$(BIN)/trace info traces/brk_tutorial
	$(BIN)/trace report traces/brk_tutorial -o traces/brk_tutorial.report.html
	@echo
	@echo "Report: $(CURDIR)/traces/brk_tutorial.report.html (open it in a browser)"
	@echo "Next, put trace on your PATH in this shell, then look at step 4 of the run:"
	@echo "  . $(BIN)/activate"
	@echo "  trace state traces/brk_tutorial 4"
	@echo "  trace stack traces/brk_tutorial 4"
	@echo "(or without activating: $(BIN)/trace state traces/brk_tutorial 4)"

test: setup
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf traces/*/ bench/out tracer/native/*.so
