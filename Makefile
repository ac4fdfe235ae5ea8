# Every target bootstraps what it needs on a fresh machine (Python 3.11 + pip).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv npm-deps viewer test test-fast demo bench lint format clean

venv: $(STAMP)

# torch comes from constraints-cpu.txt (a CPU wheel); torchvision and nerfstudio stay out.
# The sfm extra (pycolmap) is installed so the structure-from-motion tests run.
$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[dev,sfm]'
	touch $@

# Node.js dev tools pinned in package.json / package-lock.json (test oracles, the viewer's
# libraries); never part of the node's runtime. Without npm the tests that need them skip.
NPM ?= npm
NPM_STAMP := node_modules/.installed

npm-deps: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(NPM) ci --ignore-scripts --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: tests that need the Node.js oracles will be skipped"; \
	fi

# The browser viewer's front-end files (SparkJS, three.js: package.json's dependencies), copied
# from node_modules into the git-ignored pipeline/view/web/vendor. Without npm nothing is copied:
# the node still runs and its viewer pages answer 503 saying to run `make viewer`.
VENDOR := pipeline/view/web/vendor
VIEWER_STAMP := $(VENDOR)/.built
VENDOR_FILES := \
	three/build/three.module.js three/build/three.core.js \
	three/examples/jsm/controls/OrbitControls.js three/examples/jsm/postprocessing/Pass.js \
	@sparkjsdev/spark/dist/spark.module.js three/LICENSE @sparkjsdev/spark/LICENSE

viewer: $(VIEWER_STAMP)

$(VIEWER_STAMP): $(NPM_STAMP)
	@if [ -f node_modules/@sparkjsdev/spark/package.json ]; then \
		rm -rf $(VENDOR) && \
		for f in $(VENDOR_FILES); do \
			mkdir -p $(VENDOR)/$$(dirname $$f) && cp node_modules/$$f $(VENDOR)/$$f || exit 1; \
		done && touch $@; \
	else \
		echo "viewer not built (npm missing): the node's viewer pages will answer 503"; \
	fi

test: $(STAMP) $(NPM_STAMP) $(VIEWER_STAMP)
	$(PY) -m pytest

test-fast: $(STAMP) $(NPM_STAMP) $(VIEWER_STAMP)
	$(PY) -m pytest -m "not slow"

# Options of python -m demo, e.g. `make demo DEMO_ARGS=--serve` (keep the node and its viewer up).
DEMO_ARGS ?=

demo: $(STAMP) $(VIEWER_STAMP)
	$(PY) -m demo $(DEMO_ARGS)

bench: $(STAMP) $(NPM_STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache demo-output bench-output $(VENDOR)
