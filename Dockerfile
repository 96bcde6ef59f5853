# ksight: multi-stage build on Debian bookworm.
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short HEAD) -t ksight:0.1.0 .
# `make image` builds it with buildah (scripts/image.sh); tests/image/run.sh checks it.
# The build stage runs the same scripts/setup.sh and make as CI; vmlinux.h comes
# from the build host's /sys/kernel/btf/vmlinux (CO-RE: the binary runs on any
# BTF kernel), or pass --build-arg VMLINUX_BTF=/path inside the context.

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh build
COPY . .
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux
ARG GIT_COMMIT=unknown
RUN make clean && make GIT_COMMIT=$GIT_COMMIT VMLINUX_BTF=$VMLINUX_BTF build/ksight

FROM debian:bookworm-slim
# the libraries build/ksight links (-l flags), libmicrohttpd12, which `run` opens for its endpoint
# (user/lazy_mhd.c), libcurl4, which it opens when it first talks to the API server
# (user/lazy_curl.c), and CA roots for the API server
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libbpf1 libelf1 zlib1g libmicrohttpd12 libjson-c5 libcurl4 libyaml-0-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/ksight /usr/bin/ksight
EXPOSE 9436
ENTRYPOINT ["/usr/bin/ksight"]
CMD ["run", "--listen=:9436"]
