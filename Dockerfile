# Multi-stage build: a static rekey binary on a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/rekey ./cmd/rekey

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rekey /usr/local/bin/rekey
USER nonroot:nonroot
WORKDIR /var/lib/rekey
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rekey", "run"]
CMD ["-c", "/etc/rekey/rekey.yaml"]
