#!/usr/bin/env bash
# The prebuilt install check (issue 12): in an empty folder, with no C/C++
# compiler, make, cmake or ninja on PATH, `npm install` the tarballs that
# `npm run package` wrote (the main package and this platform's), then check
# that nothing was built or fetched and that `understudy generate` prints the
# same greedy text as this checkout's source build. Linux only.
#   bash scripts/check-install.sh [MODEL.gguf]      (default ../shared/models/stories260K.gguf)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="$(realpath "${1:-$root/../shared/models/stories260K.gguf}")"
version="$(node -p "require('$root/package.json').version")"
platform="$(node -p "process.platform + '-' + process.arch")"
main="$root/dist-packages/understudy-llm-$version.tgz"
binary="$root/dist-packages/understudy-llm-$platform-$version.tgz"
for f in "$main" "$binary"; do [ -f "$f" ] || { echo "check-install: $f is missing: run npm run package" >&2; exit 1; }; done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A PATH with the system's programs and node's, except compilers and build
# tools (not the caller's PATH: under npm run it holds node_modules/.bin).
mkdir -p "$work/bin" "$work/app"
shopt -s nullglob
for d in "$(dirname "$(command -v node)")" /usr/local/bin /usr/bin /bin; do
  for f in "$d"/*; do
    n="$(basename "$f")"
    case "$n" in gcc*|g++*|cc|c++|cpp*|clang*|cmake*|ctest|cpack|make|gmake|ninja|*-linux-gnu-*|c89*|c99*|tcc) continue ;; esac
    [ -e "$work/bin/$n" ] || ln -s "$f" "$work/bin/$n"
  done
done
for t in cc c++ gcc g++ make cmake; do
  if env -i PATH="$work/bin" sh -c "command -v $t" >/dev/null; then echo "check-install: $t is still on PATH" >&2; exit 1; fi
done
run() { env -i PATH="$work/bin" HOME="$HOME" "$@"; }

cd "$work/app"
echo '{"name":"check-install","version":"1.0.0","private":true}' > package.json
start=$(date +%s%N)
if ! run npm install --no-audit --no-fund "$main" "$binary" > "$work/install.log" 2>&1; then
  cat "$work/install.log" >&2; echo "check-install: npm install failed" >&2; exit 1
fi
echo "check-install: npm install took $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ ! -e node_modules/understudy-llm/vendor ] || { echo "check-install: llama.cpp was fetched" >&2; exit 1; }
[ ! -e node_modules/understudy-llm/build ] || { echo "check-install: a native build ran" >&2; exit 1; }

prompt="Once upon a time"
ours="$(run npx understudy generate --model "$model" --max-tokens 40 --temperature 0 "$prompt" 2>/dev/null)"
reference="$(node "$root/bin/understudy.js" generate --model "$model" --max-tokens 40 --temperature 0 "$prompt" 2>/dev/null)"
run npx understudy doctor > "$work/doctor.json"
node -e 'const d = require(process.argv[1]); console.log(`check-install: binary ${d.binary.path} (${d.binary.reason}); CPU variant ${d.cpu.variant}; routerStores: ${d.routerStores}`)' "$work/doctor.json"
if [ "$ours" != "$reference" ]; then
  printf 'check-install: the installed package printed\n%s\nbut the source build printed\n%s\n' "$ours" "$reference" >&2; exit 1
fi
echo "check-install: ok: the installed package prints the source build's text: $ours"
