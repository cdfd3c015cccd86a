"""The docs a new user and an auditor read stay true to the code."""

from __future__ import annotations

import re

from auditagent.settings import Settings
from tests.support import ROOT

# a test file by repository path, as compliance.md cites it: `tests/integrity/test_chain.py`
TEST_PATH = r"`(tests/(?:[a-z0-9_]+/)*test_[a-z0-9_]+\.py)"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    missing = [
        f"AUDITAGENT_{name.upper()}"
        for name in Settings.model_fields
        if f"`AUDITAGENT_{name.upper()}`" not in table
    ]
    assert not missing, missing


def test_docs_name_files_by_repository_path() -> None:
    machine = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|Users)/")
    for doc in DOCS:
        text = doc.read_text()
        assert not machine.search(text), (doc.name, machine.search(text))
    compliance = (ROOT / "docs" / "compliance.md").read_text()
    # pytest node ids as they run from the repository root
    bare = re.findall(r"`(test_[a-z0-9_]+\.py)::", compliance)
    assert not bare, bare
    for path in set(re.findall(TEST_PATH + "::", compliance)):
        assert (ROOT / path).is_file(), path


def test_compliance_cites_tests_that_exist() -> None:
    """Each cited node id names a test function of its file (``::test`` alone: the file cited
    last before it)."""
    compliance = (ROOT / "docs" / "compliance.md").read_text()
    cited = re.findall(
        r"`(tests/(?:[a-z0-9_]+/)*test_[a-z0-9_]+\.py)?::(test_[a-z0-9_]+)", compliance
    )
    assert cited
    missing, path = [], ""
    for named, test in cited:
        path = named or path
        if not re.search(rf"^(?:async )?def {test}\(", (ROOT / path).read_text(), re.M):
            missing.append(f"{path}::{test}")
    assert not missing, missing


def test_docs_name_source_files_that_exist() -> None:
    """Every module or package path the docs name (``auditagent/recorder/writer.py``, or under
    ``auditagent/`` as docs/architecture.md abbreviates it: ``recorder/writer.py``) is there: a
    newcomer following the docs never reaches a file that moved. Test paths are checked above."""
    named = re.compile(
        r"(?<![\w./<>-])((?:[a-z_][a-z0-9_]*/)+(?:[a-z_][a-z0-9_]*\.py)?)(?![\w/<-])"
    )
    missing = [
        (doc.name, path)
        for doc in DOCS
        for path in sorted(set(named.findall(doc.read_text())))
        if path.endswith((".py", "/"))
        and not path.startswith("tests/")
        and not (ROOT / path).exists()
        and not (ROOT / "auditagent" / path).exists()
    ]
    assert not missing, missing


def test_compliance_does_not_list_pause_recording_as_not_built() -> None:
    compliance = (ROOT / "docs" / "compliance.md").read_text()
    # each bullet with its continuation lines, as one sentence
    bullets = [" ".join(b.split()) for b in re.split(r"\n- ", compliance)]
    for bullet in bullets:
        if "not built" in bullet:
            unbuilt = bullet[: bullet.index("not built")].lower()
            assert "pause recording" not in unbuilt, bullet


def test_readme_commands_install_what_they_run() -> None:
    """The fresh-machine command installs the demo extra; CI runs the test command verbatim."""
    readme = (ROOT / "README.md").read_text()
    commands = [
        line
        for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
        for line in block.splitlines()
        if line.startswith("python3 -m venv .venv")
    ]
    demo = [c for c in commands if c.endswith("auditagent demo")]
    assert demo == [
        'python3 -m venv .venv && .venv/bin/pip install ".[demo]" && .venv/bin/auditagent demo'
    ]
    tests = [c for c in commands if c.endswith("pytest")]
    assert len(tests) == 1 and '".[test]"' in tests[0]
    assert tests[0] in (ROOT / ".ci" / "run").read_text()
