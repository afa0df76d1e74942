"""The README's example runs as printed, against a live node, and prints
what the README says it prints."""

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_readmes_flows_run_and_print_what_it_says(node):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    code = code.replace('"http://127.0.0.1:8000"', repr(node.url))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    said = re.search(r"It prints `([^`]*)`", README).group(1)
    assert out.getvalue().strip() == said
