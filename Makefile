# menshen — `make run` and `make test` do all set-up on a fresh Debian 12 machine:
# the Debian packages the tests need (installed only when missing), a virtualenv in .venv,
# and menshen installed into it in editable mode.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Services the test suite starts on loopback, libmilter for pymilter's C extension, the
# Unicode data the Chinese folding table is generated from, promtool (prometheus) for the
# alert-rule tests, logrotate for the audit-rotation test, the build tools, and Debian's
# packaged libraries (the privilege tests run the daemon on /usr/bin/python3 with them).
APT_PACKAGES := postfix clamav-daemon clamav-milter libmilter-dev redis-server miltertest \
                unicode-data prometheus logrotate python3-dev python3-venv gcc make \
                python3-milter python3-ahocorasick python3-yaml python3-prometheus-client \
                python3-redis

.PHONY: all run reload samples test unit lint bench deps venv clean tables

all: test

deps: .make/apt
.make/apt: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p .make && touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml .make/apt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,redis]'
	@touch $@

# The main job: the milter daemon on the shipped default configuration, its socket in the
# working tree (no root needed once set up). Stop it with Ctrl-C; reload with `make reload`.
RUN_DIR := $(CURDIR)/run
run: venv
	@mkdir -p $(RUN_DIR)
	@$(BIN)/menshen configtest
	@echo
	@echo "menshen is starting on unix:$(RUN_DIR)/menshen.sock"
	@echo "  for Postfix (main.cf):  smtpd_milters = unix:$(RUN_DIR)/menshen.sock"
	@echo "                          milter_default_action = tempfail"
	@echo "  (a chrooted smtpd needs the socket under /var/spool/postfix: see postfix/README.md)"
	@echo "  try a message offline:  $(BIN)/menshen check samples/kw-body-big5.eml"
	@echo "  or through Postfix:     swaks --to you@example.com --body '请联系我们代开发票'"
	@echo
	$(BIN)/menshen serve --socket unix:$(RUN_DIR)/menshen.sock --pid-file $(RUN_DIR)/menshen.pid

reload: venv
	$(BIN)/menshen reload --pid-file $(RUN_DIR)/menshen.pid

# Decide every sample message with the same engine the daemon runs.
samples: venv
	@for f in samples/*.eml; do \
	  printf '%-40s ' "$$f"; \
	  $(BIN)/menshen check --json "$$f" | $(PY) -c 'import json,sys; v=json.load(sys.stdin); print(v["action"], "-", v["reason"])'; \
	done

test: venv lint
	CI=$${CI:-} $(BIN)/pytest -q

unit: venv
	$(BIN)/pytest -q tests/unit tests/qa

lint: venv
	$(BIN)/ruff check milter tests bench samples
	$(BIN)/ruff format --check milter tests bench samples
	$(BIN)/mypy

bench: venv
	$(PY) bench/run.py

# Regenerate the traditional->simplified and ignorable-character tables from unicode-data.
tables: venv
	$(PY) -m menshen.text.generate_tables

clean:
	rm -rf .make run $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info milter/*.egg-info
