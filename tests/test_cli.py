"""The `updp` command line: help, make-cohort, errors as messages."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from updp_napari.cli import main


def test_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "updp_napari", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("make-cohort", "bench", "plugins"):
        assert command in out


def test_help_lists_every_command_under_its_group_and_module():
    from updp_napari.cli import GROUPS, build_parser

    sections = build_parser().format_help().split("\n\n  ")
    for title, module in GROUPS:
        alone = argparse.ArgumentParser().add_subparsers()
        module.register(alone)  # each module registers its own commands, and only those
        header = f"{title} ({module.__name__.rpartition('.')[2]}.py):"
        section = next(s for s in sections if s.startswith(header))
        listed = [line.split()[0] for line in section.splitlines()[1:] if line.startswith("    ")
                  and not line.startswith("     ")]
        assert listed == list(alone.choices), title


def test_old_option_spellings_still_parse_hidden_from_help():
    from updp_napari.cli import build_parser

    parser = build_parser()
    bench = parser.parse_args(["bench", "cohort", "--json", "out.json"])
    assert bench.json_out == "out.json"
    leaks = parser.parse_args(["scan-leaks", "a", "b", "--json", "leaks.json"])
    assert leaks.json_out == "leaks.json"
    old = parser.parse_args(["evaluate-filter", "c", "--model", "m"])
    assert old.filter_model == parser.parse_args(["evaluate-filter", "c", "--filter-model", "m"]).filter_model

def test_old_option_spellings_are_hidden_from_help(capsys):
    for command, old in (("bench", "--json "), ("scan-leaks", "--json "), ("evaluate-filter", "--model")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert old not in capsys.readouterr().out


def test_make_cohort_writes_and_reports(tmp_path, capsys):
    out = tmp_path / "c"
    code = main(["make-cohort", str(out), "--patients", "2", "--studies", "2", "--seed", "1",
                 "--size", "128", "--sites", "2", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote 4 studies of 2 patients" in printed
    assert "studies per site:" in printed and "report PHI spans:" in printed
    lines = (out / "ground_truth.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["size"] == 128


def test_make_cohort_errors_are_one_line_messages(tmp_path, capsys):
    (tmp_path / "x").write_text("x")
    assert main(["make-cohort", str(tmp_path), "--patients", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("updp make-cohort: error:") and "not empty" in err
    assert "Traceback" not in err
    assert main(["make-cohort", str(tmp_path / "n"), "--size", "100", "--quiet"]) == 2
    assert "size must be" in capsys.readouterr().err


def test_progress_lines_when_not_a_terminal(tmp_path, capsys):
    assert main(["make-cohort", str(tmp_path / "c"), "--patients", "1", "--studies", "2",
                 "--size", "64"]) == 0
    assert "make-cohort: 2/2" in capsys.readouterr().err


def test_bench_cohort_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "cohort", "--studies", "2", "--size", "64", "--repeat", "1",
                 "--json-out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "cohort" and result["studies"] == 2
    assert result["median_seconds"] > 0 and result["studies_per_second"] > 0


def test_bench_report_times_an_annotated_corpus(tmp_path, capsys):
    corpus = tmp_path / "notes.jsonl"
    notes = [{"id": f"note_{p}_{n}", "text": f"Seen by Dr. Okafor on {n}/3/2019.", "spans": []}
             for p in (1, 2) for n in (1, 2)]
    corpus.write_text("\n".join(map(json.dumps, notes)) + "\n", encoding="utf-8")
    assert main(["bench", "report", "--studies", "5", "--repeat", "1", "--corpus", str(corpus)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["corpus"]["notes"] == 4
    assert result["corpus"]["rules"]["notes_per_second"] > 0
    assert result["corpus"]["rules"]["notes_per_cpu_second"] > 0
    assert result["rules_with_header"]["reports_per_cpu_second"] > 0
    assert "rules_with_header" not in result["corpus"]


def test_wrong_outputs_and_swapped_arguments_are_one_line_messages(tmp_path, capsys):
    """deid-dicom onto an existing file, IN.dcm OUT.dcm (that file is written, no folder),
    audit-report into a folder, scan-leaks with its arguments swapped."""
    import shutil

    import pydicom

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "p0001_s01" / "image.dcm"
    src = tmp_path / "in.dcm"
    shutil.copy(sample, src)
    taken = tmp_path / "out.txt"
    taken.write_text("x")
    key = ["--key-file", str(tmp_path / "k.key"), "--pixels", "off", "-q"]
    assert main(["deid-dicom", str(src), str(taken), *key]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "Traceback" not in err
    out = tmp_path / "anon.dcm"
    assert main(["deid-dicom", str(src), str(out), "--record", str(tmp_path / "r.jsonl"),
                 *key]) == 0
    assert out.is_file()
    assert pydicom.dcmread(out).PatientIdentityRemoved == "YES"
    assert main(["scan-leaks", str(out), str(src), "--no-ocr", "-q"]) == 2
    err = capsys.readouterr().err
    assert "wrong way round" in err and "Traceback" not in err
    assert main(["scan-leaks", str(src), str(out), "--no-ocr", "-q"]) == 0
    assert main(["audit-report", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a folder; give the HTML file" in err and "Traceback" not in err
