# spate's container image: a static binary, CA certificates, a non-root
# user, nothing else. Build it with `make image` (IMAGE=registry/spate:tag).
# The run-time stage has no shell: spate is the entrypoint, and the
# Kubernetes Job that spate kubernetes renders gives only its arguments.

# Build stage: the same Go as go.mod names.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/spate ./cmd/spate

# Run-time stage: distroless static (CA certificates, /etc/passwd with the
# nonroot user 65532, tzdata), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spate /usr/local/bin/spate
USER 65532:65532
WORKDIR /spate
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/spate"]
