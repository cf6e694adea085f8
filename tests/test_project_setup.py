"""The newcomer's set-up: README commands, CI script, installed package layout, describe CLI."""

import re
import subprocess
import sys

from conftest import ROOT


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) >= 2
    main_job, tests = commands[0], commands[1]
    assert "pip install" in main_job and "python run_pretraining.py --model_size=small" in main_job
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, ".ci/run must run exactly the README's test command"
    assert "python3 -m venv" in (ROOT / ".ci" / "run").read_text()


def test_ci_treats_no_tests_collected_as_failure():
    text = (ROOT / ".ci" / "run").read_text()
    assert '"$status" -eq 5' in text and "exit 1" in text


def test_describe_prints_the_released_small_parameter_table():
    # Spec 7.3: discriminator 13,483,008 + head 66,049 + generator (fraction 1.0) 9,573,818.
    result = subprocess.run(
        [sys.executable, "-m", "electra_tf.describe", "--model_size=small",
         '--hparams={"generator_hidden_size": 1.0}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"electra/encoder \(layers\)\s+192\s+9,477,120", result.stdout)
    assert re.search(r"^total\s+\d+\s+23,122,875$", result.stdout, re.M)


def test_describe_rejects_unknown_hparam_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "electra_tf.describe", '--hparams={"lerning_rate": 1}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "unknown pretraining hparam 'lerning_rate'; did you mean learning_rate?" in result.stderr
    assert "Traceback" not in result.stderr
