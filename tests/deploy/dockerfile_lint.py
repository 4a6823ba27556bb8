"""A Dockerfile parser and Docker's .dockerignore semantics, enough to check a build offline: which
files the build context holds, what each instruction copies from it, and the environment and build
arguments each stage's instructions run with."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str

    @property
    def flags(self) -> dict[str, str]:
        return {k: v for k, v in (f[2:].split("=", 1) for f in self.words() if f.startswith("--") and "=" in f)}

    def words(self) -> list[str]:
        text = self.args.strip()
        if text.startswith("["):
            return json.loads(text)
        return shlex.split(text, posix=True)

    def operands(self) -> list[str]:
        """The words after the --flags (for COPY/ADD: sources..., destination)."""
        rest = self.args.strip()
        while rest.startswith("--"):
            rest = rest.partition(" ")[2].lstrip()
        return json.loads(rest) if rest.startswith("[") else shlex.split(rest, posix=True)


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    out: list[Instruction] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comment inside a continued instruction
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf = ""
    return out


# Docker's default when no ENV sets PATH (the CUDA/Ubuntu base images keep it).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Stage name (or index) -> its instructions, FROM first."""
    out: dict[str, list[Instruction]] = {}
    name = None
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(out))
            out[name] = []
        if name is not None:
            out[name].append(ins)
    return out


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def stage_env(instructions: list[Instruction], stage: str) -> dict[str, str]:
    """The ENV a stage's instructions and its containers see: the parent stage's (FROM <stage>), then
    the stage's own ENV in order, `$VAR` expanded as Docker does."""
    all_stages = stages(instructions)
    parent = all_stages[stage][0].args.split()[0]
    env = stage_env(instructions, parent) if parent in all_stages else {"PATH": DEFAULT_PATH}
    for ins in all_stages[stage]:
        if ins.keyword == "ENV":
            for word in ins.words():
                key, sep, value = word.partition("=")
                assert sep, f"line {ins.line}: use ENV key=value"
                env[key] = _expand(value, env)
    return env


def stage_setting(instructions: list[Instruction], stage: str, keyword: str) -> Instruction | None:
    """The instruction that sets WORKDIR, ENTRYPOINT, SHELL... for a stage: its own last one, else its
    parent stage's; None if neither sets it (the base image's applies)."""
    all_stages = stages(instructions)
    own = [ins for ins in all_stages[stage] if ins.keyword == keyword]
    if own:
        return own[-1]
    parent = all_stages[stage][0].args.split()[0]
    return stage_setting(instructions, parent, keyword) if parent in all_stages else None


def stage_args(instructions: list[Instruction], stage: str, **build_args: str) -> dict[str, str]:
    """The build arguments a stage's RUN instructions see: its ARG defaults, replaced by the
    `--build-arg`s given for the ARGs it declares."""
    args = {}
    for ins in stages(instructions)[stage]:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name] = build_args.get(name, default)
    return args


def context_copies(instructions: list[Instruction]) -> list[tuple[int, str, str]]:
    """(line, source, destination) of every COPY/ADD from the build context (not --from a stage)."""
    out = []
    for ins in instructions:
        if ins.keyword in ("COPY", "ADD") and "from" not in ins.flags:
            *sources, dest = ins.operands()
            out += [(ins.line, src, dest) for src in sources]
    return out


def lay_out(instructions: list[Instruction], context: set[str], root: Path, into: Path, under: str = "/app/") -> None:
    """Copy the build-context files that COPY puts under `under` to the same place below `into`."""
    for _, src, dest in context_copies(instructions):
        if not dest.startswith(under):
            continue
        src, target_root = src.rstrip("/"), into / dest.lstrip("/")
        for f in context:
            if f == src:
                target = target_root
            elif f.startswith(src + "/"):
                target = target_root / f[len(src) + 1:]
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((root / f).read_bytes())


# ---------------------------------------------------------------- .dockerignore (moby patternmatcher)


def _pattern_regex(pattern: str) -> re.Pattern:
    """Go filepath.Match syntax plus `**`, as moby's patternmatcher compiles it."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


@dataclass
class DockerIgnore:
    patterns: list[tuple[bool, re.Pattern, str]]  # (exclusion?, regex, source text)

    @classmethod
    def parse(cls, text: str) -> "DockerIgnore":
        pats = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            clean = str(PurePosixPath("/" + line))[1:] or "."  # filepath.Clean, leading / dropped
            pats.append((negate, _pattern_regex(clean), line))
        return cls(pats)

    def excluded(self, path: str) -> bool:
        """Whether the context leaves `path` (relative, /-separated) out: the last pattern that matches
        the path or one of its parent directories decides."""
        parts = path.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        matched = False
        for negate, regex, _ in self.patterns:
            if any(regex.match(c) for c in candidates):
                matched = not negate
        return matched


def context_files(root: Path, ignore: DockerIgnore) -> set[str]:
    """Every regular file the build context would hold. Directories that are excluded and that no
    exception pattern reaches into are not walked (node_modules, .venv...)."""
    exceptions = [src for negate, _, src in ignore.patterns if negate]

    def reachable(rel_dir: str) -> bool:
        return any(src.startswith(rel_dir + "/") or src == rel_dir or src[:1] in "*?[" for src in exceptions)

    files = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not (ignore.excluded(rel + d) and not reachable(rel + d))]
        for f in filenames:
            path = Path(dirpath, f)
            if path.is_file() and not path.is_symlink() and not ignore.excluded(rel + f):
                files.add(rel + f)
    return files
