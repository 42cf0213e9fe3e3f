"""The README's commands and numbers against the workflow: its report command runs, and the job
counts it states are what `snakemake -n` plans for the default config (the numbers are read from
the README's text, so the test checks the README, not a copy of its numbers)."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_workflow import planned_jobs

from bert_ablation import config as cfg
from bert_ablation import plan
from bert_ablation.evaluation.claim_spec import load_claims

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def snakemake(workdir: Path, args: list[str]) -> subprocess.CompletedProcess:
    """`snakemake ARGS` as if typed in the checkout (the default config.yaml), working in `workdir`."""
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def stated(pattern: str, text: str, what: str) -> int:
    match = re.search(pattern, text)
    assert match, f"README no longer states {what} (pattern {pattern!r}); update this test with it"
    return int(match.group(1).replace(",", ""))


def test_the_readme_report_command_builds_a_report(tmp_path):
    commands = [c for c in re.findall(r"`(snakemake [^`]*--report[^`]*)`", README)]
    assert len(commands) == 1, commands
    args = shlex.split(commands[0])[1:]
    # A finished run, as far as the report reads it: every output marked report() in place.
    # Snakemake warns about missing run metadata and carries on (placeholders, not a real run).
    config = cfg.validate(yaml.safe_load((ROOT / "config.yaml").read_text()))
    names = plan.report_names(config)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/figures").mkdir(parents=True)
    for name in [*names, "pretraining_loss"]:
        fig.savefig(tmp_path / f"results/figures/{name}.png")
    plt.close(fig)
    for name in names:
        (tmp_path / f"results/tables/{name}.csv").write_text("row,column,mean\nA,B,1.0\n")
    (tmp_path / "results/claims.csv").write_text("id,verdict\nx,reproduced\n")
    result = snakemake(tmp_path, args)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (tmp_path / args[args.index("--report") + 1]).read_text()
    for name in ("table5.csv", "figure5.png", "pretraining_loss.png", "claims.csv"):
        assert name in html, name


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory) -> dict[str, int]:
    result = snakemake(tmp_path_factory.mktemp("default"), ["-n", "--cores", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    return planned_jobs(result.stdout + result.stderr)


def test_the_readme_job_counts_are_what_the_default_config_plans(default_plan):
    text = section("Time and scale")
    counts = {
        "total": stated(r"That is ([\d,]+) jobs", text, "the default run's total job count"),
        "pretrain": stated(r"(\d+) pretraining runs", text, "the number of pretraining runs"),
        "finetune": stated(r"(\d+) fine-tuning jobs", text, "the number of fine-tuning jobs"),
        "table": stated(r"(\d+) tables/figures", text, "the number of tables and figures"),
    }
    planned = {**default_plan, "total": sum(default_plan.values())}
    assert {k: planned.get(k, 0) for k in counts} == counts


def test_the_readme_counts_the_packaged_claims():
    assert stated(r"(\d+) of the paper's findings", README, "the number of claims") == len(load_claims())


# --- issue 29, item 6: the README as a front door ----------------------------------------------

FRONT_DOOR_LINES = 250  # readable in a few minutes; the histories and long tables live in docs/


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation other than '-' and '_'
    dropped, spaces as '-', and '-1', '-2', ... for repeats (code blocks hold no headings)."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    for title in re.findall(r"^#{1,6} (.+?)\s*$", prose, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def relative_links(markdown: str) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", markdown)
            if not re.match(r"[a-z]+:", target)]


def test_the_readme_is_a_front_door():
    """At most FRONT_DOOR_LINES lines, and every relative link (file, and anchor in it) resolves,
    so whatever moved out to docs/ is one working link away."""
    assert len(README.splitlines()) <= FRONT_DOOR_LINES
    links = relative_links(README)
    assert {link.split("#")[0] for link in links} >= {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}, \
        "every docs/ page is linked from the README"
    for link in links:
        file, _, anchor = link.partition("#")
        target = ROOT / file if file else ROOT / "README.md"
        assert target.is_file(), f"README links to {link}: no such file"
        if anchor:
            assert anchor in anchors(target.read_text()), f"README links to {link}: no such heading"


def test_the_readme_links_of_the_pages_it_sends_to_resolve():
    """The pages moved out of the README link back to it and to each other; those links hold too."""
    for page in (ROOT / "docs").glob("*.md"):
        for link in relative_links(page.read_text()):
            file, _, anchor = link.partition("#")
            target = (page.parent / file).resolve() if file else page
            assert target.is_file(), f"{page.name} links to {link}: no such file"
            if anchor:
                assert anchor in anchors(target.read_text()), f"{page.name} links to {link}: no such heading"


def test_the_readme_states_measured_numbers_not_placeholders():
    """TODO_TIME and TODO_CLAIMS mark the default run's wall time and claim counts until they are
    re-measured with pretraining seeds; this fails until both are filled in."""
    assert not re.findall(r"TODO_\w+", README)
