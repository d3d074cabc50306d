# Put the toolkit's virtual environment (made by `make demo` / `make test`) on PATH: every recipe
# sources it (`. ../path.sh`); in a shell, `. egs/path.sh` gives the `ds2` command.
_ds2_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$_ds2_root/.venv/bin/ds2" ]; then
  export PATH="$_ds2_root/.venv/bin:$PATH"
fi
if ! command -v ds2 >/dev/null; then
  echo "ds2 is not installed: run 'make demo' or 'pip install -e .' in $_ds2_root" >&2
  exit 1
fi
export PYTHONUNBUFFERED=1
