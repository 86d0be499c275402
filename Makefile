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

.PHONY: all run reload samples test unit lint bench deps venv clean tables fuzz hostile-report deb deb-test

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

test: venv lint .make/apt-deb
	CI=$${CI:-} $(BIN)/pytest -q
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory deb-test; \
	elif [ "$${CI:-}" = true ]; then echo "deb-test needs root" >&2; exit 1; \
	else echo "deb-test skipped: it needs root (sudo make deb-test)"; fi

unit: venv
	$(BIN)/pytest -q tests/unit tests/qa

lint: venv
	$(BIN)/ruff check milter tests bench samples fuzz
	$(BIN)/ruff format --check milter tests bench samples fuzz
	$(BIN)/mypy

bench: venv
	$(PY) bench/run.py

# Fuzz each atheris target for FUZZ_SECONDS (CPU time and crashes add up in .fuzz/results.jsonl;
# crash inputs land in .fuzz/TARGET/artifacts/). `$(PY) fuzz/run.py --help` for one target.
FUZZ_SECONDS ?= 60
fuzz: venv
	nice -n 19 $(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

# Worst-case parse time and peak RSS of every hostile-input case, into docs/RELIABILITY.md.
hostile-report: venv
	$(PY) tests/hostile/report.py

# Regenerate the traditional->simplified and ignorable-character tables from unicode-data.
tables: venv
	$(PY) -m menshen.text.generate_tables

clean:
	rm -rf .make dist run $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info milter/*.egg-info

# The Debian package (packaging/debian, dh-python on bookworm's own python3-* libraries):
# built from a copy of the tree with packaging/debian as its debian/, then lintian (no
# error, no unexplained warning) and systemd-analyze on the unit. dist/menshen_V_all.deb.
DEB_APT_PACKAGES := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
                    dpkg-dev fakeroot lintian debootstrap systemd man-db
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' milter/menshen/__init__.py)
DEB     := dist/menshen_$(VERSION)_all.deb
DEB_DIR := .make/deb
# Debian's own tools and /usr/bin/python3 only, whatever else is on PATH (a pyenv, a venv).
DEB_ENV := env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$$HOME" LANG=C.UTF-8 \
           $${DEB_BUILD_OPTIONS:+DEB_BUILD_OPTIONS="$$DEB_BUILD_OPTIONS"}

.make/apt-deb: Makefile
	@missing=$$(for p in $(DEB_APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p .make && touch $@

deb: .make/apt-deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR) dist
	tests/packaging/copy-source $(DEB_DIR)/menshen-$(VERSION)
	tar -C $(DEB_DIR)/menshen-$(VERSION) -cf $(DEB_DIR)/source.tar .
	cp -r packaging/debian $(DEB_DIR)/menshen-$(VERSION)/debian
	cd $(DEB_DIR)/menshen-$(VERSION) && $(DEB_ENV) dpkg-buildpackage -us -uc -b
	cp $(DEB_DIR)/menshen_$(VERSION)_all.deb $(DEB)
	$(DEB_ENV) lintian --fail-on error,warning -I --pedantic --display-experimental --show-overrides $(DEB_DIR)/menshen_$(VERSION)_*.changes
	$(DEB_ENV) systemd-analyze verify --man=no packaging/systemd/menshen.service 2>&1 | \
	  { ! grep -v 'is not executable: No such file'; }
	$(DEB_ENV) systemd-analyze security --offline=true packaging/systemd/menshen.service | grep 'Overall exposure'
	@echo "built $(DEB)"

# Install test in a clean Debian 12 chroot (root; cached in /var/cache/menshen-deb-test).
deb-test: deb
	$(SUDO) tests/packaging/deb-test.sh $(DEB) $(DEB_DIR)/source.tar
