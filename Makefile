# Every target bootstraps what it needs on a fresh machine (Python 3.11 + pip).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv viewer test test-fast demo bench lint format clean

venv: $(STAMP)

# torch comes from constraints-cpu.txt (a CPU wheel); torchvision and nerfstudio stay out.
$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[dev]'
	touch $@

# The browser viewer's front-end packages (package.json / package-lock.json, npm registry),
# copied from node_modules into the git-ignored pipeline/view/web/vendor. Without npm the node
# still runs and its viewer routes answer 503 saying to run `make viewer`.
VENDOR := pipeline/view/web/vendor
VIEWER_STAMP := $(VENDOR)/.built
VENDOR_FILES := \
	three/build/three.module.js three/build/three.core.js \
	three/examples/jsm/controls/OrbitControls.js three/examples/jsm/postprocessing/Pass.js \
	@sparkjsdev/spark/dist/spark.module.js three/LICENSE @sparkjsdev/spark/LICENSE

viewer: $(VIEWER_STAMP)

$(VIEWER_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR)
	for f in $(VENDOR_FILES); do mkdir -p $(VENDOR)/$$(dirname $$f) && cp node_modules/$$f $(VENDOR)/$$f; done
	touch $@

test: $(STAMP) $(VIEWER_STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

demo: $(STAMP) $(VIEWER_STAMP)
	$(PY) -m demo

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output bench-output node_modules $(VENDOR)
