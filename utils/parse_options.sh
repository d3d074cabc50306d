#!/usr/bin/env bash
# Parse --name value / --name=value options into shell variables, Kaldi style.
# Source it after declaring defaults: `stage=1; . ../../utils/parse_options.sh`.
# Option --foo-bar sets variable foo_bar, which must already exist; --help prints the
# comment lines of the calling script's header and the options with their values.

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
      echo "Options (current values):"
      grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^#]*)#(.*)$/  --\1 \2  #\3/' | sed 's/_/-/g'
      exit 0 ;;
    --*=*) name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*)
      name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $name needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  var="${name#--}"; var="${var//-/_}"
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$var" '%s' "$value"
done
