# ksight — build, run, test.
#   make          build build/ksight
#   make run      install what is missing, build, start `ksight run`
#   make test     install what is missing, build, run every test (as root)

OUTPUT      := build
VERSION     := 0.1.0
GIT_COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH        := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
           -Iheaders -Iuser -I$(OUTPUT) $(shell pkg-config --cflags json-c) \
           -DKSIGHT_VERSION='"$(VERSION)"' -DKSIGHT_COMMIT='"$(GIT_COMMIT)"'
LDLIBS  := -lbpf -lelf -lz -lmicrohttpd -ljson-c -lcurl -lyaml -lpthread

# clang's own system include dirs, after ours, so BPF code sees asm/types.h
CLANG_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
              -Iheaders -Ibpf -I$(OUTPUT) $(CLANG_SYS_INCLUDES)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
SIGNALS    := $(patsubst bpf/%.bpf.c,%,$(BPF_SRCS))
BPF_OBJS   := $(patsubst %,$(OUTPUT)/%.bpf.o,$(SIGNALS))
SKELETONS  := $(patsubst %,$(OUTPUT)/%.skel.h,$(SIGNALS))

USER_SRCS  := $(wildcard user/*.c)
USER_OBJS  := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
LIB_OBJS   := $(filter-out $(OUTPUT)/user/main.o,$(USER_OBJS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
TEST_TOOLS := $(patsubst tests/e2e/%.c,$(OUTPUT)/tests/%,$(wildcard tests/e2e/*.c))

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all setup run test test-unit test-bpf test-e2e test-guest bench clean
.DELETE_ON_ERROR:

all: $(OUTPUT)/ksight

setup:
	$(Q)scripts/setup.sh

run: setup
	$(Q)$(MAKE) --no-print-directory all
	$(OUTPUT)/ksight run $(ARGS)

test: setup
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(OUTPUT)/tests/verifier $(TEST_TOOLS)
	$(Q)tests/run-all.sh

test-unit: $(UNIT_BINS)
	$(Q)tests/run-all.sh unit

test-bpf: $(OUTPUT)/tests/verifier
	$(Q)tests/run-all.sh bpf

test-e2e: all $(TEST_TOOLS)
	$(Q)tests/run-all.sh e2e

# builds its own copy of ksight for the guest
test-guest:
	$(Q)tests/run-all.sh guest

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
$(OUTPUT)/user/%.o: user/%.c $(wildcard user/*.h) $(wildcard headers/*.h) $(SKELETONS) | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/libksight.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(OUTPUT)/ksight: $(OUTPUT)/user/main.o $(OUTPUT)/libksight.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(OUTPUT)/libksight.a | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/libksight.a $(LDLIBS) -lcmocka -lssl -lcrypto -o $@

$(OUTPUT)/tests/verifier: tests/bpf/verifier.c $(BPF_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -lcmocka -o $@

$(OUTPUT)/tests/%: tests/e2e/%.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@
