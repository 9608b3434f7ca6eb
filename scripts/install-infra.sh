#!/usr/bin/env bash
# Installs what the product and its tests need beyond npm packages, from the project's own files:
#   - Debian: chromium + chromium-headless-shell (the tag executor's browser) and fonts, a JDK for Kafka,
#     prometheus (a real server scrapes the metrics endpoint in a test);
#   - Maven Central: the Kafka broker jars and CouchbaseMock (runtime/kafka-local/pom.xml).
# Idempotent and quick when everything is there; `npm test` calls it first, `npm start` with
# `browser` only (the embedded default needs no Kafka jars).
#   scripts/install-infra.sh [browser] [kafka]     (no argument = both)
set -euo pipefail
cd "$(dirname "$0")/.."
want_browser=1; want_kafka=1
if [ $# -gt 0 ]; then
  want_browser=0; want_kafka=0
  for part in "$@"; do
    case "$part" in
      browser) want_browser=1 ;;
      kafka) want_kafka=1 ;;
      *) echo "install-infra: unknown part '$part' (expected browser or kafka)" >&2; exit 2 ;;
    esac
  done
fi

need_apt=()
# The fonts partner pages render with (chromium-common only recommends fonts-liberation). They come
# with a browser install: a machine that already has Chromium is not sent to fetch them (no test
# depends on them). docker/Dockerfile runs `install-infra.sh browser`, so the image gets exactly this.
browser_fonts=(fonts-liberation fonts-noto-color-emoji)
if [ $want_browser = 1 ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  [ -x /usr/lib/chromium/chromium-headless-shell ] || need_apt+=(chromium-headless-shell)
  [ ${#need_apt[@]} -eq 0 ] || need_apt+=("${browser_fonts[@]}")
fi
if [ $want_kafka = 1 ]; then
  command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || need_apt+=(maven)
  command -v prometheus >/dev/null || need_apt+=(prometheus)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-infra: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

[ $want_kafka = 1 ] || exit 0
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' runtime/kafka-local/pom.xml)
if [ ! -f ".infra/kafka/lib/kafka_2.13-${kafka_version}.jar" ] || [ ! -f .infra/couchbase/CouchbaseMock.jar ]; then
  rm -rf .infra/kafka/lib
  echo "install-infra: resolving Kafka and CouchbaseMock from Maven Central" >&2
  mvn -q -B -f runtime/kafka-local/pom.xml validate >&2
fi
