"""Runs a peer benchmark script's training step on request, so that several implementations
can alternate their steps (``benchmarks/pretraining_throughput.py --interleave``).

    python stepper.py PEER_SCRIPT [the script's flags ...]

The peer scripts of ``shared/bench`` (``peers_hf.py``, ``peers_mg.py``) build their models
and define their step, then time it from a line ``t0 = time.perf_counter()`` followed by
``first = <one step>``. This runs the script up to that line unchanged, runs the step
``--warmup`` times (the script's own flag), prints ``READY {json}``, then answers each
``step`` line on stdin with ``TIME <seconds> <loss>`` and stops at ``quit`` or end of input.
"""

import json
import os
import re
import sys
import time

MARKER = re.compile(r"^t0 = time\.perf_counter\(\)\n(?:first|loss) = (?P<step>.+)$", re.M)


def split_script(source: str):
    """(the script's set-up code, the expression of one step)."""
    m = MARKER.search(source)
    if m is None:
        raise SystemExit("stepper: the peer script has no 't0 = time.perf_counter()' followed "
                         "by 'first = <step>' line; cannot run its step on request")
    return source[:m.start()], m.group("step").strip()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(__doc__)
    script = argv[0]
    with open(script, encoding="utf-8") as f:
        setup, step_expression = split_script(f.read())
    sys.argv = [script] + argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    namespace = {"__name__": "__peer__", "__file__": script}
    exec(compile(setup, script, "exec"), namespace)  # noqa: S102 - our own benchmark peers
    step = compile(step_expression, script, "eval")
    warmup = max(1, int(getattr(namespace.get("args"), "warmup", 1)))
    start = time.perf_counter()
    loss = eval(step, namespace)  # noqa: S307
    first_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        eval(step, namespace)  # noqa: S307
    print("READY " + json.dumps({"first_step_s": first_s, "warmup": warmup,
                                 "loss": float(loss)}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "step":
            continue
        start = time.perf_counter()
        loss = eval(step, namespace)  # noqa: S307
        print(f"TIME {time.perf_counter() - start:.6f} {float(loss):.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
