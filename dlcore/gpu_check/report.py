"""The result of each step and the two report files: gpu_check.json (everything) and
gpu_check.md (a summary table, then each step's details)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("passed", "failed", "skipped")


@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | skipped
    summary: str  # one line: what was measured, or why it failed or was skipped
    seconds: float = 0.0
    details: dict = field(default_factory=dict)  # JSON-able measurements
    text: str = ""  # a preformatted block for the markdown report (a table, a log tail)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"step {self.name}: status must be one of {STATUSES}, got {self.status!r}")


def write_reports(out_dir: Path, header: dict, steps: list[StepResult]) -> tuple[Path, Path]:
    """Write gpu_check.json and gpu_check.md into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / "gpu_check.json", out_dir / "gpu_check.md"
    document = {**header, "ok": not any(step.status == "failed" for step in steps),
                "steps": [asdict(step) for step in steps]}
    json_path.write_text(json.dumps(document, indent=1))
    markdown_path.write_text(markdown(header, steps))
    return json_path, markdown_path


def markdown(header: dict, steps: list[StepResult]) -> str:
    lines = ["# dlcore GPU check", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += ["", "| step | status | seconds | summary |", "| --- | --- | ---: | --- |"]
    lines += [f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.summary} |" for s in steps]
    for step in steps:
        lines += ["", f"## {step.name}: {step.status}", "", step.summary]
        if step.text:
            lines += ["", "```", step.text.rstrip(), "```"]
    return "\n".join(lines) + "\n"
