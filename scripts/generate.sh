#!/usr/bin/env bash
# Regenerates plugins/pluginpb from plugin.proto with pinned generators:
# protoc from Debian's protobuf-compiler, protoc-gen-go v1.36.12 and
# protoc-gen-go-grpc v1.5.1 from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
  else
    echo "generate: protoc is missing: sudo apt-get install -y protobuf-compiler" >&2; exit 1
  fi
fi
GOBIN="$(go env GOPATH)/bin"
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
cd plugins/pluginpb
PATH="$GOBIN:$PATH" protoc --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
echo "generate: plugins/pluginpb regenerated"
