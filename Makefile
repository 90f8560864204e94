# evrec — build, test, run and benchmark.
#   make            library (static + shared), CLI, examples
#   make test       unit + integration tests (cmocka summaries)
#   make run        demo against the bundled local endpoint
#   make bench      benchmarks, printed as ratios against in-run baselines

CC       ?= cc
CROSS    ?=
RUNNER   ?=
ifneq ($(CROSS),)
# Cross build (e.g. CROSS=aarch64-linux-gnu- or CROSS=arm-linux-gnueabihf-): Debian's cross
# toolchain, and the dependencies' arm64/armhf packages unpacked into a sysroot (made on first
# use by tools/cross/sysroot.sh). Test binaries run under qemu-user.
TRIPLET  := $(patsubst %-,%,$(CROSS))
CROSS_ARCH := $(if $(findstring aarch64,$(TRIPLET)),arm64,$(if $(findstring arm-linux-gnueabihf,$(TRIPLET)),armhf,unknown))
QEMU_ARCH  := $(if $(findstring aarch64,$(TRIPLET)),aarch64,arm)
CC       := $(CROSS)gcc
AR       := $(CROSS)ar
OBJCOPY  := $(CROSS)objcopy
BUILD    ?= build-cross-$(CROSS_ARCH)
SYSROOT  ?= $(CURDIR)/$(BUILD)/sysroot
$(if $(wildcard $(SYSROOT)/.complete),,$(shell bash tools/cross/sysroot.sh $(CROSS_ARCH) $(SYSROOT) >&2))
PKG_CONFIG := PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/$(TRIPLET)/pkgconfig:$(SYSROOT)/usr/share/pkgconfig pkg-config
EXTRA_CFLAGS += -I$(SYSROOT)/usr/include -I$(SYSROOT)/usr/include/$(TRIPLET)
SYSLIBS  := $(SYSROOT)/usr/lib/$(TRIPLET):$(SYSROOT)/lib/$(TRIPLET)
EXTRA_LDFLAGS += -L$(SYSROOT)/usr/lib/$(TRIPLET) -Wl,-rpath-link,$(SYSLIBS)
RUNNER   := qemu-$(QEMU_ARCH) -L /usr/$(TRIPLET) -E LD_LIBRARY_PATH=$(SYSLIBS)
endif
AR       ?= ar
OBJCOPY  ?= objcopy
BUILD    ?= build
PKG_CONFIG ?= pkg-config
OPT      ?= -O2
PKGS     := lmdb libcjson libcurl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo -llmdb -lcjson -lcurl)
# Debian's libmbedtls-dev 2.x ships no pkg-config file.
MBED_LIBS  := $(shell $(PKG_CONFIG) --libs mbedcrypto 2>/dev/null || echo -lmbedcrypto)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
# SHA-256 of request bodies (port/sha256.c): mbedTLS's is always built (the reference);
# SHA256=libcrypto adds OpenSSL's (CPU SHA extensions; Debian's libcurl loads it anyway) as the
# default backend, SHA256=mbedtls leaves it out; auto takes libcrypto when pkg-config finds it.
SHA256   ?= auto
ifeq ($(SHA256),auto)
override SHA256 := $(shell $(PKG_CONFIG) --exists libcrypto 2>/dev/null && echo libcrypto || echo mbedtls)
endif
ifeq ($(SHA256),libcrypto)
SHA_DEFS := -DEVREC_SHA256_LIBCRYPTO
SHA_LIBS := $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null || echo -lcrypto)
endif
# libyaml: the CLI's --cli-input-yaml.
YAML_LIBS := $(shell $(PKG_CONFIG) --libs yaml-0.1 2>/dev/null || echo -lyaml)

WARN     := -Wall -Wextra -Werror -Wshadow -Wvla -Wformat=2 -Wstrict-prototypes
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden -DEVREC_BUILDING -D_FILE_OFFSET_BITS=64 \
              -Iinclude -Iagent -Iport $(PKG_CFLAGS) $(SHA_DEFS) $(EXTRA_CFLAGS)
LDLIBS   := $(EXTRA_LDFLAGS) $(PKG_LIBS) $(MBED_LIBS) $(SHA_LIBS) -lpthread -lm
SANFLAGS ?=

