"""An exec plugin for tests: a POSIX ``sh`` script speaking Arcade's JSON line protocol,
shipped in a real wheel (:func:`arcade_core.building.build_exec_wheel`).

The script's behaviour comes from its config (``mode``): ``normal`` says hello (hooks:
``notify``; ``collect`` too in mode ``collect``, answering one ``test.collected``), then
pushes ``test.value`` (the config's ``value``, labelled with its pid) every
``interval`` seconds from a background loop, answers ``notify`` calls, and takes later
``config`` messages without restarting; ``silent`` never says hello; ``hang`` says hello and
then nothing; ``crash`` says hello and exits with 3 a moment later; ``garbage`` writes two
lines that are not protocol messages after its hello, then behaves normally. Every config
line it receives is echoed to stderr (``config: <line>``).
"""

from __future__ import annotations

from pathlib import Path

from arcade_core.building import build_exec_wheel

__all__ = ["SCRIPT", "exec_wheel"]

SCRIPT = r'''#!/bin/sh
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
field() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | tr -d '"'; }
pusher() {
  while :; do
    value=$(cat "$state/value" 2>/dev/null)
    every=$(cat "$state/interval" 2>/dev/null)
    printf '{"type":"metric","data":{"name":"test.value","value":%s,"labels":{"pid":"%s"}}}\n' \
      "${value:-0}" "$$"
    sleep "${every:-1}"
  done
}
echo "test plugin starting" >&2
started=
while IFS= read -r line; do
  case "$line" in
    *'"type":"config"'*)
      echo "config: $line" >&2
      field "$line" value > "$state/value.new" && mv "$state/value.new" "$state/value"
      field "$line" interval > "$state/interval.new" && mv "$state/interval.new" "$state/interval"
      if [ -z "$started" ]; then
        started=1
        mode=$(field "$line" mode)
        hooks='"notify"'
        [ "$mode" = collect ] && hooks='"notify","collect"'
        [ "$mode" = silent ] || printf '{"type":"hello","protocol":1,"hooks":[%s]}\n' "$hooks"
        case "$mode" in
          hang|silent) ;;
          crash) sleep 0.2; echo "crashing now" >&2; exit 3 ;;
          garbage) printf 'this is not json\n{"type":"bogus"}\n'; pusher & ;;
          *) pusher & ;;
        esac
      fi
      ;;
    *'"type":"call"'*)
      id=$(printf '%s' "$line" | sed -n 's/^{"type":"call","id":\([0-9]*\).*/\1/p')
      case "$line" in
        *'"hook":"collect"'*)
          printf '{"type":"result","id":%s,"data":[{"name":"test.collected","value":%s}]}\n' \
            "$id" "$(cat "$state/value")" ;;
        *)
          echo "notify call $id" >&2
          printf '{"type":"log","level":"info","message":"notified %s"}\n' "$id"
          printf '{"type":"result","id":%s,"data":null}\n' "$id" ;;
      esac
      ;;
    *'"type":"shutdown"'*) break ;;
  esac
done
'''


def exec_wheel(directory: Path, name: str = "exec-test", version: str = "1.0.0", *,
               script: str = SCRIPT, interval: float | None = None) -> Path:
    """The wheel of the test exec plugin (``bin/<name>``)."""
    manifest: dict[str, object] = {"exec": name}
    if interval is not None:
        manifest["interval"] = interval
    source = directory / "src" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(script)
    return build_exec_wheel(name=name, version=version, executable=source, manifest=manifest,
                            out_dir=directory)
