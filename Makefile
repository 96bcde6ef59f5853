# ksight — build, run, test.
#   make          build build/ksight
#   make run      install what is missing, build, start `ksight run`
#   make test     install what is missing, build, run every test (as root)
#   make image    build the image with buildah: build/ksight-VERSION.oci.tar (as root)

OUTPUT      := build
VERSION     := 0.1.0
GIT_COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH        := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool

# user/ is grouped by concern (k8s/, kernel/, metrics/, signals/); every folder is on the include path
USER_DIRS     := user $(patsubst %/,%,$(sort $(dir $(wildcard user/*/*.c user/*/*.h))))
USER_INCLUDES := $(addprefix -I,$(USER_DIRS))
USER_HEADERS  := $(wildcard $(addsuffix /*.h,$(USER_DIRS)))

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
           -Iheaders $(USER_INCLUDES) -I$(OUTPUT) $(shell pkg-config --cflags json-c) \
           -DKSIGHT_VERSION='"$(VERSION)"' -DKSIGHT_COMMIT='"$(GIT_COMMIT)"'
# no -lcurl: user/lazy_curl.c opens libcurl when a Kubernetes API is first called;
# no -lmicrohttpd: user/lazy_mhd.c opens it on a thread of its own when `run` starts
LDLIBS  := -lbpf -lelf -lz -ljson-c -lyaml -lpthread

# clang's own system include dirs, after ours, so BPF code sees asm/types.h
CLANG_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
              -Iheaders -Ibpf -I$(OUTPUT) $(CLANG_SYS_INCLUDES)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
SIGNALS    := $(patsubst bpf/%.bpf.c,%,$(BPF_SRCS))
BPF_OBJS   := $(patsubst %,$(OUTPUT)/%.bpf.o,$(SIGNALS))
SKELETONS  := $(patsubst %,$(OUTPUT)/%.skel.h,$(SIGNALS))

USER_SRCS  := $(wildcard $(addsuffix /*.c,$(USER_DIRS)))
USER_OBJS  := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
LIB_OBJS   := $(filter-out $(OUTPUT)/user/main.o,$(USER_OBJS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
# tests/bpf/test_*.c: the loader and map helpers on the real kernel (root), linked like unit tests
BPF_TEST_SRCS := $(wildcard tests/bpf/test_*.c)
BPF_TEST_BINS := $(patsubst tests/bpf/test_%.c,$(OUTPUT)/tests/bpf_test_%,$(BPF_TEST_SRCS))
TEST_TOOLS := $(patsubst tests/e2e/%.c,$(OUTPUT)/tests/%,$(wildcard tests/e2e/*.c))

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all setup run test test-unit test-bpf test-e2e test-guest bench clean image
.DELETE_ON_ERROR:

all: $(OUTPUT)/ksight

setup:
	$(Q)scripts/setup.sh

run: setup
	$(Q)$(MAKE) --no-print-directory all
	$(OUTPUT)/ksight run $(ARGS)

test: setup
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(OUTPUT)/tests/verifier $(BPF_TEST_BINS) $(TEST_TOOLS) $(SAN_AGENTS) \
		$(ASAN_BINS) $(FUZZ_BINS)
	$(Q)tests/run-all.sh

test-unit: $(UNIT_BINS)
	$(Q)tests/run-all.sh unit

test-bpf: $(OUTPUT)/tests/verifier $(BPF_TEST_BINS)
	$(Q)tests/run-all.sh bpf

test-e2e: all $(TEST_TOOLS) $(SAN_AGENTS)
	$(Q)tests/run-all.sh e2e

# builds its own copy of ksight for the guest
test-guest:
	$(Q)tests/run-all.sh guest

# the Dockerfile built by buildah on debootstrapped debian:bookworm(-slim) bases
image:
	$(Q)scripts/setup.sh image
	$(Q)KSIGHT_VERSION=$(VERSION) GIT_COMMIT=$(GIT_COMMIT) scripts/image.sh

bench: all $(TEST_TOOLS)
	$(Q)tests/bench/run.sh

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT)

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	$(Q)mkdir -p $@

# vmlinux.h: every kernel type, from the BTF of the kernel we build for
$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,VMLINUX,$@)
	$(Q)test -r $(VMLINUX_BTF) || { echo "no kernel BTF at $(VMLINUX_BTF): set VMLINUX_BTF=/path/to/vmlinux" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(OUTPUT)/vmlinux.h $(wildcard bpf/*.bpf.h) $(wildcard headers/*.h) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# user objects may include any skeleton
$(OUTPUT)/user/%.o: user/%.c $(USER_HEADERS) $(wildcard headers/*.h) $(SKELETONS) | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# rebuilt whole, so an object whose source was removed does not linger in it
$(OUTPUT)/libksight.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/ksight: $(OUTPUT)/user/main.o $(OUTPUT)/libksight.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(OUTPUT)/libksight.a | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/libksight.a $(LDLIBS) -lcmocka -lssl -lcrypto -o $@

$(OUTPUT)/tests/bpf_test_%: tests/bpf/test_%.c $(OUTPUT)/libksight.a | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/libksight.a $(LDLIBS) -lcmocka -o $@

$(OUTPUT)/tests/verifier: tests/bpf/verifier.c $(BPF_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -lcmocka -o $@

$(OUTPUT)/tests/%: tests/e2e/%.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# the FUSE server that fails reads (fserr e2e): the only tool linked with libfuse3
$(OUTPUT)/tests/fuse_eio: tests/e2e/fuse_eio.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(shell pkg-config --cflags fuse3 2>/dev/null) $< -o $@ $(shell pkg-config --libs fuse3 2>/dev/null)

# compiles the resolver in (#include), so it is rebuilt with it
$(OUTPUT)/tests/pod_resolve: user/k8s/pod_resolver.c user/k8s/cgroup_identity.c $(USER_HEADERS)

# ---- fuzzing and sanitizers -------------------------------------------------
# clang 14 with compiler-rt (libclang-rt-14-dev). Nothing here needs root,
# BPF or the skeletons except the asan build of the unit tests (like theirs).
#   make fuzz           build the libFuzzer harnesses (tests/fuzz/fuzz_*.c) into
#                       $(OUTPUT)/fuzz/ and run each for FUZZ_SECONDS, FUZZ_JOBS at a
#                       time, growing $(OUTPUT)/fuzz/corpus/<name>/
#   make fuzz-build     only build them
#   make test-fuzz      the run-all `fuzz` suite: each harness 5 s over its seeds
#   make fuzz-crashes   replay tests/fuzz/crashes/<name>/: known bugs, fails until fixed
#   make test-asan      every unit test built with -fsanitize=address,undefined
#                       into $(OUTPUT)/asan/ and run (the run-all `asan` suite)

FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
SAN_CC       ?= $(CLANG)

# as CFLAGS, but no -Werror: gcc's build is the one that gates warnings, and
# clang warns about two idioms in tests/unit
SAN_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter \
              -Wno-unused-but-set-variable -Wno-string-concatenation -D_GNU_SOURCE \
              -Iheaders $(USER_INCLUDES) -I$(OUTPUT) $(shell pkg-config --cflags json-c) \
              -DKSIGHT_VERSION='"$(VERSION)"' -DKSIGHT_COMMIT='"$(GIT_COMMIT)"'
# undefined behaviour stops the program, like a memory error
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined

FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZ_NAMES))
# The user/ modules, instrumented, in an archive of their own (never the gcc
# libksight.a): each harness gets the ones it uses. Not main.c, nor what
# includes a BPF skeleton, so that fuzzing needs no BPF toolchain.
FUZZ_LIB_SRCS := $(filter-out user/main.c $(shell grep -l 'skel\.h' $(USER_SRCS)),$(USER_SRCS))
FUZZ_LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))
# k8s_watch.c and event_recorder.c reference the API client: stubs, linked first
FUZZ_STUBS := $(OUTPUT)/fuzz/obj/stub_k8s_client.o
.SECONDARY: $(FUZZ_STUBS)
# a kubeconfig can name any file: see tests/fuzz/fuzz_kubeconfig.c
FUZZ_LDFLAGS_kubeconfig := -Wl,--wrap=open
FUZZ_LIBS  := -ljson-c -lyaml -lpthread -lm

ASAN_OBJS  := $(patsubst $(OUTPUT)/user/%.o,$(OUTPUT)/asan/user/%.o,$(LIB_OBJS))
# the whole agent under ASan+UBSan and under TSan, for the e2e lifecycle test
TSAN_OBJS  := $(patsubst $(OUTPUT)/user/%.o,$(OUTPUT)/tsan/user/%.o,$(USER_OBJS))
SAN_AGENTS := $(OUTPUT)/asan/ksight $(OUTPUT)/tsan/ksight
ASAN_BINS  := $(patsubst tests/unit/%.c,$(OUTPUT)/asan/%,$(UNIT_SRCS)) \
              $(patsubst tests/bpf/test_%.c,$(OUTPUT)/asan/bpf_test_%,$(BPF_TEST_SRCS))

.PHONY: fuzz fuzz-build test-fuzz fuzz-crashes asan-build test-asan

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)tests/fuzz/run.sh -t $(FUZZ_SECONDS) -j $(FUZZ_JOBS) -k $(FUZZ_NAMES)

test-fuzz: fuzz-build
	$(Q)tests/run-all.sh fuzz

fuzz-crashes: fuzz-build
	$(Q)tests/run-all.sh fuzz-crashes

asan-build: $(ASAN_BINS)

test-asan: asan-build
	$(Q)tests/run-all.sh asan

$(OUTPUT)/fuzz/obj $(OUTPUT)/asan/user:
	$(Q)mkdir -p $@

$(OUTPUT)/fuzz/obj/%.o: user/%.c $(USER_HEADERS) $(wildcard headers/*.h) | $(OUTPUT)/fuzz/obj
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUTPUT)/fuzz/obj/stub_%.o: tests/fuzz/stub_%.c $(USER_HEADERS) | $(OUTPUT)/fuzz/obj
	$(call msg,FUZZ-CC,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUTPUT)/fuzz/libksight-fuzz.a: $(FUZZ_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_STUBS) $(OUTPUT)/fuzz/libksight-fuzz.a
	$(call msg,FUZZ,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) -fsanitize=fuzzer -Werror $< $(FUZZ_STUBS) \
		$(OUTPUT)/fuzz/libksight-fuzz.a $(FUZZ_LDFLAGS_$*) $(FUZZ_LIBS) -o $@

# user objects may include any skeleton, as in the gcc build
$(OUTPUT)/asan/user/%.o: user/%.c $(USER_HEADERS) $(wildcard headers/*.h) $(SKELETONS) | $(OUTPUT)/asan/user
	$(call msg,ASAN-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(OUTPUT)/asan/libksight.a: $(ASAN_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/asan/bpf_test_%: tests/bpf/test_%.c $(OUTPUT)/asan/libksight.a
	$(call msg,ASAN,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) $< $(OUTPUT)/asan/libksight.a $(LDLIBS) -lcmocka -lm -o $@

$(OUTPUT)/asan/test_%: tests/unit/test_%.c $(OUTPUT)/asan/libksight.a
	$(call msg,ASAN,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) $< $(OUTPUT)/asan/libksight.a $(LDLIBS) -lcmocka -lssl -lcrypto -lm -o $@

$(OUTPUT)/asan/ksight: $(OUTPUT)/asan/user/main.o $(OUTPUT)/asan/libksight.a
	$(call msg,ASAN,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) $^ $(LDLIBS) -lm -o $@

$(OUTPUT)/tsan/user/%.o: user/%.c $(USER_HEADERS) $(wildcard headers/*.h) $(SKELETONS)
	$(call msg,TSAN-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -fsanitize=thread -c $< -o $@

$(OUTPUT)/tsan/ksight: $(TSAN_OBJS)
	$(call msg,TSAN,$@)
	$(Q)$(SAN_CC) $(SAN_CFLAGS) -fsanitize=thread $^ $(LDLIBS) -lm -o $@
