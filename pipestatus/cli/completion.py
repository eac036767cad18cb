"""Shell completion for bash, zsh and fish, written from the argparse definition itself (so a
new option or command completes with no change here): subcommands with their summaries, each
command's options with their help, the choices of options that have them, files for ``-c``,
and the names of the configured pipelines for ``NAME`` arguments (asked of
``pipestatus completion --names``, which reads only the configuration file).

Pure: :func:`describe` reads a parser, :func:`script` writes a shell's script.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Final

import attrs

__all__ = ["SHELLS", "Command", "Option", "describe", "script"]


@attrs.frozen
class Option:
    """One option: its flags, its help, whether it takes a value, and what that value is."""

    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()
    files: bool = False


@attrs.frozen
class Command:
    """One subcommand: its name, summary, options and positional argument (if any): ``names``
    (configured pipelines), ``files``, or a list of ``choices``."""

    name: str
    summary: str
    options: tuple[Option, ...]
    positional: str | None = None  # "names", "files" or "choices"
    many: bool = False
    choices: tuple[str, ...] = ()


_FILE_METAVARS: Final = frozenset({"FILE", "PATH"})


def _choices(action: argparse.Action) -> tuple[str, ...]:
    if action.choices is not None:
        return tuple(str(choice) for choice in action.choices)
    return tuple(getattr(action.type, "choices", ()))


def _subparsers(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError("the parser has no subcommands")


def describe(parser: argparse.ArgumentParser) -> list[Command]:
    """Every subcommand of ``parser`` as completion needs it."""
    sub = _subparsers(parser)
    summaries = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    commands = []
    for name, command in sub.choices.items():
        options = []
        positional: str | None = None
        many = False
        choices: tuple[str, ...] = ()
        for action in command._actions:
            if action.option_strings:
                options.append(
                    Option(
                        flags=tuple(action.option_strings),
                        help=(action.help or "").split("(default")[0].strip(),
                        takes_value=action.nargs != 0,
                        choices=_choices(action),
                        files=action.metavar in _FILE_METAVARS,
                    )
                )
            elif action.dest in ("name", "names"):
                positional, many = "names", action.nargs == "*"
            elif action.metavar in _FILE_METAVARS:
                positional = "files"
            elif _choices(action):
                positional, choices = "choices", _choices(action)
        commands.append(
            Command(
                name=name,
                summary=summaries.get(name, ""),
                options=tuple(options),
                positional=positional,
                many=many,
                choices=choices,
            )
        )
    return commands


# --- bash -----------------------------------------------------------------------------------


def _bash(commands: Sequence[Command]) -> str:
    names = " ".join(command.name for command in commands)
    values, opts, wants = [], [], []
    for command in commands:
        flags = " ".join(flag for option in command.options for flag in option.flags)
        opts.append(f'        {command.name}) opts="{flags}" ;;')
        for option in command.options:
            if not option.takes_value:
                continue
            pattern = "|".join(f"{command.name}:{flag}" for flag in option.flags)
            if option.files:
                reply = 'COMPREPLY=($(compgen -f -- "$cur"))'
            else:
                reply = f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))'
            values.append(f"        {pattern}) {reply}; return ;;")
        if command.positional == "names":
            wants.append(f"        {command.name}) _pipestatus_names ;;")
        elif command.positional == "files":
            wants.append(f'        {command.name}) COMPREPLY=($(compgen -f -- "$cur")) ;;')
        elif command.positional == "choices":
            words = " ".join(command.choices)
            wants.append(
                f'        {command.name}) COMPREPLY=($(compgen -W "{words}" -- "$cur")) ;;'
            )
    return f"""\
# bash completion for pipestatus (written by `pipestatus completion bash`)
_pipestatus_names() {{
    local names
    if [[ -n "$config" ]]; then
        names="$(pipestatus completion --names -c "$config" 2>/dev/null)"
    else
        names="$(pipestatus completion --names 2>/dev/null)"
    fi
    local IFS=$'\\n'
    COMPREPLY=($(compgen -W "$names" -- "$cur"))
}}

