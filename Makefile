# The project's commands. The README's two: `make demo` and `make test`.

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

.PHONY: demo test setup test-rust test-header test-c lib release install

# Two processes, an app and an extension, share one database: the lock and the transactions at work.
demo: setup release
	$(MAKE) -C examples/c run LIBDIR=$(CARGO_TARGET_DIR)/release

# Every test suite. Fails if any suite fails or cannot run.
test: setup test-rust test-header test-c
	@echo "make test: every suite passed"

setup:
	@scripts/setup

lib:
	$(CARGO) build

release:
	$(CARGO) build --release

test-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test

# The committed header must be exactly what the build generates.
test-header: lib
	@git diff --exit-code -- include/ || { echo "include/lease.h differs from what the build generates: commit it" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- include/)" || { echo "include/ has files git does not track: commit them" >&2; exit 1; }

test-c: lib
	$(MAKE) -C tests/c check LIBDIR=$(CARGO_TARGET_DIR)/debug

# Installs the shared and static libraries, the header and a pkg-config file under PREFIX.
install: release
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 include/lease.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(CARGO_TARGET_DIR)/release/liblease.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(CARGO_TARGET_DIR)/release/liblease.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' liblease.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/liblease.pc
