# Tributary in one image: `tributary` and every connector plugin
# (tributary-connector-*) side by side in /usr/local/bin, so a worker's
# default plugin.path (the folder of its executable) finds them.
#
#   docker build -t tributary:local --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -p 9092:9092 tributary:local broker --listen 0.0.0.0:9092 --advertise localhost:9092 --data-dir /data
#   docker run --rm -p 8083:8083 tributary:local worker --bootstrap-servers HOST:9092 --rest-listen 0.0.0.0:8083

# Build: static binaries (CGO_ENABLED=0), with the Makefile's flags.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/bin/ ./cmd/... \
 && mkdir -p /out/data /out/files

# Run: no shell, no package manager; user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# The broker's data dir and the file connectors' dir, owned by the user, so
# that named volumes mounted there start writable.
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/files /files
USER 65532:65532
EXPOSE 9092 8083
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["--help"]
