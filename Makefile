# Porcelain over CMake. `make` builds; `make check` sets up and runs every test;
# `make up` / `make down` start and stop the local cluster.

MAKEFLAGS += --no-print-directory

BUILD      ?= build
CHECKBUILD ?= build-check
JOBS       ?= $(shell nproc)
PYTHON     := /usr/bin/python3
PYTEST     := $(PYTHON) -m pytest
RUNDIR     ?= $(CURDIR)/run
PREFIX     ?= /usr/local
DESTDIR    ?=
DEBBUILD   ?= build-deb
E2E_PROCS  ?= 4

.PHONY: all deps deps-run check check-rules check-build unit e2e e2e-serial compat browser \
	check-tsan check-peers lint fuzz bench up down clean format install deb check-package \
	test-package

all: $(BUILD)/mesh

$(BUILD)/mesh: FORCE
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

FORCE:

deps:
	@scripts/install-deps check

deps-run:
	@scripts/install-deps run

# The whole suite runs against a -Werror ASan+UBSan build; the optimised build must also be
# warning-free (-O2 finds what -O0 does not, e.g. maybe-uninitialized). That build is the
# Debian package's (-O2 with Debian's hardening flags, built once here with WERROR=ON), whose
# contents are tested at the end. The lb and load tests run once more under ThreadSanitizer:
# they are the multithreaded parts. The end-to-end tests run E2E_PROCS at a time, one file per
# process, then the timing-sensitive ones alone (SERIAL in tests/e2e/conftest.py). Most of
# their time is spent waiting on timers (four processes kept 0.84 of a core busy on average),
# so there are more processes than cores; four is also the most whose cluster port bands fit
# below the ephemeral ports (offset_band in tests/e2e/cluster_helpers.py). Each phase is a
# target of its own (`make e2e` reruns one against the check build) and scripts/phase prints
# what it took, so every log of the suite shows where its time goes.
PHASE := scripts/phase
CHECK_ENV := MESH_BIN=$(CURDIR)/$(CHECKBUILD)/mesh

check: deps check-rules
	@$(PHASE) build-O2-deb env WERROR=ON $(MAKE) deb
	@$(PHASE) build-ASan $(MAKE) check-build
	@$(PHASE) unit $(MAKE) unit
	@$(PHASE) e2e+compat+browser $(MAKE) -j3 --output-sync=target phase-e2e phase-compat \
		phase-browser
	@$(PHASE) e2e-serial $(MAKE) e2e-serial
	@$(PHASE) package env $(CHECK_ENV) $(MAKE) test-package
	@$(PHASE) tsan $(MAKE) check-tsan

# The compatibility and browser suites wait on their agents as the end-to-end tests do, so they
# run beside them; each one's output is printed whole when it ends, with its own time.
phase-%:
	@$(PHASE) $* $(MAKE) $*

check-build:
	cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON -DSANITIZE=ON >/dev/null
	cmake --build $(CHECKBUILD) -j $(JOBS)

