"""Print `make fuzz`'s figures as the Markdown table docs/reliability.md keeps.

    python tests/fuzz/figures.py .fuzz-figures.jsonl .fuzz-atheris.log
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def main(figures: str, atheris_log: str | None = None) -> int:
    rows = [json.loads(line) for line in Path(figures).read_text().splitlines() if line]
    print("| run | figures |")
    print("|---|---|")
    for row in rows:
        name = row.pop("run")
        print(f"| {name} | " + ", ".join(f"{k} {v}" for k, v in row.items()) + " |")
    crashed = False
    if atheris_log:
        log = Path(atheris_log).read_text(errors="replace")
        done = re.findall(r"Done (\d+) runs in (\d+) second", log)
        crashed = "==ERROR" in log or "Uncaught Python exception" in log
        runs, secs = done[-1] if done else ("?", "?")
        cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
        edges = f", coverage {cov[-1][0]} edges / {cov[-1][1]} features" if cov else ""
        print(f"| atheris (sip/ parser) | executions {runs} in {secs} s{edges}, "
              f"crashes {1 if crashed else 0} |")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
