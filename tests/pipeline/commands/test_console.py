"""Human progress: rich on a terminal, JSON lines otherwise or with --json, nothing with --quiet;
--help in plain words with a default for every option; --version."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.cli import build_parser, main
from pipeline.console import RichProgress, choose_progress, describe
from pipeline.contract import DoneEvent, MetricsEvent, StageEvent, WarningEvent
from pipeline.progress import JsonLinesProgress, NullProgress
from tests.pipeline.synthetic.factories import make_tiny_job


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _args(**flags: bool) -> argparse.Namespace:
    return argparse.Namespace(json=flags.get("json", False), quiet=flags.get("quiet", False))


def test_the_sink_follows_the_terminal_and_the_flags() -> None:
    assert isinstance(choose_progress(_args(), Terminal()), RichProgress)
    assert isinstance(choose_progress(_args(), io.StringIO()), JsonLinesProgress)
    assert isinstance(choose_progress(_args(json=True), Terminal()), JsonLinesProgress)
    assert isinstance(choose_progress(_args(quiet=True), Terminal()), NullProgress)


def test_rich_progress_shows_stage_step_loss_gaussians_and_eta() -> None:
    out = io.StringIO()
    sink = RichProgress(Console(file=out, force_terminal=True, width=160))
    sink.emit(StageEvent(stage="train", status="started"))
    sink.progress("train", 12.0, step=120, total=1000, loss=0.0412, gaussians=5120, eta_s=80.0)
    sink.emit(MetricsEvent(psnr=21.5, ssim=0.7, views=3))
    sink.emit(WarningEvent(stage="preview", message="video failed"))
    sink.emit(DoneEvent(outputs={"splat.ply": "/x/splat.ply"}, duration_s=3.0))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "train" in text and "step 120/1000" in text and "loss 0.0412" in text
    assert "5,120 Gaussians" in text and "ETA 1m 20s" in text
    assert "held-out PSNR 21.50 dB" in text and "video failed" in text and "/x/splat.ply" in text


def test_describe_leaves_out_what_is_missing() -> None:
    assert describe({"eta_s": 9.4}) == "ETA 9s"
    assert describe({}) == ""


def test_quiet_run_prints_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tiny_job(tmp_path)
    args = ["run", "--job-root", str(tmp_path), "--steps", "3", "--no-preview", "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "refined" / "splatter" / "report.json").is_file()


def test_a_terminal_gets_the_bar_on_stderr_and_nothing_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tiny_job(tmp_path)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    args = ["run", "--job-root", str(tmp_path), "--steps", "3", "--no-preview"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "held-out PSNR" in captured.err and "report.json" in captured.err
    with pytest.raises(json.JSONDecodeError):
        json.loads(captured.err.splitlines()[-1])


def test_json_flag_on_a_terminal_gives_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tiny_job(tmp_path)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    args = ["run", "--job-root", str(tmp_path), "--steps", "3", "--no-preview", "--json"]
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "done"


@pytest.mark.parametrize("command", ["run", "train"])
def test_help_is_plain_words_with_a_default_for_every_option(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    child = sub.choices[command]
    assert "Auki job" in child.description and "photos" in child.description
    text = child.format_help()
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    for action in child._actions:
        if action.dest in ("help",) or not action.option_strings or action.required:
            continue
        assert action.help, f"{command} {action.option_strings} has no help"
        rendered = child._get_formatter()._expand_help(action)
        assert "(default: " in rendered, f"{command} {action.option_strings}: {rendered}"


@pytest.mark.parametrize("command", ["preview", "convert"])
def test_tool_help_shows_a_default_for_every_option(command: str) -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    child = sub.choices[command]
    options = [a for a in child._actions if a.option_strings and a.dest != "help"]
    assert options
    for action in options:
        if action.required:
            continue
        assert action.help, f"{command} {action.option_strings} has no help"
        rendered = child._get_formatter()._expand_help(action)
        assert "(default: " in rendered, f"{command} {action.option_strings}: {rendered}"


def test_train_help_describes_every_layout() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["train"].format_help()
    for words in ("COLMAP project", "transforms.json", "photos", "videos", "Auki job"):
        assert words in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"splatter-node \S+\n", capsys.readouterr().out)


def test_convert_on_a_terminal_prints_sentences_and_quiet_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.export.ply import write_ply
    from tests.support.splats import random_splats

    write_ply(tmp_path / "s.ply", random_splats(12))
    args = ["convert", str(tmp_path / "s.ply"), str(tmp_path / "s.splat")]
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert main(args) == 0
    assert capsys.readouterr().out == f"wrote 12 Gaussians to {tmp_path / 's.splat'}\n"


def test_convert_json_lines_are_contract_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.contract import DoneEvent, WarningEvent, parse_event
    from pipeline.export.ply import write_ply
    from tests.support.splats import random_splats

    write_ply(tmp_path / "s.ply", random_splats(7))
    assert main(["convert", str(tmp_path / "s.ply"), str(tmp_path / "s.splat")]) == 0
    assert main(["convert", str(tmp_path / "s.splat"), str(tmp_path / "b.ply"), "--json"]) == 0
    events = [parse_event(line) for line in capsys.readouterr().out.splitlines()]
    assert [type(e) for e in events] == [DoneEvent, WarningEvent, DoneEvent]
    assert isinstance(events[-1], DoneEvent) and events[-1].metrics == {"gaussians": 7.0}
