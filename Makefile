# The two commands a person needs: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# 127.0.0.1: this machine only. HOST=0.0.0.0 exposes the studio to the network; set AUTOML_STUDIO_PASSWORD then.
HOST ?= 127.0.0.1
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-quick install install-dev chromium clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Browser tests need Debian's chromium; install it only when it is missing.
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	STREAMLIT_BROWSER_GATHER_USAGE_STATS=false $(PY) -m streamlit run app.py \
	  --server.address $(HOST) --server.port $(PORT) --server.headless true

test: install-dev chromium
	$(PY) -m pytest -q

# The quick subset: everything but browser, benchmark-like and the slowest real-run tests (see the README).
test-quick: install-dev
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache
