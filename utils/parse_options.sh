#!/usr/bin/env bash
# Parse --name value / --name=value options into shell variables, Kaldi style.
# Source it after declaring defaults: `stage=1; . ../../utils/parse_options.sh`.
# Option --foo-bar sets variable foo_bar, which must already exist; --help prints the
# comment lines of the calling script's header and the options with their current values.
# Every recipe gets the same checks, each a one-line error and exit status 1: an unknown
# option, an argument that is not an option, a non-integer value for an option whose
# default is an integer (--stage, --stop-stage, --num-jobs, ...), and a --tag that is not a
# plain name (it names the folder exp/<tag>).

_po_die() { echo "$0: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      # the recipe has already cd'ed to its own folder, where a relative $0 may not lead
      _po_script="$0"; [ -f "$_po_script" ] || _po_script="$(basename "$0")"
      sed -n '2,/^$/s/^# \{0,1\}//p' "$_po_script"
      echo "Options (current values):"
      # Options are the commented declarations `name=value  # what` of the recipe, and
      # `: "${name:=value}"  # what` of a shared file that sources this one (egs/asr.sh). Values
      # are printed as they are now, options with dashes.
      { sed -nE 's/^([a-z_]+)=[^#]*#(.*)$/\1\t\2/p' "$_po_script"
        if [ "${BASH_SOURCE[1]:-}" ] && [ "${BASH_SOURCE[1]}" != "$_po_script" ]; then
          sed -nE 's/^: "\$\{([a-z_]+):=[^#]*#(.*)$/\1\t\2/p' "${BASH_SOURCE[1]}"
        fi; } | while IFS=$'\t' read -r _po_name _po_what; do
          _po_value="${!_po_name}"
          [[ -z "$_po_value" || "$_po_value" =~ [[:space:]] ]] && _po_value="\"$_po_value\""
          printf '  --%s %s #%s\n' "${_po_name//_/-}" "$_po_value" "$_po_what"
        done
      exit 0 ;;
    --*=*) name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*)
      name="$1"
      if [ $# -lt 2 ]; then _po_die "option $name needs a value"; fi
      value="$2"; shift 2 ;;
    *) _po_die "unexpected argument '$1': options are --name value (see $0 --help)" ;;
  esac
  var="${name#--}"; var="${var//-/_}"
  if [[ ! "$var" =~ ^[a-z_][a-z0-9_]*$ ]] || ! declare -p "$var" >/dev/null 2>&1; then
    _po_die "unknown option $name (see $0 --help)"
  fi
  if [[ "${!var}" =~ ^-?[0-9]+$ ]] && [[ ! "$value" =~ ^-?[0-9]+$ ]]; then
    _po_die "option $name takes an integer, not '$value'"
  fi
  printf -v "$var" '%s' "$value"
done

if declare -p tag >/dev/null 2>&1; then
  if [[ ! "$tag" =~ ^[A-Za-z0-9._-]+$ ]] || [ "$tag" = . ] || [ "$tag" = .. ]; then
    _po_die "--tag '$tag' must be a plain name of letters, digits, '.', '_' and '-' (it names exp/<tag>)"
  fi
fi
unset -f _po_die
