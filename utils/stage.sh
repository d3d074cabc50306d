#!/usr/bin/env bash
# Shell helpers of the recipes: logging, stage selection and .done markers.

# log MESSAGE: to stderr, with the time and the file:line that called log.
log() { _log "$@"; }
# The caller's caller is the line to name: log's, or run_stage's (in run.sh or egs/asr.sh).
_log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "${BASH_SOURCE[2]:-$0}"):${BASH_LINENO[1]}) $*" >&2
}

# stage_selected N: true when N lies within --stage .. --stop-stage. Stops the recipe when
# they are not integers (a test that fails on a bad operand would skip every stage, exit 0).
stage_selected() {
  if [[ ! "$stage" =~ ^-?[0-9]+$ || ! "$stop_stage" =~ ^-?[0-9]+$ ]]; then
    echo "$0: --stage and --stop-stage must be integers, not '$stage' and '$stop_stage'" >&2
    exit 1
  fi
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

# run_stage MARKER CMD...: run CMD unless MARKER exists; on success record CMD in MARKER.
# A failed or interrupted command leaves no marker, so the stage is redone next time.
run_stage() {
  local marker="$1"; shift
  if [ -f "$marker" ]; then
    _log "skipping: $marker exists (delete it to redo this stage)"
    return 0
  fi
  _log "running: $*"
  "$@"
  mkdir -p "$(dirname "$marker")"
  printf '%q ' "$@" > "$marker.tmp" && echo >> "$marker.tmp" && mv "$marker.tmp" "$marker"
}
