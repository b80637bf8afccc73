"""Run the code blocks of a Markdown document, so the docs cannot rot.

Which blocks run is said explicitly, by an HTML comment (invisible when rendered) on the
line just above the block's opening fence:

* ``<!-- doc: file PATH -->`` — the block is the content of ``PATH`` (relative to the
  document's scratch directory), written before the next ``run`` block.
* ``<!-- doc: run -->`` — the block runs: ``sh``/``bash``/``console`` blocks with ``sh -e``,
  ``python`` blocks with this interpreter. Shell blocks run like one terminal session: each
  starts in the directory where the previous one ended (``cd`` carries over; variables do
  not). Its exit status must be 0.
* ``<!-- doc: run expect="TEXT" -->`` — also, its output (stdout and stderr) must contain
  ``TEXT`` (several ``expect=`` may be given).
* ``<!-- doc: run until="TEXT" -->`` — the block is run again until its output contains
  ``TEXT`` (and exits 0), waiting for an event with the suite's DEADLINE: for a step that
  shows something that happens a moment later (metrics arriving, a plugin degrading).
* ``<!-- doc: run cwd="DIR" -->`` — the block starts in ``DIR`` of the scratch directory
  (``.``: its root) instead of where the previous block ended: a new story in the document.
* ``<!-- doc: skip REASON -->`` — not run, for the reason given (a reference with
  placeholders, a signature, a fragment; or run elsewhere, named in the reason).

Every ``python``, ``sh``, ``bash`` and ``console`` block of a checked document must carry
one of these (:func:`unmarked`), so a new example is run or explicitly excused. Blocks run
with ``PATH`` starting with this interpreter's ``bin`` (``arcade``, ``python``, ``pytest``)
and with the environment the test gives (``ARCADE_API``, ``ARCADE_TOKEN``, ``AGENT_ID``), in
a terminal 250 columns wide (``COLUMNS``), so tables print whole.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import DEADLINE, until_sync

__all__ = ["Block", "DocSession", "blocks", "unmarked"]

_FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^`\n]*)$")
_MARK = re.compile(r"^<!--\s*doc:\s*(?P<kind>file|run|skip)\b(?P<rest>.*?)-->\s*$")
_CHECKED = {"python", "sh", "bash", "console"}
_SHELLS = {"sh", "bash", "console"}


@dataclass
class Block:
    """One fenced code block and its marker."""

    line: int                     # 1-based line of the opening fence
    info: str                     # the fence's language
    text: str
    kind: str | None = None       # file, run, skip; None: no marker
    path: str = ""                # for file
    expect: list[str] = field(default_factory=list)
    until: str | None = None
    cwd: str | None = None

    def where(self, doc: Path) -> str:
        return f"{doc.name}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc`` with their markers, in order."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip().split(" ")[0]
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence))
        block = Block(i + 1, info, "\n".join(lines[i + 1:end]) + "\n")
        mark = _MARK.match(lines[i - 1].strip()) if i > 0 else None
        if mark:
            block.kind = mark["kind"]
            rest = mark["rest"].strip()
            if block.kind == "file":
                block.path = rest
            elif block.kind == "run":
                for key, value in re.findall(r'(expect|until|cwd)="([^"]*)"', rest):
                    if key == "expect":
                        block.expect.append(value)
                    elif key == "until":
                        block.until = value
                    else:
                        block.cwd = value
        found.append(block)
        i = end + 1
    return found


def unmarked(doc: Path) -> list[str]:
    """The runnable-looking blocks of ``doc`` that carry no marker (should be none)."""
    return [b.where(doc) for b in blocks(doc) if b.info in _CHECKED and b.kind is None]


class DocSession:
    """Runs a document's blocks in order in ``workdir``, like a reader at one terminal."""

    def __init__(self, doc: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.doc = doc
        self.workdir = workdir
        self.cwd = workdir
        bindir = str(Path(sys.executable).parent)
        self.env = {**os.environ, "COLUMNS": "250", **(env or {}),
                    "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        self.blocks = blocks(doc)
        workdir.mkdir(parents=True, exist_ok=True)

    def run(self, block: Block) -> str:
        """Write a ``file`` block, or run a ``run`` block; return its output."""
        if block.kind == "file":
            target = self.workdir / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            return ""
        assert block.kind == "run", block
        if block.cwd is not None:
            self.cwd = self.workdir / block.cwd
        where = block.where(self.doc)
        if block.until is None:
            code, output = self._execute(block)
        else:
            text = block.until
            last: list[tuple[int, str]] = []

            def shown() -> tuple[int, str] | None:
                last[:] = [self._execute(block)]
                return last[0] if last[0][0] == 0 and text in last[0][1] else None

            try:
                code, output = until_sync(shown, timeout=DEADLINE, interval=0.5,
                                          what=f"{text!r} in the output of {where}")
            except AssertionError as exc:
                code, output = last[0]
                raise AssertionError(f"{exc}\n--- last output (exit {code}) ---\n{output}"
                                     ) from None
        assert code == 0, f"{where} exited {code}:\n{block.text}\n--- output ---\n{output}"
        for text in block.expect:
            assert text in output, f"{where}: {text!r} not in the output:\n{output}"
        return output

    def _execute(self, block: Block) -> tuple[int, str]:
        if block.info == "python":
            args = [sys.executable, "-c", block.text]
        else:
            pwd_file = self.workdir / ".doc-pwd"
            script = f"trap 'pwd > {shlex.quote(str(pwd_file))}' EXIT\n{block.text}"
            args = ["sh", "-e", "-c", script]
        proc = subprocess.run(args, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=DEADLINE * 5, check=False)
        if block.info in _SHELLS and (self.workdir / ".doc-pwd").is_file():
            self.cwd = Path((self.workdir / ".doc-pwd").read_text().strip())
        return proc.returncode, proc.stdout + proc.stderr

    def run_all(self, *, stop_before: int | None = None, start: int = 0) -> None:
        """Run blocks ``start`` up to (not including) ``stop_before``; skipped and unmarked
        blocks are passed over."""
        for block in self.blocks[start:stop_before]:
            if block.kind in ("file", "run"):
                self.run(block)