# The phases below run against the check build as it is; `make check-build` first.
unit:
	cd $(CHECKBUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

e2e:
	$(CHECK_ENV) $(PYTEST) -q -n $(E2E_PROCS) --dist loadfile --durations=20 \
		-m 'not serial' tests/e2e --ignore=tests/e2e/test_package.py

e2e-serial:
	$(CHECK_ENV) $(PYTEST) -q -m serial --durations=10 tests/e2e \
		--ignore=tests/e2e/test_package.py

compat:
	$(CHECK_ENV) tests/compat/run
	$(CHECK_ENV) tests/compat/run -cluster

# Rules of the house the build enforces: the tree is clang-format clean, no component includes
# another (nor src/lib a component), and the registry's folders keep their include rules.
check-rules:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	scripts/check-includes

# ThreadSanitizer over the lb and load tests, unit and end-to-end: only their targets are built.
# The two tests that check measured latencies against a known delay are left out: TSan's
# instrumentation slows the load generator itself. The end-to-end tests take two processes,
# test by test (no module of theirs shares a fixture), then the timing-sensitive ones run alone.
TSAN_TESTS = $(notdir $(basename $(wildcard tests/unit/test_lb_*.c tests/unit/test_load_*.c)))
TSAN_SKIP  = not percentiles_match_a_known_latency and not think_time_is_not_response_time
TSAN_E2E   = tests/e2e/test_lb.py tests/e2e/test_load.py
TSAN_ENV   = TSAN_OPTIONS=halt_on_error=1 MESH_BIN=$(CURDIR)/$(CHECKBUILD)-tsan/mesh
check-tsan: deps
	cmake -S . -B $(CHECKBUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON -DTSAN=ON >/dev/null
	cmake --build $(CHECKBUILD)-tsan -j $(JOBS) --target mesh $(TSAN_TESTS)
	cd $(CHECKBUILD)-tsan && TSAN_OPTIONS=halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -R '^unit/test_(lb|load)_'
	$(TSAN_ENV) $(PYTEST) -q -n 2 --dist load -m 'not serial' $(TSAN_E2E) -k '$(TSAN_SKIP)'
	$(TSAN_ENV) $(PYTEST) -q -m serial $(TSAN_E2E) -k '$(TSAN_SKIP)'

# Static analysis: cppcheck and clang's analyzer over the whole tree, kept at zero findings.
lint: deps
	cppcheck -q --std=c11 --enable=warning,portability --error-exitcode=1 --inline-suppr \
		-D_GNU_SOURCE -DMESH_VERSION='"0"' -I src --include=/usr/include/jansson.h src apps
	scan-build --status-bugs -o $(CHECKBUILD)-scan cmake -S . -B $(CHECKBUILD)-scan >/dev/null
	scan-build --status-bugs -o $(CHECKBUILD)-scan cmake --build $(CHECKBUILD)-scan -j $(JOBS)

# The browser suite alone (Debian's chromium via playwright-core), against the check build.
browser:
	$(CHECK_ENV) BROWSER_OUT=$(CURDIR)/$(CHECKBUILD)/browser-screenshots \
		tests/browser/run

# The scenarios under real Artillery and under mesh load, side by side (quick variants). Artillery
# is about 500 MB from npm (pinned by tests/peers/package-lock.json), so `make check` leaves it out.
check-peers: deps all
	MESH_BIN=$(CURDIR)/$(BUILD)/mesh $(PYTHON) tests/peers/check_peers.py

# `make install PREFIX=/usr DESTDIR=/tmp/root`: binaries, man pages (written by the installed
# binary from its own -help), docs, example configuration and systemd units.
install: deps-run
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target mesh webapp
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian package, in $(DEBBUILD)/ (dpkg-buildpackage writes next to the tree; moved here).
deb: deps
	rm -f ../meshkit_*.deb ../meshkit-dbgsym_*.deb ../meshkit_*.buildinfo ../meshkit_*.changes
	dpkg-buildpackage -us -uc -b
	mkdir -p $(DEBBUILD)
	mv ../meshkit_*.deb ../meshkit-dbgsym_*.deb ../meshkit_*.buildinfo ../meshkit_*.changes \
		$(DEBBUILD)/
	debian/rules clean >/dev/null

# Builds the package and tests what it holds (file list, lintian, units, the extracted binaries)
# and the install rules of the $(MESH_BIN) build (default build/mesh); test-package tests the
# package already in $(DEBBUILD)/.
check-package: deb
	$(MAKE) test-package

test-package:
	MESH_DEB=$$(ls $(CURDIR)/$(DEBBUILD)/meshkit_*.deb) $(PYTEST) -q tests/e2e/test_package.py

fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DFUZZ=ON -DSANITIZE=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	@echo "run e.g.: build-fuzz/fuzz_http_parse -max_total_time=60 tests/fuzz/corpus/http_parse"

bench: all
	bench/registry

# `make up UPFLAGS=-netns` runs each node in its own network namespace (root); `make up SECURE=1`
# runs it encrypted, with ACLs (mesh up -secure); `make up SERVERS=3` replicates the registry over
# three servers (mesh up -servers 3).
up: deps-run all
	@$(BUILD)/mesh up -run-dir "$(RUNDIR)" $(if $(filter 1 yes true,$(SECURE)),-secure) \
		$(if $(SERVERS),-servers $(SERVERS)) $(UPFLAGS)

down:
	@if [ -x $(BUILD)/mesh ]; then $(BUILD)/mesh down -run-dir "$(RUNDIR)"; \
	else echo "meshkit is not built, so nothing of it runs."; fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(CHECKBUILD) $(CHECKBUILD)-tsan $(CHECKBUILD)-scan build-fuzz \
		$(DEBBUILD)
