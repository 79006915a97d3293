# One image runs every agw subcommand: its entrypoint is the agw binary, so
# the container's args pick the subcommand (sidecar, control-plane, inject,
# pub, sub, ...). Build with `make image` (docker build -t agw:dev .).
#
# The build reaches the Go module proxy and nothing else: modules are fetched
# in one step from the proxy the Go image is configured with (its "direct"
# VCS fallback removed, so a module the proxy lacks fails the build), the Go
# toolchain is the image's own (GOTOOLCHAIN=local), and the compile step runs
# with GOPROXY=off. No "# syntax=" line: that would pull a frontend image;
# BuildKit's built-in frontend handles RUN --mount. The only image pulled is
# the golang builder; the runtime stage is scratch.

ARG GO_VERSION=1.26

# ---- build: a static, trimmed agw binary ----
FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOTOOLCHAIN=local \
    GOFLAGS=-mod=readonly
# Optional: a module proxy mirror (docker build --build-arg GOPROXY=...).
ARG GOPROXY
COPY go.mod go.sum ./
RUN export GOPROXY="${GOPROXY:-$(go env GOPROXY)}" && \
    export GOPROXY="${GOPROXY%,direct}" && \
    go mod download && go mod verify
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOPROXY=off go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/agw ./cmd/agw && \
    GOPROXY=off go build -tags agwsidecar -trimpath -buildvcs=false -ldflags="-s -w" -o /out/agw-sidecar ./cmd/agw
# The runtime image has no shell: prepare its user and CA bundle here.
RUN mkdir -p /out/etc/ssl/certs && \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ && \
    echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /out/etc/passwd && \
    echo 'nonroot:x:65532:' > /out/etc/group

# ---- runtime: scratch, the binary, CA roots, a non-root user ----
FROM scratch
COPY --from=build /out/etc/ /etc/
COPY --from=build /out/agw /agw
# The injected sidecar runs this slimmer build (sidecar, pub, sub only).
COPY --from=build /out/agw-sidecar /agw-sidecar
# 65532 is the nonroot user; the injector runs the sidecar as the same id.
USER 65532:65532
# Sidecar: agent API (loopback), peer links, admin. Control plane: xDS,
# admin. Injector: webhook.
EXPOSE 46358 15000 18000 15010 9443
ENTRYPOINT ["/agw"]
CMD ["--help"]
