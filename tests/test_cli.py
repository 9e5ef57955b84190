"""The command line: a result set on success; one line and exit code 2 on bad arguments."""

import os
import subprocess
import sys

import pytest
import xarray as xr

from nonlin_explorer.cli import main


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--model", "nope"], "unknown model 'nope'"),
    (["train", "--epochs", "-2"], "epochs must be > 0"),
    (["train", "--sparsity", "nan"], "sparsity must be finite"),
    (["train", "--out", "/no/such/folder/r.nc"], "cannot write /no/such/folder/r.nc"),
    (["train", "--epochs", "ten"], "invalid float value: 'ten'"),
    (["train", "--model-kwargs", "{bad"], "not valid JSON"),
    (["train", "--schedule", "never"], "invalid choice: 'never'"),
    (["train", "--dataset", "cifar10"], "cifar10 reads a local copy: give its folder (command line: --data-root DIR"),
    (["fly"], "invalid choice: 'fly'"),
    (["sweep", "no_such_spec.toml", "--out", "r.nc"], "spec file no_such_spec.toml not found"),
    (["sweep", "spec.toml", "--out", "r.nc", "--workers", "-1"], "must be >= 0"),
    (["sweep", "spec.toml", "--out", "r.nc", "--workers", "100000"], "per usable core of this machine), got 100000"),
    (["serve", "--port", "abc"], "'abc' is not a port number"),
    (["serve", "--port", "99999"], "a port lies in 0..65535"),
    (["serve", "--rate", "0"], "must lie in [0.5, 60]"),
    (["serve", "--speed", "-1"], "must lie in [0.001, 1e+06]"),
    (["serve", "--theme", "purple"], "invalid choice: 'purple'"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_train_writes_a_result_set(tmp_path):
    out = tmp_path / "r.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "nonlin_explorer.cli", "train", "--dataset", "spirals", "--model", "mlp",
         "--width", "16", "--depth", "2", "--epochs", "2", "--sparsity", "1e-3", "--eval-every", "5",
         "--schedule", "late", "--quiet", "--out", str(out), "--checkpoint", str(tmp_path / "r.pt")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "finished" in proc.stdout
    with xr.open_dataset(out) as ds:
        assert ds.attrs["schedule"] == "late" and ds.attrs["dataset"] == "spirals"
        assert ds.sizes["layer"] == 2 and ds.sizes["step"] >= 2
    assert (tmp_path / "r.pt").stat().st_size > 0


@pytest.mark.parametrize("extra, message", [
    (["--device", "nosuch"], "unknown device 'nosuch'"),
    (["--width", "40000"], "this machine has"),  # billions of parameters: refused before any allocation
    (["--width", "2.5"], "width must be a whole number"),
    (["--out", "{tmp}"], "it is a folder"),
    (["--out", "/proc/a.nc"], "cannot write /proc/a.nc"),
    (["--out", "{tmp}/a\\b.nc"], "may not contain a backslash"),
    (["--checkpoint", "{tmp}/r\u202e.pt"], "bidirectional control character U+202E"),
    (["--out", "{tmp}/pipe"], "it is a named pipe, not a regular file"),
    (["--width", "1e12"], "mlp with {'width': 1000000000000.0} is too large to build"),  # past what torch can index
    (["--lr", "1e38"], "lr must be <= 1e+30, got 1e+38"),
    (["--slope-lr", "1e300"], "slope_lr must be <= 1e+30"),
    (["--model-kwargs", '{"bogus": 1}'], "model 'mlp' has no setting 'bogus'; its settings: width, depth"),
    (["--model", "seq2seq", "--dataset", "translation", "--width", "8"],
     "model 'seq2seq' has no setting 'width'; its settings: vocab_size, d_model, depth, heads, ff_width, dropout"),
    (["--seed", "-1"], "seed must be a whole number in 0..4294967295, got -1"),
    (["--seed", str(2**70)], "seed must be a whole number in 0..4294967295"),
    (["--seed", "1.5"], "argument --seed: seed must be a whole number in 0..4294967295, got '1.5'"),
    (["--device", "meta"], "device 'meta' cannot run training or compression"),
])
def test_train_refuses_what_would_fail_later_before_training(extra, message, tmp_path, capsys):
    argv = ["train", "--dataset", "spirals", "--epochs", "1", "--quiet", "--out", str(tmp_path / "r.nc")]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    os.mkfifo(tmp_path / "pipe")  # stands in for a device such as /dev/null (never replaced)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "r.nc").exists()
