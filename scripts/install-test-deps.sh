#!/usr/bin/env bash
# Installs what the tests need, when missing. Idempotent; run by `make test`.
#  - kcat (librdkafka): the second Kafka client of the interop tests (Debian package)
#  - PostgreSQL (Debian's postgresql): internal/testpg starts private servers for the
#    Postgres connector tests and benchmarks (never the system's own cluster)
#  - Redis (Debian's redis-server) and ClickHouse (Debian's clickhouse-server and
#    clickhouse-client, 18.16): private servers for the Redis and ClickHouse connector tests
#  - docker-compose (Debian's 1.29, without the recommended engine): configs/ validates
#    docker-compose.yml offline with `docker-compose config -q`; no engine runs in tests
#  - Node.js + kafkajs 2.2.4: the third Kafka client (Debian's nodejs/npm when node is missing;
#    kafkajs from the npm registry, pinned by broker/testdata/kafkajs/package-lock.json)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || need+=(clickhouse-client)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
norec=()
command -v docker-compose >/dev/null 2>&1 || norec+=(docker-compose)
if [ ${#need[@]} -gt 0 ] || [ ${#norec[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: need root to install: ${need[*]} ${norec[*]} (run: sudo apt-get install -y ${need[*]} ${norec[*]})" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${need[*]} ${norec[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ ${#norec[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${norec[@]}" >/dev/null
  fi
fi
if [ ! -d broker/testdata/kafkajs/node_modules/kafkajs ]; then
  echo "install-test-deps: installing kafkajs"
  (cd broker/testdata/kafkajs && npm ci --no-audit --no-fund --loglevel=error)
fi
