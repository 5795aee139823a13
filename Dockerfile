# Multi-stage build: a static rekey binary on a minimal, non-root image.
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) -t rekey .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=(devel)
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/rekey ./cmd/rekey
# The state directory (SQLite store by default), created here because the
# runtime image has no shell; owned by distroless's nonroot user (65532).
RUN mkdir -p /out/var/lib/rekey && chmod 0700 /out/var/lib/rekey

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rekey /usr/local/bin/rekey
COPY --from=build --chown=65532:65532 /out/var/lib/rekey /var/lib/rekey
USER 65532:65532
WORKDIR /var/lib/rekey
# In a container the listener must accept connections from outside the
# container's own loopback; the config file's daemon.listen default
# (127.0.0.1:8080) suits a host install, not this. Env overrides win over
# the file (docs/CONFIGURATION.md, "Environment overrides").
ENV REKEY_DAEMON__LISTEN=0.0.0.0:8080
EXPOSE 8080
VOLUME ["/var/lib/rekey"]
ENTRYPOINT ["/usr/local/bin/rekey", "run"]
CMD ["-c", "/etc/rekey/rekey.yaml"]
