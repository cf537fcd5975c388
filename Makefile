# Set-up, demo and tests. Every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := busybox-static gcc libc6-dev libseccomp2 iproute2 util-linux debootstrap procps
BENCH_APT_PACKAGES := runc crun runsc hyperfine
DEMO_BUNDLE := build/demo-bundle

.PHONY: all deps venv install demo test lint bench clean

all: test

# Debian packages: static busybox and debootstrap for the test root file systems,
# gcc and libc6-dev for the static test programs, libseccomp for pyseccomp.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.deps-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q '.[test]'
	touch $@

venv: deps $(VENV)/.deps-stamp

# A regular (not editable) install: the editable finder adds ~14 ms to every command.
install: venv
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

demo: install
	sh tests/make_bundle.sh $(DEMO_BUNDLE) /bin/echo "hello from a Stockade sandbox"
	$(VENV)/bin/stockade --root build/state run --bundle $(DEMO_BUNDLE) demo

lint: install
	cd $(CURDIR) && $(VENV)/bin/lint-imports

test: install lint
	$(VENV)/bin/pytest -q tests

bench: install
	apt-get install -y -qq $(BENCH_APT_PACKAGES)
	bash bench/run.sh

clean:
	rm -rf build $(VENV) *.egg-info
