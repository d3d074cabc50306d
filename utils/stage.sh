#!/usr/bin/env bash
# Shell helpers of the recipes: logging, stage selection and .done markers.

# log MESSAGE: to stderr, with the time and the file:line that called log.
log() { _log "$@"; }
# The caller's caller is the line to name: log's, or run_stage's (in run.sh or egs/asr.sh).
_log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "${BASH_SOURCE[2]:-$0}"):${BASH_LINENO[1]}) $*" >&2
}

# check_stages FIRST LAST: stop the recipe unless --stage .. --stop-stage are integers that select at
# least one of its stages FIRST..LAST (a bad operand, a reversed or an empty range would run
# nothing and exit 0).
check_stages() {
  if [[ ! "$stage" =~ ^-?[0-9]+$ || ! "$stop_stage" =~ ^-?[0-9]+$ ]]; then
    echo "$0: --stage and --stop-stage must be integers, not '$stage' and '$stop_stage'" >&2
    exit 1
  fi
  if [ "$stage" -gt "$stop_stage" ] || [ "$stop_stage" -lt "$1" ] || [ "$stage" -gt "$2" ]; then
    echo "$0: --stage $stage --stop-stage $stop_stage selects no stage (the stages are $1 to $2)" >&2
    exit 1
  fi
}

# stage_selected N: true when N lies within --stage .. --stop-stage (checked by check_stages).
stage_selected() {
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
