"""The `spark` command reference, docs/cli.md, written from the CLI's own argument parser.

    python -m sparkchain.cli.docs_gen                      # Markdown on stdout
    python -m sparkchain.cli.docs_gen --output docs/cli.md # what `make docs` runs

The page is formatted here rather than by argparse's HelpFormatter, whose wrapping follows
the terminal width ($COLUMNS) and whose layout has changed between Python versions: the
same same parser always gives the same page. The parser is built with every SPARK_* variable
unset and HOME set to a placeholder that the page shows as `~`, so a default computed from
the environment or the home directory reads the same on every machine (`~/.spark/...`,
never `/home/someone/.spark/...`).
tests/test_docs.py fails when docs/cli.md differs from what this module writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sparkchain.cli import output
from sparkchain.cli.main import build_parser

WIDTH = 100  # Markdown paragraphs are wrapped here; nothing depends on the terminal
ENV_PREFIX = "SPARK_"  # variables the CLI reads ($SPARK_HOME, $SPARK_NODE, ...)
# HOME while the parser is built; written as `~` on the page. Not `~` itself: Path.home()
# refuses a HOME that does not expand.
HOME_PLACEHOLDER = "/home-of-the-reader"


@dataclass(frozen=True, slots=True)
class Command:
    """One parser of the tree: `spark`, `spark node`, `spark node start`, ..."""

    path: tuple[str, ...]  # ("node", "start")
    parser: argparse.ArgumentParser
    summary: str  # the one-line help its parent lists it with

    @property
    def name(self) -> str:
        return " ".join(("spark", *self.path))


def commands(parser: argparse.ArgumentParser) -> Iterator[Command]:
    """Every command below `parser`, parents before their subcommands, in parser order."""
    yield from _walk(parser, ())


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[Command]:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
        seen: set[int] = set()
        for name, child in action.choices.items():
            if id(child) in seen:  # an alias of a command already listed
                continue
            seen.add(id(child))
            yield Command((*path, name), child, summaries.get(name, ""))
            yield from _walk(child, (*path, name))


# ---------------------------------------------------------------------------- usage


def usage(command: Command) -> str:
    """`spark register [--url URL] ... identifier`: optionals, then positionals, as
    argparse orders them; `-h` is left out (every command has it)."""
    parser = command.parser
    groups = {id(a): g for g in parser._mutually_exclusive_groups for a in g._group_actions}
    optional_parts: list[str] = []
    positional_parts: list[str] = []
    done: set[int] = set()
    for action in _documented(parser):
        if id(action) in done:
            continue
        group = groups.get(id(action))
        if group is not None:
            members = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
            done.update(id(a) for a in members)
            inner = " | ".join(_option_usage(a) for a in members)
            optional_parts.append(f"({inner})" if group.required else f"[{inner}]")
        elif action.option_strings:
            text = _option_usage(action)
            optional_parts.append(text if action.required else f"[{text}]")
        else:
            positional_parts.append(_positional_usage(action))
    return _wrap_usage(command.name, [*optional_parts, *positional_parts])


def _wrap_usage(name: str, parts: list[str]) -> str:
    """One line per WIDTH, never breaking inside a part (`[--key NAME | --key-file PATH]`);
    continuation lines are indented under the first argument, as argparse does."""
    indent = " " * (len(name) + 1)
    lines = [name]
    for part in parts:
        if len(lines[-1]) + 1 + len(part) > WIDTH and lines[-1].strip() != "":
            lines.append(indent + part)
        else:
            lines[-1] += " " + part
    return "\n".join(lines)


def _documented(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and a.help is not argparse.SUPPRESS
    ]


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _option_usage(action: argparse.Action) -> str:
    flag = action.option_strings[0]
    if action.nargs == 0:
        return flag
    return f"{flag} {_nargs_usage(action)}"


def _positional_usage(action: argparse.Action) -> str:
    if isinstance(action, argparse._SubParsersAction):
        return f"{_metavar(action)} ..."
    return _nargs_usage(action)


def _nargs_usage(action: argparse.Action) -> str:
    metavar = _metavar(action)
    if action.nargs == "?":
        return f"[{metavar}]"
    if action.nargs == "*":
        return f"[{metavar} ...]"
    if action.nargs == "+":
        return f"{metavar} [{metavar} ...]"
    if isinstance(action.nargs, int) and action.nargs > 1:
        return " ".join([metavar] * action.nargs)
    return metavar


# ---------------------------------------------------------------------------- text


@contextlib.contextmanager
def neutral_environment() -> Iterator[None]:
    """No SPARK_* variable and HOME=HOME_PLACEHOLDER while the parser is built (its defaults
    are computed then), and the caller's environment back afterwards."""
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            del os.environ[name]
        os.environ["HOME"] = HOME_PLACEHOLDER
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _escape(text: str) -> str:
    """Help text as literal Markdown: a `*`, `<` or backquote in it must not start
    formatting. An underscore inside a word (SPARK_NODE) and brackets that cannot form a
    link (`[node].log_level`) are left as they are, so the file stays readable."""
    for char in "\\`*<>":
        text = text.replace(char, "\\" + char)
    text = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)
    return text.replace("](", "\\](").replace("][", "\\]\\[")