_pipestatus() {{
    local cur prev cmd="" config="" opts="" i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -c|--config) config="${{COMP_WORDS[i+1]}}" ;;
            -*) ;;
            *) [[ -z "$cmd" ]] && cmd="${{COMP_WORDS[i]}}" ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "{names} --version --help" -- "$cur"))
        return
    fi
    case "$cmd:$prev" in
{chr(10).join(values)}
    esac
    case "$cmd" in
{chr(10).join(opts)}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case "$cmd" in
{chr(10).join(wants)}
    esac
}}
complete -F _pipestatus pipestatus
"""


# --- zsh --------------------------------------------------------------------------------------


def _zq(text: str) -> str:
    """``text`` for inside a single-quoted zsh ``_arguments`` spec."""
    for old, new in (("\\", "\\\\"), ("[", "\\["), ("]", "\\]"), (":", "\\:"), ("'", "'\\''")):
        text = text.replace(old, new)
    return text


def _zsh_option(option: Option) -> str:
    value = ""
    if option.takes_value:
        if option.files:
            value = ":file:_files"
        elif option.choices:
            value = f":value:({' '.join(option.choices)})"
        else:
            value = ":value: "
    help_text = f"[{_zq(option.help)}]"
    if len(option.flags) == 1:
        return f"'{option.flags[0]}{help_text}{value}'"
    exclusive = " ".join(option.flags)
    return f"'({exclusive})'{{{','.join(option.flags)}}}'{help_text}{value}'"


def _zsh(commands: Sequence[Command]) -> str:
    quoted = [(command.name, command.summary.replace("'", "'\\''")) for command in commands]
    described = "\n".join(f"                '{name}:{summary}'" for name, summary in quoted)
    cases = []
    for command in commands:
        specs = [_zsh_option(option) for option in command.options]
        if command.positional:
            action = {
                "names": "_pipestatus_names",
                "files": "_files",
                "choices": f"({' '.join(command.choices)})",
            }[command.positional]
            specs.append(f"'{'*' if command.many else '1'}:{command.positional}:{action}'")
        body = " \\\n                ".join(specs)
        cases.append(f"            {command.name})\n                _arguments {body} ;;")
    return f"""\
#compdef pipestatus
# zsh completion for pipestatus (written by `pipestatus completion zsh`)
_pipestatus_names() {{
    local -a names config
    local i
    for (( i = 1; i < $#words; i++ )); do
        [[ $words[i] == (-c|--config) ]] && config=(-c "$words[i+1]")
    done
    names=(${{(f)"$(pipestatus completion --names $config 2>/dev/null)"}})
    compadd -a names
}}

_pipestatus() {{
    local curcontext="$curcontext" state line
    typeset -A opt_args
    _arguments -C \\
        '(- *)--version[show the version]' \\
        '(- *)'{{-h,--help}}'[show the help]' \\
        '1: :->command' \\
        '*:: :->args'
    case $state in
        command)
            local -a commands
            commands=(
{described}
            )
            _describe -t commands 'pipestatus command' commands ;;
        args)
            case $words[1] in
{chr(10).join(cases)}
            esac ;;
    esac
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _pipestatus "$@"
else
    compdef _pipestatus pipestatus
fi
"""


# --- fish -------------------------------------------------------------------------------------


def _fq(text: str) -> str:
    """``text`` as a single-quoted fish string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(commands: Sequence[Command]) -> str:
    lines = [
        "# fish completion for pipestatus (written by `pipestatus completion fish`)",
        "function __pipestatus_names",
        "    set -l tokens (commandline -opc)",
        "    set -l config",
        "    for i in (seq (count $tokens))",
        "        if contains -- $tokens[$i] -c --config; and test $i -lt (count $tokens)",
        "            set config -c $tokens[(math $i + 1)]",
        "        end",
        "    end",
        "    pipestatus completion --names $config 2>/dev/null",
        "end",
        "",
        "complete -c pipestatus -f",
        "complete -c pipestatus -n __fish_use_subcommand -l version -d 'show the version'",
    ]
    for command in commands:
        lines.append(
            f"complete -c pipestatus -n __fish_use_subcommand -a {command.name}"
            f" -d {_fq(command.summary)}"
        )
    for command in commands:
        seen = f"-n '__fish_seen_subcommand_from {command.name}'"
        for option in command.options:
            parts = [f"complete -c pipestatus {seen}"]
            for flag in option.flags:
                parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            if option.takes_value:
                if option.files:
                    parts.append("-r -F")
                elif option.choices:
                    parts.append(f"-x -a {_fq(' '.join(option.choices))}")
                else:
                    parts.append("-x")
            parts.append(f"-d {_fq(option.help)}")
            lines.append(" ".join(parts))
        if command.positional == "names":
            lines.append(f"complete -c pipestatus {seen} -a '(__pipestatus_names)'")
        elif command.positional == "files":
            lines.append(f"complete -c pipestatus {seen} -F")
        elif command.positional == "choices":
            lines.append(f"complete -c pipestatus {seen} -a {_fq(' '.join(command.choices))}")
    return "\n".join(lines) + "\n"


#: Each shell's script writer.
SHELLS: Final[dict[str, Callable[[Sequence[Command]], str]]] = {
    "bash": _bash,
    "zsh": _zsh,
    "fish": _fish,
}


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of ``shell`` for ``parser``."""
    return SHELLS[shell](describe(parser))