LIB_SRC  := $(filter-out port/fault.c,$(sort $(wildcard agent/*.c) $(wildcard port/*.c) $(wildcard port/posix/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# Fault-injection hooks (port/fault.c, and the sources that call port_fault_take built with
# them) go into a test library that the test programs link; the release library has none.
FI_DEFS  := -DEVREC_FAULT_INJECTION
FI_SRC   := $(shell grep -l 'port_fault_take' $(LIB_SRC) 2>/dev/null)
FI_OBJ   := $(FI_SRC:%.c=$(BUILD)/obj-fi/%.o) $(BUILD)/obj-fi/port/fault.o
TEST_LIB_OBJ := $(filter-out $(FI_SRC:%.c=$(BUILD)/obj/%.o),$(LIB_OBJ)) $(FI_OBJ)
# The CLI (tools/evrec/README.md) in two layers: its commands (main.c, cli_opts.c, cmd_*.c) are
# the evrec program; everything else under tools/evrec, the AWS CLI-compatible part (the AWS
# commands' arguments, configuration and sending, cmd_aws_*.c, below their entry cmd_aws.c;
# JMESPath, output formats, shorthand, YAML, the service model, wire formats, validation), is an
# internal static library that the program, the tests, the fuzz targets and the benchmarks link.
CLI_SRC  := $(sort $(wildcard tools/evrec/*.c))
CLI_CMD_SRC := $(filter-out tools/evrec/cmd_aws_%.c,\
               $(filter tools/evrec/main.c tools/evrec/cli_opts.c tools/evrec/cmd_%.c,$(CLI_SRC)))
CLI_OBJ  := $(CLI_CMD_SRC:%.c=$(BUILD)/obj/%.o)
CLI_LIB_SRC := $(filter-out $(CLI_CMD_SRC),$(CLI_SRC))
CLI_LIB_OBJ := $(CLI_LIB_SRC:%.c=$(BUILD)/obj/%.o)
SUP_SRC  := $(sort $(wildcard tests/support/*.c))
SUP_OBJ  := $(SUP_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
REL_SRC  := $(sort $(wildcard tests/reliability/test_*.c))
REL_BIN  := $(REL_SRC:tests/reliability/%.c=$(BUILD)/tests/reliability/%)
# Reliability runs: short in `make test`, long in `make check-all`.
KILL_ROUNDS ?= 50
LOAD_SECONDS ?= 8
EVREC_RELIABILITY_ROUNDS ?= 40
export EVREC_RELIABILITY_ROUNDS
# Power-cut images per durability mode and crash model (tests/reliability/powercut.py);
# POWERCUT_SEED repeats a run.
POWERCUT_IMAGES ?= 40
POWERCUT_SEED ?=
BENCH_SRC := $(sort $(wildcard tools/bench/*.c))
BENCH_BIN := $(BENCH_SRC:tools/bench/%.c=$(BUILD)/bench/%)
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/fuzz_%)
FUZZ_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_SECONDS ?= 20

STATIC   := $(BUILD)/libevrec.a
# The library's objects as they are, internal symbols visible: the CLI, the benchmarks and the
# fuzz targets use internals. Only libevrec.a and libevrec.so are installed.
INTERNAL := $(BUILD)/libevrec-internal.a
TEST_STATIC := $(BUILD)/libevrec-test.a
SHARED   := $(BUILD)/libevrec.so
CLI      := $(BUILD)/evrec
# The CLI's AWS-compatible part (never installed), and the test programs that link it: they
# include its headers (-Itools/evrec), never its .c files (`make check-tree`).
CLI_LIB  := $(BUILD)/libevrec-cli.a
CLI_LIB_TESTS := $(BUILD)/tests/unit/test_cli_formats $(BUILD)/tests/unit/test_cli_params \
                 $(BUILD)/tests/unit/test_jmespath

# The local endpoint needs a Python 3 that has botocore (Debian: python3-botocore).
PYTHON   ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import botocore' >/dev/null 2>&1 && { echo $$p; break; }; done)
export EVREC_PYTHON := $(PYTHON)
export EVREC_ROOT := $(CURDIR)
export EVREC_CLI := $(CURDIR)/$(CLI)
export EVREC_BUILD := $(BUILD)
export EVREC_TEST_RUNNER := $(RUNNER)
# Tests never ask the EC2 instance metadata service (169.254.169.254) for credentials; the
# tests of that provider point AWS_EC2_METADATA_SERVICE_ENDPOINT at a local fake.
export AWS_EC2_METADATA_DISABLED := true

.SECONDARY:
.PHONY: all lib test unit integration run demo bench clean check-all asan deps check-port \
        install install-check uninstall size cross-check tsan valgrind fuzz reliability fuzz-run fuzz-replay \
        fake-selftest check-tree check-symbols regen check-generated check-layers
# The first target is the default: `make` builds everything.
all: lib $(CLI) $(EXAMPLE_BIN)
# `make run` and `make test` install missing Debian packages first (set EVREC_NO_DEPS=1 to skip).
deps:
	@[ -n "$(EVREC_NO_DEPS)" ] || bash tools/install-deps.sh
lib: $(STATIC) $(SHARED)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-fi/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(FI_DEFS) $(SANFLAGS) -MMD -MP -c $< -o $@

# libevrec.a exports evrec_* only: its objects are linked into one relocatable object whose
# hidden symbols (everything not marked EVREC_API; the agent is built with -fvisibility=hidden)
# are made local, so a program linking it statically meets none of our internal names.
# The archives and libraries depend on the Makefile too: when a file moves between them (a
# split, a file joining the CLI's library) the objects are older than the archive, yet its
# member list changed.
$(STATIC): $(LIB_OBJ) Makefile
	@mkdir -p $(dir $@)
	$(CC) -nostdlib -r -o $(BUILD)/obj/libevrec.o $(filter %.o,$^)
	$(OBJCOPY) --localize-hidden $(BUILD)/obj/libevrec.o
	rm -f $@ && $(AR) rcs $@ $(BUILD)/obj/libevrec.o

$(INTERNAL): $(LIB_OBJ) Makefile
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(TEST_STATIC): $(TEST_LIB_OBJ) Makefile
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(SHARED): $(LIB_OBJ) Makefile
	$(CC) -shared -Wl,-soname,libevrec.so.$(shell sed -n 's/^#define EVREC_ABI_VERSION \([0-9]*\).*/\1/p' include/evrec.h) \
	    $(SANFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

$(CLI_LIB): $(CLI_LIB_OBJ) Makefile
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $(filter %.o,$^)

$(CLI): $(CLI_OBJ) $(CLI_LIB) $(INTERNAL)
	$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(CLI_LIB) $(INTERNAL) $(LDLIBS) $(YAML_LIBS)

$(CLI_LIB_TESTS): $(CLI_LIB)
$(CLI_LIB_TESTS): TEST_CLI_LIBS = $(CLI_LIB) $(YAML_LIBS)
$(BUILD)/tests/%: tests/%.c $(SUP_OBJ) $(TEST_STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(FI_DEFS) $(SANFLAGS) -Itests/support -Itools/evrec -MMD -MP -MF $@.d -o $@ $< $(SUP_OBJ) $(TEST_CLI_LIBS) $(TEST_STATIC) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/bench/%: tools/bench/%.c $(CLI_LIB) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools/evrec -O2 -o $@ $< $(CLI_LIB) $(INTERNAL) $(LDLIBS) -lsqlite3

$(BUILD)/footprint: tools/footprint.c $(INTERNAL)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(INTERNAL) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SANFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# Fuzz targets, built two ways: with a replay driver (every seed and regression input once;
# part of `make test`), and with libFuzzer under clang (`make fuzz`, FUZZ_SECONDS each).
$(BUILD)/fuzz-replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(CLI_LIB) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools/evrec $(SANFLAGS) -MMD -MP -MF $@.d -o $@ $< tests/fuzz/replay_main.c $(CLI_LIB) $(INTERNAL) $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CLI_LIB) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools/evrec -fsanitize=fuzzer,address,undefined -o $@ $< $(CLI_LIB) $(INTERNAL) $(LDLIBS)

fuzz-replay: $(REPLAY_BIN)
	@fail=0; for n in $(FUZZ_NAMES); do $(RUNNER) $(BUILD)/fuzz-replay/fuzz_$$n tests/fuzz/corpus/$$n tests/fuzz/regressions/$$n || fail=1; done; exit $$fail

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT=-O1 \
	    SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" fuzz-run

# Each target runs for FUZZ_SECONDS on a scratch copy of its seeds; a crash is left as
# build-fuzz/crash-<target>-* (add it to tests/fuzz/regressions/<target>/ once fixed).
fuzz-run: $(FUZZ_BIN)
	@fail=0; for n in $(FUZZ_NAMES); do \
	  echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; mkdir -p $(BUILD)/corpus/$$n; \
	  $(BUILD)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(BUILD)/crash-$$n- $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	    2>$(BUILD)/fuzz-$$n.log || { fail=1; tail -40 $(BUILD)/fuzz-$$n.log; }; \
	  grep -E '^Done|#[0-9]+.*DONE' $(BUILD)/fuzz-$$n.log | tail -1; \
	done; exit $$fail

# Each test binary prints cmocka's summary; a failing binary fails the target at the end.
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $(RUNNER) $$t || fail=1; done; exit $$fail

integration: all $(INTEG_BIN)
	@fail=0; for t in $(INTEG_BIN); do echo "== $$t"; $(RUNNER) $$t || fail=1; done; exit $$fail

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check-port check-tree check-symbols check-generated check-layers
	@$(MAKE) --no-print-directory unit integration fuzz-replay fake-selftest
	@$(MAKE) --no-print-directory reliability install-check

# The power-cut test's write tracer (LD_PRELOAD; no large-file redirection: it defines open64).
$(BUILD)/tests/reliability/iotrace.so: tests/reliability/iotrace.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -shared -fPIC -O2 $(WARN) -o $@ $< -ldl

# Corrupt stores, disk full (needs root for a tmpfs), power cuts rebuilt from traced writes,
# the kill -9 loop and the load run.
reliability: all $(REL_BIN) $(BUILD)/tests/reliability/load_recorder \
             $(BUILD)/tests/reliability/powercut_tool $(BUILD)/tests/reliability/iotrace.so
	@fail=0; for t in $(REL_BIN); do echo "== $$t"; $(RUNNER) $$t || fail=1; done; \
	echo "== power cuts ($(POWERCUT_IMAGES) images per mode and model)"; \
	$(PYTHON) tests/reliability/powercut.py --images $(POWERCUT_IMAGES) \
	    $(if $(POWERCUT_SEED),--seed $(POWERCUT_SEED)) \
	    --tool $(BUILD)/tests/reliability/powercut_tool \
	    --shim $(BUILD)/tests/reliability/iotrace.so || fail=1; \
	echo "== kill loop ($(KILL_ROUNDS) rounds)"; \
	$(PYTHON) tests/reliability/kill_loop.py --rounds $(KILL_ROUNDS) || fail=1; \
	echo "== load ($(LOAD_SECONDS) s)"; \
	$(PYTHON) tests/reliability/load.py --seconds $(LOAD_SECONDS) \
	    --recorder $(BUILD)/tests/reliability/load_recorder \
	    $(if $(SANFLAGS),--no-memory-check) || fail=1; \
	exit $$fail

# The local endpoint's own checks (Python, independent of the C code); last line is its summary.
fake-selftest:
	@echo "== tests/fake/test_fake_endpoint.py"
	@[ -n "$(PYTHON)" ] || { echo "fake endpoint: no python3 with botocore (python3-botocore)"; exit 1; }
	@$(PYTHON) tests/fake/test_fake_endpoint.py -q

# The repository stands alone (reads nothing beside it), `make` builds `all`, and the release
# library carries no fault-injection hook.
check-tree: lib
	@bash tests/build/check_tree.sh $(BUILD)

# agent/README.md's module table (who may call whom) matches the #includes of agent/.
check-layers:
	@bash tests/build/check_layers.sh

# Generated sources: the CLI's model tables from botocore's service models, its table widths
# from Python's Unicode data (each file's first line names the version it came from), and
# README.md's option table from agent/options.def.
GENERATED := tools/evrec/model_gen.c:tools/gen_model.py tools/evrec/widths_gen.c:tools/gen_widths.py
regen:
	@[ -n "$(PYTHON)" ] || { echo "regen: no python3 with botocore (python3-botocore)"; exit 1; }
	@for g in $(GENERATED); do out=$${g%%:*}; gen=$${g##*:}; \
	  $(PYTHON) $$gen > $$out.tmp && mv $$out.tmp $$out && echo "regen: $$out ($$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' $$out))" \
	  || { rm -f $$out.tmp; exit 1; }; done
	@$(PYTHON) tools/gen_options_doc.py --write && echo "regen: README.md's option table (agent/options.def)"

# Regenerating gives the same bytes: a stale generated file fails `make test`.
check-generated:
	@[ -n "$(PYTHON)" ] || { echo "check-generated: no python3 with botocore (python3-botocore)"; exit 1; }
	@mkdir -p $(BUILD)/regen; fail=0; for g in $(GENERATED); do out=$${g%%:*}; gen=$${g##*:}; \
	  $(PYTHON) $$gen > $(BUILD)/regen/$$(basename $$out) || fail=1; \
	  cmp -s $(BUILD)/regen/$$(basename $$out) $$out || { fail=1; \
	    echo "check-generated: $$out is stale (make regen)"; \
	    diff -u $$out $(BUILD)/regen/$$(basename $$out) | head -20; }; done; \
	$(PYTHON) tools/gen_options_doc.py --check || fail=1; \
	[ $$fail -eq 0 ] && echo "check-generated: $(words $(GENERATED)) generated files up to date"; exit $$fail

# The installed libraries export evrec_* and nothing else; the CLI none of libyaml's names.
check-symbols: lib $(CLI)
	@bash tests/build/check_symbols.sh $(STATIC) $(SHARED) $(CLI)

# Nothing under agent/ reaches the OS except through port/port.h.
check-port: lib
	@bash tools/check_port.sh $(BUILD)/obj

run: deps
	@$(MAKE) --no-print-directory demo

demo: all
	@if [ -f tools/run_demo.py ]; then $(PYTHON) tools/run_demo.py; \
	 else ./$(CLI) --version; echo "(delivery is not built yet: the demo arrives with it)"; fi

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

asan:
	$(MAKE) BUILD=build-asan SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" OPT=-O1 test

# ThreadSanitizer over the unit and integration tests (the multithreaded ones matter most).
tsan:
	$(MAKE) --no-print-directory BUILD=build-tsan SANFLAGS="-fsanitize=thread" OPT=-O1 \
	    EVREC_NO_DEPS=1 all unit integration

# valgrind memcheck over every unit and integration test: no errors, no definite leaks.
VALGRIND := valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
valgrind:
	$(MAKE) --no-print-directory BUILD=build-valgrind OPT=-O1 EVREC_NO_DEPS=1 \
	    RUNNER="$(VALGRIND)" all unit integration

# Cross builds for arm64 and armhf: library, CLI and unit tests, the tests run under qemu-user.
cross-check:
	$(MAKE) --no-print-directory CROSS=aarch64-linux-gnu- all unit
	$(MAKE) --no-print-directory CROSS=arm-linux-gnueabihf- all unit

# Everything: the tests, the sanitizers, valgrind, the long reliability runs, fuzzing and the
# cross builds.
check-all: test asan tsan valgrind
	$(MAKE) --no-print-directory reliability KILL_ROUNDS=1000 LOAD_SECONDS=180 \
	    EVREC_RELIABILITY_ROUNDS=1000 POWERCUT_IMAGES=1000
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60
	$(MAKE) --no-print-directory cross-check

clean:
	rm -rf build build-*

# -- install ---------------------------------------------------------------------------------
PREFIX   ?= /usr/local
DESTDIR  ?=
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
VERSION  := $(shell sed -n 's/^#define EVREC_VERSION_STRING "\(.*\)"/\1/p' include/evrec.h)
ABI      := $(shell sed -n 's/^#define EVREC_ABI_VERSION \([0-9]*\).*/\1/p' include/evrec.h)

UNITDIR  ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

# evrec.pc and the unit name this install's directories, so they are written by the install
# itself (a file kept in $(BUILD) would keep the PREFIX of an earlier install).
install: all
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 include/evrec.h $(DESTDIR)$(INCDIR)/evrec.h
	install -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libevrec.a
	install -m 0755 $(SHARED) $(DESTDIR)$(LIBDIR)/libevrec.so.$(VERSION)
	ln -sf libevrec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libevrec.so.$(ABI)
	ln -sf libevrec.so.$(ABI) $(DESTDIR)$(LIBDIR)/libevrec.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@SHA_LIBS@|$(SHA_LIBS)|' tools/evrec.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/evrec.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/evrec.pc
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/evrec
	install -m 0644 tools/evrec/evrec.1 $(DESTDIR)$(MANDIR)/man1/evrec.1
	sed -e 's|/usr/local/bin/evrec |$(BINDIR)/evrec |' tools/evrec-agent.service \
	    > $(DESTDIR)$(UNITDIR)/evrec-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/evrec-agent.service
	install -m 0644 tools/evrec.sysusers $(DESTDIR)$(SYSUSERSDIR)/evrec.conf

# Install into a temporary DESTDIR and build an out-of-tree program with pkg-config.
install-check: all
	@SANFLAGS="$(SANFLAGS)" bash tests/install/run.sh

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/evrec.h $(DESTDIR)$(LIBDIR)/libevrec.a \
	    $(DESTDIR)$(LIBDIR)/libevrec.so* $(DESTDIR)$(LIBDIR)/pkgconfig/evrec.pc \
	    $(DESTDIR)$(BINDIR)/evrec $(DESTDIR)$(MANDIR)/man1/evrec.1 \
	    $(DESTDIR)$(UNITDIR)/evrec-agent.service $(DESTDIR)$(SYSUSERSDIR)/evrec.conf

# -- footprint (reported, not asserted) --------------------------------------------------------
size:
	@bash tools/size_report.sh

-include $(shell find $(BUILD)/obj $(BUILD)/obj-fi $(BUILD)/tests -name '*.d' 2>/dev/null)
