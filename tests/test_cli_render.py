"""The command's renderers, pure functions from the model to rich renderables, rendered with
rich's recording console at 80 and 160 columns: every column starts at the same display cell on
every row whatever script a name is written in, nothing a vendor sends is read as markup, and
colour follows --color, NO_COLOR and TERM."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from rich.cells import cell_len
from rich.console import Console, RenderableType

from pipestatus import Client, Job, Run, Stage, Status
from pipestatus.cli.config import Followed
from pipestatus.cli.render import (
    COLUMNS,
    PROBLEM,
    Row,
    change_line,
    layout,
    live_frame,
    make_row,
    status_table,
)
from pipestatus.cli.screen import can_redraw, make_console, use_color
from pipestatus.cli.tree import run_tree
from pipestatus.errors import AuthError
from pipestatus.model import Change, ChangeKind
from pipestatus.vendors import REGISTRY

NOW = datetime(2025, 5, 17, 12, 0, tzinfo=UTC)
CJK = "后端构建流水线"
EMOJI = "🚀 发布 deploy"
VENDORS = list(REGISTRY)


def item(label: str, vendor: str = VENDORS[0], n: int = 1) -> Followed:
    spec = REGISTRY[vendor]
    target = Client().yunxiao("https://flow.example", token="t").target(str(n))
    return Followed(
        label=label,
        account=vendor,
        vendor=vendor,
        ids=tuple((name, str(n)) for name in spec.id_names),
        target=target,
        home="https://flow.example",
    )


def a_run(
    status: Status = Status.RUNNING,
    *,
    stage: str = "build",
    job: str = "compile",
    ref: str = "main",
    number: int | None = 7,
) -> Run:
    jobs = (
        Job(
            id="j1",
            name=job,
            status=status,
            raw_status=status.value,
            started_at=NOW - timedelta(minutes=3),
            url="https://ci.example/job/1",
        ),
    )
    stages = (
        Stage(
            id="s1",
            name=stage,
            order=0,
            status=status,
            raw_status=status.value,
            started_at=NOW - timedelta(minutes=3),
            jobs=jobs,
        ),
    )
    return Run(
        vendor="x",
        pipeline_id="1",
        run_id="r7",
        number=number,
        status=status,
        raw_status=status.value,
        started_at=NOW - timedelta(minutes=3),
        finished_at=NOW if status.is_terminal else None,
        ref=ref,
        sha="0123456789abcdef",
        trigger="manual",
        stages=stages,
    )


def rows() -> list[Row]:
    return [
        make_row(item("plain"), a_run(Status.SUCCESS), NOW),
        make_row(item(CJK, VENDORS[1]), a_run(Status.FAILED, stage="测试阶段", ref="发布/v2"), NOW),
        make_row(item(EMOJI, VENDORS[2]), a_run(stage="✨ lint", ref="feature/✨"), NOW),
        make_row(item("unread", VENDORS[2]), AuthError(status=401, vendor="x"), NOW),
        make_row(item("not yet", VENDORS[0]), None, NOW),
    ]


def render(renderable: RenderableType, width: int, *, color: bool = False) -> list[str]:
    console = Console(
        record=True,
        width=width,
        file=io.StringIO(),
        color_system="standard" if color else None,
        markup=False,
        highlight=False,
        emoji=False,
    )
    console.print(renderable)
    return console.export_text().splitlines()


def by_cell(line: str) -> dict[int, str]:
    """Each character of ``line`` at the display cell it starts at."""
    cells: dict[int, str] = {}
    at = 0
    for char in line:
        cells[at] = char
        at += cell_len(char)
    return cells


def starts(header: str, titles: list[str]) -> list[int]:
    """The display cell each title (a whole word) starts at in the header line."""
    found = []
    for title in titles:
        match = re.search(rf"(?<!\S){re.escape(title)}(?!\S)", header)
        assert match is not None, (title, header)
        found.append(cell_len(header[: match.start()]))
    return found


@pytest.mark.parametrize("width", [80, 160])
def test_every_column_starts_at_one_cell_on_every_row(width: int) -> None:
    """At 80 and 160 columns, with CJK, emoji and ASCII names, every cell of a column starts
    at the display cell its header starts at, and no line is wider than the screen."""
    shown = rows()
    laid = layout(shown, width=width)
    lines = render(status_table(shown, width=width), width)
    header, body = lines[0], lines[1:]
    assert len(body) == len(shown)
    columns = [column for column, _ in laid]
    at = starts(header, [column.header for column in columns])
    for line, row in zip(body, shown, strict=True):
        assert cell_len(line) <= width, line
        cells = by_cell(line)
        for column, cell in zip(columns, at, strict=True):
            text = row.cells[column.key]
            if text:
                assert cells.get(cell) == text[0], (column.key, line)
                assert cells.get(cell - 1, " ") == " ", (column.key, line)


def test_a_wide_screen_has_every_column_and_a_narrow_one_the_core() -> None:
    """At 160 columns every detail column is shown; at 80 the six core columns (and the
    problem of an unreadable row) stay and the details that do not fit are left out."""
    shown = rows()
    wide = [column.key for column, _ in layout(shown, width=160)]
    assert wide == [column.key for column in (*COLUMNS, PROBLEM)]
    narrow = [column.key for column, _ in layout(shown, width=80)]
    assert narrow[:6] == [column.key for column in COLUMNS if not column.detail]
    assert narrow[-1] == PROBLEM.key
    assert len(narrow) < len(wide)


def test_off_a_screen_the_table_keeps_the_core_columns_unless_wide() -> None:
    """With no width (output that is not a terminal) the table has the six core columns, none
    cut; --wide adds every detail column."""
    shown = rows()
    core = [column.key for column, _ in layout(shown, width=None)]
    assert core == [column.key for column in COLUMNS if not column.detail] + [PROBLEM.key]
    assert len(layout(shown, width=None, wide=True)) == len(COLUMNS) + 1
    lines = render(status_table(shown, width=None), 1000)
    assert CJK in lines[2]


def test_a_long_name_is_cut_with_an_ellipsis_on_a_narrow_screen() -> None:
    """A pipeline name too long for 80 columns is cut to fit, ending in an ellipsis, and the
    columns after it still line up."""
    shown = [make_row(item(CJK * 8), a_run(), NOW), make_row(item("b"), a_run(), NOW)]
    lines = render(status_table(shown, width=80), 80)
    assert all(cell_len(line) <= 80 for line in lines)
    assert "…" in lines[1]
    status_at = starts(lines[0], ["STATUS"])[0]
    assert by_cell(lines[1])[status_at] == "r" == by_cell(lines[2])[status_at]


def test_vendor_strings_are_never_markup() -> None:
    """A name or stage that looks like rich markup is shown as written."""
    shown = [make_row(item("[bold red]x[/]"), a_run(stage="[link=http://e]y[/link]"), NOW)]
    text = "\n".join(render(status_table(shown, width=160), 160))
    assert "[bold red]x[/]" in text
    assert "[link=http://e]y[/link]" in text


def test_the_status_cell_is_coloured_only_on_a_coloured_console() -> None:
    """The status word carries its colour when the console has colour, and none without."""
    shown = [make_row(item("a"), a_run(Status.FAILED), NOW)]
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system="standard").print(status_table(shown, width=120))
    assert "\x1b[1;31mfailed" in buffer.getvalue()
    assert "\x1b[" not in "".join(render(status_table(shown, width=120), 120))


@pytest.mark.parametrize(
    ("choice", "environ", "tty", "expected"),
    [
        pytest.param("auto", {}, True, True, id="terminal"),
        pytest.param("auto", {}, False, False, id="pipe"),
        pytest.param("auto", {"NO_COLOR": "1"}, True, False, id="no-color"),
        pytest.param("auto", {"NO_COLOR": ""}, True, True, id="no-color-empty"),
        pytest.param("auto", {"TERM": "dumb"}, True, False, id="dumb"),
        pytest.param("auto", {"FORCE_COLOR": "1"}, False, True, id="force-color"),
        pytest.param("always", {"NO_COLOR": "1"}, False, True, id="always"),
        pytest.param("never", {}, True, False, id="never"),
    ],
)
def test_colour_follows_the_flag_and_the_environment(
    choice: str, environ: dict[str, str], tty: bool, expected: bool
) -> None:
    """--color always/never decide; auto colours a terminal unless NO_COLOR is set and not
    empty or TERM is dumb, and FORCE_COLOR colours a pipe."""
    stream = Tty() if tty else io.StringIO()
    assert use_color(stream, choice, environ) is expected


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_a_real_terminal_is_redrawn_in_place() -> None:
    """Live redraws need a terminal that is not TERM=dumb; a console off a terminal writes
    plain lines, unbounded."""
    assert can_redraw(Tty(), {"TERM": "xterm"})
    assert not can_redraw(Tty(), {"TERM": "dumb"})
    assert not can_redraw(io.StringIO(), {"TERM": "xterm"})
    console = make_console(io.StringIO(), environ={})
    assert not console.is_terminal
    assert console.width > 1000


def test_the_live_frame_summarizes_each_vendor_that_does_not_fit() -> None:
    """With more pipelines than lines, failing ones come first and the rest of each vendor is
    one summary line naming the vendor and its counts: every vendor stays on the screen."""
    fleet = [
        make_row(
            item(f"{vendor}-{n}", vendor, n),
            a_run(Status.FAILED if n == 7 else Status.SUCCESS),
            NOW,
        )
        for vendor in VENDORS
        for n in range(1, 11)
    ]
    lines = render(live_frame("title", fleet, width=100, height=12, changes=5), 100)
    assert len(lines) <= 12 - 1
    assert all(f"{vendor}-7" in "\n".join(lines[2:5]) for vendor in VENDORS)  # failing first
    summaries = [line for line in lines if line.startswith("… ")]
    assert {line.split(" of ")[1].split(":")[0] for line in summaries} == set(VENDORS)
    shown_rows = len(lines) - 3 - len(summaries)
    hidden = sum(int(line.split()[1]) for line in summaries)
    assert shown_rows + hidden == len(fleet)
    assert lines[-1].startswith("5 changes")


def test_the_live_frame_shows_every_row_when_they_fit() -> None:
    """When the screen is tall enough, every pipeline has its row and no summary is shown."""
    lines = render(live_frame("t", rows(), width=160, height=40, changes=0), 160)
    assert not [line for line in lines if line.startswith("… ")]
    assert len(lines) == 1 + 1 + len(rows()) + 1


@pytest.mark.parametrize("width", [80, 160])
def test_the_tree_lines_up_the_status_of_every_stage_and_job(width: int) -> None:
    """In a run's tree, the status word of every stage and job starts at one display cell,
    with CJK and emoji names among them."""
    run = a_run(Status.FAILED, stage=CJK, job="单元测试 🧪")
    extra = Stage(id="s2", name="ok", order=1, status=Status.SUCCESS, raw_status="s")
    run = attrs.evolve(run, stages=(*run.stages, extra))
    lines = render(run_tree(item("backend"), run, NOW), width)
    assert lines[0].startswith("✗ backend  failed  #7  main  01234567  manual")
    found = [re.search(" (failed|success)( |$)", line) for line in lines[1:]]
    pairs = zip(lines[1:], found, strict=True)
    cells = {cell_len(line[: match.start()]) for line, match in pairs if match}
    assert sum(1 for match in found if match) == 3  # two stages, one job
    assert len(cells) == 1
    assert any("https://ci.example/job/1" in line for line in lines)
    assert "started 2025-05-17T11:57:00Z" in "\n".join(lines)


def test_an_unreadable_pipeline_tree_says_why() -> None:
    """A tree of a pipeline that could not be read is its name, `error` and the error."""
    lines = render(run_tree(item("backend"), AuthError(status=401, vendor="x"), NOW), 80)
    assert lines == ["? backend  error", "AuthError: x: HTTP 401"]


def test_change_lines_pad_by_display_cells() -> None:
    """Change lines pad the pipeline column by display cells, so the status after a CJK name
    starts at the same cell as after an ASCII one."""
    width = cell_len(CJK)
    made = []
    for label in (CJK, "ab"):
        followed = item(label)
        change = Change(
            target=followed.target, previous=None, current=a_run(), kind=ChangeKind.FIRST
        )
        made.append(change_line(followed, change, NOW, width, len(VENDORS[0])))
    at = [cell_len(line[: line.index("running")]) for line in made]
    assert at[0] == at[1]


def test_the_live_frame_keeps_room_for_its_notes() -> None:
    """Notes (an account refused, readable again) come under the footer, and the table gives
    up rows for them so the frame still fits the screen."""
    fleet = [make_row(item(f"p{n}", VENDORS[0], n), a_run(), NOW) for n in range(30)]
    notes = ["c.toml: accounts.a.token_env: the token in T was refused; retrying"]
    lines = render(live_frame("t", fleet, width=100, height=12, changes=1, notes=notes), 100)
    assert len(lines) <= 12 - 1
    assert lines[-1] == notes[0]
    assert lines[-2].startswith("1 changes")


def test_printed_change_lines_line_up_after_a_cjk_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`watch`'s printer sizes the pipeline column in display cells, so the status after a
    CJK name and after an ASCII one start at the same cell."""
    from pipestatus.cli.commands.watch import printer

    fleet = [item(CJK), item("ab")]
    show = printer(fleet, as_json=False)
    for followed in fleet:
        change = Change(
            target=followed.target, previous=None, current=a_run(), kind=ChangeKind.FIRST
        )
        show(followed, change)
    lines = capsys.readouterr().out.splitlines()
    assert len({cell_len(line[: line.index("running")]) for line in lines}) == 1
