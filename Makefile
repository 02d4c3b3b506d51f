# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PUPPET := $(VENV)/bin/puppet
SHARED ?= ../shared/media

.PHONY: setup test test-fast demo quality prior demo-misalignment bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

# Two test processes: the suite waits on MediaPipe, ffmpeg and subprocesses as much as on arithmetic.
test: setup
	$(PY) -m pytest -q -ra -n 2

# Without the tests marked slow (torchrun, the crop trials, the GPU recipe).
test-fast: setup
	$(PY) -m pytest -q -ra -n 2 -m "not slow"

demo: setup
	$(PY) pipelines/demo.py --shared $(SHARED)

quality: setup
	$(PY) pipelines/quality.py --shared $(SHARED)

# The prior: 30 min on the six shared driver clips (no shared target, so every target can be judged
# with it); writes runs/prior and its half-precision weights runs/prior.pt (for --init).
PRIOR_CLIPS := girl grey_man halfbody_woman mouth_man smile_man_short talking_man
prior: setup
	$(PUPPET) pretrain $(PRIOR_CLIPS:%=$(SHARED)/drivers/%.mp4) --out runs/prior --minutes 30 --steps 20000 \
		--export runs/prior.pt

demo-misalignment: setup
	$(PUPPET) demo misalignment --image $(SHARED)/images/painted_woman.jpg --out out/misalignment.png

bench: setup
	$(PUPPET) bench all --json out/bench.json

clean:
	rm -rf $(VENV) out runs
