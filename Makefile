# Set-up is part of each target: a fresh clone needs only `make quickstart` or `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: quickstart test test-fast lint browser

$(STAMP): pyproject.toml
	python3 -m pip install --quiet uv
	uv venv --allow-existing --python python3 $(VENV)
	uv pip install --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/hfnlp train recipes/quickstart.yaml --set output_dir=runs/quickstart-$(shell date +%Y%m%d-%H%M%S)

# pytest exits 5 when it collects no test (e.g. a -k filter matching nothing): say so, and don't fail on it.
# $(1): the arguments that choose the tests; PYTEST_ARGS adds to them, e.g. PYTEST_ARGS="-k resume -x".
define pytest
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q --timeout 900 $(1) $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc
endef

# The dashboard's browser test drives Debian's Chromium (Playwright's own browser download needs network we lack).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Chromium is not installed: the dashboard browser test will be skipped"

# The whole suite.
test: $(STAMP) browser
	$(call pytest,)

# The fast lane, for while you work (about a third of `make test`): leaves out the tests marked slow (long
# trainings, fresh processes, crash and resume) and the integration tests on ../shared/data.
test-fast: $(STAMP)
	$(call pytest,-m "not slow and not integration")

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts && $(BIN)/ruff format --check src tests scripts