def _paragraph(text: str) -> str:
    """A prose paragraph: argparse collapses whitespace in these, and so do we."""
    return _fill(_escape(" ".join(text.split())), "")


_BLOCK_START = re.compile(r"[-+#]|\d+[.)]")


def _fill(text: str, indent: str) -> str:
    """Wrap Markdown at WIDTH; a continuation line that would start a list or a heading
    gets its first character escaped."""
    lines = textwrap.wrap(
        text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )
    for i in range(1, len(lines)):
        body = lines[i][len(indent) :]
        if _BLOCK_START.match(body):
            lines[i] = indent + "\\" + body
    return "\n".join(lines)


def _block(text: str) -> str:
    """Text a raw formatter prints as written: kept verbatim in a fenced block."""
    body = textwrap.dedent(text).strip("\n")
    return f"```text\n{body}\n```"


def _prose(text: str, parser: argparse.ArgumentParser) -> str:
    """A description or epilog: kept as laid out when the parser's formatter keeps it so
    and it has lines of its own, else a paragraph."""
    formatter = parser.formatter_class
    raw = isinstance(formatter, type) and issubclass(
        formatter, argparse.RawDescriptionHelpFormatter
    )
    return _block(text) if raw and "\n" in text.strip() else _paragraph(text)


def _help_text(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own expansion: %(default)s, %(prog)s, ...
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        params["prog"] = prog
        if params.get("choices") is not None:
            params["choices"] = ", ".join(str(c) for c in params["choices"])
        text = text % params
    return text


def _default(action: argparse.Action) -> str | None:
    """The default worth telling: not for flags, repeatable options that start empty, or
    options that are simply absent unless given."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.required:
        return None
    if action.nargs == 0 or default == []:
        return None
    if isinstance(default, str | Path):
        shown = str(default)
        return f"`{shown}`" if shown else '`""` (empty)'
    return f"`{default!r}`"


def _option_entry(action: argparse.Action, command: Command, exclusive: dict[int, str]) -> str:
    if action.option_strings:
        names = ", ".join(f"`{_option_usage_with(flag, action)}`" for flag in action.option_strings)
    else:
        names = f"`{_positional_usage(action)}`"
    notes: list[str] = []
    help_text = _help_text(action, command.name)
    if help_text:
        notes.append(_escape(" ".join(help_text.split())))
    if action.option_strings and action.required:
        notes.append("Required.")
    if isinstance(action, argparse._AppendAction) and "repeatable" not in help_text.lower():
        notes.append("Repeatable.")
    if action.choices is not None and action.metavar is not None:  # else they are in the usage
        notes.append("One of " + ", ".join(f"`{c}`" for c in action.choices) + ".")
    default = _default(action)
    if default is not None:
        notes.append(f"Default: {default}.")
    if id(action) in exclusive:
        notes.append(f"Not together with {exclusive[id(action)]}.")
    text = " ".join(_sentence(n) for n in notes)
    return _fill(f"- {names}" + (f": {text}" if text else ""), "  ")


def _option_usage_with(flag: str, action: argparse.Action) -> str:
    return flag if action.nargs == 0 else f"{flag} {_nargs_usage(action)}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", ":")) else text + "."


def _exclusive_partners(parser: argparse.ArgumentParser) -> dict[int, str]:
    partners: dict[int, str] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            others = [a.option_strings[0] for a in group._group_actions if a is not action]
            partners[id(action)] = ", ".join(f"`{o}`" for o in others)
    return partners


# ---------------------------------------------------------------------------- page


def _anchor(command: Command) -> str:
    return "-".join(command.name.split())


def _section(command: Command) -> list[str]:
    parser = command.parser
    level = "#" * min(len(command.path) + 1, 4)
    lines = [f"{level} `{command.name}`", ""]
    if command.summary:
        # argparse's one-line helps start in lower case; here it opens a section
        lines += [_paragraph(_sentence(command.summary[:1].upper() + command.summary[1:])), ""]
    lines += ["```text", usage(command), "```", ""]
    description = parser.description or ""
    if description.strip() and " ".join(description.split()) != command.summary:
        lines += [_prose(description, parser), ""]
    actions = _documented(parser)
    exclusive = _exclusive_partners(parser)
    positionals = [
        a for a in actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]
    optionals = [a for a in actions if a.option_strings]
    if positionals:
        lines += ["Arguments:", ""]
        lines += [_option_entry(a, command, exclusive) for a in positionals]
        lines.append("")
    if optionals:
        lines += ["Options:", ""]
        lines += [_option_entry(a, command, exclusive) for a in optionals]
        lines.append("")
    subcommands = [c for c in commands(parser) if len(c.path) == len(command.path) + 1]
    if subcommands:
        lines += ["Subcommands:", ""]
        lines += [f"- [`{c.name}`](#{_anchor(c)}): {_escape(c.summary)}" for c in subcommands]
        lines.append("")
    if parser.epilog:
        lines += [_prose(parser.epilog, parser), ""]
    return lines


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """docs/cli.md as text."""
    if parser is None:
        with neutral_environment():
            parser = build_parser()
    everything = list(commands(parser))
    lines = [
        "# `spark` command reference",
        "",
        "<!-- Generated from the argument parser (cli/main.py) by `make docs`; do not edit. -->",
        "",
    ]
    if parser.description:
        lines += [_paragraph(_sentence(parser.description)), ""]
    top = Command((), parser, "")
    lines += ["```text", usage(top), "```", ""]
    lines += [
        "Every command also takes `-h` / `--help`. Errors are one line on stderr,",
        "`error: CODE: message`, and the exit status says what kind of failure it was:",
        "",
        f"- {output.EXIT_OK}: done",
        f"- {output.EXIT_ERROR}: refused or failed (a rule of the ledger, not found, a bad key "
        "file, ...)",
        f"- {output.EXIT_USAGE}: bad command line (argparse, or an INVALID_ARGUMENT error)",
        f"- {output.EXIT_UNAVAILABLE}: UNAVAILABLE: the node could not be reached, or a ledger "
        "is in use by a running node",
        "",
        "## Commands",
        "",
    ]
    for command in everything:
        indent = "  " * (len(command.path) - 1)
        lines.append(
            f"{indent}- [`{command.name}`](#{_anchor(command)}): {_escape(command.summary)}"
        )
    lines.append("")
    for command in everything:
        lines += _section(command)
    page = "\n".join(lines).rstrip("\n") + "\n"
    return page.replace(HOME_PLACEHOLDER, "~")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(
        prog="python -m sparkchain.cli.docs_gen",
        description="write the spark command reference (Markdown) from the CLI's parser",
    )
    arguments.add_argument(
        "--output", type=Path, metavar="PATH", help="file to write (default: stdout)"
    )
    args = arguments.parse_args(argv)
    text = render()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
