"""The CCTray feed's ``webUrl`` is a page for people: the run's own, else its key job's (v4
gives pages on jobs only), else the ``url`` the configuration gives the pipeline (Yunxiao's
answers carry none), and only then the account's endpoint; the ``url`` key is checked like
every other."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from pipestatus import Client, Job, Run, Stage, Status
from pipestatus.cli import cctray_project
from pipestatus.cli.config import ConfigError, Followed, parse_config

T0 = datetime(2025, 5, 1, tzinfo=UTC)


def followed(page: str | None = None) -> Followed:
    target = Client().yunxiao("https://api.example", token="t").target("1")
    return Followed(
        label="backend",
        account="a",
        vendor="x",
        ids=(("pipeline_id", "1"),),
        target=target,
        home="https://api.example",
        page=page,
    )


def a_run(url: str | None, *jobs: tuple[Status, str | None]) -> Run:
    made = tuple(
        Job(id=str(n), name=f"j{n}", status=status, raw_status=None, url=job_url)
        for n, (status, job_url) in enumerate(jobs)
    )
    stage = Stage(id="s", name="s", order=0, status=Status.FAILED, raw_status=None, jobs=made)
    return Run(
        vendor="x",
        pipeline_id="1",
        run_id=None,
        number=None,
        status=Status.FAILED,
        raw_status=None,
        url=url,
        stages=(stage,),
    )


@pytest.mark.parametrize(
    ("run", "page", "expected"),
    [
        pytest.param(
            a_run("https://ci/run", (Status.FAILED, "https://ci/j")),
            None,
            "https://ci/run",
            id="run",
        ),
        pytest.param(
            a_run(None, (Status.SUCCESS, "https://ci/j0"), (Status.FAILED, "https://ci/j1")),
            None,
            "https://ci/j1",
            id="failed-job",
        ),
        pytest.param(
            a_run(None, (Status.SUCCESS, "https://ci/j0"), (Status.SUCCESS, "https://ci/j1")),
            None,
            "https://ci/j1",
            id="last-job",
        ),
        pytest.param(
            a_run(None, (Status.FAILED, None)), "https://web/p", "https://web/p", id="configured"
        ),
        pytest.param(a_run(None), None, "https://api.example", id="endpoint"),
    ],
)
def test_web_url_is_the_best_page_there_is(run: Run, page: str | None, expected: str) -> None:
    """webUrl is the run's page, else its failed (or last) job's, else the configured page,
    else the endpoint."""
    assert cctray_project(followed(page), run, None, T0)["webUrl"] == expected


def config(**pipeline: object) -> dict[str, object]:
    return {
        "accounts": {"a": {"vendor": "yunxiao", "endpoint": "https://x.example", "token_env": "T"}},
        "pipelines": [{"account": "a", "pipeline_id": "1", **pipeline}],
    }


def test_a_pipelines_url_is_read_from_the_file() -> None:
    """A pipeline's `url` is kept as written (a query or fragment included)."""
    parsed = parse_config(config(url="https://flow.example/#/p/1?x=1"), source="c.toml")
    assert parsed.pipelines[0].url == "https://flow.example/#/p/1?x=1"
    assert attrs.fields_dict(type(parsed.pipelines[0]))["url"].default is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x.example", "must be an http(s):// address"),
        ("https://user:pw@x.example", "must not carry credentials"),
        ("https://x.example/\x1b[2J", "must not contain spaces or control characters"),
        (12, "must be a string"),
    ],
)
def test_a_bad_pipeline_url_is_refused_at_its_key(url: object, problem: str) -> None:
    """A `url` that is not an http(s) page for people is refused, naming its key."""
    with pytest.raises(
        ConfigError,
        match=r"pipelines\[0\]\.url: " + problem.replace("(", r"\(").replace(")", r"\)"),
    ):
        parse_config(config(url=url), source="c.toml")
