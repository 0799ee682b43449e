#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install the workbench with its pinned stack.
# Usage: tools/bootstrap.sh [VENV_DIR] [EXTRAS] (default dev,lab,ray: tests, notebooks, the Ray
# backends and their tests). Uses uv when it can (about 10x faster than pip)
# and passes it the local wheel folder named by pip's `find-links` setting, which uv ignores
# otherwise (that folder holds the CPU build of torch==2.13.0 on machines that have one).
# In a git clone it also configures nbstripout as the clone's filter for notebooks.
set -euo pipefail
venv=${1:-.venv}
extras=${2:-dev,lab,ray}
py=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $($py --version)"
  "$py" -m venv "$venv"
fi

links=()
cfg=$("$py" -m pip config list 2>/dev/null || true)
while read -r dir; do
  [ -n "$dir" ] && [ -d "$dir" ] && links+=(--find-links "$dir")
done < <(printf '%s\n' "$cfg" | sed -n "s/^[^=]*find-links='\(.*\)'$/\1/p" | tr ' ' '\n' | sort -u)

uv_bin=$(command -v uv || true)
if [ -z "$uv_bin" ]; then
  "$venv/bin/python" -m pip install -q uv >/dev/null 2>&1 && uv_bin="$venv/bin/uv" || true
fi

if [ -n "$uv_bin" ]; then
  echo "bootstrap: installing .[$extras] with uv ${links[*]:-}"
  # --compile-bytecode: uv writes no .pyc by default, and with PYTHONDONTWRITEBYTECODE set
  # (as on many CI machines) every new process would compile torch again (~5 s each; the
  # tests start dozens of processes). Compiling once costs about 40 s on 2 cores.
  "$uv_bin" pip install -q --compile-bytecode --python "$venv/bin/python" "${links[@]}" \
    -e ".[$extras]"
else
  echo "bootstrap: uv unavailable, installing .[$extras] with pip"
  "$venv/bin/python" -m pip install -q -e ".[$extras]"
fi
"$venv/bin/python" -c "import torch, workbench; print('bootstrap: torch', torch.__version__, \
'| cuda' if torch.cuda.is_available() else '| cpu')"

# Notebook outputs never reach a commit: nbstripout (the lab extra) as this clone's git filter
# for *.ipynb (.gitattributes), keeping cell ids. Skipped outside a git clone or without it.
if [ -x "$venv/bin/nbstripout" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  nbpy="$(cd "$venv/bin" && pwd)/python"
  git config filter.nbstripout.clean "'$nbpy' -m nbstripout --keep-id"
  git config filter.nbstripout.smudge cat
  git config filter.nbstripout.required true
  git config diff.ipynb.textconv "'$nbpy' -m nbstripout --keep-id -t"
  echo "bootstrap: nbstripout is the git filter of *.ipynb (outputs are stripped on git add)"
fi
