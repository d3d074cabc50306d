#!/usr/bin/env bash
# Shell helpers of the recipes: logging, stage selection and .done markers.

log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*" >&2
}

# stage_selected N: true when N lies within --stage .. --stop-stage.
stage_selected() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

# run_stage MARKER CMD...: run CMD unless MARKER exists; on success record CMD in MARKER.
# A failed or interrupted command leaves no marker, so the stage is redone next time.
run_stage() {
  local marker="$1"; shift
  if [ -f "$marker" ]; then
    log "skipping: $marker exists (delete it to redo this stage)"
    return 0
  fi
  log "running: $*"
  "$@"
  mkdir -p "$(dirname "$marker")"
  printf '%q ' "$@" > "$marker.tmp" && echo >> "$marker.tmp" && mv "$marker.tmp" "$marker"
}
