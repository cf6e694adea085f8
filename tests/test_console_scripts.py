"""The console_scripts of setup.py resolve, and the training commands follow electra_tf/cli.py."""

import ast
import importlib
import subprocess
import sys

import pytest

from conftest import ROOT


def console_scripts() -> dict:
    """``{command: "module:function"}`` of setup.py's entry_points, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [setup_call] = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == "setup"]
    [entry_points] = [kw.value for kw in setup_call.keywords if kw.arg == "entry_points"]
    scripts = ast.literal_eval(entry_points)["console_scripts"]
    return dict(tuple(part.strip() for part in line.split("=")) for line in scripts)


def test_setup_declares_the_commands_of_the_readme():
    assert {"electra-pretrain", "electra-finetune", "electra-detect", "electra-convert",
            "electra-export", "electra-score"} <= set(console_scripts())


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_entry_point_resolves_to_a_callable(command):
    module_name, _, attribute = console_scripts()[command].partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    assert callable(target), f"{command} -> {module_name}:{attribute} is not callable"


@pytest.mark.parametrize("module_name, script, expected", [
    ("electra_tf.run_pretraining", "electra-pretrain",
     ["Pre-trains ELECTRA", "--model_size", "--[no]eval_all_checkpoints", "--strategy"]),
    ("electra_tf.run_finetuning", "electra-finetune",
     ["Fine-tunes a pre-trained ELECTRA", "--task_names", "--data_source", "--strategy"]),
])
def test_help_prints_usage_and_flags_and_exits_0(module_name, script, expected, monkeypatch,
                                                 capsys):
    console_main = getattr(importlib.import_module(module_name), "console_main")
    for _ in range(2):  # a fresh set of flags on every call: callable again in-process
        monkeypatch.setattr(sys, "argv", [script, "--help"])
        with pytest.raises(SystemExit) as exit_:
            console_main()
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        for text in expected:
            assert text in out, f"{text!r} missing from {script} --help"


@pytest.mark.parametrize("module_name", ["electra_tf.run_pretraining",
                                         "electra_tf.run_finetuning"])
def test_usage_errors_are_one_line_with_the_convention_statuses(module_name, capsys):
    main = importlib.import_module(module_name).main
    assert main(["prog", "--no_such_flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_flag" in err and "Traceback" not in err
    assert main(["prog", "stray"]) == 1
    assert capsys.readouterr().err == "error: unexpected arguments: stray\n"


def test_scripts_beside_setup_py_print_the_same_help_as_the_console_scripts():
    from electra_tf import run_finetuning, run_pretraining
    for script, module in (("run_pretraining.py", run_pretraining),
                           ("run_finetuning.py", run_finetuning)):
        proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.startswith(module.__doc__.strip().splitlines()[0])
        assert "--strategy: <default|one_device|mirrored|multi_worker|tpu>" in proc.stdout
